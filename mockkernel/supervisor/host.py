"""The host-kernel calls the supervisor needs that ``os`` lacks: seccomp(2), prctl,
the listener's ioctls, pidfd_getfd, close_range, and glibc's ``posix_spawn`` with the
file actions the launcher uses.  Loaded once per process."""

from __future__ import annotations

import ctypes
import os
from typing import Any

from .seccomp import (
    NR_SECCOMP,
    PR_SET_NO_NEW_PRIVS,
    SECCOMP_FILTER_FLAG_NEW_LISTENER,
    SECCOMP_SET_MODE_FILTER,
    SockFprog,
)

__all__ = ["Libc", "libc"]

NR_TGKILL = 234
NR_PIDFD_OPEN = 434
NR_PIDFD_GETFD = 438
CLOSE_RANGE_CLOEXEC = 1 << 2


class Libc:
    """Typed libc entry points (``use_errno``); one instance per process."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(None, use_errno=True)
        self.ioctl: Any = lib.ioctl
        self.ioctl.restype = ctypes.c_int
        self.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
        #: ``ioctl`` untyped, for the per-notification calls: the caller passes ready-made
        #: ctypes objects (``c_ulong`` request, ``c_void_p`` pointer), no conversions
        self.ioctl_raw: Any = lib["ioctl"]
        self.ioctl_raw.restype = ctypes.c_int
        self.syscall: Any = lib.syscall
        self.syscall.restype = ctypes.c_long
        self.prctl: Any = lib.prctl
        self.prctl.restype = ctypes.c_int
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                               ctypes.c_ulong]  # fmt: skip
        self.close_range: Any = lib.close_range
        self.close_range.restype = ctypes.c_int
        self.close_range.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_int]
        self.setsockopt: Any = lib.setsockopt
        self.setsockopt.restype = ctypes.c_int
        self.setsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                    ctypes.c_uint]  # fmt: skip
        self.getsockopt: Any = lib.getsockopt
        self.getsockopt.restype = ctypes.c_int
        self.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                    ctypes.c_void_p]  # fmt: skip
        #: ``posix_spawn`` and its file actions, or ``None`` where this libc lacks one
        #: of them (``addchdir_np``: glibc 2.29, ``addclosefrom_np``: glibc 2.34)
        self.spawn: Spawn | None = Spawn.bind(lib)

    @staticmethod
    def check(r: int) -> int:
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return r

    def install_filter(self, prog: SockFprog) -> int:
        """``no_new_privs`` + ``seccomp(SET_MODE_FILTER, NEW_LISTENER)``: the listener fd.

        Only called in a freshly forked child, so it must not allocate much nor take
        locks another thread could hold: everything it calls is bound already.
        """
        self.check(self.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return self.check(
            self.syscall(
                ctypes.c_long(NR_SECCOMP),
                ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                ctypes.c_long(SECCOMP_FILTER_FLAG_NEW_LISTENER),
                ctypes.byref(prog),
            )
        )

    def pidfd_open(self, pid: int) -> int:
        return self.check(self.syscall(ctypes.c_long(NR_PIDFD_OPEN), ctypes.c_long(pid),
                                       ctypes.c_long(0)))  # fmt: skip

    def tgkill(self, tgid: int, tid: int, sig: int) -> int:
        return self.check(self.syscall(ctypes.c_long(NR_TGKILL), ctypes.c_long(tgid),
                                       ctypes.c_long(tid), ctypes.c_long(sig)))  # fmt: skip

    def pidfd_getfd(self, pidfd: int, fd: int) -> int:
        return self.check(self.syscall(ctypes.c_long(NR_PIDFD_GETFD), ctypes.c_long(pidfd),
                                       ctypes.c_long(fd), ctypes.c_long(0)))  # fmt: skip


class Spawn:
    """glibc's ``posix_spawn`` (a ``CLONE_VM | CLONE_VFORK`` child: no copy of the
    caller's address space) and the file actions the launcher needs.  Each returns
    an error number (0: done), as POSIX specifies."""

    #: ``sizeof(posix_spawn_file_actions_t)`` is 80 on x86-64 glibc; room to spare
    ACTIONS_SIZE = 128

    def __init__(self, lib: ctypes.CDLL) -> None:
        def fn(name: str, *argtypes: Any) -> Any:
            f = lib[name]
            f.restype = ctypes.c_int
            f.argtypes = list(argtypes)
            return f

        p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        self.actions_init = fn("posix_spawn_file_actions_init", p)
        self.actions_destroy = fn("posix_spawn_file_actions_destroy", p)
        self.adddup2 = fn("posix_spawn_file_actions_adddup2", p, i, i)
        self.addclose = fn("posix_spawn_file_actions_addclose", p, i)
        self.addopen = fn("posix_spawn_file_actions_addopen", p, i, s, i, ctypes.c_uint)
        self.addchdir = fn("posix_spawn_file_actions_addchdir_np", p, s)
        self.addclosefrom = fn("posix_spawn_file_actions_addclosefrom_np", p, i)
        #: (pid_t *, path, actions, attr, argv, envp); releases the GIL (a ``CDLL``)
        self.spawn = fn("posix_spawn", p, s, p, p, p, p)

    @classmethod
    def bind(cls, lib: ctypes.CDLL) -> Spawn | None:
        try:
            return cls(lib)
        except AttributeError:  # an older libc: the launcher forks instead
            return None


class _Once:
    lib: Libc | None = None


def libc() -> Libc:
    """The process's one :class:`Libc` (made on first use)."""
    lib = _Once.lib
    if lib is None:
        lib = _Once.lib = Libc()
    return lib
