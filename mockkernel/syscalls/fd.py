"""The fd-table syscalls: ``close``, the ``dup`` family, ``fcntl`` (``fs/file.c``,
``fs/fcntl.c``).  Each takes the process and Linux's plain arguments; the process
keeps the table (:class:`~mockkernel.process.Process`, ``fdt``)."""

from __future__ import annotations

import fcntl as _fcntl
import os
import stat as _stat
import struct
from errno import EBADF, EINVAL, ENOTDIR, EOVERFLOW, EPERM, ESRCH
from typing import TYPE_CHECKING

from ..cred import current_ids, inode_owner_or_capable
from ..errors import kerr
from ..filelock import FL_FLOCK, FL_OFDLCK, FL_POSIX, OFFSET_MAX, FileLock, FileLocks
from ..fs import FMODE_PATH, FMODE_READ, FMODE_WRITE, File
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_to_user

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "dupfd",
    "flock_to_posix",
    "locks_remove_posix",
    "sys_close",
    "sys_dup",
    "sys_dup2",
    "sys_dup3",
    "sys_fcntl",
    "sys_flock",
]

trace_fd_close = TracePoint("fd.close", "pid", "fd", "file")

# linux/fcntl.h, asm-generic/fcntl.h (x86-64)
F_SETOWN, F_SETSIG, F_GETSIG = 8, 10, 11
F_SETOWN_EX, F_GETOWN_EX = 15, 16
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_SETLEASE, F_GETLEASE, F_NOTIFY = 1024, 1025, 1026
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_GET_RW_HINT, F_SET_RW_HINT = 1035, 1036
RWH_WRITE_LIFE_EXTREME = 5
DN_MULTISHOT = 0x80000000
_NSIG = 64
#: struct flock (x86-64): l_type, l_whence, (pad), l_start, l_len, l_pid, (pad)
FLOCK_FMT = "=hh4xqqi4x"
FLOCK_SIZE = struct.calcsize(FLOCK_FMT)
_LOCK_CMDS = frozenset(
    (_fcntl.F_GETLK, _fcntl.F_SETLK, _fcntl.F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
)
#: the commands whose ``arg`` is a user address (all 64 bits of it); every other command
#: takes an ``int`` (``do_fcntl``'s ``argi``) or flags
FCNTL_POINTER_CMDS = _LOCK_CMDS | {F_GETOWN_EX, F_SETOWN_EX, F_GET_RW_HINT, F_SET_RW_HINT}

# fs/fcntl.c: what F_SETFL may change.  FASYNC is not in it: only a file's ->fasync op
# sets that bit, and no mock file has one (so F_SETFL O_ASYNC is a silent no-op).
SETFL_MASK = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_NOATIME
_PATH_CMDS = frozenset(
    (_fcntl.F_DUPFD, _fcntl.F_DUPFD_CLOEXEC, _fcntl.F_GETFD, _fcntl.F_SETFD, _fcntl.F_GETFL)
)


def sys_close(proc: Process, fd: int) -> None:
    """``close(fd)``: the number is free at once; the file's last ``fput`` releases it.

    The file is dropped even when the real fd holding the number is already gone (a
    ``close`` through ctypes, a stale ``socket.close()``): Linux's close always drops it.
    """
    lock = proc.files_lock
    lock.acquire()  # (not ``with``: half the cost, and close is a hot path)
    try:
        file = proc.files.pop(fd, None)
        if file is None:
            raise kerr(EBADF)
        proc.slots[fd] = None
        try:  # (not contextlib.suppress: close is a hot path)  # noqa: SIM105
            proc.fdt.free_number(fd)
        except OSError:
            pass  # (the number was freed underneath us: the file goes all the same)
    finally:
        lock.release()
    tracer = proc.kernel.tracer
    if tracer.enabled:  # (a hot path: no call while off)
        trace_fd_close(tracer, proc.pid, fd, file.id)
    locks = file.file_table.locks  # (the kernel's FileLocks, no lookup: a hot path)
    if locks.contexts:  # locks_remove_posix, inline
        locks.remove_posix(file.inode, proc)
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
        trace_fd_close(proc.kernel.tracer, proc.pid, newfd, old.id)
        locks_remove_posix(proc, old)
        old.put()
    return newfd


def sys_fcntl(proc: Process, fd: int, cmd: int, arg: int = 0) -> int:
    """``fcntl(fd, cmd, arg)`` (``do_fcntl``); ``arg`` is an address in ``proc``'s memory
    for the commands that take a pointer (locks, ``F_GETOWN_EX``, RW hints).

    An ``O_PATH`` file answers only ``F_DUPFD*``, ``F_GETFD``/``F_SETFD`` and ``F_GETFL``
    (``check_fcntl_cmd``); any other command is ``EBADF`` there, and an unknown one
    ``EINVAL`` everywhere.  Commands for kinds of file the mock has none of answer what
    Linux answers for a device, a dma-buf or a pseudo file: ``F_NOTIFY`` is ``ENOTDIR``
    off a directory, ``F_GETPIPE_SZ``/``F_SETPIPE_SZ`` ``EBADF`` (not a pipe), the seal
    commands ``EINVAL`` (not shmem), ``F_SETLEASE`` ``EINVAL`` (not a regular file).
    """
    file = proc.fdget_raw(fd)
    if file.f_mode & FMODE_PATH and cmd not in _PATH_CMDS:
        raise kerr(EBADF)  # check_fcntl_cmd: what an O_PATH file answers
    k = proc.kernel
    if k.current is proc:
        return _do_fcntl(proc, fd, file, cmd, arg)
    with k.running(proc):  # (pointer arguments are in proc's memory)
        return _do_fcntl(proc, fd, file, cmd, arg)


def _do_fcntl(proc: Process, fd: int, file: File, cmd: int, arg: int) -> int:
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
        noatime = arg & os.O_NOATIME and not file.f_flags & os.O_NOATIME
        if noatime and not inode_owner_or_capable(current_ids(proc.kernel), file.inode):
            raise kerr(EPERM)
        if arg & os.O_DIRECT:
            raise kerr(EINVAL)
        file.f_flags = (file.f_flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    if cmd in _LOCK_CMDS:
        return _fcntl_lock(proc, file, cmd, arg)
    if cmd == F_GETLEASE:
        return _fcntl.F_UNLCK  # no lease can be taken on a mock file
    if cmd == F_SETLEASE:
        # generic_setlease: only a regular file takes a lease, and no mock file can
        # (sysfs/debugfs files: kernfs has no ->setlease)
        raise kerr(EINVAL)
    if cmd == F_NOTIFY:
        # fcntl_dirnotify: ENOTDIR off a directory; a mock directory accepts the mask
        # (no event ever fires: nothing in the mock tree changes under a program)
        if arg & ~DN_MULTISHOT == 0:
            return 0  # "no more events": accepted on any file
        if not _stat.S_ISDIR(file.inode.mode):
            raise kerr(ENOTDIR)
        return 0
    if cmd in (F_GETPIPE_SZ, F_SETPIPE_SZ):
        raise kerr(EBADF)  # pipe_fcntl: not a pipe
    if cmd in (F_ADD_SEALS, F_GET_SEALS):
        raise kerr(EINVAL)  # memfd_fcntl: not a shmem/hugetlbfs file
    if cmd in (_fcntl.F_GETOWN, F_SETOWN, F_GETOWN_EX, F_SETOWN_EX, F_GETSIG, F_SETSIG):
        return _fcntl_owner(proc, file, cmd, arg)
    if cmd == F_GET_RW_HINT:
        copy_to_user(arg, file.inode.i_write_hint.to_bytes(8, "little"))
        return 0
    if cmd == F_SET_RW_HINT:
        hint = int.from_bytes(copy_from_user(arg, 8), "little")
        if hint > RWH_WRITE_LIFE_EXTREME:
            raise kerr(EINVAL)
        file.inode.i_write_hint = hint
        return 0
    raise kerr(EINVAL)


def _fcntl_owner(proc: Process, file: File, cmd: int, arg: int) -> int:
    """``F_GETOWN``/``F_SETOWN``, ``F_GETOWN_EX``/``F_SETOWN_EX``, ``F_GETSIG``/``F_SETSIG``
    (``fs/fcntl.c``): who gets ``SIGIO``.  Recorded only: no mock file has a ``->fasync``
    op, so nothing is ever sent."""
    typ, pid, sig = file.f_owner
    if cmd == _fcntl.F_GETOWN:
        return -pid if typ == F_OWNER_PGRP else pid
    if cmd == F_SETOWN:
        who = arg - (1 << 32) if arg >= 1 << 31 else arg  # (an int)
        if who:
            _find_pid(abs(who))
        file.f_owner = (F_OWNER_PGRP if who < 0 else F_OWNER_PID, abs(who), sig)
        return 0
    if cmd == F_GETOWN_EX:
        copy_to_user(arg, struct.pack("=ii", typ, pid))
        return 0
    if cmd == F_SETOWN_EX:
        new_type, new_pid = struct.unpack("=ii", copy_from_user(arg, 8))
        if new_type not in (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP):
            raise kerr(EINVAL)
        if new_pid:
            _find_pid(new_pid)
        file.f_owner = (new_type, new_pid, sig)
        return 0
    if cmd == F_GETSIG:
        return sig
    # F_SETSIG: valid_signal(): 0 .. _NSIG
    if not 0 <= arg <= _NSIG:
        raise kerr(EINVAL)
    file.f_owner = (typ, pid, arg)
    return 0


def _find_pid(pid: int) -> None:
    """``find_vpid``: ``ESRCH`` for a pid no task has (the real ones: this machine's)."""
    if not os.path.exists(f"/proc/{pid}"):
        raise kerr(ESRCH)


def flock_to_posix(file: File, whence: int, start: int, length: int) -> tuple[int, int]:
    """``flock_to_posix_lock``: the absolute inclusive range of a ``struct flock``."""
    if whence == os.SEEK_SET:
        base = 0
    elif whence == os.SEEK_CUR:
        base = file.f_pos
    elif whence == os.SEEK_END:
        base = file.inode.size
    else:
        raise kerr(EINVAL)
    if start > OFFSET_MAX - base:
        raise kerr(EOVERFLOW)
    start += base
    if start < 0:
        raise kerr(EINVAL)
    if length > 0:
        if length - 1 > OFFSET_MAX - start:
            raise kerr(EOVERFLOW)
        end = start + length - 1
    elif length < 0:
        end = start - 1
        start += length
        if start < 0:
            raise kerr(EINVAL)
    else:
        end = OFFSET_MAX
    return start, end


def _fcntl_lock(proc: Process, file: File, cmd: int, arg: int) -> int:
    """``fcntl_getlk``/``fcntl_setlk``: POSIX and OFD record locks (``struct flock`` at
    ``arg``)."""
    l_type, l_whence, l_start, l_len, l_pid = struct.unpack(
        FLOCK_FMT, copy_from_user(arg, FLOCK_SIZE)
    )
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    if ofd and l_pid != 0:
        raise kerr(EINVAL)
    getlk = cmd in (_fcntl.F_GETLK, F_OFD_GETLK)
    if l_type not in (_fcntl.F_RDLCK, _fcntl.F_WRLCK) and not (
        not getlk and l_type == _fcntl.F_UNLCK
    ):
        raise kerr(EINVAL)
    start, end = flock_to_posix(file, l_whence, l_start, l_len)
    owner: object = file if ofd else proc
    req = FileLock(
        owner, -1 if ofd else proc.pid, FL_OFDLCK if ofd else FL_POSIX, l_type, start, end
    )
    locks = proc.kernel.subsys(FileLocks)
    if getlk:
        found = locks.posix_test(file.inode, req)
        if found is None:
            out = (_fcntl.F_UNLCK, l_whence, l_start, l_len, l_pid)
        else:  # posix_lock_to_flock
            length = 0 if found.end == OFFSET_MAX else found.end - found.start + 1
            out = (found.type, os.SEEK_SET, found.start, length, found.pid)
        copy_to_user(arg, struct.pack(FLOCK_FMT, *out))
        return 0
    if l_type == _fcntl.F_RDLCK and not file.f_mode & FMODE_READ:
        raise kerr(EBADF)
    if l_type == _fcntl.F_WRLCK and not file.f_mode & FMODE_WRITE:
        raise kerr(EBADF)
    locks.posix_set(file.inode, req, wait=cmd in (_fcntl.F_SETLKW, F_OFD_SETLKW))
    return 0


def sys_flock(proc: Process, fd: int, operation: int) -> None:
    """``flock(fd, operation)``: ``LOCK_SH``/``LOCK_EX``/``LOCK_UN``, ``| LOCK_NB``; the
    lock is the open file description's (``fs/locks.c``)."""
    file = proc.fdget(fd)
    op = operation & ~_fcntl.LOCK_NB
    types = {
        _fcntl.LOCK_SH: _fcntl.F_RDLCK,
        _fcntl.LOCK_EX: _fcntl.F_WRLCK,
        _fcntl.LOCK_UN: _fcntl.F_UNLCK,
    }
    typ = types.get(op)
    if typ is None:
        raise kerr(EINVAL)
    if typ != _fcntl.F_UNLCK and not file.f_mode & (FMODE_READ | FMODE_WRITE):
        raise kerr(EBADF)
    req = FileLock(file, proc.pid, FL_FLOCK, typ)
    proc.kernel.subsys(FileLocks).flock(file.inode, req, wait=not operation & _fcntl.LOCK_NB)


def locks_remove_posix(proc: Process, file: File) -> None:
    """A close of an fd of ``file`` in ``proc`` drops ``proc``'s POSIX locks on its inode
    (``filp_flush``)."""
    locks = proc.kernel.subsys(FileLocks)
    if locks.contexts:  # (close is a hot path: no call while no file has a lock)
        locks.remove_posix(file.inode, proc)
