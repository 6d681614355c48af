"""Extended attributes of mock paths and fds: ``getxattr``/``lgetxattr``/``fgetxattr`` and
``listxattr``/``llistxattr``/``flistxattr``.

The mock stores no extended attribute, so every answer is Linux's for an inode that has
none, which depends on the filesystem (checked on real Linux 7.2,
``tests/supervisor/c/xattrprobe.c``):

* devtmpfs (a mock path under ``/dev``, and the fds opened there): shmem has handlers
  for ``security.``, ``trusted.``, ``user.`` and the POSIX ACLs, so ``ENODATA``;
* sysfs (kernfs; ``/sys``): ``security.``, ``trusted.``, ``user.``: ``ENODATA``; the
  POSIX ACL names have no handler: ``EOPNOTSUPP``;
* procfs (``/proc``) and anon inodes (a dma-buf, a vfio device fd, an eventfd): no
  xattr support (``IOP_XATTR`` clear): ``EOPNOTSUPP``;
* before any of that, ``xattr_permission``: a ``user.`` name on an inode that is neither
  a regular file nor a directory is ``ENODATA`` (a dma-buf's anon inode has no type
  bits; a device node, a symlink with the ``l*`` calls);
* a name with no known namespace prefix has no handler anywhere: ``EOPNOTSUPP``.

``listxattr`` lists nothing (0) on all of them (no LSM labels here).  The name is read
first, as ``import_xattr_name`` does: ``EFAULT`` for a bad pointer, ``ERANGE`` for an
empty name or one of 256 bytes or more.
"""

from __future__ import annotations

import stat as _stat
from errno import EFAULT, ENODATA, EOPNOTSUPP, ERANGE
from typing import TYPE_CHECKING

from ..errors import kerr
from ..uaccess import strndup_user
from . import paths
from .uabi import i32

if TYPE_CHECKING:
    from ..fs import File
    from .handlers import Call, Result

__all__ = ["getxattr", "listxattr"]

XATTR_NAME_MAX = 255
_PREFIXES = ("security.", "system.", "trusted.", "user.")
_ACLS = ("system.posix_acl_access", "system.posix_acl_default")


def _name(addr: int) -> str:
    """``import_xattr_name``: the name, ``ERANGE`` when empty or too long."""
    try:
        raw = strndup_user(addr, XATTR_NAME_MAX + 1)
    except OSError as e:
        if e.errno == EFAULT:
            raise
        raise kerr(ERANGE) from None  # no NUL within 256 bytes
    if not raw:
        raise kerr(ERANGE)
    return raw.decode("utf-8", "surrogateescape")


def _fs_of(path: str | None, mode: int) -> str:
    """``devtmpfs``, ``sysfs``, ``proc`` or ``anon`` (an anon inode, a socket)."""
    if path is None or _stat.S_ISSOCK(mode):
        return "anon"
    if path.startswith("/dev"):
        return "devtmpfs"
    if path.startswith("/sys"):
        return "sysfs"
    return "proc" if path.startswith("/proc") else "anon"


def _answer(name: str, fs: str, mode: int) -> OSError:
    """The errno of ``getxattr(name)`` on an inode with no extended attributes."""
    if name.startswith("user.") and not (_stat.S_ISREG(mode) or _stat.S_ISDIR(mode)):
        return kerr(ENODATA)  # xattr_permission
    if not name.startswith(_PREFIXES):
        return kerr(EOPNOTSUPP)
    if fs == "devtmpfs":  # shmem: security, trusted, user and the POSIX ACLs
        return kerr(ENODATA if name in _ACLS or not name.startswith("system.") else EOPNOTSUPP)
    if fs == "sysfs":  # kernfs: security, trusted, user
        return kerr(EOPNOTSUPP if name.startswith("system.") else ENODATA)
    return kerr(EOPNOTSUPP)


def _target(c: Call, path_i: int | None, follow: bool) -> tuple[str, int] | None:
    """(filesystem, mode) of the mock path or fd the call names; ``None``: the host's."""
    if path_i is None:
        fd = c.mock_fd()
        if fd is None:
            return None
        file: File = c.proc.files[fd]
        mode = file.inode.stat_result().st_mode
        return _fs_of(file.path, mode), mode
    p = paths.resolve(c, paths.AT_FDCWD, paths.read_path(c.args[path_i]))
    if p is None:
        return None
    node = paths.lookup_node(c, p, follow)
    if node is None:
        return None
    return _fs_of(p, paths.node_stat(node).st_mode), paths.node_stat(node).st_mode


def getxattr(c: Call, path_i: int | None, follow: bool) -> Result:
    """``getxattr(path, name, value, size)`` (``path_i``: the path argument, ``None``
    for ``fgetxattr``).  ``CONTINUE`` for a host path or a real fd."""
    from .handlers import CONTINUE

    name = _name(c.args[1])
    where = _target(c, path_i, follow)
    if where is None:
        return CONTINUE
    fs, mode = where
    raise _answer(name, fs, mode)


def listxattr(c: Call, path_i: int | None, follow: bool) -> Result:
    """``listxattr(path, list, size)``: nothing to list on a mock inode (0)."""
    from .handlers import CONTINUE

    if path_i is None and i32(c.args[0]) not in c.proc.files:
        return CONTINUE
    return CONTINUE if _target(c, path_i, follow) is None else 0
