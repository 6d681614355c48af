"""``execve``: a process's close-on-exec mock files go before the real ones it closes.

Linux closes the close-on-exec fds in ``begin_new_exec`` (``do_close_on_exec``), past
exec's point of no return: each ``fput`` drops its file's count there, and a pipe's
writer goes in the ``__fput`` that follows, so whoever sees that pipe's end-of-file
finds the dma-buf the exec closed already released.  The supervisor learns of the exec
only at its ptrace stop (``TreeTracer.on_exec``), after the real closes.  So at
``execve``'s entry (a ``SECCOMP_RET_TRACE`` stop: the tracer thread's, as no worker
may be free then -- the launch's first worker waits in ``posix_spawn`` for the root's
exec), when the process has close-on-exec mock fds, the supervisor takes
its own dup (``pidfd_getfd``) of each real close-on-exec fd: the real close then drops
one reference of two, and the supervisor's -- the last -- goes after the mock close, at
the exec stop.  An exec that fails keeps every fd; the dups go at the thread's next
trapped call or its exit.  A process with no close-on-exec mock fd pays one ptrace
stop (``quick_execve``) and nothing more.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Final

from ..realfd import REAL, hide, kernel_close
from .fdtable import RemoteFdTable
from .host import libc

if TYPE_CHECKING:
    from ..context import KernelContext
    from ..process import Process

__all__ = ["TRACED", "ExecHolds", "quick_execve"]

#: the calls the filter stops with ``SECCOMP_RET_TRACE`` for this module
TRACED: Final = ("execve", "execveat")

_O_CLOEXEC = 0o2000000


class ExecHolds:
    """The real close-on-exec files held across an exec, by the exec'ing thread."""

    def __init__(self, kernel: KernelContext) -> None:
        self.kernel = kernel  # (it holds the dups)
        self.held: dict[int, list[int]] = {}
        self.lock = threading.Lock()

    def hold(self, proc: Process, tid: int) -> None:
        """Dup every real close-on-exec fd of ``proc`` (a mock fd's placeholder is not
        held: the mock close at the exec stop is its release)."""
        fds: list[int] = []
        try:
            names = REAL.listdir(f"/proc/{proc.pid}/fdinfo")
            pidfd = libc().pidfd_open(proc.pid)
        except OSError:
            return  # gone: its exit stop comes next
        try:
            for name in names:
                fd = int(name)
                if fd in proc.files or not _cloexec(proc.pid, fd):
                    continue
                with contextlib.suppress(OSError):  # closed meanwhile by another thread
                    fds.append(hide(self.kernel, libc().pidfd_getfd(pidfd, fd)))
        finally:
            REAL.close(pidfd)
        with self.lock:
            fds += self.held.pop(tid, [])
            self.held[tid] = fds

    def release(self, *tids: int) -> None:
        """The exec of these threads is done (or failed, or they exited): close the dups."""
        with self.lock:
            fds = [fd for tid in tids for fd in self.held.pop(tid, [])]
        for fd in fds:
            kernel_close(self.kernel, fd)

    def release_all(self) -> None:
        self.release(*list(self.held))


def _cloexec(pid: int, fd: int) -> bool:
    try:
        with REAL.builtin_open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
            for line in f:
                if line.startswith("flags:"):
                    return bool(int(line.split()[1], 8) & _O_CLOEXEC)
    except (OSError, ValueError):
        pass
    return False


def quick_execve(proc: Process) -> bool:
    """No close-on-exec mock fd: nothing to order, the real exec runs at once."""
    fdt = proc.fdt
    return not (isinstance(fdt, RemoteFdTable) and fdt.cloexec)
