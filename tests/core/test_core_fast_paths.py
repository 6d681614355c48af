"""The redirection's fast paths give what the general ones give.

With tracing off, ``os.open("/dev/<name>")`` of a device node takes no walk
(``namei.open_chrdev``), ``close``/``read``/``write``/``fstat``/``lseek`` call the
syscall layer without ``Process.sys_*``, and ``mmap.mmap`` of a mock fd whose driver
backs it with one piece is one real ``mmap`` (CPython's own dup of the piece becomes the
dup of the mock fd the map keeps).  With tracing on each takes the general path.  Each
test runs the same calls both ways and compares what a program (and the kernel) sees.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mockkernel import Kernel
from mockkernel.testing.rdma import udmabuf


@contextmanager
def _tracing(kernel: Kernel, on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    with kernel.tracer.capture():
        yield


def _file_view(kernel: Kernel, fd: int) -> tuple[object, ...]:
    f = kernel.init_process.files[fd]
    st = os.fstat(fd)
    return (f.path, f.f_flags, f.f_mode, f.f_op.name, f.f_cred is not None, st.st_rdev, st.st_mode)


@pytest.mark.parametrize("traced", [False, True])
def test_open_of_a_device_node_is_the_same_either_way(mock_kernel: Kernel, traced: bool) -> None:
    with _tracing(mock_kernel, traced):
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        try:
            view = _file_view(mock_kernel, fd)
            assert not os.get_inheritable(fd)  # os.open's O_CLOEXEC, kept by both
        finally:
            os.close(fd)
        assert fd not in mock_kernel.init_process.files
        # rules only the general path knows are still applied
        for path, flags, want in (
            ("/dev/udmabuf/", os.O_RDWR, errno.ENOTDIR),
            ("/dev/udmabuf", os.O_RDWR | os.O_DIRECTORY, errno.ENOTDIR),
            ("/dev/udmabuf", os.O_RDWR | os.O_CREAT | os.O_EXCL, errno.EEXIST),
            ("/dev/no-such-mock-device", os.O_RDWR, errno.ENOENT),
        ):
            with pytest.raises(OSError) as e:
                os.open(path, flags)
            assert e.value.errno == want and e.value.filename == path
    assert view[0] == "/dev/udmabuf" and view[3] == "udmabuf" and view[4]


def test_open_fast_and_traced_files_match(mock_kernel: Kernel) -> None:
    fast = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        with mock_kernel.tracer.capture() as events:
            slow = os.open("/dev/udmabuf", os.O_RDWR)
        try:
            assert _file_view(mock_kernel, fast) == _file_view(mock_kernel, slow)
            assert [e["event"] for e in events if e["event"] == "sys.open"] == ["sys.open"]
        finally:
            os.close(slow)
    finally:
        os.close(fast)


@pytest.mark.parametrize("traced", [False, True])
def test_mmap_of_a_dma_buf_is_the_same_either_way(mock_kernel: Kernel, traced: bool) -> None:
    """The map keeps a dup of the mock fd at the lowest free number (as CPython's does),
    a mock fd of the same file; the bytes are the buffer's; close frees the dup and the
    mapping's file reference."""
    fd, memfd = udmabuf(8192, b"abc")
    files = mock_kernel.init_process.files
    try:
        with _tracing(mock_kernel, traced):
            probe = os.open("/dev/null", os.O_RDONLY)
            os.close(probe)  # the lowest free number now
            count = files[fd].f_count
            m = mmap.mmap(fd, 8192)
            try:
                kept = m._mk_fd  # type: ignore[attr-defined]
                assert kept == probe and files[kept] is files[fd]
                assert files[fd].f_count == count + 2  # the kept dup and the mapping
                assert not os.get_inheritable(kept)
                assert m[:3] == b"abc"
                m[4096:4099] = b"xyz"
                assert os.pread(memfd, 3, 4096) == b"xyz"
                with open("/proc/self/maps") as f:
                    maps = [ln for ln in f if "dmabuf" in ln]
                start = f"{m._mk_addr:08x}-"  # type: ignore[attr-defined]
                assert len(maps) == 1 and maps[0].startswith(start)
            finally:
                m.close()
            assert kept not in files and files[fd].f_count == count
            m.close()  # (a second close does nothing)
            assert files[fd].f_count == count
    finally:
        os.close(fd)
        os.close(memfd)


def test_mmap_collected_without_close_releases_like_close(mock_kernel: Kernel) -> None:
    fd, memfd = udmabuf(4096)
    files = mock_kernel.init_process.files
    try:
        count = files[fd].f_count
        m = mmap.mmap(fd, 4096)
        kept = m._mk_fd  # type: ignore[attr-defined]
        del m  # (no cycle: refcounting collects it at once)
        assert kept not in files and files[fd].f_count == count
    finally:
        os.close(fd)
        os.close(memfd)


def test_mmap_past_the_buffer_is_einval_and_leaks_nothing(mock_kernel: Kernel) -> None:
    fd, memfd = udmabuf(4096)
    files = mock_kernel.init_process.files
    try:
        before = dict(files)
        with pytest.raises(OSError) as e:
            mmap.mmap(fd, 8192)
        assert e.value.errno == errno.EINVAL
        assert files == before
    finally:
        os.close(fd)
        os.close(memfd)


@pytest.mark.parametrize("traced", [False, True])
def test_open_of_a_host_device_in_dev_is_the_real_one(mock_kernel: Kernel, traced: bool) -> None:
    """``/dev/null`` shows through the mock ``/dev`` (``HOST_DEV``): the real file, no
    mock fd; a host device the mock machine lacks is ``ENOENT`` either way."""
    with _tracing(mock_kernel, traced):
        fd = os.open("/dev/null", os.O_RDWR)
        try:
            assert fd not in mock_kernel.init_process.files
            assert os.write(fd, b"x") == 1 and os.read(fd, 1) == b""
            assert os.readlink(f"/proc/self/fd/{fd}") == "/dev/null"
        finally:
            os.close(fd)
        with pytest.raises(OSError) as e:
            os.open("/dev/mem", os.O_RDONLY)
        assert e.value.errno == errno.ENOENT
