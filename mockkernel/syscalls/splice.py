"""``splice``, ``tee`` and ``vmsplice`` (``fs/splice.c``) with a mock file at one end.

Pipes are always real: a program's pipe is the host's.  So a splice between two real
files is the front-end's real call, and what reaches these rules is a splice with a mock
file (or, in-process, a TCP socket the kernel made mock) at one end at least.  The other
end is then a real pipe or nothing Linux could splice with.

``splice(fd_in, off_in, fd_out, off_out, len, flags)``, in Linux's order:

* ``len`` 0: 0, before anything else; a flag outside ``SPLICE_F_ALL``: ``EINVAL``; a
  closed (or ``O_PATH``) fd: ``EBADF`` (``sys_splice``);
* an offset given for a pipe: ``ESPIPE`` (``__do_splice``);
* ``fd_in`` not open for reading or ``fd_out`` not for writing: ``EBADF``;
* pipe to file: an ``off_out`` on a file without ``pwrite`` (a socket): ``EINVAL``; an
  ``O_APPEND`` file: ``EINVAL``; a file without ``->splice_write`` (a dma-buf, a vfio
  fd, ``/dev/udmabuf``): ``EINVAL`` and one ``splice.unsupported`` event
  (``warn_unsupported``).  Else the pipe's bytes, up to ``len``, go to the file; an empty
  pipe: 0 without writers, ``EAGAIN`` with ``SPLICE_F_NONBLOCK`` or an ``O_NONBLOCK``
  pipe, else the caller sleeps until a writer writes (``splice_to_socket``);
* file to pipe: an ``off_in`` on a file without ``pread``: ``EINVAL``; a pipe without
  readers: ``EPIPE``; a full one: ``EAGAIN`` (``SPLICE_F_NONBLOCK``, an ``O_NONBLOCK``
  pipe) or a sleep (``wait_for_space``); a file without ``->splice_read`` (a
  ``/proc`` file too): ``EINVAL`` and the event.  A TCP socket's ``tcp_splice_read``
  sleeps for data by the *socket's* ``O_NONBLOCK`` and ``SO_RCVTIMEO`` only
  (``SPLICE_F_NONBLOCK`` is the pipe's business): measured on 7.2;
* neither end a pipe (a regular file and a socket, two sockets): ``EINVAL``.

``tee`` between anything but two pipes is ``EINVAL`` (after ``EBADF`` for the modes);
``vmsplice`` of a file that is not a pipe is ``EBADF`` (after its iovecs are read).

A real pipe is read and written through an open file of its own
(``/proc/self/fd/N`` reopened ``O_NONBLOCK``: the program's ``O_NONBLOCK`` is never
touched, and the bytes a TCP socket hands over are taken from it only once the pipe
took them).  Sleeping for a pipe looks at ``signal_pending`` (``EINTR``) and never holds
up another thread (``wait_fd_interruptible``).
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Callable
from errno import EAGAIN, EBADF, EINVAL, ENXIO, EPIPE, ESPIPE
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE, File
from ..realfd import REAL
from ..trace import TracePoint
from ..uaccess import MAX_RW_COUNT
from ..wait import wait_fd_interruptible

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "SPLICE_F_ALL",
    "SPLICE_F_NONBLOCK",
    "Put",
    "SpliceFile",
    "Take",
    "do_splice",
    "do_tee",
    "splice_file",
    "splice_offsets_check",
    "sys_splice",
    "trace_splice_unsupported",
]

SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 0x1, 0x2, 0x4, 0x8
SPLICE_F_ALL = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT
F_GETPIPE_SZ = 1032
_FIONREAD = 0x541B

#: bytes moved between a pipe and a mock file (``fd_in`` -> ``fd_out``)
trace_splice = TracePoint("splice.move", "fd_in", "fd_out", "bytes")
#: a file without the op a splice needs (``warn_unsupported``): Linux's ``EINVAL``
trace_splice_unsupported = TracePoint("splice.unsupported", "fd", "file", "op")

#: ``->splice_read``'s pipe: hand it bytes, it says how many it took
Put = Callable[[bytes], int]
#: ``->splice_write``'s pipe: ask it for up to n bytes, it gives what it holds
Take = Callable[[int], bytes]
SpliceRead = Callable[[int, Put, int], int]  # (pos, put, count) -> bytes spliced
SpliceWrite = Callable[[int, Take, int], int]  # (pos, take, count) -> bytes spliced


class SpliceFile:
    """One end of a splice as ``do_splice`` sees its ``struct file``: the program's
    ``fd``, its ``f_mode``/``f_flags``, and what it is -- a real pipe (``pipe``: a real
    fd of it the caller may use), a file with splice ops (``splice_read``,
    ``splice_write``: a mock file's ``f_op`` ones, or a front-end's mock socket), or
    neither (another real file: nothing the kernel could splice)."""

    __slots__ = ("f_flags", "f_mode", "fd", "file", "name", "pipe", "splice_read", "splice_write")

    def __init__(
        self, fd: int, f_mode: int, f_flags: int, name: str, *, pipe: int | None = None,
        file: File | None = None, splice_read: SpliceRead | None = None,
        splice_write: SpliceWrite | None = None,
    ) -> None:  # fmt: skip
        self.fd = fd
        self.f_mode = f_mode
        self.f_flags = f_flags
        self.name = name
        self.pipe = pipe
        self.file = file
        self.splice_read = splice_read
        self.splice_write = splice_write

    @classmethod
    def of_file(cls, fd: int, file: File) -> SpliceFile:
        """A mock file: its ``->splice_read``/``->splice_write`` (None: Linux's
        ``EINVAL``), its position (``f_pos``) moved when no offset is given."""
        op = file.f_op
        read, write = op.splice_read, op.splice_write
        end = cls(fd, file.f_mode, file.f_flags, file.path or op.name, file=file)
        if read is not None:
            end.splice_read = lambda pos, put, n: read(file, pos, put, n)
        if write is not None:
            end.splice_write = lambda pos, take, n: write(file, pos, take, n)
        return end

    @classmethod
    def of_real(cls, fd: int, real: int) -> SpliceFile:
        """A real file (``real``: a real fd of it): a pipe or FIFO, or nothing to splice."""
        flags = REAL.fcntl(real, 3)  # F_GETFL (the open file is the program's own)
        acc = flags & os.O_ACCMODE
        mode = (FMODE_READ if acc in (os.O_RDONLY, os.O_RDWR) else 0) | (
            FMODE_WRITE if acc in (os.O_WRONLY, os.O_RDWR) else 0
        )
        if flags & os.O_PATH:
            raise kerr(EBADF)
        is_pipe = stat.S_ISFIFO(REAL.fstat(real).st_mode)
        return cls(fd, mode, flags, "pipe" if is_pipe else "file", pipe=real if is_pipe else None)


def splice_file(proc: Process, fd: int, real: int | None) -> SpliceFile:
    """The end at ``fd``: a mock file of ``proc`` (``EBADF``: none, or ``O_PATH``), else
    the real file ``real`` (a real fd of it; None: not open, ``EBADF``)."""
    file = proc.files.get(fd)
    if file is not None:
        return SpliceFile.of_file(fd, proc.fdget(fd))
    if real is None:
        raise kerr(EBADF)
    return SpliceFile.of_real(fd, real)


def splice_offsets_check(in_: SpliceFile, off_in: bool, out: SpliceFile, off_out: bool) -> None:
    """``__do_splice``: an offset for a pipe is ``ESPIPE`` (before the offsets are read
    from the caller's memory, so before their ``EFAULT``)."""
    if (in_.pipe is not None and off_in) or (out.pipe is not None and off_out):
        raise kerr(ESPIPE)


def _refuse(proc: Process, end: SpliceFile, op: str) -> OSError:
    """``warn_unsupported``: a file without ``->splice_<op>`` is ``EINVAL``."""
    trace_splice_unsupported(proc.kernel.tracer, end.fd, end.name, op)
    return kerr(EINVAL)


class _PipeEnd:
    """A real pipe opened again, non-blocking, for one splice (closed by ``close``)."""

    def __init__(self, real: int, write: bool) -> None:
        try:
            self.fd = REAL.open(
                f"/proc/self/fd/{real}",
                (os.O_WRONLY if write else os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC,
            )
        except OSError as e:
            if e.errno == ENXIO:  # fifo_open: a writer without readers
                raise kerr(EPIPE) from None
            raise

    def close(self) -> None:
        REAL.close(self.fd)

    def poll(self, events: int) -> int:
        p = select.poll()
        p.register(self.fd, events)
        ready = p.poll(0)
        return ready[0][1] if ready else 0

    def take(self, n: int) -> bytes:
        try:
            return REAL.read(self.fd, n)
        except BlockingIOError:
            return b""

    def put(self, data: bytes) -> int:
        try:
            return REAL.write(self.fd, data)
        except BlockingIOError:
            return 0

    def room(self) -> int:
        """Bytes it takes now (``pipe->max_usage`` less what it holds)."""
        held = int.from_bytes(REAL.ioctl(self.fd, _FIONREAD, bytes(4)), "little")
        return max(REAL.fcntl(self.fd, F_GETPIPE_SZ) - held, 0)


def _wait(proc: Process, pipe: _PipeEnd, events: int, nonblock: bool) -> int:
    """The pipe's poll mask once one of ``events`` (or ``POLLERR``/``POLLHUP``) is up;
    ``EAGAIN`` for a non-blocking caller, ``EINTR`` for a signal while asleep."""
    mask = pipe.poll(events)
    while not mask:
        if nonblock:
            raise kerr(EAGAIN)
        mask = wait_fd_interruptible(proc.kernel, pipe.fd, events)
    return mask


def do_splice(
    proc: Process, in_: SpliceFile, off_in: int | None, out: SpliceFile,
    off_out: int | None, length: int, flags: int,
) -> tuple[int, int | None, int | None]:  # fmt: skip
    """``do_splice`` once both files are known (``len`` > 0, flags valid): the bytes
    spliced and the new ``*off_in``/``*off_out`` (for the caller to write back)."""
    splice_offsets_check(in_, off_in is not None, out, off_out is not None)
    if not in_.f_mode & FMODE_READ or not out.f_mode & FMODE_WRITE:
        raise kerr(EBADF)
    length = min(length, MAX_RW_COUNT)
    if in_.pipe is not None and out.pipe is None:
        if off_out is not None and not out.f_mode & FMODE_PWRITE:
            raise kerr(EINVAL)
        if out.f_flags & os.O_APPEND:
            raise kerr(EINVAL)
        pos = off_out if off_out is not None else (out.file.f_pos if out.file else 0)
        if pos < 0:
            raise kerr(EINVAL)  # rw_verify_area
        nonblock = bool(flags & SPLICE_F_NONBLOCK or in_.f_flags & os.O_NONBLOCK)
        n = _splice_from_pipe(proc, in_.pipe, out, pos, length, nonblock)
        trace_splice(proc.kernel.tracer, in_.fd, out.fd, n)
        pos += n
        if off_out is None and out.file is not None:
            out.file.f_pos = pos
        return n, off_in, pos if off_out is not None else None
    if out.pipe is not None and in_.pipe is None:
        if off_in is not None and not in_.f_mode & FMODE_PREAD:
            raise kerr(EINVAL)
        pos = off_in if off_in is not None else (in_.file.f_pos if in_.file else 0)
        if pos < 0:
            raise kerr(EINVAL)
        nonblock = bool(flags & SPLICE_F_NONBLOCK or out.f_flags & os.O_NONBLOCK)
        n = _splice_to_pipe(proc, in_, out.pipe, pos, length, nonblock)
        trace_splice(proc.kernel.tracer, in_.fd, out.fd, n)
        pos += n
        if off_in is None and in_.file is not None:
            in_.file.f_pos = pos
        return n, pos if off_in is not None else None, off_out
    raise kerr(EINVAL)  # neither a pipe (or two: the front-end's real call)


def _splice_from_pipe(
    proc: Process, real: int, out: SpliceFile, pos: int, length: int, nonblock: bool
) -> int:
    """``do_splice_from``: the file's ``->splice_write`` takes the pipe's bytes; an
    empty pipe is waited for here (``splice_from_pipe_next``/``splice_to_socket``)."""
    write = out.splice_write
    if write is None:
        raise _refuse(proc, out, "write")
    pipe = _PipeEnd(real, write=False)
    try:
        mask = _wait(proc, pipe, select.POLLIN, nonblock)
        if not mask & select.POLLIN:
            return 0  # empty, and no writer left: the end of the stream
        return write(pos, pipe.take, length)
    finally:
        pipe.close()


def _splice_to_pipe(
    proc: Process, in_: SpliceFile, real: int, pos: int, length: int, nonblock: bool
) -> int:
    """``splice_file_to_pipe``: room in the pipe (``wait_for_space``), then the file's
    ``->splice_read`` hands it up to ``len`` bytes (no more than the pipe has room for)."""
    pipe = _PipeEnd(real, write=True)
    try:
        mask = _wait(proc, pipe, select.POLLOUT, nonblock)
        if mask & select.POLLERR:
            raise kerr(EPIPE)  # every reader gone (the program gets no SIGPIPE here)
        read = in_.splice_read
        if read is None:
            raise _refuse(proc, in_, "read")
        return read(pos, pipe.put, min(length, pipe.room()))
    finally:
        pipe.close()


def sys_splice(
    proc: Process, fd_in: int, off_in: int | None, fd_out: int, off_out: int | None,
    length: int, flags: int, resolve: Callable[[int], SpliceFile],
) -> int:  # fmt: skip
    """``splice`` with plain values (the in-process front-end's: offsets are numbers,
    not user pointers); ``resolve(fd)`` is the end at ``fd`` (``EBADF``: none)."""
    if not length:
        return 0
    if flags & ~SPLICE_F_ALL:
        raise kerr(EINVAL)
    in_ = resolve(fd_in)
    out = resolve(fd_out)
    return do_splice(proc, in_, off_in, out, off_out, length, flags)[0]


def do_tee(in_: SpliceFile, out: SpliceFile) -> int:
    """``do_tee`` with a file that is not a pipe: ``EBADF`` for the modes, else
    ``EINVAL`` (``tee`` duplicates one pipe's buffers into another only)."""
    if not in_.f_mode & FMODE_READ or not out.f_mode & FMODE_WRITE:
        raise kerr(EBADF)
    raise kerr(EINVAL)
