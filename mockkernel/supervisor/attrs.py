"""The attribute calls of a supervised process on mock paths and fds: ``chmod``/
``fchmodat``/``fchmodat2``, ``chown``/``lchown``/``fchownat``, ``utime``/``utimes``/
``futimesat``/``utimensat``, ``truncate``, ``setxattr``/``removexattr`` (and their
``l*``/``f*`` forms), and ``inotify_add_watch``/``fanotify_mark`` of a mock path.

Each decodes the tracee's arguments in the kernel's order (what Linux checks before the
lookup is checked before it here) and calls the one implementation,
``Process.sys_*`` (``mockkernel/syscalls/attr.py``, ``xattr.py``), with an absolute
path (``paths.resolve``: the caller's cwd or ``dirfd``); a path or fd that is not the
mock's is answered ``CONTINUE``.  Permissions are the caller's credentials
(``Process.ids_hook``: its ``/proc/<tid>/status``).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Mapping
from errno import E2BIG, EFAULT, EINVAL, ENOENT, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..errors import NotMine, kerr
from ..fsnotify import inotify_file
from ..realfd import REAL
from ..syscalls import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from ..syscalls.notify import add_watch, check_add_watch, inotify_group
from ..syscalls.xattr import XATTR_NAME_MAX, XATTR_SIZE_MAX, check_setxattr
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_struct_from_user, copy_to_user, strndup_user
from . import paths
from .fdtable import install_over
from .uabi import i32, s64, u32

if TYPE_CHECKING:
    from .handlers import Call, Result

__all__ = [
    "ENTRIES",
    "FD_ONLY",
    "PATH_ARGS",
    "fanotify_mark",
    "fsetxattr",
    "getxattr",
    "inotify_add_watch",
    "inotify_rm_watch",
    "listxattr",
    "removexattr",
    "setxattr",
    "sys_chmod",
    "sys_chown",
    "sys_fchmodat",
    "sys_fchmodat2",
    "sys_fchownat",
    "sys_futimesat",
    "sys_lchown",
    "sys_truncate",
    "sys_utime",
    "sys_utimensat",
    "sys_utimes",
]

trace_sup_inotify = TracePoint("sup.inotify", "pid", "fd")

Times = tuple[tuple[int, int], tuple[int, int]]


def _continue() -> Result:
    from .handlers import CONTINUE

    return CONTINUE


def _at(c: Call, dirfd: int, addr: int, flags: int, call: Callable[[int, str], None]) -> Result:
    """``call(dirfd, path)`` for a mock path (absolute) or, with ``AT_EMPTY_PATH`` and an
    empty path, a mock ``dirfd`` itself; answers 0, or ``CONTINUE`` for the host's."""
    path = paths.read_path(addr)
    if not path and flags & AT_EMPTY_PATH:
        if dirfd not in c.proc.files:
            return _continue()
        target, where = dirfd, ""
    elif not path:
        raise kerr(ENOENT)  # getname of "" without LOOKUP_EMPTY
    else:
        p = paths.resolve(c, dirfd, path)
        if p is None:
            return _continue()
        target, where = AT_FDCWD, p
    try:
        call(target, where)
    except NotMine:
        return _continue()
    return 0


# -- chmod, chown ---------------------------------------------------------------------------
def _fchmodat(c: Call, dirfd: int, addr: int, mode: int, flags: int) -> Result:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    return _at(c, dirfd, addr, flags, lambda d, p: c.proc.sys_fchmodat(d, p, mode, flags))


def sys_chmod(c: Call) -> Result:
    return _fchmodat(c, AT_FDCWD, c.args[0], u32(c.args[1]), 0)


def sys_fchmodat(c: Call) -> Result:
    return _fchmodat(c, i32(c.args[0]), c.args[1], u32(c.args[2]), 0)


def sys_fchmodat2(c: Call) -> Result:
    return _fchmodat(c, i32(c.args[0]), c.args[1], u32(c.args[2]), u32(c.args[3]))


def _fchownat(c: Call, dirfd: int, addr: int, uid: int, gid: int, flags: int) -> Result:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    return _at(c, dirfd, addr, flags, lambda d, p: c.proc.sys_fchownat(d, p, uid, gid, flags))


def sys_chown(c: Call) -> Result:
    return _fchownat(c, AT_FDCWD, c.args[0], i32(c.args[1]), i32(c.args[2]), 0)


def sys_lchown(c: Call) -> Result:
    return _fchownat(c, AT_FDCWD, c.args[0], i32(c.args[1]), i32(c.args[2]), AT_SYMLINK_NOFOLLOW)


def sys_fchownat(c: Call) -> Result:
    a = c.args
    return _fchownat(c, i32(a[0]), a[1], i32(a[2]), i32(a[3]), i32(a[4]))


# -- times ----------------------------------------------------------------------------------
def _utimensat(c: Call, dirfd: int, addr: int, times: Times | None, flags: int) -> Result:
    """``do_utimes``: a NULL path with an fd is that fd (``futimens``), else the path."""
    if addr == 0 and dirfd != AT_FDCWD:
        if dirfd not in c.proc.files:
            return _continue()
        c.proc.sys_utimensat(dirfd, None, times, flags)
        return 0
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    if addr == 0:
        raise kerr(EFAULT)
    return _at(c, dirfd, addr, flags, lambda d, p: c.proc.sys_utimensat(d, p, times, flags))


def sys_utimensat(c: Call) -> Result:
    """``utimensat``: the two ``timespec``s first (``EFAULT``); both ``UTIME_OMIT``: 0
    without a lookup (the layer says so too)."""
    a = c.args
    times: Times | None = None
    if a[2]:
        s0, n0, s1, n1 = struct.unpack("<qqqq", copy_from_user(a[2], 32))
        times = ((s0, n0), (s1, n1))
    return _utimensat(c, i32(a[0]), a[1], times, i32(a[3]))


def _timevals(addr: int) -> Times | None:
    """``utimes``' two ``timeval``s as ``timespec``s; ``EINVAL`` for a bad ``tv_usec``
    (``do_futimesat``, before the lookup)."""
    if addr == 0:
        return None
    s0, u0, s1, u1 = struct.unpack("<qqqq", copy_from_user(addr, 32))
    if not 0 <= u0 < 1_000_000 or not 0 <= u1 < 1_000_000:
        raise kerr(EINVAL)
    return (s0, u0 * 1000), (s1, u1 * 1000)


def sys_utimes(c: Call) -> Result:
    return _utimensat(c, AT_FDCWD, c.args[0], _timevals(c.args[1]), 0)


def sys_futimesat(c: Call) -> Result:
    return _utimensat(c, i32(c.args[0]), c.args[1], _timevals(c.args[2]), 0)


def sys_utime(c: Call) -> Result:
    """``utime``: a ``struct utimbuf`` (whole seconds), NULL for now."""
    times: Times | None = None
    if c.args[1]:
        at, mt = struct.unpack("<qq", copy_from_user(c.args[1], 16))
        times = ((at, 0), (mt, 0))
    return _utimensat(c, AT_FDCWD, c.args[0], times, 0)


# -- truncate -------------------------------------------------------------------------------
def sys_truncate(c: Call) -> Result:
    length = s64(c.args[1])
    if length < 0:
        raise kerr(EINVAL)  # do_sys_truncate, before the lookup
    return _at(c, AT_FDCWD, c.args[0], 0, lambda _d, p: c.proc.sys_truncate(p, length))


# -- extended attributes --------------------------------------------------------------------
def _xattr_name(addr: int) -> str:
    """``import_xattr_name``'s copy: ``EFAULT`` for a bad pointer; a name with no NUL in
    its first 256 bytes comes back 256 bytes long (the layer says ``ERANGE``)."""
    try:
        raw = strndup_user(addr, XATTR_NAME_MAX + 1)
    except OSError as e:
        if e.errno == EFAULT:
            raise
        raw = b"x" * (XATTR_NAME_MAX + 1)
    return raw.decode("utf-8", "surrogateescape")


def _xattr_call(c: Call, path_i: int | None, follow: bool, call: Callable[..., object]) -> Result:
    """``call(dirfd, path, at_flags)`` for a mock fd (``path_i`` None: argument 0) or
    path (argument ``path_i``); ``CONTINUE`` for the host's."""
    if path_i is None:
        fd = i32(c.args[0])
        if fd not in c.proc.files:
            return _continue()
        return _xattr_ret(call(fd, None, 0))
    path = paths.read_path(c.args[path_i])
    if not path:
        raise kerr(ENOENT)
    p = paths.resolve(c, AT_FDCWD, path)
    if p is None:
        return _continue()
    try:
        return _xattr_ret(call(AT_FDCWD, p, 0 if follow else AT_SYMLINK_NOFOLLOW))
    except NotMine:
        return _continue()


def _xattrat_call(c: Call, call: Callable[..., object]) -> Result:
    """The ``*xattrat`` calls (Linux 6.13): ``(dirfd, path, at_flags)`` in arguments
    0-2; ``AT_SYMLINK_NOFOLLOW``/``AT_EMPTY_PATH`` only (``EINVAL``); an empty or NULL
    path with ``AT_EMPTY_PATH`` is the fd (``getname_maybe_null``: ``fdget``)."""
    dirfd, addr, at_flags = i32(c.args[0]), c.args[1], u32(c.args[2])
    if at_flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    path = "" if addr == 0 and at_flags & AT_EMPTY_PATH else paths.read_path(addr)
    if not path:
        if not at_flags & AT_EMPTY_PATH:
            raise kerr(ENOENT)
        if dirfd not in c.proc.files:
            return _continue()
        return _xattr_ret(call(dirfd, None, 0))
    p = paths.resolve(c, dirfd, path)
    if p is None:
        return _continue()
    try:
        return _xattr_ret(call(AT_FDCWD, p, at_flags & AT_SYMLINK_NOFOLLOW))
    except NotMine:
        return _continue()


_XATTR_ARGS_SIZE_VER0 = 16


def _xattr_args(c: Call) -> tuple[int, int, int]:
    """``struct xattr_args`` (``value``, ``size``, ``flags``) at argument 4 of ``usize``
    bytes (argument 5): ``EINVAL`` below version 0, ``E2BIG`` past a page or for
    non-zero bytes past the struct."""
    usize = c.args[5]
    if usize < _XATTR_ARGS_SIZE_VER0:
        raise kerr(EINVAL)
    if usize > 4096:
        raise kerr(E2BIG)
    raw = copy_struct_from_user(_XATTR_ARGS_SIZE_VER0, c.args[4], usize)
    value, size, flags = struct.unpack("<QII", raw)
    return value, size, flags


def sys_setxattrat(c: Call) -> Result:
    """``setxattrat(dfd, path, at_flags, name, args, usize)``."""
    value_addr, size, flags = _xattr_args(c)
    if u32(c.args[2]) & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    name = _xattr_name(c.args[3])
    check_setxattr(flags, name, min(size, XATTR_SIZE_MAX + 1))
    value = copy_from_user(value_addr, size) if size else b""
    return _xattrat_call(c, lambda d, p, f: c.proc.sys_setxattrat(d, p, f, name, value, flags))


def sys_getxattrat(c: Call) -> Result:
    """``getxattrat(dfd, path, at_flags, name, args, usize)``: ``args.flags`` must be 0."""
    value_addr, size, flags = _xattr_args(c)
    if flags:
        raise kerr(EINVAL)
    if u32(c.args[2]) & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    name = _xattr_name(c.args[3])
    size = min(size, XATTR_SIZE_MAX)

    def get(d: int, p: str | None, f: int) -> int:
        value = c.proc.sys_getxattrat(d, p, f, name, size)
        if size:
            copy_to_user(value_addr, value)
        return len(value)

    return _xattrat_call(c, get)


def sys_listxattrat(c: Call) -> Result:
    """``listxattrat(dfd, path, at_flags, list, size)``."""
    size = min(c.args[4], XATTR_SIZE_MAX)

    def get(d: int, p: str | None, f: int) -> int:
        names = c.proc.sys_listxattrat(d, p, f, size)
        if size:
            copy_to_user(c.args[3], names)
        return len(names)

    return _xattrat_call(c, get)


def sys_removexattrat(c: Call) -> Result:
    """``removexattrat(dfd, path, at_flags, name)``."""
    if u32(c.args[2]) & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)
    name = _xattr_name(c.args[3])
    return _xattrat_call(c, lambda d, p, f: c.proc.sys_removexattrat(d, p, f, name))


def _xattr_ret(ret: object) -> int:
    return ret if isinstance(ret, int) else 0


def setxattr(c: Call, path_i: int | None, follow: bool) -> Result:
    """``setxattr(path, name, value, size, flags)`` and its forms (``path_i``: the path
    argument, ``None`` for ``fsetxattr``).  ``setxattr_copy`` first: flags, name, size,
    value (``EINVAL``, ``EFAULT``/``ERANGE``, ``E2BIG``, ``EFAULT``), then the lookup."""
    a = c.args
    flags, size = i32(a[4]), a[3]
    name = _xattr_name(a[1])
    check_setxattr(flags, name, min(size, XATTR_SIZE_MAX + 1))
    value = copy_from_user(a[2], size) if size else b""
    return _xattr_call(
        c, path_i, follow, lambda d, p, f: c.proc.sys_setxattrat(d, p, f, name, value, flags)
    )


def removexattr(c: Call, path_i: int | None, follow: bool) -> Result:
    name = _xattr_name(c.args[1])
    return _xattr_call(c, path_i, follow, lambda d, p, f: c.proc.sys_removexattrat(d, p, f, name))


def getxattr(c: Call, path_i: int | None, follow: bool) -> Result:
    """``getxattr(path, name, value, size)``: the value copied out, its length returned."""
    name = _xattr_name(c.args[1])
    size = min(c.args[3], XATTR_SIZE_MAX)

    def get(d: int, p: str | None, f: int) -> int:
        value = c.proc.sys_getxattrat(d, p, f, name, size)
        if size:
            copy_to_user(c.args[2], value)
        return len(value)

    return _xattr_call(c, path_i, follow, get)


def listxattr(c: Call, path_i: int | None, follow: bool) -> Result:
    """``listxattr(path, list, size)``: the NUL-terminated names."""
    size = min(c.args[2], XATTR_SIZE_MAX)

    def get(d: int, p: str | None, f: int) -> int:
        names = c.proc.sys_listxattrat(d, p, f, size)
        if size:
            copy_to_user(c.args[1], names)
        return len(names)

    return _xattr_call(c, path_i, follow, get)


def fsetxattr(c: Call) -> Result:
    return setxattr(c, None, True)


# -- watches --------------------------------------------------------------------------------
def _refuse_watch(c: Call, name: str, fd: int, path: str | None, dirfd: int = AT_FDCWD) -> Result:
    """A watch on a mock path (or fd) is refused: the mock VFS sends no fsnotify
    events, and the real call would watch the host's node of that name, or fail with
    the host's errno.  ``EOPNOTSUPP`` and a ``sup.unsupported`` event."""
    if path == "":
        return _continue()  # ENOENT (or fanotify's own rules for the dirfd)
    if path is None:
        mine = dirfd in c.proc.files
    else:
        p = paths.resolve(c, dirfd, path)
        mine = p is not None and _is_mock_node(c, p)
    if not mine:
        return _continue()
    raise c.unsupported(name, fd, EOPNOTSUPP)


def _is_mock_node(c: Call, p: str) -> bool:
    """Is ``p`` a node the mock owns (not an overlay directory the host answers)?"""
    from ..vfs import Dir

    try:
        node = paths.lookup_node(c, p, True)
    except OSError:
        return False
    return node is not None and not (isinstance(node, Dir) and not node.owned)


def inotify_add_watch(c: Call) -> Result:
    """``inotify_add_watch(fd, path, mask)`` of a mock node: the mock's inotify
    (``mockkernel/fsnotify.py``).  A real instance that watches nothing yet becomes a
    mock one at the same number (its flags kept; ADDFD with SETFD) once a watch of a
    mock node is valid; one that watches host files already, or a mock instance asked
    to watch a host file, is refused (``EOPNOTSUPP``, ``sup.unsupported``): an
    instance watches mock nodes or host files, not both."""
    fd, mask = i32(c.args[0]), u32(c.args[2])
    check_add_watch(mask)
    path = paths.read_path(c.args[1])
    p = paths.resolve(c, AT_FDCWD, path) if path else None
    mock = p is not None and _is_mock_node(c, p)
    if fd in c.proc.files:
        inotify_group(c.proc, fd)  # EINVAL: not an inotify instance
        if not path:
            raise kerr(ENOENT)
        if p is not None:
            with contextlib.suppress(NotMine):
                return c.proc.sys_inotify_add_watch(fd, p, mask)
        raise c.unsupported("inotify_add_watch", fd, EOPNOTSUPP)
    if p is None or not mock or not _real_inotify(c.proc.pid, fd):
        return _continue()
    if _real_watches(c.proc.pid, fd):
        raise c.unsupported("inotify_add_watch", fd, EOPNOTSUPP)
    flags = _real_flags(c.proc.pid, fd)
    file = inotify_file(c.sv.kernel, flags)
    try:
        wd = add_watch(c.proc, file.private_data, p, mask)
        install_over(c.proc, fd, file, bool(flags & os.O_CLOEXEC))
    except BaseException:
        file.put()
        raise
    trace_sup_inotify(c.sv.kernel.tracer, c.proc.pid, fd)
    return wd


def inotify_rm_watch(c: Call) -> Result:
    """``inotify_rm_watch`` of a mock instance (a real one's is the host's)."""
    fd = i32(c.args[0])
    if fd not in c.proc.files:
        return _continue()
    c.proc.sys_inotify_rm_watch(fd, i32(c.args[1]))
    return 0


def _real_inotify(pid: int, fd: int) -> bool:
    try:
        return REAL.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        return False


def _fdinfo(pid: int, fd: int) -> str:
    try:
        with REAL.builtin_open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


def _real_watches(pid: int, fd: int) -> bool:
    """Does the child's real inotify instance watch anything (``inotify wd:`` lines)?"""
    return "inotify wd:" in _fdinfo(pid, fd)


def _real_flags(pid: int, fd: int) -> int:
    for line in _fdinfo(pid, fd).splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    return 0


_FAN_MARK_ADD = 0x1


def fanotify_mark(c: Call) -> Result:
    """``fanotify_mark(fd, flags, mask, dirfd, path)`` adding a mark on a mock path or
    fd (a NULL path: ``dirfd`` itself): refused; removals and flushes are the host's."""
    a = c.args
    if not u32(a[1]) & _FAN_MARK_ADD:
        return _continue()
    path = paths.read_path(a[4]) if a[4] else None
    return _refuse_watch(c, "fanotify_mark", i32(a[0]), path, i32(a[3]))


def sys_setxattr(c: Call) -> Result:
    return setxattr(c, 0, True)


def sys_lsetxattr(c: Call) -> Result:
    return setxattr(c, 0, False)


def sys_removexattr(c: Call) -> Result:
    return removexattr(c, 0, True)


def sys_lremovexattr(c: Call) -> Result:
    return removexattr(c, 0, False)


def sys_fremovexattr(c: Call) -> Result:
    return removexattr(c, None, True)


_S, _U = "supported", "unimplemented"
_MODE = "the node's one inode; a task's /proc/<pid> files: EPERM"
_OWNER = "CAP_CHOWN of the caller (its /proc/<tid>/status)"
_TIMES = "explicit times: owner or CAP_FOWNER; now: or write permission"
_XATTR = "stored on devtmpfs/sysfs inodes; procfs, dma-bufs: EOPNOTSUPP"
_WATCH = "a mock path: EOPNOTSUPP + sup.unsupported (no fanotify is modelled)"
_INOTIFY = "a mock node: the mock's inotify (the instance becomes mock; not mixed with host files)"
#: the handlers' table entries (``handlers.TABLE``): (name, status, handler, note)
ENTRIES: tuple[tuple[str, str, Callable[[Call], Result], str], ...] = (
    ("truncate", _S, sys_truncate, "a devtmpfs file is cut; sysfs/procfs keep their data"),
    ("chmod", _S, sys_chmod, _MODE),
    ("chown", _S, sys_chown, _OWNER),
    ("lchown", _S, sys_lchown, _OWNER),
    ("utime", _S, sys_utime, _TIMES),
    ("setxattr", _S, sys_setxattr, _XATTR),
    ("lsetxattr", _S, sys_lsetxattr, _XATTR),
    ("fsetxattr", _S, fsetxattr, _XATTR),
    ("removexattr", _S, sys_removexattr, _XATTR),
    ("lremovexattr", _S, sys_lremovexattr, _XATTR),
    ("fremovexattr", _S, sys_fremovexattr, _XATTR),
    ("utimes", _S, sys_utimes, _TIMES),
    ("inotify_add_watch", _S, inotify_add_watch, _INOTIFY),
    ("inotify_rm_watch", _S, inotify_rm_watch, "a mock instance's watch (IN_IGNORED)"),
    ("fchownat", _S, sys_fchownat, _OWNER + "; AT_EMPTY_PATH of an O_PATH fd"),
    ("futimesat", _S, sys_futimesat, _TIMES),
    ("fchmodat", _S, sys_fchmodat, _MODE),
    ("utimensat", _S, sys_utimensat, _TIMES + "; a NULL path: the fd (futimens)"),
    ("fanotify_mark", _U, fanotify_mark, _WATCH),
    ("fchmodat2", _S, sys_fchmodat2, _MODE + "; a symlink: EOPNOTSUPP"),
    ("setxattrat", _S, sys_setxattrat, "as setxattr; struct xattr_args"),
    ("getxattrat", _S, sys_getxattrat, "as getxattr; struct xattr_args"),
    ("listxattrat", _S, sys_listxattrat, "as listxattr"),
    ("removexattrat", _S, sys_removexattrat, "as removexattr"),
)
#: the calls about one fd alone (``Syscall.fd_arg`` 0)
FD_ONLY = ("fsetxattr", "fremovexattr", "inotify_rm_watch")
#: (path argument, dirfd argument) of the path calls (``Syscall.path_arg``)
PATH_ARGS: Mapping[str, tuple[int, int | None]] = MappingProxyType({
    "chmod": (0, None), "fchmodat": (1, 0), "fchmodat2": (1, 0), "chown": (0, None),
    "lchown": (0, None), "fchownat": (1, 0), "utime": (0, None), "utimes": (0, None),
    "futimesat": (1, 0), "utimensat": (1, 0), "truncate": (0, None), "setxattr": (0, None),
    "lsetxattr": (0, None), "removexattr": (0, None), "lremovexattr": (0, None),
    "fanotify_mark": (4, 3), "setxattrat": (1, 0),
    "getxattrat": (1, 0), "listxattrat": (1, 0), "removexattrat": (1, 0),
})  # fmt: skip
