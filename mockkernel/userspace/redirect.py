"""Redirection: route a program's syscalls to a mock kernel, the rest to the real OS.

``with kernel.install():`` replaces, for as long as the block runs,
``os.open/close/dup/dup2/read/write/pread/pwrite/lseek/fstat/stat/lstat/
access/listdir/scandir/readlink``, ``builtins.open``/``io.open``,
``fcntl.ioctl``/``fcntl.fcntl``, ``mmap.mmap``, ``socket.socket`` and
``socket.if_nametoindex/if_indextoname/if_nameindex`` (the mock kernel's net devices),
``select.select/poll/epoll`` (and the ``selectors`` classes that bound them: ``poll.py``)
with dispatchers:

* a mock fd (a key of the process's fd table) or a mock path goes to the
  kernel, with the exact argument conventions of the function it replaces
  (``fcntl.ioctl``'s 1024-byte buffer copy and NUL terminator, its return of
  bytes for immutable arguments, ...);
* anything else goes straight to the real function.

Deciding costs one list index for fds and one character test for paths (the hot
dispatchers are in ``hotpath.py``).
Names bound before installation (``from fcntl import ioctl``) are rebound in
the modules given as ``rebind`` (``rebind=True``: every loaded module, as the
runner does).
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import fcntl
import io
import mmap
import operator
import os
import select
import selectors
import socket
import stat as _stat
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from errno import ENOTTY
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..mm import MappedFile
from ..net.socket import MockSocket, SocketCtx, make_if_functions
from ..process import _VFS_IOCTLS
from ..realfd import REAL as _Real
from ..uaccess import add_window, drop_window
from ..vfs import _ROOTS, Attr, Dir, Node, Symlink, Vfs, _FdTarget
from . import hotpath
from .poll import PollCtx, make_poll_functions

if TYPE_CHECKING:
    from ..process import Process, TaskContext

__all__ = ["Redirection"]

IOCTL_BUFSZ = 1024
SCRATCH_LEN = IOCTL_BUFSZ + 1  # the scratch buffer: the argument and a NUL


# (module or class, attribute) pairs the redirection replaces; the key names the replacement.
_TARGETS: tuple[tuple[ModuleType | type, str, str], ...] = (
    (os, "open", "open"),
    (os, "close", "close"),
    (os, "dup", "dup"),
    (os, "dup2", "dup2"),
    (os, "read", "read"),
    (os, "write", "write"),
    (os, "pread", "pread"),
    (os, "pwrite", "pwrite"),
    (os, "lseek", "lseek"),
    (os, "fstat", "fstat"),
    (os, "stat", "stat"),
    (os, "lstat", "lstat"),
    (os, "access", "access"),
    (os, "listdir", "listdir"),
    (os, "scandir", "scandir"),
    (os, "readlink", "readlink"),
    (builtins, "open", "builtin_open"),
    (io, "open", "builtin_open"),
    (fcntl, "ioctl", "ioctl"),
    (fcntl, "fcntl", "fcntl"),
    (mmap, "mmap", "mmap"),
    (os, "readv", "readv"),
    (os, "writev", "writev"),
    (os, "preadv", "preadv"),
    (os, "pwritev", "pwritev"),
    (os, "fsync", "fsync"),
    (os, "fdatasync", "fdatasync"),
    (os, "ftruncate", "ftruncate"),
    (os, "closerange", "closerange"),
    (os, "get_blocking", "get_blocking"),
    (os, "set_blocking", "set_blocking"),
    (socket, "socket", "socket"),
    (socket, "if_nametoindex", "if_nametoindex"),
    (socket, "if_indextoname", "if_indextoname"),
    (socket, "if_nameindex", "if_nameindex"),
    (select, "select", "select"),
    (select, "poll", "poll"),
    (select, "epoll", "epoll"),
    # bound at import as class attributes: selectors.DefaultSelector is EpollSelector
    (selectors.PollSelector, "_selector_cls", "poll"),
    (selectors.EpollSelector, "_selector_cls", "epoll"),
    (selectors.SelectSelector, "_select", "select_method"),
)

#: The real functions of the targets ``realfd.REAL`` does not list, captured when this
#: module is first imported (before any redirection can be installed).
_REAL_MORE: dict[str, Any] = {
    "readv": os.readv,
    "writev": os.writev,
    "preadv": os.preadv,
    "pwritev": os.pwritev,
    "fsync": os.fsync,
    "fdatasync": os.fdatasync,
    "ftruncate": os.ftruncate,
    "closerange": os.closerange,
    "get_blocking": os.get_blocking,
    "set_blocking": os.set_blocking,
    "socket": socket.socket,
    "if_nametoindex": socket.if_nametoindex,
    "if_indextoname": socket.if_indextoname,
    "if_nameindex": socket.if_nameindex,
    "select": select.select,
    "poll": select.poll,
    "epoll": select.epoll,
    "select_method": select.select,
}


def _real_func(key: str) -> Any:
    return _REAL_MORE[key] if key in _REAL_MORE else getattr(_Real, key)


_RWF_HIPRI = 0x1  # the only preadv2/pwritev2 flag a file without ->read_iter accepts


def _iovec(buffers: Any, name: str, writable: bool) -> list[memoryview]:
    """The buffers of ``os.readv``/``writev``-like calls, checked as CPython's ``iov_setup``."""
    if isinstance(buffers, dict) or not hasattr(type(buffers), "__getitem__"):
        raise TypeError(f"{name}() arg 2 must be a sequence")
    views = []
    for i in range(len(buffers)):
        mv = memoryview(buffers[i])
        if writable and mv.readonly:
            raise TypeError(f"{name}() arg 2 must be a sequence of writable buffers")
        views.append(mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv)
    return views


def _scatter(data: bytes, views: list[memoryview]) -> int:
    pos = 0
    for mv in views:
        take = min(len(mv), len(data) - pos)
        if take <= 0:
            break
        mv[:take] = data[pos : pos + take]
        pos += take
    return pos


class _ScratchBuf:
    """One thread's copy of an ioctl argument (CPython's ``char buf[IOCTL_BUFSZ+1]``).

    It is a permanent uaccess window while the thread lives, so handlers read it
    with memoryview slices and the syscall path never sets or restores anything.
    """

    __slots__ = ("__weakref__", "addr", "buf", "view")

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(SCRATCH_LEN)
        self.addr = ctypes.addressof(self.buf)
        self.view = memoryview(self.buf).cast("B")
        weakref.finalize(self, drop_window, add_window(self.addr, self.view))


class _Scratch(threading.local):
    """The calling thread's scratch buffer: ``t`` is its (address, view)."""

    def __init__(self) -> None:
        self.buf = _ScratchBuf()
        self.t = (self.buf.addr, self.buf.view)


def _mockable(path: Any) -> str | None:
    """The path as a str if it could name a mock file, else None (real at once)."""
    if type(path) is str:
        p = path
    elif isinstance(path, bytes):
        p = os.fsdecode(path)
    elif isinstance(path, os.PathLike):
        q = os.fspath(path)
        p = q if isinstance(q, str) else os.fsdecode(q)
    else:
        return None
    return p if p.startswith(_ROOTS) else None


_fileno = hotpath.as_fd


def _with_name(e: OSError, path: Any) -> OSError:
    return OSError(e.errno, e.strerror, path)


def _int_overflow(value: int) -> OverflowError:
    """What CPython's "i" argument format says for a value outside a C int."""
    if not -(2**63) <= value < 2**63:  # it goes through a C long first
        return OverflowError("Python int too large to convert to C long")
    if value > 0:
        return OverflowError("signed integer is greater than maximum")
    return OverflowError("signed integer is less than minimum")


def _may_access(st: os.stat_result, mode: int, effective_ids: bool) -> bool:
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


def _check_open_args(mode: Any, buffering: Any, encoding: Any, errors: Any, newline: Any) -> None:
    """The argument checks ``open()`` makes before it opens anything (as ``_pyio.open``)."""
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    if not isinstance(buffering, int):
        raise TypeError(f"'{type(buffering).__name__}' object cannot be interpreted as an integer")
    for name, value in (("encoding", encoding), ("errors", errors), ("newline", newline)):
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"open() argument '{name}' must be str or None, not {type(value).__name__}"
            )
    modes = set(mode)
    if modes - set("axrwb+t") or len(mode) > len(modes):
        raise ValueError(f"invalid mode: '{mode}'")
    n_rwxa = sum(c in modes for c in "xrwa")
    if n_rwxa > 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    if n_rwxa == 0:
        raise ValueError(
            "Must have exactly one of create/read/write/append mode and at most one plus"
        )
    if "t" in modes and "b" in modes:
        raise ValueError("can't have text and binary mode at once")
    if "b" in modes:
        for name, value in (
            ("an encoding", encoding),
            ("an errors", errors),
            ("a newline", newline),
        ):
            if value is not None:
                raise ValueError(f"binary mode doesn't take {name} argument")


class _DirEntry:
    """What ``os.scandir`` yields for a mock entry (the real ``DirEntry`` cannot be built)."""

    def __init__(self, redir: Redirection, dirpath: str, name: str, node: Node) -> None:
        self._redir = redir
        self.name = name
        self.path = dirpath.rstrip("/") + "/" + name
        self._node = node

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"

    def inode(self) -> int:
        return self._node.ino

    def is_symlink(self) -> bool:
        return isinstance(self._node, Symlink)

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        try:
            return _stat.S_ISDIR(self.stat(follow_symlinks=follow_symlinks).st_mode)
        except OSError:
            return False

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        try:
            return _stat.S_ISREG(self.stat(follow_symlinks=follow_symlinks).st_mode)
        except OSError:
            return False

    def is_junction(self) -> bool:
        return False

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        if follow_symlinks:
            return self._redir.stat(self.path)
        return self._node.inode().stat_result()


class _ScandirIterator:
    def __init__(self, entries: list[Any]) -> None:
        self._it = iter(entries)

    def __iter__(self) -> _ScandirIterator:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        self._it = iter(())

    def __enter__(self) -> _ScandirIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _MockFileIO(io.FileIO):
    """``open()`` of a mock fd: a FileIO whose I/O and close go to the kernel."""

    _mk_proc: Process
    _mk_fd: int
    _mk_closefd: bool

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._mk_proc.sys_read(self._mk_fd, len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._mk_proc.sys_read(self._mk_fd, size)

    def readall(self) -> bytes:
        out = bytearray()
        while True:
            chunk = self._mk_proc.sys_read(self._mk_fd, 65536)
            if not chunk:
                return bytes(out)
            out += chunk

    def write(self, b: Any) -> int:
        return self._mk_proc.sys_write(self._mk_fd, bytes(b))

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._mk_proc.sys_lseek(self._mk_fd, pos, whence)

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def seekable(self) -> bool:
        try:
            self.tell()
        except OSError:
            return False
        return True

    def close(self) -> None:
        if not self.closed and self._mk_closefd and self._mk_fd in self._mk_proc.files:
            try:
                self._mk_proc.sys_close(self._mk_fd)
            finally:
                super().close()
        else:
            super().close()


def _mode_flags(mode: str) -> tuple[int, str]:
    """(open flags, raw FileIO mode) for an ``open()`` mode string."""
    plus = "+" in mode
    if "r" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_RDONLY), "r"
    elif "w" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_TRUNC, "w"
    elif "a" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_APPEND, "a"
    elif "x" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_EXCL, "x"
    else:
        raise ValueError(f"invalid mode: {mode!r}")
    return flags, raw + ("+" if plus else "") + "b"


class _MmapMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _Real.mmap)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _Real.mmap)


_real_mmap_type: type[mmap.mmap] = _Real.mmap


class _RedirectedMmap(_real_mmap_type, metaclass=_MmapMeta):  # type: ignore[misc,valid-type]
    """``mmap.mmap`` while a redirection is installed: a mock fd maps through its driver,
    any other fd maps for real.  Made once per process (installs stay cheap); it finds
    the installed redirection through ``Redirection.active``."""

    def __new__(
        cls,
        fileno: int,
        length: int,
        flags: int = mmap.MAP_SHARED,
        prot: int = mmap.PROT_WRITE | mmap.PROT_READ,
        access: int = mmap.ACCESS_DEFAULT,
        offset: int = 0,
        **kw: Any,
    ) -> Any:
        redir = Redirection.active
        if redir is not None and fileno in redir.proc.files:
            return redir._mock_mmap(fileno, length, flags, prot, access, offset)
        return _Real.mmap(fileno, length, flags, prot, access, offset, **kw)


class Redirection:
    """Installs the dispatchers for one kernel's ``init_process`` (a context manager).

    Patching ``os``/``fcntl``/``mmap``/``builtins`` is process-wide, so at most one
    redirection is installed at a time: installing a second one (or the same one
    again, nested) raises ``RuntimeError`` instead of silently stacking.
    """

    #: The redirection installed in this interpreter, if any.
    active: Redirection | None = None

    def __init__(
        self,
        kernel: TaskContext,
        rebind: Iterable[ModuleType] | bool = (),
    ) -> None:
        self.kernel = kernel
        self.proc = kernel.init_process
        self._rebind = rebind
        self._saved: list[tuple[Any, str, Any]] = []
        self._scratch = _Scratch()
        self.poll_ctx = PollCtx(self.proc, _REAL_MORE)
        self.socket_ctx = SocketCtx(kernel, self.proc)
        self.installed = False
        self.funcs: dict[str, Any] = self._make()

    # -- install / uninstall --------------------------------------------------------------
    def __enter__(self) -> Redirection:
        self.install()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def install(self) -> None:
        if Redirection.active is not None:
            raise RuntimeError(
                f"a mockkernel redirection is already installed (for {Redirection.active.kernel!r})"
            )
        if self.kernel.installed_process is not None:
            raise RuntimeError("this kernel is already installed")
        for module, attr, key in _TARGETS:
            self._saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, self.funcs[key])
        if self._rebind:
            self._rebind_modules()
        self.kernel.installed_process = self.proc
        self.installed = True
        Redirection.active = self
        if self.kernel.tracer.enabled:
            self.kernel.tracer.emit("userspace.install", pid=self.proc.pid)

    def uninstall(self) -> None:
        if not self.installed:
            return
        for target, attr, old in reversed(self._saved):
            if isinstance(target, dict):
                target[attr] = old
            else:
                setattr(target, attr, old)
        self._saved.clear()
        self.kernel.installed_process = None
        self.installed = False
        if Redirection.active is self:
            Redirection.active = None
        if self.kernel.tracer.enabled:
            self.kernel.tracer.emit("userspace.uninstall", pid=self.proc.pid)

    def _rebind_modules(self) -> None:
        swap: dict[int, Any] = {}
        for module, _attr, key in _TARGETS:
            if isinstance(module, ModuleType):  # (class attributes are set by install)
                swap[id(_real_func(key))] = self.funcs[key]
        if self._rebind is True:
            modules: Iterable[ModuleType] = [
                m
                for name, m in list(sys.modules.items())
                if m is not None and not name.startswith("mockkernel") and name != "builtins"
            ]
        else:
            modules = self._rebind  # type: ignore[assignment]
        for module in modules:
            ns = getattr(module, "__dict__", None)
            if not isinstance(ns, dict) or module in (os, fcntl, mmap, io, builtins):
                continue
            for name, value in list(ns.items()):
                new = swap.get(id(value))
                if new is not None and value is not new:
                    self._saved.append((ns, name, value))
                    ns[name] = new

    # -- the dispatchers ------------------------------------------------------------------
    def _make(self) -> dict[str, Any]:
        proc = self.proc
        kernel = self.kernel
        vfs = kernel.subsys(Vfs)
        tracer = kernel.tracer
        files = proc.files
        slots = proc.slots
        scratch = self._scratch
        vfs_ioctls = _VFS_IOCTLS
        vfs_ioctls_get = _VFS_IOCTLS.get
        real = _Real
        real_ioctl = _Real.ioctl
        # bound once: the real-fd paths below are a membership test and one call
        real_open = _Real.open
        real_close = _Real.close
        real_read = _Real.read
        real_write = _Real.write
        real_fstat = _Real.fstat

        def lookup(path: str, follow: bool = True) -> Node | None:
            try:
                return vfs.lookup(path, follow)
            except OSError as e:
                raise _with_name(e, path) from None

        def lookup_open(path: str, flags: int) -> Node | None:
            try:
                return vfs.lookup_open(path, flags)
            except OSError as e:
                raise _with_name(e, path) from None

        def snapshot(node: Attr, path: str, flags: int) -> int:
            if flags & os.O_DIRECTORY:
                raise OSError(20, os.strerror(20), path)
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise OSError(13, os.strerror(13), path)
            fd = os.memfd_create(path.rsplit("/", 1)[-1], os.MFD_CLOEXEC)
            data = node.show().encode()
            if data:
                real.pwrite(fd, data, 0)
            return fd

        # -- fds (open/close/read/write/fstat/ioctl: hotpath.py) -----------------------
        def open_slow(path: Any, flags: int, mode: int, dir_fd: int | None) -> int:
            """``os.open`` of a path that may be mock (hotpath.m_open took the rest)."""
            if dir_fd is None:
                p = _mockable(path)
                if p is not None:
                    node = lookup_open(p, flags)
                    if node is not None:
                        if isinstance(node, Attr):
                            return snapshot(node, p, flags)
                        try:
                            return proc.sys_open(p, flags | os.O_CLOEXEC, mode)
                        except OSError as e:
                            raise _with_name(e, path) from None
                return real_open(path, flags, mode)
            return real_open(path, flags, mode, dir_fd=dir_fd)

        def notconn_read(fd: int, n: int, e: OSError) -> bytes:
            """A real read said ENOTCONN: the fd may be a TCP socket the kernel made mock
            (bound to a NIC address), whose real socket underneath never connects."""
            reader = proc.fd_readers.get(fd)
            if reader is None:
                raise e
            return reader(n)

        def notconn_write(fd: int, data: Any, e: OSError) -> int:
            """A real write said EPIPE: the same, for writes (an unconnected TCP socket)."""
            writer = proc.fd_writers.get(fd)
            if writer is None:
                raise e
            return writer(bytes(data))

        def m_dup(fd: int) -> int:
            if fd in files:
                return proc.sys_fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)
            return real.dup(fd)

        def m_dup2(fd: int, fd2: int, inheritable: bool = True) -> int:
            if fd in files:
                if inheritable:
                    return proc.sys_dup2(fd, fd2)
                return proc.sys_dup3(fd, fd2, os.O_CLOEXEC)
            res = real.dup2(fd, fd2, inheritable)
            if fd2 in files:
                proc.forget_fd(fd2)
            return res

        def m_pread(fd: int, n: int, offset: int) -> bytes:
            if fd in files:
                if n < 0:
                    raise kerr(22)
                return proc.sys_pread(fd, n, offset)
            return real.pread(fd, n, offset)

        def m_pwrite(fd: int, data: Any, offset: int) -> int:
            if fd in files:
                return proc.sys_pwrite(fd, bytes(data), offset)
            return real.pwrite(fd, data, offset)

        def m_lseek(fd: int, pos: int, how: int) -> int:
            if fd in files:
                return proc.sys_lseek(fd, pos, how)
            return real.lseek(fd, pos, how)

        # -- vectored I/O, fsync, ftruncate ----------------------------------------------
        real_readv, real_writev = _REAL_MORE["readv"], _REAL_MORE["writev"]
        real_preadv, real_pwritev = _REAL_MORE["preadv"], _REAL_MORE["pwritev"]
        real_fsync, real_fdatasync = _REAL_MORE["fsync"], _REAL_MORE["fdatasync"]
        real_ftruncate = _REAL_MORE["ftruncate"]

        def m_readv(fd: int, buffers: Any, /) -> int:
            if fd in files:
                views = _iovec(buffers, "readv", True)
                data = proc.sys_readv(fd, sum(map(len, views)), None, 0)
                return _scatter(data, views)
            return int(real_readv(fd, buffers))

        def m_preadv(fd: int, buffers: Any, offset: int, flags: int = 0, /) -> int:
            if fd in files:
                views = _iovec(buffers, "preadv", True)
                data = proc.sys_readv(fd, sum(map(len, views)), offset, flags)
                return _scatter(data, views)
            return int(real_preadv(fd, buffers, offset, flags))

        def m_writev(fd: int, buffers: Any, /) -> int:
            if fd in files:
                views = _iovec(buffers, "writev", False)
                return proc.sys_writev(fd, b"".join(views), None, 0)
            return int(real_writev(fd, buffers))

        def m_pwritev(fd: int, buffers: Any, offset: int, flags: int = 0, /) -> int:
            if fd in files:
                views = _iovec(buffers, "pwritev", False)
                return proc.sys_writev(fd, b"".join(views), offset, flags)
            return int(real_pwritev(fd, buffers, offset, flags))

        def m_fsync(fd: Any) -> None:
            n = fd if type(fd) is int else _fileno(fd)
            if n in files:
                proc.sys_fsync(n, datasync=False)
                return
            real_fsync(fd)

        def m_fdatasync(fd: Any) -> None:
            n = fd if type(fd) is int else _fileno(fd)
            if n in files:
                proc.sys_fsync(n, datasync=True)
                return
            real_fdatasync(fd)

        def m_ftruncate(fd: int, length: int, /) -> None:
            if fd in files:
                proc.sys_ftruncate(fd, length)
                return
            real_ftruncate(fd, length)

        # -- paths --------------------------------------------------------------------
        def node_stat(node: Node) -> os.stat_result:
            if isinstance(node, _FdTarget):
                return node.file.inode.stat_result()
            return node.inode().stat_result()

        def m_stat(
            path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True
        ) -> os.stat_result:
            if isinstance(path, int) and path in files:
                return proc.sys_fstat(path)
            if dir_fd is None:
                p = _mockable(path)
                if p is not None:
                    node = lookup(p, follow_symlinks)
                    if node is not None:
                        return node_stat(node)
            return real.stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

        def m_lstat(path: Any, *, dir_fd: int | None = None) -> os.stat_result:
            if dir_fd is None:
                p = _mockable(path)
                if p is not None:
                    node = lookup(p, False)
                    if node is not None:
                        return node_stat(node)
            return real.lstat(path, dir_fd=dir_fd)

        def m_access(
            path: Any,
            mode: int,
            *,
            dir_fd: int | None = None,
            effective_ids: bool = False,
            follow_symlinks: bool = True,
        ) -> bool:
            if dir_fd is None and not isinstance(path, int):
                p = _mockable(path)
                if p is not None:
                    try:
                        node = vfs.lookup(p, follow_symlinks)
                    except OSError:
                        return False
                    if node is not None:
                        return _may_access(node_stat(node), mode, effective_ids)
            return real.access(
                path,
                mode,
                dir_fd=dir_fd,
                effective_ids=effective_ids,
                follow_symlinks=follow_symlinks,
            )

        def m_listdir(path: Any = None) -> list[Any]:
            p = _mockable(path) if path is not None else None
            if p is not None:
                try:
                    names = vfs.listdir(p)
                except OSError as e:
                    raise _with_name(e, path) from None
                if names is not None:
                    return [os.fsencode(n) for n in names] if isinstance(path, bytes) else names
            return real.listdir(path) if path is not None else real.listdir()

        def m_scandir(path: Any = None) -> Any:
            p = _mockable(path) if path is not None else None
            if p is not None:
                node = lookup(p)
                if isinstance(node, Dir):
                    entries: dict[str, Any] = {}
                    if not node.owned:
                        try:
                            with real.scandir(p) as it:
                                entries = {e.name: e for e in it}
                        except OSError:
                            pass
                    for name, child in node.children.items():
                        entries[name] = _DirEntry(self, p, name, child)
                    return _ScandirIterator([entries[n] for n in sorted(entries)])
                if node is not None:
                    raise OSError(20, os.strerror(20), path)
            return real.scandir(path) if path is not None else real.scandir()

        def m_readlink(path: Any, *, dir_fd: int | None = None) -> Any:
            if dir_fd is None:
                p = _mockable(path)
                if p is not None:
                    node = lookup(p, False)
                    if node is not None:
                        if not isinstance(node, Symlink):
                            raise OSError(22, os.strerror(22), path)
                        t = node.target
                        return os.fsencode(t) if isinstance(path, bytes) else t
            return real.readlink(path, dir_fd=dir_fd)

        # -- open() -------------------------------------------------------------------
        def wrap_fd(
            fd: int,
            mode: str,
            buffering: int,
            encoding: str | None,
            errors: str | None,
            newline: str | None,
            closefd: bool,
            name: Any,
        ) -> Any:
            _flags, rawmode = _mode_flags(mode)
            raw = _MockFileIO(fd, rawmode, closefd=False)
            raw._mk_proc = proc
            raw._mk_fd = fd
            raw._mk_closefd = closefd
            raw.name = name
            try:
                return wrap_raw(raw, mode, buffering, encoding, errors, newline)
            except BaseException:
                raw.close()  # as io.open does: the raw file it made is closed on failure
                raise

        def wrap_raw(
            raw: _MockFileIO,
            mode: str,
            buffering: int,
            encoding: str | None,
            errors: str | None,
            newline: str | None,
        ) -> Any:
            binary = "b" in mode
            line_buffering = buffering == 1 and not binary
            if buffering in (1, -1):
                buffering = io.DEFAULT_BUFFER_SIZE
            if buffering == 0:
                if not binary:
                    raise ValueError("can't have unbuffered text I/O")
                return raw
            buf: Any
            if "+" in mode:
                buf = io.BufferedRandom(raw, buffering)
            elif "r" in mode:
                buf = io.BufferedReader(raw, buffering)
            else:
                buf = io.BufferedWriter(raw, buffering)
            if binary:
                return buf
            return io.TextIOWrapper(buf, encoding, errors, newline, line_buffering)

        def m_builtin_open(
            file: Any,
            mode: str = "r",
            buffering: int = -1,
            encoding: str | None = None,
            errors: str | None = None,
            newline: str | None = None,
            closefd: bool = True,
            opener: Callable[[str, int], int] | None = None,
        ) -> Any:
            if opener is None:
                if isinstance(file, int):
                    if file in files:
                        _check_open_args(mode, buffering, encoding, errors, newline)
                        return wrap_fd(
                            file, mode, buffering, encoding, errors, newline, closefd, file
                        )
                else:
                    p = _mockable(file)
                    if p is not None:
                        _check_open_args(mode, buffering, encoding, errors, newline)
                        flags, _ = _mode_flags(mode)
                        node = lookup_open(p, flags)
                        if node is not None:
                            if isinstance(node, Attr):
                                fd = snapshot(node, p, flags)
                                f = real.builtin_open(
                                    fd, mode, buffering, encoding, errors, newline, True
                                )
                                raw: Any = getattr(getattr(f, "buffer", f), "raw", f)
                                raw.name = file
                                return f
                            try:
                                fd = proc.sys_open(p, flags | os.O_CLOEXEC, 0o666)
                            except OSError as e:
                                raise _with_name(e, file) from None
                            return wrap_fd(
                                fd, mode, buffering, encoding, errors, newline, True, file
                            )
            return real.builtin_open(
                file, mode, buffering, encoding, errors, newline, closefd, opener
            )

        # -- fcntl --------------------------------------------------------------------
        def m_fcntl(fd: Any, cmd: int, arg: Any = 0, /) -> Any:
            n = fd if type(fd) is int else _fileno(fd)
            if n in files:
                if not isinstance(arg, int):
                    raise kerr(22)
                return proc.sys_fcntl(n, cmd, arg & 0xFFFFFFFF)
            return real.fcntl(fd, cmd, arg)

        def dispatch(file: Any, fd: int, cmd: int, arg: int) -> int:
            vfs_op = vfs_ioctls_get(cmd)
            if vfs_op is not None:
                return int(vfs_op(proc, fd, file, arg))
            fop = file.f_op
            if fop.plain_ioctls:  # the default unlocked_ioctl: a lookup in the ioctls table
                handler = fop.ioctls.get(cmd)
                if handler is None:
                    raise kerr(ENOTTY)
                return int(handler(file, cmd, arg))
            return int(fop.unlocked_ioctl(file, cmd, arg))

        def traced(file: Any, fd: int, cmd: int, arg: int) -> int:
            return proc.sys_ioctl(fd, cmd, arg)  # the syscall layer traces it

        def fileno_ioctl(fd: Any, request: int, arg: Any, mutate_flag: bool) -> Any:
            n = _fileno(fd)
            if n in files:
                return m_ioctl(n, request, arg, mutate_flag)
            return real_ioctl(fd, request, arg, mutate_flag)

        def general_ioctl(file: Any, n: int, cmd: int, arg: Any, mutate_flag: bool) -> Any:
            """Every argument kind, with CPython's exact conventions; tracing."""
            call = traced if tracer.enabled else dispatch
            if type(arg) is int:
                if not -0x80000000 <= arg <= 0x7FFFFFFF:
                    raise _int_overflow(arg)
                return call(file, n, cmd, arg & 0xFFFFFFFF)
            if isinstance(arg, str):
                arg = arg.encode()
            try:
                mv = memoryview(arg)
                if not mv.c_contiguous:  # CPython's "w*"/"s*" refuse it: then "i"
                    raise TypeError
            except TypeError:
                value = operator.index(arg)
                if not -0x80000000 <= value <= 0x7FFFFFFF:
                    raise _int_overflow(value) from None
                return call(file, n, cmd, value & 0xFFFFFFFF)
            if mv.format != "B" or mv.ndim != 1:
                mv = mv.cast("B")
            length = mv.nbytes
            addr, sview = scratch.t
            if not mv.readonly:
                if mutate_flag:
                    if length <= IOCTL_BUFSZ:
                        sview[:length] = mv
                        sview[length] = 0
                        try:
                            return call(file, n, cmd, addr)
                        finally:
                            mv[:] = sview[:length]
                    # A large buffer is passed in place, as CPython does.  No uaccess window
                    # for it: the program's buffer may have PROT_NONE parts (an mmap it
                    # mprotect'ed), so its bytes are reached as any user memory is
                    # (process_vm_*: EFAULT, never a fault in the interpreter).
                    pinned = ctypes.c_char.from_buffer(mv)  # (held: the buffer stays put)
                    return call(file, n, cmd, ctypes.addressof(pinned))
                if length > IOCTL_BUFSZ:
                    raise ValueError("ioctl string arg too long")
            elif length > IOCTL_BUFSZ:
                raise ValueError("ioctl string arg too long")
            sview[:length] = mv
            sview[length] = 0
            call(file, n, cmd, addr)
            return bytes(sview[:length])

        hot = hotpath.bind(
            _slots=slots,
            _proc=proc,
            _tracer=tracer,
            _scratch=scratch,
            _vfs_ioctls=vfs_ioctls,
            _real_open=real_open,
            _real_close=real_close,
            _real_read=real_read,
            _real_write=real_write,
            _real_fstat=real_fstat,
            _real_ioctl=real_ioctl,
            _open_slow=open_slow,
            _notconn_read=notconn_read,
            _notconn_write=notconn_write,
            _fileno_ioctl=fileno_ioctl,
            _general_ioctl=general_ioctl,
        )
        m_ioctl = hot["ioctl"]

        real_closerange = _REAL_MORE["closerange"]
        real_get_blocking = _REAL_MORE["get_blocking"]
        real_set_blocking = _REAL_MORE["set_blocking"]

        def m_closerange(fd_low: int, fd_high: int, /) -> None:
            """Close mock fds in the range through the kernel, real ones for real."""
            lo = max(fd_low, 0)
            for fd in sorted(n for n in files if lo <= n < fd_high):
                if lo < fd:
                    real_closerange(lo, fd)
                with contextlib.suppress(OSError):
                    proc.sys_close(fd)
                lo = fd + 1
            if lo < fd_high:
                real_closerange(lo, fd_high)

        def m_get_blocking(fd: int, /) -> bool:
            if fd in files:
                return not proc.sys_fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
            return bool(real_get_blocking(fd))

        def m_set_blocking(fd: int, blocking: bool, /) -> None:
            if fd in files:
                flags = proc.sys_fcntl(fd, fcntl.F_GETFL)
                flags = flags & ~os.O_NONBLOCK if blocking else flags | os.O_NONBLOCK
                proc.sys_fcntl(fd, fcntl.F_SETFL, flags)
                return
            real_set_blocking(fd, blocking)

        return {
            "closerange": m_closerange,
            "get_blocking": m_get_blocking,
            "set_blocking": m_set_blocking,
            "open": hot["open"],
            "close": hot["close"],
            "dup": m_dup,
            "dup2": m_dup2,
            "read": hot["read"],
            "write": hot["write"],
            "pread": m_pread,
            "pwrite": m_pwrite,
            "lseek": m_lseek,
            "fstat": hot["fstat"],
            "stat": m_stat,
            "lstat": m_lstat,
            "access": m_access,
            "listdir": m_listdir,
            "scandir": m_scandir,
            "readlink": m_readlink,
            "builtin_open": m_builtin_open,
            "ioctl": hot["ioctl"],
            "fcntl": m_fcntl,
            "mmap": _RedirectedMmap,
            "readv": m_readv,
            "writev": m_writev,
            "preadv": m_preadv,
            "pwritev": m_pwritev,
            "fsync": m_fsync,
            "fdatasync": m_fdatasync,
            "ftruncate": m_ftruncate,
            # AF_NETLINK/NETLINK_GENERIC is mock, every other socket real (mockkernel.net)
            "socket": MockSocket,
            **make_if_functions(kernel),
            **make_poll_functions(self.poll_ctx),
        }

    def stat(self, path: str) -> os.stat_result:
        fn: Callable[[str], os.stat_result] = self.funcs["stat"]
        return fn(path)

    def _mock_mmap(
        self, fd: int, length: int, flags: int, prot: int, access: int, offset: int
    ) -> MappedFile:
        """``mmap.mmap(fd, ...)`` of a mock fd, step for step as CPython's ``new_mmap_object``.

        Like CPython, the map object keeps its own ``F_DUPFD_CLOEXEC`` dup of the fd
        while it lives (one more fd number, one more file reference) and closes that
        number when it is closed or collected; the mapping holds the file as well.
        """
        if length < 0:
            raise OverflowError("memory mapped length must be positive")
        if offset < 0:
            raise OverflowError("memory mapped offset must be positive")
        if access != mmap.ACCESS_DEFAULT and (
            flags != mmap.MAP_SHARED or prot != (mmap.PROT_WRITE | mmap.PROT_READ)
        ):
            raise ValueError("mmap can't specify both access and flags, prot.")
        if access == mmap.ACCESS_READ:
            flags, prot = mmap.MAP_SHARED, mmap.PROT_READ
        elif access == mmap.ACCESS_WRITE:
            flags, prot = mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        elif access == mmap.ACCESS_COPY:
            flags, prot = mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE
        elif access != mmap.ACCESS_DEFAULT:
            raise ValueError("mmap invalid access parameter.")
        proc = self.proc
        file = proc.fdget(fd)
        st = file.inode
        if _stat.S_ISREG(st.mode):
            if length == 0:
                if st.size == 0:
                    raise ValueError("cannot mmap an empty file")
                if offset >= st.size:
                    raise ValueError("mmap offset is greater than file size")
                length = st.size - offset
            elif offset > st.size or st.size - offset < length:
                raise ValueError("mmap length is greater than file size")
        hidden = proc.sys_fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)  # CPython's _Py_dup(fd)
        try:
            m = proc.sys_mmap(fd, length, flags, prot, access, offset)
        except BaseException:
            proc.sys_close(hidden)
            raise
        m._mk_fd = hidden
        m._mk_fstat = self.funcs["fstat"]
        m._mk_hooks.insert(0, self._closer(hidden, file))
        return m

    def _closer(self, hidden: int, file: Any) -> Callable[[], None]:
        """What CPython does with its dup when the map goes: ``close()`` that number.

        While this redirection is installed the number is closed whatever it now
        holds, as CPython would (a program may have closed or reused it); afterwards
        only if it is still the dup this map made (the kernel may have closed it).
        """
        proc = self.proc

        def close_hidden() -> None:
            if self.installed:
                with contextlib.suppress(OSError):
                    self.funcs["close"](hidden)
            elif proc.files.get(hidden) is file:
                proc.sys_close(hidden)

        return close_hidden
