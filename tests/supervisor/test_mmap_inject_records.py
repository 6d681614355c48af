"""``supervisor.mmap.unmap``: the kernel's records of a mapping after any munmaps.

No traced child: a ``TraceeMapping`` record is made by hand in a simulated process and
cut by random ``munmap`` ranges; every page left must still show the backing (fd,
offset) it had, every part must hold one file reference, and nothing else may.
"""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

import mockkernel
from mockkernel.mm import PAGE_SIZE
from mockkernel.supervisor.mmap import TraceeMapping, unmap

START = 0x7F0000000000
PGOFF = 3

pieces_st = st.lists(st.integers(1, 4), min_size=1, max_size=5)  # piece sizes in pages
cuts_st = st.lists(st.tuples(st.integers(-2, 24), st.integers(0, 8)), max_size=6)


def page_backing(mp: TraceeMapping) -> dict[int, tuple[int, int]]:
    """Page address -> (fd, file offset) as the record's pieces say."""
    out = {}
    for at, fd, off, n in mp.pieces:
        for i in range(0, n, PAGE_SIZE):
            out[mp.start + at + i] = (fd, off + i)
    return out


@given(pieces_st, cuts_st)
def test_unmap_keeps_what_is_left_and_its_references(
    sizes: list[int], cuts: list[tuple[int, int]]
) -> None:
    kernel = mockkernel.boot()
    try:
        proc = kernel.spawn("records")
        fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
        file = proc.files[fd]
        pieces, at = [], 0
        for i, n in enumerate(sizes):  # each piece from its own "fd", at its own offset
            pieces.append((at, 100 + i, (7 * i + 1) * PAGE_SIZE, n * PAGE_SIZE))
            at += n * PAGE_SIZE
        mp = TraceeMapping(START, at, PGOFF, 3, True, file.get(), pieces=tuple(pieces))
        proc.add_mapping(mp)
        model = page_backing(mp)
        pgoff = {START + i * PAGE_SIZE: PGOFF + i for i in range(at // PAGE_SIZE)}
        for first, n in cuts:
            unmap(proc, START + first * PAGE_SIZE, n * PAGE_SIZE)
            for i in range(first, first + n):
                model.pop(START + i * PAGE_SIZE, None)
            seen: dict[int, tuple[int, int]] = {}
            for start, rec in proc.mappings.items():
                assert start == rec.start and isinstance(rec, TraceeMapping)
                assert rec.pgoff == pgoff[rec.start]
                backing = page_backing(rec)
                assert sorted(backing) == list(range(rec.start, rec.end, PAGE_SIZE))
                seen.update(backing)
            assert seen == model
            assert file.f_count == 1 + len(proc.mappings)  # the fd and one per part
        unmap(proc, START, at)
        assert proc.mappings == {} and file.f_count == 1
        proc.exit()
    finally:
        assert kernel.shutdown(check=False) == []


def test_bad_ranges_change_nothing() -> None:
    kernel = mockkernel.boot()
    try:
        proc = kernel.spawn("records")
        fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
        file = proc.files[fd]
        mp = TraceeMapping(START, 2 * PAGE_SIZE, 0, 3, True, file.get(), pieces=((0, 9, 0, 8192),))
        proc.add_mapping(mp)
        for addr, length in ((START + 1, PAGE_SIZE), (START, 0), (START, -PAGE_SIZE)):
            unmap(proc, addr, length)
            assert proc.mappings == {START: mp} and file.f_count == 2
        unmap(proc, START, 1)  # a partial page: the whole page goes
        assert list(proc.mappings) == [START + PAGE_SIZE] and file.f_count == 2
        unmap(proc, START + PAGE_SIZE, PAGE_SIZE)
        proc.exit()
    finally:
        assert kernel.shutdown(check=False) == []
