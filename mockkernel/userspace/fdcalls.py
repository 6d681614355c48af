"""The redirection's fd family beyond the hot six: ``os.dup/dup2/pread/pwrite/lseek``,
vectored I/O, ``fsync``/``fdatasync``/``ftruncate``, ``closerange``, ``get/set_blocking``
and ``fcntl.fcntl``.  A mock fd goes to ``Process.sys_*``; any other fd to the real
function, untouched."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Callable
from errno import EACCES, EBADF, EINVAL
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..fs import FMODE_READ, FMODE_WRITE
from ..net.tcp_sock import tcp_sendfile, tcp_splice_read, tcp_splice_write
from ..realfd import HeldFds, held_numbers
from ..syscalls import rw
from ..syscalls import splice as rw_splice
from ..syscalls.fd import FLOCK_FMT
from ..uaccess import MAX_RW_COUNT
from .fastcalls import NO_ARG as _NO_ARG
from .hotpath import as_fd

if TYPE_CHECKING:
    from .redirect import Redirection

__all__ = ["FCNTL_BUFSZ", "FdCalls", "iovec", "scatter"]

FCNTL_BUFSZ = 1024  # CPython's fcntl.fcntl buffer


def iovec(buffers: Any, name: str, writable: bool) -> list[memoryview]:
    """The buffers of ``os.readv``/``writev``-like calls, checked as CPython's ``iov_setup``."""
    if isinstance(buffers, dict) or not hasattr(type(buffers), "__getitem__"):
        raise TypeError(f"{name}() arg 2 must be a sequence")
    views = []
    for i in range(len(buffers)):
        mv = memoryview(buffers[i])
        if writable and mv.readonly:
            raise TypeError(f"{name}() arg 2 must be a sequence of writable buffers")
        views.append(mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv)
    return views


def scatter(data: bytes, views: list[memoryview]) -> int:
    """Copy ``data`` into ``views`` in order (what ``readv`` does); the bytes copied."""
    pos = 0
    for mv in views:
        take = min(len(mv), len(data) - pos)
        if take <= 0:
            break
        mv[:take] = data[pos : pos + take]
        pos += take
    return pos


class FdCalls:
    """The fd-family replacements of one redirection (bound methods)."""

    def __init__(self, redir: Redirection) -> None:
        self.proc = redir.proc
        self.files = redir.proc.files
        self.real: Any = redir.real
        self.more = redir.real_more
        self.scratch = redir.scratch
        self.tracer = redir.kernel.tracer
        #: the real fds the kernel holds: not the program's to close, dup or keep
        self.held = redir.kernel.subsys(HeldFds)
        # what the fast paths read (a real fd: one membership test, then the real call)
        self._held = held_numbers(redir.kernel)
        self._real_dup: Callable[[int], int] = redir.real.dup
        self._real_lseek: Callable[[int, int, int], int] = redir.real.lseek
        self._real_fcntl: Callable[..., Any] = redir.real.fcntl

    # -- a TCP socket the kernel made mock (hotpath: after a real ENOTCONN/EPIPE) -------
    def notconn_read(self, fd: int, n: int, e: OSError) -> bytes:
        """A real read said ENOTCONN: the fd may be a TCP socket the kernel made mock
        (bound to a NIC address), whose real socket underneath never connects."""
        reader = self.proc.fd_readers.get(fd)
        if reader is None:
            raise e
        return reader(n)

    def notconn_write(self, fd: int, data: Any, e: OSError) -> int:
        """A real write said EPIPE: the same, for writes (an unconnected TCP socket)."""
        writer = self.proc.fd_writers.get(fd)
        if writer is None:
            raise e
        return writer(bytes(data))

    # -- dup, positioned I/O, lseek ---------------------------------------------------------
    def dup(self, fd: int) -> int:
        if fd in self.files:
            return self.proc.sys_fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)
        if fd in self._held:
            raise kerr(EBADF)  # the kernel's, not the program's
        return self._real_dup(fd)

    def dup2(self, fd: int, fd2: int, inheritable: bool = True) -> int:
        proc = self.proc
        if fd in self.files:
            if inheritable:
                return proc.sys_dup2(fd, fd2)
            return proc.sys_dup3(fd, fd2, os.O_CLOEXEC)
        if self.held.held(fd):
            raise kerr(EBADF)
        if self.held.held(fd2) and fd != fd2:
            self.held.give_up(fd2)  # the number is the program's to take: the kernel's fd moves
        res = int(self.real.dup2(fd, fd2, inheritable))
        if fd2 in self.files:
            proc.forget_fd(fd2)
        return res

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        if fd in self.files:
            if n < 0:
                raise kerr(EINVAL)
            return self.proc.sys_pread(fd, n, offset)
        return self.real.pread(fd, n, offset)  # type: ignore[no-any-return]

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        if fd in self.files:
            return self.proc.sys_pwrite(fd, bytes(data), offset)
        return int(self.real.pwrite(fd, data, offset))

    def lseek(self, fd: int, pos: int, how: int) -> int:
        if fd not in self.files:
            return self._real_lseek(fd, pos, how)
        if self.tracer.enabled:
            return self.proc.sys_lseek(fd, pos, how)
        return rw.sys_lseek(self.proc, fd, pos, how)  # (Process.sys_lseek untraced)

    # -- vectored I/O ------------------------------------------------------------------------
    def readv(self, fd: int, buffers: Any, /) -> int:
        if fd in self.files:
            views = iovec(buffers, "readv", True)
            data = self.proc.sys_readv(fd, sum(map(len, views)), None, 0)
            return scatter(data, views)
        return int(self.more["readv"](fd, buffers))

    def preadv(self, fd: int, buffers: Any, offset: int, flags: int = 0, /) -> int:
        if fd in self.files:
            views = iovec(buffers, "preadv", True)
            data = self.proc.sys_readv(fd, sum(map(len, views)), offset, flags)
            return scatter(data, views)
        return int(self.more["preadv"](fd, buffers, offset, flags))

    def writev(self, fd: int, buffers: Any, /) -> int:
        if fd in self.files:
            views = iovec(buffers, "writev", False)
            return self.proc.sys_writev(fd, b"".join(views), None, 0)
        return int(self.more["writev"](fd, buffers))

    def pwritev(self, fd: int, buffers: Any, offset: int, flags: int = 0, /) -> int:
        if fd in self.files:
            views = iovec(buffers, "pwritev", False)
            return self.proc.sys_writev(fd, b"".join(views), offset, flags)
        return int(self.more["pwritev"](fd, buffers, offset, flags))

    # -- fsync, ftruncate, closerange, blocking, fcntl ------------------------------------
    def fsync(self, fd: Any) -> None:
        n = fd if type(fd) is int else as_fd(fd)
        if n in self.files:
            self.proc.sys_fsync(n, datasync=False)
            return
        self.more["fsync"](fd)

    def fdatasync(self, fd: Any) -> None:
        n = fd if type(fd) is int else as_fd(fd)
        if n in self.files:
            self.proc.sys_fsync(n, datasync=True)
            return
        self.more["fdatasync"](fd)

    def ftruncate(self, fd: int, length: int, /) -> None:
        if fd in self.files:
            self.proc.sys_ftruncate(fd, length)
            return
        self.more["ftruncate"](fd, length)

    def closerange(self, fd_low: int, fd_high: int, /) -> None:
        """Close mock fds in the range through the kernel, real ones for real; the real
        fds the kernel holds are not the program's and stay open."""
        real_closerange = self.more["closerange"]
        lo = max(fd_low, 0)
        held = self.held.fds()
        for fd in sorted(n for n in (*self.files, *held) if lo <= n < fd_high):
            if lo < fd:
                real_closerange(lo, fd)
            if fd not in held:
                with contextlib.suppress(OSError):
                    self.proc.sys_close(fd)
            lo = fd + 1
        if lo < fd_high:
            real_closerange(lo, fd_high)

    def get_blocking(self, fd: int, /) -> bool:
        if fd in self.files:
            return not self.proc.sys_fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        return bool(self.more["get_blocking"](fd))

    def set_blocking(self, fd: int, blocking: bool, /) -> None:
        if fd in self.files:
            flags = self.proc.sys_fcntl(fd, fcntl.F_GETFL)
            flags = flags & ~os.O_NONBLOCK if blocking else flags | os.O_NONBLOCK
            self.proc.sys_fcntl(fd, fcntl.F_SETFL, flags)
            return
        self.more["set_blocking"](fd, blocking)

    def fcntl(self, fd: Any, cmd: int, arg: Any = _NO_ARG, /) -> Any:
        """``fcntl.fcntl``: an int argument is a C ``int``; a buffer (a ``struct flock``,
        ``struct f_owner_ex``, a hint) of at most 1024 bytes is copied into the scratch
        buffer, its address passed, and the bytes after the call returned, as CPython does.
        A real fd's call is the real one with the caller's arguments (none given: none
        passed, as CPython's own default 0 is cheaper than a 0 it must parse)."""
        if type(fd) is int and fd not in self.files:
            if arg is _NO_ARG:
                return self._real_fcntl(fd, cmd)
            return self._real_fcntl(fd, cmd, arg)
        if arg is _NO_ARG:
            arg = 0
        n = fd if type(fd) is int else as_fd(fd)
        if n not in self.files:
            return self.real.fcntl(fd, cmd, arg)
        if isinstance(arg, int):  # (CPython's "I" format: masked to an unsigned int)
            return self.proc.sys_fcntl(n, cmd, arg & 0xFFFFFFFF)
        if isinstance(arg, str):
            arg = arg.encode()
        mv = memoryview(arg).cast("B")
        if mv.nbytes > FCNTL_BUFSZ:
            raise ValueError("fcntl argument 3 is too long")
        addr, sview = self.scratch.t
        length = mv.nbytes
        sview[:length] = mv
        sview[length] = 0
        self.proc.sys_fcntl(n, cmd, addr)
        return bytes(sview[:length])

    # -- locks, attributes, space, statfs ------------------------------------------------
    def flock(self, fd: Any, operation: int, /) -> None:
        n = fd if type(fd) is int else as_fd(fd)
        if n in self.files:
            self.proc.sys_flock(n, operation)
            return
        self.more["flock"](fd, operation)

    def lockf(self, fd: Any, cmd: int, len: int = 0, start: int = 0, whence: int = 0, /) -> Any:
        """``fcntl.lockf``: CPython's ``fcntl(F_SETLK[W])`` with a ``struct flock``."""
        n = fd if type(fd) is int else as_fd(fd)
        if n not in self.files:
            return self.more["lockf"](fd, cmd, len, start, whence)
        if cmd == fcntl.LOCK_UN:
            typ = fcntl.F_UNLCK
        elif cmd & fcntl.LOCK_SH:
            typ = fcntl.F_RDLCK
        elif cmd & fcntl.LOCK_EX:
            typ = fcntl.F_WRLCK
        else:
            raise ValueError("unrecognized lockf argument")
        op = fcntl.F_SETLK if cmd & fcntl.LOCK_NB else fcntl.F_SETLKW
        self.fcntl(n, op, struct.pack(FLOCK_FMT, typ, whence, start, len, 0))
        return None

    def os_lockf(self, fd: int, command: int, length: int, /) -> None:
        """``os.lockf``: glibc's ``lockf`` over ``fcntl``, from the current position."""
        if fd not in self.files:
            self.more["os_lockf"](fd, command, length)
            return
        if command == os.F_TEST:
            out = self.fcntl(
                fd, fcntl.F_GETLK, struct.pack(FLOCK_FMT, fcntl.F_RDLCK, 1, 0, length, 0)
            )
            l_type, _w, _s, _l, pid = struct.unpack(FLOCK_FMT, out)
            if l_type != fcntl.F_UNLCK and pid != os.getpid():
                raise kerr(EACCES)
            return
        ops = {
            os.F_ULOCK: (fcntl.F_SETLK, fcntl.F_UNLCK),
            os.F_LOCK: (fcntl.F_SETLKW, fcntl.F_WRLCK),
            os.F_TLOCK: (fcntl.F_SETLK, fcntl.F_WRLCK),
        }
        if command not in ops:
            raise kerr(EINVAL)
        op, typ = ops[command]
        self.fcntl(fd, op, struct.pack(FLOCK_FMT, typ, os.SEEK_CUR, 0, length, 0))

    def fchmod(self, fd: int, mode: int) -> None:
        if fd in self.files:
            self.proc.sys_fchmod(fd, mode)
            return
        self.more["fchmod"](fd, mode)

    def fchown(self, fd: int, uid: int, gid: int) -> None:
        if fd in self.files:
            self.proc.sys_fchown(fd, uid, gid)
            return
        self.more["fchown"](fd, uid, gid)

    def posix_fallocate(self, fd: int, offset: int, len: int, /) -> None:
        """``posix_fallocate``: ``fallocate(fd, 0, ...)``; glibc's write-a-byte-per-block
        fallback for ``EOPNOTSUPP`` is not run on a mock file (it would write into a sysfs
        file): its ``EOPNOTSUPP`` is returned as is."""
        if fd in self.files:
            self.proc.sys_fallocate(fd, 0, offset, len)
            return
        self.more["posix_fallocate"](fd, offset, len)

    def sendfile(self, out_fd: int, in_fd: int, offset: int | None, count: int, /) -> int:
        """``sendfile``: into a TCP socket the kernel made mock (its real socket never
        connects: ``fd_writers`` has it), the kernel's ``tcp_sendfile`` with the same
        rules as under the supervisor; from or into another mock file ``EINVAL`` (no
        splice ops); anything else the real call."""
        writer = self.proc.fd_writers.get(out_fd)
        if out_fd in self.files or in_fd in self.files:
            for fd in (out_fd, in_fd):  # EBADF first, as Linux
                if fd in self.files:
                    self.proc.fdget(fd)
                else:
                    self.real.fstat(fd)
            raise kerr(EINVAL)
        if writer is None:
            return self.more["sendfile"](out_fd, in_fd, offset, count)  # type: ignore[no-any-return]
        in_flags = self.real.fcntl(in_fd, fcntl.F_GETFL)  # (EBADF: not open)
        count = min(count, MAX_RW_COUNT)
        sent, _off = tcp_sendfile(self.tracer, writer, in_fd, in_fd, in_flags, offset, count)
        return sent

    def splice(
        self, src: int, dst: int, count: int, offset_src: int | None = None,
        offset_dst: int | None = None, flags: int = 0,
    ) -> int:  # fmt: skip
        """``os.splice``: with a mock file or a mock TCP socket (``fd_socks``) at one end,
        the kernel's ``sys_splice`` (the rules the supervisor uses too); two real files
        the real call.  A signal whose handler returns restarts it (PEP 475)."""
        socks = self.proc.fd_socks
        if (
            src not in self.files
            and dst not in self.files
            and src not in socks
            and dst not in socks
        ):
            return self.more["splice"](src, dst, count, offset_src, offset_dst, flags)  # type: ignore[no-any-return]
        with contextlib.suppress(OSError):  # CPython's own argument checks (TypeError,
            # ValueError, OverflowError), made by the real call on no fd at all
            self.more["splice"](-1, -1, count, offset_src, offset_dst, flags)
        while True:
            try:
                return rw_splice.sys_splice(
                    self.proc, src, offset_src, dst, offset_dst, count, flags, self._splice_end
                )
            except InterruptedError:
                continue

    def _splice_end(self, fd: int) -> rw_splice.SpliceFile:
        """The end at ``fd``: a mock file, a mock TCP socket, or the real file."""
        ts = self.proc.fd_socks.get(fd)
        if ts is None:
            real = None
            if fd not in self.files:
                try:
                    self.real.fstat(fd)
                    real = fd
                except OSError:
                    pass
            return rw_splice.splice_file(self.proc, fd, real)
        flags = self.real.fcntl(fd, fcntl.F_GETFL)
        nonblock = bool(flags & os.O_NONBLOCK)
        return rw_splice.SpliceFile(
            fd, FMODE_READ | FMODE_WRITE, flags, "socket",
            splice_read=lambda pos, put, n: tcp_splice_read(ts, nonblock, put, n),
            splice_write=lambda pos, take, n: tcp_splice_write(ts, take, n),
        )  # fmt: skip

    def fstatvfs(self, fd: int, /) -> os.statvfs_result:
        if fd in self.files:
            return self.proc.sys_fstatfs(fd)
        return self.more["fstatvfs"](fd)  # type: ignore[no-any-return]
