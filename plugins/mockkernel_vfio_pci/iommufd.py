"""``/dev/iommu``: the iommufd context, as far as the vfio cdev path needs it (iommufd/main.c).

Each open of ``/dev/iommu`` is a context with an object table (ids from 1):
IOAS objects (``IOMMU_IOAS_ALLOC``) and the device objects that
``VFIO_DEVICE_BIND_IOMMUFD`` creates.  Command framing is upstream's
``iommufd_fops_ioctl``: the first u32 of the argument is its ``size``
(``EFAULT`` if unreadable); a size below the command's minimum is ``EINVAL``; a
larger one must have zeros past what the kernel knows (``E2BIG``,
``copy_struct_from_user``); the answer is copied back up to the user's size.

Modelled: ``IOMMU_DESTROY`` (``ENOENT`` unknown id, ``EBUSY`` in use),
``IOMMU_IOAS_ALLOC`` (``flags`` must be 0: ``EOPNOTSUPP``), and the IOAS's mappings as
``iommufd/ioas.c`` and ``io_pagetable.c`` check them (the kernel's vfio selftests use
them): ``IOMMU_IOAS_IOVA_RANGES`` (the usable IOVA spans: all of them with no device
attached, the intel-iommu guest's two -- as type1 reports -- once one is; too small an
array fills what fits, answers the count and fails ``EMSGSIZE``), ``IOMMU_IOAS_MAP``
(``EOPNOTSUPP`` for unknown flags or ``__reserved``, ``EOVERFLOW`` for an iova or length
of ``ULONG_MAX`` or a range that wraps, ``EINVAL`` without READABLE/WRITEABLE, for length
0, a misaligned or reserved iova; ``EEXIST`` for an overlap; ``EFAULT`` for unreadable
user memory; without ``FIXED_IOVA`` the lowest free aligned span is taken) and
``IOMMU_IOAS_UNMAP`` (iova 0 and length ``U64_MAX``: everything, an empty IOAS
included; else ``EOVERFLOW``/``EINVAL`` as for a map, ``ENOENT`` when nothing or part
of an area is in the range; the unmapped length is answered).  Like type1's, these
mappings are bookkeeping: nothing is pinned and no device DMA goes through them.
Other iommufd commands (HWPT_ALLOC, ...) answer ``ENOTTY``: not modelled.  Commands
below the iommufd range (the VFIO compat ioctls) are ``ENOTTY``: the mock has no
``CONFIG_IOMMUFD_VFIO_CONTAINER``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from errno import (
    EBADFD,
    EBUSY,
    EEXIST,
    EINVAL,
    EMSGSIZE,
    ENOENT,
    ENOSPC,
    ENOTTY,
    EOPNOTSUPP,
    EOVERFLOW,
)
from types import MappingProxyType
from typing import TYPE_CHECKING

from mockkernel.driver import (
    PAGE_SIZE,
    File,
    FileOperations,
    Kernel,
    TaskContext,
    TracePoint,
    copy_from_user,
    copy_struct_from_user,
    copy_to_user,
    fget,
    kerr,
)
from mockkernel.ioctl import _IOC_NR
from mockkernel.uapi.linux.iommufd import (
    IOMMU_DESTROY,
    IOMMU_IOAS_ALLOC,
    IOMMU_IOAS_IOVA_RANGES,
    IOMMU_IOAS_MAP,
    IOMMU_IOAS_MAP_FIXED_IOVA,
    IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE,
    IOMMU_IOAS_UNMAP,
    IOMMUFD_CMD_BASE,
)

from .type1 import IOVA_RANGES

if TYPE_CHECKING:
    from .core import VfioPciDevice

__all__ = [
    "Ioas",
    "IommufdCtx",
    "IommufdDevice",
    "IommufdFops",
    "iommufd_ctx_from_fd",
    "iommufd_vfio_compat_ioas_create",
]

trace_iommufd_ioas_alloc = TracePoint("iommufd.ioas_alloc", "ioas")
trace_iommufd_ioas_map = TracePoint("iommufd.ioas_map", "ioas", "iova", "length")
trace_iommufd_ioas_unmap = TracePoint("iommufd.ioas_unmap", "ioas", "iova", "length", "unmapped")

ULONG_MAX = (1 << 64) - 1


@dataclass(eq=False)
class Ioas:
    """``struct iommufd_ioas``: an I/O address space devices attach to."""

    id: int
    devices: set[int] = field(default_factory=set)  # ids of attached device objects
    #: the mapped areas: first iova -> (length, user_va)
    areas: dict[int, tuple[int, int]] = field(default_factory=dict)

    def allowed(self) -> tuple[tuple[int, int], ...]:
        """The usable IOVA spans (``[first, last]``): the reserved regions and aperture of
        the attached devices' intel-iommu domain (type1's ranges), or everything."""
        return IOVA_RANGES if self.devices else ((0, ULONG_MAX),)

    def overlaps(self, first: int, last: int) -> bool:
        return any(a <= last and first <= a + n - 1 for a, (n, _va) in self.areas.items())


@dataclass(eq=False)
class IommufdDevice:
    """``struct iommufd_device``: a vfio device bound to the context."""

    id: int
    vdev: VfioPciDevice
    ioas: Ioas | None = None


class IommufdCtx:
    """``struct iommufd_ctx``: one open of ``/dev/iommu``."""

    def __init__(self, kernel: TaskContext) -> None:
        self.kernel = kernel
        self.objects: dict[int, Ioas | IommufdDevice] = {}
        self._next = 1
        self.vfio_compat_ioas: Ioas | None = None

    def alloc_id(self) -> int:
        new = self._next
        self._next += 1
        return new

    def new_ioas(self) -> Ioas:
        ioas = Ioas(self.alloc_id())
        self.objects[ioas.id] = ioas
        return ioas

    def bind(self, vdev: VfioPciDevice) -> IommufdDevice:
        idev = IommufdDevice(self.alloc_id(), vdev)
        self.objects[idev.id] = idev
        return idev

    def unbind(self, idev: IommufdDevice) -> None:
        self.detach(idev)
        self.objects.pop(idev.id, None)

    def attach(self, idev: IommufdDevice, pt_id: int) -> Ioas:
        """``iommufd_device_attach``/``_replace``: only an IOAS here (``ENOENT``, ``EINVAL``)."""
        obj = self.objects.get(pt_id)
        if obj is None:
            raise kerr(ENOENT)
        if not isinstance(obj, Ioas):
            raise kerr(EINVAL)  # not a page table object
        self.detach(idev)
        obj.devices.add(idev.id)
        idev.ioas = obj
        return obj

    def detach(self, idev: IommufdDevice) -> None:
        if idev.ioas is not None:
            idev.ioas.devices.discard(idev.id)
            idev.ioas = None


def iommufd_vfio_compat_ioas_create(ictx: IommufdCtx) -> Ioas:
    """The IOAS a group set to an iommufd uses (created once per context)."""
    if ictx.vfio_compat_ioas is None:
        ictx.vfio_compat_ioas = ictx.new_ioas()
    return ictx.vfio_compat_ioas


def iommufd_ctx_from_fd(kernel: Kernel, fd: int) -> File:
    """``iommufd_ctx_from_fd``: the referenced ``/dev/iommu`` file; ``EBADF``/``EBADFD``."""
    file = fget(kernel, fd)  # EBADF: no file at all
    if file is None:
        raise kerr(EBADFD)  # a real file: not an iommufd
    if not isinstance(file.f_op, IommufdFops):
        file.put()
        raise kerr(EBADFD)
    return file


# -- the ioctls -----------------------------------------------------------------------------
#: runs a command on the copied-in struct; may return an errno to fail with *after* the
#: struct was copied back (``IOMMU_IOAS_IOVA_RANGES``' ``EMSGSIZE``)
Execute = Callable[[IommufdCtx, bytearray], "int | None"]


@dataclass(frozen=True)
class _Op:
    ioctl_num: int
    size: int  # sizeof the kernel's struct
    min_size: int  # offsetofend of the last mandatory member
    execute: Execute


def _destroy(ictx: IommufdCtx, cmd: bytearray) -> None:
    (obj_id,) = struct.unpack_from("<I", cmd, 4)
    obj = ictx.objects.get(obj_id)
    if obj is None:
        raise kerr(ENOENT)
    if isinstance(obj, IommufdDevice) or obj.devices:
        raise kerr(EBUSY)
    if obj is ictx.vfio_compat_ioas:
        ictx.vfio_compat_ioas = None
    del ictx.objects[obj_id]


def _ioas_alloc(ictx: IommufdCtx, cmd: bytearray) -> None:
    (flags,) = struct.unpack_from("<I", cmd, 4)
    if flags:
        raise kerr(EOPNOTSUPP)
    ioas = ictx.new_ioas()
    struct.pack_into("<I", cmd, 8, ioas.id)
    trace_iommufd_ioas_alloc(ictx.kernel.tracer, ioas.id)


def _get_ioas(ictx: IommufdCtx, ioas_id: int) -> Ioas:
    """``iommufd_get_ioas``: ``ENOENT`` for no object of that id or one of another type."""
    obj = ictx.objects.get(ioas_id)
    if not isinstance(obj, Ioas):
        raise kerr(ENOENT)
    return obj


def _ioas_iova_ranges(ictx: IommufdCtx, cmd: bytearray) -> int | None:
    """``iommufd_ioas_iova_ranges``: the holes of the reserved tree, as many as fit."""
    ioas_id, max_iovas, reserved, allowed_iovas = struct.unpack_from("<IIIQ", cmd, 4)
    if reserved:
        raise kerr(EOPNOTSUPP)
    spans = _get_ioas(ictx, ioas_id).allowed()
    for i, (first, last) in enumerate(spans[:max_iovas]):
        copy_to_user(allowed_iovas + 16 * i, struct.pack("<QQ", first, last))
    struct.pack_into("<I", cmd, 8, len(spans))
    struct.pack_into("<Q", cmd, 24, PAGE_SIZE)  # out_iova_alignment
    return EMSGSIZE if len(spans) > max_iovas else None


def _check_iova(ioas: Ioas, iova: int, length: int) -> None:
    """``iopt_check_iova``: aligned, not wrapping, not reserved, not mapped."""
    if iova % PAGE_SIZE:
        raise kerr(EINVAL)
    last = iova + length - 1
    if last > ULONG_MAX:
        raise kerr(EOVERFLOW)
    if not any(lo <= iova and last <= hi for lo, hi in ioas.allowed()):
        raise kerr(EINVAL)
    if ioas.overlaps(iova, last):
        raise kerr(EEXIST)


def _alloc_iova(ioas: Ioas, length: int) -> int:
    """``iopt_alloc_iova``: the lowest page-aligned free span of ``length`` (``ENOSPC``)."""
    starts = sorted(
        {lo for lo, _hi in ioas.allowed()} | {a + n for a, (n, _) in ioas.areas.items()}
    )
    for start in starts:
        iova = -(-start // PAGE_SIZE) * PAGE_SIZE
        last = iova + length - 1
        inside = any(lo <= iova and last <= hi for lo, hi in ioas.allowed())
        if last <= ULONG_MAX and inside and not ioas.overlaps(iova, last):
            return iova
    raise kerr(ENOSPC)


def _ioas_map(ictx: IommufdCtx, cmd: bytearray) -> None:
    """``iommufd_ioas_map``."""
    flags, ioas_id, reserved, user_va, length, iova = struct.unpack_from("<IIIQQQ", cmd, 4)
    known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE
    if flags & ~known or reserved:
        raise kerr(EOPNOTSUPP)
    if iova >= ULONG_MAX or length >= ULONG_MAX:
        raise kerr(EOVERFLOW)
    if not flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE):
        raise kerr(EINVAL)
    ioas = _get_ioas(ictx, ioas_id)
    # iopt_alloc_user_pages
    if length == 0 or length > ULONG_MAX - PAGE_SIZE:
        raise kerr(EINVAL)
    if user_va + length > ULONG_MAX:
        raise kerr(EOVERFLOW)
    if flags & IOMMU_IOAS_MAP_FIXED_IOVA:
        _check_iova(ioas, iova, length)
    else:
        iova = _alloc_iova(ioas, length)
    # the pages are pinned: the first and the last must be user memory (EFAULT)
    copy_from_user(user_va, 1)
    copy_from_user(user_va + length - 1, 1)
    ioas.areas[iova] = (length, user_va)
    struct.pack_into("<Q", cmd, 32, iova)
    trace_iommufd_ioas_map(ictx.kernel.tracer, ioas.id, iova, length)


def _ioas_unmap(ictx: IommufdCtx, cmd: bytearray) -> None:
    """``iommufd_ioas_unmap``: ``iopt_unmap_all`` or ``iopt_unmap_iova``."""
    ioas_id, iova, length = struct.unpack_from("<IQQ", cmd, 4)
    ioas = _get_ioas(ictx, ioas_id)
    if iova == 0 and length == ULONG_MAX:
        unmapped = sum(n for n, _va in ioas.areas.values())  # empty: 0, not ENOENT
        ioas.areas.clear()
    else:
        if iova >= ULONG_MAX or length >= ULONG_MAX:
            raise kerr(EOVERFLOW)
        if not length:
            raise kerr(EINVAL)
        last = iova + length - 1
        if last > ULONG_MAX:
            raise kerr(EOVERFLOW)
        hit = [a for a, (n, _va) in ioas.areas.items() if a <= last and iova <= a + n - 1]
        if not hit or any(a < iova or a + ioas.areas[a][0] - 1 > last for a in hit):
            raise kerr(ENOENT)  # nothing, or only part of an area, in the range
        unmapped = sum(ioas.areas.pop(a)[0] for a in hit)
    struct.pack_into("<Q", cmd, 16, unmapped)
    trace_iommufd_ioas_unmap(ictx.kernel.tracer, ioas.id, iova, length, unmapped)


_OPS = MappingProxyType(
    {
        _IOC_NR(IOMMU_DESTROY): _Op(IOMMU_DESTROY, 8, 8, _destroy),
        _IOC_NR(IOMMU_IOAS_ALLOC): _Op(IOMMU_IOAS_ALLOC, 12, 12, _ioas_alloc),
        _IOC_NR(IOMMU_IOAS_IOVA_RANGES): _Op(IOMMU_IOAS_IOVA_RANGES, 32, 32, _ioas_iova_ranges),
        _IOC_NR(IOMMU_IOAS_MAP): _Op(IOMMU_IOAS_MAP, 40, 40, _ioas_map),
        _IOC_NR(IOMMU_IOAS_UNMAP): _Op(IOMMU_IOAS_UNMAP, 24, 24, _ioas_unmap),
    }
)


class IommufdFops(FileOperations):
    """``iommufd_fops``: a fresh context per open."""

    name = "iommufd"

    def open(self, file: File) -> None:
        file.private_data = IommufdCtx(file.kernel)

    def unlocked_ioctl(self, file: File[IommufdCtx], cmd: int, arg: int) -> int:
        ictx = file.private_data
        nr = _IOC_NR(cmd)
        if nr < IOMMUFD_CMD_BASE:
            raise kerr(ENOTTY)  # iommufd_vfio_ioctl: no VFIO compat container here
        (user_size,) = struct.unpack("<I", copy_from_user(arg, 4))
        op = _OPS.get(nr)
        if op is None or op.ioctl_num != cmd:
            raise kerr(ENOTTY)
        if user_size < op.min_size:
            raise kerr(EINVAL)
        # bytes past the kernel's struct must be zero: E2BIG, checked piece by piece
        buf = bytearray(copy_struct_from_user(op.size, arg, user_size))
        n = min(user_size, op.size)
        rc = op.execute(ictx, buf)
        copy_to_user(arg, bytes(buf[:n]))
        if rc:
            raise kerr(rc)
        return 0

    def release(self, file: File[IommufdCtx | None]) -> None:
        ictx = file.private_data
        if ictx is not None:
            ictx.objects.clear()
