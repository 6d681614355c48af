"""An incoming RDMA WRITE into a BAR dma-buf MR, end to end, against a plain model.

The write path (``ib_rdma_write`` -> ``Mlx5IbOps.mr_write`` -> the umem's translation
-> ``Fabric.memory_write`` -> the BAR) builds its results without the frozen
dataclasses' ``__init__``, decodes through the fabric's flattened BARs and lands the
bytes with a slice assignment.  Whatever the rkey, offset and length, whether the MR
was invalidated just before and whether tracing is on, the outcome must be what the
checks and the spec say: the completion status and reason, the TLPs (split at 256
bytes and 4 KiB, the mkey's PH and steering tag with the extended byte as a prefix),
the bytes in the BAR, and -- tracing on -- one ``rdma.remote_write`` and one
``pcie.tlp`` per TLP carrying the tag.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockkernel_mlx5 import Mlx5IbOps
from rdma_testing import LOCAL_WRITE, PAGE, RW, VFIO_BDF

from mockkernel import Kernel
from mockkernel.driver import SgEntry
from mockkernel.pci.fabric import Tlp, WriteResult
from mockkernel.rdma import UmemDmabuf, ib_device_by_name
from mockkernel.rdma.umem import DmaSegment
from mockkernel.rdma.uverbs import MrWriteResult
from mockkernel.testing.rdma import (
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
    Verbs,
    VfioDevice,
    remote_write,
)

SIZE = 4 * PAGE
BAR_OFFSET = PAGE  # where the dma-buf starts in BAR0
MLX5_RID = 0x02 << 8  # 0000:02:00.0


@dataclasses.dataclass
class Setup:
    kernel: Kernel
    rkeys: dict[str, int]  # "rw": REMOTE_WRITE, "local": LOCAL_WRITE only, "none": no MR


@pytest.fixture
def setup(mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice) -> Iterator[Setup]:
    fd = vfio.export(BAR_OFFSET, SIZE)
    vfio.set_tph(fd, VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT, xst=0x0112, st=0x12, ph=1)
    pd = verbs.alloc_pd()
    rw = verbs.reg_dmabuf_mr(pd, fd, SIZE, access=RW)
    local = verbs.reg_dmabuf_mr(pd, fd, SIZE, access=LOCAL_WRITE)
    try:
        yield Setup(mock_kernel, {"rw": rw.rkey, "local": local.rkey, "none": 0xDEAD00})
    finally:
        verbs.dereg_mr(local)
        verbs.dereg_mr(rw)
        os.close(fd)


def _model(which: str, offset: int, n: int, bar_address: int) -> tuple[str, str, list[Tlp]]:
    """(status, reason, TLPs) the checks and the spec give."""
    if which == "none":
        return "IBV_WC_REM_ACCESS_ERR", "no MR with this rkey", []
    if which == "local":
        return "IBV_WC_REM_ACCESS_ERR", "the MR has no REMOTE_WRITE access", []
    if offset < 0 or offset + n > SIZE:
        return "IBV_WC_REM_ACCESS_ERR", "outside the MR", []
    tlps = []
    addr, end = bar_address + BAR_OFFSET + offset, bar_address + BAR_OFFSET + offset + n
    while addr < end:
        size = min(end - addr, 256, 4096 - addr % 4096)
        tlps.append(Tlp(MLX5_RID, addr, size, True, 1, 0x12, 0x01, f"{VFIO_BDF}:bar0", "ok"))
        addr += size
    return "IBV_WC_SUCCESS", "", tlps


def _invalidate(kernel: Kernel, rkey: int) -> None:
    """What a move notification does to the MR (``mlx5_ib_dmabuf_invalidate_cb``)."""
    dev = ib_device_by_name(kernel, "mlx5_0")
    umem, ops = dev.mrs[rkey].umem, dev.ops
    assert isinstance(umem, UmemDmabuf) and isinstance(ops, Mlx5IbOps)
    with umem.dmabuf.resv:
        ops.dmabuf_invalidate(umem.attach)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    which=st.sampled_from(("rw", "rw", "rw", "local", "none")),
    offset=st.integers(-3, 3) | st.integers(-10, SIZE + 10) | st.sampled_from((PAGE - 1, SIZE)),
    n=st.integers(0, 3) | st.integers(0, 9000),
    invalidate=st.booleans(),
    tracing=st.booleans(),
    fill=st.integers(1, 255),
)
def test_a_write_ends_as_the_checks_and_the_spec_say(
    setup: Setup, which: str, offset: int, n: int, invalidate: bool, tracing: bool, fill: int
) -> None:
    kernel = setup.kernel
    assert kernel.pci is not None
    bar = kernel.pci.get(VFIO_BDF).bars[0]
    rkey = setup.rkeys[which]
    data = bytes([fill]) * n
    assert remote_write(kernel, "mlx5_0", setup.rkeys["rw"], 0, b"").ok  # (mapped again)
    before = bar.map.read(0, bar.size)
    if invalidate:
        _invalidate(kernel, setup.rkeys["rw"])
    status, reason, tlps = _model(which, offset, n, bar.bus_address)
    if tracing:
        with kernel.tracer.capture() as events:
            res = remote_write(kernel, "mlx5_0", rkey, offset, data)
    else:
        res = remote_write(kernel, "mlx5_0", rkey, offset, data)
    assert (res.status, res.reason, list(res.tlps)) == (status, reason, tlps)
    assert res.ok == (status == "IBV_WC_SUCCESS")
    assert (res.ph, res.steering_tag) == ((1, 0x0112) if res.ok else (None, None))
    after = bar.map.read(0, bar.size)
    if res.ok:
        start = BAR_OFFSET + offset
        assert after[start : start + n] == data
        assert after[:start] == before[:start] and after[start + n :] == before[start + n :]
    else:
        assert after == before
    if not tracing:
        return
    writes = [e for e in events if e["event"] == "rdma.remote_write"]
    assert [(w["rkey"], w["offset"], w["length"], w["status"], w["reason"], w["tlps"])
            for w in writes] == [(rkey, offset, n, status, reason, len(tlps))]  # fmt: skip
    on_wire = [(e["address"], e["length"], e["st"], e["st_ext"], e["target"])
               for e in events if e["event"] == "pcie.tlp"]  # fmt: skip
    assert on_wire == [(hex(t.address), t.length, 0x12, 0x01, t.target) for t in tlps]
    faults = [e["ok"] for e in events if e["event"] == "mlx5.mr_fault"]
    assert faults == ([True] if invalidate and which == "rw" and res.ok else [])


def test_the_results_are_the_dataclasses_made_field_by_field() -> None:
    """``MrWriteResult``, ``WriteResult`` and ``DmaSegment`` set their fields without the
    frozen dataclass's ``object.__setattr__`` per field: each equals, hashes and prints as
    one made field by field as the generated ``__init__`` does, keeps its defaults and
    stays frozen."""
    tlp = Tlp(1, 0x1000, 64, True, 1, 0x12, 1, "x", "ok")
    made = [
        MrWriteResult("IBV_WC_SUCCESS", tlps=(tlp,), ph=1, steering_tag=0x112),
        MrWriteResult("IBV_WC_REM_ACCESS_ERR", "why", (), 14),
        MrWriteResult(status="IBV_WC_SUCCESS"),
        WriteResult((tlp, tlp)),
        DmaSegment(0x1000, 64, SgEntry(0x1000, 4096), 8),
    ]
    for obj in made:
        same = object.__new__(type(obj))  # what the generated __init__ does
        for f in dataclasses.fields(obj):
            object.__setattr__(same, f.name, getattr(obj, f.name))
        assert obj == same and hash(obj) == hash(same) and repr(obj) == repr(same)
        assert dataclasses.asdict(obj) == dataclasses.asdict(same)
        name = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, 0)
    default = MrWriteResult("IBV_WC_SUCCESS")
    assert (default.reason, default.tlps, default.errno, default.ph, default.steering_tag) == (
        "",
        (),
        0,
        None,
        None,
    )
    assert made[0] != made[2] and made[0].ok and not made[1].ok


#: a dma-buf of three BAR0 ranges, out of order: the MR's bytes are not contiguous on the bus
RANGES = ((0x3000, 0x1000), (0x0, 0x2000), (0x8000, 0x1000))


@pytest.fixture
def scattered(mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice) -> Iterator[int]:
    """An MR over a dma-buf of ``RANGES`` of BAR0 (TPH as above): its rkey."""
    import struct

    from mockkernel.testing.rdma import _DMA_BUF, _GET

    data = struct.pack("<IIII", 0, os.O_RDWR | os.O_CLOEXEC, 0, len(RANGES))
    data += b"".join(struct.pack("<QQ", off, n) for off, n in RANGES)
    fd = vfio.feature(_GET | _DMA_BUF, data)
    total = sum(n for _, n in RANGES)
    vfio.set_tph(fd, VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT, xst=0x0112, st=0x12, ph=1)
    pd = verbs.alloc_pd()
    mr = verbs.reg_dmabuf_mr(pd, fd, total, access=RW)
    try:
        yield mr.rkey
    finally:
        verbs.dereg_mr(mr)
        os.close(fd)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offset=st.integers(-2, 0x4002)
    | st.builds(
        lambda b, d: b + d, st.sampled_from((0, 0x1000, 0x3000, 0x4000)), st.integers(-3, 3)
    ),
    n=st.integers(0, 3) | st.integers(0, 0x4002),
)
def test_a_write_across_the_pieces_of_a_scattered_mr(
    mock_kernel: Kernel, scattered: int, offset: int, n: int
) -> None:
    """Each piece of the MR the write touches is its own run of TLPs, to that piece's
    bus address, in order; the bytes land piece by piece."""
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get(VFIO_BDF).bars[0]
    total = sum(size for _, size in RANGES)
    data = bytes(i * 7 % 251 for i in range(n))
    res = remote_write(mock_kernel, "mlx5_0", scattered, offset, data)
    if offset < 0 or offset + n > total:
        assert (res.status, res.reason, res.tlps) == ("IBV_WC_REM_ACCESS_ERR", "outside the MR", ())
        return
    want: list[tuple[int, int]] = []
    landed: list[tuple[int, bytes]] = []
    base = 0
    for bar_off, size in RANGES:  # the model: MR bytes [base, base+size) are BAR bytes bar_off..
        lo, hi = max(offset, base), min(offset + n, base + size)
        addr, end = bar.bus_address + bar_off + lo - base, bar.bus_address + bar_off + hi - base
        while addr < end:
            step = min(end - addr, 256, 4096 - addr % 4096)
            want.append((addr, step))
            addr += step
        if lo < hi:
            landed.append((bar_off + lo - base, data[lo - offset : hi - offset]))
        base += size
    assert res.ok and [(t.address, t.length) for t in res.tlps] == want
    assert all((t.st, t.st_ext, t.ph, t.status) == (0x12, 0x01, 1, "ok") for t in res.tlps)
    for bar_off, chunk in landed:
        assert bar.map.read(bar_off, len(chunk)) == chunk
