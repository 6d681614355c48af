"""``fcntl.ioctl``'s argument conventions on mock fds, exactly as CPython's on real fds.

The probe device (/dev/mkprobe, core_helpers.ProbeOps) records what the driver was
handed; the real side is FIONREAD on a pipe (golden:
tests/core/real_linux/syscall_layer.golden.jsonl, pipe_ioctl_args)."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from core_helpers import (
    CMD_DEREF,
    CMD_FILL8,
    CMD_FILL_FAIL4,
    CMD_RECORD,
    DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SET_NAME_B,
    FIONREAD,
    NR_FILL,
    NR_READ,
    ProbeOps,
    addressof,
    errno_name,
    lowest_free,
    probe_cmd,
    udmabuf,
)

from mockkernel.kernel import Kernel
from mockkernel.mm import _load_libc
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE, udmabuf_create


@pytest.fixture
def dev(probe: ProbeOps) -> Iterator[int]:
    fd = os.open("/dev/mkprobe", os.O_RDWR)
    yield fd
    os.close(fd)


@pytest.fixture
def pipe() -> Iterator[int]:
    """A real pipe's read end with 5 bytes waiting (FIONREAD answers 5)."""
    r, w = os.pipe()
    os.write(w, b"hello")
    yield r
    os.close(r)
    os.close(w)


# -- int arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arg", "seen"),
    [(0, 0), (5, 5), (0x7FFFFFFF, 0x7FFFFFFF), (-1, 0xFFFFFFFF), (-(2**31), 0x80000000), (True, 1)],
)
def test_int_arg_is_a_c_int(dev: int, probe: ProbeOps, arg: int, seen: int) -> None:
    assert fcntl.ioctl(dev, CMD_RECORD, arg) == 0
    assert probe.calls[-1][1] == seen


def test_int_like_arg(dev: int, probe: ProbeOps) -> None:
    class Index:
        def __init__(self, v: int) -> None:
            self.v = v

        def __index__(self) -> int:
            return self.v

    assert fcntl.ioctl(dev, CMD_RECORD, Index(7)) == 0
    assert probe.calls[-1][1] == 7
    with pytest.raises(OverflowError, match="greater than maximum"):
        fcntl.ioctl(dev, CMD_RECORD, Index(2**31))


@pytest.mark.parametrize(
    ("arg", "exc", "message"),
    [
        (2**31, OverflowError, "signed integer is greater than maximum"),
        (-(2**31) - 1, OverflowError, "signed integer is less than minimum"),
        (2**63 - 1, OverflowError, "signed integer is greater than maximum"),
        (2**64, OverflowError, "Python int too large to convert to C long"),
        (-(2**63) - 1, OverflowError, "Python int too large to convert to C long"),
        (1.0, TypeError, None),
        (None, TypeError, None),
    ],
)
def test_bad_int_args_are_refused_like_cpython(
    dev: int, pipe: int, probe: ProbeOps, arg: Any, exc: type[Exception], message: str | None
) -> None:
    with pytest.raises(exc) as real:
        fcntl.ioctl(pipe, FIONREAD, arg)
    with pytest.raises(exc) as mock:
        fcntl.ioctl(dev, CMD_RECORD, arg)
    if message is not None:
        assert str(real.value) == str(mock.value) == message
    assert not probe.calls, "a refused argument never reaches the driver"


def test_int_result_is_returned_for_an_int_arg(dev: int, probe: ProbeOps) -> None:
    assert fcntl.ioctl(dev, probe_cmd(NR_READ, 0), 0) == 5
    assert fcntl.ioctl(dev, CMD_RECORD) == 0  # no argument: 0


def test_int_arg_used_as_a_pointer_is_efault(dev: int, probe: ProbeOps) -> None:
    assert errno_name(fcntl.ioctl, dev, CMD_FILL8, 0) == "EFAULT"
    assert errno_name(fcntl.ioctl, dev, CMD_FILL8, 16) == "EFAULT"
    assert errno_name(fcntl.ioctl, dev, probe_cmd(NR_READ, 8), 4096) == "EFAULT"


# -- immutable buffers: a copy, the copy's bytes returned ------------------------------------------
def test_bytes_arg_returns_the_buffer_copy_not_the_result(dev: int, probe: ProbeOps) -> None:
    arg = b"12345678"
    out = fcntl.ioctl(dev, CMD_FILL8, arg)
    assert out == b"ABCDEFGH"  # what the driver wrote, not its return value 3
    assert arg == b"12345678"
    assert isinstance(out, bytes) and len(out) == len(arg)
    assert fcntl.ioctl(dev, probe_cmd(NR_FILL, 4), b"1234567890") == b"ABCD567890"


def test_a_nul_follows_a_short_buffer(dev: int, probe: ProbeOps) -> None:
    # the driver reads one byte more than it was given: CPython's copy ends in a NUL
    assert fcntl.ioctl(dev, probe_cmd(NR_READ, 6), b"abcde") == b"abcde"
    assert probe.calls[-1][2] == b"abcde\0"
    assert fcntl.ioctl(dev, probe_cmd(NR_READ, 6), bytearray(b"vwxyz")) == 5
    assert probe.calls[-1][2] == b"vwxyz\0"
    assert fcntl.ioctl(dev, probe_cmd(NR_READ, 1), b"") == b""
    assert probe.calls[-1][2] == b"\0"


def test_str_arg_is_encoded_utf8(dev: int, probe: ProbeOps) -> None:
    assert fcntl.ioctl(dev, probe_cmd(NR_READ, 4), "é!") == "é!".encode()
    assert probe.calls[-1][2] == "é!".encode() + b"\0"
    assert fcntl.ioctl(dev, CMD_FILL8, "12345678") == b"ABCDEFGH"


def test_memoryview_and_array_args(dev: int, probe: ProbeOps) -> None:
    import array

    assert fcntl.ioctl(dev, CMD_FILL8, memoryview(b"12345678")) == b"ABCDEFGH"
    a = array.array("i", [0, 0])
    assert fcntl.ioctl(dev, CMD_FILL8, a) == 3
    assert a.tobytes() == b"ABCDEFGH"


def test_a_non_contiguous_buffer_is_refused_as_cpython_does(
    dev: int, pipe: int, probe: ProbeOps
) -> None:
    """CPython tries "w*" then "s*" (both need a contiguous buffer), then "i"."""

    def outcome(fd: int) -> tuple[str, str]:
        try:
            fcntl.ioctl(fd, CMD_FILL8, memoryview(bytearray(16))[::2])
        except Exception as e:
            return type(e).__name__, str(e)
        return "ok", ""

    assert (
        outcome(dev)
        == outcome(pipe)
        == (
            "TypeError",
            "'memoryview' object cannot be interpreted as an integer",
        )
    )
    assert probe.calls == []  # the driver never saw it


# -- mutable buffers -------------------------------------------------------------------------------
def test_bytearray_mutate_true_updates_in_place_and_returns_the_result(
    dev: int, probe: ProbeOps
) -> None:
    buf = bytearray(b"12345678")
    assert fcntl.ioctl(dev, CMD_FILL8, buf) == 3
    assert buf == b"ABCDEFGH"
    # <= 1024 bytes: the driver saw a copy, not the buffer itself
    assert probe.calls[-1][1] != addressof(buf)


def test_copy_back_happens_even_when_the_ioctl_fails(dev: int, probe: ProbeOps) -> None:
    buf = bytearray(b"12345678")
    with pytest.raises(OSError) as e:
        fcntl.ioctl(dev, CMD_FILL_FAIL4, buf)
    assert e.value.errno == errno.EIO
    assert buf == b"ZZZZ5678"
    # mutate_flag=False: nothing comes back on failure either
    buf = bytearray(b"12345678")
    with pytest.raises(OSError):
        fcntl.ioctl(dev, CMD_FILL_FAIL4, buf, False)
    assert buf == b"12345678"


def test_bytearray_mutate_false_returns_bytes_and_keeps_the_buffer(
    dev: int, probe: ProbeOps
) -> None:
    buf = bytearray(b"12345678")
    out = fcntl.ioctl(dev, CMD_FILL8, buf, False)
    assert out == b"ABCDEFGH" and isinstance(out, bytes)
    assert buf == b"12345678"


def test_large_mutable_buffer_is_used_in_place(dev: int, probe: ProbeOps) -> None:
    buf = bytearray(2000)
    assert fcntl.ioctl(dev, probe_cmd(NR_FILL, 2000), buf) == 3
    assert probe.calls[-1][1] == addressof(buf), "> 1024 bytes: the driver gets the buffer"
    assert buf == (b"ABCDEFGH" * 250)
    # 1024 exactly still goes through the copy (and its NUL)
    buf = bytearray(b"x" * 1024)
    assert fcntl.ioctl(dev, probe_cmd(NR_READ, 1025), buf) == 5
    assert probe.calls[-1][2] == b"x" * 1024 + b"\0"
    assert probe.calls[-1][1] != addressof(buf)


@pytest.mark.parametrize(
    "make",
    [lambda: bytes(2000), lambda: "x" * 2000, lambda: memoryview(bytes(1025))],
    ids=["bytes", "str", "readonly-view"],
)
def test_large_immutable_buffer_is_refused(
    dev: int, probe: ProbeOps, make: Callable[[], Any]
) -> None:
    with pytest.raises(ValueError, match="ioctl string arg too long"):
        fcntl.ioctl(dev, probe_cmd(NR_FILL, 8), make())
    assert not probe.calls


def test_large_mutable_buffer_without_mutate_is_refused(dev: int, probe: ProbeOps) -> None:
    buf = bytearray(2000)
    with pytest.raises(ValueError, match="ioctl string arg too long"):
        fcntl.ioctl(dev, probe_cmd(NR_FILL, 8), buf, False)
    assert buf == bytearray(2000) and not probe.calls


def test_ctypes_structure_arg(mock_kernel: Kernel, dev: int, probe: ProbeOps) -> None:
    val = ctypes.c_uint64(0)
    assert fcntl.ioctl(dev, CMD_FILL8, val) == 3
    assert val.value == int.from_bytes(b"ABCDEFGH", "little")
    # a real uapi struct: UDMABUF_CREATE returns the new fd, the struct is intact
    from core_helpers import sealed_memfd

    memfd = sealed_memfd(8192)
    udev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        c = udmabuf_create(memfd=memfd, flags=0, offset=0, size=8192)
        fd = fcntl.ioctl(udev, UDMABUF_CREATE, c)
        assert fd in mock_kernel.init_process.files
        assert (c.memfd, c.size) == (memfd, 8192)
        assert os.fstat(fd).st_size == 8192
        os.close(fd)
    finally:
        os.close(udev)
        os.close(memfd)


def test_pointers_inside_the_payload_are_user_addresses(dev: int, probe: ProbeOps) -> None:
    target = ctypes.create_string_buffer(b"PEEK", 8)
    assert fcntl.ioctl(dev, CMD_DEREF, struct.pack("=Q", ctypes.addressof(target))) is not None
    assert probe.calls[-1][2] == b"PEEK"
    for bad in (0, 16, 1 << 47, (1 << 64) - 16):
        assert errno_name(fcntl.ioctl, dev, CMD_DEREF, struct.pack("=Q", bad)) == "EFAULT"


def _prot(pages: int, prot: int) -> tuple[Any, int]:
    """An anonymous mapping with protection ``prot`` (``mmap`` cannot make ``PROT_NONE``)."""
    libc = _load_libc()  # mmap/munmap with their C types (the mm layer's)
    addr = libc.mmap(None, pages * 4096, prot, 0x22, -1, 0)  # MAP_PRIVATE | MAP_ANONYMOUS
    assert addr not in (None, ctypes.c_void_p(-1).value)
    return libc, int(addr)


def test_a_pointer_to_a_prot_none_page_is_efault(dev: int, probe: ProbeOps) -> None:
    """copy_from_user honours page protections (it once read PROT_NONE pages through
    /proc/self/mem, which forces access as a debugger does, and saw zeros)."""
    libc, addr = _prot(1, 0)  # PROT_NONE
    try:
        assert errno_name(fcntl.ioctl, dev, CMD_DEREF, struct.pack("=Q", addr)) == "EFAULT"
    finally:
        libc.munmap(addr, 4096)


def test_a_large_in_place_buffer_with_a_prot_none_part_is_efault_not_a_crash(
    dev: int, probe: ProbeOps
) -> None:
    """A buffer over 1024 bytes is passed in place; if part of the program's buffer is
    PROT_NONE (an mprotect'ed mapping), the driver's read of it is EFAULT.  (It once went
    through a memoryview of the buffer and the interpreter died of SIGSEGV.)"""
    libc, addr = _prot(2, 3)  # PROT_READ | PROT_WRITE
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    try:
        assert libc.mprotect(addr + 4096, 4096, 0) == 0  # the second page: PROT_NONE
        buf = (ctypes.c_char * 8192).from_address(addr)
        assert errno_name(fcntl.ioctl, dev, probe_cmd(NR_READ, 8192), buf) == "EFAULT"
        assert fcntl.ioctl(dev, probe_cmd(NR_READ, 4096), buf) == 5  # the first page reads
        assert probe.calls[-1][2] == bytes(4096)
    finally:
        libc.munmap(addr, 8192)


def test_copy_to_user_into_a_read_only_page_is_efault() -> None:
    """copy_to_user refuses read-only and PROT_NONE pages (/proc/self/mem wrote them)."""
    from mockkernel.uaccess import copy_from_user, copy_to_user

    for prot in (1, 0):  # PROT_READ, PROT_NONE
        libc, addr = _prot(1, prot)
        try:
            with pytest.raises(OSError) as e:
                copy_to_user(addr + 8, b"scribble")
            assert e.value.errno == errno.EFAULT
            if prot:
                assert copy_from_user(addr + 8, 8) == bytes(8)  # untouched
        finally:
            libc.munmap(addr, 4096)


def test_dma_buf_set_name_with_a_bad_pointer_is_efault(mock_kernel: Kernel) -> None:
    with udmabuf() as buf:
        assert errno_name(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, 16) == "EFAULT"
        assert errno_name(fcntl.ioctl, buf, DMA_BUF_SET_NAME_B, 0) == "EFAULT"


# -- the fd and the request ------------------------------------------------------------------------
def test_fd_from_an_object_with_fileno(dev: int, pipe: int, probe: ProbeOps) -> None:
    class F:
        def __init__(self, n: Any) -> None:
            self.n = n

        def fileno(self) -> Any:
            return self.n

    assert fcntl.ioctl(F(dev), CMD_FILL8, b"12345678") == b"ABCDEFGH"
    assert struct.unpack("i", fcntl.ioctl(F(pipe), FIONREAD, bytes(4)))[0] == 5
    for bad, exc in ((F(-1), ValueError), (F("3"), TypeError), (object(), TypeError)):
        with pytest.raises(exc):
            fcntl.ioctl(bad, CMD_FILL8, b"12345678")
    with pytest.raises(ValueError):
        fcntl.ioctl(-1, CMD_FILL8, b"12345678")
    with open("/dev/mkprobe", "rb", buffering=0) as f:
        assert fcntl.ioctl(f, CMD_FILL8, b"12345678") == b"ABCDEFGH"


@pytest.mark.parametrize(
    "request_of",
    [lambda c: c, lambda c: c - (1 << 32), lambda c: c | (1 << 40), lambda c: c | (1 << 70)],
    ids=["plain", "negative", "above-32-bits", "huge"],
)
def test_request_is_masked_to_32_bits(
    mock_kernel: Kernel, dev: int, pipe: int, probe: ProbeOps, request_of: Callable[[int], int]
) -> None:
    assert fcntl.ioctl(dev, request_of(CMD_FILL8), b"12345678") == b"ABCDEFGH"
    assert probe.calls[-1][0] == CMD_FILL8
    assert struct.unpack("i", fcntl.ioctl(pipe, request_of(FIONREAD), bytes(4)))[0] == 5
    with udmabuf() as buf:
        sync = bytearray(struct.pack("=Q", 3))
        assert fcntl.ioctl(buf, request_of(DMA_BUF_IOCTL_SYNC), sync) == 0


def test_unknown_ioctl_is_enotty_and_a_closed_fd_is_ebadf(mock_kernel: Kernel, dev: int) -> None:
    assert errno_name(fcntl.ioctl, dev, 0x1234) == "ENOTTY"
    assert errno_name(fcntl.ioctl, dev, 0x1234, bytearray(8)) == "ENOTTY"
    with udmabuf() as buf:
        assert errno_name(fcntl.ioctl, buf, 0x6299) == "ENOTTY"
        assert errno_name(fcntl.ioctl, buf, UDMABUF_CREATE, bytearray(24)) == "ENOTTY"
    closed = os.open("/dev/mkprobe", os.O_RDWR)
    os.close(closed)
    assert closed == lowest_free()
    with mock_kernel.tracer.capture() as ev:
        assert errno_name(fcntl.ioctl, closed, CMD_FILL8, bytearray(8)) == "EBADF"
        assert errno_name(fcntl.ioctl, closed, 0x5451) == "EBADF"  # FIOCLEX
    assert ev == [], "an ioctl on a closed fd never reaches the mock"


def test_ioctls_are_traced(mock_kernel: Kernel, dev: int, probe: ProbeOps) -> None:
    with mock_kernel.tracer.capture() as ev:
        fcntl.ioctl(dev, CMD_FILL8, bytearray(8))
        errno_name(fcntl.ioctl, dev, CMD_FILL_FAIL4, bytearray(4))
    calls = [e for e in ev if e["event"] == "sys.ioctl"]
    assert [(e["fd"], e["cmd"], e.get("ret"), e.get("errno")) for e in calls] == [
        (dev, hex(CMD_FILL8), 3, None),
        (dev, hex(CMD_FILL_FAIL4), None, "EIO"),
    ]


# -- the same argument on a real fd and a mock fd: the same shape of answer ------------------------
ARGS: list[tuple[str, Callable[[], Any], bool]] = [
    ("int-0", lambda: 0, True),
    ("bytes", lambda: b"\xff" * 8, True),
    ("bytes-short", lambda: b"\xff" * 4, True),
    ("str", lambda: "abcdefgh", True),
    ("bytearray", lambda: bytearray(8), True),
    ("bytearray-no-mutate", lambda: bytearray(8), False),
    ("bytearray-2000", lambda: bytearray(2000), True),
    ("bytearray-2000-no-mutate", lambda: bytearray(2000), False),
    ("bytes-2000", lambda: bytes(2000), True),
    ("bytes-1024", lambda: bytes(1024), True),
    ("ctypes", lambda: ctypes.c_uint64(0), True),
]


def outcome(fd: int, cmd: int, arg: Any, mutate: bool) -> tuple[object, ...]:
    before = bytes(memoryview(arg)) if not isinstance(arg, (int, str)) else None
    try:
        res = fcntl.ioctl(fd, cmd, arg, mutate) if not mutate else fcntl.ioctl(fd, cmd, arg)
    except OSError as e:
        return ("errno", errno.errorcode[e.errno or 0])
    except Exception as e:
        return ("exception", type(e).__name__)
    changed = before is not None and bytes(memoryview(arg)) != before
    if isinstance(res, bytes):
        return ("bytes", len(res), changed)
    return ("int", res, changed)


@pytest.mark.parametrize(
    ("make", "mutate"), [(m, f) for _, m, f in ARGS], ids=[n for n, _, _ in ARGS]
)
def test_same_answer_shape_as_a_real_fd(
    dev: int, pipe: int, probe: ProbeOps, make: Callable[[], Any], mutate: bool
) -> None:
    # FIONREAD writes 4 bytes and returns 0; the probe's 4-byte fill writes 4 and returns 3
    real = outcome(pipe, FIONREAD, make(), mutate)
    mock = outcome(dev, probe_cmd(NR_FILL, 4), make(), mutate)
    if real[0] == "int" and mock[0] == "int" and real[1] == 0:
        mock = ("int", 0 if mock[1] == 3 else mock[1], mock[2])
    assert mock == real
