"""Real fds the kernel itself holds (placeholders, memfds behind buffers, BARs).

Linux gives a program the lowest free fd number; a simulated kernel that
opened its own helpers at low numbers would shift every number the program
sees.  ``hide`` moves such an fd high up, out of the range programs use.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import mmap
import os
import resource
import threading
from collections.abc import Callable, Container
from typing import TYPE_CHECKING

from .context import Subsystem

if TYPE_CHECKING:
    from .context import KernelContext

__all__ = [
    "REAL",
    "Placeholders",
    "give_up",
    "held",
    "held_fds",
    "held_numbers",
    "hide",
    "hold",
    "kernel_close",
    "kernel_dup",
    "move_held",
    "os_close",
]

_MFD_SEALING = 2  # MFD_ALLOW_SEALING
_F_ADD_SEALS = 1033
_SEALS = 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL | SHRINK | GROW | WRITE


def _floor() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 65536:
        soft = 65536
    return max(soft - 256, soft // 2)


#: The real fd numbers some kernel of this process holds for itself (placeholders, memfds
#: behind buffers, BARs, dups of a program's eventfds), each with the function that
#: re-points its holder when the number must be given up (``None``: it cannot move).  A
#: process-wide fact, as the real fd table itself: a program's ``close``/``closerange``/
#: ``dup2`` must never reach these numbers (on Linux they are not the program's at all).
#: Entries come from :func:`hide` and :func:`kernel_dup` and leave with :func:`kernel_close`.
_held: dict[int, Callable[[int, int], None] | None] = {}


def held(fd: int) -> bool:
    """True when ``fd`` is a real fd a kernel holds for itself (not the program's)."""
    return fd in _held


def held_fds() -> frozenset[int]:
    """The numbers of every real fd the kernels of this process hold."""
    return frozenset(_held.copy())  # (one C-level copy: safe against other threads)


def hold(fd: int, mover: Callable[[int, int], None] | None = None) -> int:
    """Record ``fd`` as the kernel's; ``mover(old, new)`` re-points its holder when the
    number is given up (see :func:`move_held`).  Returns ``fd``."""
    _held[fd] = mover
    return fd


def move_held(fd: int) -> bool:
    """Give the held number ``fd`` up: dup the fd to a new high number, re-point its holder
    and close the old number.  ``False`` when its holder cannot follow a move."""
    mover = _held.get(fd)
    if mover is None:
        return False
    try:
        REAL.fcntl(fd, fcntl.F_GETFD)
    except OSError:  # closed behind the registry's back (``REAL.close``): nothing to move
        _held.pop(fd, None)
        return True
    new = kernel_dup(fd)
    _held[new] = mover
    mover(fd, new)
    kernel_close(fd)
    return True


def give_up(fd: int) -> None:
    """A program's ``dup2``/``dup3`` targets the held number ``fd``: move the kernel's fd
    away (:func:`move_held`).  ``EBUSY`` when its holder cannot follow (Linux's answer to
    a ``dup2`` racing an ``open`` of the same number: the program may retry elsewhere)."""
    if not move_held(fd):
        try:
            REAL.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            _held.pop(fd, None)  # a stale entry: the number is free after all
            return
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))


def kernel_close(fd: int) -> None:
    """Close a real fd the kernel holds (from :func:`hide`, :func:`kernel_dup`): kernel
    code must not call ``os.close``, which a program's redirection refuses for these;
    the number stops being held."""
    _held.pop(fd, None)
    os_close(fd)


#: the real ``os.close``, captured at import (a program's close of its own fds needs no
#: bookkeeping here: it can never reach a held number)
os_close = os.close


def held_numbers() -> Container[int]:
    """The live set of held numbers (read-only use: membership tests on the hot path)."""
    return _held.keys()


def hide(fd: int) -> int:
    """Move ``fd`` to a high, close-on-exec number the kernel holds; returns the number."""
    try:
        new: int = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _floor())
    except OSError:
        os.set_inheritable(fd, False)
        return hold(fd)  # no room up there: keep it where it is
    REAL.close(fd)
    return hold(new)


def kernel_dup(fd: int) -> int:
    """A high, close-on-exec duplicate of ``fd`` for the kernel to keep."""
    try:
        new: int = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _floor())
    except OSError:
        new = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)
    return hold(new)


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
        #: taken to make a placeholder: the supervisor's workers open the first file of
        #: a kind at once (two would each make one, and one memfd would leak)
        self._lock = threading.Lock()

    def get(self, label: str) -> int:
        """The real memfd whose dups hold the numbers of mock fds of this kind."""
        fd = self._fds.get(label)
        if fd is not None:
            return fd
        with self._lock:
            fd = self._fds.get(label)
            if fd is None:
                fd = hide(os.memfd_create(f"mockkernel:{label}", os.MFD_CLOEXEC | _MFD_SEALING))
                # sealed: a write that escapes the redirection fails instead of landing here
                REAL.fcntl(fd, _F_ADD_SEALS, _SEALS)
                self._fds[label] = hold(fd, self._moved)
        return fd

    def add(self, label: str, fd: int, *companions: int) -> None:
        """Make the real ``fd`` the placeholder of mock fds labelled ``label``.

        For files whose real-fd behaviour must differ from a memfd's: ``select``/``poll``
        on a mock fd see its placeholder, so an empty pipe's read end (with its write end
        as a ``companion``, kept open so it never reports ``POLLHUP``) polls as "no
        events", like an event file with nothing queued.  The kernel owns the fds from
        now on and closes them at shutdown.  ``ValueError`` if ``label`` has one already.
        """
        with self._lock:
            if label in self._fds:
                raise ValueError(f"placeholder {label!r} exists already")
            self._fds[label] = hold(hide(fd), self._moved)
        self._companions += [hold(hide(c), self._moved) for c in companions]

    def _moved(self, old: int, new: int) -> None:
        """A program's ``dup2`` took the number ``old``: the fd lives on at ``new``."""
        for label, fd in self._fds.items():
            if fd == old:
                self._fds[label] = new
        self._companions = [new if c == old else c for c in self._companions]

    def shutdown(self) -> None:
        for fd in [*self._fds.values(), *self._companions]:
            kernel_close(fd)
        self._fds.clear()
        self._companions.clear()
