"""``mmap.mmap`` of a mock fd: the fast path gives what the general path gives.

Untraced, a map whose arguments pass every check of ``do_mmap`` at a glance
(``MAP_SHARED``, ``PROT_READ``/``PROT_WRITE``, an aligned offset, a file open for it)
goes straight to the driver's op, and a buffer backed by one piece is mapped by one
real ``mmap`` of that piece, CPython's own dup becoming the map's dup of the mock fd.
Traced, every step goes through ``Process.sys_*`` (a ``F_DUPFD_CLOEXEC``, then
``sys_mmap``'s checks and a reservation laid piece by piece).  Each example makes the
same call both ways on the same buffer and compares everything a program and the
kernel see: the error (type, errno, message), or the bytes, the length, the kept fd,
the mapping's record and ``/proc/self/maps`` line, what ``flush``/``size``/``resize``
answer, coherence with the memfds both ways, and that closing gives every reference back.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.mm import MappedFile
from mockkernel.userspace.mmap import MmapCalls

PAGE = mmap.PAGESIZE
UDMABUF_CREATE = 0x40187542
UDMABUF_CREATE_LIST = 0x40087543
MAP_SHARED_VALIDATE = 0x03
MAP_POPULATE = 0x8000
MAP_SYNC = 0x80000
R, W, X = mmap.PROT_READ, mmap.PROT_WRITE, mmap.PROT_EXEC

Slices = list[tuple[int, int, int]]  # (memfd, offset, size)


def _buffer(layout: list[tuple[int, int]]) -> tuple[int, Slices]:
    """A udmabuf of ``layout`` (pages, memfd offset in pages) per slice, each slice over
    its own memfd filled with distinct bytes: ``(dmabuf fd, slices)``."""
    slices: Slices = []
    for i, (pages, at) in enumerate(layout):
        memfd = os.memfd_create(f"fast-{i}", os.MFD_ALLOW_SEALING)
        os.ftruncate(memfd, (pages + at) * PAGE)
        os.pwrite(memfd, bytes((j * 13 + i * 41) % 251 for j in range((pages + at) * PAGE)), 0)
        fcntl.fcntl(memfd, 1033, 0x2)  # F_ADD_SEALS, F_SEAL_SHRINK
        slices.append((memfd, at * PAGE, pages * PAGE))
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        if len(slices) == 1:
            memfd, off, size = slices[0]
            arg = bytearray(struct.pack("=IIQQ", memfd, 0, off, size))
            fd = fcntl.ioctl(dev, UDMABUF_CREATE, arg)
        else:
            arg = bytearray(struct.pack("=II", 0, len(slices)))
            for memfd, off, size in slices:
                arg += struct.pack("=IIQQ", memfd, 0, off, size)
            fd = fcntl.ioctl(dev, UDMABUF_CREATE_LIST, arg)
    finally:
        os.close(dev)
    return fd, slices


def _contents(slices: Slices) -> bytes:
    return b"".join(os.pread(memfd, size, off) for memfd, off, size in slices)


def _answer(call: Callable[[], Any]) -> tuple[object, ...]:
    try:
        return ("ok", call())
    except Exception as e:
        return ("raised", type(e).__name__, getattr(e, "errno", None), str(e))


def _maps_lines() -> list[str]:
    with open("/proc/self/maps") as f:
        return [ln.split(" ", 1)[1] for ln in f if "dmabuf" in ln]


def _map_once(kernel: Kernel, fd: int, slices: Slices, kw: dict[str, int]) -> tuple[object, ...]:
    proc = kernel.init_process
    files = proc.files
    before = {n: (f, f.f_count) for n, f in files.items()}
    try:
        m = mmap.mmap(fd, **kw)
    except Exception as e:
        assert {n: (f, f.f_count) for n, f in files.items()} == before  # nothing leaked
        assert not proc.mappings
        return ("raised", type(e).__name__, getattr(e, "errno", None), str(e))
    try:
        (mp,) = proc.mappings.values()
        kept = m._mk_fd  # type: ignore[attr-defined]
        offset = kw.get("offset", 0)
        length = len(m)
        seen: list[object] = [
            length,
            # (a PROT_NONE map is not read: that would be SIGSEGV, as on Linux)
            mp.prot == 0 or m[:] == _contents(slices)[offset : offset + length],
            kept,
            files[kept] is files[fd],
            os.get_inheritable(kept),
            files[fd].f_count - before[fd][1],
            (mp.start, mp.length, mp.pgoff, mp.prot, mp.shared, mp.file is files[fd]),
            (mp.pieces, mp.map_prot, mp.map_flags, mp.zapped),
            mp.start == m._mk_addr,  # type: ignore[attr-defined]
            _maps_lines(),
            _answer(m.flush),
            _answer(m.size),
            _answer(lambda: m.resize(length + PAGE)),
        ]
        seen[6] = seen[6][1:]  # type: ignore[index]  # (the address differs from run to run)
        if mp.prot & W and mp.shared and kw.get("access", 0) != mmap.ACCESS_READ:
            # coherent both ways: a write through the map shows in the memfds, and back
            data = bytes((j * 3 + 1) % 256 for j in range(length))
            m[:] = data
            assert _contents(slices)[offset : offset + length] == data
            memfd, off, size = slices[0]
            if offset < size:
                n = min(8, length)
                os.pwrite(memfd, b"\xa5" * n, off + offset)
                assert m[:n] == b"\xa5" * n
    finally:
        m.close()
    assert {n: (f, f.f_count) for n, f in files.items()} == before  # every reference back
    assert not proc.mappings and not _maps_lines()
    return ("ok", *seen)


_LAYOUTS = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2)), min_size=1, max_size=3)
_LENGTHS = st.sampled_from(
    [0, 1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 3 * PAGE, 5 * PAGE, 10 * PAGE]
)
_OFFSETS = st.sampled_from([0, 0, PAGE, 2 * PAGE, 1, PAGE // 2, 9 * PAGE, -PAGE])
_FLAGS = st.sampled_from(
    [
        mmap.MAP_SHARED,
        mmap.MAP_SHARED,
        mmap.MAP_PRIVATE,
        MAP_SHARED_VALIDATE,
        MAP_SHARED_VALIDATE | MAP_SYNC,
        mmap.MAP_SHARED | MAP_POPULATE,
        0,
    ]
)
_PROTS = st.sampled_from([R | W, R | W, R, W, 0, R | X, R | W | X])
_ACCESS = st.sampled_from([0, 0, 0, mmap.ACCESS_READ, mmap.ACCESS_WRITE, mmap.ACCESS_COPY, 7])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    layout=_LAYOUTS,
    length=_LENGTHS,
    offset=_OFFSETS,
    flags=_FLAGS,
    prot=_PROTS,
    access=_ACCESS,
    keywords=st.booleans(),
)
def test_mmap_of_a_dma_buf_fast_and_general_paths_agree(
    mock_kernel: Kernel,
    layout: list[tuple[int, int]],
    length: int,
    offset: int,
    flags: int,
    prot: int,
    access: int,
    keywords: bool,
) -> None:
    fd, slices = _buffer(layout)
    try:
        kw = {"length": length, "offset": offset}
        if access or not keywords:
            kw["access"] = access
        if not access or keywords:
            kw.update(flags=flags, prot=prot)
        fast = _map_once(mock_kernel, fd, slices, kw)
        with mock_kernel.tracer.capture() as events:
            general = _map_once(mock_kernel, fd, slices, kw)
        assert fast == general
        if fast[0] == "ok":  # (the general path was taken: each call traced)
            assert [e["event"] for e in events if e["event"] in ("sys.fcntl", "sys.mmap")] == [
                "sys.fcntl",
                "sys.mmap",
            ]
    finally:
        os.close(fd)
        for memfd, _, _ in slices:
            os.close(memfd)


def test_mmap_of_a_read_only_file_is_refused_before_the_driver_is_asked(
    mock_kernel: Kernel,
) -> None:
    """A sysfs ``resource0`` opened read-only: a shared writable map is ``EACCES`` (the
    fast path's test lets it through to ``do_mmap``), a read-only one maps, both ways."""
    bdf = "0000:01:00.0"
    fd = os.open(f"/sys/bus/pci/devices/{bdf}/resource0", os.O_RDONLY)
    try:
        for traced in (False, True):
            with mock_kernel.tracer.capture() if traced else contextlib.nullcontext():
                try:
                    mmap.mmap(fd, PAGE)
                except OSError as e:
                    assert e.errno == 13  # EACCES
                else:
                    raise AssertionError("a writable shared map of a read-only file")
                m = mmap.mmap(fd, PAGE, prot=R)
                try:
                    assert len(m) == PAGE and m.flush() is None  # ACCESS_READ: no msync
                finally:
                    m.close()
            assert not mock_kernel.init_process.mappings
    finally:
        os.close(fd)


def test_a_map_closed_again_while_it_is_being_unmapped_is_unmapped_once(
    mock_kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``close()`` (and collection) take the map's owner once (``dict.pop``): a second
    ``close`` that arrives while the first one is unmapping (another thread's, made
    deterministic here by closing again from inside the owner's ``unmap``) finds nothing
    left to do, so the kept dup and the mapping's reference are dropped once."""
    fd, slices = _buffer([(1, 0)])
    proc = mock_kernel.init_process
    inner: list[int] = []
    real_unmap = MmapCalls.unmap

    def unmap(self: MmapCalls, m: MappedFile) -> None:
        inner.append(1)
        m.close()  # (a second close, before the first one's unmap ran)
        real_unmap(self, m)

    monkeypatch.setattr(MmapCalls, "unmap", unmap)
    try:
        base = proc.files[fd].f_count
        m = mmap.mmap(fd, PAGE)
        kept = m._mk_fd  # type: ignore[attr-defined]
        m.close()
        assert inner == [1] and kept not in proc.files
        assert proc.files[fd].f_count == base and not proc.mappings
    finally:
        os.close(fd)
        for memfd, _, _ in slices:
            os.close(memfd)
