"""Real fds the kernel itself holds (placeholders, memfds behind buffers, BARs).

Linux gives a program the lowest free fd number; a simulated kernel that
opened its own helpers at low numbers would shift every number the program
sees.  ``hide`` moves such an fd high up, out of the range programs use.
"""

from __future__ import annotations

import builtins
import fcntl
import mmap
import os
import resource
from typing import TYPE_CHECKING

from .context import Subsystem

if TYPE_CHECKING:
    from .context import KernelContext

__all__ = ["REAL", "Placeholders", "hide", "kernel_dup"]

_MFD_SEALING = 2  # MFD_ALLOW_SEALING
_F_ADD_SEALS = 1033
_SEALS = 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL | SHRINK | GROW | WRITE


def _floor() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 65536:
        soft = 65536
    return max(soft - 256, soft // 2)


def hide(fd: int) -> int:
    """Move ``fd`` to a high, close-on-exec number; returns the new number."""
    try:
        new: int = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _floor())
    except OSError:
        os.set_inheritable(fd, False)
        return fd  # no room up there: keep it where it is
    REAL.close(fd)
    return new


def kernel_dup(fd: int) -> int:
    """A high, close-on-exec duplicate of ``fd`` for the kernel to keep."""
    try:
        new: int = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _floor())
    except OSError:
        new = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)
    return new


class REAL:
    """The real OS functions, captured when mockkernel is first imported.

    Kernel code that must reach the real OS while a redirection is installed
    (listing a real directory under a mock overlay, ...) calls these.
    """

    open = os.open
    close = os.close
    dup = os.dup
    dup2 = os.dup2
    read = os.read
    write = os.write
    pread = os.pread
    pwrite = os.pwrite
    lseek = os.lseek
    fstat = os.fstat
    stat = os.stat
    lstat = os.lstat
    access = os.access
    listdir = os.listdir
    scandir = os.scandir
    readlink = os.readlink
    builtin_open = builtins.open
    ioctl = fcntl.ioctl
    fcntl = fcntl.fcntl
    mmap = mmap.mmap


class Placeholders(Subsystem):
    """The real fds whose dups hold the numbers of mock fds, one per kind of file.

    Made at boot (the init process's fd table takes its numbers from here) and so shut
    down last: every real fd it holds is closed then.
    """

    name = "placeholders"

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self._fds: dict[str, int] = {}
        self._companions: list[int] = []

    def get(self, label: str) -> int:
        """The real memfd whose dups hold the numbers of mock fds of this kind."""
        fd = self._fds.get(label)
        if fd is None:
            fd = hide(os.memfd_create(f"mockkernel:{label}", os.MFD_CLOEXEC | _MFD_SEALING))
            # sealed: a write that escapes the redirection fails instead of landing here
            REAL.fcntl(fd, _F_ADD_SEALS, _SEALS)
            self._fds[label] = fd
        return fd

    def add(self, label: str, fd: int, *companions: int) -> None:
        """Make the real ``fd`` the placeholder of mock fds labelled ``label``.

        For files whose real-fd behaviour must differ from a memfd's: ``select``/``poll``
        on a mock fd see its placeholder, so an empty pipe's read end (with its write end
        as a ``companion``, kept open so it never reports ``POLLHUP``) polls as "no
        events", like an event file with nothing queued.  The kernel owns the fds from
        now on and closes them at shutdown.  ``ValueError`` if ``label`` has one already.
        """
        if label in self._fds:
            raise ValueError(f"placeholder {label!r} exists already")
        self._fds[label] = hide(fd)
        self._companions += [hide(c) for c in companions]

    def shutdown(self) -> None:
        for fd in [*self._fds.values(), *self._companions]:
            REAL.close(fd)
        self._fds.clear()
        self._companions.clear()
