"""The fd-table syscalls: ``close``, the ``dup`` family, ``fcntl`` (``fs/file.c``,
``fs/fcntl.c``).  Each takes the process and Linux's plain arguments; the process
keeps the table (:class:`~mockkernel.process.Process`, ``fdt``)."""

from __future__ import annotations

import fcntl as _fcntl
import os
from errno import EBADF, EINVAL, EPERM
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_PATH

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["dupfd", "sys_close", "sys_dup", "sys_dup2", "sys_dup3", "sys_fcntl"]

# fs/fcntl.c: what F_SETFL may change.  FASYNC is not in it: only a file's ->fasync op
# sets that bit, and no mock file has one (so F_SETFL O_ASYNC is a silent no-op).
SETFL_MASK = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_NOATIME
_PATH_CMDS = frozenset(
    (_fcntl.F_DUPFD, _fcntl.F_DUPFD_CLOEXEC, _fcntl.F_GETFD, _fcntl.F_SETFD, _fcntl.F_GETFL)
)


def sys_close(proc: Process, fd: int) -> None:
    """``close(fd)``: the number is free at once; the file's last ``fput`` releases it."""
    with proc.files_lock:
        file = proc.files.pop(fd, None)
        if file is None:
            raise kerr(EBADF)
        proc.slots[fd] = None
        proc.fdt.free_number(fd)
    k = proc.kernel
    if k.tracer.enabled:
        k.tracer.emit("fd.close", pid=proc.pid, fd=fd, file=file.id)
    file.put()


def dupfd(proc: Process, fd: int, minfd: int, cloexec: bool) -> int:
    """``f_dupfd``: the lowest free number >= ``minfd`` for the file at ``fd``."""
    with proc.files_lock:
        file = proc.fget_raw(fd)
        try:
            new = proc.fdt.alloc(minfd, cloexec, file.f_op.name)
        except BaseException:
            file.put()
            raise
        proc.fd_install(new, file)
    return new


def sys_dup(proc: Process, fd: int) -> int:
    return dupfd(proc, fd, 0, cloexec=False)


def sys_dup3(proc: Process, oldfd: int, newfd: int, flags: int) -> int:
    if flags & ~os.O_CLOEXEC:
        raise kerr(EINVAL)
    if oldfd == newfd:
        raise kerr(EINVAL)
    return _dup_to(proc, oldfd, newfd, bool(flags & os.O_CLOEXEC))


def sys_dup2(proc: Process, oldfd: int, newfd: int) -> int:
    if oldfd == newfd:
        proc.fdget_raw(oldfd)
        return newfd
    return _dup_to(proc, oldfd, newfd, False)


def _dup_to(proc: Process, oldfd: int, newfd: int, cloexec: bool) -> int:
    """``do_dup2``: ``newfd`` now holds ``oldfd``'s file; what it held is closed."""
    if newfd < 0 or newfd >= proc.fdt.rlimit:
        raise kerr(EBADF)
    with proc.files_lock:
        file = proc.fget_raw(oldfd)
        try:
            proc.fdt.take_number(newfd, cloexec, oldfd)
        except BaseException:
            file.put()
            raise
        old = proc.files.get(newfd)
        proc.fd_install(newfd, file)
    if old is not None:
        k = proc.kernel
        if k.tracer.enabled:
            k.tracer.emit("fd.close", pid=proc.pid, fd=newfd, file=old.id)
        old.put()
    return newfd


def sys_fcntl(proc: Process, fd: int, cmd: int, arg: int = 0) -> int:
    """``fcntl``: ``F_DUPFD[_CLOEXEC]``, ``F_GETFD``/``F_SETFD``, ``F_GETFL``/``F_SETFL``;
    any other command is ``EINVAL``.  ``O_PATH`` files answer too (``fdget_raw``)."""
    file = proc.fdget_raw(fd)
    if file.f_mode & FMODE_PATH and cmd not in _PATH_CMDS:
        raise kerr(EBADF)  # check_fcntl_cmd: what an O_PATH file answers
    if cmd in (_fcntl.F_DUPFD, _fcntl.F_DUPFD_CLOEXEC):
        if arg < 0:
            raise kerr(EINVAL)
        return dupfd(proc, fd, arg, cloexec=cmd == _fcntl.F_DUPFD_CLOEXEC)
    if cmd == _fcntl.F_GETFD:
        return _fcntl.FD_CLOEXEC if proc.fdt.get_cloexec(fd) else 0
    if cmd == _fcntl.F_SETFD:
        proc.fdt.set_cloexec(fd, bool(arg & _fcntl.FD_CLOEXEC))
        return 0
    if cmd == _fcntl.F_GETFL:
        return file.f_flags
    if cmd == _fcntl.F_SETFL:
        # setfl(): O_NOATIME needs the owner (or CAP_FOWNER); O_DIRECT needs
        # FMODE_CAN_ODIRECT, which no mock file has
        if arg & os.O_NOATIME and not file.f_flags & os.O_NOATIME:
            euid = os.geteuid()
            if euid not in (0, file.inode.uid):
                raise kerr(EPERM)
        if arg & os.O_DIRECT:
            raise kerr(EINVAL)
        file.f_flags = (file.f_flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    raise kerr(EINVAL)
