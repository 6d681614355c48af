"""The syscall table: one entry per x86-64 syscall the supervisor traps, and its handler.

As gVisor's ``linux64.go``: each entry says whether the call is supported,
partial or unimplemented on a mock fd or path.  A handler decides *mock or real*:
a call on a real fd or path is answered ``CONTINUE`` (the real kernel runs it);
a call on a mock one runs the kernel-side ``Process.sys_*`` method (never a copy of
its rules) with the child's memory as the current address space.  The support
table in ``docs/supervisor.md`` is generated from :data:`TABLE`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from errno import EBADF, EINVAL, ENODEV, ENOTDIR, EPIPE, ERANGE, ESPIPE, EXDEV
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..dma_buf.core import dma_buf_fops
from ..errors import NotMine, kerr
from ..fs import FMODE_READ, FMODE_WRITE
from ..mm import PAGE_SIZE, page_align
from ..net.dev_ioctl import is_dev_ioctl, sock_dev_ioctl
from ..net.tcp_sock import tcp_sock_fops
from ..syscalls.fd import FCNTL_POINTER_CMDS
from ..syscalls.mmap import MADV_REAL_EFFECT, MADV_REMOVE, MREMAP_FIXED
from ..syscalls.mmap import sys_mremap as sys_mremap_rules
from ..syscalls.splice import (
    SPLICE_F_ALL,
    do_splice,
    do_tee,
    splice_file,
    splice_offsets_check,
)
from ..trace import TracePoint
from ..uaccess import UserBuffer, copy_from_user, copy_to_user
from . import attrs, epollsys, netsock, paths, pollsys, punch, scm, tcpsock
from .fdtable import real_fd_is_dir, real_fd_open
from .host import libc
from .mmap import move, unmap
from .seccomp import NR
from .uabi import MAX_RW_COUNT, i32, s64, stat_bytes, statx_bytes, u32

if TYPE_CHECKING:
    from ..fs import File
    from ..process import Process
    from .supervisor import Supervisor

__all__ = ["CONTINUE", "TABLE", "Call", "Syscall"]

trace_sup_unsupported = TracePoint("sup.unsupported", "pid", "tid", "syscall", "fd", "errno")


class _Continue:
    def __repr__(self) -> str:
        return "CONTINUE"


#: a handler's answer meaning "not the mock's: let the real kernel run the call"
CONTINUE = _Continue()
Result = int | _Continue


class Call:
    """One trapped syscall: who made it and its six raw arguments."""

    __slots__ = ("args", "nid", "proc", "sv", "tid")

    def __init__(self, sv: Supervisor, proc: Process, tid: int, nid: int, args: tuple[int, ...]):
        self.sv, self.proc, self.tid, self.nid, self.args = sv, proc, tid, nid, args

    def mock_fd(self, i: int = 0) -> int | None:
        """Argument ``i`` as an fd if it is a mock fd of the caller, else ``None``."""
        fd = i32(self.args[i])
        return fd if fd in self.proc.files else None

    def unsupported(self, name: str, fd: int, errno: int) -> OSError:
        """A call the kernel does not model on a mock fd: Linux's errno, one trace event."""
        tracer = self.sv.kernel.tracer
        trace_sup_unsupported(tracer, self.proc.pid, self.tid, name, fd, os.strerror(errno))
        return kerr(errno)


Handler = Callable[[Call], Result]


@dataclass(frozen=True)
class Syscall:
    """A table entry: the call, its support status on mock fds/paths and a note."""

    name: str
    status: str  # "supported" | "partial" | "unimplemented"
    handler: Handler
    note: str = ""
    #: the argument that is an fd when the call is about that fd alone: a real fd there
    #: is answered CONTINUE before the handler runs (the cheap, common case)
    fd_arg: int | None = None
    #: (path argument, dirfd argument or None) of a path call: an absolute path outside
    #: the mock roots is answered CONTINUE before the handler runs
    path_arg: tuple[int, int | None] | None = None
    #: a cheap "surely not the mock's" test run before the handler (no current task)
    quick: Callable[[Process, tuple[int, ...]], bool] | None = None

    @property
    def nr(self) -> int:
        return NR[self.name]


# -- fd lifetime --------------------------------------------------------------------------
def sys_close(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is not None:
        file = c.proc.files[fd]
        c.proc.sys_close(fd)  # the mock close; the real kernel then closes the placeholder
        if file.released and c.sv.epoll.mirrors:
            c.sv.epoll.released(file)  # eventpoll_release, before close returns
    return CONTINUE


_CLOSE_RANGE_UNSHARE, _CLONE_FILES = 0x2, 0x400
#: unshare(2)'s valid flags (kernel/fork.c check_unshare_flags): THREAD FS NEWNS SIGHAND
#: VM FILES SYSVSEM NEWUTS NEWIPC NEWNET NEWUSER NEWPID NEWCGROUP NEWTIME
_UNSHARE_FLAGS = 0x7E070F80


def sys_close_range(c: Call) -> Result:
    first, last, flags = u32(c.args[0]), u32(c.args[1]), u32(c.args[2])
    if flags & ~0x6 or first > last:
        return CONTINUE  # the real kernel says EINVAL and closes nothing
    if flags & _CLOSE_RANGE_UNSHARE:
        c.sv.unshare_files(c.proc, keep=True)  # the copy first, then the closes in it
    for fd in sorted(fd for fd in c.proc.files if first <= fd <= last):
        if flags & 0x4:  # CLOSE_RANGE_CLOEXEC
            c.proc.fdt.set_cloexec(fd, True)
        else:
            c.proc.sys_close(fd)
    return CONTINUE


def sys_unshare(c: Call) -> Result:
    """``CLONE_FILES``: a process sharing its table (``clone(CLONE_FILES)``) takes its own
    copy, mock side; the real kernel then copies the real one."""
    flags = c.args[0]
    if flags & _CLONE_FILES and not flags & ~_UNSHARE_FLAGS:
        c.sv.unshare_files(c.proc, keep=True)
    return CONTINUE


def _quick_unshare(proc: Process, args: tuple[int, ...]) -> bool:
    return not args[0] & _CLONE_FILES


def sys_dup(c: Call) -> Result:
    fd = c.mock_fd()
    return CONTINUE if fd is None else c.proc.sys_dup(fd)


def _dup_onto_real(c: Call, old: int, new: int) -> Result:
    """A real fd dup'ed onto a mock number: the mock file goes when the real call works."""
    if new in c.proc.files and real_fd_open(c.proc.pid, old) and old != new:
        c.proc.forget_fd(new)
    return CONTINUE


def sys_dup2(c: Call) -> Result:
    old, new = i32(c.args[0]), i32(c.args[1])
    if old in c.proc.files:
        return c.proc.sys_dup2(old, new)
    return _dup_onto_real(c, old, new)


def sys_dup3(c: Call) -> Result:
    old, new, flags = i32(c.args[0]), i32(c.args[1]), i32(c.args[2])
    if old in c.proc.files:
        return c.proc.sys_dup3(old, new, flags)
    if flags & ~os.O_CLOEXEC:
        return CONTINUE
    return _dup_onto_real(c, old, new)


_F_GETFD, _F_SETFD = 1, 2


def sys_fcntl(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    cmd, arg = i32(c.args[1]), c.args[2]
    # a pointer is 64 bits wide: a lock's struct flock lives above 4 GiB in most programs
    ret = c.proc.sys_fcntl(fd, cmd, arg if cmd in FCNTL_POINTER_CMDS else i32(arg))
    if cmd in (_F_GETFD, _F_SETFD):
        return CONTINUE  # the close-on-exec bit lives on the real placeholder fd
    return ret


_FIONCLEX, _FIOCLEX = 0x5450, 0x5451


def sys_ioctl(c: Call) -> Result:
    fd = c.mock_fd()
    cmd = u32(c.args[1])
    if fd is None:
        if is_dev_ioctl(cmd) and _real_socket(c.proc.pid, i32(c.args[0])):
            # SIOCGIFINDEX & co. on any socket: the kernel's devices, never the host's
            return sock_dev_ioctl(c.sv.kernel, cmd, c.args[2], admin=_net_admin(c.tid))
        return CONTINUE
    ret = c.proc.sys_ioctl(fd, cmd, c.args[2])
    if cmd in (_FIOCLEX, _FIONCLEX):
        return CONTINUE  # mirrored above; the real bit is set by the real call
    return ret


def _real_socket(pid: int, fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(f"/proc/{pid}/fd/{fd}").st_mode)
    except OSError:
        return False  # not open: the real call says EBADF


_CAP_NET_ADMIN = 12


def _net_admin(tid: int) -> bool:
    """Does the caller hold ``CAP_NET_ADMIN`` (its effective set)?"""
    try:
        with open(f"/proc/{tid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return False


# -- data ---------------------------------------------------------------------------------
def sys_read(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    return len(c.proc.sys_read(fd, UserBuffer(c.args[1], c.args[2])))


def sys_pread64(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    return len(c.proc.sys_pread(fd, UserBuffer(c.args[1], c.args[2]), s64(c.args[3])))


def sys_write(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    return c.proc.sys_write(fd, UserBuffer(c.args[1], c.args[2]))


def sys_pwrite64(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    return c.proc.sys_pwrite(fd, UserBuffer(c.args[1], c.args[2]), s64(c.args[3]))


def _readv(c: Call, pos: int | None, flags: int) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    buf = UserBuffer(c.args[1], i32(c.args[2]), iovec=True)
    return len(c.proc.sys_readv(fd, buf, pos, flags))


def _writev(c: Call, pos: int | None, flags: int) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    data = UserBuffer(c.args[1], i32(c.args[2]), iovec=True)
    return c.proc.sys_writev(fd, data, pos, flags)


def _pos2(c: Call) -> int | None:
    pos = s64(c.args[3])
    return None if pos == -1 else pos


def sys_readv(c: Call) -> Result:
    return _readv(c, None, 0)


def sys_writev(c: Call) -> Result:
    return _writev(c, None, 0)


def sys_preadv(c: Call) -> Result:
    return _readv(c, s64(c.args[3]), 0)


def sys_pwritev(c: Call) -> Result:
    return _writev(c, s64(c.args[3]), 0)


def sys_preadv2(c: Call) -> Result:
    return _readv(c, _pos2(c), i32(c.args[5]))


def sys_pwritev2(c: Call) -> Result:
    return _writev(c, _pos2(c), i32(c.args[5]))


def sys_lseek(c: Call) -> Result:
    fd = c.mock_fd()
    return CONTINUE if fd is None else c.proc.sys_lseek(fd, s64(c.args[1]), i32(c.args[2]))


def _on_mock_fd(c: Call, call: Callable[[int], object]) -> Result:
    """``call(fd)`` for a mock fd, answering 0 (a real fd: ``CONTINUE``)."""
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    call(fd)
    return 0


def sys_flock(c: Call) -> Result:
    return _on_mock_fd(c, lambda fd: c.proc.sys_flock(fd, i32(c.args[1])))


def sys_fchmod(c: Call) -> Result:
    return _on_mock_fd(c, lambda fd: c.proc.sys_fchmod(fd, u32(c.args[1])))


def sys_fchown(c: Call) -> Result:
    return _on_mock_fd(c, lambda fd: c.proc.sys_fchown(fd, i32(c.args[1]), i32(c.args[2])))


_POSIX_FADV_MAX = 5  # POSIX_FADV_NORMAL .. POSIX_FADV_NOREUSE


def sys_fadvise64(c: Call) -> Result:
    """``generic_fadvise`` of a mock file: no page cache behind it (a pseudo or device
    file's ``noop_backing_dev_info``), so a known advice does nothing; ``EINVAL`` for
    a negative length or an unknown advice."""
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    c.proc.fdget(fd)
    if s64(c.args[2]) < 0 or not 0 <= i32(c.args[3]) <= _POSIX_FADV_MAX:
        raise kerr(EINVAL)
    return 0


def _no_splice(name: str, fds: tuple[int, ...], errno: int) -> Handler:
    """A call that moves data between files through the page cache or a pipe
    (``sendfile``, ``splice``, ``tee``, ``copy_file_range``, ``sync_file_range``,
    ``readahead``): no mock file has the ops it needs (``splice_read``/``splice_write``,
    a regular file's mapping), so Linux's errno for such a file, and a trace event."""

    def handler(c: Call) -> Result:
        for i in fds:
            fd = c.mock_fd(i)
            if fd is not None:
                c.proc.fdget(fd)
                raise c.unsupported(name, fd, errno)
        return CONTINUE

    return handler


_sendfile_no_splice = _no_splice("sendfile", (0, 1), EINVAL)


def sys_sendfile(c: Call) -> Result:
    """``sendfile`` from a real regular file into a mock TCP socket sends the bytes
    (``tcpsock.sendfile``); a mock file at either end otherwise has no splice ops."""
    out = c.mock_fd(0)
    if out is not None and c.mock_fd(1) is None:
        file = c.proc.fdget(out)
        if file.f_op is tcp_sock_fops:
            return tcpsock.sendfile(c, file)
    return _sendfile_no_splice(c)


def sys_splice(c: Call) -> Result:
    """``splice`` with a mock file at one end, by the rules both front-ends share
    (``syscalls/splice.py``): a real pipe of the child's (fetched, ``pidfd_getfd``) and
    a mock TCP socket or sysfs file move bytes; anything else gets Linux's errno.  The
    offsets are read from the child after the ``ESPIPE`` checks and written back after
    the splice, ``off_out`` first (``__do_splice``)."""
    fd_in, fd_out = c.mock_fd(0), c.mock_fd(2)
    if fd_in is None and fd_out is None:
        return CONTINUE
    length, flags = c.args[4], u32(c.args[5])
    if not length:
        return 0
    if flags & ~SPLICE_F_ALL:
        raise kerr(EINVAL)
    offp_in, offp_out = c.args[1], c.args[3]
    with contextlib.ExitStack() as stack:
        ends = []
        for fd, mock in ((i32(c.args[0]), fd_in), (i32(c.args[2]), fd_out)):
            real = None if mock is not None else stack.enter_context(c.proc.fdget_real(fd))
            ends.append(splice_file(c.proc, fd, real))
        in_, out = ends
        splice_offsets_check(in_, bool(offp_in), out, bool(offp_out))
        off_out = s64(_load_u64(offp_out)) if offp_out else None
        off_in = s64(_load_u64(offp_in)) if offp_in else None
        with tcpsock.timed_file(c, in_.file):
            try:
                n, new_in, new_out = do_splice(c.proc, in_, off_in, out, off_out, length, flags)
            except OSError as e:
                if e.errno == EPIPE:
                    _sigpipe(c)
                raise
    if new_out is not None:
        copy_to_user(offp_out, new_out.to_bytes(8, "little", signed=True))
    if new_in is not None:
        copy_to_user(offp_in, new_in.to_bytes(8, "little", signed=True))
    return n


_SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)


def _sigpipe(c: Call) -> None:
    """``send_sig(SIGPIPE, current)`` with a splice's ``EPIPE`` (a pipe without readers,
    a socket that cannot send): sent to the caller's thread before the answer unless
    its handler catches it -- the default action ends the process as on Linux, an
    ignored or blocked one changes nothing; a caught one would interrupt the
    notification and come back as ``EINTR`` or a restart, so it is not sent."""
    masks = {}
    try:
        with open(f"/proc/{c.proc.pid}/task/{c.tid}/status", "rb") as f:
            for line in f:
                key, _, value = line.partition(b":")
                if key in (b"SigBlk", b"SigCgt"):
                    masks[key] = int(value, 16)
    except OSError:
        return  # (gone)
    if masks.get(b"SigCgt", 0) & ~masks.get(b"SigBlk", 0) & _SIGPIPE_BIT:
        return
    with contextlib.suppress(OSError):
        libc().tgkill(c.proc.pid, c.tid, signal.SIGPIPE)


def _load_u64(addr: int) -> int:
    return int.from_bytes(copy_from_user(addr, 8), "little")


def sys_tee(c: Call) -> Result:
    """``tee`` with a mock file at one end: Linux's checks (flags, then a zero length,
    then ``EBADF``), then ``EINVAL``: only two pipes tee (traced as unsupported)."""
    fd_in, fd_out = c.mock_fd(0), c.mock_fd(1)
    if fd_in is None and fd_out is None:
        return CONTINUE
    if u32(c.args[3]) & ~SPLICE_F_ALL:
        raise kerr(EINVAL)
    if not c.args[2]:
        return 0
    with contextlib.ExitStack() as stack:
        ends = []
        for fd, mock in ((i32(c.args[0]), fd_in), (i32(c.args[1]), fd_out)):
            real = None if mock is not None else stack.enter_context(c.proc.fdget_real(fd))
            ends.append(splice_file(c.proc, fd, real))
        try:
            return do_tee(ends[0], ends[1])
        except OSError as e:
            if e.errno != EINVAL:
                raise
            mock = fd_in if fd_in is not None else fd_out
            assert mock is not None
            raise c.unsupported("tee", mock, EINVAL) from None


_UIO_MAXIOV = 1024


def sys_vmsplice(c: Call) -> Result:
    """``vmsplice`` of a mock file: flags, ``EBADF`` (no such fd, or neither readable nor
    writable), the iovecs read (``EINVAL``, ``EFAULT``), nothing to move: 0; else
    ``EBADF`` -- only a pipe takes user pages (traced as unsupported)."""
    fd = c.mock_fd(0)
    if fd is None:
        return CONTINUE
    if u32(c.args[3]) & ~SPLICE_F_ALL:
        raise kerr(EINVAL)
    file = c.proc.fdget(fd)
    if not file.f_mode & (FMODE_READ | FMODE_WRITE):
        raise kerr(EBADF)
    nr = c.args[2]
    if nr > _UIO_MAXIOV:
        raise kerr(EINVAL)
    raw = copy_from_user(c.args[1], 16 * nr) if nr else b""
    total = 0
    for i in range(nr):
        n = int.from_bytes(raw[16 * i + 8 : 16 * i + 16], "little", signed=True)
        if n < 0:
            raise kerr(EINVAL)
        total += n
    if not total:
        return 0
    raise c.unsupported("vmsplice", fd, EBADF)


def sys_fsync(c: Call) -> Result:
    return _on_mock_fd(c, lambda fd: c.proc.sys_fsync(fd, False))


def sys_fdatasync(c: Call) -> Result:
    return _on_mock_fd(c, lambda fd: c.proc.sys_fsync(fd, True))


def sys_ftruncate(c: Call) -> Result:
    return _on_mock_fd(c, lambda fd: c.proc.sys_ftruncate(fd, s64(c.args[1])))


def sys_fstat(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    copy_to_user(c.args[1], stat_bytes(c.proc.sys_fstat(fd)))
    return 0


def sys_getdents64(c: Call) -> Result:
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    data = c.proc.sys_getdents64(fd, min(u32(c.args[2]), MAX_RW_COUNT))
    copy_to_user(c.args[1], data)
    return len(data)


def sys_mmap(c: Call) -> Result:
    """Only reached where the filter notifies ``mmap`` (never: it TRACEs an fd's mmap,
    and the tracer lays the mapping, see ``mmap.py``)."""
    fd = c.mock_fd(4)
    if fd is None:
        return CONTINUE
    raise c.unsupported("mmap", fd, ENODEV)


def sys_munmap(c: Call) -> Result:
    """Drop the kernel's records (and file references) of the range, then the real call."""
    if c.proc.mappings:
        unmap(c.proc, c.args[0], c.args[1])
    return CONTINUE


def sys_mremap(c: Call) -> Result:
    """``mremap`` of a mock mapping: the kernel's refusals (a device mapping never grows:
    ``EFAULT``; ``MREMAP_DONTUNMAP``: ``EINVAL``), else the records follow the real call
    (a shrink's tail goes; a move to ``new_addr`` moves them).  Bad arguments and real
    memory: the real call answers, the records stay."""
    if not c.proc.mappings:
        return CONTINUE
    addr, old_len, flags = c.args[0], c.args[1], i32(c.args[3])
    try:
        keep = sys_mremap_rules(c.proc, addr, old_len, c.args[2], flags)
    except NotMine:
        return CONTINUE
    if flags & MREMAP_FIXED:
        move(c.proc, addr, page_align(c.args[2]), page_align(old_len), c.args[4])
    elif keep < page_align(old_len):
        unmap(c.proc, addr + keep, page_align(old_len) - keep)
    return CONTINUE


def sys_mprotect(c: Call) -> Result:
    """A mock mapping's ``VM_MAY*`` rules (``EACCES``), then the real call on its pieces."""
    with contextlib.suppress(NotMine):
        c.proc.sys_mprotect(c.args[0], c.args[1], u32(c.args[2]))
    return CONTINUE


def sys_madvise(c: Call) -> Result:
    """The kernel's answer for a mock mapping (device memory: the memfd under it is
    never advised); the advice with a real effect on the mapping itself then runs.
    ``MADV_REMOVE`` of real memory (trapped anywhere): pinned pages of the memfds it
    punches move first (``punch.py``)."""
    advice = i32(c.args[2])
    try:
        c.proc.sys_madvise(c.args[0], c.args[1], advice)
    except NotMine:
        if advice == MADV_REMOVE:
            punch.before_madv_remove(c, c.args[0], c.args[1])
        return CONTINUE
    return CONTINUE if advice in MADV_REAL_EFFECT else 0


def sys_fallocate(c: Call) -> Result:
    """A mock fd: the mock's ``vfs_fallocate``.  A real one: a punch of a memfd whose
    pages a driver pinned moves those pages first (``punch.py``); then the real call."""
    fd, mode, offset, length = i32(c.args[0]), i32(c.args[1]), s64(c.args[2]), s64(c.args[3])
    if fd in c.proc.files:
        c.proc.sys_fallocate(fd, mode, offset, length)
        return 0
    punch.before_fallocate(c, fd, mode, offset, length)
    return CONTINUE


def sys_msync(c: Call) -> Result:
    """The file's ``->fsync`` for ``MS_SYNC`` of a shared mock mapping."""
    try:
        c.proc.sys_msync(c.args[0], c.args[1], i32(c.args[2]))
    except NotMine:
        return CONTINUE
    return 0


# -- changes to the kernel's trees (mkdir, unlink, rename: namei.py's rules) --------------
def _tree_path(c: Call, dirfd: int, addr: int) -> str | None:
    """The absolute path a change names, if it is in the kernel's trees (else None)."""
    return paths.resolve(c, dirfd, paths.read_path(addr))


def _tree_change(c: Call, dirfd: int, addr: int, change: Callable[[str], None]) -> Result:
    """Run ``change`` on the absolute path if it is in the kernel's trees, else the real
    call (also when the kernel says the path is not its: ``NotMine``)."""
    p = _tree_path(c, dirfd, addr)
    if p is None:
        return CONTINUE
    try:
        change(p)
    except NotMine:
        return CONTINUE
    return 0


def _mkdirat(c: Call, dirfd: int, addr: int, mode: int) -> Result:
    return _tree_change(c, dirfd, addr, lambda p: c.proc.sys_mkdirat(paths.AT_FDCWD, p, mode))


def _unlinkat(c: Call, dirfd: int, addr: int, flags: int) -> Result:
    return _tree_change(c, dirfd, addr, lambda p: c.proc.sys_unlinkat(paths.AT_FDCWD, p, flags))


def _renameat2(c: Call, olddirfd: int, old: int, newdirfd: int, new: int, flags: int) -> Result:
    src, dst = _tree_path(c, olddirfd, old), _tree_path(c, newdirfd, new)
    if src is None and dst is None:
        return CONTINUE
    if src is None or dst is None:
        raise kerr(EXDEV)  # between the kernel's trees and a host filesystem
    try:
        c.proc.sys_renameat2(paths.AT_FDCWD, src, paths.AT_FDCWD, dst, flags)
    except NotMine:
        return CONTINUE
    return 0


def sys_mkdir(c: Call) -> Result:
    return _mkdirat(c, paths.AT_FDCWD, c.args[0], u32(c.args[1]))


def sys_mkdirat(c: Call) -> Result:
    return _mkdirat(c, i32(c.args[0]), c.args[1], u32(c.args[2]))


def sys_unlink(c: Call) -> Result:
    return _unlinkat(c, paths.AT_FDCWD, c.args[0], 0)


def sys_rmdir(c: Call) -> Result:
    return _unlinkat(c, paths.AT_FDCWD, c.args[0], _AT_REMOVEDIR)


def sys_unlinkat(c: Call) -> Result:
    return _unlinkat(c, i32(c.args[0]), c.args[1], i32(c.args[2]))


def sys_rename(c: Call) -> Result:
    return _renameat2(c, paths.AT_FDCWD, c.args[0], paths.AT_FDCWD, c.args[1], 0)


def sys_renameat(c: Call) -> Result:
    return _renameat2(c, i32(c.args[0]), c.args[1], i32(c.args[2]), c.args[3], 0)


def sys_renameat2(c: Call) -> Result:
    args = c.args
    return _renameat2(c, i32(args[0]), args[1], i32(args[2]), args[3], u32(args[4]))


_AT_REMOVEDIR = 0x200


# -- poll (see pollsys.py) ------------------------------------------------------------------
def sys_poll(c: Call) -> Result:
    ms = i32(c.args[2])
    return pollsys.do_poll(c, c.args[0], u32(c.args[1]), None if ms < 0 else ms / 1000)


def sys_ppoll(c: Call) -> Result:
    return pollsys.do_poll(c, c.args[0], u32(c.args[1]), pollsys.ppoll_timeout(c.args[2]))


def sys_select(c: Call) -> Result:
    sets = (c.args[1], c.args[2], c.args[3])
    return pollsys.do_select(c, i32(c.args[0]), sets, c.args[4], usec=True)


def sys_pselect6(c: Call) -> Result:
    sets = (c.args[1], c.args[2], c.args[3])
    return pollsys.do_select(c, i32(c.args[0]), sets, c.args[4], usec=False)


def sys_epoll_ctl(c: Call) -> Result:
    return epollsys.do_epoll_ctl(c, c.sv.epoll)


# -- SCM_RIGHTS (see scm.py) -----------------------------------------------------------------
def sys_sendmsg(c: Call) -> Result:
    """On a mock socket (NETLINK_RDMA) the socket's own; on a real one, SCM_RIGHTS of mock
    fds (``scm.py``; no mock fd in it: the real call)."""
    if i32(c.args[0]) in c.proc.files:
        return netsock.sys_sendmsg(c)
    return scm.do_sendmsg(c, c.sv.scm)


def sys_recvmsg(c: Call) -> Result:
    """On a mock socket the socket's own; on a real AF_UNIX one, mock fds in flight."""
    if i32(c.args[0]) in c.proc.files:
        return netsock.sys_recvmsg(c)
    return scm.do_recvmsg(c, c.sv.scm)


def sys_sendmmsg(c: Call) -> Result:
    """``sendmsg`` per message on a mock socket, or of a vector carrying a mock fd."""
    return scm.do_sendmmsg(c, c.sv.scm)


def sys_recvmmsg(c: Call) -> Result:
    """``recvmsg`` per message on a mock socket, or while a mock fd is in flight."""
    return scm.do_recvmmsg(c, c.sv.scm)


# -- paths (see paths.py for mock-or-real) ------------------------------------------------
def sys_openat(c: Call) -> Result:
    return paths.openat(c, i32(c.args[0]), c.args[1], i32(c.args[2]), u32(c.args[3]))


def sys_open(c: Call) -> Result:
    return paths.openat(c, paths.AT_FDCWD, c.args[0], i32(c.args[1]), u32(c.args[2]))


def sys_openat2(c: Call) -> Result:
    return paths.openat2(c)


def sys_newfstatat(c: Call) -> Result:
    flags = i32(c.args[3])
    st = paths.stat(c, i32(c.args[0]), c.args[1], flags)
    if st is None:
        return CONTINUE
    copy_to_user(c.args[2], stat_bytes(st))
    return 0


def sys_stat(c: Call) -> Result:
    st = paths.stat(c, paths.AT_FDCWD, c.args[0], 0)
    if st is None:
        return CONTINUE
    copy_to_user(c.args[1], stat_bytes(st))
    return 0


def sys_lstat(c: Call) -> Result:
    st = paths.stat(c, paths.AT_FDCWD, c.args[0], paths.AT_SYMLINK_NOFOLLOW)
    if st is None:
        return CONTINUE
    copy_to_user(c.args[1], stat_bytes(st))
    return 0


# struct statfs (x86-64): f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree,
# f_fsid, f_namelen, f_frsize, f_flags, f_spare[4]
_STATFS = struct.Struct("<qqQQQQQiiqqq32x")
_DMA_BUF_MAGIC, _SOCKFS_MAGIC, _ANON_INODE_FS_MAGIC = 0x444D4142, 0x534F434B, 0x09041934
_ST_VALID = 0x20
#: the mounts of the mock's trees, longest first (a path's own mount answers statfs)
_MOUNTS = ("/sys/kernel/debug", "/sys", "/dev", "/proc")


def _statfs_bytes(file_path: str | None, file: File | None) -> bytes:
    """``struct statfs`` of a mock file: a node of the trees is on the host's mount there
    (sysfs, devtmpfs, procfs, debugfs: the host's own ``statfs`` of it); an anonymous
    file is on its pseudo filesystem (``simple_statfs``: its magic, 4 KiB blocks, 255-byte
    names, nothing else) -- a dma-buf on dmabuf's (``DMA_BUF_MAGIC``), a socket on sockfs,
    the rest on anon_inodefs."""
    if file_path is not None:
        for mount in _MOUNTS:
            if file_path == mount or file_path.startswith(mount + "/"):
                buf = ctypes.create_string_buffer(_STATFS.size)
                if ctypes.CDLL(None).statfs(mount.encode(), buf) == 0:
                    return buf.raw
                break  # (not mounted on the host: debugfs without root)
    if file is not None and file.f_op is dma_buf_fops:
        magic = _DMA_BUF_MAGIC
    elif file is not None and stat.S_ISSOCK(file.inode.mode):
        magic = _SOCKFS_MAGIC
    else:
        magic = _ANON_INODE_FS_MAGIC
    return _STATFS.pack(magic, PAGE_SIZE, 0, 0, 0, 0, 0, 0, 0, 255, PAGE_SIZE, _ST_VALID)


def sys_fstatfs(c: Call) -> Result:
    """``fstatfs`` of a mock fd: its filesystem's (never the placeholder memfd's tmpfs)."""
    fd = c.mock_fd()
    if fd is None:
        return CONTINUE
    file = c.proc.files[fd]
    copy_to_user(c.args[1], _statfs_bytes(file.path, file))
    return 0


def sys_statfs(c: Call) -> Result:
    """``statfs`` of a mock path: the host's mount it is under; what the mock lacks
    under a mock directory: ``ENOENT`` (``ENOTDIR`` under a file, as the lookup says)."""
    st = paths.stat(c, paths.AT_FDCWD, c.args[0], 0)
    if st is None:
        return CONTINUE
    p = paths.resolve(c, paths.AT_FDCWD, paths.read_path(c.args[0]))
    copy_to_user(c.args[1], _statfs_bytes(p, None))
    return 0


def sys_statx(c: Call) -> Result:
    paths.statx_flags(i32(c.args[2]), u32(c.args[3]))
    st = paths.stat(c, i32(c.args[0]), c.args[1], i32(c.args[2]))
    if st is None:
        return CONTINUE
    copy_to_user(c.args[4], statx_bytes(st))
    return 0


def sys_access(c: Call) -> Result:
    return paths.access(c, paths.AT_FDCWD, c.args[0], i32(c.args[1]), 0)


def sys_faccessat(c: Call) -> Result:
    return paths.access(c, i32(c.args[0]), c.args[1], i32(c.args[2]), 0)


def sys_faccessat2(c: Call) -> Result:
    return paths.access(c, i32(c.args[0]), c.args[1], i32(c.args[2]), i32(c.args[3]))


def sys_readlink(c: Call) -> Result:
    return paths.readlink(c, paths.AT_FDCWD, c.args[0], c.args[1], i32(c.args[2]))


def sys_readlinkat(c: Call) -> Result:
    return paths.readlink(c, i32(c.args[0]), c.args[1], c.args[2], i32(c.args[3]))


# -- the working directory (see paths.chdir) -------------------------------------------------
def sys_chdir(c: Call) -> Result:
    return paths.chdir(c, paths.read_path(c.args[0]))


def sys_fchdir(c: Call) -> Result:
    """A mock directory fd: the cwd becomes its directory; a mock fd of another kind:
    ``ENOTDIR``; a real fd: the real call (leaving a mock cwd when it is a directory)."""
    fd = i32(c.args[0])
    file = c.proc.files.get(fd)
    if file is None:
        return paths.host_cwd(c, fd >= 0 and real_fd_is_dir(c.proc.pid, fd))
    if file.path is None or not stat.S_ISDIR(file.inode.mode):
        raise kerr(ENOTDIR)  # (an O_PATH directory fd is a directory too)
    return paths.enter(c, file.path)


def sys_getcwd(c: Call) -> Result:
    """A mock cwd: its path (``ERANGE`` when ``size`` is too small, as Linux)."""
    cwd = c.sv.cwd.get(c.proc.pid)
    if cwd is None:
        return CONTINUE
    data = os.fsencode(cwd) + b"\0"
    if c.args[1] < len(data):
        raise kerr(ERANGE)
    copy_to_user(c.args[0], data)
    return len(data)


# -- extended attributes (see attrs.py) ---------------------------------------------------
def sys_getxattr(c: Call) -> Result:
    return attrs.getxattr(c, 0, True)


def sys_lgetxattr(c: Call) -> Result:
    return attrs.getxattr(c, 0, False)


def sys_fgetxattr(c: Call) -> Result:
    return attrs.getxattr(c, None, True)


def sys_listxattr(c: Call) -> Result:
    return attrs.listxattr(c, 0, True)


def sys_llistxattr(c: Call) -> Result:
    return attrs.listxattr(c, 0, False)


def sys_flistxattr(c: Call) -> Result:
    return attrs.listxattr(c, None, True)


_S, _P, _U = "supported", "partial", "unimplemented"
TABLE: Mapping[int, Syscall] = MappingProxyType(
    {
        s.nr: s
        for s in (
            Syscall("read", _S, sys_read),
            Syscall("write", _S, sys_write),
            Syscall("open", _S, sys_open),
            Syscall("close", _S, sys_close, "mock close, then the real close of the placeholder"),
            Syscall("stat", _S, sys_stat),
            Syscall("fstat", _S, sys_fstat),
            Syscall("statfs", _S, sys_statfs, "the host's mount of the path's tree"),
            Syscall("fstatfs", _S, sys_fstatfs, "a dma-buf: DMA_BUF_MAGIC; anon inodes, sockets"),
            Syscall("lstat", _S, sys_lstat),
            Syscall("poll", _S, sys_poll, "mock fds by ->poll, real ones waited on in slices"),
            Syscall("lseek", _S, sys_lseek),
            Syscall("mmap", _S, sys_mmap, "any layout: TRACE stop, pieces laid by injected calls"),
            Syscall("munmap", _S, sys_munmap, "the records go, then the real munmap"),
            Syscall(
                "mremap",
                _S,
                sys_mremap,
                "a mock mapping: growing EFAULT, DONTUNMAP EINVAL (VM_PFNMAP); shrunk or moved,"
                " its records follow",
            ),
            Syscall(
                "mprotect", _P, sys_mprotect, "trapped in the mapping window only (not MAP_FIXED)"
            ),
            Syscall(
                "madvise",
                _P,
                sys_madvise,
                "trapped in the mapping window only (not MAP_FIXED); MADV_REMOVE anywhere: "
                "pinned pages of a punched memfd move first",
            ),
            Syscall("msync", _P, sys_msync, "trapped in the mapping window only (not MAP_FIXED)"),
            Syscall(
                "ioctl",
                _S,
                sys_ioctl,
                "pointers read in the child; SIOCGIF* & co. on any socket: the mock's devices",
            ),
            Syscall("pread64", _S, sys_pread64),
            Syscall("pwrite64", _S, sys_pwrite64),
            Syscall("readv", _S, sys_readv),
            Syscall("writev", _S, sys_writev),
            Syscall("access", _P, sys_access, "checked with the caller's real ids"),
            Syscall("dup", _S, sys_dup, "ADDFD: Linux's lowest free number"),
            Syscall("dup2", _S, sys_dup2, "ADDFD with SETFD"),
            Syscall("fcntl", _S, sys_fcntl, "F_GETFD/F_SETFD also run on the placeholder"),
            Syscall("fsync", _S, sys_fsync),
            Syscall("flock", _S, sys_flock, "the open file description's lock (filelock.py)"),
            Syscall("fchmod", _S, sys_fchmod),
            Syscall("fchown", _S, sys_fchown),
            Syscall("fadvise64", _S, sys_fadvise64, "no page cache: a known advice does nothing"),
            Syscall("sendfile", _U, sys_sendfile, "into a mock TCP socket: sent; else EINVAL"),
            Syscall(
                "splice",
                _P,
                sys_splice,
                "a pipe with a mock TCP socket or sysfs file: moved (syscalls/splice.py); "
                "other mock files: EINVAL (no splice ops)",
            ),
            Syscall("tee", _U, sys_tee, "EINVAL: only two pipes tee"),
            Syscall("vmsplice", _U, sys_vmsplice, "EBADF: not a pipe"),
            Syscall(
                "copy_file_range",
                _U,
                _no_splice("copy_file_range", (0, 2), EINVAL),
                "EINVAL: not a regular file",
            ),
            Syscall(
                "sync_file_range",
                _U,
                _no_splice("sync_file_range", (0,), ESPIPE),
                "ESPIPE: not a regular file",
            ),
            Syscall("readahead", _U, _no_splice("readahead", (0,), EINVAL), "EINVAL: no mapping"),
            Syscall("fdatasync", _S, sys_fdatasync),
            Syscall("ftruncate", _S, sys_ftruncate),
            Syscall("readlink", _S, sys_readlink),
            Syscall("rename", _S, sys_rename, "in the kernel's trees: namei's rules"),
            Syscall("mkdir", _S, sys_mkdir, "in the kernel's trees: namei's rules"),
            Syscall("rmdir", _S, sys_rmdir, "in the kernel's trees: namei's rules"),
            Syscall("unlink", _S, sys_unlink, "in the kernel's trees: namei's rules"),
            Syscall("mkdirat", _S, sys_mkdirat, "in the kernel's trees: namei's rules"),
            Syscall("unlinkat", _S, sys_unlinkat, "in the kernel's trees: namei's rules"),
            Syscall("renameat", _S, sys_renameat, "across the trees and a host fs: EXDEV"),
            Syscall("renameat2", _S, sys_renameat2, "across the trees and a host fs: EXDEV"),
            Syscall(
                "getdents64",
                _S,
                sys_getdents64,
                "owned mock dirs open and list (`/sys/bus/pci/devices`)",
            ),
            Syscall("openat", _S, sys_openat),
            Syscall("newfstatat", _S, sys_newfstatat, "AT_EMPTY_PATH included"),
            Syscall("readlinkat", _S, sys_readlinkat),
            Syscall("ppoll", _P, sys_ppoll, "as poll; the signal mask is not applied"),
            Syscall(
                "epoll_ctl", _P, sys_epoll_ctl, "a mock fd: an eventfd mirrors its ->poll (IN, OUT)"
            ),
            Syscall("getcwd", _S, sys_getcwd, "a mock cwd answers its path"),
            Syscall(
                "chdir",
                _P,
                sys_chdir,
                "into a mock directory; a relative path out of one to a host directory "
                "outside /dev, /sys, /proc: ENOENT",
            ),
            Syscall("fchdir", _S, sys_fchdir, "a mock directory fd"),
            Syscall(
                "getxattr", _S, sys_getxattr, "stored on devtmpfs/sysfs inodes; else Linux's errno"
            ),
            Syscall("lgetxattr", _S, sys_lgetxattr, "as getxattr, the link itself"),
            Syscall("fgetxattr", _S, sys_fgetxattr, "devtmpfs, sysfs, procfs or an anon inode"),
            Syscall("listxattr", _S, sys_listxattr, "nothing listed (no LSM labels)"),
            Syscall("llistxattr", _S, sys_llistxattr),
            Syscall("flistxattr", _P, sys_flistxattr, "a mock socket lists no sockprotoname"),
            Syscall("sendmsg", _P, sys_sendmsg, "SCM_RIGHTS of mock fds (tokens); mock sockets"),
            Syscall(
                "recvmsg",
                _P,
                sys_recvmsg,
                "AF_UNIX tokens in flight; mock sockets (SCM_DEVMEM_* cmsgs; TCP blocks as Linux)",
            ),
            Syscall("sendmmsg", _P, sys_sendmmsg, "as sendmsg, message by message"),
            Syscall(
                "recvmmsg",
                _P,
                sys_recvmmsg,
                "as recvmsg, message by message; the timeout is not applied",
            ),
            Syscall("select", _S, sys_select, "as poll, with fs/select.c's masks"),
            Syscall("pselect6", _P, sys_pselect6, "as select; the signal mask is not applied"),
            Syscall(
                "unshare",
                _P,
                sys_unshare,
                "CLONE_FILES of a process sharing its table; a thread's own table is not modelled",
            ),
            Syscall("faccessat", _P, sys_faccessat, "checked with the caller's real ids"),
            Syscall("dup3", _S, sys_dup3),
            Syscall("preadv", _S, sys_preadv),
            Syscall("pwritev", _S, sys_pwritev),
            Syscall("preadv2", _S, sys_preadv2),
            Syscall("pwritev2", _S, sys_pwritev2),
            Syscall("statx", _P, sys_statx, "the basic stats only"),
            Syscall("close_range", _S, sys_close_range, "CLOSE_RANGE_UNSHARE: a table of its own"),
            Syscall(
                "openat2",
                _P,
                sys_openat2,
                "open_how checked; a mock path: every RESOLVE_* applied (NO_XDEV: the mock's"
                " trees are mounts of their own)",
            ),
            Syscall("faccessat2", _S, sys_faccessat2, "AT_EACCESS: effective ids; AT_EMPTY_PATH"),
            Syscall(
                "fallocate",
                _S,
                sys_fallocate,
                "a real memfd's punch: the pages a udmabuf pinned move to the kernel first",
            ),
            # netlink sockets are the mock's (netsock.py); an AF_INET stream socket becomes
            # the mock's when bound or connected to a mock NIC address (tcpsock.py)
            Syscall("socket", _P, netsock.sys_socket, "AF_NETLINK ROUTE, GENERIC and RDMA"),
            Syscall(
                "bind",
                _S,
                netsock.sys_bind,
                "a TCP socket bound to a mock NIC address becomes the mock's (ADDFD+SETFD)",
            ),
            Syscall(
                "connect",
                _P,
                netsock.sys_connect,
                "netlink: to the kernel (port 0); TCP: to a listener on a mock NIC address",
            ),
            Syscall("listen", _S, netsock.sys_listen, "mock TCP; on INADDR_ANY/:: also the mock's"),
            Syscall("shutdown", _S, netsock.sys_shutdown, "mock TCP sockets (SHUT_WR: a FIN)"),
            Syscall("accept", _S, netsock.sys_accept, "mock TCP listeners; blocks as Linux"),
            Syscall("accept4", _S, netsock.sys_accept4, "as accept, SOCK_NONBLOCK/SOCK_CLOEXEC"),
            Syscall("getsockname", _S, netsock.sys_getsockname),
            Syscall("getpeername", _S, netsock.sys_getpeername),
            Syscall(
                "setsockopt",
                _S,
                netsock.sys_setsockopt,
                "TCP: SO_DEVMEM_DONTNEED the kernel's, other options the host socket's",
            ),
            Syscall(
                "getsockopt",
                _S,
                netsock.sys_getsockopt,
                "TCP: SO_ACCEPTCONN; others the host socket's",
            ),
            Syscall("sendto", _S, netsock.sys_sendto),
            Syscall("recvfrom", _P, netsock.sys_recvfrom, "TCP blocks as Linux; netlink never"),
            # attributes of mock paths and fds (attrs.py; the rules: syscalls/attr.py, xattr.py)
            *(Syscall(*entry) for entry in attrs.ENTRIES),
        )
    }
)

#: calls that reach a file but are not trapped: the child's real kernel runs them on the
#: placeholder (a sealed empty memfd) -- documented limits, listed in the support table
NOT_TRAPPED: Mapping[str, str] = MappingProxyType(
    {
        "mprotect/madvise/msync outside the mapping window": "a mock mapping the program "
        "placed with MAP_FIXED: they act on its real pages (the backing files)",
        "io_uring_setup": "refused (ENOSYS, as without CONFIG_IO_URING) for the whole tree: "
        "io_uring's operations bypass seccomp",
    }
)


_FD_ONLY = ("read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
            "preadv2", "pwritev2", "lseek", "fstat", "fsync", "fdatasync", "ftruncate",
            "ioctl", "fcntl", "dup", "getdents64", "flock", "fchmod", "fchown", "fadvise64",
            "sync_file_range", "readahead", "accept", "accept4", "shutdown",
            "getsockname", "getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom",
            "fgetxattr", "flistxattr", "fstatfs", *attrs.FD_ONLY)  # fmt: skip


_PATH_ARGS: Mapping[str, tuple[int, int | None]] = MappingProxyType({
    "open": (0, None), "stat": (0, None), "lstat": (0, None), "access": (0, None),
    "readlink": (0, None), "statfs": (0, None), "openat": (1, 0), "newfstatat": (1, 0),
    "readlinkat": (1, 0),
    "faccessat": (1, 0), "faccessat2": (1, 0), "statx": (1, 0),
    # (not openat2: with RESOLVE_IN_ROOT an absolute path is taken inside its dirfd)
    "getxattr": (0, None), "lgetxattr": (0, None), "listxattr": (0, None),
    "mkdir": (0, None), "rmdir": (0, None), "unlink": (0, None), "mkdirat": (1, 0),
    "unlinkat": (1, 0),
    "llistxattr": (0, None), **attrs.PATH_ARGS,
})  # fmt: skip
_QUICK: Mapping[str, Callable[[Process, tuple[int, ...]], bool]] = MappingProxyType(
    {
        "sendmsg": scm.quick_sendmsg,
        "recvmsg": scm.quick_recvmsg,
        "unshare": _quick_unshare,
        "sendmmsg": scm.quick_sendmmsg,
        "bind": tcpsock.quick_bind,
        "connect": tcpsock.quick_bind,
        "listen": tcpsock.quick_listen,
        "fallocate": punch.quick_fallocate,
    }
)


def _with_fd_args(entries: Mapping[int, Syscall]) -> Mapping[int, Syscall]:
    """Mark the calls about one fd alone (``fd_arg``): a real fd there skips the
    handler; the path calls (``path_arg``) and the quick tests likewise."""
    out = {}
    for nr, s in entries.items():
        fd_arg = 0 if s.name in _FD_ONLY else 4 if s.name == "mmap" else None
        out[nr] = replace(
            s, fd_arg=fd_arg, path_arg=_PATH_ARGS.get(s.name), quick=_QUICK.get(s.name)
        )
    return MappingProxyType(out)


TABLE = _with_fd_args(TABLE)


def support_table() -> str:
    """The Markdown support table of ``docs/supervisor.md`` (generated; a test checks it)."""
    lines = ["| nr | syscall | on a mock fd or path | note |", "|---:|---|---|---|"]
    for nr in sorted(TABLE):
        s = TABLE[nr]
        lines.append(f"| {nr} | `{s.name}` | {s.status} | {s.note} |")
    lines += [
        "",
        "Not trapped (the real kernel runs them; on a mock fd it sees the placeholder):",
        "",
    ]
    lines += [f"- `{name}`: {why}" for name, why in NOT_TRAPPED.items()]
    return "\n".join(lines) + "\n"
