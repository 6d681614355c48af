"""The current task's fd table as drivers use it (``fs/file.c``, ``linux/file.h``).

A driver handler runs on behalf of the *current task*: the process whose syscall
reached it (``kernel.running(proc)`` makes one current; else the init process, this
Python process).  An ioctl that takes an fd argument looks it up here, and one that
returns a new fd installs it here -- never in a process the driver picked itself.

Two kinds of fd live in a task's table: **mock** fds, whose files some driver of this
kernel made (a :class:`~mockkernel.fs.File`), and **real** fds, the program's own files,
sockets, eventfds and memfds that the mock kernel does not own.  :func:`fget` and
:func:`fdget` return the mock file, ``None`` for a real fd (so a driver can answer
"not my kind of file" with the errno Linux gives), and raise ``EBADF`` when the fd is
not open at all; :func:`fget_real` hands the driver its own reference to a real one.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from errno import EBADF, EINVAL
from typing import TYPE_CHECKING

from .errors import KernelBug, kerr
from .fs import FMODE_PATH
from .realfd import Placeholders

if TYPE_CHECKING:
    from .fs import File
    from .process import Process, TaskContext

#: the highest fd number there can be (``INT_MAX``: ``sysctl_nr_open`` is below it)
_FD_MAX = (1 << 31) - 1

__all__ = [
    "current_task",
    "fd_install",
    "fdget",
    "fdget_real",
    "fget",
    "fget_real",
    "get_unused_fd_flags",
    "put_unused_fd",
]


def current_task(kernel: TaskContext) -> Process:
    """``current``: the task whose syscall the calling driver code serves.

    Its fd table is the one :func:`fget`, :func:`get_unused_fd_flags` and
    :func:`fd_install` use, and uaccess (``copy_from_user``...) reaches its memory.
    Pass it to APIs that take a task (``dma_buf_get(fd, current_task(kernel))``).
    """
    return kernel.current


def _lookup(kernel: TaskContext, fd: int) -> File | None:
    if not 0 <= fd <= _FD_MAX:  # the caller's number as ``unsigned int``: none is that high
        raise kerr(EBADF)
    proc = kernel.current
    file = proc.files.get(fd)
    if file is None:
        if not proc.fdt.is_real_fd(fd):
            raise kerr(EBADF)
    elif file.f_mode & FMODE_PATH:
        raise kerr(EBADF)  # fdget() never returns an O_PATH file to a driver
    return file


def fdget(kernel: TaskContext, fd: int) -> File | None:
    """``fdget``: the mock file at ``fd`` in the current task, *borrowed*.

    Called by an ioctl handler that looks at the file only during the call (its type,
    its ``private_data``).  Returns ``None`` when ``fd`` is open but a real file (not
    made by a driver of this kernel).  Raises ``EBADF`` when ``fd`` is not open.  To
    keep the file past the call, take a reference with :func:`fget` instead.
    """
    return _lookup(kernel, fd)


def fget(kernel: TaskContext, fd: int) -> File | None:
    """``fget``: the mock file at ``fd`` in the current task, with a reference.

    Called by a driver that keeps the file (an iommufd context a device binds to); the
    caller drops the reference with ``file.put()``.  ``None`` and ``EBADF`` as for
    :func:`fdget`.
    """
    file = _lookup(kernel, fd)
    return None if file is None else file.get()


def fget_real(kernel: TaskContext, fd: int) -> int:
    """The driver's own real fd for the *real* file at ``fd`` in the current task (an
    eventfd or memfd a program hands a driver), which the caller closes.

    Called instead of using the caller's fd number directly: the number is the
    program's, which may close or reuse it at any time (and a supervised process's
    numbers are not this process's).  ``EBADF`` when ``fd`` is a mock fd or not open.
    """
    return kernel.current.fget_real(fd)


def fdget_real(kernel: TaskContext, fd: int) -> AbstractContextManager[int]:
    """``fdget`` of a *real* file: the file at ``fd`` in the current task as a real fd
    the driver may use for a ``with`` block, *borrowed* (a memfd to check and map).

    In-process that is ``fd`` itself, so no fd number is taken (a driver's ``EMFILE``
    stays where Linux has it); a supervised process's file is fetched from it
    (``pidfd_getfd``) and closed after the block.  ``EBADF`` when ``fd`` is a mock fd
    or not open.
    """
    return kernel.current.fdget_real(fd)


def get_unused_fd_flags(kernel: TaskContext, flags: int) -> int:
    """``get_unused_fd_flags``: reserve the lowest free fd of the current task.

    Called by a handler that will return a new fd, before it makes the file, so that
    ``EMFILE`` comes before any side effect.  ``flags`` may hold ``O_CLOEXEC`` (any
    other bit: ``EINVAL``).  Returns the number; then either :func:`fd_install` a file
    there or give it back with :func:`put_unused_fd`.
    """
    if flags & ~os.O_CLOEXEC:
        raise kerr(EINVAL)
    proc = kernel.current
    with proc.files_lock:
        return proc.get_unused_fd(bool(flags & os.O_CLOEXEC))


def fd_install(kernel: TaskContext, fd: int, file: File) -> None:
    """``fd_install``: publish ``file`` at ``fd`` (from :func:`get_unused_fd_flags`) in
    the current task.  The caller's reference now belongs to the fd table, and the
    program can use the fd at once: install last, when nothing can fail any more."""
    proc = kernel.current
    fdt = proc.fdt
    with proc.files_lock:
        if fd in proc.files:
            raise KernelBug(f"fd_install({fd}): a file is installed there already")
        # the number was reserved before the file existed: a real-backed table now points
        # it at the placeholder of the file's kind (poll on it must answer as the file does)
        fdt.take_number(fd, fdt.get_cloexec(fd), kernel.subsys(Placeholders).get(file.f_op.name))
        proc.fd_install(fd, file)


def put_unused_fd(kernel: TaskContext, fd: int) -> None:
    """``put_unused_fd``: give back a number :func:`get_unused_fd_flags` reserved and no
    file was installed at (the handler failed after reserving it)."""
    proc = kernel.current
    with proc.files_lock:
        if fd in proc.files:
            raise KernelBug(f"put_unused_fd({fd}): a file is installed there")
        proc.fdt.put_unused(fd)
