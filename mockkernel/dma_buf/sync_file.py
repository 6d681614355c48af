"""Sync files (``drivers/dma-buf/sync_file.c``): a fence handed to userspace as an fd.

A sync file is an anon file holding one fence (maybe an array).  It polls readable once
the fence signals and answers ``SYNC_IOC_MERGE``, ``SYNC_IOC_FILE_INFO`` and
``SYNC_IOC_SET_DEADLINE``; the numbers and layouts are the ABI-checked mirror's
(:mod:`mockkernel.uapi.linux.sync_file`).  The dma-buf file makes them with
``DMA_BUF_IOCTL_EXPORT_SYNC_FILE`` and takes them back with ``..._IMPORT_SYNC_FILE``.
"""

from __future__ import annotations

import ctypes
from errno import EINVAL, ENOENT
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_READ, File, FileOperations, Inode
from ..poll import EPOLLIN
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_to_user
from ..uapi.linux.sync_file import (
    SYNC_IOC_FILE_INFO,
    SYNC_IOC_MERGE,
    SYNC_IOC_SET_DEADLINE,
    sync_fence_info,
    sync_file_info,
    sync_merge_data,
    sync_set_deadline,
)
from .fence import DmaFence, dma_fence_unwrap, dma_fence_unwrap_merge

if TYPE_CHECKING:
    from ..process import Process, TaskContext

__all__ = ["SyncFile", "sync_file_create", "sync_file_fops", "sync_file_get_fence"]

trace_sync_file_merge = TracePoint(
    "dma_buf.sync_file_merge", "file", "other", "merged", "name", "fences"
)
trace_sync_file_deadline = TracePoint("dma_buf.sync_file_deadline", "file", "deadline_ns")

#: ``char name[32]`` of the uapi structs (no macro names it)
SYNC_NAME_LEN: int = sync_merge_data.name.size
_NAME_OFFSET: int = sync_file_info.name.offset


class SyncFile:
    """``struct sync_file``: the anon file, the one fence it holds, and the name a merge
    gave it (``user_name``, empty otherwise).  It is the file's ``private_data``."""

    __slots__ = ("fence", "file", "user_name")

    def __init__(self, fence: DmaFence, user_name: bytes = b"") -> None:
        self.fence = fence
        self.user_name = user_name
        self.file: File

    def __repr__(self) -> str:
        return f"<SyncFile {self.get_name()!r} fence {self.fence.context}:{self.fence.seqno}>"

    def get_name(self) -> str:
        """``sync_file_get_name``: the merge's name, else ``driver-timeline<context>-<seqno>``
        of the fence (names of a signalled fence: ``detached-driver``,
        ``signaled-timeline``), cut to 31 bytes."""
        return self._name_bytes().decode("utf-8", "replace")

    def _name_bytes(self) -> bytes:
        if self.user_name:
            return self.user_name[: SYNC_NAME_LEN - 1]
        f = self.fence
        seqno = f.seqno - (1 << 64) if f.seqno >= 1 << 63 else f.seqno  # %lld
        name = f"{f.driver_name()}-{f.timeline_name()}{f.context}-{seqno}"
        return name.encode()[: SYNC_NAME_LEN - 1]


def sync_file_create(kernel: TaskContext, fence: DmaFence, user_name: bytes = b"") -> SyncFile:
    """``sync_file_create``: a sync file holding ``fence``; one file reference, no fd."""
    sf = SyncFile(fence, user_name)
    # anon_inode_getfile("sync_file", ..., 0): opened O_RDONLY
    sf.file = File(
        kernel, sync_file_fops, Inode(kernel.new_id(), 0o600, dev=0x10), 0, FMODE_READ, sf
    )
    return sf


def _sync_file_fdget(proc: Process, fd: int) -> File[SyncFile] | None:
    """``sync_file_fdget``: the sync file at ``fd`` with a reference, else ``None``."""
    file = proc.files.get(fd)
    if file is None or file.f_op is not sync_file_fops:
        return None
    return file.get()


def sync_file_get_fence(proc: Process, fd: int) -> DmaFence | None:
    """``sync_file_get_fence``: the fence of the sync file at ``fd``, else ``None``."""
    file = _sync_file_fdget(proc, fd)
    if file is None:
        return None
    fence = file.private_data.fence
    file.put()
    return fence


def sync_file_ioctl_merge(file: File[SyncFile], cmd: int, arg: int) -> int:
    """``sync_file_ioctl_merge``: a new ``O_CLOEXEC`` sync file of this file's fences and
    ``fd2``'s (``dma_fence_unwrap_merge``), named by the caller.  The fd is reserved
    first (``EMFILE``); then ``EFAULT``, flags/pad ``EINVAL``, ``fd2`` not a sync file
    ``ENOENT``; the whole struct is copied back with ``fence`` set."""
    sf = file.private_data
    k = file.kernel
    proc = k.current
    fd = proc.get_unused_fd(cloexec=True, label="sync_file")
    try:
        buf = bytearray(copy_from_user(arg, ctypes.sizeof(sync_merge_data)))
        data = sync_merge_data.from_buffer(buf)
        if data.flags or data.pad:
            raise kerr(EINVAL)
        fd2 = data.fd2
        other = _sync_file_fdget(proc, fd2)
        if other is None:
            raise kerr(ENOENT)
    except BaseException:
        proc.fdt.put_unused(fd)
        raise
    try:
        buf[SYNC_NAME_LEN - 1] = 0  # data.name[31] = 0, copied back too
        fence = dma_fence_unwrap_merge(k, sf.fence, other.private_data.fence)
        merged = sync_file_create(k, fence, data.name)  # c_char[]: up to the NUL
        try:
            data.fence = fd
            copy_to_user(arg, buf)
        except BaseException:
            merged.file.put()
            raise
    except BaseException:
        proc.fdt.put_unused(fd)
        raise
    finally:
        other.put()
    proc.fd_install(fd, merged.file)
    if k.tracer.enabled:  # (the name and the count are work: none while off)
        trace_sync_file_merge(
            k.tracer,
            file.id,
            other.id,
            merged.file.id,
            merged.get_name(),
            len(dma_fence_unwrap(fence)),
        )
    return 0


def sync_fill_fence_info(fence: DmaFence) -> sync_fence_info:
    """``sync_fill_fence_info``: one ``struct sync_fence_info`` (its status inside)."""
    return sync_fence_info(
        obj_name=fence.timeline_name().encode()[: SYNC_NAME_LEN - 1],
        driver_name=fence.driver_name().encode()[: SYNC_NAME_LEN - 1],
        status=fence.get_status(),
        flags=0,
        timestamp_ns=fence.timestamp if fence.signaled else 0,
    )


def sync_file_ioctl_fence_info(file: File[SyncFile], cmd: int, arg: int) -> int:
    """``sync_file_ioctl_fence_info``: flags/pad ``EINVAL``; ``num_fences`` 0 asks only
    for the count (status of the file's fence); fewer than the fences ``EINVAL``; else
    one ``sync_fence_info`` per fence at the user pointer (status: 1, or the first
    that is not positive).  The name, status and count are copied back."""
    sf = file.private_data
    buf = bytearray(copy_from_user(arg, ctypes.sizeof(sync_file_info)))
    info = sync_file_info.from_buffer(buf)
    if info.flags or info.pad:
        raise kerr(EINVAL)
    fences = dma_fence_unwrap(sf.fence)
    if not info.num_fences:
        status = sf.fence.get_status()
    else:
        if info.num_fences < len(fences):
            raise kerr(EINVAL)
        status = 1
        out = bytearray()
        for f in fences:
            one = sync_fill_fence_info(f)
            out += bytes(one)
            status = status if status <= 0 else one.status
        copy_to_user(info.sync_fence_info, out)
    # strscpy/snprintf into info.name: the bytes after the NUL stay as the user left them
    new = sf._name_bytes() + b"\0"
    buf[_NAME_OFFSET : _NAME_OFFSET + len(new)] = new
    info.status = status
    info.num_fences = len(fences)
    copy_to_user(arg, buf)
    return 0


def sync_file_ioctl_set_deadline(file: File[SyncFile], cmd: int, arg: int) -> int:
    """``sync_file_ioctl_set_deadline``: pad ``EINVAL``; a hint passed to the fence."""
    sf = file.private_data
    ts = sync_set_deadline.from_buffer_copy(copy_from_user(arg, ctypes.sizeof(sync_set_deadline)))
    if ts.pad:
        raise kerr(EINVAL)
    sf.fence.set_deadline(ts.deadline_ns)
    trace_sync_file_deadline(file.kernel.tracer, file.id, ts.deadline_ns)
    return 0


class SyncFileOps(FileOperations):
    """``sync_file_fops``: poll and the three ``SYNC_IOC_*`` ioctls; nothing else."""

    name = "sync_file"
    ioctls = {
        SYNC_IOC_MERGE: sync_file_ioctl_merge,
        SYNC_IOC_FILE_INFO: sync_file_ioctl_fence_info,
        SYNC_IOC_SET_DEADLINE: sync_file_ioctl_set_deadline,
    }

    def poll(self, file: File[SyncFile]) -> int:
        """``sync_file_poll``: readable once the fence has signalled."""
        sf = file.private_data
        return EPOLLIN if sf.fence.signaled else 0


sync_file_fops = SyncFileOps()
