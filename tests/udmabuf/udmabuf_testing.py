"""Helpers of the udmabuf tests: the uapi as a C program would pack it, memfds, fd numbers.

Everything goes through the calls a program makes (``os``, ``fcntl``, ``mmap``), so
with the redirection installed it exercises the mock kernel.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from typing import Any

__all__ = [
    "F_ADD_SEALS",
    "F_GET_SEALS",
    "F_SEAL_FUTURE_WRITE",
    "F_SEAL_GROW",
    "F_SEAL_SEAL",
    "F_SEAL_SHRINK",
    "F_SEAL_WRITE",
    "LIST_LIMIT",
    "PAGE",
    "SIZE_LIMIT",
    "UDMABUF_CREATE",
    "UDMABUF_CREATE_LIST",
    "create",
    "create_list",
    "errno_name",
    "lowest_free",
    "make_memfd",
    "pattern",
]

PAGE = mmap.PAGESIZE
UDMABUF_CREATE = 0x40187542  # _IOW('u', 0x42, struct udmabuf_create)
UDMABUF_CREATE_LIST = 0x40087543  # _IOW('u', 0x43, struct udmabuf_create_list)
DMA_BUF_IOCTL_SYNC = 0x40086200
LIST_LIMIT = 1024
SIZE_LIMIT = 64 << 20
F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x1
F_SEAL_SHRINK = 0x2
F_SEAL_GROW = 0x4
F_SEAL_WRITE = 0x8
F_SEAL_FUTURE_WRITE = 0x10


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ from page to page, so a misplaced page shows."""
    return bytes((i * 7 + seed + i // PAGE) % 251 for i in range(size))


def make_memfd(
    size: int = 2 * PAGE, seals: int = F_SEAL_SHRINK, sealing: bool = True, seed: int = 0
) -> int:
    fd = os.memfd_create("udmabuf-test", os.MFD_ALLOW_SEALING if sealing else 0)
    os.ftruncate(fd, size)
    if size <= 64 * PAGE:
        os.pwrite(fd, pattern(size, seed), 0)
    if seals:
        fcntl.fcntl(fd, F_ADD_SEALS, seals)
    return fd


def create(dev: int, memfd: int, offset: int, size: int, flags: int = 0) -> int:
    arg = bytearray(struct.pack("=IIQQ", memfd & 0xFFFFFFFF, flags, offset, size))
    res: int = fcntl.ioctl(dev, UDMABUF_CREATE, arg)
    return res


def create_list(
    dev: int, items: list[tuple[int, int, int]], flags: int = 0, count: int | None = None
) -> int:
    buf = bytearray(struct.pack("=II", flags, len(items) if count is None else count))
    for memfd, offset, size in items:
        buf += struct.pack("=IIQQ", memfd & 0xFFFFFFFF, 0xFFFFFFFF, offset, size)
    res: int = fcntl.ioctl(dev, UDMABUF_CREATE_LIST, buf)
    return res


def lowest_free() -> int:
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


def errno_name(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """The errno name ``fn(*args)`` fails with, or ``None`` on success."""
    try:
        fn(*args, **kwargs)
    except OSError as e:
        assert e.errno is not None
        return errno.errorcode[e.errno]
    return None


def contents(fd: int, size: int) -> bytes:
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    try:
        return m[:]
    finally:
        m.close()
