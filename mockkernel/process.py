"""Processes and their fd tables (``fs/file.c``); ``Process.sys_*`` are the syscalls.

The syscalls themselves live in :mod:`mockkernel.syscalls`, by family; the
``sys_<name>`` methods here are their public face (traced as ``sys.<name>``),
what every front-end calls: the in-process redirection and a supervisor of other
processes alike.  Two fd tables share one interface:

* ``RealBackedFdTable`` -- for the process that *is* this Python process (the
  one the redirection routes to).  Every mock fd number is held by a real fd,
  a dup of a kernel-owned placeholder memfd, so the real OS hands out the
  lowest free number and a later real ``open`` can never collide with a mock
  fd.  ``FD_CLOEXEC`` lives on that real fd too, so ``os.get_inheritable``
  and ``exec`` see the truth.
* ``VirtualFdTable`` -- for extra simulated processes: numbers only.
"""

from __future__ import annotations

import contextlib
import fcntl as _fcntl
import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from errno import EBADF, EINVAL, EMFILE, ENOMEM, errorcode
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from .context import KernelContext
from .cred import Ids
from .errors import kerr
from .fault_inject import should_fail
from .fs import FMODE_PATH, File
from .fs import O_LARGEFILE as O_LARGEFILE
from .fs import open_flags_to_file as open_flags_to_file
from .mm import MappedFile, Mapping, Vma
from .realfd import REAL, HeldFds, kernel_close, kernel_dup
from .syscalls import AT_FDCWD, attr, ioctl, namei, notify, readdir, rw, stat, xattr
from .syscalls import fd as fd_
from .syscalls import mmap as mmap
from .syscalls import poll as poll_
from .trace import EventSpec, TracePoint, Tracer
from .uaccess import LOCAL, UserBuffer, UserMemory, cpu_fault
from .uapi.linux.ioctls import FIOASYNC as FIOASYNC  # (re-exported: their old home)
from .uapi.linux.ioctls import FIOCLEX as FIOCLEX
from .uapi.linux.ioctls import FIONBIO as FIONBIO
from .uapi.linux.ioctls import FIONCLEX as FIONCLEX
from .uapi.linux.ioctls import FIOQSIZE as FIOQSIZE

if TYPE_CHECKING:
    from .net.tcp_sock import TcpSocket
    from .vfs import Node

__all__ = ["Cred", "FdTable", "Process", "RealBackedFdTable", "TaskContext", "VirtualFdTable"]

FIGETBSZ = ioctl.FIGETBSZ

trace_fd_install = TracePoint("fd.install", "pid", "fd", "file", "kind")


class TaskContext(KernelContext, Protocol):
    """The kernel context as layers that deal with tasks see it: the context plus the
    processes and the task each thread (CPU) runs (:class:`mockkernel.Kernel` is one)."""

    #: every process of the kernel, the init process first
    processes: list[Process]
    #: the process that is this Python process
    init_process: Process
    #: the process an installed redirection serves (``/proc/self`` is its), if any
    installed_process: Process | None

    @property
    def current(self) -> Process:
        """The task this thread runs in the kernel (``current``)."""

    def running(self, proc: Process, tid: int | None = None) -> AbstractContextManager[Process]:
        """Make ``proc`` the current task on this thread for a block (``tid``: which of
        its threads, for a supervised program)."""

    @property
    def current_tid(self) -> int | None:
        """The thread of the current task this CPU serves, when the front-end knows it."""

    def spawn(self, name: str = "task") -> Process:
        """A further simulated process with its own (virtual) fd table."""


class FdTable:
    """Which numbers are taken and their close-on-exec bit (``struct fdtable``)."""

    def __init__(self, rlimit: int) -> None:
        self.files: dict[int, File] = {}
        self.rlimit = rlimit

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        raise NotImplementedError

    def free_number(self, fd: int) -> None:
        raise NotImplementedError

    def put_unused(self, fd: int) -> None:
        """``put_unused_fd``: give back a number :meth:`alloc` reserved that no file was
        installed at (the call failed after reserving it)."""
        self.free_number(fd)

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        """Make ``fd`` a mock number (dup2/dup3 target), closing what was there."""
        raise NotImplementedError

    def get_cloexec(self, fd: int) -> bool:
        raise NotImplementedError

    def set_cloexec(self, fd: int, on: bool) -> None:
        raise NotImplementedError

    #: True when :meth:`is_real_fd` knows the real table (this Python process): a number
    #: that is neither mock nor real is then certainly not open (``EBADF``)
    knows_real_fds = False

    def is_real_fd(self, fd: int) -> bool:
        """True when ``fd`` is open in the real OS but not a mock fd (never, when virtual)."""
        return False


class RealBackedFdTable(FdTable):
    knows_real_fds = True

    def __init__(self, rlimit: int, placeholder: Callable[[str], int], held: HeldFds) -> None:
        super().__init__(rlimit)
        self._placeholder = placeholder
        #: the real fds its kernel holds in this table (a program's number moves them away)
        self._held = held

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        if minfd >= self.rlimit:
            raise kerr(EINVAL)
        if minfd == 0 and cloexec:  # os.open's case: os.dup is F_DUPFD_CLOEXEC from 0
            fd: int = REAL.dup(self._placeholder(label))  # (fcntl.fcntl would first try
        else:  # the int as a buffer: an exception raised and cleared, +0.25 us a call)
            cmd = _fcntl.F_DUPFD_CLOEXEC if cloexec else _fcntl.F_DUPFD
            fd = REAL.fcntl(self._placeholder(label), cmd, minfd)
        if fd >= self.rlimit:
            REAL.close(fd)
            raise kerr(EMFILE)
        return fd

    def free_number(self, fd: int) -> None:
        REAL.close(fd)

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        if self._held.held(fd):
            self._held.give_up(fd)  # a real fd the kernel holds there moves away first
        REAL.dup2(source, fd, not cloexec)

    def get_cloexec(self, fd: int) -> bool:
        return not os.get_inheritable(fd)

    def set_cloexec(self, fd: int, on: bool) -> None:
        os.set_inheritable(fd, not on)

    def is_real_fd(self, fd: int) -> bool:
        if fd in self.files or fd < 0:
            return False
        try:
            REAL.fcntl(fd, _fcntl.F_GETFD)
        except OSError:
            return False
        return True


class VirtualFdTable(FdTable):
    def __init__(self, rlimit: int) -> None:
        super().__init__(rlimit)
        self.cloexec: set[int] = set()

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        if minfd >= self.rlimit:
            raise kerr(EINVAL)
        fd = minfd
        while fd in self.files:
            fd += 1
        if fd >= self.rlimit:
            raise kerr(EMFILE)
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        return fd

    def free_number(self, fd: int) -> None:
        self.cloexec.discard(fd)

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        self.set_cloexec(fd, cloexec)

    def get_cloexec(self, fd: int) -> bool:
        return fd in self.cloexec

    def set_cloexec(self, fd: int, on: bool) -> None:
        if on:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _shown(value: object) -> object:
    """How an argument or result appears in a trace event: small and JSON-friendly."""
    t: Any = type(value)
    if t is int or t is str or value is None:
        return value
    kind = _shown_kind(t)
    if kind is None:
        return value
    if kind == "":
        return _bytes_shown(len(value))  # type: ignore[arg-type]
    return kind


@functools.lru_cache(maxsize=512)
def _bytes_shown(n: int) -> str:
    """``<n bytes>``, one string per length (a captured event keeps only a reference)."""
    return f"<{n} bytes>"


@functools.lru_cache(maxsize=256)
def _shown_kind(t: Any) -> str | None:
    """How a value of type ``t`` is shown: None as itself (an int or str subclass), ""
    by its length (bytes-like), else ``<typename>`` (one lookup per value of the type)."""
    if issubclass(t, (bytes, bytearray, memoryview)):
        return ""
    if issubclass(t, UserBuffer):
        return "<user buffer>"  # (not read: the call may refuse it first)
    if issubclass(t, (int, str)):
        return None
    return f"<{t.__name__}>"


def _syscall(
    fn: Callable[Concatenate[Process, _P], _R],
) -> Callable[Concatenate[Process, _P], _R]:
    """Trace a syscall as ``sys.<name>`` with its arguments, ``ret`` or ``errno``, and
    ``nested``: how many events the call emitted (they precede it: a syscall's event is
    emitted when it returns), so a viewer can nest them under it.

    With tracing off this is one attribute check and the call.  With tracing on, the
    event's shape (:class:`~mockkernel.trace.EventSpec`) is made here, once per syscall
    and number of positional arguments, and the event is a tuple of values
    (:meth:`~mockkernel.trace.Tracer.emit_record`); keyword arguments take the general
    path.  ``sys.ioctl`` shows ``cmd`` in hex, the ``file`` id of its fd and, for a
    command whose argument the kernel reads, ``arg_data``: those bytes in hex as the call
    began (:func:`~mockkernel.syscalls.ioctl.ioctl_arg_bytes`; read only here).  A
    keyword-only parameter is a hint from the caller (``sys_open``'s ``found``), not an
    argument of the syscall: the event does not show it.
    """
    event = "sys." + fn.__name__.removeprefix("sys_")
    sig = inspect.signature(fn).parameters.values()
    params = tuple(p.name for p in sig if p.kind is not p.KEYWORD_ONLY)[1:]
    hints = frozenset(p.name for p in sig if p.kind is p.KEYWORD_ONLY)
    is_ioctl = event == "sys.ioctl"

    def specs(last: str, tid: bool, extra: tuple[str, ...]) -> list[EventSpec]:
        """The shape for each number of positional arguments: ``pid`` (and ``tid``),
        the arguments (and ioctl's ``file``, ``arg_data``), ``nested``, then ``ret`` or
        ``errno``."""
        head = ("pid", "tid") if tid else ("pid",)
        out = []
        for n in range(len(params) + 1):
            hex_keys = ("cmd",) if is_ioctl and n >= 2 else ()
            keys = (*head, *params[:n], *extra, "nested", last)
            out.append(EventSpec(event, keys, hex_keys))
        return out

    # [with tid][extra fields: none, ioctl's file, file and arg_data] -> (ok, err)
    # shapes by number of positional arguments; made at the first traced call (made here,
    # they were ~1,600 objects and a twentieth of ``import mockkernel``)
    extras = ((), ("file",), ("file", "arg_data"))
    shapes: list[list[tuple[list[EventSpec], list[EventSpec]]]] = []

    #: (ok, err) by number of positional arguments: no tid, no extra fields
    plain: list[tuple[EventSpec, EventSpec]] = []

    def make_shapes() -> None:
        shapes[:] = [
            [(specs("ret", tid, extra), specs("errno", tid, extra)) for extra in extras]
            for tid in (False, True)
        ]
        plain[:] = list(zip(shapes[0][0][0], shapes[0][0][1], strict=True))

    nparams = len(params)

    def traced_kw(self: Process, tracer: Tracer, args: tuple[Any, ...], kwargs: Any) -> Any:
        fields: dict[str, object] = {"pid": self.pid}
        tid = self.kernel.current_tid
        if tid is not None:
            fields["tid"] = tid
        fields.update(zip(params, map(_shown, args), strict=False))
        fields.update((k, _shown(v)) for k, v in kwargs.items() if k not in hints)
        if is_ioctl:
            cmd = int(fields["cmd"])  # type: ignore[call-overload]
            fields["cmd"] = hex(cmd)
            file = self.files.get(int(fields["fd"]))  # type: ignore[call-overload]
            if file is not None:
                fields["file"] = file.id
                arg = fields.get("arg")
                data = ioctl.ioctl_arg_bytes(self, cmd, arg) if type(arg) is int else None
                if data is not None:
                    fields["arg_data"] = data.hex()
        began = tracer.seq
        try:
            ret = fn(self, *args, **kwargs)
        except OSError as e:
            fields["nested"] = tracer.seq - began
            tracer.emit(event, **fields, errno=errorcode.get(e.errno or 0, e.errno))
            raise
        fields["nested"] = tracer.seq - began
        tracer.emit(event, **fields, ret=_shown(ret))
        return ret

    @functools.wraps(fn)
    def syscall(self: Process, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        tracer = self.kernel.tracer
        if not tracer.enabled:
            return fn(self, *args, **kwargs)
        n = len(args)
        if kwargs or n > nparams:  # (hints included: found= opens take this path)
            return traced_kw(self, tracer, args, kwargs)  # type: ignore[no-any-return]
        tid = self.kernel.current_tid
        if n == 1:  # (the common case, without map's set-up)
            if not plain:
                make_shapes()
            if tid is None:
                a = args[0]
                shown_a = a if type(a) is int else _shown(a)
                start = tracer.seq
                try:
                    res = fn(self, a)  # type: ignore[call-arg,arg-type]
                except OSError as e:
                    code = errorcode.get(e.errno or 0, e.errno)
                    err1 = plain[1][1]
                    tracer.emit_record(err1, (self.pid, shown_a, tracer.seq - start, code))
                    raise
                shown_res = res if type(res) is int or res is None else _shown(res)
                ok1 = plain[1][0]
                tracer.emit_record(ok1, (self.pid, shown_a, tracer.seq - start, shown_res))
                return res
            shown: tuple[object, ...] = (_shown(args[0]),)
        else:
            shown = tuple(map(_shown, args))
        extra = 0  # (an index of extras)
        if is_ioctl and n >= 2:
            shown = (shown[0], int(args[1]), *shown[2:])  # type: ignore[call-overload]
            file = self.files.get(int(args[0]))  # type: ignore[call-overload]
            if file is not None:
                shown = (*shown, file.id)
                extra = 1
                if n == 3:  # the argument as the driver will read it (_IOW/_IOWR)
                    cmd, arg = int(args[1]), int(args[2])  # type: ignore[call-overload]
                    data = ioctl.ioctl_arg_bytes(self, cmd, arg)
                    if data is not None:
                        shown = (*shown, data.hex())
                        extra = 2
        if not shapes:
            make_shapes()
        if tid is None:
            ok, err = shapes[0][extra]
            shown = (self.pid, *shown)
        else:
            ok, err = shapes[1][extra]
            shown = (self.pid, tid, *shown)
        ok_spec, err_spec = ok[n], err[n]
        began = tracer.seq
        try:
            ret = fn(self, *args)  # type: ignore[call-arg]
        except OSError as e:
            errno = errorcode.get(e.errno or 0, e.errno)
            tracer.emit_record(err_spec, (*shown, tracer.seq - began, errno))
            raise
        tracer.emit_record(ok_spec, (*shown, tracer.seq - began, _shown(ret)))
        return ret

    return syscall  # type: ignore[return-value]


class Cred:
    """A task's credentials, as an identity (``struct cred``).

    A file remembers its opener's (``file->f_cred``); a driver that must refuse callers
    whose security context changed since the open compares the two
    (``ib_safe_file_access`` in ``include/rdma/ib.h``).  As on Linux a fork gives the
    child new ones (``copy_creds`` -> ``prepare_creds``), the threads of a process share
    theirs (``CLONE_THREAD``) and an exec installs new ones (``prepare_exec_creds``), so a
    file opened before any of those is foreign afterwards.  The ids themselves are the
    real process's (the supervisor reads them from ``/proc``); this is only who, and
    ``pid`` the task they were prepared for (a leak report names a file's opener)."""

    __slots__ = ("pid",)

    def __init__(self, pid: int) -> None:
        self.pid = pid


class Process:
    """A task with an fd table.  Syscall methods raise ``OSError`` with the kernel's errno."""

    def __init__(
        self, kernel: TaskContext, pid: int, fdt: FdTable, name: str, mm: UserMemory = LOCAL
    ) -> None:
        self.kernel = kernel
        self.pid = pid
        #: the address space uaccess reaches while this task is current (``current->mm``)
        self.mm = mm
        self.fdt = fdt
        self.files = fdt.files
        #: ``slots[fd]`` is ``files.get(fd)`` for every fd >= 0 below ``len(slots)``, and no
        #: mock fd is beyond it: the redirection's real-fd path is one list index (cheaper
        #: than a dict probe), an IndexError meaning "real".  Grown in place, never rebound.
        self.slots: list[File | None] = [None] * 64
        #: real fds whose readiness the kernel answers: sockets that became mock when bound
        #: to a mock NIC address (``userspace/sockets.py``); ``select``/``poll`` ask these
        self.fd_pollers: dict[int, Callable[[], int]] = {}
        #: and what ``os.read`` on them reads (their real socket never connects: ENOTCONN)
        self.fd_readers: dict[int, Callable[[int], bytes]] = {}
        self.fd_writers: dict[int, Callable[[bytes], int]] = {}
        #: and the kernel socket behind each (what ``os.splice`` splices with)
        self.fd_socks: dict[int, TcpSocket] = {}
        self.name = name
        #: True when ``pid`` is a real process's (this Python process; a supervised one):
        #: the real ``/proc/<pid>`` answers what procfs does not (``mockkernel.procfs``).
        #: A front-end that serves another real process sets it.
        self.real_pid = fdt.knows_real_fds
        self.exited = False
        # ``files_lock``: serialises changes to the table (lookups are lock-free dict reads)
        self.files_lock = threading.RLock()
        #: live mappings of mock files, by start address (``/proc/<pid>/maps`` shows them)
        self.mappings: dict[int, Mapping] = {}
        #: the credentials files opened now record (a new process: new ones, see Cred)
        self.cred = Cred(pid)

    def __repr__(self) -> str:
        return f"<Process {self.pid} {self.name} fds={sorted(self.files)}>"

    # -- fd table primitives (kernel names) --------------------------------------------
    def get_unused_fd(self, cloexec: bool, label: str = "file", minfd: int = 0) -> int:
        if should_fail(self.kernel, "alloc_fd"):
            raise kerr(ENOMEM)  # expand_files
        return self.fdt.alloc(minfd, cloexec, label)

    def fd_install(self, fd: int, file: File) -> None:
        """Publish ``file`` at ``fd``; the caller's reference now belongs to the table."""
        self.files[fd] = file
        slots = self.slots
        if fd >= len(slots):
            slots.extend([None] * (max(fd + 1, 2 * len(slots)) - len(slots)))
        slots[fd] = file
        tracer = self.kernel.tracer
        if tracer.enabled:  # (a hot path: no call while off)
            trace_fd_install(tracer, self.pid, fd, file.id, file.f_op.name)

    def install_file(self, file: File, cloexec: bool) -> int:
        """``get_unused_fd_flags`` + ``fd_install``; on failure the caller keeps its ref."""
        if cpu_fault() is not None and should_fail(self.kernel, "alloc_fd"):  # (one call
            raise kerr(ENOMEM)  # expand_files                  # unarmed: a hot path)
        lock = self.files_lock
        lock.acquire()  # (not ``with``: half the cost, and an open is a hot path)
        try:
            fd = self.fdt.alloc(0, cloexec, file.f_op.name)
            self.fd_install(fd, file)
        finally:
            lock.release()
        return fd

    def fget(self, fd: int) -> File:
        """A referenced file for ``fd``; ``EBADF`` when there is none or it is ``O_PATH``."""
        return self.fdget(fd).get()

    def fget_raw(self, fd: int) -> File:
        """``fget_raw``: a referenced file for ``fd``, ``O_PATH`` files included."""
        return self.fdget_raw(fd).get()

    def fget_real(self, fd: int) -> int:
        """A kernel-held real fd for the *real* file at ``fd`` in this process (an eventfd,
        a memfd a program hands a driver); the caller closes it.  ``EBADF`` when ``fd`` is
        a mock fd or not open.  In-process that is a dup; a supervised process's table is
        reached by its front-end (``fget_real_hook``)."""
        if fd in self.files or fd < 0:
            raise kerr(EBADF)
        hook = self.fget_real_hook
        if hook is not None:
            return hook(fd)
        if not self.fdt.is_real_fd(fd):
            raise kerr(EBADF)
        try:
            return kernel_dup(self.kernel, fd)
        except OSError:
            raise kerr(EBADF) from None

    #: set by a front-end whose processes are not this Python process (the supervisor)
    fget_real_hook: Callable[[int], int] | None = None
    #: the calling thread's credentials, where they are not this Python process's (set
    #: by the supervisor: read from the caller's ``/proc/<tid>/status``; see ``cred``)
    ids_hook: Callable[[], Ids] | None = None

    @contextlib.contextmanager
    def fdget_real(self, fd: int) -> Iterator[int]:
        """The *real* file at ``fd`` as a real fd of this Python process, for a block
        (``fdget``: no fd is kept).  In-process that is ``fd`` itself, so it needs no
        free fd number (a driver's ``EMFILE`` order stays Linux's); a supervised
        process's file is fetched with :meth:`fget_real` and closed after the block."""
        if self.fget_real_hook is None:
            # this Python process's fds (a virtual process's real fds are its too)
            if fd in self.files or fd < 0:
                raise kerr(EBADF)
            try:
                REAL.fcntl(fd, _fcntl.F_GETFD)
            except OSError:
                raise kerr(EBADF) from None
            yield fd
            return
        real = self.fget_real(fd)
        try:
            yield real
        finally:
            kernel_close(self.kernel, real)  # (a held number: it stops being held)

    def fdget(self, fd: int) -> File:
        """The file for ``fd`` without a reference (the caller must not keep it);
        ``EBADF`` when there is none or it is an ``O_PATH`` file (``fdget``)."""
        file = self.files.get(fd)
        if file is None or file.f_mode & FMODE_PATH:
            raise kerr(EBADF)
        return file

    def fdget_raw(self, fd: int) -> File:
        """``fdget_raw``: as :meth:`fdget`, ``O_PATH`` files included (fcntl, fstat, dup,
        a ``dirfd``)."""
        file = self.files.get(fd)
        if file is None:
            raise kerr(EBADF)
        return file

    # -- syscalls: thin faces of mockkernel.syscalls, traced as sys.<name> -----------------
    @_syscall
    def sys_open(
        self, path: str, flags: int, mode: int = 0o666, *, found: Node | None = None
    ) -> int:
        """``open(path, flags, mode)``: ``sys_openat(AT_FDCWD, ...)``.  ``found`` is the
        node ``lookup_open`` just gave the caller for this path (the redirection looks
        first, to snapshot an attribute): the path is then not walked a second time."""
        return namei.sys_openat(self, AT_FDCWD, path, flags, mode, found)

    @_syscall
    def sys_openat(
        self, dirfd: int, path: str, flags: int, mode: int = 0o666, *, found: Node | None = None
    ) -> int:
        """``openat``: a new fd for a mock node; ``NotMine`` for a path that is not the
        mock's (see :func:`mockkernel.syscalls.namei.sys_openat` for the rules; ``found``
        as :meth:`sys_open`'s)."""
        return namei.sys_openat(self, dirfd, path, flags, mode, found)

    @_syscall
    def sys_mkdirat(self, dirfd: int, path: str, mode: int = 0o777) -> None:
        """``mkdirat``: in the mock tree only; ``NotMine`` for a real path."""
        namei.sys_mkdirat(self, dirfd, path, mode)

    @_syscall
    def sys_unlinkat(self, dirfd: int, path: str, flags: int = 0) -> None:
        """``unlinkat`` (``AT_REMOVEDIR``: ``rmdir``); ``NotMine`` for a real path."""
        namei.sys_unlinkat(self, dirfd, path, flags)

    @_syscall
    def sys_renameat2(
        self, olddirfd: int, old: str, newdirfd: int, new: str, flags: int = 0
    ) -> None:
        """``renameat2``; ``NotMine`` when neither path is the mock's."""
        namei.sys_renameat2(self, olddirfd, old, newdirfd, new, flags)

    @_syscall
    def sys_close(self, fd: int) -> None:
        fd_.sys_close(self, fd)

    def forget_fd(self, fd: int) -> None:
        """The real OS reused ``fd`` (a real dup2 onto a mock number): drop the mock file."""
        with self.files_lock:
            file = self.files.pop(fd, None)
            if file is not None:
                self.slots[fd] = None
        if file is not None:
            fd_.trace_fd_close(self.kernel.tracer, self.pid, fd, file.id)
            fd_.locks_remove_posix(self, file)
            file.put()

    @_syscall
    def sys_dup(self, fd: int) -> int:
        return fd_.sys_dup(self, fd)

    @_syscall
    def sys_dup3(self, oldfd: int, newfd: int, flags: int) -> int:
        return fd_.sys_dup3(self, oldfd, newfd, flags)

    @_syscall
    def sys_dup2(self, oldfd: int, newfd: int) -> int:
        return fd_.sys_dup2(self, oldfd, newfd)

    @_syscall
    def sys_fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        return fd_.sys_fcntl(self, fd, cmd, arg)

    @_syscall
    def sys_flock(self, fd: int, operation: int) -> None:
        """``flock``: an open file description's whole-file lock."""
        fd_.sys_flock(self, fd, operation)

    @_syscall
    def sys_fchmod(self, fd: int, mode: int) -> None:
        attr.sys_fchmod(self, fd, mode)

    @_syscall
    def sys_fchown(self, fd: int, uid: int, gid: int) -> None:
        attr.sys_fchown(self, fd, uid, gid)

    @_syscall
    def sys_fchmodat(self, dirfd: int, path: str, mode: int, flags: int = 0) -> None:
        """``fchmodat2`` (``chmod(p)``: ``(AT_FDCWD, p, mode)``); ``NotMine`` for a real
        path."""
        attr.sys_fchmodat(self, dirfd, path, mode, flags)

    @_syscall
    def sys_fchownat(self, dirfd: int, path: str, uid: int, gid: int, flags: int = 0) -> None:
        """``fchownat`` (``lchown``: ``AT_SYMLINK_NOFOLLOW``); ``NotMine`` for a real path."""
        attr.sys_fchownat(self, dirfd, path, uid, gid, flags)

    @_syscall
    def sys_utimensat(
        self,
        dirfd: int,
        path: str | None,
        times: tuple[tuple[int, int], tuple[int, int]] | None,
        flags: int = 0,
    ) -> None:
        """``utimensat``: ``times`` as ``(sec, nsec)`` pairs (``UTIME_NOW``/``UTIME_OMIT``),
        ``None`` for now; ``path`` None: the fd ``dirfd`` (``futimens``)."""
        attr.sys_utimensat(self, dirfd, path, times, flags)

    @_syscall
    def sys_truncate(self, path: str, length: int) -> None:
        attr.sys_truncate(self, path, length)

    @_syscall
    def sys_setxattrat(
        self,
        dirfd: int,
        path: str | None,
        at_flags: int,
        name: str,
        value: bytes,
        flags: int = 0,
    ) -> None:
        """``setxattr`` (``path`` None: ``fsetxattr`` of ``dirfd``; ``at_flags``
        ``AT_SYMLINK_NOFOLLOW``: ``lsetxattr``)."""
        xattr.sys_setxattrat(self, dirfd, path, at_flags, name, value, flags)

    @_syscall
    def sys_getxattrat(
        self, dirfd: int, path: str | None, at_flags: int, name: str, size: int
    ) -> bytes:
        """``getxattr`` and its forms, as :meth:`sys_setxattrat`."""
        return xattr.sys_getxattrat(self, dirfd, path, at_flags, name, size)

    @_syscall
    def sys_listxattrat(self, dirfd: int, path: str | None, at_flags: int, size: int) -> bytes:
        """``listxattr`` and its forms: the NUL-terminated names."""
        return xattr.sys_listxattrat(self, dirfd, path, at_flags, size)

    @_syscall
    def sys_removexattrat(self, dirfd: int, path: str | None, at_flags: int, name: str) -> None:
        """``removexattr`` and its forms."""
        xattr.sys_removexattrat(self, dirfd, path, at_flags, name)

    @_syscall
    def sys_inotify_add_watch(self, fd: int, path: str, mask: int) -> int:
        """``inotify_add_watch`` on a mock inotify instance; ``NotMine`` for a host path."""
        return notify.sys_inotify_add_watch(self, fd, path, mask)

    @_syscall
    def sys_inotify_rm_watch(self, fd: int, wd: int) -> None:
        notify.sys_inotify_rm_watch(self, fd, wd)

    @_syscall
    def sys_fallocate(self, fd: int, mode: int, offset: int, length: int) -> None:
        attr.sys_fallocate(self, fd, mode, offset, length)

    @_syscall
    def sys_fstatfs(self, fd: int) -> os.statvfs_result:
        """``fstatfs``, in the shape ``os.fstatvfs`` returns."""
        return attr.sys_fstatfs(self, fd)

    @_syscall
    def sys_ioctl(self, fd: int, cmd: int, arg: int) -> int:
        return ioctl.sys_ioctl(self, fd, cmd, arg)

    @_syscall
    def sys_read(self, fd: int, count: int | UserBuffer) -> bytes:
        return rw.sys_read(self, fd, count)

    @_syscall
    def sys_pread(self, fd: int, count: int | UserBuffer, pos: int) -> bytes:
        return rw.sys_pread(self, fd, count, pos)

    @_syscall
    def sys_write(self, fd: int, data: bytes | UserBuffer) -> int:
        return rw.sys_write(self, fd, data)

    @_syscall
    def sys_pwrite(self, fd: int, data: bytes | UserBuffer, pos: int) -> int:
        return rw.sys_pwrite(self, fd, data, pos)

    @_syscall
    def sys_readv(self, fd: int, total: int | UserBuffer, pos: int | None, flags: int = 0) -> bytes:
        """``readv``/``preadv2`` of ``total`` bytes (:func:`.syscalls.rw.sys_readv`)."""
        return rw.sys_readv(self, fd, total, pos, flags)

    @_syscall
    def sys_writev(self, fd: int, data: bytes | UserBuffer, pos: int | None, flags: int = 0) -> int:
        """``writev``/``pwritev2`` of the gathered ``data``."""
        return rw.sys_writev(self, fd, data, pos, flags)

    @_syscall
    def sys_fsync(self, fd: int, datasync: bool = False) -> None:
        rw.sys_fsync(self, fd, datasync)

    @_syscall
    def sys_ftruncate(self, fd: int, length: int) -> None:
        rw.sys_ftruncate(self, fd, length)

    @_syscall
    def sys_lseek(self, fd: int, offset: int, whence: int) -> int:
        return rw.sys_lseek(self, fd, offset, whence)

    @_syscall
    def sys_fstat(self, fd: int) -> os.stat_result:
        return stat.sys_fstat(self, fd)

    @_syscall
    def sys_newfstatat(self, dirfd: int, path: str, flags: int = 0) -> os.stat_result:
        """``newfstatat``/``fstatat``; ``stat(p)`` is ``(AT_FDCWD, p, 0)``, ``lstat(p)``
        ``(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW)``; ``NotMine`` for a real path."""
        return stat.sys_newfstatat(self, dirfd, path, flags)

    @_syscall
    def sys_statx(self, dirfd: int, path: str, flags: int, mask: int) -> os.stat_result:
        """``statx``: as :meth:`sys_newfstatat` (every basic field filled)."""
        return stat.sys_statx(self, dirfd, path, flags, mask)

    @_syscall
    def sys_faccessat(self, dirfd: int, path: str, mode: int, flags: int = 0) -> None:
        """``faccessat2``: returns when allowed, else ``EACCES``; ``NotMine`` for a real path."""
        stat.sys_faccessat(self, dirfd, path, mode, flags)

    @_syscall
    def sys_readlinkat(self, dirfd: int, path: str, bufsiz: int = stat.PATH_MAX) -> bytes:
        """``readlinkat``: the target cut to ``bufsiz`` bytes; ``NotMine`` for a real path."""
        return stat.sys_readlinkat(self, dirfd, path, bufsiz)

    @_syscall
    def sys_getdents64(self, fd: int, count: int) -> bytes:
        """``getdents64``: ``struct linux_dirent64`` records that fit in ``count`` bytes."""
        return readdir.sys_getdents64(self, fd, count)

    @_syscall
    def sys_poll(self, fds: list[tuple[int, int]]) -> list[int | None]:
        """One scan of ``poll``: the ``revents`` of each ``(fd, events)``, ``None`` for a
        real fd (the front-end waits, and asks the real OS about those)."""
        return poll_.sys_poll(self, fds)

    # -- mmap: the rules are the kernel's; laying the pieces is the front-end's ---------
    def do_mmap(
        self, fd: int, length: int, flags: int, prot: int, offset: int
    ) -> tuple[File, Vma, bool]:
        """:func:`mockkernel.syscalls.mmap.do_mmap` for this process."""
        return mmap.do_mmap(self, fd, length, flags, prot, offset)

    def add_mapping(self, mp: Mapping) -> None:
        """:func:`mockkernel.syscalls.mmap.add_mapping` for this process."""
        mmap.add_mapping(self, mp)

    def remove_mapping(self, mp: Mapping, length: int | None = None) -> None:
        """:func:`mockkernel.syscalls.mmap.remove_mapping` for this process."""
        mmap.remove_mapping(self, mp, length)

    @_syscall
    def sys_madvise(self, addr: int, length: int, advice: int) -> None:
        """``madvise`` of a mock mapping; ``NotMine`` for real memory."""
        mmap.sys_madvise(self, addr, length, advice)

    @_syscall
    def sys_mprotect(self, addr: int, length: int, prot: int) -> None:
        """``mprotect`` of a mock mapping; ``NotMine`` for real memory."""
        mmap.sys_mprotect(self, addr, length, prot)

    @_syscall
    def sys_msync(self, addr: int, length: int, flags: int) -> None:
        """``msync`` of a mock mapping; ``NotMine`` for real memory."""
        mmap.sys_msync(self, addr, length, flags)

    @_syscall
    def sys_mmap(
        self, fd: int, length: int, flags: int, prot: int, access: int, offset: int
    ) -> MappedFile:
        return mmap.sys_mmap(self, fd, length, flags, prot, access, offset)

    def exit(self) -> None:
        """``exit_files``: close every fd, as the kernel does when a process ends."""
        for fd in sorted(self.files):
            self.sys_close(fd)
        self.exited = True
