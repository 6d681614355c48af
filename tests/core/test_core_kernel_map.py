"""``KernelMap.write``: a slice assignment into the mapping (no ctypes call per write),
the same bytes as ``bytes(data)`` gives, for every kind of buffer a caller hands it."""

from __future__ import annotations

import array
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockkernel.mm import KernelMap

SIZE = 3 * 4096 - 100  # (not a page multiple: the end is the length, not the page)

#: ways to hand the same bytes over, and what ``bytes(data)[:len(data)]`` makes of them
_KINDS: dict[str, Callable[[bytes], bytes | bytearray | memoryview]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "memoryview slice": lambda b: memoryview(b"<" + b + b">")[1:-1],
    "strided memoryview": lambda b: memoryview(bytes(x for c in b for x in (c, 0)))[::2],
    "uint32 array": lambda b: memoryview(array.array("I", b[: len(b) // 4 * 4])),
}


@pytest.fixture
def kmap() -> Iterator[tuple[KernelMap, int]]:
    fd = os.memfd_create("kmap")
    os.ftruncate(fd, 4 * 4096)
    m = KernelMap(None, fd, SIZE)
    yield m, fd
    m.close()
    os.close(fd)


@settings(max_examples=200, deadline=None)
@given(
    writes=st.lists(
        st.tuples(
            st.integers(-10, SIZE + 10), st.binary(max_size=600), st.sampled_from(list(_KINDS))
        ),
        min_size=1,
        max_size=8,
    )
)
def test_writes_land_as_bytes_reads_them(writes: list[tuple[int, bytes, str]]) -> None:
    fd = os.memfd_create("kmap")
    try:
        os.ftruncate(fd, 4 * 4096)
        m = KernelMap(None, fd, SIZE)
        try:
            shadow = bytearray(SIZE)
            for off, raw, kind in writes:
                data = _KINDS[kind](raw)
                n = len(data)
                if off < 0 or off + n > SIZE:
                    with pytest.raises(ValueError, match="outside"):
                        m.write(off, data)
                    continue
                m.write(off, data)
                shadow[off : off + n] = bytes(data)[:n]
            assert m.read(0, SIZE) == bytes(shadow) == os.pread(fd, SIZE, 0)
        finally:
            m.close()
    finally:
        os.close(fd)


def test_a_write_after_close_is_a_value_error(kmap: tuple[KernelMap, int]) -> None:
    m, fd = kmap
    m.write(0, b"before")  # (the writable view exists now)
    m.close()
    with pytest.raises(ValueError, match="after close"):
        m.write(0, b"after")
    assert os.pread(fd, 6, 0) == b"before"
