"""What a program asks of an open file beyond reading and writing it: ``fchmod``,
``fchown``, ``fallocate`` (``fs/open.c``) and ``fstatfs`` (``fs/statfs.c``).

Each takes an fd (``fdget``: an ``O_PATH`` file is ``EBADF``) and acts on the file's
inode.  Attribute changes follow ``notify_change``'s permission rules: the owner or
root may ``chmod``; only root may give a file away (``chown_ok``/``chgrp_ok``).
"""

from __future__ import annotations

import os
import stat as _stat
from errno import EBADF, EFBIG, EINVAL, EISDIR, ENODEV, EOPNOTSUPP, EPERM, ESPIPE
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_WRITE, File

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "FALLOC_FL_KEEP_SIZE",
    "FALLOC_FL_MODES",
    "FALLOC_FL_PUNCH_HOLE",
    "sys_fallocate",
    "sys_fchmod",
    "sys_fchown",
    "sys_fstatfs",
    "vfs_fallocate",
]

S_IALLUGO = 0o7777
#: fallocate mode bits Linux knows (KEEP_SIZE, PUNCH_HOLE, NO_HIDE_STALE, COLLAPSE_RANGE,
#: ZERO_RANGE, INSERT_RANGE, UNSHARE_RANGE, WRITE_ZEROES)
FALLOC_FL_MODES = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40 | 0x80
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
OFFSET_MAX = 2**63 - 1
#: the superblocks the mock's files live on, by path prefix (their real mount answers
#: ``fstatfs``, as Linux's would for sysfs, devtmpfs and procfs); anything else (dma-bufs,
#: anonymous inodes) is an internal pseudo filesystem
_MOUNTS = ("/sys/kernel/debug", "/sys", "/dev", "/proc")
#: statvfs of an internal pseudo filesystem (anon_inodefs, dmabuf, sockfs): no blocks,
#: no inodes, 4 KiB blocks, 255-byte names, no mount flags
_PSEUDO_STATVFS = (4096, 4096, 0, 0, 0, 0, 0, 0, 0, 255)


def _owner_or_root(uid: int) -> bool:
    euid = os.geteuid()
    return euid == 0 or euid == uid


def sys_fchmod(proc: Process, fd: int, mode: int) -> None:
    """``fchmod``: the permission bits of the inode (file type kept); ``EPERM`` unless the
    caller owns it or is root."""
    inode = proc.fdget(fd).inode
    if not _owner_or_root(inode.uid):
        raise kerr(EPERM)
    inode.mode = (inode.mode & ~S_IALLUGO) | (mode & S_IALLUGO)


def sys_fchown(proc: Process, fd: int, uid: int, gid: int) -> None:
    """``fchown``: -1 keeps a field.  The owner may set the uid to itself and the gid to a
    group it is in; anything else needs root (``EPERM``)."""
    inode = proc.fdget(fd).inode
    uid = -1 if uid in (-1, 0xFFFFFFFF) else uid
    gid = -1 if gid in (-1, 0xFFFFFFFF) else gid
    if os.geteuid() != 0:
        if uid != -1 and (uid != inode.uid or os.geteuid() != inode.uid):
            raise kerr(EPERM)
        if gid != -1 and gid != inode.gid:
            groups = {os.getegid(), *os.getgroups()}
            if os.geteuid() != inode.uid or gid not in groups:
                raise kerr(EPERM)
    if uid != -1:
        inode.uid = uid
    if gid != -1:
        inode.gid = gid


def sys_fallocate(proc: Process, fd: int, mode: int, offset: int, length: int) -> None:
    """``fallocate``: :func:`vfs_fallocate` of the file at ``fd``."""
    vfs_fallocate(proc.fdget(fd), mode, offset, length)


def vfs_fallocate(file: File, mode: int, offset: int, length: int) -> None:
    """``vfs_fallocate``'s checks, in its order: no mock file is a regular file with space
    to allocate, so a device or a dma-buf is ``ENODEV`` and a sysfs or debugfs file
    (kernfs has no ``->fallocate``) ``EOPNOTSUPP``."""
    if offset < 0 or length <= 0:
        raise kerr(EINVAL)
    if mode & ~FALLOC_FL_MODES:
        raise kerr(EOPNOTSUPP)
    if not file.f_mode & FMODE_WRITE:
        raise kerr(EBADF)
    imode = file.inode.mode
    if _stat.S_ISFIFO(imode):
        raise kerr(ESPIPE)
    if _stat.S_ISDIR(imode):
        raise kerr(EISDIR)
    if not _stat.S_ISREG(imode) and not _stat.S_ISBLK(imode):
        raise kerr(ENODEV)
    if offset + length > OFFSET_MAX:
        raise kerr(EFBIG)
    raise kerr(EOPNOTSUPP)


def sys_fstatfs(proc: Process, fd: int) -> os.statvfs_result:
    """``fstatfs`` as ``statvfs`` reports it (an ``O_PATH`` file answers too): a file of the
    mock tree is on the real machine's sysfs/devtmpfs/procfs/debugfs, an anonymous one
    on an internal pseudo filesystem."""
    file = proc.fdget_raw(fd)
    path = file.path
    if path is not None:
        for mount in _MOUNTS:
            if path == mount or path.startswith(mount + "/"):
                try:
                    return os.statvfs(mount)
                except OSError:
                    break  # (not mounted here: debugfs without root)
    return os.statvfs_result(_PSEUDO_STATVFS)
