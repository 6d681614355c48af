"""Helpers for the syscall-layer tests (tests/core): dma-bufs, fd listings, a test driver.

Everything here works through the same calls a program makes (``os``, ``fcntl``,
``mmap``), so with a redirection installed it exercises the mock kernel and without
one it runs against the real OS.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mockkernel.errors import kerr
from mockkernel.fs import File, FileOperations
from mockkernel.ioctl import _IOC_NR, _IOC_SIZE, _IOR, _IOW, _IOWR
from mockkernel.kernel import Kernel
from mockkernel.mm import Vma
from mockkernel.realfd import REAL, kernel_close
from mockkernel.testing import sealed_memfd
from mockkernel.topology import Topology, default_topology
from mockkernel.uaccess import copy_from_user, copy_to_user
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE, UDMABUF_FLAGS_CLOEXEC

__all__ = [
    "DEV",
    "PAGE",
    "ProbeOps",
    "errno_name",
    "free_numbers",
    "lowest_free",
    "make_udmabuf",
    "real_fds",
    "register_probe_device",
    "sealed_memfd",
    "topology_with_rlimit",
]

DEV = "/dev/udmabuf"
PAGE = mmap.PAGESIZE
FIONREAD = 0x541B
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SET_NAME_B = 0x40086201


def errno_name(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """The errno name ``fn(*args)`` fails with, or ``None`` if it succeeds."""
    try:
        fn(*args, **kwargs)
    except OSError as e:
        assert e.errno is not None, f"{fn} raised an OSError without errno: {e!r}"
        return errno.errorcode[e.errno]
    return None


def real_fds() -> set[int]:
    """The fd numbers open in the real OS (``/proc/self/fd``, read past any redirection).

    The directory fd the listing itself used is closed again, so it is left out.
    """
    out = set()
    for name in REAL.listdir("/proc/self/fd"):
        try:
            REAL.fcntl(int(name), fcntl.F_GETFD)
        except OSError:
            continue
        out.add(int(name))
    return out


def lowest_free() -> int:
    """The number the real OS would hand out next (open /dev/null and close it)."""
    fd: int = REAL.open("/dev/null", os.O_RDONLY)
    REAL.close(fd)
    return fd


def free_numbers(count: int) -> list[int]:
    """The ``count`` lowest fd numbers not open now (holes included), in order."""
    taken = real_fds()
    out: list[int] = []
    n = 0
    while len(out) < count:
        if n not in taken:
            out.append(n)
        n += 1
    return out


def topology_with_rlimit(limit: int) -> Topology:
    """The default machine with ``kernel.rlimit_nofile`` set to ``limit``."""
    topo = default_topology()
    return dataclasses.replace(topo, kernel=dataclasses.replace(topo.kernel, rlimit_nofile=limit))


def make_udmabuf(size: int = 2 * PAGE, cloexec: bool = False, data: bytes = b"") -> tuple[int, int]:
    """(memfd, dma-buf fd) made the way a program does it: open /dev/udmabuf, UDMABUF_CREATE.

    Needs an installed redirection (or real Linux).  /dev/udmabuf is closed again.
    """
    memfd = sealed_memfd(size, data)
    try:
        dev = os.open(DEV, os.O_RDWR)
        try:
            flags = UDMABUF_FLAGS_CLOEXEC if cloexec else 0
            arg = bytearray(struct.pack("=IIQQ", memfd, flags, 0, size))
            fd: int = fcntl.ioctl(dev, UDMABUF_CREATE, arg)
        finally:
            os.close(dev)
    except BaseException:
        os.close(memfd)
        raise
    return memfd, fd


@contextmanager
def udmabuf(size: int = 2 * PAGE, cloexec: bool = False) -> Iterator[int]:
    """A dma-buf fd for the block; its memfd is closed at once (the buffer keeps the pages)."""
    memfd, fd = make_udmabuf(size, cloexec)
    os.close(memfd)
    try:
        yield fd
    finally:
        try:
            os.close(fd)
        except OSError as e:
            if e.errno != errno.EBADF:  # the test may have closed it itself
                raise


# -- a test driver ----------------------------------------------------------------------------
# Command numbers of the probe device: the nr says what to do, the size field how much.
NR_RECORD, NR_READ, NR_FILL, NR_FILL_FAIL, NR_DEREF = 1, 2, 3, 4, 5


def probe_cmd(nr: int, size: int = 0) -> int:
    """A command of the probe device: ``_IOWR('k', nr, size)``."""
    return _IOWR("k", nr, size)


CMD_RECORD = _IOW("k", NR_RECORD, 0)  # records the raw argument, returns 0
CMD_FILL8 = _IOR("k", NR_FILL, 8)  # writes b"ABCDEFGH" to the argument, returns 3
CMD_FILL_FAIL4 = _IOR("k", NR_FILL_FAIL, 4)  # writes b"ZZZZ", then fails with EIO
CMD_DEREF = _IOW("k", NR_DEREF, 8)  # reads a u64 pointer at arg, then 4 bytes there


class ProbeOps(FileOperations):
    """A device that shows exactly what the syscall layer handed it.

    * ``NR_RECORD``: records ``arg`` itself (the raw ``unsigned long``), returns 0;
    * ``NR_READ`` (size n): records the n bytes at ``arg``, returns 5;
    * ``NR_FILL`` (size n): writes n bytes ``ABCDEFGH...`` at ``arg``, returns 3;
    * ``NR_FILL_FAIL`` (size n): writes n bytes ``Z``, then fails with ``EIO``;
    * ``NR_DEREF``: reads a u64 pointer at ``arg`` and records 4 bytes where it points.

    Anything else is ``ENOTTY``.  ``releases`` counts ``release`` calls per file, and
    ``mmap`` maps the kernel-held ``backing`` memfd, so refcounting can be checked on a
    plain device too.
    """

    name = "mkprobe"

    def __init__(self, backing: int | None = None) -> None:
        self.calls: list[tuple[int, int, Any]] = []  # (cmd, raw arg, what was seen)
        self.releases: dict[int, int] = {}
        self.backing = backing
        #: the kernel holding ``backing`` (set by :func:`register_probe_device`)
        self.kernel: Kernel | None = None

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        nr, size = _IOC_NR(cmd), _IOC_SIZE(cmd)
        if (cmd >> 8) & 0xFF != ord("k"):
            raise kerr(errno.ENOTTY)
        if nr == NR_RECORD:
            self.calls.append((cmd, arg, None))
            return 0
        if nr == NR_READ:
            self.calls.append((cmd, arg, copy_from_user(arg, size)))
            return 5
        if nr == NR_FILL:
            self.calls.append((cmd, arg, None))
            copy_to_user(arg, (b"ABCDEFGH" * (size // 8 + 1))[:size])
            return 3
        if nr == NR_FILL_FAIL:
            self.calls.append((cmd, arg, None))
            copy_to_user(arg, b"Z" * size)
            raise kerr(errno.EIO)
        if nr == NR_DEREF:
            (ptr,) = struct.unpack("=Q", copy_from_user(arg, 8))
            self.calls.append((cmd, arg, copy_from_user(ptr, 4)))
            return 0
        raise kerr(errno.ENOTTY)

    def release(self, file: File) -> None:
        self.releases[file.id] = self.releases.get(file.id, 0) + 1

    def probe_mmap(self, file: File, vma: Vma) -> None:
        if self.backing is None:
            raise kerr(errno.ENODEV)
        vma.remap(self.backing, vma.offset, vma.length)


ProbeOps.mmap = ProbeOps.probe_mmap  # type: ignore[assignment]


def register_probe_device(kernel: Kernel, name: str = "mkprobe", size: int = 4 * PAGE) -> ProbeOps:
    """``/dev/<name>``: a :class:`ProbeOps` device, mappable over a kernel-held memfd."""
    backing = os.memfd_create("mkprobe-backing", os.MFD_CLOEXEC)
    os.ftruncate(backing, size)
    # the kernel's own fd: move it out of the range programs use, like the kernel's others
    from mockkernel.realfd import hide

    backing = hide(kernel, backing)
    ops = ProbeOps(backing)
    ops.kernel = kernel
    kernel.misc_register(name, ops)
    return ops


def close_probe_device(ops: ProbeOps) -> None:
    if ops.backing is not None:
        assert ops.kernel is not None
        kernel_close(ops.kernel, ops.backing)
        ops.backing = None


def addressof(buf: bytearray | memoryview) -> int:
    """The address of a writable buffer's first byte."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))
