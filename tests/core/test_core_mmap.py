"""``mmap.mmap`` of mock fds: the object a program gets, the errnos, and the lifetime of what
it maps.  Expected values are real Linux 7.2's (golden udmabuf.jsonl mmap_*, lifetime.jsonl,
tests/core/real_linux/syscall_layer.golden.jsonl dmabuf_mmap_errors)."""

from __future__ import annotations

import errno
import gc
import mmap
import os
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import DEV, PAGE, errno_name, lowest_free, make_udmabuf, real_fds, udmabuf

from mockkernel.driver import dma_buf_subsys
from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL

SIZE = 2 * PAGE


def test_a_mock_mapping_is_an_mmap(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf(SIZE, data=b"hello")
    try:
        m = mmap.mmap(buf, SIZE)
        anon = mmap.mmap(-1, PAGE)
        assert isinstance(m, mmap.mmap) and isinstance(anon, mmap.mmap)
        assert isinstance(m, REAL.mmap)
        assert type(anon) is REAL.mmap  # a real fd (here: none) maps for real
        assert len(m) == SIZE and m[:5] == b"hello"
        assert m.find(b"llo") == 2
        m[:5] = b"HELLO"
        assert os.pread(memfd, 5, 0) == b"HELLO"  # coherent with the memfd
        os.pwrite(memfd, b"back", 8)
        assert m[8:12] == b"back"
        m.close()
        anon.close()
    finally:
        os.close(buf)
        os.close(memfd)


@pytest.mark.parametrize(
    "make",
    [
        lambda fd: mmap.mmap(fd, SIZE, access=mmap.ACCESS_READ),
        lambda fd: mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ),
        lambda fd: mmap.mmap(fd, SIZE, prot=mmap.PROT_READ),
    ],
    ids=["ACCESS_READ", "PROT_READ", "prot-keyword"],
)
def test_read_only_mappings(mock_kernel: Kernel, make: Callable[[int], mmap.mmap]) -> None:
    memfd, buf = make_udmabuf(SIZE, data=b"ro")
    try:
        m = make(buf)
        assert m[:2] == b"ro"
        with pytest.raises(TypeError):
            m[0:1] = b"x"
        with pytest.raises(TypeError):
            m.write(b"x")
        m.close()
        assert os.pread(memfd, 2, 0) == b"ro"
    finally:
        os.close(buf)
        os.close(memfd)


@pytest.mark.parametrize(
    ("call", "expect"),
    [
        (lambda fd: mmap.mmap(fd, 0), "EINVAL"),  # not a regular file: length 0 reaches mmap(2)
        (lambda fd: mmap.mmap(fd, PAGE, offset=100), "EINVAL"),
        (lambda fd: mmap.mmap(fd, SIZE + PAGE), "EINVAL"),
        (lambda fd: mmap.mmap(fd, PAGE, offset=SIZE), "EINVAL"),
        (lambda fd: mmap.mmap(fd, SIZE, offset=PAGE), "EINVAL"),
        (lambda fd: mmap.mmap(fd, PAGE, flags=mmap.MAP_PRIVATE), "EINVAL"),  # udmabuf: shared only
        (lambda fd: mmap.mmap(fd, PAGE, access=mmap.ACCESS_COPY), "EINVAL"),
        (lambda fd: mmap.mmap(fd, PAGE, prot=mmap.PROT_READ | mmap.PROT_EXEC), "EPERM"),
        (lambda fd: mmap.mmap(fd, -1), OverflowError),
        (lambda fd: mmap.mmap(fd, PAGE, offset=-PAGE), OverflowError),
        (lambda fd: mmap.mmap(fd, PAGE, prot=mmap.PROT_READ, access=mmap.ACCESS_READ), ValueError),
        (lambda fd: mmap.mmap(fd, PAGE, access=7), ValueError),
    ],
)
def test_mmap_errors(mock_kernel: Kernel, call: Callable[[int], Any], expect: Any) -> None:
    with udmabuf(SIZE) as buf:
        file = mock_kernel.init_process.files[buf]
        low = lowest_free()
        if isinstance(expect, str):
            assert errno_name(call, buf) == expect
        else:
            with pytest.raises(expect):
                call(buf)
        assert file.f_count == 1, "a failed mmap holds nothing"
        assert lowest_free() == low, "nor an fd"
        assert set(mock_kernel.init_process.files) == {buf}


def test_mmap_of_a_device_without_mmap_is_enodev(mock_kernel: Kernel) -> None:
    fd = os.open(DEV, os.O_RDWR)
    try:
        assert errno_name(mmap.mmap, fd, PAGE) == "ENODEV"
        assert errno_name(mmap.mmap, fd, 0) == "EINVAL"
        assert mock_kernel.init_process.files[fd].f_count == 1
    finally:
        os.close(fd)


def test_mmap_of_a_closed_fd_is_ebadf(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf(SIZE)
    os.close(buf)
    os.close(memfd)
    assert errno_name(mmap.mmap, buf, PAGE) == "EBADF"


def test_mapping_keeps_the_dma_buf_alive_until_closed(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf(SIZE, data=b"alive")
    file = mock_kernel.init_process.files[buf]
    with mock_kernel.tracer.capture() as ev:
        m = mmap.mmap(buf, SIZE)
    assert ("mm.mmap", buf) in [
        (e["event"], e.get("fd")) for e in ev if not e["event"].startswith("sys.")
    ]
    os.close(buf)
    os.close(memfd)
    assert not file.released and len(dma_buf_subsys(mock_kernel).dmabufs) == 1
    assert m[:5] == b"alive"
    with mock_kernel.tracer.capture() as ev:
        m.close()
    names = [e["event"] for e in ev if not e["event"].startswith("sys.")]
    assert names[-3:] == ["mm.munmap", "dma_buf.release", "file.release"]
    assert file.released and not dma_buf_subsys(mock_kernel).dmabufs and not mock_kernel.live_files
    with pytest.raises(ValueError):
        m[0]  # a closed map, as always


def test_mapping_released_when_garbage_collected(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf(SIZE)
    file = mock_kernel.init_process.files[buf]
    m = mmap.mmap(buf, PAGE)
    os.close(buf)
    os.close(memfd)
    with mock_kernel.tracer.capture() as ev:
        del m
        gc.collect()
    assert "dma_buf.release" in [e["event"] for e in ev if not e["event"].startswith("sys.")]
    assert file.released and not mock_kernel.init_process.files


def test_with_block_unmaps(mock_kernel: Kernel) -> None:
    with udmabuf(SIZE) as buf:
        file = mock_kernel.init_process.files[buf]
        with mmap.mmap(buf, SIZE) as m:
            m[:2] = b"ok"
            assert file.f_count == 3  # the fd, CPython's dup of it, the mapping
        assert m.closed
        assert file.f_count == 1
        assert set(mock_kernel.init_process.files) == {buf}


def test_mapping_survives_every_fd_being_closed(mock_kernel: Kernel) -> None:
    # golden lifetime.jsonl mmap_survives_fd_close / python_mmap_holds_extra_fd
    memfd, buf = make_udmabuf(SIZE, data=b"data")
    before = real_fds()
    low = lowest_free()
    m = mmap.mmap(buf, SIZE)
    hidden = real_fds() - before
    assert hidden == {low}, "CPython's mmap holds one more fd, the lowest free one"
    assert os.readlink(f"/proc/self/fd/{low}") == "/dmabuf:"
    dup = os.dup(buf)
    os.close(buf)
    os.close(dup)
    os.close(memfd)
    assert m[:4] == b"data"
    m.close()
    # the program's fds are all gone (and the kernel's own dup of the memfd with the buffer)
    assert real_fds() < before - {buf, memfd}
    assert not {buf, memfd, low} & real_fds()
    assert not dma_buf_subsys(mock_kernel).dmabufs


def test_offset_mapping(mock_kernel: Kernel) -> None:
    data = bytes(range(256)) * (SIZE // 256)
    memfd, buf = make_udmabuf(SIZE, data=data)
    try:
        with mmap.mmap(buf, PAGE, offset=PAGE) as m:
            assert m[:] == data[PAGE:]
        with mmap.mmap(buf, 100) as m:  # an unaligned length is fine
            assert len(m) == 100 and m[:] == data[:100]
    finally:
        os.close(buf)
        os.close(memfd)


def test_errno_on_write_only_open(mock_kernel: Kernel) -> None:
    # a shared writable map needs a file open for writing: the hidden dup of a dma-buf is
    # always O_RDWR, so the EACCES path is checked on the udmabuf device (no ->mmap: the
    # EACCES comes before ENODEV in do_mmap)
    fd = os.open(DEV, os.O_WRONLY)
    try:
        assert errno_name(mmap.mmap, fd, PAGE) == "EACCES"
    finally:
        os.close(fd)
    fd = os.open(DEV, os.O_RDONLY)
    try:
        assert errno_name(mmap.mmap, fd, PAGE) == "EACCES"
        assert errno_name(mmap.mmap, fd, PAGE, prot=mmap.PROT_READ) == "ENODEV"
    finally:
        os.close(fd)
    assert errno.EACCES == 13
