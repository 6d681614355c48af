"""Sync files (``drivers/dma-buf/sync_file.c``): ``SYNC_IOC_MERGE``, ``SYNC_IOC_FILE_INFO``,
``SYNC_IOC_SET_DEADLINE`` and ``dma_fence_unwrap_merge``, with unsignalled fences.

The real-Linux probe (``tests/real_linux/probes/sync_file.py``) can only make signalled
stub fences (a udmabuf has no others); these tests give the sync files driver fences
(``DmaFence``, ``sync_file_create``) to cover what it cannot: pending and failed fences,
arrays, de-duplication by context, ``num_fences`` too small, deadlines, poll.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import struct
from errno import EIO

import pytest
from dmabuf_testing import errno_name, export

from mockkernel import Kernel
from mockkernel.dma_buf import DmaFenceArray
from mockkernel.driver import (
    DmaFence,
    SyncFile,
    dma_buf_fd,
    dma_fence_unwrap_merge,
    sync_file_create,
    sync_file_get_fence,
)
from mockkernel.uapi.linux.dma_buf import DMA_BUF_IOCTL_IMPORT_SYNC_FILE, dma_buf_import_sync_file
from mockkernel.uapi.linux.sync_file import (
    SYNC_IOC_FILE_INFO,
    SYNC_IOC_MERGE,
    SYNC_IOC_SET_DEADLINE,
    sync_fence_info,
    sync_file_info,
    sync_merge_data,
    sync_set_deadline,
)


def new_fence(kernel: Kernel, seqno: int = 1, context: int | None = None) -> DmaFence:
    return DmaFence("drv", "tl", seqno, kernel.new_id() if context is None else context)


def install(kernel: Kernel, fence: DmaFence, name: bytes = b"") -> int:
    sf = sync_file_create(kernel, fence, name)
    return kernel.current.install_file(sf.file, True)


def merge(fd: int, fd2: int, name: bytes = b"") -> int:
    data = sync_merge_data(name=name, fd2=fd2, fence=-1)
    fcntl.ioctl(fd, SYNC_IOC_MERGE, data)
    assert data.fence >= 0
    return int(data.fence)


def info(fd: int, num_fences: int | None = None) -> tuple[sync_file_info, list[sync_fence_info]]:
    """FILE_INFO: a count query, then (``num_fences`` or the count) entries."""
    q = sync_file_info()
    fcntl.ioctl(fd, SYNC_IOC_FILE_INFO, q)
    n = q.num_fences if num_fences is None else num_fences
    arr = (sync_fence_info * max(n, 1))()
    full = sync_file_info(num_fences=n, sync_fence_info=ctypes.addressof(arr))
    fcntl.ioctl(fd, SYNC_IOC_FILE_INFO, full)
    return full, list(arr)[: full.num_fences]


# -- dma_fence_unwrap_merge (kernel API) -----------------------------------------------------
def test_merge_of_a_pending_and_a_signalled_fence_is_the_pending_one(kernel: Kernel) -> None:
    pending = new_fence(kernel)
    assert dma_fence_unwrap_merge(kernel, pending, DmaFence.stub()) is pending
    assert dma_fence_unwrap_merge(kernel, pending, pending) is pending
    pending.signal()


def test_merge_keeps_the_latest_fence_of_each_context(kernel: Kernel) -> None:
    ctx_a, ctx_b = kernel.new_id(), kernel.new_id()
    a1, a2 = new_fence(kernel, 1, ctx_a), new_fence(kernel, 2, ctx_a)
    b5 = new_fence(kernel, 5, ctx_b)
    merged = dma_fence_unwrap_merge(kernel, DmaFenceArray([b5, a2]), a1)
    assert isinstance(merged, DmaFenceArray)
    assert merged.fences == [a2, b5]  # sorted by context, a1 dropped
    assert merged.seqno == 1 and merged.context not in (ctx_a, ctx_b, 0)
    assert not merged.signaled
    for f in (a1, a2, b5):
        f.signal()
    assert merged.signaled and merged.timestamp == max(a2.timestamp, b5.timestamp)


def test_merge_of_signalled_fences_is_a_private_stub(kernel: Kernel) -> None:
    a, b = new_fence(kernel), new_fence(kernel)
    a.signal()
    b.signal()
    merged = dma_fence_unwrap_merge(kernel, a, b)
    assert merged not in (a, b, DmaFence.stub())
    assert merged.signaled and merged.seqno == 0 and merged.context != 0
    assert merged.timestamp == max(a.timestamp, b.timestamp)


def test_the_stub_is_one_signalled_fence() -> None:
    stub = DmaFence.stub()
    assert stub is DmaFence.stub()
    assert (stub.context, stub.seqno, stub.get_status()) == (0, 0, 1)
    assert stub.timestamp > 0
    assert (stub.driver_name(), stub.timeline_name()) == ("detached-driver", "signaled-timeline")


def test_fence_error_rules(kernel: Kernel) -> None:
    f = new_fence(kernel)
    with pytest.raises(Exception, match="negative errno"):
        f.set_error(EIO)
    f.set_error(-EIO)
    assert f.get_status() == 0  # still active
    f.signal()
    assert f.get_status() == -EIO
    with pytest.raises(Exception, match="signalled"):
        f.set_error(-EIO)


# -- the ioctls with pending fences ----------------------------------------------------------
def test_merge_and_file_info_of_pending_fences(mock_kernel: Kernel) -> None:
    f1, f2 = new_fence(mock_kernel, 3), new_fence(mock_kernel, 4)
    a, b = install(mock_kernel, f1), install(mock_kernel, f2)
    m = merge(a, b, b"both")
    try:
        merged = mock_kernel.current.files[m].private_data
        assert isinstance(merged, SyncFile) and isinstance(merged.fence, DmaFenceArray)
        assert sync_file_get_fence(mock_kernel.current, m) is merged.fence
        q = sync_file_info()
        fcntl.ioctl(m, SYNC_IOC_FILE_INFO, q)
        assert (q.name, q.status, q.num_fences) == (b"both", 0, 2)
        assert errno_name(info, m, 1) == "EINVAL"  # fewer slots than fences
        full, fences = info(m)
        assert (full.status, full.num_fences) == (0, 2)
        assert [(x.obj_name, x.driver_name, x.status, x.timestamp_ns) for x in fences] == [
            (b"tl", b"drv", 0, 0),
            (b"tl", b"drv", 0, 0),
        ]
        f1.signal()
        full, fences = info(m)
        assert full.status == 0 and [x.status for x in fences] == [1, 0]
        assert fences[0].obj_name == b"signaled-timeline" and fences[0].timestamp_ns > 0
        f2.set_error(-EIO)
        f2.signal()
        full, fences = info(m)
        assert full.status == -EIO and [x.status for x in fences] == [1, -EIO]
        q = sync_file_info()
        fcntl.ioctl(m, SYNC_IOC_FILE_INFO, q)
        assert q.status == -EIO  # the array's error
    finally:
        for fd in (a, b, m):
            os.close(fd)


def test_unnamed_sync_file_names(mock_kernel: Kernel) -> None:
    """``sync_file_get_name``: ``driver-timeline<context>-<seqno>``, cut to 31 bytes."""
    f = new_fence(mock_kernel, 7)
    g = new_fence(mock_kernel, 9)
    a, b = install(mock_kernel, f), install(mock_kernel, g)
    m = merge(a, b)
    try:
        assert info(a)[0].name == f"drv-tl{f.context}-7".encode()
        arr = mock_kernel.current.files[m].private_data.fence
        assert info(m)[0].name == f"dma_fence_array-unbound{arr.context}-1".encode()[:31]
        f.signal()
        g.signal()
        assert info(a)[0].name == b"detached-driver-signaled-timeli"
    finally:
        for fd in (a, b, m):
            os.close(fd)


def test_poll_of_a_merged_sync_file(mock_kernel: Kernel) -> None:
    f1, f2 = new_fence(mock_kernel), new_fence(mock_kernel)
    a, b = install(mock_kernel, f1), install(mock_kernel, f2)
    m = merge(a, b, b"poll")
    try:
        p = select.poll()
        p.register(m, select.POLLIN)
        assert p.poll(0) == []
        f1.signal()
        assert p.poll(0) == []
        f2.signal()
        assert p.poll(0) == [(m, select.POLLIN)]
    finally:
        for fd in (a, b, m):
            os.close(fd)


def test_set_deadline(mock_kernel: Kernel) -> None:
    f1, f2 = new_fence(mock_kernel), new_fence(mock_kernel)
    f2.signal()
    a, b = install(mock_kernel, f1), install(mock_kernel, f2)
    m = merge(a, b)  # f2 is signalled: the merge is f1 itself
    try:
        assert mock_kernel.current.files[m].private_data.fence is f1
        assert fcntl.ioctl(m, SYNC_IOC_SET_DEADLINE, sync_set_deadline(2000)) == 0
        assert fcntl.ioctl(a, SYNC_IOC_SET_DEADLINE, sync_set_deadline(5000)) == 0
        assert fcntl.ioctl(b, SYNC_IOC_SET_DEADLINE, sync_set_deadline(1)) == 0
        assert (f1.deadline, f2.deadline) == (2000, None)  # the earliest; none once signalled
        bad = sync_set_deadline(1, 1)
        assert errno_name(fcntl.ioctl, a, SYNC_IOC_SET_DEADLINE, bad) == "EINVAL"
        assert errno_name(fcntl.ioctl, a, SYNC_IOC_SET_DEADLINE, 16) == "EFAULT"
        f1.signal()
    finally:
        for fd in (a, b, m):
            os.close(fd)


def test_import_of_a_merged_sync_file_adds_each_fence(mock_kernel: Kernel) -> None:
    dmabuf, _ = export(mock_kernel)
    buf = dma_buf_fd(dmabuf, os.O_CLOEXEC)
    f1, f2 = new_fence(mock_kernel), new_fence(mock_kernel)
    a, b = install(mock_kernel, f1), install(mock_kernel, f2)
    m = merge(a, b)
    try:
        arg = dma_buf_import_sync_file(flags=2, fd=m)  # WRITE
        assert fcntl.ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, arg) == 0
        assert dmabuf.resv.fences == [(f1, 1), (f2, 1)]  # unwrapped, not the array
    finally:
        f1.signal()
        f2.signal()
        for fd in (a, b, m, buf):
            os.close(fd)


def test_failed_merges_leave_nothing(mock_kernel: Kernel) -> None:
    f = new_fence(mock_kernel)
    a = install(mock_kernel, f)
    live = len(mock_kernel.live_files)
    try:
        data = sync_merge_data(name=b"x", fd2=a, fence=-1)
        assert errno_name(fcntl.ioctl, a, SYNC_IOC_MERGE, 16) == "EFAULT"
        data.flags = 1
        assert errno_name(fcntl.ioctl, a, SYNC_IOC_MERGE, data) == "EINVAL"
        data.flags, data.fd2 = 0, 1000
        assert errno_name(fcntl.ioctl, a, SYNC_IOC_MERGE, data) == "ENOENT"
        assert len(mock_kernel.live_files) == live  # no sync file made, no fd taken
        raw = bytes(sync_merge_data(name=b"ro", fd2=a, fence=-1))
        out = fcntl.ioctl(a, SYNC_IOC_MERGE, raw)
        fd = struct.unpack_from("<i", out, 36)[0]
        assert info(fd)[0].name == b"ro"
        os.close(fd)
        assert len(mock_kernel.live_files) == live
    finally:
        f.signal()
        os.close(a)


def test_merge_trace_event(mock_kernel: Kernel) -> None:
    a = install(mock_kernel, DmaFence.stub())
    with mock_kernel.tracer.capture() as events:
        m = merge(a, a, b"traced")
        fcntl.ioctl(m, SYNC_IOC_SET_DEADLINE, sync_set_deadline(10))
    try:
        mine = [
            {k: v for k, v in e.items() if k not in ("seq", "file", "other", "merged")}
            for e in events
            if e["event"].startswith("dma_buf.")
        ]
        assert mine == [
            {"event": "dma_buf.sync_file_merge", "name": "traced", "fences": 1},
            {"event": "dma_buf.sync_file_deadline", "deadline_ns": 10},
        ]
    finally:
        os.close(a)
        os.close(m)


def test_core_numbers_are_the_uapi_mirrors() -> None:
    """The sync_file and dma-buf files answer exactly the ABI-checked mirror's numbers, and
    no file of the dma-buf core re-types a layout (``struct.Struct``) or an ioctl number."""
    import re
    from pathlib import Path

    from mockkernel.dma_buf import core, sync_file
    from mockkernel.uapi.linux import dma_buf as uapi

    assert set(sync_file.sync_file_fops.ioctls) == {
        SYNC_IOC_MERGE,
        SYNC_IOC_FILE_INFO,
        SYNC_IOC_SET_DEADLINE,
    }
    assert set(core.dma_buf_fops.ioctls) == {
        uapi.DMA_BUF_IOCTL_SYNC,
        uapi.DMA_BUF_SET_NAME_A,
        uapi.DMA_BUF_SET_NAME_B,
        uapi.DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
        uapi.DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
    }
    for path in Path(core.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "struct.Struct" not in text, path.name
        assert not re.search(r"\b0x[0-9a-fA-F]{8}\b", text), path.name
