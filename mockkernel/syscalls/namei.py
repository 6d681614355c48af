"""Path resolution with a ``dirfd`` and ``openat(2)`` (``fs/namei.c``, ``fs/open.c``).

Which paths are the mock's: an absolute path the mock tree answers (see
:mod:`mockkernel.vfs`), or a relative one whose ``dirfd`` is an open mock directory.
A relative path with ``AT_FDCWD`` or a real ``dirfd`` is the real OS's: the current
directory is always a real one.  Everything else raises
:class:`~mockkernel.errors.NotMine`.
"""

from __future__ import annotations

import os
import stat as _stat
from collections.abc import Callable
from errno import EBADF, ENOENT, ENOTDIR
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import NotMine, kerr
from ..fs import File
from ..vfs import Vfs
from . import AT_FDCWD

if TYPE_CHECKING:
    from ..process import Process
    from ..vfs import Node

__all__ = ["at_path", "dirfd_file", "lookup_at", "lookup_open_at", "sys_openat"]


def dirfd_file(proc: Process, dirfd: int) -> File | None:
    """The mock file at ``dirfd`` (``fdget_raw``: ``O_PATH`` included); ``None`` for
    ``AT_FDCWD`` or a real fd.  ``EBADF`` for a number that is certainly not open."""
    file = proc.files.get(dirfd)
    if file is not None:
        return file
    if dirfd == AT_FDCWD:
        return None
    if dirfd < 0 or (proc.fdt.knows_real_fds and not proc.fdt.is_real_fd(dirfd)):
        raise kerr(EBADF)
    return None


def at_path(proc: Process, dirfd: int, path: str) -> str:
    """The absolute path ``(dirfd, path)`` names, when it may be the mock's.

    ``NotMine`` for a relative path from the (real) current directory or a real dirfd;
    ``ENOTDIR`` when ``dirfd`` is a mock file that is not a directory; ``ENOENT`` for an
    empty path (``AT_EMPTY_PATH`` is the caller's business).
    """
    if path.startswith("/"):
        return path
    file = dirfd_file(proc, dirfd)
    if file is None:
        raise NotMine()
    if not path:
        raise kerr(ENOENT)
    if not _stat.S_ISDIR(file.inode.mode) or file.path is None:
        raise kerr(ENOTDIR)
    return file.path.rstrip("/") + "/" + path


_T = TypeVar("_T")


def as_current(proc: Process, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` with ``proc`` the current task (it already is on a syscall made for
    it on its own thread: then no switch at all)."""
    k = proc.kernel
    if k.current is proc:
        return fn(*args)
    with k.running(proc):
        return fn(*args)


def lookup_at(proc: Process, dirfd: int, path: str, follow: bool) -> tuple[Node, str]:
    """The mock node ``(dirfd, path)`` names and its absolute path; ``NotMine`` if none.

    ``/proc/self`` is the current task (``proc`` while it is looked up).
    """
    full = at_path(proc, dirfd, path)
    node = as_current(proc, proc.kernel.subsys(Vfs).lookup, full, follow)
    if node is None:
        raise NotMine(None if full is path else os.path.normpath(full))
    return node, full


def lookup_open_at(proc: Process, dirfd: int, path: str, flags: int) -> Node:
    """The node ``openat(dirfd, path, flags)`` would open (its ``O_NOFOLLOW`` and
    ``O_CREAT`` rules), without opening it; ``NotMine`` if none."""
    full = at_path(proc, dirfd, path)
    node = as_current(proc, proc.kernel.subsys(Vfs).lookup_open, full, flags)
    if node is None:
        raise NotMine(None if full is path else os.path.normpath(full))
    return node


def sys_openat(
    proc: Process,
    dirfd: int,
    path: str,
    flags: int,
    mode: int = 0o666,
    found: Node | None = None,
) -> int:
    """``openat(dirfd, path, flags, mode)``: a new fd for a mock node.

    Rules as Linux's ``do_filp_open``: ``O_NOFOLLOW`` on a final symlink is ``ELOOP``
    (but ``O_PATH|O_NOFOLLOW`` opens the link), ``O_DIRECTORY`` of a non-directory is
    ``ENOTDIR``, a directory opens read-only (else ``EISDIR``), ``O_CREAT`` of a missing
    name in a mock directory is ``EACCES`` and of an existing one with ``O_EXCL``
    ``EEXIST``, ``O_CREAT|O_DIRECTORY`` is ``EINVAL``.  A driver's ``->open`` runs with
    ``proc`` current.  ``found``: the node :func:`lookup_open_at` just returned for
    these arguments (not looked up again).
    """
    full = at_path(proc, dirfd, path)
    k = proc.kernel
    try:  # a driver's ->open sees the caller as current
        file = as_current(proc, k.subsys(Vfs).open, full, flags, mode, found)
    except NotMine as e:
        if full is path:
            raise
        raise NotMine(os.path.normpath(full)) from e
    try:
        return proc.install_file(file, bool(flags & os.O_CLOEXEC))
    except BaseException:
        file.put()
        raise
