"""Extended attributes of mock paths and fds (``fs/xattr.c``): ``getxattr``,
``setxattr``, ``listxattr``, ``removexattr`` and their ``l*`` (the link itself) and
``f*`` (an fd) forms, as ``sys_*xattrat(dirfd, path, at_flags, ...)``.

Which names a mock inode can hold depends on its filesystem (``attr.fs_of``; checked
on real Linux 7.2, ``tests/supervisor/c/xattrprobe.c`` and ``attrprobe.c``):

* devtmpfs (``/dev``; shmem): ``security.``, ``trusted.``, ``user.`` (regular files
  and directories) stored on the inode; the POSIX ACL names have a handler (``ENODATA``
  when unset, a value that is no ACL ``EINVAL``);
* sysfs (kernfs): ``security.`` and ``trusted.`` stored; ``user.`` and ``system.``
  have no handler for sysfs (``EOPNOTSUPP``; reading ``user.`` says ``ENODATA``);
* procfs and anonymous inodes (a dma-buf, an eventfd, a socket): no xattr support at
  all (``EOPNOTSUPP``);
* a name with no known namespace prefix has no handler anywhere: ``EOPNOTSUPP``.

Before the handler, ``xattr_permission``: ``trusted.`` needs ``CAP_SYS_ADMIN``
(``EPERM`` to change, ``ENODATA`` to read), ``user.`` only on a regular file or a
directory (the same errnos), then the inode's mode (``EACCES``); and the capability
module's ``cap_inode_setxattr``: changing a ``security.`` name needs ``CAP_SYS_ADMIN``.
The credentials are the caller's (``cred.current_ids``).  Nothing else lists: there
are no LSM labels here.
"""

from __future__ import annotations

import stat as _stat
import time
from errno import E2BIG, EACCES, EEXIST, EINVAL, ENODATA, EOPNOTSUPP, EPERM, ERANGE
from typing import TYPE_CHECKING

from ..cred import (
    CAP_SYS_ADMIN,
    MAY_READ,
    MAY_WRITE,
    Ids,
    current_ids,
    generic_permission,
    inode_owner_or_capable,
)
from ..errors import NotMine, kerr
from ..fsnotify import IN_ATTRIB, fsnotify
from ..trace import TracePoint
from . import AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW
from .attr import file_fs, inode_at

if TYPE_CHECKING:
    from ..fs import Inode
    from ..process import Process

__all__ = [
    "XATTR_CREATE",
    "XATTR_NAME_MAX",
    "XATTR_REPLACE",
    "XATTR_SIZE_MAX",
    "check_setxattr",
    "sys_getxattrat",
    "sys_listxattrat",
    "sys_removexattrat",
    "sys_setxattrat",
]

trace_vfs_setxattr = TracePoint("vfs.setxattr", "ino", "name", "size")
trace_vfs_removexattr = TracePoint("vfs.removexattr", "ino", "name")

XATTR_CREATE = 1
XATTR_REPLACE = 2
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
_PREFIXES = ("security.", "system.", "trusted.", "user.")
_ACLS = ("system.posix_acl_access", "system.posix_acl_default")


def import_xattr_name(name: str) -> None:
    """``import_xattr_name``: ``ERANGE`` for an empty name or one past 255 bytes."""
    if not name or len(name.encode("utf-8", "surrogateescape")) > XATTR_NAME_MAX:
        raise kerr(ERANGE)


def check_setxattr(flags: int, name: str, size: int) -> None:
    """``setxattr_copy``'s checks, made before the path is looked up: the flags
    (``EINVAL``), the name (``ERANGE``), the value's size (``E2BIG``).  A front-end
    that copies the value from user memory calls this before the copy."""
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise kerr(EINVAL)
    import_xattr_name(name)
    if size > XATTR_SIZE_MAX:
        raise kerr(E2BIG)


def _target(proc: Process, dirfd: int, path: str | None, at_flags: int) -> tuple[Inode, str]:
    """The inode and filesystem a call names: an fd (``path`` None: ``fdget``, an
    ``O_PATH`` fd is ``EBADF``) or a path (``AT_SYMLINK_NOFOLLOW``: the ``l*`` form)."""
    if path is None:
        if dirfd not in proc.files:
            if dirfd < 0 or (proc.fdt.knows_real_fds and not proc.fdt.is_real_fd(dirfd)):
                proc.fdget(dirfd)  # EBADF
            raise NotMine()
        file = proc.fdget(dirfd)
        return file.inode, file_fs(file)
    return inode_at(proc, dirfd, path, at_flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))


def _xattr_permission(ids: Ids, inode: Inode, name: str, mask: int) -> None:
    """``xattr_permission``."""
    write = mask == MAY_WRITE
    if name.startswith(("security.", "system.")):
        return
    if name.startswith("trusted."):
        if not ids.capable(CAP_SYS_ADMIN):
            raise kerr(EPERM if write else ENODATA)
        return
    if name.startswith("user."):
        mode = inode.mode
        if not _stat.S_ISREG(mode) and not _stat.S_ISDIR(mode):
            raise kerr(EPERM if write else ENODATA)
        sticky_dir = _stat.S_ISDIR(mode) and mode & _stat.S_ISVTX
        if sticky_dir and write and not inode_owner_or_capable(ids, inode):
            raise kerr(EPERM)
    if not generic_permission(ids, inode, mask):
        raise kerr(EACCES)


def _stores(fs: str, name: str) -> bool:
    """Does the filesystem have a handler that stores ``name``?  ``EOPNOTSUPP`` where
    none answers at all; ``False`` for the handlers that store nothing (sysfs'
    ``user.``, devtmpfs' ACLs: they answer ``ENODATA`` when read)."""
    if fs in ("devtmpfs", "sysfs") and name.startswith(("security.", "trusted.")):
        return True
    if fs == "devtmpfs" and name.startswith("user."):
        return True
    if (fs == "devtmpfs" and name in _ACLS) or (fs == "sysfs" and name.startswith("user.")):
        return False
    raise kerr(EOPNOTSUPP)


def _changing(proc: Process, inode: Inode, fs: str, name: str) -> dict[str, bytes]:
    """The checks of a change (``setxattr``, ``removexattr``) up to the handler; the
    inode's attribute dict (made when first needed)."""
    ids = current_ids(proc.kernel)
    _xattr_permission(ids, inode, name, MAY_WRITE)
    if name.startswith("security.") and not ids.capable(CAP_SYS_ADMIN):
        raise kerr(EPERM)  # cap_inode_setxattr / cap_inode_removexattr
    if not _stores(fs, name):
        raise kerr(EINVAL if name in _ACLS else EOPNOTSUPP)
    if inode.xattrs is None:
        inode.xattrs = {}
    return inode.xattrs


def sys_setxattrat(
    proc: Process,
    dirfd: int,
    path: str | None,
    at_flags: int,
    name: str,
    value: bytes,
    flags: int = 0,
) -> None:
    """``setxattr``: ``XATTR_CREATE`` of a name it has is ``EEXIST``, ``XATTR_REPLACE``
    of one it lacks ``ENODATA``."""
    check_setxattr(flags, name, len(value))
    inode, fs = _target(proc, dirfd, path, at_flags)
    attrs = _changing(proc, inode, fs, name)
    if flags & XATTR_CREATE and name in attrs:
        raise kerr(EEXIST)
    if flags & XATTR_REPLACE and name not in attrs:
        raise kerr(ENODATA)
    attrs[name] = bytes(value)
    inode.ctime_ns = time.time_ns()
    if inode.fsn is not None:
        fsnotify(inode, IN_ATTRIB)  # fsnotify_xattr
    tracer = proc.kernel.tracer
    if tracer.enabled:
        trace_vfs_setxattr(tracer, inode.ino, name, len(value))


def sys_removexattrat(
    proc: Process, dirfd: int, path: str | None, at_flags: int, name: str
) -> None:
    """``removexattr``: ``ENODATA`` for a name it lacks."""
    import_xattr_name(name)
    inode, fs = _target(proc, dirfd, path, at_flags)
    attrs = _changing(proc, inode, fs, name)
    if attrs.pop(name, None) is None:
        raise kerr(ENODATA)
    inode.ctime_ns = time.time_ns()
    if inode.fsn is not None:
        fsnotify(inode, IN_ATTRIB)
    tracer = proc.kernel.tracer
    if tracer.enabled:
        trace_vfs_removexattr(tracer, inode.ino, name)


def sys_getxattrat(
    proc: Process, dirfd: int, path: str | None, at_flags: int, name: str, size: int
) -> bytes:
    """``getxattr``: the value (``size`` 0: as many zero bytes as the value has, the
    front-end returns their count); ``ERANGE`` when ``size`` is too small, ``ENODATA``
    when the inode lacks the name."""
    import_xattr_name(name)
    inode, fs = _target(proc, dirfd, path, at_flags)
    _xattr_permission(current_ids(proc.kernel), inode, name, MAY_READ)
    if not _stores(fs, name) or inode.xattrs is None or name not in inode.xattrs:
        raise kerr(ENODATA)
    value = inode.xattrs[name]
    if size == 0:
        return bytes(len(value))
    if size < len(value):
        raise kerr(ERANGE)
    return value


def sys_listxattrat(proc: Process, dirfd: int, path: str | None, at_flags: int, size: int) -> bytes:
    """``listxattr``: the names, each NUL-terminated (``trusted.`` ones only for
    ``CAP_SYS_ADMIN``, as ``simple_xattr_list``); ``size`` 0 and ``ERANGE`` as
    :func:`sys_getxattrat`."""
    inode, _ = _target(proc, dirfd, path, at_flags)
    names = inode.xattrs or {}
    admin = current_ids(proc.kernel).capable(CAP_SYS_ADMIN)
    out = b"".join(
        n.encode("utf-8", "surrogateescape") + b"\0"
        for n in names
        if admin or not n.startswith("trusted.")
    )
    if size == 0:
        return bytes(len(out))
    if size < len(out):
        raise kerr(ERANGE)
    return out
