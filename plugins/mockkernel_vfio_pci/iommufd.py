"""``/dev/iommu``: the iommufd context, as far as the vfio cdev path needs it (iommufd/main.c).

Each open of ``/dev/iommu`` is a context with an object table (ids from 1):
IOAS objects (``IOMMU_IOAS_ALLOC``) and the device objects that
``VFIO_DEVICE_BIND_IOMMUFD`` creates.  Command framing is upstream's
``iommufd_fops_ioctl``: the first u32 of the argument is its ``size``
(``EFAULT`` if unreadable); a size below the command's minimum is ``EINVAL``; a
larger one must have zeros past what the kernel knows (``E2BIG``,
``copy_struct_from_user``); the answer is copied back up to the user's size.

Modelled: ``IOMMU_DESTROY`` (``ENOENT`` unknown id, ``EBUSY`` in use) and
``IOMMU_IOAS_ALLOC`` (``flags`` must be 0: ``EOPNOTSUPP``).  Other iommufd
commands (IOAS_MAP, HWPT_ALLOC, ...) answer ``ENOTTY``: not modelled.  Commands
below the iommufd range (the VFIO compat ioctls) are ``ENOTTY``: the mock has no
``CONFIG_IOMMUFD_VFIO_CONTAINER``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from errno import EBADFD, EBUSY, EINVAL, ENOENT, ENOTTY, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING

from mockkernel.driver import (
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
    IOMMUFD_CMD_BASE,
)

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


@dataclass(eq=False)
class Ioas:
    """``struct iommufd_ioas``: an I/O address space devices attach to."""

    id: int
    devices: set[int] = field(default_factory=set)  # ids of attached device objects


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
Execute = Callable[[IommufdCtx, bytearray], None]


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


_OPS = MappingProxyType(
    {
        _IOC_NR(IOMMU_DESTROY): _Op(IOMMU_DESTROY, 8, 8, _destroy),
        _IOC_NR(IOMMU_IOAS_ALLOC): _Op(IOMMU_IOAS_ALLOC, 12, 12, _ioas_alloc),
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
        op.execute(ictx, buf)
        copy_to_user(arg, bytes(buf[:n]))
        return 0

    def release(self, file: File[IommufdCtx | None]) -> None:
        ictx = file.private_data
        if ictx is not None:
            ictx.objects.clear()
