"""A udmabuf holds the pinned pages: after a punch of its memfd it keeps the old data.

In-process no front-end sees a ``fallocate`` punch (Python has no ``fallocate`` with a
mode; ``mmap.madvise(MADV_REMOVE)`` is seen: ``test_udmabuf_pinned_madvise.py``), so these
tests do what the supervisor does for a supervised program (``supervisor/punch.py``): the
core's notifier first, then the real punch through ctypes.  They check the buffer's
side -- its in-process ``mmap`` mappings (made before and after), its kernel views
(what an importer's sg table and a device's DMA read) -- against what real Linux
printed (``tests/real_linux/golden/c_pinprobe.txt``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os

from udmabuf_testing import PAGE, create, create_list, make_memfd, pattern

from mockkernel import Kernel
from mockkernel.driver import dma_buf_subsys
from mockkernel.gup import PinnedPages


def punch(k: Kernel, fd: int, offset: int, length: int) -> int:
    """The notifier, then ``fallocate(fd, PUNCH_HOLE | KEEP_SIZE, offset, length)``."""
    st = os.fstat(fd)
    moved = k.subsys(PinnedPages).punch_hole((st.st_dev, st.st_ino), offset, length)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    args = (ctypes.c_int(fd), ctypes.c_int(3), ctypes.c_long(offset), ctypes.c_long(length))
    assert libc.fallocate(*args) == 0, os.strerror(ctypes.get_errno())
    return moved


def fill(fd: int, pages: int) -> None:
    for i in range(pages):
        os.pwrite(fd, bytes([ord("a") + i]) * PAGE, i * PAGE)


def firsts(m: mmap.mmap | bytes, pages: int) -> bytes:
    return bytes(m[i * PAGE] for i in range(pages))


def test_mappings_before_and_after_keep_the_old_pages(
    mock_kernel: Kernel, dev: int, fds: list[int]
) -> None:
    memfd = make_memfd(3 * PAGE)
    fds.append(memfd)
    fill(memfd, 3)
    buf = create(dev, memfd, 0, 3 * PAGE)
    fds.append(buf)
    before = mmap.mmap(buf, 3 * PAGE)
    m = mmap.mmap(memfd, 3 * PAGE)
    try:
        assert punch(mock_kernel, memfd, PAGE, PAGE) == PAGE
        assert firsts(m, 3) == b"a\0c"
        assert firsts(before, 3) == b"abc"
        with mmap.mmap(buf, 3 * PAGE) as after:
            assert firsts(after, 3) == b"abc"
            os.pwrite(memfd, b"X" * PAGE, PAGE)
            os.pwrite(memfd, b"Y" * PAGE, 2 * PAGE)
            assert firsts(before, 3) == b"abY" and firsts(after, 3) == b"abY"
            before[PAGE] = ord("Z")
            before[0] = ord("W")
            assert firsts(os.pread(memfd, 3 * PAGE, 0), 3) == b"WXY"
            assert firsts(after, 3) == b"WZY"
            # the kernel's view (an importer's sg entry, a device's DMA) is the buffer's
            (ubuf,) = [d.priv for d in dma_buf_subsys(mock_kernel).dmabufs.values()]
            assert firsts(ubuf.slices[0].view.read(0, 3 * PAGE), 3) == b"WZY"
            assert ubuf.slices[0].pin.moved() == PAGE
    finally:
        before.close()
        m.close()


def test_a_list_with_one_slice_punched(mock_kernel: Kernel, dev: int, fds: list[int]) -> None:
    m1, m2 = make_memfd(2 * PAGE), make_memfd(2 * PAGE)
    fds += [m1, m2]
    fill(m1, 2)
    fill(m2, 2)
    buf = create_list(dev, [(m1, 0, 2 * PAGE), (m2, 0, 2 * PAGE)])
    fds.append(buf)
    with mmap.mmap(buf, 4 * PAGE) as p:
        assert punch(mock_kernel, m1, 0, PAGE) == PAGE
        assert firsts(p, 4) == b"abab"
        for fd, i, c in ((m1, 0, b"P"), (m1, 1, b"Q"), (m2, 0, b"R"), (m2, 1, b"S")):
            os.pwrite(fd, c * PAGE, i * PAGE)
        assert firsts(p, 4) == b"aQRS"  # as real Linux: only the punched page moved


def test_a_buffer_released_after_a_punch_leaves_nothing(
    mock_kernel: Kernel, dev: int, fds: list[int]
) -> None:
    memfd = make_memfd(2 * PAGE)
    fds.append(memfd)
    os.close(create(dev, memfd, 0, PAGE))  # (the kernel's placeholder of dma-buf fds)
    open_before = len(os.listdir("/proc/self/fd"))
    buf = create(dev, memfd, 0, 2 * PAGE)
    with mmap.mmap(buf, 2 * PAGE) as p:
        punch(mock_kernel, memfd, 0, 2 * PAGE)
        os.close(buf)
        assert p[:PAGE] == pattern(2 * PAGE)[:PAGE]  # the old data, the buffer's alone
    pins = mock_kernel.subsys(PinnedPages)
    assert not pins.has_pins() and pins.live() == []
    assert len(os.listdir("/proc/self/fd")) == open_before
