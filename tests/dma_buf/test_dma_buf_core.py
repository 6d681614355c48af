"""The dma-buf core through the driver API: export, get/put, attach, pin, map, invalidate,
TPH, release and the trace events (``drivers/dma-buf/dma-buf.c`` after the revoke series)."""

from __future__ import annotations

import itertools
import mmap
import os

import pytest
from dmabuf_testing import PAGE, Dev, TestExporter, TestImporter, errno_name, export, make_priv

from mockkernel import Kernel, KernelBug
from mockkernel.driver import (
    DMA_BIDIRECTIONAL,
    DMA_FROM_DEVICE,
    DMA_TO_DEVICE,
    DmaFence,
    dma_buf_attach,
    dma_buf_attach_revocable,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_export,
    dma_buf_fd,
    dma_buf_get,
    dma_buf_get_pci_tph,
    dma_buf_invalidate_mappings,
    dma_buf_map_attachment,
    dma_buf_map_attachment_unlocked,
    dma_buf_pin,
    dma_buf_put,
    dma_buf_subsys,
    dma_buf_unmap_attachment,
    dma_buf_unmap_attachment_unlocked,
    dma_buf_unpin,
    is_dma_buf_file,
    kernel_close,
)

DEV = Dev("0000:01:00.0")


# -- export ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "broken",
    ["map_dma_buf", "unmap_dma_buf", "release", "pin_only", "unpin_only", "priv"],
)
def test_export_with_a_bad_ops_table_warns_and_fails(kernel: Kernel, broken: str) -> None:
    ops = TestExporter(with_pin=broken in ("pin_only", "unpin_only"))
    if broken in ("map_dma_buf", "unmap_dma_buf", "release"):
        setattr(ops, broken, None)
    elif broken == "pin_only":
        ops.unpin = None
    elif broken == "unpin_only":
        ops.pin = None
    priv = make_priv(kernel)
    try:
        with pytest.raises(OSError) as e:
            dma_buf_export(kernel, ops, PAGE, None if broken == "priv" else priv, "bad")
    finally:
        priv.view.close()
        kernel_close(kernel, priv.memfd)
    assert e.value.errno == 22  # EINVAL
    assert dma_buf_subsys(kernel).dmabufs == {}
    assert len(kernel.warnings) == 1 and "bad ops table" in kernel.warnings[0]
    assert ops.calls == []
    leaks = kernel.shutdown(check=False)
    assert leaks == [f"kernel warning: {kernel.warnings[0]}"]


def test_export_makes_the_file_and_lists_the_buffer(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel, size=3 * PAGE, flags=os.O_RDONLY | os.O_NONBLOCK | os.O_APPEND)
    f = dmabuf.file
    assert is_dma_buf_file(f) and f.f_count == 1
    assert dma_buf_subsys(kernel).dmabufs == {dmabuf.id: dmabuf}
    # dma_buf_getfile keeps O_ACCMODE|O_NONBLOCK only; f_mode: READ|LSEEK|OPENED|NONOTIFY
    assert f.f_flags == os.O_RDONLY | os.O_NONBLOCK
    assert f.f_mode == 0x1 | 0x4 | 0x80000 | 0x2000000
    st = f.inode.stat_result()
    assert (st.st_mode, st.st_size, st.st_uid, st.st_gid) == (
        0o600,
        3 * PAGE,
        os.geteuid(),
        os.getegid(),
    )
    assert f.link_name == "/dmabuf:"
    dma_buf_put(dmabuf)
    assert ops.names() == ["release"] and dma_buf_subsys(kernel).dmabufs == {}


# -- fd / get / put --------------------------------------------------------------------
def test_dma_buf_fd_consumes_the_export_reference(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel)
    proc = kernel.spawn("importer")
    fd = dma_buf_fd(dmabuf, os.O_CLOEXEC, proc)
    assert proc.files[fd] is dmabuf.file and dmabuf.file.f_count == 1
    assert proc.fdt.get_cloexec(fd)
    with pytest.raises(OSError) as e:
        dma_buf_fd(None, 0, proc)
    assert e.value.errno == 22
    proc.sys_close(fd)
    assert ops.names() == ["release"]


def test_dma_buf_get_errors(kernel: Kernel) -> None:
    proc = kernel.init_process  # its fd table is backed by real fds
    dmabuf, _ = export(kernel)
    fd = dma_buf_fd(dmabuf, 0, proc)
    dev = proc.sys_open("/dev/udmabuf", os.O_RDWR)
    rd, wr = os.pipe()
    try:
        assert errno_name(dma_buf_get, -1, proc) == "EBADF"
        assert errno_name(dma_buf_get, 100_000, proc) == "EBADF"
        # a mock file that is not a dma-buf, and a real fd the mock does not own
        assert errno_name(dma_buf_get, dev, proc) == "EINVAL"
        assert errno_name(dma_buf_get, rd, proc) == "EINVAL"
        got = dma_buf_get(fd, proc)
        assert got is dmabuf and dmabuf.file.f_count == 2
        dma_buf_put(got)
        assert dmabuf.file.f_count == 1
        proc.sys_close(fd)
        assert errno_name(dma_buf_get, fd, proc) == "EBADF"
    finally:
        os.close(rd)
        os.close(wr)
        proc.sys_close(dev)


# -- attach / detach -------------------------------------------------------------------
def test_dynamic_and_static_attach(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel)
    imp = TestImporter(allow_peer2peer=True)
    dyn = dma_buf_dynamic_attach(dmabuf, DEV, imp, "priv")
    sta = dma_buf_attach(dmabuf, Dev("static"))
    nop2p = dma_buf_dynamic_attach(dmabuf, DEV, TestImporter(allow_peer2peer=False))
    pinned = dma_buf_dynamic_attach(dmabuf, DEV, TestImporter(revocable=False))
    assert (dyn.dynamic, dyn.peer2peer, dyn.importer_priv) == (True, True, "priv")
    assert (sta.dynamic, sta.peer2peer, sta.importer_ops) == (False, False, None)
    assert (nop2p.dynamic, nop2p.peer2peer) == (True, False)
    assert [dma_buf_attach_revocable(a) for a in (dyn, sta, nop2p, pinned)] == [
        True,
        False,
        True,
        False,
    ]
    assert list(dmabuf.attachments) == [dyn, sta, nop2p, pinned]
    assert set(dma_buf_subsys(kernel).attachments) == {dyn.id, sta.id, nop2p.id, pinned.id}
    for a in (dyn, sta, nop2p, pinned):
        dma_buf_detach(dmabuf, a)
    assert not dmabuf.attachments and dma_buf_subsys(kernel).attachments == {}
    # the exporter is called without the reservation lock, for attach and detach
    assert ops.calls == [("attach", False)] * 4 + [("detach", False)] * 4
    dma_buf_put(dmabuf)


def test_exporter_refusing_attach(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel, TestExporter(refuse_attach=95))  # EOPNOTSUPP
    assert errno_name(dma_buf_attach, dmabuf, DEV) == "EOPNOTSUPP"
    assert errno_name(dma_buf_dynamic_attach, dmabuf, DEV, TestImporter()) == "EOPNOTSUPP"
    assert not dmabuf.attachments and dma_buf_subsys(kernel).attachments == {}
    assert ops.names() == ["attach", "attach"]  # and no detach for a refused attach
    dma_buf_put(dmabuf)


def test_attach_and_detach_must_not_hold_the_resv(kernel: Kernel) -> None:
    dmabuf, _ = export(kernel)
    with dmabuf.resv, pytest.raises(KernelBug, match="reservation lock held"):
        dma_buf_attach(dmabuf, DEV)
    attach = dma_buf_attach(dmabuf, DEV)
    with dmabuf.resv, pytest.raises(KernelBug, match="reservation lock held"):
        dma_buf_detach(dmabuf, attach)
    assert list(dmabuf.attachments) == [attach]
    dma_buf_detach(dmabuf, attach)
    with pytest.raises(KernelBug):
        dma_buf_detach(dmabuf, attach)  # twice
    dma_buf_put(dmabuf)


# -- map / unmap / pin -----------------------------------------------------------------
def test_map_and_unmap_require_the_resv(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel)
    attach = dma_buf_attach(dmabuf, DEV)
    with pytest.raises(KernelBug, match="must be held"):
        dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL)
    with dmabuf.resv:
        sgt = dma_buf_map_attachment(attach, DMA_TO_DEVICE)
    assert sgt.nbytes == 2 * PAGE and attach.mapped == 1
    with pytest.raises(KernelBug, match="must be held"):
        dma_buf_unmap_attachment(attach, sgt, DMA_TO_DEVICE)
    with dmabuf.resv:
        dma_buf_unmap_attachment(attach, sgt, DMA_TO_DEVICE)
        with pytest.raises(KernelBug, match="no mapping"):
            dma_buf_unmap_attachment(attach, sgt, DMA_TO_DEVICE)
    # the _unlocked helpers take the lock themselves (and must not be called with it)
    sgt = dma_buf_map_attachment_unlocked(attach, DMA_FROM_DEVICE)
    dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_FROM_DEVICE)
    with dmabuf.resv, pytest.raises(KernelBug, match="recursive"):
        dma_buf_map_attachment_unlocked(attach, DMA_FROM_DEVICE)
    assert [c for c in ops.calls if c[0] in ("map", "unmap")] == [
        ("map", True),
        ("unmap", True),
        ("map", True),
        ("unmap", True),
    ]
    dma_buf_detach(dmabuf, attach)
    dma_buf_put(dmabuf)


def test_static_importer_is_pinned_for_the_mapping(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel, TestExporter(with_pin=True))
    static = dma_buf_attach(dmabuf, DEV)
    dynamic = dma_buf_dynamic_attach(dmabuf, DEV, TestImporter())
    ops.calls.clear()
    with dmabuf.resv:
        sgt = dma_buf_map_attachment(static, DMA_BIDIRECTIONAL)
        dma_buf_unmap_attachment(static, sgt, DMA_BIDIRECTIONAL)
    assert ops.calls == [("pin", True), ("map", True), ("unmap", True), ("unpin", True)]
    ops.calls.clear()
    with dmabuf.resv:  # a dynamic importer pins itself, if it wants to
        sgt = dma_buf_map_attachment(dynamic, DMA_BIDIRECTIONAL)
        dma_buf_unmap_attachment(dynamic, sgt, DMA_BIDIRECTIONAL)
        dma_buf_pin(dynamic)
        assert dynamic.pinned == 1
        dma_buf_unpin(dynamic)
        with pytest.raises(KernelBug):
            dma_buf_unpin(dynamic)
        with pytest.raises(KernelBug, match="static"):
            dma_buf_pin(static)
    assert ops.calls == [("map", True), ("unmap", True), ("pin", True), ("unpin", True)]
    with pytest.raises(KernelBug, match="must be held"):
        dma_buf_pin(dynamic)
    dma_buf_detach(dmabuf, static)
    dma_buf_detach(dmabuf, dynamic)
    dma_buf_put(dmabuf)


def test_map_returning_none_is_enomem_and_undoes_the_pin(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel, TestExporter(with_pin=True, map_none=True))
    attach = dma_buf_attach(dmabuf, DEV)
    ops.calls.clear()
    with dmabuf.resv:
        assert errno_name(dma_buf_map_attachment, attach, DMA_TO_DEVICE) == "ENOMEM"
    assert attach.mapped == 0
    assert ops.names() == ["pin", "map", "unpin"]
    dma_buf_detach(dmabuf, attach)
    dma_buf_put(dmabuf)


def test_static_map_waits_for_kernel_fences(kernel: Kernel) -> None:
    dmabuf, _ = export(kernel)
    attach = dma_buf_attach(dmabuf, DEV)
    fence = DmaFence("drv", "tl", 1, context=kernel.new_id())
    with dmabuf.resv:
        dmabuf.resv.add_fence(fence, 0)  # DMA_RESV_USAGE_KERNEL
    import threading

    threading.Timer(0.05, fence.signal).start()
    with dmabuf.resv:
        sgt = dma_buf_map_attachment(attach, DMA_TO_DEVICE)
        assert fence.signaled  # the map returned only once the kernel fence signalled
        dma_buf_unmap_attachment(attach, sgt, DMA_TO_DEVICE)
    dma_buf_detach(dmabuf, attach)
    dma_buf_put(dmabuf)


# -- invalidate ------------------------------------------------------------------------
def test_invalidate_calls_only_dynamic_importers(kernel: Kernel) -> None:
    dmabuf, _ = export(kernel)
    revocable, pinned = TestImporter(), TestImporter(revocable=False)
    a1 = dma_buf_dynamic_attach(dmabuf, DEV, revocable)
    a2 = dma_buf_dynamic_attach(dmabuf, DEV, pinned)
    a3 = dma_buf_attach(dmabuf, DEV)
    a4 = dma_buf_dynamic_attach(dmabuf, Dev("second"), revocable)
    with pytest.raises(KernelBug, match="must be held"):
        dma_buf_invalidate_mappings(dmabuf)
    with dmabuf.resv:
        dma_buf_invalidate_mappings(dmabuf)
    assert revocable.invalidated == [a1, a4] and pinned.invalidated == []
    for a in (a1, a2, a3, a4):
        dma_buf_detach(dmabuf, a)
    dma_buf_put(dmabuf)


def test_importer_unmapping_inside_invalidate(kernel: Kernel) -> None:
    """The revoke protocol in a single thread: the importer unmaps from its callback."""
    dmabuf, _ = export(kernel)
    mapped: dict[int, object] = {}

    def unmap(attach: object) -> None:
        from mockkernel.driver import Attachment

        assert isinstance(attach, Attachment)
        dma_buf_unmap_attachment(attach, mapped.pop(attach.id), DMA_BIDIRECTIONAL)  # type: ignore[arg-type]

    imp = TestImporter(on_invalidate=unmap)
    attach = dma_buf_dynamic_attach(dmabuf, DEV, imp)
    with dmabuf.resv:
        mapped[attach.id] = dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL)
        dma_buf_invalidate_mappings(dmabuf)
    assert attach.mapped == 0 and mapped == {}
    dma_buf_detach(dmabuf, attach)
    dma_buf_put(dmabuf)


# -- TPH -------------------------------------------------------------------------------
def test_get_pci_tph(kernel: Kernel) -> None:
    without, _ = export(kernel)
    with_tph, ops = export(kernel, TestExporter(tph=(0x1234, 2)))
    with pytest.raises(KernelBug, match="must be held"):
        dma_buf_get_pci_tph(without, False)  # the lock is checked before the op
    with without.resv:
        assert errno_name(dma_buf_get_pci_tph, without, False) == "EOPNOTSUPP"
    with with_tph.resv:
        assert dma_buf_get_pci_tph(with_tph, True) == (0x1234, 2)
    assert ops.calls == [("get_pci_tph", True)]
    dma_buf_put(without)
    dma_buf_put(with_tph)


# -- release ---------------------------------------------------------------------------
@pytest.mark.parametrize("order", list(itertools.permutations(["fd", "get", "mapping"])))
def test_release_runs_once_after_the_last_reference(
    mock_kernel: Kernel, order: tuple[str, ...]
) -> None:
    dmabuf, ops = export(mock_kernel)
    proc = mock_kernel.init_process
    fd = dma_buf_fd(dmabuf, 0, proc)
    got = dma_buf_get(fd, proc)
    m = mmap.mmap(fd, 2 * PAGE)  # its hidden dup is one more reference, dropped with it
    assert dmabuf.file.f_count == 4
    drop = {"fd": lambda: os.close(fd), "get": lambda: dma_buf_put(got), "mapping": m.close}
    for i, what in enumerate(order):
        assert "release" not in ops.names()
        drop[what]()
        assert (dmabuf.id in dma_buf_subsys(mock_kernel).dmabufs) == (i < 2)
    assert ops.names().count("release") == 1 and dmabuf.priv.released == 1
    assert dmabuf.file.released


def test_detach_with_a_mapping_outstanding_is_reported_at_shutdown(kernel: Kernel) -> None:
    dmabuf, _ = export(kernel)
    attach = dma_buf_attach(dmabuf, DEV)
    with dmabuf.resv:
        dma_buf_map_attachment(attach, DMA_BIDIRECTIONAL)
    dma_buf_detach(dmabuf, attach)
    dma_buf_put(dmabuf)
    leaks = kernel.shutdown(check=False)
    assert len(leaks) == 1
    assert leaks[0].startswith("kernel warning: <Attachment #") and "1 mapping(s)" in leaks[0]


def test_release_with_attachments_is_reported(kernel: Kernel) -> None:
    dmabuf, ops = export(kernel)
    dma_buf_attach(dmabuf, DEV)
    dma_buf_put(dmabuf)
    assert ops.names() == ["attach", "release"]
    leaks = kernel.shutdown(check=False)
    assert any("released with 1 attachment(s)" in leak for leak in leaks)
    assert any(leak.startswith("attachment still attached") for leak in leaks)


# -- trace events ----------------------------------------------------------------------
def test_trace_events_name_the_objects(kernel: Kernel) -> None:
    with kernel.tracer.capture() as events:
        dmabuf, _ = export(kernel)
        imp = TestImporter()
        attach = dma_buf_dynamic_attach(dmabuf, DEV, imp)
        with dmabuf.resv:
            sgt = dma_buf_map_attachment(attach, DMA_TO_DEVICE)
            dma_buf_invalidate_mappings(dmabuf)
            dma_buf_unmap_attachment(attach, sgt, DMA_TO_DEVICE)
        dma_buf_detach(dmabuf, attach)
        dma_buf_put(dmabuf)
    mine = [
        {k: v for k, v in e.items() if k != "seq"}
        for e in events
        if e["event"].startswith("dma_buf.")
    ]
    d, a = dmabuf.id, attach.id
    assert mine == [
        {
            "event": "dma_buf.export",
            "dmabuf": d,
            "exp_name": "test-exp",
            "size": 2 * PAGE,
            "file": dmabuf.file.id,
        },
        {
            "event": "dma_buf.attach",
            "dmabuf": d,
            "attach": a,
            "dev": DEV.name,
            "dynamic": True,
            "peer2peer": True,
        },
        {"event": "dma_buf.map", "dmabuf": d, "attach": a, "direction": DMA_TO_DEVICE, "nents": 1},
        {"event": "dma_buf.invalidate", "dmabuf": d, "attachments": 1},
        {"event": "dma_buf.unmap", "dmabuf": d, "attach": a},
        {"event": "dma_buf.detach", "dmabuf": d, "attach": a},
        {"event": "dma_buf.release", "dmabuf": d},
    ]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
