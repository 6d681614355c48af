"""The stat family and friends on mock files and paths (``fs/stat.c``, ``fs/open.c``):
``fstat``, ``newfstatat``, ``statx``, ``faccessat``/``faccessat2``, ``readlinkat``.

Results are ``os.stat_result``; a front-end encodes them as its caller needs
(``struct stat``, ``struct statx``)."""

from __future__ import annotations

import os
import stat as _stat
from errno import EACCES, EINVAL, ENOENT
from typing import TYPE_CHECKING

from ..errors import NotMine, kerr
from ..vfs import Node, Symlink, _FdTarget
from . import (
    AT_EACCESS,
    AT_EMPTY_PATH,
    AT_NO_AUTOMOUNT,
    AT_STATX_SYNC_TYPE,
    AT_SYMLINK_NOFOLLOW,
)
from .namei import dirfd_file, lookup_at

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "may_access",
    "node_stat",
    "sys_faccessat",
    "sys_fstat",
    "sys_newfstatat",
    "sys_readlinkat",
    "sys_statx",
]

PATH_MAX = 4096


def node_stat(node: Node) -> os.stat_result:
    """What ``stat`` says about a mock node (``/proc/<pid>/fd/N`` followed: the file)."""
    if isinstance(node, _FdTarget):
        return node.file.inode.stat_result()
    return node.inode().stat_result()


def sys_fstat(proc: Process, fd: int) -> os.stat_result:
    """``fstat(fd)``; an ``O_PATH`` file answers too (``fdget_raw``)."""
    return proc.fdget_raw(fd).inode.stat_result()


def _stat_at(proc: Process, dirfd: int, path: str, flags: int) -> os.stat_result:
    if not path and flags & AT_EMPTY_PATH:
        file = dirfd_file(proc, dirfd)
        if file is None:
            raise NotMine()
        return file.inode.stat_result()
    node, _ = lookup_at(proc, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW)
    return node_stat(node)


def sys_newfstatat(proc: Process, dirfd: int, path: str, flags: int = 0) -> os.stat_result:
    """``newfstatat(dirfd, path, &st, flags)``: ``AT_SYMLINK_NOFOLLOW``, ``AT_EMPTY_PATH``,
    ``AT_NO_AUTOMOUNT``; any other flag is ``EINVAL`` (``vfs_fstatat``)."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
        raise kerr(EINVAL)
    return _stat_at(proc, dirfd, path, flags)


def sys_statx(proc: Process, dirfd: int, path: str, flags: int, mask: int) -> os.stat_result:
    """``statx``: as ``newfstatat`` (every basic field is known, whatever ``mask`` asks),
    with the ``AT_STATX_*`` sync flags accepted; ``AT_STATX_SYNC_TYPE`` both set or a
    reserved ``mask`` bit (``STATX__RESERVED``) is ``EINVAL``."""
    allowed = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE
    if flags & ~allowed or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        raise kerr(EINVAL)
    if mask & 0x80000000:  # STATX__RESERVED
        raise kerr(EINVAL)
    return _stat_at(proc, dirfd, path, flags)


def may_access(st: os.stat_result, mode: int, effective_ids: bool) -> bool:
    """``access(2)``'s permission check of ``st`` for the caller (``generic_permission``)."""
    mode &= os.R_OK | os.W_OK | os.X_OK
    if not mode:
        return True
    uid = os.geteuid() if effective_ids else os.getuid()
    gid = os.getegid() if effective_ids else os.getgid()
    perm = st.st_mode
    if uid == 0:  # CAP_DAC_OVERRIDE: anything but executing a file with no x bit at all
        return not (mode & os.X_OK and not _stat.S_ISDIR(perm) and not perm & 0o111)
    if uid == st.st_uid:
        bits = (perm >> 6) & 7
    elif gid == st.st_gid or st.st_gid in os.getgroups():
        bits = (perm >> 3) & 7
    else:
        bits = perm & 7
    return mode & bits == mode


def sys_faccessat(proc: Process, dirfd: int, path: str, mode: int, flags: int = 0) -> None:
    """``faccessat2(dirfd, path, mode, flags)``: returns when allowed, else ``EACCES``
    (``ENOENT`` and friends from the lookup).  ``mode`` beyond ``F_OK|R_OK|W_OK|X_OK``
    or an unknown flag is ``EINVAL``."""
    if mode & ~(os.R_OK | os.W_OK | os.X_OK):
        raise kerr(EINVAL)
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    st = _stat_at(proc, dirfd, path, flags)
    if not may_access(st, mode, bool(flags & AT_EACCESS)):
        raise kerr(EACCES)


def sys_readlinkat(proc: Process, dirfd: int, path: str, bufsiz: int = PATH_MAX) -> bytes:
    """``readlinkat``: the link's target, cut to ``bufsiz`` bytes; ``EINVAL`` for
    ``bufsiz <= 0`` or a node that is not a symlink."""
    if bufsiz <= 0:
        raise kerr(EINVAL)
    if not path:
        file = dirfd_file(proc, dirfd)
        if file is None:
            raise NotMine()
        node = file.private_data if _stat.S_ISLNK(file.inode.mode) else None
        if not isinstance(node, Symlink):
            raise kerr(ENOENT)  # do_readlinkat of an empty path: not a symlink fd
    else:
        node, _ = lookup_at(proc, dirfd, path, False)
    if not isinstance(node, Symlink):
        raise kerr(EINVAL)
    return os.fsencode(node.target)[:bufsiz]
