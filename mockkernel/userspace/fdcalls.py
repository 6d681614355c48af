"""The redirection's fd family beyond the hot six: ``os.dup/dup2/pread/pwrite/lseek``,
vectored I/O, ``fsync``/``fdatasync``/``ftruncate``, ``closerange``, ``get/set_blocking``
and ``fcntl.fcntl``.  A mock fd goes to ``Process.sys_*``; any other fd to the real
function, untouched."""

from __future__ import annotations

import contextlib
import fcntl
import os
from errno import EINVAL
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from .hotpath import as_fd

if TYPE_CHECKING:
    from .redirect import Redirection

__all__ = ["FdCalls", "iovec", "scatter"]


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
        return int(self.real.dup(fd))

    def dup2(self, fd: int, fd2: int, inheritable: bool = True) -> int:
        proc = self.proc
        if fd in self.files:
            if inheritable:
                return proc.sys_dup2(fd, fd2)
            return proc.sys_dup3(fd, fd2, os.O_CLOEXEC)
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
        if fd in self.files:
            return self.proc.sys_lseek(fd, pos, how)
        return int(self.real.lseek(fd, pos, how))

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
        """Close mock fds in the range through the kernel, real ones for real."""
        real_closerange = self.more["closerange"]
        lo = max(fd_low, 0)
        for fd in sorted(n for n in self.files if lo <= n < fd_high):
            if lo < fd:
                real_closerange(lo, fd)
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

    def fcntl(self, fd: Any, cmd: int, arg: Any = 0, /) -> Any:
        n = fd if type(fd) is int else as_fd(fd)
        if n in self.files:
            if not isinstance(arg, int):
                raise kerr(EINVAL)
            return self.proc.sys_fcntl(n, cmd, arg & 0xFFFFFFFF)
        return self.real.fcntl(fd, cmd, arg)
