"""``DMA_BUF_IOCTL_SYNC`` answers the same on every path a call can take.

The in-process hot path (``hotpath.m_ioctl``, tracing off, a ``bytearray`` of 8 bytes or
more with ``mutate_flag``) reads the ``__u64`` straight from the caller's buffer and calls
``dma_buf_sync`` (the table entry is ``IoctlU64(dma_buf_sync)``).  Every other way in --
an immutable ``bytes`` argument, ``mutate_flag=False``, a short buffer, tracing on, an
armed ``fail-nth``, ``Process.sys_ioctl`` with a pointer -- copies the argument and reads
it with ``get_user_u64``.  Each test runs a value through the fast path and the others
and compares what a program sees (the errno, the return value, the buffer afterwards)
and what the exporter and the trace see (its ``begin``/``end`` calls in order, with the
direction; ``dma_buf.sync`` events).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dmabuf_testing import TestExporter, errno_name, export
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.dma_buf.core import _SYNC_DIRECTION, dma_buf_sync
from mockkernel.driver import DmaBuf, dma_buf_fd
from mockkernel.fs import File, FileOperations, IoctlU64
from mockkernel.ioctl import _IOR, _IOW, _IOWR
from mockkernel.uapi.linux.dma_buf import (
    DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SYNC_END,
    DMA_BUF_SYNC_READ,
    DMA_BUF_SYNC_RW,
    DMA_BUF_SYNC_WRITE,
)

SYNC = DMA_BUF_IOCTL_SYNC
READ, WRITE, RW, END = DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_END
_fixture_ok = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=200
)
#: the flags values worth naming, besides Hypothesis' draw: every small one, each bit
FLAGS = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(0, 16),
    st.sampled_from([1 << b for b in range(64)] + [(1 << b) | READ for b in range(64)]),
)


class Recorder(TestExporter):
    """A test exporter whose ``begin_cpu_access``/``end_cpu_access`` record the direction."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.begin_cpu_access = self._begin  # type: ignore[assignment]
        self.end_cpu_access = self._end  # type: ignore[assignment]

    def _begin(self, dmabuf: DmaBuf, direction: int) -> None:
        self.calls.append((f"begin:{direction}", dmabuf.resv.held))

    def _end(self, dmabuf: DmaBuf, direction: int) -> None:
        self.calls.append((f"end:{direction}", dmabuf.resv.held))


@dataclass
class Buf:
    fd: int
    dmabuf: DmaBuf
    ops: Recorder


@pytest.fixture
def buf(mock_kernel: Kernel) -> Iterator[Buf]:
    dmabuf, ops = export(mock_kernel, Recorder(), flags=os.O_RDWR)
    assert isinstance(ops, Recorder)
    b = Buf(dma_buf_fd(dmabuf, 0), dmabuf, ops)
    yield b
    if b.fd in mock_kernel.init_process.files:
        os.close(b.fd)


def _u64(flags: int) -> bytes:
    return struct.pack("=Q", flags)


def _outcome(call: Callable[[], Any], buf: Buf) -> tuple[object, list[tuple[str, bool]]]:
    """What one call gives (its value or errno name) and what the exporter saw."""
    buf.ops.calls.clear()
    try:
        got: object = call()
    except OSError as e:
        assert e.errno is not None
        got = errno.errorcode[e.errno]
    return got, list(buf.ops.calls)


def _paths(kernel: Kernel, buf: Buf, flags: int) -> dict[str, tuple[object, Any]]:
    """The same flags value through every way in (each path's answer normalised to what
    the fast path returns: an int, or the errno's name)."""
    fd = buf.fd
    out: dict[str, tuple[object, Any]] = {}
    arg = bytearray(_u64(flags))
    out["fast"] = _outcome(lambda: fcntl.ioctl(fd, SYNC, arg), buf)
    assert arg == _u64(flags)  # the kernel writes nothing back
    long_arg = bytearray(_u64(flags) + b"\xa5" * 24)  # a struct read from a larger buffer
    out["fast, 32 bytes"] = _outcome(lambda: fcntl.ioctl(fd, SYNC, long_arg), buf)
    assert long_arg == _u64(flags) + b"\xa5" * 24

    def immutable() -> int:
        assert fcntl.ioctl(fd, SYNC, _u64(flags)) == _u64(flags)  # bytes in, bytes back
        return 0

    out["bytes"] = _outcome(immutable, buf)

    def no_mutate() -> int:
        assert fcntl.ioctl(fd, SYNC, bytearray(_u64(flags)), False) == _u64(flags)
        return 0

    out["mutate_flag=False"] = _outcome(no_mutate, buf)
    mem = ctypes.create_string_buffer(_u64(flags), 8)  # a pointer outside any window
    out["sys_ioctl, pointer"] = _outcome(
        lambda: kernel.init_process.sys_ioctl(fd, SYNC, ctypes.addressof(mem)), buf
    )
    with kernel.tracer.capture() as cap:
        out["traced"] = _outcome(lambda: fcntl.ioctl(fd, SYNC, bytearray(_u64(flags))), buf)
    events = [(e["dmabuf"], e["flags"]) for e in cap if e["event"] == "dma_buf.sync"]
    want_events = [(buf.dmabuf.id, flags)] if out["traced"][0] == 0 else []
    assert events == want_events
    return out


def _expected(flags: int) -> tuple[object, list[tuple[str, bool]]]:
    """Linux's answer: EINVAL for an unknown bit or no direction, else begin (end) with
    READ -> DMA_FROM_DEVICE (2), WRITE -> DMA_TO_DEVICE (1), RW -> BIDIRECTIONAL (0)."""
    if flags & ~(RW | END) or not flags & RW:
        return "EINVAL", []
    direction = {READ: 2, WRITE: 1, RW: 0}[flags & RW]
    return 0, [(f"{'end' if flags & END else 'begin'}:{direction}", False)]


@_fixture_ok
@given(flags=FLAGS)
def test_every_flags_value_answers_alike_on_every_path(
    mock_kernel: Kernel, buf: Buf, flags: int
) -> None:
    want = _expected(flags)
    assert _paths(mock_kernel, buf, flags) == dict.fromkeys(
        ("fast", "fast, 32 bytes", "bytes", "mutate_flag=False", "sys_ioctl, pointer", "traced"),
        want,
    )


def test_direction_table_is_linux_switch() -> None:
    """``_SYNC_DIRECTION`` indexed by every value below 16 (past it: EINVAL first)."""
    for flags in range(16):
        if flags & ~(RW | END) or not flags & RW:
            assert flags > 7 or _SYNC_DIRECTION[flags] is None
        else:
            assert _SYNC_DIRECTION[flags] == {READ: 2, WRITE: 1, RW: 0}[flags & RW]


def test_a_short_buffer_is_read_as_the_scratch_copy_holds_it(buf: Buf) -> None:
    """Under 8 bytes, the kernel reads the copy CPython makes: the bytes, the NUL after
    them, then whatever the thread's scratch buffer held (the general path's answer; an
    immutable argument is copied there, so it sets what the scratch holds)."""
    fd = buf.fd
    assert errno_name(fcntl.ioctl, fd, SYNC, bytes(16)) == "EINVAL"  # scratch: zeros
    buf.ops.calls.clear()
    assert fcntl.ioctl(fd, SYNC, bytearray(b"\x01\x00\x00\x00")) == 0  # 01 00 00 00 | 00 ...
    assert buf.ops.names() == ["begin:2"]
    assert errno_name(fcntl.ioctl, fd, SYNC, b"\xff" * 16) == "EINVAL"
    assert errno_name(fcntl.ioctl, fd, SYNC, bytearray(b"\x01")) == "EINVAL"  # 01 00 ff ...
    assert errno_name(fcntl.ioctl, fd, SYNC, bytearray()) == "EINVAL"  # 00 ff ff ...


def test_bad_pointers_are_efault(mock_kernel: Kernel, buf: Buf) -> None:
    """An int argument is a pointer (a C int in-process): unreadable there, ``EFAULT``."""
    for arg in (0, 16, 4096, 0x7FFFFFFF, -1):
        assert errno_name(fcntl.ioctl, buf.fd, SYNC, arg) == "EFAULT"
    assert errno_name(mock_kernel.init_process.sys_ioctl, buf.fd, SYNC, 1 << 47) == "EFAULT"
    assert buf.ops.calls == []


def test_an_armed_fail_nth_fails_the_read_on_the_fast_path(mock_kernel: Kernel, buf: Buf) -> None:
    """The read of the flags is a ``copy_from_user`` fault point on every path: with a
    count armed the hot path leaves the buffer to the counted copy."""
    fnth = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    try:
        os.write(fnth, b"1")
        assert errno_name(fcntl.ioctl, buf.fd, SYNC, bytearray(_u64(READ))) == "EFAULT"
        assert os.pread(fnth, 32, 0) == b"0\n"
        assert buf.ops.calls == []
        assert fcntl.ioctl(buf.fd, SYNC, bytearray(_u64(READ))) == 0  # spent: the fast path
        assert buf.ops.names() == ["begin:2"]
    finally:
        os.close(fnth)


def test_sync_call_order_is_the_exporters(buf: Buf) -> None:
    """A whole bracket through the fast path: begin, then end, each with its direction."""
    buf.ops.calls.clear()
    for flags in (READ, WRITE, RW, READ | END, WRITE | END, RW | END):
        assert fcntl.ioctl(buf.fd, SYNC, bytearray(_u64(flags))) == 0
    assert buf.ops.calls == [
        ("begin:2", False),
        ("begin:1", False),
        ("begin:0", False),
        ("end:2", False),
        ("end:1", False),
        ("end:0", False),
    ]


def test_an_exporter_without_cpu_access_ops_still_syncs(mock_kernel: Kernel) -> None:
    dmabuf, _ops = export(mock_kernel, TestExporter(), flags=os.O_RDWR)
    fd = dma_buf_fd(dmabuf, 0)
    try:
        for flags in (READ, RW | END):
            assert fcntl.ioctl(fd, SYNC, bytearray(_u64(flags))) == 0
        assert errno_name(fcntl.ioctl, fd, SYNC, bytearray(_u64(END))) == "EINVAL"
    finally:
        os.close(fd)


def test_the_handler_reads_its_value_through_the_table(buf: Buf) -> None:
    """The ``ioctls`` entry is an ordinary handler for the syscall layer, the value
    handler for the hot path; both are ``dma_buf_sync``."""
    handler = type(buf.dmabuf.file.f_op).ioctls[SYNC]
    assert isinstance(handler, IoctlU64) and handler.fn is dma_buf_sync


# -- IoctlU64 in any ops table ----------------------------------------------------------------
def test_ioctl_u64_needs_an_iow_command_of_8_bytes() -> None:
    def fn(file: File, cmd: int, value: int) -> int:
        return 0

    for bad in (_IOR("x", 1, 8), _IOWR("x", 1, 8), _IOW("x", 1, 4), _IOW("x", 1, 16), 0x5401):
        with pytest.raises(TypeError, match="IoctlU64"):
            type("Bad", (FileOperations,), {"ioctls": {bad: IoctlU64(fn)}})
    type("Good", (FileOperations,), {"ioctls": {_IOW("x", 1, 8): IoctlU64(fn)}})
