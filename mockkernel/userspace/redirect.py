"""Redirection: route a program's syscalls to a mock kernel, the rest to the real OS.

``with kernel.install():`` replaces, for as long as the block runs,
``os.open/close/dup/dup2/read/write/pread/pwrite/lseek/fstat/stat/lstat/
access/listdir/scandir/readlink``, ``builtins.open``/``io.open``,
``fcntl.ioctl``/``fcntl.fcntl``, ``mmap.mmap``, ``socket.socket`` and
``socket.if_nametoindex/if_indextoname/if_nameindex`` (the mock kernel's net devices),
``select.select/poll/epoll`` (and the ``selectors`` classes that bound them: ``poll.py``)
with dispatchers:

* a mock fd (a key of the process's fd table) or a mock path goes to the syscall
  layer (``Process.sys_*``), with the exact argument conventions of the function it
  replaces (``fcntl.ioctl``'s 1024-byte buffer copy and NUL terminator, its return of
  bytes for immutable arguments, ...); a path the layer answers ``NotMine`` for goes
  to the real function;
* anything else goes straight to the real function.

Deciding costs one list index for fds and one character test for paths.  The
dispatchers live by family: ``hotpath.py`` (the hot six), ``fastcalls.py`` (``lseek``,
``dup``, ``fcntl``, ``stat``, ``lstat``, ``access``: a real fd or host path in one test),
``fdcalls.py`` (the other fd calls and the slow paths of those), ``ioctl.py`` (ioctl's
argument kinds), ``paths.py`` (path calls and directory listings), ``fileio.py``
(``open()``), ``mmap.py``, ``sockets.py`` and ``poll.py``.
This module installs them.  Names bound before installation (``from fcntl import
ioctl``) are rebound (``rebind.py``): by default in every loaded module but the standard
library, mockkernel's own and those listed in ``skip`` (``rebind="loaded"``, the scan is
cached per module), plus any named in ``modules``; ``rebind=[mod, ...]`` names the only
modules to rebind, ``rebind=True`` every loaded module (the runner), ``()`` none.

``pause()``/``resume()`` (or ``with redir.paused():``) put the real functions back for a
while without uninstalling: mock fds stay open, calls reach the real OS.
"""

from __future__ import annotations

import builtins
import fcntl
import io
import mmap
import os
import select
import selectors
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType, ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..errors import FORKED_MESSAGE, ForkedKernelError
from ..net.dev_ioctl import DEV_IOCTL_CMDS
from ..realfd import REAL as _Real
from ..realfd import held_numbers, os_close
from ..syscalls import rw, stat
from ..syscalls.fd import sys_close
from ..syscalls.ioctl import do_ioctl
from ..syscalls.namei import open_chrdev
from ..trace import TracePoint
from ..vfs import Vfs
from ..wait import Signals
from . import fastcalls, hotpath
from .attrs import KEYS as ATTR_KEYS
from .attrs import AttrCalls
from .fdcalls import FdCalls
from .fileio import OpenCalls
from .ioctl import IoctlCalls, Scratch
from .mmap import MmapCalls, RedirectedMmap
from .paths import PathCalls
from .poll import PollCtx, make_poll_functions
from .rebind import rebind_loaded
from .signals import SignalDeferral
from .sockets import MockSocket, SocketCtx, make_if_functions, socket_init

if TYPE_CHECKING:
    from ..process import TaskContext

__all__ = ["FORKED_MESSAGE", "ForkedKernelError", "Redirection"]

trace_userspace_install = TracePoint("userspace.install", "pid")
trace_userspace_uninstall = TracePoint("userspace.uninstall", "pid")
trace_userspace_pause = TracePoint("userspace.pause", "pid")
trace_userspace_resume = TracePoint("userspace.resume", "pid")
trace_userspace_forked = TracePoint("userspace.forked", "pid", "child")


class _Forked:
    """What a forked child's fd table holds in place of each mock file, and its
    ``sys_*`` calls: any use raises :class:`ForkedKernelError`."""

    def __getattr__(self, name: str) -> Any:
        raise ForkedKernelError()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ForkedKernelError()


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
    (os, "mkdir", "mkdir"),
    (os, "rmdir", "rmdir"),
    (os, "unlink", "unlink"),
    (os, "remove", "remove"),
    (os, "rename", "rename"),
    (os, "replace", "replace"),
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
    (fcntl, "flock", "flock"),
    (fcntl, "lockf", "lockf"),
    (os, "lockf", "os_lockf"),
    (os, "fchmod", "fchmod"),
    (os, "fchown", "fchown"),
    *((os, key, key) for key in ATTR_KEYS),
    (os, "posix_fallocate", "posix_fallocate"),
    (os, "sendfile", "sendfile"),
    (os, "splice", "splice"),
    (os, "fstatvfs", "fstatvfs"),
    (socket, "socket", "socket"),
    # a socket.socket subclass defined before installation, on a mock netlink fd
    (socket.socket, "__init__", "socket_init"),
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
_REAL_MORE: Mapping[str, Any] = MappingProxyType(
    {
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
        "flock": fcntl.flock,
        "lockf": fcntl.lockf,
        "os_lockf": os.lockf,
        "fchmod": os.fchmod,
        "fchown": os.fchown,
        "posix_fallocate": os.posix_fallocate,
        "sendfile": os.sendfile,
        "splice": os.splice,
        "fstatvfs": os.fstatvfs,
        "socket": socket.socket,
        "socket_init": socket.socket.__init__,
        "if_nametoindex": socket.if_nametoindex,
        "if_indextoname": socket.if_indextoname,
        "if_nameindex": socket.if_nameindex,
        "select": select.select,
        "poll": select.poll,
        "epoll": select.epoll,
        "select_method": select.select,
        "mkdir": os.mkdir,
        "rmdir": os.rmdir,
        "unlink": os.unlink,
        "remove": os.remove,
        "rename": os.rename,
        "replace": os.replace,
        **{key: getattr(os, key) for key in ATTR_KEYS},
    }
)


#: the targets served by ``FdCalls`` and ``PathCalls`` methods of the same name
_FD_KEYS = (
    "dup",
    "dup2",
    "pread",
    "pwrite",
    "lseek",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "fsync",
    "fdatasync",
    "ftruncate",
    "closerange",
    "get_blocking",
    "set_blocking",
    "fcntl",
    "flock",
    "lockf",
    "os_lockf",
    "fchmod",
    "fchown",
    "posix_fallocate",
    "sendfile",
    "splice",
    "fstatvfs",
)
_PATH_KEYS: tuple[str, ...] = ("stat", "lstat", "access", "listdir", "scandir", "readlink")
_PATH_KEYS += ("mkdir", "rmdir", "unlink", "remove", "rename", "replace")


def _real_func(key: str) -> Any:
    return _REAL_MORE[key] if key in _REAL_MORE else getattr(_Real, key)


#: the module targets by namespace: ``(module.__dict__, attributes, keys)``, so that an
#: installation sets each module's names with one ``dict.update`` (the fixture installs
#: once per test)
_MODULE_GROUPS: tuple[tuple[ModuleType, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (
        module,
        tuple(a for m, a, _k in _TARGETS if m is module),
        tuple(k for m, _a, k in _TARGETS if m is module),
    )
    for module in dict.fromkeys(m for m, _a, _k in _TARGETS if isinstance(m, ModuleType))
)
#: the targets that are class attributes (set one by one)
_CLASS_TARGETS = tuple(t for t in _TARGETS if not isinstance(t[0], ModuleType))

#: ``(id(real function), key)`` of each module target: the keys of the swap table that
#: rebinding uses (an immutable fact of this interpreter, computed once)
_SWAP_IDS: tuple[tuple[int, str], ...] = tuple(
    (id(_real_func(key)), key) for module, _attr, key in _TARGETS if isinstance(module, ModuleType)
)


class Redirection:
    """Installs the dispatchers for one kernel's ``init_process`` (a context manager).

    Patching ``os``/``fcntl``/``mmap``/``builtins`` is process-wide, so at most one
    redirection is installed at a time: installing a second one (or the same one
    again, nested) raises ``RuntimeError`` instead of silently stacking.

    ``kernel.install()`` returns one already installed; for the code written when it
    did not, the first ``install()`` or ``with`` after it is a no-op (``with
    kernel.install():`` and ``kernel.install().install()`` both install once).
    """

    #: The redirection installed in this interpreter, if any.
    active: Redirection | None = None

    def __init__(
        self,
        kernel: TaskContext,
        rebind: Iterable[ModuleType] | bool | Literal["loaded"] = (),
        *,
        skip: Iterable[str] = (),
        modules: Iterable[ModuleType | str] = (),
    ) -> None:
        self.kernel = kernel
        self.proc = kernel.init_process
        #: the real functions (``realfd.REAL``) and those it does not list
        self.real = _Real
        self.real_more = _REAL_MORE
        self._rebind = rebind
        self._skip = tuple(skip)
        self._modules = tuple(modules)
        self._saved: list[tuple[Any, str, Any]] = []
        #: the values ``_saved`` replaced, kept while paused (``resume`` sets them again)
        self._paused: list[Any] | None = None
        #: installed by ``Kernel.install()``: the next ``install()``/``with`` is a no-op
        self.preinstalled = False
        self.scratch = Scratch()
        self.poll_ctx = PollCtx(self.proc, _REAL_MORE)
        self.socket_ctx = SocketCtx(kernel, self.proc)
        self.installed = False
        self.paths = PathCalls(self)
        self.mmaps = MmapCalls(self)
        #: the program's Python signal handlers run at syscall boundaries (signals.py)
        self.signals = SignalDeferral()
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
        """Put the dispatchers in place (``RuntimeError`` if a redirection already is)."""
        if self.preinstalled and self.installed:
            self.preinstalled = False  # kernel.install() did it; this is the caller's call
            return
        if Redirection.active is not None:
            raise RuntimeError(
                f"a mockkernel redirection is already installed (for {Redirection.active.kernel!r})"
            )
        if self.kernel.installed_process is not None:
            raise RuntimeError("this kernel is already installed")
        funcs, saved = self.funcs, self._saved
        for module, attrs, keys in _MODULE_GROUPS:
            ns = vars(module)
            saved += [(ns, attr, ns[attr]) for attr in attrs]
            ns.update(zip(attrs, [funcs[key] for key in keys], strict=True))
        for cls, attr, key in _CLASS_TARGETS:
            saved.append((cls, attr, getattr(cls, attr)))
            setattr(cls, attr, funcs[key])
        try:
            if self._rebind == "loaded":
                swap = self._swap_table()
                rebind_loaded(swap, self._saved, skip=self._skip, modules=self._modules)
            elif self._rebind:
                self._rebind_modules()
        except BaseException:  # (a module named that is not imported): nothing stays patched
            self._restore()
            self._saved.clear()
            raise
        self.signals.install()
        self.kernel.subsys(Signals).add(self.signals.pending_here)
        self.kernel.installed_process = self.proc
        self.installed = True
        Redirection.active = self
        trace_userspace_install(self.kernel.tracer, self.proc.pid)

    def _vfs(self) -> Vfs:
        """The kernel's VFS, for the fast ``/dev/<name>`` open (its first use)."""
        return self.kernel.subsys(Vfs)

    def uninstall(self) -> None:
        """Put every replaced function and rebound name back (a no-op if not installed)."""
        self.preinstalled = False
        if not self.installed:
            return
        self.signals.uninstall()
        self.kernel.subsys(Signals).remove(self.signals.pending_here)
        if self._paused is not None:
            self._paused = None  # the real functions are in place already
            self._saved.clear()
        for target, attr, old in reversed(self._saved):  # as _restore, keeping nothing
            if type(target) is dict:
                target[attr] = old
            else:
                setattr(target, attr, old)
        self._saved.clear()
        self.kernel.installed_process = None
        self.installed = False
        if Redirection.active is self:
            Redirection.active = None
        trace_userspace_uninstall(self.kernel.tracer, self.proc.pid)

    def _restore(self) -> list[Any]:
        """Put back what ``_saved`` recorded (newest first); returns the values replaced."""
        replaced: list[Any] = []
        for target, attr, old in reversed(self._saved):
            if isinstance(target, dict):
                replaced.append(target[attr])
                target[attr] = old
            else:
                replaced.append(getattr(target, attr))
                setattr(target, attr, old)
        return replaced

    # -- pause / resume -------------------------------------------------------------------
    @property
    def is_paused(self) -> bool:
        """Whether :meth:`pause` put the real functions back for now."""
        return self._paused is not None

    def pause(self) -> None:
        """Put the real functions back for a while: every call reaches the real OS (mock
        fds stay open in the kernel; ``resume()`` routes them again).  No-op if paused."""
        if not self.installed or self._paused is not None:
            return
        self._paused = self._restore()
        trace_userspace_pause(self.kernel.tracer, self.proc.pid)

    def resume(self) -> None:
        """Route calls to the kernel again after :meth:`pause` (no-op if not paused)."""
        current = self._paused
        if current is None:
            return
        self._paused = None
        for (target, attr, _old), new in zip(reversed(self._saved), current, strict=True):
            if isinstance(target, dict):
                target[attr] = new
            else:
                setattr(target, attr, new)
        trace_userspace_resume(self.kernel.tracer, self.proc.pid)

    @contextmanager
    def paused(self) -> Iterator[Redirection]:
        """``with redir.paused():`` -- the real functions for the block, then resumed."""
        was = self.is_paused
        self.pause()
        try:
            yield self
        finally:
            if not was:
                self.resume()

    def forked_child(self) -> None:
        """In the child of an ``os.fork`` while installed: every mock fd of the table and
        every ``Process.sys_*`` call now raises :class:`ForkedKernelError` (one
        ``userspace.forked`` trace event says so).  The child's memory, mock mappings
        included, is its copy of the parent's, as after Linux's fork; what it may not do
        is act on a private copy of the kernel's objects."""
        proc = self.proc
        forked = _Forked()
        for fd in list(proc.files):
            proc.files[fd] = forked  # type: ignore[assignment]
        slots = proc.slots
        for i, file in enumerate(slots):
            if file is not None:
                slots[i] = forked  # type: ignore[call-overload]
        for name in dir(type(proc)):
            if name.startswith("sys_"):
                setattr(proc, name, forked)
        trace_userspace_forked(self.kernel.tracer, proc.pid, os.getpid())

    @staticmethod
    def _after_fork_in_child() -> None:
        active = Redirection.active
        if active is not None:
            active.forked_child()

    def _swap_table(self) -> dict[int, Any]:
        """``id(real function)`` -> its replacement, for names bound in modules."""
        funcs = self.funcs  # (class attributes are set by install: not in the table)
        return {real_id: funcs[key] for real_id, key in _SWAP_IDS}

    def _rebind_modules(self) -> None:
        swap = self._swap_table()
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
        """The replacement of each target, by the key ``_TARGETS`` names."""
        proc = self.proc
        paths = self.paths
        fds = FdCalls(self)
        ioctls = IoctlCalls(self)
        real = _Real
        hot = hotpath.bind(
            _slots=proc.slots,
            _proc=proc,
            _tracer=self.kernel.tracer,
            _scratch=self.scratch,
            _real_open=real.open,
            _real_close=os_close,
            _held=held_numbers(self.kernel),
            _real_read=real.read,
            _real_write=real.write,
            _real_fstat=real.fstat,
            _real_ioctl=real.ioctl,
            _open_slow=paths.open_slow,
            _open_chrdev=open_chrdev,
            _sys_close=sys_close,
            _sys_read=rw.sys_read,
            _sys_write=rw.sys_write,
            _sys_fstat=stat.sys_fstat,
            _vfs=[None],
            _find_vfs=self._vfs,
            _chrdevs=[{}],
            _notconn_read=fds.notconn_read,
            _notconn_write=fds.notconn_write,
            _fileno_ioctl=ioctls.fileno_ioctl,
            _general_ioctl=ioctls.general_ioctl,
            _real_or_sock_ioctl=ioctls.real_or_sock_ioctl,
            _do_ioctl=do_ioctl,
            _dev_ioctl_min=min(DEV_IOCTL_CMDS),
            _dev_ioctl_max=max(DEV_IOCTL_CMDS),
            _ioctl_tables=ioctls.tables,
            _ioctl_table=ioctls.ioctl_table,
        )
        ioctls.m_ioctl = hot["ioctl"]
        fd_funcs = {key: getattr(fds, key) for key in _FD_KEYS}
        path_funcs = {key: getattr(paths, key) for key in _PATH_KEYS}
        attr_calls = AttrCalls(self, paths)
        path_funcs.update({key: getattr(attr_calls, key) for key in ATTR_KEYS})
        fast = fastcalls.bind(  # (their slow paths: the families' methods)
            _files=proc.files,
            _held=held_numbers(self.kernel),
            _real_lseek=real.lseek,
            _real_dup=real.dup,
            _real_fcntl=real.fcntl,
            _real_stat=real.stat,
            _real_lstat=real.lstat,
            _real_access=real.access,
            _lseek_slow=fds.lseek,
            _dup_slow=fds.dup,
            _fcntl_slow=fds.fcntl,
            _stat_slow=paths.stat_slow,
            _lstat_slow=paths.lstat,
            _access_slow=paths.access,
        )
        return {
            **{key: hot[key] for key in ("open", "close", "read", "write", "fstat", "ioctl")},
            **fd_funcs,
            **path_funcs,
            **fast,
            "builtin_open": OpenCalls(self).builtin_open,
            "mmap": RedirectedMmap,
            # AF_NETLINK is mock (any protocol), AF_INET stream once bound to a NIC (sockets.py)
            "socket": MockSocket,
            "socket_init": socket_init,
            **make_if_functions(self.kernel),
            **make_poll_functions(self.poll_ctx),
        }

    def stat(self, path: str) -> os.stat_result:
        fn: Callable[[str], os.stat_result] = self.funcs["stat"]
        return fn(path)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=Redirection._after_fork_in_child)
