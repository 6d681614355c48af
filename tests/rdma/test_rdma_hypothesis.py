"""Hypothesis over the uverbs input spaces: any header, any attributes, any legacy command.

Whatever a program passes, the kernel answers with success or one of the errnos the
uverbs code can return -- never a traceback, never a kernel warning, never a leak (the
``mock_kernel`` fixture checks at teardown).  Pointers are drawn from a scratch buffer,
NULL, 16 and an unmapped page, so a random output pointer cannot scribble over the
test process.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs, VfioDevice
from mockkernel.uapi.rdma.rdma_user_ioctl_cmds import RDMA_VERBS_IOCTL

ALLOWED = {
    errno.EFAULT,
    errno.EINVAL,
    errno.EPROTONOSUPPORT,
    errno.ENOENT,
    errno.EOPNOTSUPP,
    errno.ENOSPC,
    errno.EBADF,
    errno.EBUSY,
    errno.ENODEV,
    errno.EPERM,
    errno.ENOMEM,
}
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCRATCH = 8192


class Arena:
    """A scratch buffer for pointers, and the address of an unmapped page."""

    def __init__(self) -> None:
        self.buf = mmap.mmap(-1, SCRATCH)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        hole = mmap.mmap(-1, 4096)
        self.hole = ctypes.addressof(ctypes.c_char.from_buffer(hole))
        hole.close()

    def pointer(self, choice: int, offset: int) -> int:
        return (0, 16, self.hole, self.base + offset % (SCRATCH - 64))[choice % 4]


@pytest.fixture
def arena() -> Iterator[Arena]:
    a = Arena()
    yield a
    a.buf.close()


@pytest.fixture
def dmabuf(mock_kernel: Kernel) -> Iterator[int]:
    with VfioDevice("0000:01:00.0") as dev:
        fd = dev.export(0, 4 * 4096)
        dev.set_tph(fd, 3, xst=0x101, st=1, ph=1)
    yield fd
    os.close(fd)


_small = st.sampled_from([0, 1, 2, 3, 4, 5, 8, 12, 16, 17, 18, 0x1000, 0x1001, 0xFFFF])
_len = st.sampled_from([0, 1, 2, 4, 8, 16, 40, 48, 56, 176, 304]) | st.integers(0, 0xFFFF)
_flags = st.sampled_from([0, 1, 2, 3, 4, 0x8000]) | st.integers(0, 0xFFFF)


@st.composite
def attrs(draw: st.DrawFn, dmabuf_fd: int) -> tuple[int, int, int, int, int, int]:
    """(attr_id, len, flags, reserved, data kind, value)."""
    aid = draw(st.integers(0, 12) | _small)
    kind = draw(st.sampled_from(["inline", "pointer", "handle", "fd"]))
    value = draw(
        {
            # never a mapped address: an "inline" value may be taken as an output pointer
            "inline": st.integers(0, 2**32 - 1) | st.sampled_from([2**47, 2**63, 2**64 - 1]),
            "pointer": st.integers(0, 2**16),
            "handle": st.integers(0, 8) | st.sampled_from([2**32, 2**63, 2**64 - 1]),
            "fd": st.sampled_from([dmabuf_fd, -1 & 0xFFFFFFFF, 0, 1, 2]),
        }[kind]
    )
    reserved = draw(st.sampled_from([0, 0, 0, 1, 0x100]))
    return (
        aid,
        draw(_len),
        draw(_flags),
        reserved,
        ["inline", "pointer", "handle", "fd"].index(kind),
        value,
    )


def _ioctl(v: Verbs, raw: bytes | bytearray) -> None:
    buf = bytearray(raw)
    fcntl.ioctl(v.fd, RDMA_VERBS_IOCTL, buf)


def _check(e: OSError) -> None:
    assert e.errno in ALLOWED, f"unexpected errno {e.errno}: {e}"


@SETTINGS
@given(data=st.data())
def test_ioctl_any_header_and_attributes(
    mock_kernel: Kernel, arena: Arena, dmabuf: int, data: st.DataObject
) -> None:
    context = data.draw(st.booleans())
    v = Verbs("mlx5_0", context=context)
    try:
        if context and data.draw(st.booleans()):
            v.alloc_pd()
        obj = data.draw(st.integers(0, 20) | _small)
        method = data.draw(st.integers(0, 8) | _small)
        specs = data.draw(st.lists(attrs(dmabuf), max_size=10))
        n = data.draw(st.sampled_from([None, 0, 1, 255]))
        num = len(specs) if n is None else n
        length = data.draw(st.sampled_from([None, 0, 23, 25, 4096]))
        hlen = 24 + 16 * len(specs) if length is None else length
        reserved1 = data.draw(st.sampled_from([0, 0, 0, 1]))
        driver_id = data.draw(st.sampled_from([1, 1, 1, 0, 14]))
        raw = bytearray(
            struct.pack("<HHHHQII", hlen & 0xFFFF, obj, method, num, reserved1, driver_id, 0)
        )
        for aid, alen, flags, reserved, kind, value in specs:
            if kind == 1:
                value = arena.pointer(value, value >> 2)
            raw += struct.pack("<HHHHQ", aid, alen, flags, reserved, value & (2**64 - 1))
        try:
            _ioctl(v, raw)
        except OSError as e:
            _check(e)
    finally:
        v.close()
    assert mock_kernel.warnings == []


@SETTINGS
@given(data=st.data())
def test_write_any_command(mock_kernel: Kernel, arena: Arena, data: st.DataObject) -> None:
    v = Verbs("mlx5_0", context=data.draw(st.booleans()))
    try:
        if data.draw(st.booleans()):
            with contextlib.suppress(OSError):
                v.alloc_pd()
        command = data.draw(
            st.sampled_from([0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 40, 0x80000001, 0x80000000])
            | st.integers(0, 2**32 - 1)
        )
        body = bytearray(data.draw(st.binary(max_size=96)))
        # response pointers (the first u64 of most commands; ex_hdr.response) stay safe
        for off in (0, 8):
            if len(body) >= off + 8:
                pick = data.draw(st.integers(0, 3))
                struct.pack_into("<Q", body, off, arena.pointer(pick, off * 64))
        if len(body) >= 16 and command in (9, 11):
            struct.pack_into("<Q", body, 8, arena.pointer(3, 0))  # REG_MR start: scratch
        in_words = data.draw(st.sampled_from([None, 0, 1, 2, 3]) | st.integers(0, 40))
        iw = (8 + len(body)) // 4 if in_words is None else in_words
        out_words = data.draw(st.integers(0, 60))
        try:
            os.write(v.fd, struct.pack("<IHH", command, iw, out_words) + bytes(body))
        except OSError as e:
            _check(e)
    finally:
        v.close()
    assert mock_kernel.warnings == []
