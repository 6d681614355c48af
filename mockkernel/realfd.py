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
    "HeldFds",
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
    "move_high",
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


#: ``mover(old, new)``: re-points the holder of a held fd that moved from ``old`` to ``new``
Mover = Callable[[int, int], None]


class HeldFds(Subsystem):
    """The real fd numbers this kernel holds for itself (placeholders, memfds behind
    buffers, BARs, dups of a program's eventfds), each with the function that re-points
    its holder when the number must be given up (``None``: it cannot move).

    A program's ``close``/``closerange``/``dup2`` through this kernel's front-ends must
    never reach these numbers: on Linux they are not the program's at all.  Each kernel
    keeps its own (two kernels of one Python process never see each other's numbers);
    entries come from :func:`hide`/:func:`kernel_dup`/:func:`hold` and leave with
    :func:`kernel_close`.  Made first of all subsystems (so shut down last).
    """

    name = "held_fds"
    boot_independent = True  # (a registry: nothing of a boot to see)

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self._held: dict[int, Mover | None] = {}

    def held(self, fd: int) -> bool:
        """True when ``fd`` is a real fd this kernel holds for itself."""
        return fd in self._held

    def fds(self) -> frozenset[int]:
        """The numbers of every real fd this kernel holds (a snapshot)."""
        return frozenset(self._held.copy())  # (one C-level copy: safe against other threads)

    def numbers(self) -> Container[int]:
        """The live set of held numbers (read-only use: membership tests on the hot path)."""
        return self._held.keys()

    def hold(self, fd: int, mover: Mover | None = None) -> int:
        """Record ``fd`` as this kernel's; ``mover(old, new)`` re-points its holder when
        the number is given up (see :meth:`move`).  Returns ``fd``."""
        self._held[fd] = mover
        return fd

    def move(self, fd: int) -> bool:
        """Give the held number ``fd`` up: dup the fd to a new high number, re-point its
        holder and close the old number.  ``False`` when its holder cannot follow a move."""
        mover = self._held.get(fd)
        if mover is None:
            return False
        try:
            REAL.fcntl(fd, fcntl.F_GETFD)
        except OSError:  # closed behind the registry's back (``REAL.close``): nothing to move
            self._held.pop(fd, None)
            return True
        new = self.dup(fd)
        self._held[new] = mover
        mover(fd, new)
        self.close(fd)
        return True

    def give_up(self, fd: int) -> None:
        """A program's ``dup2``/``dup3`` targets the held number ``fd``: move the kernel's
        fd away (:meth:`move`).  ``EBUSY`` when its holder cannot follow (Linux's answer
        to a ``dup2`` racing an ``open`` of the same number: the program may retry)."""
        if not self.move(fd):
            try:
                REAL.fcntl(fd, fcntl.F_GETFD)
            except OSError:
                self._held.pop(fd, None)  # a stale entry: the number is free after all
                return
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    def close(self, fd: int) -> None:
        """Close a real fd this kernel holds; the number stops being held."""
        self._held.pop(fd, None)
        os_close(fd)

    def hide(self, fd: int) -> int:
        """Move ``fd`` to a high, close-on-exec number this kernel holds; returns it."""
        return self.hold(move_high(fd))

    def dup(self, fd: int) -> int:
        """A high, close-on-exec duplicate of ``fd`` for this kernel to keep."""
        try:
            new: int = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _floor())
        except OSError:
            new = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)
        return self.hold(new)


def held(kernel: KernelContext, fd: int) -> bool:
    """True when ``fd`` is a real fd ``kernel`` holds for itself (not the program's)."""
    return kernel.subsys(HeldFds).held(fd)


def held_fds(kernel: KernelContext) -> frozenset[int]:
    """The numbers of every real fd ``kernel`` holds."""
    return kernel.subsys(HeldFds).fds()


def held_numbers(kernel: KernelContext) -> Container[int]:
    """The live set of ``kernel``'s held numbers (read-only: the hot path's membership test)."""
    return kernel.subsys(HeldFds).numbers()


def hold(kernel: KernelContext, fd: int, mover: Mover | None = None) -> int:
    """Record ``fd`` as ``kernel``'s (:meth:`HeldFds.hold`).  Returns ``fd``."""
    return kernel.subsys(HeldFds).hold(fd, mover)


def move_held(kernel: KernelContext, fd: int) -> bool:
    """Give ``kernel``'s held number ``fd`` up (:meth:`HeldFds.move`)."""
    return kernel.subsys(HeldFds).move(fd)


def give_up(kernel: KernelContext, fd: int) -> None:
    """A program's ``dup2``/``dup3`` targets ``kernel``'s held ``fd`` (:meth:`HeldFds.give_up`)."""
    kernel.subsys(HeldFds).give_up(fd)


def kernel_close(kernel: KernelContext, fd: int) -> None:
    """Close a real fd ``kernel`` holds (from :func:`hide`, :func:`kernel_dup`): kernel
    code must not call ``os.close``, which a program's redirection refuses for these;
    the number stops being held."""
    kernel.subsys(HeldFds).close(fd)


def hide(kernel: KernelContext, fd: int) -> int:
    """Move ``fd`` to a high, close-on-exec number ``kernel`` holds; returns the number."""
    return kernel.subsys(HeldFds).hide(fd)


def kernel_dup(kernel: KernelContext, fd: int) -> int:
    """A high, close-on-exec duplicate of ``fd`` for ``kernel`` to keep."""
    return kernel.subsys(HeldFds).dup(fd)


def move_high(fd: int) -> int:
    """Move ``fd`` to a high, close-on-exec number (out of the range programs use) without
    any kernel holding it: for real fds of this Python process that belong to no kernel
    (the ``/proc/self/mem`` of :data:`~mockkernel.uaccess.LOCAL`, the CLI's trace file
    before its kernel boots).  Returns the number (``fd`` itself when there is no room)."""
    try:
        new: int = REAL.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _floor())
    except OSError:
        os.set_inheritable(fd, False)
        return fd  # no room up there: keep it where it is
    REAL.close(fd)
    return new


#: the real ``os.close``, captured at import (a program's close of its own fds needs no
#: bookkeeping here: it can never reach a held number)
os_close = os.close


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
                held = self.kernel.subsys(HeldFds)
                fd = held.hide(
                    os.memfd_create(f"mockkernel:{label}", os.MFD_CLOEXEC | _MFD_SEALING)
                )
                # sealed: a write that escapes the redirection fails instead of landing here
                REAL.fcntl(fd, _F_ADD_SEALS, _SEALS)
                self._fds[label] = held.hold(fd, self._moved)
        return fd

    def add(self, label: str, fd: int, *companions: int) -> None:
        """Make the real ``fd`` the placeholder of mock fds labelled ``label``.

        For files whose real-fd behaviour must differ from a memfd's: ``select``/``poll``
        on a mock fd see its placeholder, so an empty pipe's read end (with its write end
        as a ``companion``, kept open so it never reports ``POLLHUP``) polls as "no
        events", like an event file with nothing queued.  The kernel owns the fds from
        now on and closes them at shutdown.  ``ValueError`` if ``label`` has one already.
        """
        held = self.kernel.subsys(HeldFds)
        with self._lock:
            if label in self._fds:
                raise ValueError(f"placeholder {label!r} exists already")
            self._fds[label] = held.hold(held.hide(fd), self._moved)
        self._companions += [held.hold(held.hide(c), self._moved) for c in companions]

    def _moved(self, old: int, new: int) -> None:
        """A program's ``dup2`` took the number ``old``: the fd lives on at ``new``."""
        for label, fd in self._fds.items():
            if fd == old:
                self._fds[label] = new
        self._companions = [new if c == old else c for c in self._companions]

    def shutdown(self) -> None:
        held = self.kernel.subsys(HeldFds)
        for fd in [*self._fds.values(), *self._companions]:
            held.close(fd)
        self._fds.clear()
        self._companions.clear()
