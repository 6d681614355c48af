"""A udmabuf once made: its contents and mappings, its lifetime, its cpu-access rule, and a
model of ``UDMABUF_CREATE_LIST`` checked on random item lists."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from udmabuf_testing import (
    DMA_BUF_IOCTL_SYNC,
    F_ADD_SEALS,
    F_SEAL_WRITE,
    PAGE,
    SIZE_LIMIT,
    contents,
    create,
    create_list,
    errno_name,
    lowest_free,
    make_memfd,
)

from mockkernel import Kernel


def sync(fd: int, flags: int) -> str | None:
    return errno_name(fcntl.ioctl, fd, DMA_BUF_IOCTL_SYNC, bytearray(struct.pack("=Q", flags)))


def opened(fds: list[int], fd: int) -> int:
    fds.append(fd)
    return fd


# -- contents and mappings -----------------------------------------------------------------
def test_single_item_coherent_both_ways(dev: int, fds: list[int]) -> None:
    memfd = opened(fds, make_memfd(3 * PAGE))
    buf = opened(fds, create(dev, memfd, PAGE, 2 * PAGE))
    assert contents(buf, 2 * PAGE) == os.pread(memfd, 2 * PAGE, PAGE)
    m = mmap.mmap(buf, 2 * PAGE)
    mm = mmap.mmap(memfd, 3 * PAGE)
    try:
        m[10:15] = b"HELLO"
        assert os.pread(memfd, 5, PAGE + 10) == b"HELLO" and mm[PAGE + 10 : PAGE + 15] == b"HELLO"
        os.pwrite(memfd, b"PWRITE", 2 * PAGE)
        mm[PAGE + 100 : PAGE + 104] = b"MMAP"
        assert m[PAGE : PAGE + 6] == b"PWRITE" and m[100:104] == b"MMAP"
    finally:
        m.close()
        mm.close()


def test_list_pages_in_item_order_and_aliases(dev: int, fds: list[int]) -> None:
    a = opened(fds, make_memfd(2 * PAGE, seed=1))
    b = opened(fds, make_memfd(2 * PAGE, seed=2))
    items = [(a, PAGE, PAGE), (b, 0, 2 * PAGE), (a, 0, PAGE), (a, PAGE, PAGE)]
    buf = opened(fds, create_list(dev, items))
    expect = b"".join(os.pread(fd, size, off) for fd, off, size in items)
    assert os.fstat(buf).st_size == 5 * PAGE and contents(buf, 5 * PAGE) == expect
    m = mmap.mmap(buf, 5 * PAGE)
    try:
        m[0:4] = b"ALIA"  # a's page 1, listed twice
        assert m[4 * PAGE : 4 * PAGE + 4] == b"ALIA" and os.pread(a, 4, PAGE) == b"ALIA"
        m[PAGE : PAGE + 2] = b"BB"
        assert os.pread(b, 2, 0) == b"BB"
        # a window that starts inside one item and ends inside another
        w = mmap.mmap(buf, 2 * PAGE, offset=2 * PAGE)
        assert w[:] == m[2 * PAGE : 4 * PAGE]
        w.close()
    finally:
        m.close()


@pytest.mark.parametrize(
    ("length", "offset", "flags", "prot", "result"),
    [
        (2 * PAGE, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, None),
        (100, 0, mmap.MAP_SHARED, mmap.PROT_READ, None),  # unaligned length: one page
        (PAGE, PAGE, mmap.MAP_SHARED, mmap.PROT_WRITE, None),  # write-only works
        (2 * PAGE, 0, mmap.MAP_PRIVATE, mmap.PROT_READ, "EINVAL"),  # MAP_SHARED only
        (2 * PAGE, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_EXEC, "EPERM"),  # noexec
        (3 * PAGE, 0, mmap.MAP_SHARED, mmap.PROT_READ, "EINVAL"),
        (PAGE, 2 * PAGE, mmap.MAP_SHARED, mmap.PROT_READ, "EINVAL"),
        (2 * PAGE, PAGE, mmap.MAP_SHARED, mmap.PROT_READ, "EINVAL"),
        (PAGE, 100, mmap.MAP_SHARED, mmap.PROT_READ, "EINVAL"),
        (0, 0, mmap.MAP_SHARED, mmap.PROT_READ, "EINVAL"),
    ],
)
def test_mmap_rules(
    dev: int,
    fds: list[int],
    length: int,
    offset: int,
    flags: int,
    prot: int,
    result: str | None,
) -> None:
    memfd = opened(fds, make_memfd())
    buf = opened(fds, create(dev, memfd, 0, 2 * PAGE))
    low = lowest_free()
    try:
        m = mmap.mmap(buf, length, flags, prot, offset=offset)
    except OSError as e:
        import errno

        assert e.errno is not None and errno.errorcode[e.errno] == result
        assert lowest_free() == low  # CPython's dup is closed again
        return
    assert result is None
    try:
        assert len(m) == length
        if prot & mmap.PROT_READ:
            assert m[:] == os.pread(memfd, length, offset)
    finally:
        m.close()


# -- lifetime ------------------------------------------------------------------------------
def test_buffer_outlives_memfd_and_device(mock_kernel: Kernel, fds: list[int]) -> None:
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    memfd = make_memfd()
    saved = os.pread(memfd, 2 * PAGE, 0)
    mm = mmap.mmap(memfd, 2 * PAGE)
    buf = opened(fds, create(dev, memfd, 0, 2 * PAGE))
    os.close(dev)
    os.close(memfd)
    m = mmap.mmap(buf, 2 * PAGE)
    try:
        assert m[:] == saved
        mm[0:4] = b"FROM"
        m[PAGE : PAGE + 4] = b"BACK"
        assert m[0:4] == b"FROM" and mm[PAGE : PAGE + 4] == b"BACK"
        assert sync(buf, 3) is None
        assert fcntl.ioctl(buf, 0x40086201, b"orphan\0") == b"orphan\0"
        assert os.readlink(f"/proc/self/fd/{buf}") == "/dmabuf:orphan"
    finally:
        m.close()
        mm.close()


def test_pages_stay_pinned_while_any_reference_lives(dev: int, fds: list[int]) -> None:
    memfd = opened(fds, make_memfd())
    buf = create(dev, memfd, 0, 2 * PAGE)
    dup = os.dup(buf)
    os.close(buf)
    assert errno_name(fcntl.fcntl, memfd, F_ADD_SEALS, F_SEAL_WRITE) == "EBUSY"
    m = mmap.mmap(dup, PAGE)
    os.close(dup)
    assert errno_name(fcntl.fcntl, memfd, F_ADD_SEALS, F_SEAL_WRITE) == "EBUSY"
    m.close()
    assert errno_name(fcntl.fcntl, memfd, F_ADD_SEALS, F_SEAL_WRITE) is None
    assert errno_name(os.ftruncate, memfd, PAGE) == "EPERM"  # F_SEAL_SHRINK


def test_kernel_keeps_one_fd_per_memfd(mock_kernel: Kernel, dev: int, fds: list[int]) -> None:
    table = mock_kernel.vfs.lookup("/dev/udmabuf").fops.memfds  # type: ignore[union-attr]
    a, b = opened(fds, make_memfd()), opened(fds, make_memfd())
    ro = opened(fds, os.open(f"/proc/self/fd/{a}", os.O_RDONLY))  # the same memfd as a
    x = create_list(dev, [(a, 0, PAGE), (b, 0, PAGE), (ro, PAGE, PAGE)])
    y = create(dev, ro, 0, PAGE)
    assert len(table) == 2  # a (named by a and by ro) and b
    os.close(x)
    assert len(table) == 1  # b's entry went with x, the last buffer of b
    os.close(y)
    assert len(table) == 0


# -- cpu access ------------------------------------------------------------------------------
def test_end_cpu_access_needs_a_start_first(dev: int, fds: list[int]) -> None:
    memfd = opened(fds, make_memfd())
    buf = opened(fds, create(dev, memfd, 0, 2 * PAGE))
    other = opened(fds, create(dev, memfd, 0, 2 * PAGE))
    for flags in (1 | 4, 2 | 4, 3 | 4):
        assert sync(buf, flags) == "EINVAL"  # no sg table before the first START
    dup = opened(fds, os.dup(buf))
    assert sync(dup, 1) is None  # a START through any fd of the buffer
    for flags in (1 | 4, 2 | 4, 3 | 4, 3 | 4, 2, 3 | 4):
        assert sync(buf, flags) is None  # not paired, not counted
    assert sync(other, 3 | 4) == "EINVAL"  # the state is per buffer


# -- CREATE_LIST against a model -------------------------------------------------------------
SOURCES = ("a", "b", "unsealed", "closed", "minus_one", "pipe")
MEMFD_SIZES = {"a": 4 * PAGE, "b": 3 * PAGE, "unsealed": 2 * PAGE}
OFFSETS = st.sampled_from([0, PAGE, 2 * PAGE, 3 * PAGE, 4 * PAGE, 100, 1 << 63, (1 << 64) - PAGE])
SIZES = st.sampled_from([0, PAGE, 2 * PAGE, 3 * PAGE, 100, 1 << 62, SIZE_LIMIT])
WILD_ITEM = st.tuples(st.sampled_from(SOURCES), OFFSETS, SIZES)


@st.composite
def valid_item(draw: st.DrawFn) -> tuple[str, int, int]:
    """An item that passes every check: whole pages inside a sealed memfd."""
    src = draw(st.sampled_from(["a", "b"]))
    pages = MEMFD_SIZES[src] // PAGE
    first = draw(st.integers(0, pages - 1))
    count = draw(st.integers(1, pages - first))
    return src, first * PAGE, count * PAGE


# two in three items are valid, so whole lists succeed often enough
ITEMS = st.lists(st.one_of(valid_item(), valid_item(), WILD_ITEM), max_size=5)


def model(items: list[tuple[str, int, int]]) -> str | None:
    """udmabuf_create's verdict: every item's alignment and the size limit, no pages,
    then item by item the fd, the seals and the range."""
    pages = 0
    for _, off, size in items:
        if off % PAGE or size % PAGE:
            return "EINVAL"
        pages += size // PAGE
        if pages > SIZE_LIMIT // PAGE:
            return "EINVAL"
    if not pages:
        return "EINVAL"
    for src, off, size in items:
        if src in ("closed", "minus_one", "pipe"):
            return "EBADFD"
        if src == "unsealed":
            return "EINVAL"
        if off >= 1 << 63 or size == 0 or off + size > MEMFD_SIZES[src]:
            return "EINVAL"
    return None


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=200
)
@given(items=ITEMS, cloexec=st.booleans())
def test_create_list_model(dev: int, items: list[tuple[str, int, int]], cloexec: bool) -> None:
    own: list[int] = []
    try:
        a = make_memfd(MEMFD_SIZES["a"], seed=1)
        own.append(a)
        b = make_memfd(MEMFD_SIZES["b"], seed=2)
        own.append(b)
        unsealed = make_memfd(MEMFD_SIZES["unsealed"], seals=0)
        own.append(unsealed)
        rd, wr = os.pipe()
        own += [rd, wr]
        fd_of = {"a": a, "b": b, "unsealed": unsealed, "closed": lowest_free(), "minus_one": -1}
        fd_of["pipe"] = rd
        raw = [(fd_of[src], off, size) for src, off, size in items]
        expected = model(items)
        low = lowest_free()
        try:
            buf = create_list(dev, raw, flags=int(cloexec))
        except OSError as e:
            import errno

            assert e.errno is not None
            assert errno.errorcode[e.errno] == expected, (items, e)
            assert lowest_free() == low
            return
        own.append(buf)
        assert expected is None, (items, "created")
        total = sum(size for _, _, size in raw)
        assert buf == low and os.fstat(buf).st_size == total
        assert bool(fcntl.fcntl(buf, fcntl.F_GETFD)) == cloexec
        want = b"".join(os.pread(fd, size, off) for fd, off, size in raw)
        assert contents(buf, total) == want
    finally:
        for fd in reversed(own):
            os.close(fd)
