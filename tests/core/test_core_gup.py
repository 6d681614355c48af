"""Pinned pages (``mockkernel/gup.py``): a punch moves the pinned pages first.

The pins are made and punched directly (no driver, no front-end): a real memfd, the
notifier (:meth:`PinnedPages.punch_hole`) and then the real punch (``fallocate`` through
ctypes, as the program's call would run), checked against a model of pages: a pin
keeps the page *objects* it pinned; a punch gives the memfd fresh zero pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mockkernel
from mockkernel.gup import PinnedFolios, PinnedPages, memfd_pin_folios, unpin_folios
from mockkernel.kernel import Kernel
from mockkernel.mm import PAGE_SIZE as PAGE

_FALLOC_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def real_punch(fd: int, offset: int, length: int) -> None:
    """The program's ``fallocate(fd, PUNCH_HOLE | KEEP_SIZE, offset, length)``."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    r = libc.fallocate(
        ctypes.c_int(fd), ctypes.c_int(_FALLOC_PUNCH), ctypes.c_long(offset),
        ctypes.c_long(length),
    )  # fmt: skip
    if r != 0:
        raise OSError(ctypes.get_errno(), "fallocate")


def punch(k: Kernel, fd: int, offset: int, length: int) -> int:
    """What a front-end does: the notifier, then the real punch."""
    st_ = os.fstat(fd)
    moved = k.subsys(PinnedPages).punch_hole((st_.st_dev, st_.st_ino), offset, length)
    real_punch(fd, offset, length)
    return moved


@pytest.fixture
def k() -> Iterator[Kernel]:
    kernel = mockkernel.boot()
    try:
        yield kernel
    finally:
        assert kernel.shutdown(check=False) == []


@pytest.fixture
def memfd() -> Iterator[int]:
    fd = os.memfd_create("gup-test", os.MFD_CLOEXEC)
    os.ftruncate(fd, 4 * PAGE)
    for i in range(4):
        os.pwrite(fd, bytes([ord("a") + i]) * PAGE, i * PAGE)
    yield fd
    os.close(fd)


def page(view_or_fd: PinnedFolios | int, i: int) -> bytes:
    """Page ``i`` of a pin's view or of an fd, as one byte when uniform (else all of it)."""
    if isinstance(view_or_fd, PinnedFolios):
        data = view_or_fd.view.read(i * PAGE, PAGE)
    else:
        data = os.pread(view_or_fd, PAGE, i * PAGE)
    return data[:1] if data == data[:1] * PAGE else data


def fds_open() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_punch_leaves_the_pin_the_old_pages_and_parts_them_from_the_memfd(
    k: Kernel, memfd: int
) -> None:
    pin = memfd_pin_folios(k, memfd, PAGE, 2 * PAGE)  # pages b, c
    assert punch(k, memfd, 0, 4 * PAGE) == 2 * PAGE
    assert [page(memfd, i) for i in range(4)] == [b"\0"] * 4
    assert [page(pin, i) for i in range(2)] == [b"b", b"c"]
    os.pwrite(memfd, b"M" * PAGE, PAGE)
    pin.view.write(PAGE, b"V" * PAGE)
    assert page(pin, 0) == b"b" and page(memfd, 2) == b"\0"
    assert pin.moved() == 2 * PAGE
    # what backs the pin now: kernel-private memory, not the memfd
    segs = pin.segments(0, 2 * PAGE)
    assert sum(n for _, _, n in segs) == 2 * PAGE
    assert all(os.fstat(fd).st_ino != os.fstat(memfd).st_ino for fd, _, _ in segs)
    unpin_folios(pin)


def test_pages_outside_the_range_stay_shared(k: Kernel, memfd: int) -> None:
    pin = memfd_pin_folios(k, memfd, 0, 4 * PAGE)
    assert punch(k, memfd, PAGE, PAGE) == PAGE
    os.pwrite(memfd, b"XXXX" * (PAGE // 4), 0)
    os.pwrite(memfd, b"Y" * PAGE, PAGE)
    os.pwrite(memfd, b"Z" * PAGE, 3 * PAGE)
    assert [page(pin, i) for i in range(4)] == [b"X", b"b", b"c", b"Z"]
    # the pin is three runs now: memfd, copy, memfd
    segs = pin.segments(0, 4 * PAGE)
    assert [n for _, _, n in segs] == [PAGE, PAGE, 2 * PAGE]
    assert segs[0][:2] == (memfd, 0) and segs[2][:2] == (memfd, 2 * PAGE)
    assert pin.segments(PAGE + 100, PAGE + 200)[0][2] == 100
    unpin_folios(pin)


@pytest.mark.parametrize(
    ("offset", "length", "moved"),
    [
        (100, 200, 0),  # inside one page: zeroed in place, nothing moves
        (PAGE + 1, PAGE, 0),  # across two pages, neither whole
        (PAGE - 1, PAGE + 2, PAGE),  # page 1 whole, the ends partial
        (0, 4 * PAGE + 4096, 4 * PAGE),  # past the end
        (-PAGE, 2 * PAGE, PAGE),  # (a negative start fails for real: never asked)
    ],
)
def test_only_whole_pages_move(k: Kernel, memfd: int, offset: int, length: int, moved: int) -> None:
    pin = memfd_pin_folios(k, memfd, 0, 4 * PAGE)
    st_ = os.fstat(memfd)
    assert k.subsys(PinnedPages).punch_hole((st_.st_dev, st_.st_ino), offset, length) == moved
    assert pin.moved() == moved
    unpin_folios(pin)


def test_a_partial_page_is_zeroed_for_both(k: Kernel, memfd: int) -> None:
    pin = memfd_pin_folios(k, memfd, 0, 2 * PAGE)
    assert punch(k, memfd, 100, 200) == 0
    data = pin.view.read(0, PAGE)
    assert data[99:101] == b"a\0" and data[299:301] == b"\0a"
    os.pwrite(memfd, b"Q", 0)
    assert pin.view.read(0, 1) == b"Q"  # still the memfd's page
    unpin_folios(pin)


def test_two_pins_of_one_page_keep_sharing_it(k: Kernel, memfd: int) -> None:
    calls: list[str] = []

    def owner_a() -> None:
        calls.append("a")

    a1 = memfd_pin_folios(k, memfd, 0, 2 * PAGE, owner_a)
    a2 = memfd_pin_folios(k, memfd, PAGE, PAGE, owner_a)  # one owner, two pins
    b = memfd_pin_folios(k, memfd, PAGE, 3 * PAGE, lambda: calls.append("b"))
    assert punch(k, memfd, 0, 4 * PAGE) == 4 * PAGE  # each page copied once
    assert sorted(calls) == ["a", "b"]  # each owner told once
    a1.view.write(PAGE, b"S" * PAGE)
    assert page(a2, 0) == b"S" and page(b, 0) == b"S"
    b.view.write(PAGE, b"T" * PAGE)  # memfd page 2: b's alone
    assert page(memfd, 2) == b"\0"
    for p in (a1, a2, b):
        unpin_folios(p)


def test_a_second_punch_moves_nothing_and_changes_nothing(k: Kernel, memfd: int) -> None:
    pin = memfd_pin_folios(k, memfd, 0, 2 * PAGE)
    assert punch(k, memfd, 0, PAGE) == PAGE
    os.pwrite(memfd, b"N" * PAGE, 0)
    assert punch(k, memfd, 0, PAGE) == 0
    assert page(pin, 0) == b"a"
    assert punch(k, memfd, 0, 2 * PAGE) == PAGE  # page 1 was still the memfd's
    assert [page(pin, i) for i in range(2)] == [b"a", b"b"]
    unpin_folios(pin)


def test_other_memfds_are_untouched(k: Kernel, memfd: int) -> None:
    other = os.memfd_create("gup-other", os.MFD_CLOEXEC)
    try:
        os.ftruncate(other, PAGE)
        pin = memfd_pin_folios(k, memfd, 0, PAGE)
        assert punch(k, other, 0, PAGE) == 0
        assert pin.moved() == 0
        unpin_folios(pin)
    finally:
        os.close(other)


def test_the_copies_go_with_their_last_pin(k: Kernel, memfd: int) -> None:
    pins = k.subsys(PinnedPages)
    before = fds_open()
    p1 = memfd_pin_folios(k, memfd, 0, 2 * PAGE)
    p2 = memfd_pin_folios(k, memfd, 0, PAGE)
    assert punch(k, memfd, 0, 2 * PAGE) == 2 * PAGE
    assert fds_open() == before + 1  # one copy for the punch
    assert pins.has_pins() and pins.live() == [p1, p2]
    unpin_folios(p1)
    assert fds_open() == before + 1  # p2 still uses it
    unpin_folios(p2)
    unpin_folios(p2)  # idempotent
    assert fds_open() == before and not pins.has_pins() and pins.live() == []


def test_shutdown_releases_what_a_driver_left_pinned(memfd: int) -> None:
    before = fds_open()
    kernel = mockkernel.boot()
    memfd_pin_folios(kernel, memfd, 0, PAGE)
    st_ = os.fstat(memfd)
    kernel.subsys(PinnedPages).punch_hole((st_.st_dev, st_.st_ino), 0, PAGE)
    leaks = kernel.shutdown(check=False)
    assert len(leaks) == 1 and "pinned pages" in leaks[0] and "never unpinned" in leaks[0]
    assert fds_open() == before


@pytest.mark.parametrize(("offset", "size"), [(1, PAGE), (0, 0), (0, PAGE + 1), (-PAGE, PAGE)])
def test_a_pin_must_be_whole_pages(k: Kernel, memfd: int, offset: int, size: int) -> None:
    with pytest.raises(OSError, match="Invalid argument"):
        memfd_pin_folios(k, memfd, offset, size)
    assert not k.subsys(PinnedPages).has_pins()


def test_the_punch_is_traced(k: Kernel, memfd: int) -> None:
    pin = memfd_pin_folios(k, memfd, 0, 2 * PAGE)
    with k.tracer.capture() as events:
        punch(k, memfd, 0, PAGE)
        punch(k, memfd, 0, PAGE)  # nothing left to move: no event
    got = [e for e in events if e["event"] == "mm.punch_pinned"]
    assert len(got) == 1 and got[0]["moved"] == PAGE and got[0]["pins"] == 1
    unpin_folios(pin)


# -- a model: pins hold page objects, the memfd a fresh page after a punch ----------------
N = 6
_op = st.one_of(
    st.tuples(st.just("punch"), st.integers(0, N * PAGE), st.integers(1, N * PAGE)),
    st.tuples(st.just("memfd"), st.integers(0, N - 1), st.integers(1, 255)),
    st.tuples(st.just("pin"), st.integers(0, 3), st.integers(1, 255)),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spans=st.lists(
        st.tuples(st.integers(0, N - 1), st.integers(1, N)).filter(lambda t: t[0] + t[1] <= N),
        min_size=1,
        max_size=4,
    ),
    ops=st.lists(_op, max_size=12),
)
def test_pins_match_a_model_of_pages(
    k: Kernel, spans: list[tuple[int, int]], ops: list[tuple[str, int, int]]
) -> None:
    """Linux's rule as a model: a pin holds page objects; a punch gives the memfd fresh
    pages where it covers a whole page and zeroes the covered part of a page in place."""
    fd = os.memfd_create("gup-model", os.MFD_CLOEXEC)
    pins: list[PinnedFolios] = []
    try:
        os.ftruncate(fd, N * PAGE)
        memfd_pages = [bytearray(PAGE) for _ in range(N)]
        for first, n in spans:
            pins.append(memfd_pin_folios(k, fd, first * PAGE, n * PAGE))
        held = [[memfd_pages[first + i] for i in range(n)] for first, n in spans]
        for kind, a, b in ops:
            if kind == "punch":
                punch(k, fd, a, b)
                for i in range(N):
                    lo, hi = max(a, i * PAGE), min(a + b, (i + 1) * PAGE)
                    if hi - lo == PAGE:
                        memfd_pages[i] = bytearray(PAGE)
                    elif lo < hi:
                        memfd_pages[i][lo - i * PAGE : hi - i * PAGE] = bytes(hi - lo)
            elif kind == "memfd":
                os.pwrite(fd, bytes([b]) * PAGE, a * PAGE)
                memfd_pages[a][:] = bytes([b]) * PAGE
            elif a < len(pins):
                pins[a].view.write(0, bytes([b]) * PAGE)
                held[a][0][:] = bytes([b]) * PAGE
            for pin, pages in zip(pins, held, strict=True):
                assert pin.view.read(0, pin.size) == b"".join(pages)
            assert os.pread(fd, N * PAGE, 0) == b"".join(memfd_pages)
    finally:
        for pin in pins:
            unpin_folios(pin)
        os.close(fd)
