"""iommufd's extensible structs are read with ``copy_struct_from_user`` semantics: the bytes
past the kernel's struct are checked piece by piece, so a huge ``size`` costs only what is
mapped (issue 12, defect 1: one IOAS_ALLOC used to read up to 4 GiB in one copy)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import tracemalloc
from collections.abc import Iterator

import pytest

from mockkernel import Kernel
from mockkernel.mm import _libc_mmap, _libc_munmap
from mockkernel.uaccess import check_zeroed_user, copy_struct_from_user
from mockkernel.uapi.linux.iommufd import IOMMU_IOAS_ALLOC

PAGE = 4096


@pytest.fixture
def pages() -> Iterator[int]:
    """Two readable zeroed pages followed by an unmapped one."""
    mmap, munmap = _libc_mmap(), _libc_munmap()
    base = mmap(None, 3 * PAGE, 3, 0x22, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
    assert base not in (None, ctypes.c_void_p(-1).value)
    assert munmap(base + 2 * PAGE, PAGE) == 0
    yield int(base)
    munmap(base, 2 * PAGE)


def _ioas_alloc(kernel: Kernel, addr: int) -> int | str:
    proc = kernel.init_process
    fd = proc.sys_open("/dev/iommu", os.O_RDWR)
    try:
        return proc.sys_ioctl(fd, IOMMU_IOAS_ALLOC, addr)
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    finally:
        proc.sys_close(fd)


@pytest.mark.parametrize("size", [0x40000000, 0xFFFFFFF0])
def test_huge_size_stops_at_the_first_unmapped_page(
    mock_kernel: Kernel, pages: int, size: int
) -> None:
    ctypes.memmove(pages, struct.pack("<III", size, 0, 0), 12)
    tracemalloc.start()
    try:
        assert _ioas_alloc(mock_kernel, pages) == "EFAULT"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # never a buffer of `size` bytes


def test_nonzero_byte_before_the_hole_is_e2big(mock_kernel: Kernel, pages: int) -> None:
    ctypes.memmove(pages, struct.pack("<III", 0x40000000, 0, 0), 12)
    ctypes.memmove(pages + PAGE + 17, b"\x01", 1)
    assert _ioas_alloc(mock_kernel, pages) == "E2BIG"


def test_trailing_zeros_up_to_the_hole_are_accepted(mock_kernel: Kernel, pages: int) -> None:
    size = 2 * PAGE  # the whole mapped range, all zero past the struct
    ctypes.memmove(pages, struct.pack("<III", size, 0, 0), 12)
    assert _ioas_alloc(mock_kernel, pages) == 0
    (out_id,) = struct.unpack_from("<I", ctypes.string_at(pages + 8, 4))
    assert out_id >= 1


def test_helpers(pages: int) -> None:
    assert check_zeroed_user(pages, 2 * PAGE)
    with pytest.raises(OSError) as e:
        check_zeroed_user(pages, 2 * PAGE + 1)
    assert e.value.errno == errno.EFAULT
    ctypes.memmove(pages + 100, b"\x07", 1)
    assert not check_zeroed_user(pages + 8, 3 * PAGE)  # non-zero before the hole: no EFAULT
    assert copy_struct_from_user(8, pages, 4) == bytes(8)  # a smaller struct is zero-filled
    with pytest.raises(OSError) as e:
        copy_struct_from_user(8, pages, 200)
    assert e.value.errno == errno.E2BIG
