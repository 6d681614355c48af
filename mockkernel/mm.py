"""Memory mappings: a driver's ``mmap`` op fills a ``Vma`` with real backing.

Userspace gets a real ``mmap.mmap`` object.  A driver describes what backs the
mapping by calling ``vma.remap(fd, offset, length)`` for each piece, in order
(the analogue of ``remap_pfn_range``/``vm_insert_page``): the fd is a *real*
file the kernel holds (a memfd behind a udmabuf, a BAR's memfd, ...).  One
piece becomes a plain ``mmap.mmap``; several are laid side by side in one
reservation with ``MAP_FIXED``, so the object the program holds spans them all
and is coherent with every backing file in both directions.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap as _mmap
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from errno import EINVAL, ENOMEM

from .errors import kerr

__all__ = ["PAGE_SIZE", "KernelMap", "MappedFile", "Vma", "build_mapping"]

PAGE_SIZE = _mmap.PAGESIZE
_MAP_FIXED = 0x10  # linux/mman.h (x86-64)
_RealMmap = _mmap.mmap


@dataclass
class Vma:
    """The mapping request a driver's ``mmap`` op sees (``struct vm_area_struct``)."""

    length: int
    pgoff: int  # offset into the file, in pages
    prot: int
    flags: int
    segments: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def offset(self) -> int:
        return self.pgoff * PAGE_SIZE

    def remap(self, fd: int, offset: int, length: int) -> None:
        """Back the next ``length`` bytes of the mapping with ``fd`` at ``offset``."""
        if offset % PAGE_SIZE or length <= 0:
            raise kerr(EINVAL)
        self.segments.append((fd, offset, length))


class MappedFile(_RealMmap):
    """A real mmap of a mock file; it holds a reference on the file until closed."""

    _mk_finalizer: weakref.finalize  # type: ignore[type-arg]

    def close(self) -> None:
        super().close()
        fin = getattr(self, "_mk_finalizer", None)
        if fin is not None:
            fin()


_libc: ctypes.CDLL | None = None


def _libc_mmap() -> Callable[..., int]:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.mmap.restype = ctypes.c_void_p
        _libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        _libc.munmap.restype = ctypes.c_int
        _libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fn: Callable[..., int] = _libc.mmap
    return fn


def _prot_flags(flags: int, prot: int, access: int) -> tuple[int, int]:
    if access == _mmap.ACCESS_READ:
        return _mmap.MAP_SHARED, _mmap.PROT_READ
    if access == _mmap.ACCESS_WRITE:
        return _mmap.MAP_SHARED, _mmap.PROT_READ | _mmap.PROT_WRITE
    if access == _mmap.ACCESS_COPY:
        return _mmap.MAP_PRIVATE, _mmap.PROT_READ | _mmap.PROT_WRITE
    return flags, prot


def build_mapping(vma: Vma, access: int, on_close: Callable[[], None]) -> MappedFile:
    """Turn a filled ``Vma`` into the object ``mmap.mmap`` returns."""
    if sum(seg[2] for seg in vma.segments) < vma.length:
        raise kerr(EINVAL, "mmap op did not back the whole mapping")
    flags, prot = vma.flags, vma.prot
    if len(vma.segments) == 1:
        fd, off, _ = vma.segments[0]
        m = MappedFile(fd, vma.length, flags, prot, access, off)
    else:
        m = MappedFile(-1, vma.length, flags, prot, access, 0)
        rflags, rprot = _prot_flags(flags, prot, access)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        pos = 0
        libc_mmap = _libc_mmap()
        for fd, off, length in vma.segments:
            take = min(length, vma.length - pos)
            if take <= 0:
                break
            got = libc_mmap(base + pos, take, rprot, rflags | _MAP_FIXED, fd, off)
            if got != base + pos:
                m.close()
                raise kerr(ctypes.get_errno() or ENOMEM)
            pos += take
    m._mk_finalizer = weakref.finalize(m, on_close)
    return m


class KernelMap:
    """A kernel-side mapping of a real fd (the ``kmap``/``memremap`` of this model).

    Unlike ``mmap.mmap`` it takes no fd number (Python's mmap dups the fd, which
    would shift the numbers a program sees), and it is bounds-checked: access
    after ``close`` or outside the mapping raises instead of crashing.
    """

    __slots__ = ("_addr", "length")

    def __init__(self, fd: int, length: int, offset: int = 0) -> None:
        if length <= 0 or offset % PAGE_SIZE:
            raise kerr(EINVAL)
        got = _libc_mmap()(
            None, length, _mmap.PROT_READ | _mmap.PROT_WRITE, _mmap.MAP_SHARED, fd, offset
        )
        if got in (None, ctypes.c_void_p(-1).value):
            raise kerr(ctypes.get_errno() or ENOMEM)
        self._addr: int | None = got
        self.length = length

    def _at(self, off: int, n: int) -> int:
        if self._addr is None:
            raise ValueError("KernelMap used after close")
        if off < 0 or n < 0 or off + n > self.length:
            raise ValueError(f"KernelMap access [{off}, {off + n}) outside [0, {self.length})")
        return self._addr + off

    def read(self, off: int, n: int) -> bytes:
        return ctypes.string_at(self._at(off, n), n)

    def write(self, off: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        ctypes.memmove(self._at(off, n), bytes(data), n)

    def __len__(self) -> int:
        return self.length

    def _span(self, key: slice) -> tuple[int, int]:
        start, stop, step = key.indices(self.length)
        if step != 1:
            raise ValueError("KernelMap slices must be contiguous")
        return start, max(0, stop - start)

    def __getitem__(self, key: slice) -> bytes:
        off, n = self._span(key)
        return self.read(off, n)

    def __setitem__(self, key: slice, data: bytes | bytearray | memoryview) -> None:
        off, n = self._span(key)
        if len(data) != n:
            raise ValueError("KernelMap slice assignment must keep the size")
        self.write(off, data)

    def read_u32(self, off: int) -> int:
        return int.from_bytes(self.read(off, 4), "little")

    def write_u32(self, off: int, value: int) -> None:
        self.write(off, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def fill(self, off: int, n: int, byte: int = 0) -> None:
        ctypes.memset(self._at(off, n), byte, n)

    @property
    def closed(self) -> bool:
        return self._addr is None

    def close(self) -> None:
        if self._addr is not None:
            _libc_munmap()(self._addr, self.length)
            self._addr = None


def _libc_munmap() -> Callable[..., int]:
    _libc_mmap()
    assert _libc is not None
    fn: Callable[..., int] = _libc.munmap
    return fn
