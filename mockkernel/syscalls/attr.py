"""A file's attributes, by fd or by path: ``fchmod``/``fchmodat2``,
``fchown``/``fchownat``, ``utimensat``, ``truncate`` (``fs/open.c``, ``fs/utimes.c``,
``fs/attr.c``), ``fallocate`` and ``fstatfs`` (``fs/statfs.c``).

A change acts on the node's one inode (``vfs.Node.inode``), so ``stat`` of the path
and ``fstat`` of every fd see it.  The permission rules are ``notify_change``'s, for
the *caller's* credentials (``cred.current_ids``: a supervised child that dropped to
an unprivileged uid is judged as one): the owner or ``CAP_FOWNER`` may ``chmod`` and
set times, ``CAP_CHOWN`` gives a file away; a task's ``/proc/<pid>`` files refuse a
mode (``EPERM``).  Checked on Linux 7.2: ``tests/supervisor/c/attrprobe.c``.
"""

from __future__ import annotations

import os
import re
import stat as _stat
import time
from errno import (
    EACCES,
    EBADF,
    EFAULT,
    EFBIG,
    EINVAL,
    EISDIR,
    ENODEV,
    ENOENT,
    EOPNOTSUPP,
    EPERM,
    EROFS,
    ESPIPE,
)
from typing import TYPE_CHECKING

from ..cred import (
    CAP_CHOWN,
    CAP_FSETID,
    MAY_WRITE,
    current_ids,
    generic_permission,
    inode_owner_or_capable,
)
from ..errors import NotMine, kerr
from ..fs import FMODE_WRITE, File, Inode
from ..fsnotify import IN_ACCESS, IN_ATTRIB, IN_MODIFY, fsnotify
from ..trace import TracePoint
from ..vfs import HOST_READ_ONLY, ShmemFile, _FdTarget
from . import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from .namei import dirfd_file, host_exists, lookup_at

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "FALLOC_FL_KEEP_SIZE",
    "FALLOC_FL_MODES",
    "FALLOC_FL_PUNCH_HOLE",
    "UTIME_NOW",
    "UTIME_OMIT",
    "chmod_common",
    "chown_common",
    "file_fs",
    "fs_of",
    "inode_at",
    "sys_fallocate",
    "sys_fchmod",
    "sys_fchmodat",
    "sys_fchown",
    "sys_fchownat",
    "sys_fstatfs",
    "sys_truncate",
    "sys_utimensat",
    "vfs_fallocate",
    "vfs_truncate",
    "vfs_utimes",
]

trace_vfs_setattr = TracePoint("vfs.setattr", "ino", "attr", "value")

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


ATTR_FS_PROC_PID = "procpid"
#: ``utimensat``'s special ``tv_nsec`` values
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
_PID_DIR = re.compile(r"^/proc/(self|thread-self|\d+)(/|$)")


def fs_of(path: str | None, mode: int) -> str:
    """The filesystem a mock inode lives on, by its path: ``devtmpfs`` (``/dev``),
    ``sysfs`` (kernfs: ``/sys``), ``procpid`` (a task's ``/proc/<pid>`` files),
    ``proc`` (the rest of procfs the mock owns, ``/proc/bus/pci``) or ``anon`` (a
    dma-buf, an anonymous inode, a socket: no path)."""
    if path is None or _stat.S_ISSOCK(mode):
        return "anon"
    if path.startswith("/dev"):
        return "devtmpfs"
    if path.startswith("/sys"):
        return "sysfs"
    if _PID_DIR.match(path):
        return ATTR_FS_PROC_PID
    return "proc" if path.startswith("/proc") else "anon"


def file_fs(file: File) -> str:
    """:func:`fs_of` for an open file (its path, or none: anonymous)."""
    return fs_of(file.path, file.inode.mode)


def inode_at(proc: Process, dirfd: int, path: str, flags: int) -> tuple[Inode, str]:
    """The inode ``(dirfd, path)`` names and its filesystem (:func:`fs_of`), for the
    ``*at`` attribute calls: ``AT_EMPTY_PATH`` with an empty path is the file at
    ``dirfd`` itself (``O_PATH`` included), ``AT_SYMLINK_NOFOLLOW`` the link itself.
    ``NotMine`` for a host path; ``EROFS`` for a host file in a tree the mock keeps
    read-only (``vfs.HOST_READ_ONLY``: the host's sysfs is never changed)."""
    if not path and flags & AT_EMPTY_PATH:
        file = dirfd_file(proc, dirfd)
        if file is None:
            raise NotMine()
        return file.inode, file_fs(file)
    try:
        node, full = lookup_at(proc, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW)
    except NotMine:
        where = os.path.normpath(path) if path.startswith("/") else None
        if where is not None and where.startswith(HOST_READ_ONLY):
            raise kerr(EROFS if host_exists(where) else ENOENT) from None
        raise
    if isinstance(node, _FdTarget):  # /proc/<pid>/fd/N followed: the open file
        return node.file.inode, file_fs(node.file)
    return node.inode(), fs_of(os.path.normpath(full), node.inode().mode)


def _touch_ctime(inode: Inode) -> None:
    inode.ctime_ns = time.time_ns()


def chmod_common(proc: Process, inode: Inode, fs: str, mode: int) -> None:
    """``chmod_common`` -> ``notify_change(ATTR_MODE)``: a symlink's mode cannot change
    (``EOPNOTSUPP``), nor a task's ``/proc/<pid>`` file's (``proc_setattr``:
    ``EPERM``); then ``setattr_prepare``: the owner or ``CAP_FOWNER`` (``EPERM``), and
    ``S_ISGID`` dropped for a caller outside the group without ``CAP_FSETID``."""
    if _stat.S_ISLNK(inode.mode):
        raise kerr(EOPNOTSUPP)
    if fs == ATTR_FS_PROC_PID:
        raise kerr(EPERM)
    ids = current_ids(proc.kernel)
    if not inode_owner_or_capable(ids, inode):
        raise kerr(EPERM)
    mode &= S_IALLUGO
    if not ids.in_group_p(inode.gid) and not ids.capable(CAP_FSETID):
        mode &= ~_stat.S_ISGID
    inode.mode = (inode.mode & ~S_IALLUGO) | mode
    _touch_ctime(inode)
    _trace_setattr(proc, inode, "mode", inode.mode & S_IALLUGO)


def chown_common(proc: Process, inode: Inode, fs: str, uid: int, gid: int) -> None:
    """``chown_common`` -> ``notify_change(ATTR_UID|ATTR_GID)``: -1 keeps a field; the
    owner may keep the uid and give the file to a group it is in, anything else needs
    ``CAP_CHOWN`` (``EPERM``: ``chown_ok``/``chgrp_ok``).  A non-directory loses
    ``S_ISUID``, and ``S_ISGID`` when group-executable (``ATTR_KILL_SUID``/``SGID``).
    A task's ``/proc/<pid>`` file accepts and shows its task's ids again."""
    uid = -1 if uid in (-1, 0xFFFFFFFF) else uid
    gid = -1 if gid in (-1, 0xFFFFFFFF) else gid
    ids = current_ids(proc.kernel)
    can_chown = ids.capable(CAP_CHOWN)
    if uid != -1 and not can_chown and not (ids.fsuid == inode.uid and uid == inode.uid):
        raise kerr(EPERM)
    owner_chgrp = ids.fsuid == inode.uid and (gid == inode.gid or ids.in_group_p(gid))
    if gid != -1 and not can_chown and not owner_chgrp:
        raise kerr(EPERM)
    if fs == ATTR_FS_PROC_PID:
        return  # pid_update_inode: the task's own ids show again
    if (uid != -1 or gid != -1) and not _stat.S_ISDIR(inode.mode):
        kill = _stat.S_ISUID
        if inode.mode & _stat.S_ISGID and inode.mode & _stat.S_IXGRP:
            kill |= _stat.S_ISGID
        inode.mode &= ~kill
    if uid != -1:
        inode.uid = uid
    if gid != -1:
        inode.gid = gid
    _touch_ctime(inode)
    _trace_setattr(proc, inode, "owner", f"{inode.uid}:{inode.gid}")


def _ns(t: tuple[int, int]) -> int:
    return t[0] * 10**9 + t[1]


def _nsec_valid(nsec: int) -> bool:
    return 0 <= nsec <= 999_999_999 or nsec in (UTIME_NOW, UTIME_OMIT)


def vfs_utimes(
    proc: Process, inode: Inode, times: tuple[tuple[int, int], tuple[int, int]] | None
) -> None:
    """``vfs_utimes``: ``times`` are ``(sec, nsec)`` for atime and mtime (``UTIME_NOW``,
    ``UTIME_OMIT``), ``None`` for now.  ``EINVAL`` for a bad ``nsec``; an explicit time
    needs the owner or ``CAP_FOWNER`` (``EPERM``), "now" the owner or write permission
    (``EACCES``)."""
    if times is not None:
        if not _nsec_valid(times[0][1]) or not _nsec_valid(times[1][1]):
            raise kerr(EINVAL)
        if times[0][1] == UTIME_NOW and times[1][1] == UTIME_NOW:
            times = None
    ids = current_ids(proc.kernel)
    now = time.time_ns()
    if times is None:
        if not inode_owner_or_capable(ids, inode) and not generic_permission(ids, inode, MAY_WRITE):
            raise kerr(EACCES)
        inode.atime_ns = inode.mtime_ns = now
        mask = IN_ATTRIB
    else:
        explicit = [t[1] not in (UTIME_NOW, UTIME_OMIT) for t in times]
        omit_a, omit_m = times[0][1] == UTIME_OMIT, times[1][1] == UTIME_OMIT
        mask = IN_ACCESS if omit_m else IN_MODIFY if omit_a else IN_ATTRIB
        if any(explicit) and not inode_owner_or_capable(ids, inode):
            raise kerr(EPERM)
        for i, t in enumerate(times):
            if t[1] == UTIME_OMIT:
                continue
            value = _ns(t) if explicit[i] else now
            if i == 0:
                inode.atime_ns = value
            else:
                inode.mtime_ns = value
    inode.ctime_ns = now
    _trace_setattr(proc, inode, "times", f"{inode.atime_ns} {inode.mtime_ns}", mask)


def vfs_truncate(proc: Process, inode: Inode, node: object, length: int) -> None:
    """``vfs_truncate``: a directory is ``EISDIR``, anything but a regular file
    ``EINVAL``, then write permission (``EACCES``).  A devtmpfs file (root's regular
    file in ``/dev``) is cut or extended; a sysfs or procfs file keeps its contents
    (kernfs and procfs take the size change and do nothing), as on Linux."""
    if _stat.S_ISDIR(inode.mode):
        raise kerr(EISDIR)
    if not _stat.S_ISREG(inode.mode):
        raise kerr(EINVAL)
    if not generic_permission(current_ids(proc.kernel), inode, MAY_WRITE):
        raise kerr(EACCES)
    if isinstance(node, ShmemFile):
        del node.data[length:]
        node.data.extend(bytes(length - len(node.data)))
        inode.size = length
    inode.mtime_ns = inode.ctime_ns = time.time_ns()
    _trace_setattr(proc, inode, "size", length, IN_MODIFY)


def _trace_setattr(
    proc: Process, inode: Inode, what: str, value: object, mask: int = IN_ATTRIB
) -> None:
    """The change's trace event, and its ``fsnotify_change`` for a watched inode."""
    if inode.fsn is not None and mask:
        fsnotify(inode, mask)
    tracer = proc.kernel.tracer
    if tracer.enabled:
        trace_vfs_setattr(tracer, inode.ino, what, value)


def sys_fchmod(proc: Process, fd: int, mode: int) -> None:
    """``fchmod``: :func:`chmod_common` of the file's inode (``fdget``: not ``O_PATH``)."""
    file = proc.fdget(fd)
    chmod_common(proc, file.inode, file_fs(file), mode)


def sys_fchmodat(proc: Process, dirfd: int, path: str, mode: int, flags: int = 0) -> None:
    """``fchmodat2`` (``fchmodat``/``chmod``: flags 0): ``AT_SYMLINK_NOFOLLOW`` and
    ``AT_EMPTY_PATH`` only (``EINVAL``); a symlink itself is ``EOPNOTSUPP``."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    inode, fs = inode_at(proc, dirfd, path, flags)
    chmod_common(proc, inode, fs, mode)


def sys_fchown(proc: Process, fd: int, uid: int, gid: int) -> None:
    """``fchown``: :func:`chown_common` of the file's inode (-1 keeps a field)."""
    file = proc.fdget(fd)
    chown_common(proc, file.inode, file_fs(file), uid, gid)


def sys_fchownat(proc: Process, dirfd: int, path: str, uid: int, gid: int, flags: int = 0) -> None:
    """``fchownat`` (``chown``: 0, ``lchown``: ``AT_SYMLINK_NOFOLLOW``)."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    inode, fs = inode_at(proc, dirfd, path, flags)
    chown_common(proc, inode, fs, uid, gid)


def sys_utimensat(
    proc: Process,
    dirfd: int,
    path: str | None,
    times: tuple[tuple[int, int], tuple[int, int]] | None,
    flags: int = 0,
) -> None:
    """``utimensat``: both times ``UTIME_OMIT`` do nothing (not even a lookup); a
    ``None`` path with an fd is ``futimens`` (``flags`` must be 0, ``fdget``: an
    ``O_PATH`` fd is ``EBADF``); else the path (``AT_SYMLINK_NOFOLLOW``,
    ``AT_EMPTY_PATH``).  Then :func:`vfs_utimes`."""
    if times is not None and times[0][1] == UTIME_OMIT and times[1][1] == UTIME_OMIT:
        return
    if path is None and dirfd != AT_FDCWD:
        if flags:
            raise kerr(EINVAL)
        if dirfd not in proc.files and dirfd_file(proc, dirfd) is None:
            raise NotMine()
        file = proc.fdget(dirfd)
        vfs_utimes(proc, file.inode, times)
        return
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    if path is None:
        raise kerr(EFAULT)
    inode, _ = inode_at(proc, dirfd, path, flags)
    vfs_utimes(proc, inode, times)


def sys_truncate(proc: Process, path: str, length: int) -> None:
    """``truncate``: ``EINVAL`` for a negative length (before the lookup), then
    :func:`vfs_truncate` of the node."""
    if length < 0:
        raise kerr(EINVAL)
    try:
        node, _ = lookup_at(proc, AT_FDCWD, path, True)
    except NotMine:
        inode_at(proc, AT_FDCWD, path, 0)  # EROFS/ENOENT in a read-only host tree
        raise
    if isinstance(node, _FdTarget):
        vfs_truncate(proc, node.file.inode, None, length)
    else:
        vfs_truncate(proc, node.inode(), node, length)


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
