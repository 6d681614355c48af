"""``ioctl(2)``: the one place its dispatch rules live (``fs/ioctl.c``).

The order, as ``SYSCALL_DEFINE3(ioctl)``: ``fdget`` (an ``O_PATH`` file is ``EBADF``),
then ``do_vfs_ioctl`` -- the generic commands the core answers itself
(:data:`VFS_IOCTLS`) -- then ``vfs_ioctl``: the driver's ``unlocked_ioctl``, which by
default is a lookup in its ``ioctls`` table; no handler is ``ENOTTY``.

``hotpath.m_ioctl``'s mock branch is a specialised copy of :func:`vfs_ioctl` for the two commonest
argument kinds; it takes :data:`VFS_IOCTL_CMDS` from here to know which commands it
must leave to :func:`do_ioctl`.
"""

from __future__ import annotations

import os
import stat as _stat
from collections.abc import Callable, Mapping
from errno import EBADF, ENOTTY
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_PATH, File
from ..ioctl import _IOC_DIR, _IOC_NONE, _IOC_SIZE, _IOC_TYPE, _IOC_WRITE
from ..uaccess import copy_from_user, copy_from_user_nofault, copy_to_user, put_user_u32
from ..uapi.linux.dma_buf import DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B
from ..uapi.linux.ioctls import FIOASYNC, FIOCLEX, FIONBIO, FIONCLEX, FIOQSIZE
from ..uapi.linux.vfio import VFIO_TYPE
from ..uapi.rdma.rdma_user_ioctl_cmds import RDMA_VERBS_IOCTL

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "FIGETBSZ",
    "IOCTL_ARG_TRACE_MAX",
    "VFS_IOCTLS",
    "VFS_IOCTL_CMDS",
    "do_ioctl",
    "ioctl_arg_bytes",
    "sys_ioctl",
    "vfs_ioctl",
]

FIGETBSZ = 0x2  # linux/fs.h: _IO(0x00, 2)
FASYNC = 0o20000

#: ``handler(proc, fd, file, arg) -> int`` of a command ``do_vfs_ioctl`` answers
VfsIoctl = Callable[["Process", int, File, int], int]


def _fioclex(proc: Process, fd: int, file: File, arg: int) -> int:
    proc.fdt.set_cloexec(fd, True)
    return 0


def _fionclex(proc: Process, fd: int, file: File, arg: int) -> int:
    proc.fdt.set_cloexec(fd, False)
    return 0


def _fionbio(proc: Process, fd: int, file: File, arg: int) -> int:
    on = int.from_bytes(copy_from_user(arg, 4), "little", signed=True)
    if on:
        file.f_flags |= os.O_NONBLOCK
    else:
        file.f_flags &= ~os.O_NONBLOCK
    return 0


def _fioasync(proc: Process, fd: int, file: File, arg: int) -> int:
    on = int.from_bytes(copy_from_user(arg, 4), "little", signed=True)
    if bool(on) != bool(file.f_flags & FASYNC):
        raise kerr(ENOTTY)  # a change needs the file's ->fasync op; no mock file has one
    return 0


def _figetbsz(proc: Process, fd: int, file: File, arg: int) -> int:
    put_user_u32(arg, file.inode.blksize)  # the superblock's block size
    return 0


def _fioqsize(proc: Process, fd: int, file: File, arg: int) -> int:
    """``ioctl_fioqsize``: ``i_size`` of a directory, link or regular file; else ENOTTY."""
    mode = file.inode.mode
    if not (_stat.S_ISDIR(mode) or _stat.S_ISREG(mode) or _stat.S_ISLNK(mode)):
        raise kerr(ENOTTY)
    copy_to_user(arg, file.inode.size.to_bytes(8, "little", signed=True))
    return 0


#: ``do_vfs_ioctl``: the commands the core answers before any driver sees them
VFS_IOCTLS: Mapping[int, VfsIoctl] = MappingProxyType(
    {
        FIOCLEX: _fioclex,
        FIONCLEX: _fionclex,
        FIONBIO: _fionbio,
        FIOASYNC: _fioasync,
        FIOQSIZE: _fioqsize,
        FIGETBSZ: _figetbsz,
    }
)

#: the command numbers of :data:`VFS_IOCTLS` (what a fast path must not take itself)
VFS_IOCTL_CMDS = frozenset(VFS_IOCTLS)


def vfs_ioctl(file: File, cmd: int, arg: int) -> int:
    """``vfs_ioctl``: the driver's ``unlocked_ioctl`` (by default its ``ioctls`` table,
    looked up here directly: one call less); ``ENOTTY`` when nobody answers."""
    fop = file.f_op
    if fop.plain_ioctls:
        handler = fop.ioctls.get(cmd)
        if handler is None:
            raise kerr(ENOTTY)
        return handler(file, cmd, arg)
    return fop.unlocked_ioctl(file, cmd, arg)


def do_ioctl(proc: Process, fd: int, file: File, cmd: int, arg: int) -> int:
    """The body of ``ioctl(2)`` once ``fd`` is looked up (``proc`` must be current):
    ``do_vfs_ioctl``, then :func:`vfs_ioctl`.  ``cmd`` is the 32-bit command."""
    if file.f_mode & FMODE_PATH:
        raise kerr(EBADF)  # fdget() does not return O_PATH files
    vfs = VFS_IOCTLS.get(cmd)
    if vfs is not None:
        return vfs(proc, fd, file, arg)
    return vfs_ioctl(file, cmd, arg)


def sys_ioctl(proc: Process, fd: int, cmd: int, arg: int) -> int:
    """``ioctl(fd, cmd, arg)`` in ``proc``; ``arg`` is the raw argument (an address in
    ``proc``'s memory for pointer commands).  A driver that installs fds
    (``dma_buf_fd``) installs them into ``proc``: it runs as the current task."""
    file = proc.fdget_raw(fd)
    k = proc.kernel
    if k.current is proc:
        return do_ioctl(proc, fd, file, cmd, arg)
    with k.running(proc):
        return do_ioctl(proc, fd, file, cmd, arg)


#: the most argument bytes a trace records of one ioctl (a larger size: none).  Room for
#: a struct and its flexible array: 254 ``dma_ranges[]`` of a VFIO dma-buf request, 255
#: uverbs attributes after their header
IOCTL_ARG_TRACE_MAX = 4096

#: ``_IOW``/``_IOWR`` commands whose argument is a header that begins with the length
#: (``__u16``) of the whole argument, its flexible array included: the uverbs ioctl
#: (``ib_uverbs_ioctl_hdr.length``: the header and its ``attrs[]``)
_LENGTH_PREFIXED = frozenset((RDMA_VERBS_IOCTL,))


#: ``_IOW`` commands whose "struct" is a ``const char *`` (the size of a pointer): what
#: they read is a string, which their own events show (``DMA_BUF_SET_NAME_A``/``_B``)
_POINTER_ARGS = frozenset((DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B))


def ioctl_arg_bytes(proc: Process, cmd: int, arg: int) -> bytes | None:
    """What a trace records of an ioctl's argument, as the call begins (what the
    driver's ``copy_from_user`` will see), from ``proc``'s memory:

    * a command whose argument the kernel reads (``_IOW``/``_IOWR``): the
      ``_IOC_SIZE(cmd)`` bytes at ``arg``;
    * an ``_IO`` command of type ``';'`` (VFIO and iommufd, whose every struct argument
      begins with its own size, ``argsz``/``size``): that many bytes, a flexible array
      after the struct included (``VFIO_DEVICE_FEATURE_DMA_BUF``'s ``dma_ranges[]``);
    * ``RDMA_VERBS_IOCTL``: the header's ``length`` bytes, its attributes included;

    ``None`` for a size over :data:`IOCTL_ARG_TRACE_MAX` (or an ``argsz`` under 4: a
    command that takes no struct, ``VFIO_GROUP_GET_DEVICE_FD``'s string reads as a huge
    one), for any other command and for an unreadable address (the call itself then
    meets the ``EFAULT``).  Read without fault points
    (:func:`~mockkernel.uaccess.copy_from_user_nofault`), so tracing does not change
    the call.  Only a tracing caller asks (``Process``'s traced ``sys_ioctl``)."""
    if cmd in _POINTER_ARGS:
        return None  # the argument is a pointer to a string, not a struct
    direction = _IOC_DIR(cmd)
    if direction & _IOC_WRITE:
        size = _IOC_SIZE(cmd)
        if not 0 < size <= IOCTL_ARG_TRACE_MAX:
            return None
        prefix = 2 if cmd in _LENGTH_PREFIXED else 0
    elif direction == _IOC_NONE and _IOC_TYPE(cmd) == VFIO_TYPE:
        size, prefix = 4, 4  # (the size is read first)
    else:
        return None
    if not 0 < arg < 1 << 64:
        return None
    k = proc.kernel
    if k.current is not proc:
        with k.running(proc):
            return _arg_bytes(arg, size, prefix)
    return _arg_bytes(arg, size, prefix)


def _arg_bytes(arg: int, size: int, prefix: int) -> bytes | None:
    """:func:`ioctl_arg_bytes` in the process's memory (it is current).  A ``prefix`` of
    4 or 2: the argument begins with its own length, a ``__u32`` (VFIO's ``argsz``: the
    size to read) or a ``__u16`` (the uverbs header's ``length``: more than the
    ``size``-byte header when attributes follow; a shorter one records the header
    alone, and the call itself refuses it)."""
    try:
        if prefix == 4:
            size = int.from_bytes(copy_from_user_nofault(arg, 4), "little")
            if not 4 <= size <= IOCTL_ARG_TRACE_MAX:
                return None
        elif prefix == 2:
            total = int.from_bytes(copy_from_user_nofault(arg, 2), "little")
            if size < total <= IOCTL_ARG_TRACE_MAX:
                size = total
        return copy_from_user_nofault(arg, size)
    except (OSError, ValueError, OverflowError):
        return None
