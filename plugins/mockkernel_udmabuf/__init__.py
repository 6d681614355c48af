"""udmabuf: dma-bufs made of memfd pages (``drivers/dma-buf/udmabuf.c``).

``/dev/udmabuf`` answers ``UDMABUF_CREATE`` and ``UDMABUF_CREATE_LIST``: each
item names a page-aligned slice of a *real* memfd of the calling program,
which must be sealed with ``F_SEAL_SHRINK`` and not ``F_SEAL_WRITE``.  The
buffer keeps the pages (here: a kernel-side mapping of each slice, and the
kernel's own read-write open of each distinct memfd), so it outlives the
memfd's fd, and ``mmap`` of the dma-buf shows the same bytes as the memfd, in
both directions.

The pages are *pinned* (``memfd_pin_folios``): a hole punched in the memfd later
takes the pages out of the memfd but not out of the buffer, which keeps their data
and from then on is no longer coherent with the memfd in that range.  The core
moves such pages to kernel-private backing before the punch (where a front-end sees
it coming: ``mockkernel/gup.py``) and tells the buffer, which lays its userspace
mappings over the new backing (:meth:`Udmabuf.pages_moved`).

A slice of a hugetlb memfd (``MFD_HUGETLB``) is created, pinned and imported like
Linux does it (the kernel's view maps whole huge pages), but a userspace ``mmap`` of
the dma-buf cannot be laid: Linux inserts the 4 KiB subpages of a huge folio one by
one, and a real mapping of a hugetlb file takes whole, aligned huge pages only.  That
``mmap`` is refused with ``ENODEV`` (what ``mmap`` says for a file it cannot map) and
a ``udmabuf.mmap_unmodelled`` trace event naming the slice (docs/supervisor.md,
"Kernel selftests": the upstream selftest's test-6 and test-7).

A bundled plugin, loaded through the ``mockkernel`` entry-point group like any
other; it uses only :mod:`mockkernel.driver` and :mod:`mockkernel.uapi`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from errno import EBADFD, EINVAL, ENODEV

import mockkernel
from mockkernel.driver import (
    PAGE_SIZE,
    Attachment,
    DmaBuf,
    DmaBufOps,
    Fabric,
    File,
    FileOperations,
    Kernel,
    KernelMap,
    PinnedFolios,
    SgEntry,
    SgTable,
    TracePoint,
    Vma,
    copy_from_user,
    dma_buf_export,
    dma_buf_fd,
    dma_buf_put,
    fdget_real,
    file_mappings,
    hide,
    kernel_close,
    kerr,
    kstrtoint,
    memfd_pin_folios,
    misc_deregister,
    misc_register,
    pci_fabric,
    sysfs_create_dir,
    sysfs_create_file,
    sysfs_remove_dir,
    unpin_folios,
)
from mockkernel.uapi.linux.udmabuf import (
    UDMABUF_CREATE,
    UDMABUF_CREATE_LIST,
    UDMABUF_FLAGS_CLOEXEC,
    udmabuf_create,
    udmabuf_create_item,
    udmabuf_create_list,
)

__all__ = ["LIST_LIMIT", "SIZE_LIMIT_MB", "UdmabufDevOps", "UdmabufOps", "mockkernel_register"]

#: module parameters of udmabuf.ko, with their defaults
LIST_LIMIT = 1024
SIZE_LIMIT_MB = 64

_F_GET_SEALS = 1034
_F_SEAL_SHRINK = 0x0002
_F_SEAL_WRITE = 0x0008
_F_SEAL_FUTURE_WRITE = 0x0010
_SEALS_WANTED = _F_SEAL_SHRINK
_SEALS_DENIED = _F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE
_LOFF_MAX = (1 << 63) - 1  # offsets are loff_t in memfd_pin_folios: past this, negative

# Pretend physical addresses for the pages: only stable and distinct need they be.
_SYSRAM_BASE = 0x1_0000_0000

_MemfdKey = tuple[int, int]  # (st_dev, st_ino): one memfd, whatever fd names it


class MemfdTable:
    """The kernel's own fds of the memfds behind live buffers: one per memfd, refcounted.

    A buffer needs a real fd of its memfd to lay its pages into a user mapping.
    The fd the caller passed may be read-only (a memfd reopened ``O_RDONLY``
    through ``/proc/self/fd``) and may be closed at any time, so the kernel
    opens the memfd afresh, read-write, through ``/proc/self/fd/N``, once per
    memfd (keyed by ``(st_dev, st_ino)``): a list of 1024 items of one memfd
    holds one fd, not 1024 of the high fd numbers the kernel hides its own in.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel  # (it holds the fds)
        self._fds: dict[_MemfdKey, list[int]] = {}  # key -> [fd, references]

    def __len__(self) -> int:
        return len(self._fds)

    def get(self, memfd: int) -> tuple[_MemfdKey, int]:
        st = os.fstat(memfd)
        key = (st.st_dev, st.st_ino)
        entry = self._fds.get(key)
        if entry is None:
            fd = hide(self.kernel, os.open(f"/proc/self/fd/{memfd}", os.O_RDWR | os.O_CLOEXEC))
            entry = self._fds[key] = [fd, 0]
        entry[1] += 1
        return key, entry[0]

    def put(self, key: _MemfdKey) -> None:
        entry = self._fds[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self._fds[key]
            kernel_close(self.kernel, entry[0])

    def close(self) -> None:
        for fd, _refs in self._fds.values():
            kernel_close(self.kernel, fd)
        self._fds.clear()


@dataclass
class _Slice:
    key: _MemfdKey
    fd: int  # the kernel's fd of the memfd (shared, see MemfdTable)
    offset: int
    size: int
    pin: PinnedFolios  # the slice's pinned pages (its kernel view: ``pin.view``)
    #: the memfd's page size (``st_blksize``): above ``PAGE_SIZE`` for a hugetlb memfd,
    #: whose pages a userspace mapping cannot lay in 4 KiB pieces
    page: int = PAGE_SIZE

    @property
    def view(self) -> KernelMap:
        """The kernel's mapping of the slice's pinned pages (a fixed address)."""
        return self.pin.view


@dataclass
class Udmabuf:
    memfds: MemfdTable
    slices: list[_Slice] = field(default_factory=list)
    size: int = 0
    dma_base: int = 0
    #: the fabric the pages are system RAM of (a device DMA to their bus addresses lands)
    fabric: Fabric | None = None
    #: the sg table ``begin_cpu_access`` makes on first use (``ubuf->sg``)
    sg: bool = False
    #: the exported buffer (``None`` until ``dma_buf_export``)
    dmabuf: DmaBuf | None = None

    def segments(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """What backs bytes ``[start, end)`` of the buffer now, as ``Vma.remap`` pieces."""
        slices = self.slices
        if len(slices) == 1:  # (UDMABUF_CREATE: one slice, the common case)
            return slices[0].pin.segments(start, end)
        out = []
        pos = 0
        for s in self.slices:
            lo, hi = max(start, pos), min(end, pos + s.size)
            if lo < hi:
                out += s.pin.segments(lo - pos, hi - pos)
            pos += s.size
        return out

    def pages_moved(self) -> None:
        """A punch moved some pinned pages to kernel-private backing (``on_move``): lay
        every userspace mapping of the buffer over what backs it now (its kernel views,
        and so its sg entries and fabric RAM, were switched in place already)."""
        dmabuf = self.dmabuf
        if dmabuf is None:
            return
        file = dmabuf.file
        seen: set[int] = set()
        for mp in file_mappings(dmabuf.kernel, lambda f: f is file):
            if id(mp) not in seen:  # (a vfork child shares its parent's records)
                seen.add(id(mp))
                start = mp.pgoff * PAGE_SIZE
                mp.remap(self.segments(start, start + mp.length))

    def close(self) -> None:
        if self.fabric is not None:
            addr = self.dma_base
            for s in self.slices:
                self.fabric.remove_ram(addr)
                addr += s.size
            self.fabric = None
        for s in self.slices:
            unpin_folios(s.pin)
            self.memfds.put(s.key)
        self.slices.clear()


trace_udmabuf_mmap_unmodelled = TracePoint(
    "udmabuf.mmap_unmodelled", "dmabuf", "offset", "size", "reason"
)


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
        if not vma.flags & mmap.MAP_SHARED:  # VM_SHARED | VM_MAYSHARE
            raise kerr(EINVAL)
        ubuf: Udmabuf = dmabuf.priv
        start = vma.pgoff * PAGE_SIZE  # (vma.offset)
        pos = 0
        for s in ubuf.slices:
            if s.page > PAGE_SIZE and pos < start + vma.length and pos + s.size > start:
                trace_udmabuf_mmap_unmodelled(
                    dmabuf.kernel.tracer, dmabuf.id, s.offset, s.size, "hugetlb memfd"
                )
                raise kerr(ENODEV)
            pos += s.size
        for fd, off, n in ubuf.segments(start, start + vma.length):
            vma.remap(fd, off, n)

    def begin_cpu_access(self, dmabuf: DmaBuf, direction: int) -> None:
        """``begin_cpu_udmabuf``: the first call makes the sg table; later ones sync it."""
        ubuf: Udmabuf = dmabuf.priv
        ubuf.sg = True

    def end_cpu_access(self, dmabuf: DmaBuf, direction: int) -> None:
        """``end_cpu_udmabuf``: ``EINVAL`` until a ``begin_cpu_access`` made the sg table."""
        ubuf: Udmabuf = dmabuf.priv
        if not ubuf.sg:
            raise kerr(EINVAL)


_ops = UdmabufOps()


@contextlib.contextmanager
def _fdget_memfd(kernel: Kernel, fd: int) -> Iterator[int]:
    """``fdget``: the caller's memfd ``fd`` as a real fd the kernel can use for a block;
    ``EBADFD`` for no file or a mock one (a mock file is never a shmem file)."""
    try:
        cm = fdget_real(kernel, fd)
        real = cm.__enter__()
    except (OSError, OverflowError):
        raise kerr(EBADFD) from None
    try:
        yield real
    finally:
        cm.__exit__(None, None, None)


def _check_memfd_seals(fd: int) -> None:
    """``check_memfd_seals`` on a kernel-held fd: ``EBADFD`` for a non-shmem file,
    ``EINVAL`` unless the seals are right (a plain tmpfs file reads as ``F_SEAL_SEAL``)."""
    try:
        seals = fcntl.fcntl(fd, _F_GET_SEALS)
    except (OSError, OverflowError):
        raise kerr(EBADFD) from None  # not shmem/hugetlbfs
    if (seals & _SEALS_WANTED) != _SEALS_WANTED or seals & _SEALS_DENIED:
        raise kerr(EINVAL)


def create_udmabuf(
    kernel: Kernel,
    memfds: MemfdTable,
    flags: int,
    items: list[tuple[int, int, int]],
    size_limit_mb: int = SIZE_LIMIT_MB,
) -> int:
    """``udmabuf_create``: a dma-buf of ``items`` (memfd, offset, size); returns the new fd.

    The order of the checks is the kernel's: every item's alignment and the size
    limit first, then item by item the fd (``EBADFD``), its seals and the range
    (``EINVAL``, a zero size included), and only then the new fd (``EMFILE``).
    """
    # ((u64)size_limit_mb * SZ_1M) >> PAGE_SHIFT: a negative limit is a huge one
    pglimit = (((size_limit_mb & _U64) << 20) & _U64) // PAGE_SIZE
    pgcnt = 0
    for _memfd, offset, size in items:
        if offset % PAGE_SIZE or size % PAGE_SIZE:
            raise kerr(EINVAL)
        pgcnt += size // PAGE_SIZE
        if pgcnt > pglimit:
            raise kerr(EINVAL)
    if not pgcnt:
        raise kerr(EINVAL)
    ubuf = Udmabuf(memfds)
    try:
        for memfd, offset, size in items:
            with _fdget_memfd(kernel, memfd) as real:
                _check_memfd_seals(real)
                # memfd_pin_folios: start < 0 (as loff_t), start > end (size 0), end >= i_size
                if offset > _LOFF_MAX or size == 0 or offset + size > os.fstat(real).st_size:
                    raise kerr(EINVAL)
                key, kfd = memfds.get(real)
            try:
                pin = memfd_pin_folios(kernel, kfd, offset, size, ubuf.pages_moved)
            except BaseException:
                memfds.put(key)
                raise
            ubuf.slices.append(_Slice(key, kfd, offset, size, pin, os.fstat(kfd).st_blksize))
            ubuf.size += size
        ubuf.dma_base = _SYSRAM_BASE + kernel.new_id() * (1 << 32)
        # the pages are system RAM: a device's DMA to their bus addresses lands in them
        fabric = ubuf.fabric = pci_fabric(kernel)
        addr = ubuf.dma_base
        for sl in ubuf.slices:
            fabric.add_ram(addr, sl.size, sl.view)
            addr += sl.size
        dmabuf = ubuf.dmabuf = dma_buf_export(kernel, _ops, ubuf.size, ubuf, "udmabuf", os.O_RDWR)
    except BaseException:
        ubuf.close()
        raise
    try:
        return dma_buf_fd(dmabuf, os.O_CLOEXEC if flags & UDMABUF_FLAGS_CLOEXEC else 0)
    except BaseException:
        dma_buf_put(dmabuf)
        raise


def _ioctl_create(file: File[UdmabufDevOps], cmd: int, arg: int) -> int:
    c = udmabuf_create.from_buffer_copy(copy_from_user(arg, ctypes.sizeof(udmabuf_create)))
    dev = file.private_data
    return create_udmabuf(
        dev.kernel, dev.memfds, c.flags, [(c.memfd, c.offset, c.size)], dev.size_limit_mb
    )


_U64 = (1 << 64) - 1


def _ioctl_create_list(file: File[UdmabufDevOps], cmd: int, arg: int) -> int:
    head = udmabuf_create_list.from_buffer_copy(
        copy_from_user(arg, ctypes.sizeof(udmabuf_create_list))
    )
    dev = file.private_data
    if head.count > dev.list_limit & 0xFFFF_FFFF:  # (__u32 > int: compared as unsigned)
        raise kerr(EINVAL)
    isz = ctypes.sizeof(udmabuf_create_item)
    raw = copy_from_user(arg + ctypes.sizeof(udmabuf_create_list), isz * head.count)
    items = [udmabuf_create_item.from_buffer_copy(raw, i * isz) for i in range(head.count)]
    return create_udmabuf(
        dev.kernel,
        dev.memfds,
        head.flags,
        [(i.memfd, i.offset, i.size) for i in items],
        dev.size_limit_mb,
    )


class UdmabufDevOps(FileOperations):
    """The fops of ``/dev/udmabuf`` (a misc device)."""

    name = "udmabuf"
    ioctls = {UDMABUF_CREATE: _ioctl_create, UDMABUF_CREATE_LIST: _ioctl_create_list}

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        #: this kernel's fds of the memfds behind its live buffers
        self.memfds = MemfdTable(kernel)
        #: the module parameters (``module_param(list_limit/size_limit_mb, int, 0644)``),
        #: shown in ``/sys/module/udmabuf/parameters`` and enforced from here
        self.list_limit = LIST_LIMIT
        self.size_limit_mb = SIZE_LIMIT_MB

    def open(self, file: File[UdmabufDevOps]) -> None:
        """``misc_open``: the file's ``private_data`` is the device."""
        file.private_data = self


class _Udmabuf:
    """The module of one kernel: its misc device."""

    def __init__(self) -> None:
        self.dev: UdmabufDevOps | None = None

    def init(self, kernel: Kernel) -> None:
        dev = self.dev = UdmabufDevOps(kernel)
        misc_register(kernel, "udmabuf", dev, mode=0o660)
        params = "/sys/module/udmabuf/parameters"
        sysfs_create_dir(kernel, params)

        def set_list_limit(data: bytes) -> None:  # param_set_int
            dev.list_limit = kstrtoint(data)

        def set_size_limit_mb(data: bytes) -> None:
            dev.size_limit_mb = kstrtoint(data)

        sysfs_create_file(
            kernel, f"{params}/list_limit", lambda: f"{dev.list_limit}\n", 0o644, set_list_limit
        )
        sysfs_create_file(
            kernel,
            f"{params}/size_limit_mb",
            lambda: f"{dev.size_limit_mb}\n",
            0o644,
            set_size_limit_mb,
        )

    def exit(self, kernel: Kernel) -> None:
        sysfs_remove_dir(kernel, "/sys/module/udmabuf")
        misc_deregister(kernel, "udmabuf")
        if self.dev is not None:
            self.dev.memfds.close()  # only buffers leaked past shutdown still hold any


@mockkernel.hookimpl
def mockkernel_register(registry: mockkernel.driver.DriverRegistry) -> None:
    mod = _Udmabuf()
    registry.add_module("udmabuf", mod.init, mod.exit)
