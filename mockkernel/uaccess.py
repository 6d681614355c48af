"""uaccess: reading and writing the calling program's memory, safely.

The user address space is this very Python process.  An ioctl argument is a
real address: the syscall layer places the caller's buffer in a *window*
(``ioctl_window``) and accesses inside it are plain memoryview slices.  Any
other address -- a pointer stored inside a struct, an address made up by a
buggy program -- goes through ``/proc/self/mem``, where a bad address is an
``EIO`` from the kernel (reported as ``EFAULT``), never a crash of the
interpreter.

Like ``current->mm``, the window belongs to the calling thread.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from errno import EFAULT, EINVAL
from typing import TypeVar

from .errors import kerr

__all__ = [
    "copy_from_user",
    "copy_to_user",
    "get_user_struct",
    "get_user_u32",
    "ioctl_window",
    "put_user_u32",
    "strndup_user",
]

_S = TypeVar("_S", bound=ctypes.Structure)
_MAX_ADDR = (1 << 47) - 1  # x86-64 user space ends below 0x0000_8000_0000_0000


class _Mm(threading.local):
    base: int = -1
    end: int = -1
    view: memoryview | None = None


_mm = _Mm()
_mem_fd: list[int] = []  # the process's /proc/self/mem, opened on first use
_mem_lock = threading.Lock()  # two threads' first use must not open it twice


def _mem() -> int:
    if not _mem_fd:
        with _mem_lock:
            if not _mem_fd:
                from .realfd import REAL, hide

                _mem_fd.append(hide(REAL.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)))
    return _mem_fd[0]


@contextmanager
def ioctl_window(base: int, view: memoryview) -> Iterator[None]:
    """Make ``view`` (the ioctl's argument buffer) the fast path for ``[base, base+len)``."""
    saved = (_mm.base, _mm.end, _mm.view)
    _mm.base, _mm.end, _mm.view = base, base + len(view), view
    try:
        yield
    finally:
        _mm.base, _mm.end, _mm.view = saved


def copy_from_user(addr: int, n: int) -> bytes:
    """Read ``n`` bytes at user address ``addr``; ``EFAULT`` if it is not readable."""
    base = _mm.base
    if base <= addr and addr + n <= _mm.end and _mm.view is not None:
        return bytes(_mm.view[addr - base : addr - base + n])
    if n == 0:
        return b""
    if addr <= 0 or n < 0 or addr + n > _MAX_ADDR:
        raise kerr(EFAULT)
    try:
        data = os.pread(_mem(), n, addr)
    except (OSError, OverflowError):
        raise kerr(EFAULT) from None
    if len(data) != n:
        raise kerr(EFAULT)
    return data


def copy_to_user(addr: int, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` at user address ``addr``; ``EFAULT`` if it is not writable."""
    n = len(data)
    base = _mm.base
    if base <= addr and addr + n <= _mm.end and _mm.view is not None:
        _mm.view[addr - base : addr - base + n] = data
        return
    if n == 0:
        return
    if addr <= 0 or addr + n > _MAX_ADDR:
        raise kerr(EFAULT)
    try:
        done = os.pwrite(_mem(), data, addr)
    except (OSError, OverflowError):
        raise kerr(EFAULT) from None
    if done != n:
        raise kerr(EFAULT)


def get_user_u32(addr: int) -> int:
    return int.from_bytes(copy_from_user(addr, 4), "little")


def put_user_u32(addr: int, value: int) -> None:
    copy_to_user(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))


def get_user_struct(cls: type[_S], addr: int) -> _S:
    """Copy a ctypes struct in from user memory."""
    return cls.from_buffer_copy(copy_from_user(addr, ctypes.sizeof(cls)))


def strndup_user(addr: int, n: int) -> bytes:
    """Read a NUL-terminated string of at most ``n`` bytes including the NUL.

    As the kernel's ``strndup_user``: ``EFAULT`` for a bad address, ``EINVAL``
    when no NUL is found within ``n`` bytes.
    """
    out = bytearray()
    while len(out) < n:
        # read page by page so a string ending just before an unmapped page is fine
        chunk = min(n - len(out), 4096 - ((addr + len(out)) % 4096))
        data = copy_from_user(addr + len(out), chunk)
        nul = data.find(b"\0")
        if nul >= 0:
            out += data[:nul]
            return bytes(out)
        out += data
    raise kerr(EINVAL)
