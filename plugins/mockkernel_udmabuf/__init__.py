"""udmabuf: dma-bufs made of memfd pages (``drivers/dma-buf/udmabuf.c``).

``/dev/udmabuf`` answers ``UDMABUF_CREATE`` and ``UDMABUF_CREATE_LIST``: each
item names a page-aligned slice of a *real* memfd of the calling program,
which must be sealed with ``F_SEAL_SHRINK`` and not ``F_SEAL_WRITE``.  The
buffer keeps the pages (here: a kernel-held dup of the memfd and a kernel-side
mapping of each slice), so it outlives the memfd's fd, and ``mmap`` of the
dma-buf shows the same bytes as the memfd, in both directions.

A bundled plugin, loaded through the ``mockkernel`` entry-point group like any
other; it uses only :mod:`mockkernel.driver` and :mod:`mockkernel.uapi`.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
from dataclasses import dataclass, field
from errno import EBADF, EBADFD, EINVAL, EOVERFLOW

import mockkernel
from mockkernel.driver import (
    PAGE_SIZE,
    Attachment,
    DmaBuf,
    DmaBufOps,
    File,
    FileOperations,
    Kernel,
    KernelMap,
    SgEntry,
    SgTable,
    Vma,
    copy_from_user,
    dma_buf_export,
    dma_buf_fd,
    dma_buf_put,
    kernel_dup,
    kerr,
)
from mockkernel.uapi.linux.udmabuf import (
    UDMABUF_CREATE,
    UDMABUF_CREATE_LIST,
    UDMABUF_FLAGS_CLOEXEC,
    udmabuf_create,
    udmabuf_create_item,
    udmabuf_create_list,
)

__all__ = ["LIST_LIMIT", "SIZE_LIMIT_MB", "UdmabufOps", "mockkernel_register"]

#: module parameters of udmabuf.ko, with their defaults
LIST_LIMIT = 1024
SIZE_LIMIT_MB = 64

_F_GET_SEALS = 1034
_F_SEAL_SHRINK = 0x0002
_F_SEAL_WRITE = 0x0008
_F_SEAL_FUTURE_WRITE = 0x0010
_SEALS_WANTED = _F_SEAL_SHRINK
_SEALS_DENIED = _F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE

# Pretend physical addresses for the pages: only stable and distinct need they be.
_SYSRAM_BASE = 0x1_0000_0000


@dataclass
class _Slice:
    fd: int  # the kernel's own dup of the memfd
    offset: int
    size: int
    view: KernelMap  # the kernel's mapping of the slice (its pinned pages)


@dataclass
class Udmabuf:
    slices: list[_Slice] = field(default_factory=list)
    size: int = 0
    dma_base: int = 0

    def close(self) -> None:
        for s in self.slices:
            s.view.close()
            os.close(s.fd)
        self.slices.clear()


class UdmabufOps(DmaBufOps):
    """``udmabuf_ops``: no attach or pin op, so every importer may attach."""

    def map_dma_buf(self, attach: Attachment, direction: int) -> SgTable:
        ubuf: Udmabuf = attach.dmabuf.priv
        sgt = SgTable()
        addr = ubuf.dma_base
        for s in ubuf.slices:
            sgt.entries.append(SgEntry(addr, s.size, s.view))
            addr += s.size
        return sgt

    def unmap_dma_buf(self, attach: Attachment, sgt: SgTable, direction: int) -> None:
        """Nothing to tear down: the pages stay pinned until release."""

    def release(self, dmabuf: DmaBuf) -> None:
        ubuf: Udmabuf = dmabuf.priv
        ubuf.close()

    def mmap(self, dmabuf: DmaBuf, vma: Vma) -> None:
        if not vma.flags & mmap.MAP_SHARED:
            raise kerr(EINVAL)
        ubuf: Udmabuf = dmabuf.priv
        start, end = vma.offset, vma.offset + vma.length
        pos = 0
        for s in ubuf.slices:
            lo, hi = max(start, pos), min(end, pos + s.size)
            if lo < hi:
                vma.remap(s.fd, s.offset + (lo - pos), hi - lo)
            pos += s.size

    def begin_cpu_access(self, dmabuf: DmaBuf, direction: int) -> None:
        """Coherent memory here: nothing to flush."""

    def end_cpu_access(self, dmabuf: DmaBuf, direction: int) -> None:
        """Coherent memory here: nothing to flush."""


_ops = UdmabufOps()


def _check_memfd_seals(kernel: Kernel, fd: int) -> None:
    """``check_memfd_seals``: EBADFD unless a shmem file, EINVAL unless the right seals."""
    if fd in kernel.current.files:
        raise kerr(EBADFD)  # a mock file is never a shmem file
    try:
        seals = fcntl.fcntl(fd, _F_GET_SEALS)
    except OSError as e:
        if e.errno == EBADF:
            raise kerr(EBADF) from None
        raise kerr(EBADFD) from None
    if (seals & _SEALS_WANTED) != _SEALS_WANTED or seals & _SEALS_DENIED:
        raise kerr(EINVAL)


def create_udmabuf(kernel: Kernel, flags: int, items: list[tuple[int, int, int]]) -> int:
    """Make a dma-buf of ``items`` (memfd, offset, size); returns the new fd."""
    pglimit = (SIZE_LIMIT_MB * 1024 * 1024) // PAGE_SIZE
    pgcnt = 0
    for _memfd, offset, size in items:
        if offset % PAGE_SIZE or size % PAGE_SIZE:
            raise kerr(EINVAL)
        pgcnt += size // PAGE_SIZE
        if pgcnt > pglimit:
            raise kerr(EINVAL)
    if not pgcnt:
        raise kerr(EINVAL)
    ubuf = Udmabuf()
    try:
        for memfd, offset, size in items:
            if memfd < 0 or memfd > 0x7FFFFFFF:
                raise kerr(EBADF)
            _check_memfd_seals(kernel, memfd)
            if size == 0:
                continue
            if offset + size > os.fstat(memfd).st_size:
                raise kerr(EINVAL)
            kfd = kernel_dup(memfd)
            try:
                view = KernelMap(kfd, size, offset)
            except OSError:
                os.close(kfd)
                raise kerr(EOVERFLOW) from None
            ubuf.slices.append(_Slice(kfd, offset, size, view))
            ubuf.size += size
        ubuf.dma_base = _SYSRAM_BASE + kernel.new_id() * (1 << 32)
        dmabuf = dma_buf_export(kernel, _ops, ubuf.size, ubuf, "udmabuf", os.O_RDWR)
    except BaseException:
        ubuf.close()
        raise
    try:
        return dma_buf_fd(dmabuf, os.O_CLOEXEC if flags & UDMABUF_FLAGS_CLOEXEC else 0)
    except BaseException:
        dma_buf_put(dmabuf)
        raise


def _ioctl_create(file: File, cmd: int, arg: int) -> int:
    c = udmabuf_create.from_buffer_copy(copy_from_user(arg, ctypes.sizeof(udmabuf_create)))
    return create_udmabuf(file.kernel, c.flags, [(c.memfd, c.offset, c.size)])


def _ioctl_create_list(file: File, cmd: int, arg: int) -> int:
    head = udmabuf_create_list.from_buffer_copy(
        copy_from_user(arg, ctypes.sizeof(udmabuf_create_list))
    )
    if head.count > LIST_LIMIT:
        raise kerr(EINVAL)
    isz = ctypes.sizeof(udmabuf_create_item)
    raw = copy_from_user(arg + ctypes.sizeof(udmabuf_create_list), isz * head.count)
    items = [udmabuf_create_item.from_buffer_copy(raw, i * isz) for i in range(head.count)]
    return create_udmabuf(file.kernel, head.flags, [(i.memfd, i.offset, i.size) for i in items])


class UdmabufDevOps(FileOperations):
    """The fops of ``/dev/udmabuf`` (a misc device)."""

    name = "udmabuf"
    ioctls = {UDMABUF_CREATE: _ioctl_create, UDMABUF_CREATE_LIST: _ioctl_create_list}


def _init(kernel: Kernel) -> None:
    kernel.misc_register("udmabuf", UdmabufDevOps(), 0o660)


def _exit(kernel: Kernel) -> None:
    kernel.misc_deregister("udmabuf")


@mockkernel.hookimpl
def mockkernel_register(registry: mockkernel.driver.DriverRegistry) -> None:
    registry.add_module("udmabuf", _init, _exit)
