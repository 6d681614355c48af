"""The dma-buf subsystem owns its state: each kernel's live buffers and attachments live in
its ``DmaBufSubsystem`` (not on ``Kernel``), made at boot with the debugfs files, and its
leak report is part of what ``kernel.shutdown()`` returns."""

from __future__ import annotations

import pytest
from dmabuf_testing import Dev, TestImporter, export

from mockkernel import Kernel, boot
from mockkernel.driver import (
    DmaBufSubsystem,
    dma_buf_attach,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_put,
    dma_buf_subsys,
)
from mockkernel.errors import LeakError


def test_the_subsystem_is_made_at_boot_one_per_kernel(kernel: Kernel) -> None:
    sub = dma_buf_subsys(kernel)
    assert isinstance(sub, DmaBufSubsystem) and sub.kernel is kernel
    assert kernel.subsystems[DmaBufSubsystem] is sub is kernel.subsys(DmaBufSubsystem)
    assert sub.dmabufs == {} and sub.attachments == {} and sub.leaks() == []
    assert kernel.vfs.lookup("/sys/kernel/debug/dma_buf/bufinfo") is not None
    assert not hasattr(kernel, "dmabufs") and not hasattr(kernel, "attachments")
    other = boot()
    try:
        dmabuf, _ = export(other)
        assert dma_buf_subsys(other).dmabufs == {dmabuf.id: dmabuf}
        assert sub.dmabufs == {}, "a buffer of another kernel is not on this kernel's list"
        dma_buf_put(dmabuf)
    finally:
        assert other.shutdown(check=False) == []


def test_the_subsystem_leak_report_is_in_shutdown() -> None:
    k = boot()
    dmabuf, _ = export(k)
    static = dma_buf_attach(dmabuf, Dev("static-dev"))
    dynamic = dma_buf_dynamic_attach(dmabuf, Dev("dynamic-dev"), TestImporter())
    sub = dma_buf_subsys(k)
    mine = [
        f"dma-buf still alive: {dmabuf!r}",
        f"attachment still attached: {static!r}",
        f"attachment still attached: {dynamic!r}",
    ]
    assert sub.leaks() == mine
    with pytest.raises(LeakError) as e:
        k.shutdown()
    found = e.value.leaks
    start = found.index(mine[0])
    assert found[start : start + 3] == mine
    assert dmabuf.file.released, "released at shutdown all the same"


def test_detach_keeps_attach_order_and_empties_the_tables(kernel: Kernel) -> None:
    dmabuf, _ = export(kernel)
    devs = [Dev(f"dev{i}") for i in range(5)]
    attached = [dma_buf_attach(dmabuf, d) for d in devs]
    dma_buf_detach(dmabuf, attached[2])
    assert list(dmabuf.attachments) == [attached[i] for i in (0, 1, 3, 4)]
    again = dma_buf_attach(dmabuf, devs[2])
    assert list(dmabuf.attachments)[-1] is again, "a new attachment goes to the tail"
    sub = dma_buf_subsys(kernel)
    assert set(sub.attachments) == {a.id for a in dmabuf.attachments}
    for a in list(dmabuf.attachments):
        dma_buf_detach(dmabuf, a)
    assert not dmabuf.attachments and sub.attachments == {}
    dma_buf_put(dmabuf)
    assert sub.dmabufs == {}
