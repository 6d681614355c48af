"""Mock or real: the path-taking syscalls of a supervised process.

A path is the mock's when, resolved against the caller's cwd or ``dirfd`` (read from
``/proc/<tid>``), the kernel's VFS has a node for it (``vfs.lookup``, run with the
caller current so ``/proc/self`` is the caller).  Everything else is answered
``CONTINUE``.  Until ``Process.sys_openat`` and friends land this module is the
small adapter between the trapped call and ``vfs.lookup``/``Process.sys_open``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat as _stat
import struct
from errno import E2BIG, EACCES, EAGAIN, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EXDEV
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
    "openat2", "read_path", "readlink", "resolve", "stat", "statx_flags",
]  # fmt: skip

trace_sup_chdir = TracePoint("sup.chdir", "pid", "tid", "cwd")

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_EMPTY_PATH = 0x1000
PATH_MAX = 4096
#: where mock paths live: a path elsewhere is the host's
ROOTS = ("/dev", "/sys", "/proc")

# linux/openat2.h
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
_VALID_RESOLVE = 0x3F
OPEN_HOW_SIZE_VER0 = 24
_O_LARGEFILE, _O_TMPFILE_BIT, _FASYNC, _O_SYNC_BIT = 0o100000, 0o20000000, 0o20000, 0o4000000
#: fs/open.c VALID_OPEN_FLAGS (x86-64)
_VALID_OPEN_FLAGS = (
    os.O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_APPEND
    | os.O_NONBLOCK | os.O_DSYNC | _FASYNC | os.O_DIRECT | _O_LARGEFILE | os.O_DIRECTORY
    | os.O_NOFOLLOW | os.O_NOATIME | os.O_CLOEXEC | os.O_PATH | _O_TMPFILE_BIT | _O_SYNC_BIT
)  # fmt: skip
_O_PATH_FLAGS = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_PATH | os.O_CLOEXEC
#: statx: the lookup flags it takes (``vfs_statx``), AT_STATX_SYNC_TYPE, STATX__RESERVED
_STATX_FLAGS = AT_SYMLINK_NOFOLLOW | 0x800 | AT_EMPTY_PATH | 0x6000
_AT_STATX_SYNC_TYPE, _STATX_RESERVED = 0x6000, 0x80000000


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
        base = start_dir(c, dirfd)
        if base is None:
            return None  # a bad dirfd: the real kernel gives its errno
        path = base.rstrip("/") + "/" + path
    return path if path.startswith(ROOTS) else None


def start_dir(c: Call, dirfd: int) -> str | None:
    """The directory a relative path of the caller starts at: its cwd (``AT_FDCWD``) or
    ``dirfd``'s (``ENOTDIR`` for a mock fd that is not a directory); ``None`` for a bad
    ``dirfd`` (the real kernel gives its errno)."""
    if dirfd == AT_FDCWD:
        cwd = c.sv.cwd.get(c.proc.pid)
        if cwd is not None:
            return cwd
        where = f"/proc/{c.tid}/cwd"
    elif dirfd in c.proc.files:
        file = c.proc.files[dirfd]
        if file.path is None or not _stat.S_ISDIR(file.inode.mode):
            raise kerr(ENOTDIR)  # a mock fd that is not a directory (O_PATH ones count)
        return file.path  # an open mock directory
    else:
        where = f"/proc/{c.tid}/fd/{dirfd}"
    try:
        return REAL.readlink(where)
    except OSError:
        return None


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


def openat(c: Call, dirfd: int, addr: int, flags: int, mode: int, how: int = 0) -> Result:
    """``openat`` (and ``openat2``, with ``how``'s ``RESOLVE_*`` flags) of a mock path."""
    from .handlers import CONTINUE

    path = read_path(addr)
    if how & RESOLVE_IN_ROOT:
        root = start_dir(c, dirfd)
        p = None if root is None else _in_root(c, root, path, flags)
        if p is not None and not p.startswith(ROOTS):
            p = None  # the real kernel resolves it in the same root
    else:
        p = resolve(c, dirfd, path)
    if p is None:
        return CONTINUE
    node = c.sv.kernel.vfs.lookup_open(p, flags)
    based = mock_based(c, dirfd, path)
    if node is None and based:
        return _open_host_for(c, p, flags, mode)
    if node is None or (isinstance(node, Dir) and not node.owned and not based):
        return CONTINUE  # an overlay directory (/sys, /dev) is the host's
    if not c.sv.id_valid(c.nid):
        raise kerr(ENOENT)
    if how & RESOLVE_NO_XDEV:
        _no_xdev(c, dirfd, path, flags, how)
    if how & ~RESOLVE_IN_ROOT:
        _resolve_rules(c, path, p, flags, how)
    return c.proc.sys_open(p, flags, mode)


def _open_host_for(c: Call, p: str, flags: int, mode: int) -> Result:
    """A relative path from a mock directory (a mock ``dirfd`` or cwd) that the mock
    lacks: a ``..`` may lead out of the mock tree to a host file (``/dev/vfio/../null``),
    which the real kernel cannot reach from the placeholder.  The supervisor opens the
    host path for the caller and installs the fd (``ADDFD``: Linux's lowest free
    number), with Linux's result -- the host's errno (``ENOENT`` for what neither has).

    Only for a caller whose filesystem ids and groups are the supervisor's (then the
    host's permission checks are the caller's); otherwise ``ENOENT``, as before.  A file
    ``O_CREAT`` makes gets the caller's umask."""
    host = posixpath.normpath(p)
    if host.startswith("//"):
        host = host[1:]
    uids, gids, groups = _ids(c.tid)
    mine = (os.geteuid(), os.getegid(), sorted(os.getgroups()))
    if not uids or not gids or (uids[-1], gids[-1], sorted(groups)) != mine:
        raise kerr(ENOENT)
    listener = c.sv.listener
    assert listener is not None  # (a supervised call is in progress)
    existed = flags & os.O_CREAT and _host_has(host)
    fd = REAL.open(host, flags | os.O_CLOEXEC | os.O_NOCTTY, mode)
    try:
        if flags & os.O_CREAT and not existed:
            os.fchmod(fd, mode & 0o7777 & ~_umask(c.tid))
        return listener.addfd(fd, None, bool(flags & os.O_CLOEXEC))
    finally:
        REAL.close(fd)


def _host_has(path: str) -> bool:
    try:
        REAL.lstat(path)
    except OSError:
        return False
    return True


def _umask(tid: int) -> int:
    """The file-creation mask of task ``tid`` (``/proc/<tid>/status``)."""
    with REAL.builtin_open(f"/proc/{tid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def openat2(c: Call) -> Result:
    """``openat2``: ``struct open_how`` as ``copy_struct_from_user`` takes it (``EINVAL``
    below version 0, ``E2BIG`` past a page or for non-zero bytes this kernel does not
    know), ``build_open_flags``' checks, then the open; a mock path also gets the
    ``RESOLVE_*`` rules (:func:`_resolve_rules`)."""
    size = c.args[3]
    if size < OPEN_HOW_SIZE_VER0:
        raise kerr(EINVAL)
    if size > 4096:
        raise kerr(E2BIG)
    raw = copy_from_user(c.args[2], size)
    if any(raw[OPEN_HOW_SIZE_VER0:]):
        raise kerr(E2BIG)
    flags, mode, how = struct.unpack("<QQQ", raw[:OPEN_HOW_SIZE_VER0])
    if flags & ~_VALID_OPEN_FLAGS or how & ~_VALID_RESOLVE:
        raise kerr(EINVAL)
    if how & RESOLVE_BENEATH and how & RESOLVE_IN_ROOT:
        raise kerr(EINVAL)
    if flags & (os.O_CREAT | _O_TMPFILE_BIT):
        if mode & ~0o7777:
            raise kerr(EINVAL)
    elif mode:
        raise kerr(EINVAL)
    if flags & _O_TMPFILE_BIT:
        if flags & (_O_TMPFILE_BIT | os.O_DIRECTORY | os.O_CREAT) != os.O_TMPFILE:
            raise kerr(EINVAL)
        if not flags & (os.O_WRONLY | os.O_RDWR):
            raise kerr(EINVAL)
    if flags & os.O_PATH and flags & ~_O_PATH_FLAGS:
        raise kerr(EINVAL)
    if how & RESOLVE_CACHED and flags & (os.O_TRUNC | os.O_CREAT | _O_TMPFILE_BIT):
        raise kerr(EAGAIN)
    return openat(c, i32(c.args[0]), c.args[1], flags, mode, how)


def _resolve_rules(c: Call, path: str, p: str, flags: int, how: int) -> None:
    """``openat2``'s ``RESOLVE_*`` over a mock path (``fs/namei.c``): ``RESOLVE_BENEATH``
    refuses an absolute path, a ``..`` above the start and an absolute symlink (``EXDEV``);
    ``RESOLVE_NO_SYMLINKS`` any symlink on the way, ``RESOLVE_NO_MAGICLINKS`` a
    ``/proc/<pid>/fd/N`` link (``ELOOP``) -- the last component only when it is followed
    (not ``O_NOFOLLOW``/``O_PATH``...``O_NOFOLLOW``).  ``RESOLVE_NO_XDEV`` is
    :func:`_no_xdev`'s, ``RESOLVE_IN_ROOT`` :func:`_in_root`'s."""
    if how & RESOLVE_BENEATH:
        if path.startswith("/"):
            raise kerr(EXDEV)
        depth = 0
        for part in path.split("/"):
            if part == "..":
                depth -= 1
                if depth < 0:
                    raise kerr(EXDEV)
            elif part not in ("", "."):
                depth += 1
    if not how & (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS):
        return
    parts = [x for x in p.split("/") if x]
    vfs = c.sv.kernel.vfs
    for i in range(1, len(parts) + 1):
        if i == len(parts) and flags & os.O_NOFOLLOW:
            break  # the last component is not followed
        prefix = "/" + "/".join(parts[:i])
        node = vfs.lookup(prefix, False)
        if isinstance(node, _FdTarget) or (node is None and _magic(prefix)):
            if how & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS):
                raise kerr(ELOOP)
            if how & RESOLVE_BENEATH:
                raise kerr(EXDEV)
        elif isinstance(node, Symlink) or (node is None and posixpath.islink(prefix)):
            if how & RESOLVE_NO_SYMLINKS:
                raise kerr(ELOOP)
            target = node.target if isinstance(node, Symlink) else REAL.readlink(prefix)
            if how & RESOLVE_BENEATH and target.startswith("/"):
                raise kerr(EXDEV)


#: the mounts of the mock's trees, longest first (``RESOLVE_NO_XDEV``)
MOCK_MOUNTS = ("/sys/kernel/debug", "/sys", "/dev", "/proc")
#: ``MAXSYMLINKS``: symlinks one lookup follows at most
_MAXSYMLINKS = 40


def _walk(c: Call, start: str, path: str, flags: int, root: str = "/") -> list[str]:
    """The directories a lookup of ``path`` from ``start`` passes, in order, ending with
    the path it names (``link_path_walk`` over the mock's and the host's trees): ``..``
    goes up (never above ``root``), a symlink is followed (an absolute one from
    ``root``), the last component only when followed (not ``O_NOFOLLOW``).  ``ELOOP``
    past :data:`_MAXSYMLINKS`."""
    vfs = c.sv.kernel.vfs
    cur = root if path.startswith("/") else start
    seen = [cur]
    todo = [x for x in path.split("/") if x not in ("", ".")]
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if cur.rstrip("/") != root.rstrip("/"):
                cur = posixpath.dirname(cur.rstrip("/")) or "/"
            seen.append(cur)
            continue
        nxt = cur.rstrip("/") + "/" + part
        last = not todo
        node = vfs.lookup(nxt, False)
        target: str | None = None
        if isinstance(node, Symlink):
            target = node.target
        elif node is None and posixpath.islink(nxt):  # a host symlink
            with contextlib.suppress(OSError):
                target = REAL.readlink(nxt)
        if target is not None and not (last and flags & os.O_NOFOLLOW):
            links += 1
            if links > _MAXSYMLINKS:
                raise kerr(ELOOP)
            if target.startswith("/"):
                cur = root
                seen.append(cur)
            todo[:0] = [x for x in target.split("/") if x not in ("", ".")]
            continue
        cur = nxt
        seen.append(cur)
    return seen


def _mount_of(path: str) -> str:
    """The mount ``path`` lies in, as far as ``RESOLVE_NO_XDEV`` must tell: a mock tree's
    (:data:`MOCK_MOUNTS`), else the host's device of the path (or of ``/``)."""
    for m in MOCK_MOUNTS:
        if path == m or path.startswith(m + "/"):
            return m
    try:
        return f"host:{REAL.stat(path).st_dev}"
    except OSError:
        return f"host:{REAL.stat('/').st_dev}"


def _no_xdev(c: Call, dirfd: int, path: str, flags: int, how: int) -> None:
    """``RESOLVE_NO_XDEV`` (``LOOKUP_NO_XDEV``): ``EXDEV`` when the lookup crosses a
    mount -- an absolute path starts at ``/`` (so reaching ``/dev`` from it crosses),
    ``..`` out of a mount's root and a symlink into another mount cross too."""
    start = start_dir(c, dirfd)
    if start is None:
        return
    root = start if how & RESOLVE_IN_ROOT else "/"
    seen = _walk(c, start, path, flags, root)
    first = _mount_of(seen[0])
    if any(_mount_of(d) != first for d in seen[1:]):
        raise kerr(EXDEV)


def _in_root(c: Call, root: str, path: str, flags: int) -> str:
    """``RESOLVE_IN_ROOT``: ``path`` looked up as if ``root`` (the ``dirfd``) were ``/``
    -- an absolute path, an absolute symlink and ``..`` stay inside it."""
    return posixpath.normpath(_walk(c, root, path, flags, root)[-1])


def _magic(path: str) -> bool:
    """A procfs magic link (``/proc/<pid>/fd/N``, ``exe``, ``cwd``, ``root``)."""
    parts = path.split("/")
    return (
        len(parts) >= 4
        and parts[1] == "proc"
        and (parts[-2] == "fd" or (len(parts) in (4, 6) and parts[-1] in ("exe", "cwd", "root")))
    )


def statx_flags(flags: int, mask: int) -> None:
    """``statx``'s own checks (``do_statx``, ``vfs_statx``): ``EINVAL`` for a reserved
    mask bit, both sync types at once, or a flag it does not take."""
    if mask & _STATX_RESERVED or flags & _AT_STATX_SYNC_TYPE == _AT_STATX_SYNC_TYPE:
        raise kerr(EINVAL)
    if flags & ~_STATX_FLAGS:
        raise kerr(EINVAL)


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

    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise kerr(EINVAL)  # do_faccessat: the mode, then the flags
    path = read_path(addr)
    if path == "":
        if dirfd not in c.proc.files:
            return CONTINUE  # a real fd (or none): the real kernel's answer
        if not flags & AT_EMPTY_PATH:
            raise kerr(ENOENT)
        st = c.proc.sys_fstat(dirfd)
    else:
        p = resolve(c, dirfd, path)
        if p is None:
            return CONTINUE
        node = lookup_node(c, p, not flags & AT_SYMLINK_NOFOLLOW)
        if node is None:
            if mock_based(c, dirfd, path):
                raise kerr(ENOENT)
            return CONTINUE
        st = node_stat(node)
    uids, gids, groups = _ids(c.tid)
    which = 1 if flags & AT_EACCESS else 0
    if not _may(st, mode, uids[which], gids[which], groups):
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
