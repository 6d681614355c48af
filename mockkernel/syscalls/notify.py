"""``inotify_add_watch`` and ``inotify_rm_watch`` on a mock inotify instance
(``fs/notify/inotify/inotify_user.c``); the events are :mod:`mockkernel.fsnotify`'s."""

from __future__ import annotations

import stat as _stat
from errno import EACCES, EINVAL, ENOTDIR
from typing import TYPE_CHECKING

from ..cred import MAY_READ, current_ids, generic_permission
from ..errors import kerr
from ..fs import Inode
from ..fsnotify import (
    ALL_INOTIFY_BITS,
    IN_DONT_FOLLOW,
    IN_MASK_ADD,
    IN_MASK_CREATE,
    IN_ONLYDIR,
    InotifyGroup,
    is_inotify,
)
from ..vfs import Dir, _FdTarget
from . import AT_FDCWD
from .namei import lookup_at

if TYPE_CHECKING:
    from ..fs import File
    from ..process import Process

__all__ = [
    "add_watch",
    "check_add_watch",
    "inotify_group",
    "sys_inotify_add_watch",
    "sys_inotify_rm_watch",
]


def check_add_watch(mask: int) -> None:
    """The mask's checks, made before the fd's: no inotify bit, or ``IN_MASK_ADD`` with
    ``IN_MASK_CREATE``: ``EINVAL``."""
    if not mask & ALL_INOTIFY_BITS or (mask & IN_MASK_ADD and mask & IN_MASK_CREATE):
        raise kerr(EINVAL)


def inotify_group(proc: Process, fd: int) -> InotifyGroup:
    """The inotify instance at ``fd``: ``EBADF`` for none, ``EINVAL`` for another file."""
    file: File = proc.fdget(fd)
    if not is_inotify(file):
        raise kerr(EINVAL)
    group: InotifyGroup = file.private_data
    return group


def add_watch(proc: Process, group: InotifyGroup, path: str, mask: int) -> int:
    """The lookup (``IN_DONT_FOLLOW``, ``IN_ONLYDIR``: ``ENOTDIR``), read permission
    (``EACCES``), then a new or updated watch of ``group`` (its ``wd``; ``IN_MASK_CREATE``
    of a watched inode: ``EEXIST``).  ``NotMine`` for a host path."""
    node, _ = lookup_at(proc, AT_FDCWD, path, not mask & IN_DONT_FOLLOW)
    inode: Inode = node.file.inode if isinstance(node, _FdTarget) else node.inode()
    if mask & IN_ONLYDIR and not _stat.S_ISDIR(inode.mode):
        raise kerr(ENOTDIR)
    if not generic_permission(current_ids(proc.kernel), inode, MAY_READ):
        raise kerr(EACCES)
    children = None
    if isinstance(node, Dir):
        children = {name: child.inode() for name, child in node.children.items()}
    return group.add_watch(inode, mask, children)


def sys_inotify_add_watch(proc: Process, fd: int, path: str, mask: int) -> int:
    """``inotify_add_watch``: the mask, the fd, then :func:`add_watch`."""
    check_add_watch(mask)
    return add_watch(proc, inotify_group(proc, fd), path, mask)


def sys_inotify_rm_watch(proc: Process, fd: int, wd: int) -> None:
    """``inotify_rm_watch``: ``EINVAL`` for a ``wd`` the instance lacks; the watch's
    ``IN_IGNORED`` is queued."""
    inotify_group(proc, fd).rm_watch(wd)
