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

__all__ = ["REAL", "hide", "kernel_dup"]


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
