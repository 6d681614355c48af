"""ptrace(2) from ctypes: the requests the tracer thread makes, and the stop decoding.

Every request for a tracee must come from the one OS thread that seized it (the
tracer thread); the kernel refuses a request from any other thread (``ESRCH``).
"""

from __future__ import annotations

import ctypes
import os

__all__ = [
    "PTRACE_EVENT_CLONE",
    "PTRACE_EVENT_EXEC",
    "PTRACE_EVENT_FORK",
    "PTRACE_EVENT_SECCOMP",
    "PTRACE_EVENT_STOP",
    "PTRACE_EVENT_VFORK",
    "SEIZE_OPTIONS",
    "ptrace",
    "ptrace_cont",
    "ptrace_geteventmsg",
    "ptrace_listen",
    "ptrace_seize",
]

PTRACE_CONT = 7
PTRACE_DETACH = 17
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208

PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACEVFORK = 0x4
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

SEIZE_OPTIONS = (
    PTRACE_O_TRACESECCOMP
    | PTRACE_O_TRACECLONE
    | PTRACE_O_TRACEFORK
    | PTRACE_O_TRACEVFORK
    | PTRACE_O_TRACEEXEC
    | PTRACE_O_EXITKILL
)


def _load() -> ctypes._FuncPointer:
    fn = ctypes.CDLL(None, use_errno=True).ptrace
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    return fn


class _Libc:
    """libc's ``ptrace``, loaded on first use (a process-wide fact, like ``os``)."""

    fn: ctypes._FuncPointer | None = None


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """One ptrace request; ``OSError`` with the kernel's errno on failure."""
    fn = _Libc.fn
    if fn is None:
        fn = _Libc.fn = _load()
    ctypes.set_errno(0)
    r: int = fn(request, pid, addr, data)
    if r == -1:
        e = ctypes.get_errno()
        if e:
            raise OSError(e, os.strerror(e))
    return r


def ptrace_seize(pid: int, options: int = SEIZE_OPTIONS) -> None:
    ptrace(PTRACE_SEIZE, pid, 0, options)


def ptrace_cont(pid: int, sig: int = 0) -> None:
    ptrace(PTRACE_CONT, pid, 0, sig)


def ptrace_listen(pid: int) -> None:
    ptrace(PTRACE_LISTEN, pid, 0, 0)


def ptrace_geteventmsg(pid: int) -> int:
    msg = ctypes.c_ulong(0)
    ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(msg))
    return msg.value
