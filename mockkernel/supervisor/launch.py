"""Starting the first supervised child: fork, seize, install the filter, hand over the
listener, exec.

All of it runs on the tracer thread (ptrace requests must come from the thread that
seized).  The child blocks on a pipe until the parent has seized it; then it sets
``no_new_privs``, installs the filter with ``SECCOMP_FILTER_FLAG_NEW_LISTENER``,
sends the listener fd over a socketpair (``SCM_RIGHTS``) and execs the target.
Between fork and exec the child only calls functions bound before the fork.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..realfd import REAL, hide
from .host import CLOSE_RANGE_CLOEXEC, libc
from .ptrace import mark_args, seize
from .seccomp import to_fprog

__all__ = ["Child", "LaunchError", "start_child"]


class LaunchError(RuntimeError):
    """The child could not be started: the host refused an interface, or exec failed."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass
class Child:
    pid: int
    listener: int
    #: the exec error pipe: a message here means the exec failed (read after exit)
    err_r: int


@dataclass(frozen=True)
class Spec:
    """What to run and how (as ``subprocess``: stdio fds, cwd, environment)."""

    path: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str | None
    stdio: tuple[int | None, int | None, int | None]


def _child(spec: Spec, code: list[tuple[int, int, int, int]], go_r: int, err_w: int,
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


def start_child(spec: Spec, code: list[tuple[int, int, int, int]]) -> Child:
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
            seize(pid)
        except OSError as e:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise LaunchError(f"the host refused ptrace (PTRACE_SEIZE): {e.strerror}",
                              e.errno or 0) from None  # fmt: skip
        REAL.write(go_w, b"g")
        _msg, fds, _flags, _addr = socket.recv_fds(parent, 1, 1)
    finally:
        REAL.close(go_w)
        parent.close()
    if not fds:
        _fail(pid, err_r)
    return Child(pid, hide(fds[0]), err_r)


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
