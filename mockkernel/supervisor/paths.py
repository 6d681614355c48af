"""Mock or real: the path-taking syscalls of a supervised process.

A path is the mock's when, resolved against the caller's cwd or ``dirfd`` (read from
``/proc/<tid>``), the kernel's VFS has a node for it (``vfs.lookup``, run with the
caller current so ``/proc/self`` is the caller).  Everything else is answered
``CONTINUE``.  Until ``Process.sys_openat`` and friends land this module is the
small adapter between the trapped call and ``vfs.lookup``/``Process.sys_open``.
"""

from __future__ import annotations

import os
import posixpath
import stat as _stat
import struct
from errno import EACCES, EINVAL, ENAMETOOLONG, ENOENT, ENOTDIR
from typing import TYPE_CHECKING

from ..errors import kerr
from ..realfd import REAL
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_to_user, cpu_fault, set_cpu_fault, strndup_user
from ..vfs import Dir, Node, Symlink, _FdTarget
from .uabi import i32

if TYPE_CHECKING:
    from .handlers import Call, Result

__all__ = [
    "AT_FDCWD", "AT_SYMLINK_NOFOLLOW", "ROOTS", "access", "lookup_node", "node_stat", "openat",
    "openat2", "read_path", "readlink", "resolve", "stat",
]  # fmt: skip

trace_sup_chdir = TracePoint("sup.chdir", "pid", "tid", "cwd")

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_EMPTY_PATH = 0x1000
PATH_MAX = 4096
#: where mock paths live: a path elsewhere is the host's
ROOTS = ("/dev", "/sys", "/proc")


def chdir(c: Call, path: str) -> Result:
    """``chdir(path)``: into a mock directory the host lacks, the caller's cwd becomes
    the mock one (``getcwd`` answers it; relative paths resolve in it); anywhere else
    the real call runs, leaving a mock cwd when it is absolute."""

    if path == "":
        raise kerr(ENOENT)
    p = resolve(c, AT_FDCWD, path)
    node = lookup_node(c, p, True) if p is not None else None
    based = mock_based(c, AT_FDCWD, path)
    if node is None:
        if based:
            raise kerr(ENOENT)
        return host_cwd(c, path.startswith("/") and _host_has_dir(path))
    assert p is not None
    if not isinstance(node, Dir):
        raise kerr(ENOTDIR)
    if _host_has_dir(p) and not based:
        return host_cwd(c, True)
    return enter(c, p)


def enter(c: Call, path: str) -> int:
    """The caller's cwd is the mock directory ``path`` from now on."""
    c.sv.cwd[c.proc.pid] = path
    trace_sup_chdir(c.sv.kernel.tracer, c.proc.pid, c.tid, path)
    return 0


def host_cwd(c: Call, leaves: bool) -> Result:
    """The real ``chdir``/``fchdir`` runs; ``leaves``: it will succeed, so a mock cwd
    ends.  (A relative path out of a mock cwd cannot be given to the real kernel:
    the real cwd never moved.)"""
    from .handlers import CONTINUE

    if leaves:
        c.sv.cwd.pop(c.proc.pid, None)
    return CONTINUE


def read_path(addr: int) -> str:
    """The path at ``addr``: a short read first (most paths are short, and a page-sized
    read per ``stat`` would be most of its cost), then ``strndup_user``'s rules.

    Not a ``fail-nth`` fault point: the supervisor reads every trapped path to learn
    whose call it is, most are the host's (answered ``CONTINUE``), and a fault injected
    here would be spent without effect."""
    armed = cpu_fault()
    if armed is None:
        return _read_path_now(addr)
    set_cpu_fault(None)
    try:
        return _read_path_now(addr)
    finally:
        set_cpu_fault(armed)


def _read_path_now(addr: int) -> str:
    first = min(256, 4096 - addr % 4096)
    try:
        head = copy_from_user(addr, first)
    except OSError:
        head = b""  # the full read below gives the errno
    nul = head.find(b"\0")
    if nul >= 0:
        return os.fsdecode(head[:nul])
    try:
        return os.fsdecode(strndup_user(addr, PATH_MAX))
    except OSError as e:
        if e.errno == EINVAL:
            raise kerr(ENAMETOOLONG) from None
        raise


def resolve(c: Call, dirfd: int, path: str) -> str | None:
    """The absolute path ``path`` names for the caller, if it could be a mock path."""
    if not path.startswith("/"):
        if dirfd == AT_FDCWD:
            cwd = c.sv.cwd.get(c.proc.pid)
            if cwd is not None:  # chdir'ed into a mock directory (the real cwd is elsewhere)
                return posixpath.normpath(cwd + "/" + path)
            where = f"/proc/{c.tid}/cwd"
        elif dirfd in c.proc.files:
            file = c.proc.files[dirfd]
            if file.f_op.iterate is None or file.path is None:
                raise kerr(ENOTDIR)  # a mock fd that is not a directory
            return file.path.rstrip("/") + "/" + path  # an open mock directory
        else:
            where = f"/proc/{c.tid}/fd/{dirfd}"
        try:
            base = REAL.readlink(where)
        except OSError:
            return None  # a bad dirfd: the real kernel gives its errno
        path = base.rstrip("/") + "/" + path
    return path if path.startswith(ROOTS) else None


def mock_based(c: Call, dirfd: int, path: str) -> bool:
    """Is the relative ``path`` taken from a mock directory (a mock ``dirfd``, or a mock
    cwd)?  Then the real kernel cannot look it up: what the mock lacks is ``ENOENT``."""
    if path.startswith("/"):
        return False
    if dirfd == AT_FDCWD:
        return c.proc.pid in c.sv.cwd
    return dirfd in c.proc.files


def lookup_node(c: Call, path: str, follow: bool) -> Node | None:
    node = c.sv.kernel.vfs.lookup(path, follow)
    if node is not None and not c.sv.id_valid(c.nid):
        raise kerr(ENOENT)  # the caller is gone: do not act for a reused pid
    return node


def node_stat(node: Node) -> os.stat_result:
    if isinstance(node, _FdTarget):
        return node.file.inode.stat_result()
    return node.inode().stat_result()


def _host_has_dir(path: str) -> bool:
    """Whether the host has a directory at ``path``.  A mock directory the host lacks
    (``/sys/class/infiniband_verbs``, a mock PCI function's sysfs directory) opens as a
    mock fd, so ``opendir``/``getdents64``/``openat(dirfd, ...)`` walk the mock tree as
    libibverbs does; one over a host directory (``/dev``, ``/sys/class``) stays the
    host's, so a listing never hides the host's entries."""
    try:
        return _stat.S_ISDIR(REAL.stat(path).st_mode)
    except OSError:
        return False


def openat(c: Call, dirfd: int, addr: int, flags: int, mode: int) -> Result:
    from .handlers import CONTINUE

    path = read_path(addr)
    p = resolve(c, dirfd, path)
    if p is None:
        return CONTINUE
    node = c.sv.kernel.vfs.lookup_open(p, flags)
    based = mock_based(c, dirfd, path)
    if node is None and based:
        raise kerr(ENOENT)
    if node is None or (isinstance(node, Dir) and not node.owned and not based):
        return CONTINUE  # an overlay directory (/sys, /dev) is the host's
    if not c.sv.id_valid(c.nid):
        raise kerr(ENOENT)
    return c.proc.sys_open(p, flags, mode)


def openat2(c: Call) -> Result:
    size = c.args[3]
    if size < 24:
        raise kerr(EINVAL)
    flags, mode, _resolve = struct.unpack("<QQQ", copy_from_user(c.args[2], 24))
    if flags >> 32:
        raise kerr(EINVAL)
    return openat(c, i32(c.args[0]), c.args[1], flags, mode)


def stat(c: Call, dirfd: int, addr: int, flags: int) -> os.stat_result | None:
    """``stat`` of a mock path or (``AT_EMPTY_PATH``) a mock fd; ``None``: real."""
    path = "" if addr == 0 and flags & AT_EMPTY_PATH else read_path(addr)
    if path == "":
        if flags & AT_EMPTY_PATH and dirfd in c.proc.files:
            return c.proc.sys_fstat(dirfd)
        return None
    p = resolve(c, dirfd, path)
    if p is None:
        return None
    node = lookup_node(c, p, not flags & AT_SYMLINK_NOFOLLOW)
    if node is None and mock_based(c, dirfd, path):
        raise kerr(ENOENT)
    return None if node is None else node_stat(node)


def _ids(tid: int) -> tuple[list[int], list[int], list[int]]:
    """(uids, gids, groups) of a task, from ``/proc/<tid>/status``."""
    uids: list[int] = []
    gids: list[int] = []
    groups: list[int] = []
    with REAL.builtin_open(f"/proc/{tid}/status", encoding="ascii") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key == "Uid":
                uids = [int(v) for v in val.split()]
            elif key == "Gid":
                gids = [int(v) for v in val.split()]
            elif key == "Groups":
                groups = [int(v) for v in val.split()]
    return uids, gids, groups


def _may(st: os.stat_result, mode: int, uid: int, gid: int, groups: list[int]) -> bool:
    """``generic_permission`` for ``access(2)``."""
    mode &= os.R_OK | os.W_OK | os.X_OK
    if not mode:
        return True
    perm = st.st_mode
    if uid == 0:
        return not (mode & os.X_OK and not _stat.S_ISDIR(perm) and not perm & 0o111)
    if uid == st.st_uid:
        bits = (perm >> 6) & 7
    elif gid == st.st_gid or st.st_gid in groups:
        bits = (perm >> 3) & 7
    else:
        bits = perm & 7
    return mode & bits == mode


def access(c: Call, dirfd: int, addr: int, mode: int, flags: int) -> Result:
    from .handlers import CONTINUE

    if mode & ~7:
        raise kerr(EINVAL)
    path = read_path(addr)
    p = resolve(c, dirfd, path)
    if p is None:
        return CONTINUE
    node = lookup_node(c, p, not flags & AT_SYMLINK_NOFOLLOW)
    if node is None:
        if mock_based(c, dirfd, path):
            raise kerr(ENOENT)
        return CONTINUE
    uids, gids, groups = _ids(c.tid)
    which = 1 if flags & AT_EACCESS else 0
    if not _may(node_stat(node), mode, uids[which], gids[which], groups):
        raise kerr(EACCES)
    return 0


def readlink(c: Call, dirfd: int, addr: int, buf: int, bufsiz: int) -> Result:
    from .handlers import CONTINUE

    if bufsiz <= 0:
        raise kerr(EINVAL)
    path = read_path(addr)
    p = resolve(c, dirfd, path)
    if p is None:
        return CONTINUE
    node = lookup_node(c, p, False)
    if node is None:
        if mock_based(c, dirfd, path):
            raise kerr(ENOENT)
        return CONTINUE
    if not isinstance(node, Symlink):
        raise kerr(EINVAL)
    target = os.fsencode(node.target)[:bufsiz]
    copy_to_user(buf, target)
    return len(target)
