"""Path resolution with a ``dirfd``, ``openat(2)`` (``fs/namei.c``, ``fs/open.c``), and
``mkdirat``/``unlinkat``/``renameat2`` in the mock tree (never on the host's files).

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
from errno import (
    EACCES,
    EBADF,
    EEXIST,
    EINVAL,
    EISDIR,
    ENOENT,
    ENOTDIR,
    ENOTEMPTY,
    EPERM,
    EROFS,
    EXDEV,
)
from os import O_CLOEXEC
from typing import TYPE_CHECKING, Any, TypeVar

from ..cred import MAY_EXEC, MAY_WRITE, current_ids, generic_permission
from ..errors import NotMine, kerr
from ..fs import File
from ..fsnotify import (
    IN_ATTRIB,
    IN_CREATE,
    IN_DELETE,
    IN_OPEN,
    child_added,
    fsnotify,
    fsnotify_name,
    inode_removed,
    moved,
)
from ..realfd import REAL
from ..vfs import HOST_READ_ONLY, ChrDev, Dir, Vfs
from ..vfs import open_chrdev as vfs_open_chrdev
from . import AT_FDCWD

if TYPE_CHECKING:
    from ..process import Process
    from ..vfs import Node

__all__ = [
    "AT_REMOVEDIR",
    "RENAME_NOREPLACE",
    "at_path",
    "dirfd_file",
    "host_exists",
    "lookup_at",
    "lookup_open_at",
    "open_chrdev",
    "sys_mkdirat",
    "sys_openat",
    "sys_renameat2",
    "sys_unlinkat",
]


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


def open_chrdev(proc: Process, node: ChrDev, path: str, flags: int) -> int:
    """``openat`` of the device node ``node`` the front-end found at the absolute ``path``
    itself (the redirection's fast path for ``/dev/<name>``, untraced): what
    :func:`sys_openat` does for it, no walk.  ``flags`` must not hold ``O_PATH``,
    ``O_DIRECTORY`` or ``O_CREAT`` (their rules are :func:`sys_openat`'s)."""
    k = proc.kernel
    if k.current is proc:
        file = vfs_open_chrdev(proc, node, path, flags)
    else:  # a driver's ->open sees the caller as current
        with k.running(proc):
            file = vfs_open_chrdev(proc, node, path, flags)
    if file.inode.fsn is not None:  # fsnotify_open, as Vfs.open
        fsnotify(file.inode, IN_OPEN)
    try:
        return proc.install_file(file, flags & O_CLOEXEC != 0)
    except BaseException:
        file.put()
        raise


# -- mkdir, unlink, rmdir, rename (fs/namei.c) ---------------------------------------------
#: ``unlinkat``'s flag: remove a directory (``rmdir``)
AT_REMOVEDIR = 0x200
#: ``renameat2``'s flags: fail if the new name exists; the others are not modelled
RENAME_NOREPLACE = 1


class _Missing:
    """A name the mock directory does not have."""


_MISSING = _Missing()


def host_exists(full: str) -> bool:
    """Whether the host has ``full`` (asked past the redirection)."""
    try:
        REAL.lstat(full)
    except OSError:
        return False
    return True


def _host_read_only(full: str) -> bool:
    """A host path the mock keeps read-only (``vfs.HOST_READ_ONLY``: ``EROFS``)."""
    return full.startswith(HOST_READ_ONLY)


def _lookup_change(proc: Process, full: str) -> tuple[Node | None, Node | _Missing | None]:
    """``(parent, target)`` for a path to create or remove: the parent directory's node
    (``None``: the host's) and the name's (``None``: a host file shown through the
    mock tree, ``_MISSING``: no such name, in a mock directory or in the host's part of
    an overlay directory such as ``/sys/kernel``)."""
    vfs = proc.kernel.subsys(Vfs)
    parent = as_current(proc, vfs.lookup, os.path.dirname(full) or "/", True)
    try:
        target: Node | _Missing | None = as_current(proc, vfs.lookup, full, False)
    except OSError as e:
        if e.errno != ENOENT:
            raise
        target = _MISSING
    if target is None and parent is not None and not host_exists(full):
        target = _MISSING
    return parent, target


def _may_change(proc: Process, parent: Node, full: str) -> None:
    """``may_create``/``may_delete`` in a mock directory: write and search permission
    on it for the caller's credentials (``EACCES``; every mock directory is
    ``drwxr-xr-x root`` unless chmod'ed)."""
    if not isinstance(parent, Dir):
        raise kerr(ENOTDIR)
    if not generic_permission(current_ids(proc.kernel), parent.inode(), MAY_WRITE | MAY_EXEC):
        raise kerr(EACCES)


def _devtmpfs(full: str) -> bool:
    """Only devtmpfs (``/dev``) has ``mkdir``/``unlink``/``rename`` ops; sysfs and procfs
    directories have none (``EPERM``)."""
    return full.startswith("/dev/")


def _trace(proc: Process, event: str, **fields: object) -> None:
    tracer = proc.kernel.tracer
    if tracer.enabled:
        tracer.emit(event, **fields)


def _full(proc: Process, dirfd: int, path: str) -> str:
    full = at_path(proc, dirfd, path)
    if not full.rstrip("/"):
        return "/"
    return os.path.normpath(full)


def sys_mkdirat(proc: Process, dirfd: int, path: str, mode: int) -> None:
    """``mkdirat``: a directory in the mock devtmpfs (root only); ``EEXIST`` for a name
    that exists, ``EACCES`` for another user, ``EPERM`` in sysfs and ``/proc/bus/pci``
    (no ``->mkdir``), ``EROFS`` in a host tree kept read-only; ``NotMine`` elsewhere."""
    full = _full(proc, dirfd, path)
    parent, target = _lookup_change(proc, full)
    if parent is None:
        if not _host_read_only(full):
            raise NotMine(None if full == path else full)
        raise kerr(EEXIST if host_exists(full) else EROFS)
    if target is not _MISSING:
        raise kerr(EEXIST)
    if not isinstance(parent, Dir) or (not parent.owned and not _devtmpfs(full)):
        # a name only the host could have (/sys/kernel/<new>): its read-only sysfs
        raise kerr(EROFS if isinstance(parent, Dir) else ENOTDIR)
    _may_change(proc, parent, full)
    if not _devtmpfs(full):
        raise kerr(EPERM)
    new = proc.kernel.subsys(Vfs).mkdir(full, owned=True)
    _trace(proc, "vfs.mkdir", path=full, mode=mode & 0o7777)
    pinode = parent.inode()
    if pinode.fsn is not None:  # fsnotify_mkdir
        name = os.path.basename(full)
        child_added(pinode, name, new.inode())
        fsnotify_name(pinode, IN_CREATE, name, new.inode())


def sys_unlinkat(proc: Process, dirfd: int, path: str, flags: int) -> None:
    """``unlinkat`` (``AT_REMOVEDIR``: ``rmdir``): a node of the mock devtmpfs goes, for
    root (``EACCES`` for anyone else; ``EISDIR``/``ENOTDIR``/``ENOTEMPTY`` as Linux);
    ``EPERM`` in sysfs and ``/proc/bus/pci``; ``EROFS`` for a host file shown through
    the mock tree (``/dev/null``) or in a host tree kept read-only; ``NotMine`` elsewhere."""
    if flags & ~AT_REMOVEDIR:
        raise kerr(EINVAL)
    full = _full(proc, dirfd, path)
    parent, target = _lookup_change(proc, full)
    if parent is None:
        if not _host_read_only(full):
            raise NotMine(None if full == path else full)
        raise kerr(EROFS if host_exists(full) else ENOENT)
    if isinstance(target, _Missing):
        raise kerr(ENOENT)
    if target is None:
        raise kerr(EROFS)  # [I] the host's node is not the program's to remove
    _may_change(proc, parent, full)
    rmdir = bool(flags & AT_REMOVEDIR)
    if rmdir and not isinstance(target, Dir):
        raise kerr(ENOTDIR)
    if not rmdir and isinstance(target, Dir):
        raise kerr(EISDIR)
    if not _devtmpfs(full):
        raise kerr(EPERM)
    if rmdir and isinstance(target, Dir) and target.children:
        raise kerr(ENOTEMPTY)
    tinode = target.inode()
    if tinode.fsn is not None:  # the inode: its link count, then its end
        if not rmdir:
            fsnotify(tinode, IN_ATTRIB)
        entries = target.entries if isinstance(target, Dir) else {}
        inode_removed(tinode, {n: c.inode() for n, c in entries.items()})
    proc.kernel.subsys(Vfs).unlink(full)
    _trace(proc, "vfs.rmdir" if rmdir else "vfs.unlink", path=full)
    fsnotify_name(parent.inode(), IN_DELETE, os.path.basename(full), tinode)


def sys_renameat2(
    proc: Process, olddirfd: int, old: str, newdirfd: int, new: str, flags: int = 0
) -> None:
    """``renameat2``: within the mock devtmpfs, for root; between the mock tree and a
    host file system ``EXDEV`` (different mounts); ``EPERM`` in sysfs; ``EROFS`` for a
    host node shown through the mock tree; ``NotMine`` when neither path is the mock's.
    Only ``RENAME_NOREPLACE`` of the flags (``EINVAL`` for the others)."""
    fo, fn = _full(proc, olddirfd, old), _full(proc, newdirfd, new)
    po, to = _lookup_change(proc, fo)
    pn, tn = _lookup_change(proc, fn)
    mine_o = po is not None or _host_read_only(fo)
    mine_n = pn is not None or _host_read_only(fn)
    if not mine_o and not mine_n:
        raise NotMine()
    if flags & ~RENAME_NOREPLACE:
        raise kerr(EINVAL)
    if isinstance(to, _Missing):
        raise kerr(ENOENT)
    if mine_o != mine_n or _devtmpfs(fo) != _devtmpfs(fn):
        raise kerr(EXDEV)
    if po is None or pn is None or to is None or tn is None:
        raise kerr(EROFS)
    _may_change(proc, po, fo)
    _may_change(proc, pn, fn)
    if not _devtmpfs(fo):
        raise kerr(EPERM)
    if not isinstance(tn, _Missing):
        if flags & RENAME_NOREPLACE:
            raise kerr(EEXIST)
        if isinstance(to, Dir) and not isinstance(tn, Dir):
            raise kerr(ENOTDIR)
        if not isinstance(to, Dir) and isinstance(tn, Dir):
            raise kerr(EISDIR)
        if tn is to:
            return
        if isinstance(tn, Dir) and tn.children:
            raise kerr(ENOTEMPTY)
    if isinstance(to, Dir) and (fn + "/").startswith(fo + "/"):
        raise kerr(EINVAL)  # a directory into itself
    if not isinstance(tn, _Missing):
        inode_removed(tn.inode())  # the replaced node is gone
    proc.kernel.subsys(Vfs).rename(fo, fn)
    _trace(proc, "vfs.rename", old=fo, new=fn)
    moved(
        proc.kernel,
        po.inode(),
        os.path.basename(fo),
        pn.inode(),
        os.path.basename(fn),
        to.inode(),
    )
