"""Every row of the table in ``docs/matrix.md``, run: the documented answer is the answer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rdma_testing import RW, VFIO_BDF, errname

from mockkernel import Kernel
from mockkernel.testing.rdma import (
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
    Verbs,
    VfioDevice,
    remote_write,
    udmabuf,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "matrix.md"
SIZE = 0x4000
COLUMNS = (
    "exporter",
    "importer",
    "profile",
    "registration",
    "TLP PH",
    "TLP ST",
    "write while revoked",
    "write after un-revoke",
)


def _rows() -> list[dict[str, str]]:
    text = DOC.read_text()
    table = text.split("<!-- matrix:begin -->")[1].split("<!-- matrix:end -->")[0]
    lines = [line.strip() for line in table.strip().splitlines()]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


ROWS = _rows()


def test_the_table_covers_the_whole_matrix() -> None:
    keys = {(r["exporter"], r["importer"], r["profile"]) for r in ROWS}
    assert len(keys) == len(ROWS) == 2 * 2 * 4


def _result(res: object) -> str:
    ok = getattr(res, "ok", False)
    if ok:
        return "ok"
    return f"{res.status} ({errname(OSError(res.errno, ''))})"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "row", ROWS, ids=lambda r: f"{r['exporter']}-{r['importer']}-{r['profile']}"
)
def test_matrix_row(mock_kernel_factory: Callable[..., Kernel], row: dict[str, str]) -> None:
    kernel = mock_kernel_factory(uapi=row["profile"], install=True)
    got = dict.fromkeys(COLUMNS[3:], "-")
    fds: list[int] = []
    verbs = Verbs("mlx5_0")
    dev = VfioDevice(VFIO_BDF) if row["exporter"] == "vfio-pci" else None
    try:
        if dev is not None:
            profile = row["profile"]
            if profile == "tph-v1":
                fd = dev.export(0, SIZE, tph_v1=(0x0112, 1))
            else:
                fd = dev.export(0, SIZE)
                if profile == "tph-v2":
                    dev.set_tph_v2(fd, 0x0112, 1)
                elif profile == "tph-v11":
                    dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT, 0x0112, 0x12, 1)
            fds.append(fd)
        else:
            fd, memfd = udmabuf(SIZE)
            fds += [fd, memfd]
        pd = verbs.alloc_pd()
        try:
            mr = verbs.reg_dmabuf_mr(
                pd, fd, SIZE, access=RW, data_direct=row["importer"] == "pinned"
            )
        except OSError as e:
            got["registration"] = errname(e)
        else:
            got["registration"] = "ok"
            res = remote_write(kernel, "mlx5_0", mr.rkey, 0, bytes(64))
            assert res.ok
            th = {t.th for t in res.tlps}
            assert len(th) == 1
            if th == {True}:
                got["TLP PH"] = str(res.tlps[0].ph)
                got["TLP ST"] = f"{res.tlps[0].steering_tag:#06x}"
            else:
                got["TLP PH"] = got["TLP ST"] = "none"
            if dev is not None:
                dev.memory(False)
                got["write while revoked"] = _result(
                    remote_write(kernel, "mlx5_0", mr.rkey, 0, b"x")
                )
                dev.memory(True)
                got["write after un-revoke"] = _result(
                    remote_write(kernel, "mlx5_0", mr.rkey, 0, b"x")
                )
            else:
                got["write while revoked"] = got["write after un-revoke"] = "n/a"
            verbs.dereg_mr(mr)
    finally:
        verbs.close()
        for fd in fds:
            os.close(fd)
        if dev is not None:
            dev.close()
    expected = {k: row[k] for k in COLUMNS[3:]}
    assert got == expected
