"""The fd table of a virtual process (``kernel.spawn()``), driven by its ``sys_*`` methods.

A virtual process has fd numbers only; the rules are the real table's (the same
expectations as tests/core/test_core_fdtable.py, from real Linux 7.2)."""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
from collections.abc import Iterator

import pytest
from core_helpers import DEV, PAGE, errno_name, real_fds, sealed_memfd, topology_with_rlimit

from mockkernel.driver import dma_buf_subsys
from mockkernel.kernel import Kernel
from mockkernel.process import FIOCLEX, FIONBIO, FIONCLEX, Process
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE, udmabuf_create


def cloexec(proc: Process, fd: int) -> bool:
    return bool(proc.sys_fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


@pytest.fixture
def proc(kernel: Kernel) -> Iterator[Process]:
    p = kernel.spawn("vtest")
    yield p
    p.exit()


def test_numbers_are_per_process_and_lowest_free(kernel: Kernel, proc: Process) -> None:
    before = real_fds()
    with kernel.tracer.capture() as ev:
        a = proc.sys_open(DEV, os.O_RDWR)
        b = proc.sys_open(DEV, os.O_RDWR)
    assert (a, b) == (0, 1)
    assert [(e["pid"], e["fd"]) for e in ev if e["event"] == "fd.install"] == [
        (proc.pid, 0),
        (proc.pid, 1),
    ]
    other = kernel.spawn("other")
    assert other.sys_open(DEV, os.O_RDWR) == 0  # its own table
    other.exit()
    proc.sys_close(a)
    assert proc.sys_open(DEV, os.O_RDWR) == 0
    assert proc.sys_fcntl(b, fcntl.F_DUPFD, 5) == 5
    assert proc.sys_dup(b) == 2
    assert real_fds() == before, "a virtual process must not touch the real fd table"
    assert not kernel.init_process.files


def test_emfile_and_the_rlimit(mock_kernel_factory: object) -> None:
    assert callable(mock_kernel_factory)
    k: Kernel = mock_kernel_factory(topology=topology_with_rlimit(3))
    p = k.spawn()
    try:
        fds = [p.sys_open(DEV, os.O_RDWR) for _ in range(3)]
        assert fds == [0, 1, 2]
        live = len(k.live_files)
        assert errno_name(p.sys_open, DEV, os.O_RDWR) == "EMFILE"
        assert len(k.live_files) == live, "the file of a failed open is released"
        assert errno_name(p.sys_dup, 0) == "EMFILE"
        assert errno_name(p.sys_fcntl, 0, fcntl.F_DUPFD, 0) == "EMFILE"
        assert errno_name(p.sys_fcntl, 0, fcntl.F_DUPFD, 3) == "EINVAL"
        assert errno_name(p.sys_fcntl, 0, fcntl.F_DUPFD_CLOEXEC, 3) == "EINVAL"
        assert errno_name(p.sys_fcntl, 0, fcntl.F_DUPFD, -1) == "EINVAL"
        assert errno_name(p.sys_dup2, 0, 3) == "EBADF"
        assert errno_name(p.sys_dup3, 0, 3, 0) == "EBADF"
        assert p.sys_dup2(0, 2) == 2  # below the limit: fine
        assert p.files[2] is p.files[0]
    finally:
        p.exit()


def test_cloexec(proc: Process) -> None:
    a = proc.sys_open(DEV, os.O_RDWR)  # open(2) itself: no O_CLOEXEC, none set
    assert not cloexec(proc, a)
    b = proc.sys_open(DEV, os.O_RDWR | os.O_CLOEXEC)
    assert cloexec(proc, b)
    assert not cloexec(proc, proc.sys_dup(b))  # dup(2) never sets it
    assert not cloexec(proc, proc.sys_fcntl(b, fcntl.F_DUPFD, 0))
    assert cloexec(proc, proc.sys_fcntl(a, fcntl.F_DUPFD_CLOEXEC, 0))
    t = proc.sys_fcntl(b, fcntl.F_DUPFD_CLOEXEC, 10)
    assert proc.sys_dup2(a, t) == t and not cloexec(proc, t)
    assert proc.sys_dup3(a, t, os.O_CLOEXEC) == t and cloexec(proc, t)
    assert proc.sys_dup3(a, t, 0) == t and not cloexec(proc, t)
    for value, expect in ((0, False), (1, True), (2, False), (3, True), (0xFF, True)):
        assert proc.sys_fcntl(a, fcntl.F_SETFD, value) == 0
        assert cloexec(proc, a) is expect
    assert proc.sys_ioctl(a, FIONCLEX, 0) == 0
    assert not cloexec(proc, a)
    assert proc.sys_ioctl(a, FIOCLEX, 0) == 0
    assert cloexec(proc, a)
    # a closed number forgets its flag: the next holder starts clean
    proc.sys_close(b)
    assert proc.sys_open(DEV, os.O_RDWR) == b
    assert not cloexec(proc, b)


def test_status_flags(proc: Process) -> None:
    fd = proc.sys_open(DEV, os.O_RDWR | os.O_NONBLOCK)
    assert proc.sys_fcntl(fd, fcntl.F_GETFL) == 0o100000 | os.O_RDWR | os.O_NONBLOCK
    assert errno_name(proc.sys_fcntl, fd, fcntl.F_SETFL, os.O_DIRECT) == "EINVAL"
    assert proc.sys_fcntl(fd, fcntl.F_SETFL, os.O_APPEND | os.O_ASYNC) == 0
    assert proc.sys_fcntl(fd, fcntl.F_GETFL) == 0o100000 | os.O_RDWR | os.O_APPEND
    # FIONBIO reads an int at a user address
    one = ctypes.c_int(1)
    assert proc.sys_ioctl(fd, FIONBIO, ctypes.addressof(one)) == 0
    assert proc.sys_fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
    assert errno_name(proc.sys_ioctl, fd, FIONBIO, 16) == "EFAULT"
    assert errno_name(proc.sys_ioctl, fd, 0x7542, 0) == "ENOTTY"
    assert errno_name(proc.sys_fcntl, fd, 9999) == "EINVAL"


def test_dup_errnos(proc: Process) -> None:
    a = proc.sys_open(DEV, os.O_RDWR)
    assert proc.sys_dup2(a, a) == a
    assert errno_name(proc.sys_dup2, 7, 7) == "EBADF"
    assert errno_name(proc.sys_dup3, a, a, 0) == "EINVAL"
    assert errno_name(proc.sys_dup3, a, a, os.O_CLOEXEC) == "EINVAL"
    assert errno_name(proc.sys_dup3, 7, 8, os.O_NONBLOCK) == "EINVAL"
    assert errno_name(proc.sys_dup3, 7, 8, 0) == "EBADF"
    assert errno_name(proc.sys_dup2, a, -1) == "EBADF"
    assert errno_name(proc.sys_dup2, 7, a) == "EBADF"
    assert a in proc.files, "a failed dup2 leaves the target alone"
    assert errno_name(proc.sys_dup, 7) == "EBADF"
    assert errno_name(proc.sys_fcntl, 7, fcntl.F_GETFD) == "EBADF"
    assert errno_name(proc.sys_fcntl, 7, 9999) == "EBADF"
    assert errno_name(proc.sys_ioctl, 7, FIOCLEX, 0) == "EBADF"


def test_close(kernel: Kernel, proc: Process) -> None:
    a = proc.sys_open(DEV, os.O_RDWR)
    file = proc.files[a]
    with kernel.tracer.capture() as ev:
        proc.sys_close(a)
    assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
        "fd.close",
        "file.release",
    ]
    assert errno_name(proc.sys_close, a) == "EBADF"
    assert errno_name(proc.sys_close, -1) == "EBADF"
    assert file.released and file.id not in kernel.live_files


def test_refcount_and_release_once(kernel: Kernel, proc: Process) -> None:
    a = proc.sys_open(DEV, os.O_RDWR)
    file = proc.files[a]
    b = proc.sys_dup(a)
    c = proc.sys_dup2(a, 9)
    assert file.f_count == 3
    proc.sys_close(a)
    proc.sys_close(c)
    assert file.f_count == 1 and not file.released
    with kernel.tracer.capture() as ev:
        proc.sys_close(b)
    assert [e["event"] for e in ev if not e["event"].startswith("sys.")].count("file.release") == 1
    assert file.f_count == 0 and file.released


def test_ioctl_created_fds_land_in_the_calling_process(kernel: Kernel, proc: Process) -> None:
    dev = proc.sys_open(DEV, os.O_RDWR)
    memfd = sealed_memfd(2 * PAGE)
    assert memfd not in proc.files  # a real fd number: the virtual table must not hold it
    try:
        arg = udmabuf_create(memfd=memfd, flags=0, offset=0, size=2 * PAGE)
        with kernel.tracer.capture() as ev:
            fd = proc.sys_ioctl(dev, UDMABUF_CREATE, ctypes.addressof(arg))
        assert fd == 1
        assert fd in proc.files
        assert not kernel.init_process.files
        assert kernel.current is kernel.init_process
        assert [(e["pid"], e["fd"]) for e in ev if e["event"] == "fd.install"] == [(proc.pid, 1)]
        assert proc.sys_fstat(fd).st_size == 2 * PAGE
        # the pointer is a real address: a bad one is EFAULT, and no fd is made
        assert errno_name(proc.sys_ioctl, dev, UDMABUF_CREATE, 16) == "EFAULT"
        assert set(proc.files) == {dev, fd}
        # a mapping holds the buffer after the fd is closed
        m = proc.sys_mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, 0, 0)
        file = proc.files[fd]
        assert file.f_count == 2
        proc.sys_close(fd)
        assert len(dma_buf_subsys(kernel).dmabufs) == 1
        m[:3] = b"abc"
        assert os.pread(memfd, 3, 0) == b"abc"
        with kernel.tracer.capture() as ev:
            m.close()
        assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
            "mm.munmap",
            "dma_buf.release",
            "file.release",
        ]
        assert not dma_buf_subsys(kernel).dmabufs
    finally:
        os.close(memfd)


def test_mmap_errnos(proc: Process) -> None:
    dev = proc.sys_open(DEV, os.O_RDWR)
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    assert errno_name(proc.sys_mmap, dev, PAGE, mmap.MAP_SHARED, rw, 0, 0) == "ENODEV"
    assert errno_name(proc.sys_mmap, dev, 0, mmap.MAP_SHARED, rw, 0, 0) == "EINVAL"
    assert errno_name(proc.sys_mmap, dev, PAGE, mmap.MAP_SHARED, rw, 0, 100) == "EINVAL"
    assert errno_name(proc.sys_mmap, 7, PAGE, mmap.MAP_SHARED, rw, 0, 0) == "EBADF"


def test_exit_closes_everything(kernel: Kernel) -> None:
    p = kernel.spawn()
    p.sys_open(DEV, os.O_RDWR)
    p.sys_dup2(0, 5)
    with kernel.tracer.capture() as ev:
        p.exit()
    assert [e["fd"] for e in ev if e["event"] == "fd.close"] == [0, 5]
    assert not p.files
    assert kernel.leaks() == []
