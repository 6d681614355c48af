"""iommufd's IOAS mappings (``IOMMU_IOAS_IOVA_RANGES``/``MAP``/``UNMAP``), as the kernel's
vfio selftests (``vfio_dma_mapping_test``'s ``iommufd`` variants) drive them, with the
errnos of ``iommufd/ioas.c`` and ``io_pagetable.c`` (Linux 7.2).  The QEMU guest has no
iommufd, so these are from the source; the selftest itself passes under the supervisor
(docs/supervisor.md, "Kernel selftests")."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Iterator

import pytest

from mockkernel import Kernel
from mockkernel.uapi.linux.iommufd import (
    IOMMU_IOAS_ALLOC,
    IOMMU_IOAS_IOVA_RANGES,
    IOMMU_IOAS_MAP,
    IOMMU_IOAS_MAP_FIXED_IOVA,
    IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE,
    IOMMU_IOAS_UNMAP,
)

PAGE = 4096
U64 = (1 << 64) - 1
RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE
FIXED = RW | IOMMU_IOAS_MAP_FIXED_IOVA


@pytest.fixture
def ioas(mock_kernel: Kernel) -> Iterator[tuple[int, int]]:
    """An open ``/dev/iommu`` and a fresh IOAS id in it (no device attached)."""
    fd = os.open("/dev/iommu", os.O_RDWR)
    try:
        buf = bytearray(struct.pack("<III", 12, 0, 0))
        fcntl.ioctl(fd, IOMMU_IOAS_ALLOC, buf)
        yield fd, struct.unpack_from("<I", buf, 8)[0]
    finally:
        os.close(fd)


@pytest.fixture
def user() -> Iterator[int]:
    """Two pages of user memory; its address."""
    m = mmap.mmap(-1, 2 * PAGE)
    yield ctypes.addressof(ctypes.c_char.from_buffer(m))
    # (the mmap stays referenced by the ctypes view until collection; that is fine here)


def err(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except OSError as e:
        return errno.errorcode[e.errno or 0]


def iova_ranges(fd: int, ioas_id: int, room: int) -> tuple[int, list[tuple[int, int]], int]:
    """(num_iovas, the ranges that fit, out_iova_alignment); raises on an error."""
    arr = (ctypes.c_uint64 * (2 * max(room, 1)))()
    buf = bytearray(struct.pack("<IIIIQQ", 32, ioas_id, room, 0, ctypes.addressof(arr), 0))
    try:
        fcntl.ioctl(fd, IOMMU_IOAS_IOVA_RANGES, buf)
    finally:
        got = struct.unpack_from("<I", buf, 8)[0]
    spans = [(arr[2 * i], arr[2 * i + 1]) for i in range(min(room, got))]
    return got, spans, struct.unpack_from("<Q", buf, 24)[0]


def ioas_map(fd: int, ioas_id: int, va: int, length: int, iova: int, flags: int = FIXED) -> int:
    buf = bytearray(struct.pack("<IIIIQQQ", 40, flags, ioas_id, 0, va, length, iova))
    fcntl.ioctl(fd, IOMMU_IOAS_MAP, buf)
    return int(struct.unpack_from("<Q", buf, 32)[0])


def ioas_unmap(fd: int, ioas_id: int, iova: int, length: int) -> int:
    buf = bytearray(struct.pack("<IIQQ", 24, ioas_id, iova, length))
    fcntl.ioctl(fd, IOMMU_IOAS_UNMAP, buf)
    return int(struct.unpack_from("<Q", buf, 16)[0])


def test_iova_ranges_too_small_answers_the_count_and_emsgsize(ioas: tuple[int, int]) -> None:
    fd, ioas_id = ioas
    with pytest.raises(OSError) as e:
        iova_ranges(fd, ioas_id, 0)
    assert e.value.errno == errno.EMSGSIZE
    # the count was copied back before the error (the selftest's first call relies on it)
    assert iova_ranges(fd, ioas_id, 1) == (1, [(0, U64)], PAGE)


def test_map_unmap_and_their_errnos(ioas: tuple[int, int], user: int) -> None:
    fd, ioas_id = ioas
    assert ioas_map(fd, ioas_id, user, PAGE, 0x10000) == 0x10000
    assert err(ioas_map, fd, ioas_id, user, PAGE, 0x10000) == "EEXIST"
    assert err(ioas_map, fd, ioas_id, user, PAGE, 0x20001) == "EINVAL"  # misaligned
    assert err(ioas_map, fd, ioas_id, user, 0, 0x20000) == "EINVAL"
    assert err(ioas_map, fd, ioas_id, user, PAGE, 0x20000, IOMMU_IOAS_MAP_FIXED_IOVA) == "EINVAL"
    assert (
        err(ioas_map, fd, ioas_id, user, PAGE, 0x20000, FIXED | 0x80)
        == errno.errorcode[errno.EOPNOTSUPP]
    )
    assert err(ioas_map, fd, ioas_id, PAGE, PAGE, 0x20000) == "EFAULT"  # not user memory
    # the selftest's overflow: the range wraps past 2**64, for the map and the unmap
    top = U64 & ~(PAGE - 1)
    assert err(ioas_map, fd, ioas_id, user, 2 * PAGE, top) == "EOVERFLOW"
    assert err(ioas_unmap, fd, ioas_id, top, 2 * PAGE) == "EOVERFLOW"
    assert err(ioas_map, fd, ioas_id, user, PAGE, U64) == "EOVERFLOW"  # iova >= ULONG_MAX
    # the kernel picks an iova without FIXED_IOVA: the lowest free one
    assert ioas_map(fd, ioas_id, user, PAGE, 0, RW) == 0
    assert err(ioas_unmap, fd, ioas_id, 0x30000, PAGE) == "ENOENT"  # nothing there
    assert ioas_unmap(fd, ioas_id, 0x10000, PAGE) == PAGE
    assert ioas_map(fd, ioas_id, user, 2 * PAGE, 0x40000) == 0x40000
    assert err(ioas_unmap, fd, ioas_id, 0x40000, PAGE) == "ENOENT"  # part of an area
    # unmap all (iova 0, length U64_MAX): everything, and an empty IOAS is no error
    assert ioas_unmap(fd, ioas_id, 0, U64) == 3 * PAGE
    assert ioas_unmap(fd, ioas_id, 0, U64) == 0


def test_unknown_ioas_is_enoent(ioas: tuple[int, int], user: int) -> None:
    fd, ioas_id = ioas
    assert err(ioas_map, fd, ioas_id + 100, user, PAGE, 0x10000) == "ENOENT"
    assert err(ioas_unmap, fd, ioas_id + 100, 0, U64) == "ENOENT"
