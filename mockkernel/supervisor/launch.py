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
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..realfd import REAL, hide
from .host import CLOSE_RANGE_CLOEXEC, libc
from .ptrace import seize
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
    send_fds = socket.send_fds
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
        send_fds(sock, [b"L"], [lfd])
        stage = "exec"
        execve(spec.path, list(spec.argv), dict(spec.env))
    except OSError as e:
        REAL.write(err_w, f"{e.errno or 0}:{stage}".encode())
    finally:
        os._exit(127)


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
