"""Starting the first supervised child: spawn (or fork) it, seize it, install the
filter, take the listener, exec.

All of it runs on the tracer thread (ptrace requests must come from the thread that
seized).  Two routes:

* **spawn** (the default where glibc has ``posix_spawn_file_actions_addclosefrom_np``
  and ``/proc`` has ``task/<tid>/children``): glibc's ``posix_spawn`` makes a
  ``CLONE_VM | CLONE_VFORK`` child, so the supervisor's ~30 MB address space is never
  copied (copying it at fork, paying the copy-on-write faults and tearing the copy
  down at exec was the largest fixed cost of a supervised run: ~4 ms of a ``python3
  -c pass``).  A worker thread calls it (the caller stays suspended until the child
  execs).  The child's file actions set up stdio, the cwd and close-from-3, then open
  a FIFO for writing and close it (the tracer, reading it, sees the hang-up: the child
  exists; its pid is the worker's one entry in ``children``), then open the FIFO for
  reading, which blocks (no writer).  The tracer seizes the child, interrupts it and
  runs it to the entry of that ``openat``; in its place it injects
  ``prctl(PR_SET_NO_NEW_PRIVS)`` and ``seccomp(SET_MODE_FILTER, NEW_LISTENER)`` (the
  program is in the shared address space), takes the listener with ``pidfd_getfd``
  and makes the ``openat`` return the number glibc asked for (the listener's own,
  unless a stdio fd was closed); the listener is close-on-exec, the program never
  sees it.  Then the child execs.
* **fork**: the child blocks on a pipe until the parent has seized it; then it sets
  ``no_new_privs``, installs the filter, sends the listener fd over a socketpair
  (``SCM_RIGHTS``) and execs.  Between fork and exec the child only calls functions
  bound before the fork.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import select
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..realfd import REAL, move_high, os_close
from .host import CLOSE_RANGE_CLOEXEC, Spawn, libc
from .ptrace import (
    TREE_OPTIONS,
    Injection,
    Stop,
    TraceeGone,
    cont,
    getregs,
    interrupt,
    mark_args,
    seize,
    syscall,
    wait_event,
)
from .seccomp import (
    NR,
    NR_SECCOMP,
    PR_SET_NO_NEW_PRIVS,
    SECCOMP_FILTER_FLAG_NEW_LISTENER,
    SECCOMP_SET_MODE_FILTER,
    SockFilter,
    SockFprog,
    to_fprog,
)

__all__ = ["ROUTES", "Child", "LaunchError", "Spec", "spawn_supported", "start_child"]

#: the ways :func:`start_child` can start a child ("auto": spawn where supported)
ROUTES = ("auto", "spawn", "fork")


class LaunchError(RuntimeError):
    """The child could not be started: the host refused an interface, or exec failed."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass
class Child:
    """A started child: its pid, our end of its filter's listener, and how its exec
    went (:meth:`exec_error`, read once the tree is gone)."""

    pid: int
    listener: int
    _exec_error: Callable[[], int | None] = field(repr=False)
    _close: Callable[[], None] = field(repr=False)

    def exec_error(self) -> int | None:
        """The errno of a failed exec (the child then exited 127), else ``None``."""
        return self._exec_error()

    def close(self) -> None:
        """Release what the launch kept for :meth:`exec_error` (call once, at the end)."""
        self._close()


@dataclass(frozen=True)
class Spec:
    """What to run and how (as ``subprocess``: stdio fds, cwd, environment)."""

    path: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str | None
    stdio: tuple[int | None, int | None, int | None]


#: starts the workers; the first one runs the job first (``None``: no job)
StartWorkers = Callable[[Callable[[], None] | None], None]
#: called with (pid, listener) once the filter is in place, before the child execs
Ready = Callable[[int, int], None]


def spawn_supported() -> bool:
    """Can this host take the spawn route (glibc's file actions, ``children``)?"""
    if libc().spawn is None:
        return False
    return os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def start_child(
    spec: Spec,
    code: Sequence[tuple[int, int, int, int]],
    workers: StartWorkers,
    ready: Ready,
    route: str = "auto",
) -> Child:
    """Start the child with the filter ``code`` installed, seized by this thread;
    ``workers`` and ``ready`` as :data:`StartWorkers` and :data:`Ready`.  The child is
    on its way to exec when this returns."""
    if route not in ROUTES:
        raise ValueError(f"unknown launch route {route!r}")
    if route == "spawn" or (route == "auto" and spawn_supported()):
        try:
            return _spawn_child(spec, code, workers, ready)
        except _NoFifo:
            if route == "spawn":
                raise
    workers(None)
    child = _fork_child(spec, code)
    try:
        ready(child.pid, child.listener)  # (the listener is ready's from the call on)
    except BaseException:
        _shielded(lambda: _kill(child.pid))
        child.close()
        raise
    return child


# -- the spawn route -----------------------------------------------------------------------
#: the flags of the blocking ``openat`` the tracer catches at its entry (never run: it
#: only has to block if the tracer comes late, and be told apart from the first one)
_CATCH_FLAGS = os.O_RDONLY | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_LARGEFILE = 0o100000  # (the kernel's value; glibc may add it)
_CATCH_FD = 3  # the number the caught openat "returns" (where the listener usually is)
_AT_FDCWD = -100
_ENOSYS = -errno.ENOSYS  # rax at every syscall-entry stop
_NR_PRCTL = 157
#: syscall stops the child may make before it reaches the caught ``openat``
_MAX_STEPS = 64


class _NoFifo(OSError):
    """The spawn route's FIFO could not be made (the "auto" route then forks)."""


class _Spawned:
    """What the worker's ``posix_spawn`` left: its thread's tid and the result."""

    def __init__(self) -> None:
        self.tid = 0
        self.err: int | None = None


class _Actions:
    """The C data of one ``posix_spawn``: file actions, path, argv and envp (alive
    until the worker's call returns)."""

    def __init__(self, sp: Spawn, spec: Spec, fifo: bytes) -> None:
        self.sp = sp
        self.buf = ctypes.create_string_buffer(Spawn.ACTIONS_SIZE)
        self._check(sp.actions_init(self.buf))
        self.live = True
        for i, fd in enumerate(spec.stdio):
            if fd is not None:  # (fd == i: clears its close-on-exec, glibc >= 2.29)
                self._check(sp.adddup2(self.buf, fd, i))
        if spec.cwd is not None:
            self._check(sp.addchdir(self.buf, _c_str(os.fsencode(spec.cwd))))
        self._check(sp.addclosefrom(self.buf, 3))
        # the hand-shake: the tracer sees this writer come and go, then the child waits
        self._check(sp.addopen(self.buf, _CATCH_FD, fifo, os.O_WRONLY, 0))
        self._check(sp.addclose(self.buf, _CATCH_FD))
        self._check(sp.addopen(self.buf, _CATCH_FD, fifo, _CATCH_FLAGS, 0))
        self.path = _c_str(os.fsencode(spec.path))
        self.argv = _c_array([os.fsencode(a) for a in spec.argv])
        self.envp = _c_array([os.fsencode(k) + b"=" + os.fsencode(v) for k, v in spec.env.items()])

    def _check(self, err: int) -> None:
        if err:
            self.close()
            raise OSError(err, os.strerror(err))

    def spawn(self, pid: ctypes.c_int) -> int:
        return int(self.sp.spawn(ctypes.byref(pid), self.path, self.buf, None, self.argv,
                                 self.envp))  # fmt: skip

    def close(self) -> None:
        if self.live:
            self.live = False
            self.sp.actions_destroy(self.buf)


def _c_str(b: bytes) -> bytes:
    if b"\0" in b:
        raise ValueError("embedded null byte")
    return b


def _c_array(items: list[bytes]) -> ctypes.Array[ctypes.c_char_p]:
    return (ctypes.c_char_p * (len(items) + 1))(*[_c_str(b) for b in items], None)


def _spawn_child(
    spec: Spec, code: Sequence[tuple[int, int, int, int]], workers: StartWorkers, ready: Ready
) -> Child:
    sp = libc().spawn
    if sp is None:
        raise LaunchError("this libc has no posix_spawn_file_actions_addclosefrom_np")
    prog = to_fprog(code)
    fifo = os.path.join(tempfile.gettempdir(), f"mockkernel-{os.getpid()}-{secrets.token_hex(8)}")
    try:
        os.mkfifo(fifo, 0o600)
    except OSError as e:  # (a temporary directory without room or FIFOs: fork instead)
        raise _NoFifo(e.errno or 0, f"no FIFO for the launch in {fifo}: {e.strerror}") from e
    try:
        rd = REAL.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            actions = _Actions(sp, spec, os.fsencode(fifo))
        except BaseException:
            REAL.close(rd)
            raise
    except BaseException:
        os.unlink(fifo)
        raise
    done_r, done_w = os.pipe()
    spawned = _Spawned()

    def job() -> None:
        """On the worker: ``posix_spawn`` (returns once the child has exec'ed or died)."""
        spawned.tid = threading.get_native_id()
        pid = ctypes.c_int()
        try:
            spawned.err = actions.spawn(pid)
        finally:
            REAL.write(done_w, b"x")

    def close() -> None:
        for fd in (done_r, done_w):
            REAL.close(fd)
        actions.close()

    try:
        workers(job)
    except BaseException:
        REAL.close(rd)
        os.unlink(fifo)
        close()
        raise
    pid = 0
    try:
        pid = _await_child(spec, rd, done_r, spawned)
        listener = _install(pid, prog)
        ready(pid, listener)  # (the listener is ready's from the call on)
    except BaseException:
        _shielded(lambda: _abandon(pid, spawned, done_r))
        close()
        raise
    finally:
        REAL.close(rd)
        with contextlib.suppress(OSError):
            os.unlink(fifo)
    return Child(pid, listener, lambda: spawned.err or None, close)


def _await_child(spec: Spec, rd: int, done_r: int, spawned: _Spawned) -> int:
    """The child's pid, once it has come past the FIFO's writer (hang-up on ``rd``)."""
    poller = select.poll()
    poller.register(rd, select.POLLIN)
    poller.register(done_r, select.POLLIN)
    while True:
        events = dict(poller.poll())
        if events.get(rd, 0) & select.POLLHUP:
            break
        if done_r in events:  # posix_spawn returned first: a file action failed
            err = spawned.err or errno.ECHILD
            stage = "chdir" if spec.cwd is not None and not os.path.isdir(spec.cwd) else "stdio"
            raise LaunchError(f"{stage}: {os.strerror(err)}", err)
    try:
        with REAL.builtin_open(f"/proc/self/task/{spawned.tid}/children", "rb") as f:
            pids = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        pids = []
    if len(pids) != 1:
        raise LaunchError(f"the spawned child is not the worker's one child: {pids}", errno.ECHILD)
    return pids[0]


def _install(pid: int, prog: tuple[SockFprog, ctypes.Array[SockFilter]]) -> int:
    """Seize ``pid``, bring it to the caught ``openat``, install the filter ``prog`` in
    its place and let it go on; our end of the listener."""
    try:
        seize(pid, TREE_OPTIONS)
    except OSError as e:
        raise LaunchError(f"the host refused ptrace (PTRACE_SEIZE): {e.strerror}",
                          e.errno or 0) from None  # fmt: skip
    try:
        interrupt(pid)
        _stopped(pid)
        for _ in range(_MAX_STEPS):
            syscall(pid)
            if _stopped(pid) is Stop.SYSCALL:
                regs = getregs(pid)
                if (regs.result == _ENOSYS and regs.nr == NR["openat"]
                        and _i32(regs.rdi) == _AT_FDCWD
                        and regs.rdx & ~_O_LARGEFILE == _CATCH_FLAGS):  # fmt: skip
                    break
        else:
            raise LaunchError("the spawned child never reached its hand-shake", errno.EPROTO)
        inj = Injection(pid, at_entry=True)
        r = inj.call(_NR_PRCTL, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if r < 0:
            raise LaunchError(f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(-r)}", -r)
        lfd = inj.call(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                       ctypes.addressof(prog[0]))  # fmt: skip
        if lfd < 0:
            raise LaunchError(
                "the host refused seccomp user notification (SECCOMP_RET_USER_NOTIF): "
                f"{os.strerror(-lfd)}", -lfd)  # fmt: skip
        ours = _getfd(pid, lfd)
        try:
            # the openat "returns" the number glibc expects, so glibc does nothing more
            # with it; the listener (close-on-exec, at that number unless a stdio fd was
            # closed) goes with the exec
            cont(pid, inj.finish(_CATCH_FD))
        except BaseException:
            os_close(ours)  # (not yet the supervisor's: its kernel holds it from ``start``)
            raise
    except TraceeGone as e:
        raise LaunchError(
            f"the spawned child died while starting: {e.event}", errno.ECHILD
        ) from None
    return ours


def _stopped(pid: int) -> Stop:
    ev = wait_event(pid)
    assert ev is not None
    if not ev.stopped:
        raise TraceeGone(ev)
    return ev.kind


def _getfd(pid: int, fd: int) -> int:
    lib = libc()
    pidfd = lib.pidfd_open(pid)
    try:
        return move_high(lib.pidfd_getfd(pidfd, fd))
    finally:
        REAL.close(pidfd)


def _abandon(pid: int, spawned: _Spawned, done_r: int) -> None:
    """The spawn route failed: kill and reap the child, then wait for the worker's
    ``posix_spawn`` to return (it does once the child is gone: ``CLONE_VFORK``).  With
    its pid not known yet (the failure came before the hang-up on the FIFO), the child
    is looked for among the worker's children until the worker returns: it may be
    blocked opening the FIFO, which no writer will ever open."""
    if pid:
        _kill(pid)
    while not _readable(done_r, 0.02):
        if pid or not spawned.tid:
            continue
        pids = _children(spawned.tid)
        if pids:
            pid = pids[0]
            _kill(pid)


def _children(tid: int) -> list[int]:
    """The children of thread ``tid`` (``/proc/.../task/<tid>/children``)."""
    try:
        with REAL.builtin_open(f"/proc/self/task/{tid}/children", "rb") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _kill(pid: int) -> None:
    """SIGKILL and reap a child that failed to start (our tracee or not).  A tracee
    reports stops before its exit -- the exit stop (``PTRACE_O_TRACEEXIT``), or the
    stop it was in when killed -- and stays in each until continued: each is
    continued here, else the wait would be for an exit that never comes."""
    try:  # (not ours -- reaped already -- it is left alone: a repeated cleanup)
        os.waitid(os.P_PID, pid, _WALL | os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, 9)
    with contextlib.suppress(ChildProcessError):
        while True:
            _wpid, status = os.waitpid(pid, _WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                break
            with contextlib.suppress(OSError):
                cont(pid, 0)


def _shielded(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` to its end even if ``KeyboardInterrupt`` (SIGINT, or a SIGTERM
    handler that raises) comes meanwhile: it is run again (each step of a cleanup here
    may be repeated) and the interrupt raised once it is done -- an interrupted
    cleanup would leave the child stopped or a zombie."""
    pending: BaseException | None = None
    while True:
        try:
            cleanup()
            break
        except KeyboardInterrupt as e:
            pending = e
    if pending is not None:
        raise pending


def _readable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))


_WALL = 0x40000000


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


# -- the fork route ------------------------------------------------------------------------
def _child(spec: Spec, code: Sequence[tuple[int, int, int, int]], go_r: int, err_w: int,
           sock: socket.socket) -> None:  # fmt: skip
    """In the forked child: never returns."""
    lib = libc()
    fprog, _arr = to_fprog(code)
    send_listener = _ListenerMessage(sock.fileno())
    execve = os.execve
    stage = "start"
    try:
        REAL.read(go_r, 1)
        stage = "stdio"
        for i, fd in enumerate(spec.stdio):
            if fd is not None and fd != i:
                os.dup2(fd, i)
            elif fd == i:
                os.set_inheritable(i, True)
        stage = "chdir"
        if spec.cwd is not None:
            os.chdir(spec.cwd)
        lib.close_range(3, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
        stage = "seccomp"
        lfd = lib.install_filter(fprog)
        send_listener(lfd)
        stage = "exec"
        execve(spec.path, list(spec.argv), dict(spec.env))
    except OSError as e:
        REAL.write(err_w, f"{e.errno or 0}:{stage}".encode())
    finally:
        # the parent waits on the socket: it must hang up now, not at the exit, which
        # the parent (the tracer) holds at its exit stop
        sock.close()
        os._exit(127)


class _ListenerMessage:
    """The child's ``sendmsg`` of its listener fd (``SCM_RIGHTS``), built before the
    filter exists and made as a raw syscall carrying the injection marker: the filter
    traps ``sendmsg`` (``scm.py``), and nobody serves the listener yet."""

    def __init__(self, sock: int) -> None:
        self.sock = sock
        self.byte = ctypes.create_string_buffer(b"L", 1)
        self.iov = (ctypes.c_uint64 * 2)(ctypes.addressof(self.byte), 1)
        self.control = (ctypes.c_uint8 * 24)()  # CMSG_SPACE(sizeof(int))
        struct.pack_into("<Qii", self.control, 0, 20, 1, 1)  # CMSG_LEN(4), SOL_SOCKET, RIGHTS
        self.msghdr = (ctypes.c_uint64 * 7)(
            0, 0, ctypes.addressof(self.iov), 1, ctypes.addressof(self.control), 24, 0
        )
        self.args = [
            ctypes.c_ulong(a)
            for a in mark_args(_NR_SENDMSG, (sock, ctypes.addressof(self.msghdr), 0))
        ]
        self.syscall = libc().syscall

    def __call__(self, lfd: int) -> None:
        struct.pack_into("<i", self.control, 16, lfd)
        if self.syscall(ctypes.c_long(_NR_SENDMSG), *self.args) != 1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))


_NR_SENDMSG = 46


def _fork_child(spec: Spec, code: Sequence[tuple[int, int, int, int]]) -> Child:
    """Fork, seize and start the child; returns it with the filter's listener fd."""
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    libc()  # bound before the fork
    pid = os.fork()
    if pid == 0:
        _child(spec, code, go_r, err_w, child)
    for fd in (go_r, err_w):
        REAL.close(fd)
    child.close()
    try:
        try:
            seize(pid, TREE_OPTIONS)
        except OSError as e:
            raise LaunchError(f"the host refused ptrace (PTRACE_SEIZE): {e.strerror}",
                              e.errno or 0) from None  # fmt: skip
        REAL.write(go_w, b"g")
        _msg, fds, _flags, _addr = socket.recv_fds(parent, 1, 1)
    except BaseException:  # (KeyboardInterrupt too: the child must not outlive the launch)
        _shielded(lambda: _kill(pid))
        REAL.close(err_r)
        raise
    finally:
        REAL.close(go_w)
        parent.close()
    if not fds:
        _fail(pid, err_r)

    def exec_error() -> int | None:
        err = read_error(err_r)
        return err[0] if err is not None and err[1] == "exec" else None

    return Child(pid, move_high(fds[0]), exec_error, lambda: REAL.close(err_r))


def _fail(pid: int, err_r: int) -> None:
    """The child died before handing over the listener: say why."""
    from .ptrace import cont

    while True:  # reap it (it is our tracee: stops come first)
        _wpid, status = os.waitpid(pid, 0x40000000)  # __WALL
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            break
        with contextlib.suppress(OSError):
            cont(pid, 0)
    msg = read_error(err_r) or (0, "start")
    REAL.close(err_r)
    code, stage = msg
    what = {"seccomp": "the host refused seccomp user notification (SECCOMP_RET_USER_NOTIF)"}
    raise LaunchError(f"{what.get(stage, stage)}: {os.strerror(code)}", code)


def read_error(err_r: int) -> tuple[int, str] | None:
    """The (errno, stage) the child reported before exec, if it did."""
    os.set_blocking(err_r, False)
    try:
        data = REAL.read(err_r, 256)
    except BlockingIOError:
        return None
    if not data:
        return None
    code, _, stage = data.decode().partition(":")
    return int(code), stage
