"""The proof: ``examples/rdma_dmabuf_mr.py`` unchanged, and a remote peer writing into the
MR it registers -- through the mkey, the PCIe fabric and into the vfio device's BAR, with
the steering tag and processing hint userspace set -- across a ``VFIO_DEVICE_RESET``."""

from __future__ import annotations

import fcntl
import importlib.util
import mmap
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mockkernel import Kernel
from mockkernel.testing.rdma import VFIO_DEVICE_RESET, remote_write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rdma_dmabuf_mr.py"
MLX5_RID = 0x02 << 8 | 0  # 0000:02:00.0


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rdma_dmabuf_mr", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("uapi", "tph_line"),
    [
        ("tph-v11", "TPH set: st 0x12, st_ext 0x0112, ph 1"),
        ("linux-7.2", "TPH not set: this kernel has no VFIO_DEVICE_FEATURE_DMA_BUF_TPH"),
    ],
)
def test_example_runs_unchanged(tmp_path: Path, uapi: str, tph_line: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", "--uapi", uapi, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [
        "vfio device 0000:01:00.0: dma-buf of BAR0 [0x1000, +0x4000)",
        tph_line,
        "RDMA device mlx5_0: MR handle 1, lkey 0x101, rkey 0x101",
        "QUERY_MR: length 0x4000, iova 0x0, keys match: True",
        "a peer can now RDMA WRITE into the device's BAR with this rkey",
    ]


def test_remote_write_lands_in_the_bar_with_tag_and_ph_across_a_reset(
    mock_kernel: Kernel,
) -> None:
    ex = _example()
    reg = ex.register()
    bar_view = mmap.mmap(reg.device, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
    try:
        assert reg.tph and reg.ibdev == "mlx5_0"
        payload = bytes(range(256)) * 2 + b"tail"
        with mock_kernel.tracer.capture() as events:
            res = remote_write(mock_kernel, "mlx5_0", reg.rkey, 0x100, payload)
        # the bytes are in the BAR, as the device's own VFIO region mapping shows them
        assert res.ok and bar_view[0x1100 : 0x1100 + len(payload)] == payload
        tlps = res.tlps
        assert [t.length for t in tlps] == [256, 256, 4]
        assert {(t.requester_id, t.th, t.ph, t.st, t.st_ext, t.target, t.status) for t in tlps} == {
            (MLX5_RID, True, 1, 0x12, 0x01, "0000:01:00.0:bar0", "ok")
        }
        traced = [e for e in events if e["event"] == "pcie.tlp"]
        assert len(traced) == 3 and all(e["st_ext"] == 1 and e["ph"] == 1 for e in traced)

        # userspace sets a new tag: the MR keeps the one it took ...
        tph = struct.pack("=iIHBB", reg.dmabuf, 3, 0x0BEE, 0xEE, 3)
        ex.feature(reg.device, ex.VFIO_DEVICE_FEATURE_SET | 13, tph)
        assert remote_write(mock_kernel, "mlx5_0", reg.rkey, 0, b"x").steering_tag == 0x0112

        # ... until a reset invalidates the mapping; meanwhile the wire keeps delivering
        window = []

        def peer(event: dict[str, object]) -> None:
            if event["event"] == "vfio_pci.dma_buf_revoke":
                window.append(remote_write(mock_kernel, "mlx5_0", reg.rkey, 0, b"lost"))

        mock_kernel.tracer.add_sink(peer)
        try:
            with mock_kernel.tracer.capture() as events:
                fcntl.ioctl(reg.device, VFIO_DEVICE_RESET, 0)
        finally:
            mock_kernel.tracer.remove_sink(peer)
        names = [e["event"] for e in events]
        assert "mlx5.mr_invalidate" in names and "vfio_pci.dma_buf_unrevoke" in names
        (lost,) = window
        assert (lost.ok, lost.reason, lost.tlps) == (False, "page fault: ENODEV", ())
        assert bar_view[0x1000:0x1004] != b"lost"

        # after un-revoke: the next write faults, re-maps, re-queries the tag, and lands
        with mock_kernel.tracer.capture() as events:
            res = remote_write(mock_kernel, "mlx5_0", reg.rkey, 0x200, b"after reset")
        assert res.ok and bar_view[0x1200:0x120B] == b"after reset"
        (tlp,) = res.tlps
        assert (tlp.ph, tlp.steering_tag, tlp.st_ext) == (3, 0x0BEE, 0x0B)
        fault = [e for e in events if e["event"] == "mlx5.mr_fault"]
        assert fault and fault[0]["ok"] is True
        assert [e["tag"] for e in events if e["event"] == "mlx5.mr_tph"] == [0x0BEE]
    finally:
        bar_view.close()
        reg.close()
