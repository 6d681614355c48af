"""The fd table of the real-backed init process, driven through ``os``/``fcntl`` as a program
drives it.  Expected values are real Linux 7.2's (tests/real_linux/golden/fd_table.jsonl and
tests/core/real_linux/syscall_layer.golden.jsonl)."""

from __future__ import annotations

import fcntl
import gc
import itertools
import mmap
import os
import stat
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from core_helpers import (
    DEV,
    DMA_BUF_SET_NAME_B,
    PAGE,
    ProbeOps,
    errno_name,
    free_numbers,
    lowest_free,
    make_udmabuf,
    real_fds,
    sealed_memfd,
    topology_with_rlimit,
    udmabuf,
)

from mockkernel.driver import dma_buf_subsys
from mockkernel.fs import File
from mockkernel.kernel import Kernel
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE

FIONBIO = 0x5421
FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIOASYNC = 0x5452
FIGETBSZ = 0x2
O_LARGEFILE = 0o100000  # the kernel's value on x86-64 (os.O_LARGEFILE is 0)


def cloexec(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


def events(captured: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in captured if e["event"] == name]


# -- numbers ------------------------------------------------------------------------------------
def test_mock_and_real_fds_share_one_lowest_free_numbering(mock_kernel: Kernel) -> None:
    files = mock_kernel.init_process.files
    low, second, third = free_numbers(3)
    with mock_kernel.tracer.capture() as ev:
        dev = os.open(DEV, os.O_RDWR)
    assert dev == low
    assert dev in files
    assert [(e["fd"], e["kind"]) for e in events(ev, "fd.install")] == [(dev, "udmabuf")]
    # the mock number is held in the real OS too: a real open never gets it
    assert dev in real_fds()
    null = os.open("/dev/null", os.O_RDONLY)
    assert null == second
    assert null not in files
    # closing the mock fd frees its number for the next *real* open
    with mock_kernel.tracer.capture() as ev:
        os.close(dev)
    assert [e["fd"] for e in events(ev, "fd.close")] == [dev]
    assert dev not in real_fds()
    null2 = os.open("/dev/null", os.O_RDONLY)
    assert null2 == dev
    assert null2 not in files
    dev2 = os.open(DEV, os.O_RDWR)
    assert dev2 == third
    assert os.readlink(f"/proc/self/fd/{null2}") == "/dev/null"
    assert os.readlink(f"/proc/self/fd/{dev2}") == DEV
    for fd in (null, null2, dev2):
        os.close(fd)
    assert lowest_free() == low


def test_interleaved_real_and_mock_opens_never_collide(mock_kernel: Kernel) -> None:
    files = mock_kernel.init_process.files
    opened: list[int] = []
    for i in range(24):
        if i % 5 == 4 and opened:
            os.close(opened.pop(len(opened) // 2))
            continue
        expect = lowest_free()
        fd = os.open(DEV, os.O_RDWR) if i % 2 else os.open("/dev/null", os.O_RDONLY)
        assert fd == expect
        assert fd not in opened
        opened.append(fd)
        mock = {n for n in opened if n in files}
        assert mock == set(files)
        assert mock <= real_fds()
    for fd in opened:
        os.close(fd)
    assert not files


def test_emfile_at_the_topology_rlimit(mock_kernel_factory: object) -> None:
    # the limit: just above the two lowest free numbers (the kernel's own fds live high up)
    first, second, third = free_numbers(3)
    limit = second + 1
    assert callable(mock_kernel_factory)
    k: Kernel = mock_kernel_factory(topology=topology_with_rlimit(limit), install=True)
    a = os.open(DEV, os.O_RDWR)
    b = os.open(DEV, os.O_RDWR)
    memfd = sealed_memfd(PAGE)  # a real fd: the mock rlimit does not limit those
    try:
        assert (a, b, memfd) == (first, second, third)
        assert errno_name(os.open, DEV, os.O_RDWR) == "EMFILE"
        assert errno_name(os.dup, a) == "EMFILE"
        assert errno_name(fcntl.fcntl, a, fcntl.F_DUPFD, 0) == "EMFILE"
        assert errno_name(fcntl.fcntl, a, fcntl.F_DUPFD_CLOEXEC, 0) == "EMFILE"
        assert errno_name(fcntl.fcntl, a, fcntl.F_DUPFD, limit) == "EINVAL"
        assert errno_name(fcntl.fcntl, a, fcntl.F_DUPFD_CLOEXEC, limit) == "EINVAL"
        assert errno_name(os.dup2, a, limit) == "EBADF"
        assert errno_name(os.dup2, a, limit, False) == "EBADF"
        live = set(k.live_files)
        with k.tracer.capture() as ev:
            arg = bytearray(struct.pack("=IIQQ", memfd, 0, 0, PAGE))
            assert errno_name(fcntl.ioctl, a, UDMABUF_CREATE, arg) == "EMFILE"
        # the buffer made before the fd failed is gone again, nothing else changed
        assert set(k.live_files) == live
        assert not dma_buf_subsys(k).dmabufs
        assert [e["event"] for e in ev if e["event"].startswith("dma_buf")] == [
            "dma_buf.export",
            "dma_buf.release",
        ]
        assert set(k.init_process.files) == {a, b}
        # dup2 onto a number below the limit still works, and a closed slot is reusable
        assert os.dup2(a, b) == b
        os.close(b)
        b = fcntl.ioctl(a, UDMABUF_CREATE, arg)
        assert b == second
        assert os.fstat(b).st_size == PAGE
    finally:
        for fd in (memfd, a, b):
            os.close(fd)


# -- close-on-exec --------------------------------------------------------------------------------
@pytest.fixture(params=["udmabuf-dev", "dma-buf"])
def mock_fd(request: pytest.FixtureRequest, mock_kernel: Kernel) -> Iterator[int]:
    """A mock fd of each kind, opened/created without close-on-exec where possible."""
    if request.param == "udmabuf-dev":
        fd = os.open(DEV, os.O_RDWR)
    else:
        memfd, fd = make_udmabuf()
        os.close(memfd)
    yield fd
    if fd in mock_kernel.init_process.files:
        os.close(fd)


def test_cloexec_through_every_path(mock_kernel: Kernel, mock_fd: int) -> None:
    fd = mock_fd
    fdt = mock_kernel.init_process.fdt
    opened: list[int] = []

    def new(n: int) -> int:
        opened.append(n)
        return n

    fcntl.fcntl(fd, fcntl.F_SETFD, 0)
    assert not cloexec(fd)
    # os.dup is F_DUPFD_CLOEXEC (Python's fds are non-inheritable)
    assert cloexec(new(os.dup(fd)))
    assert not cloexec(new(fcntl.fcntl(fd, fcntl.F_DUPFD, 0)))
    assert cloexec(new(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)))
    assert not cloexec(fd), "F_DUPFD_CLOEXEC must not touch the source"
    # dup2 clears FD_CLOEXEC on the target unless inheritable=False (then it is dup3)
    target = new(os.dup(fd))
    assert cloexec(target)
    assert os.dup2(fd, target) == target
    assert not cloexec(target)
    assert os.dup2(fd, target, inheritable=False) == target
    assert cloexec(target)
    # dup2 of an fd onto itself changes nothing
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    assert os.dup2(fd, fd) == fd
    assert cloexec(fd)
    # F_SETFD keeps only FD_CLOEXEC (golden f_getfd_setfd)
    for value, expect in ((0, 0), (1, 1), (2, 0), (3, 1), (0xFF, 1)):
        assert fcntl.fcntl(fd, fcntl.F_SETFD, value) == 0
        assert fcntl.fcntl(fd, fcntl.F_GETFD) == expect
        assert os.get_inheritable(fd) is (expect == 0)  # the real fd agrees
        assert fdt.get_cloexec(fd) is bool(expect)
    # FIOCLEX / FIONCLEX
    with mock_kernel.tracer.capture() as ev:
        assert fcntl.ioctl(fd, FIONCLEX) == 0
        assert not cloexec(fd)
        assert fcntl.ioctl(fd, FIOCLEX) == 0
        assert cloexec(fd)
    assert [e["cmd"] for e in events(ev, "sys.ioctl")] == [hex(FIONCLEX), hex(FIOCLEX)]
    assert int(fdinfo(fd)["flags"], 8) & os.O_CLOEXEC
    for n in opened:
        os.close(n)


@pytest.mark.parametrize("cloexec_flag", [False, True])
def test_udmabuf_create_cloexec_flag(mock_kernel: Kernel, cloexec_flag: bool) -> None:
    memfd, fd = make_udmabuf(cloexec=cloexec_flag)
    try:
        assert cloexec(fd) is cloexec_flag
        assert os.get_inheritable(fd) is not cloexec_flag
    finally:
        os.close(fd)
        os.close(memfd)


# -- F_GETFL / F_SETFL / FIONBIO / FIOASYNC --------------------------------------------------------
def test_status_flags_of_a_device_fd(mock_kernel: Kernel) -> None:
    fd = os.open(DEV, os.O_RDWR)
    dup = os.dup(fd)
    try:
        getfl = lambda: fcntl.fcntl(fd, fcntl.F_GETFL)  # noqa: E731
        assert getfl() == O_LARGEFILE | os.O_RDWR  # O_CLOEXEC is not a status flag
        assert fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK) == 0
        assert getfl() == O_LARGEFILE | os.O_RDWR | os.O_NONBLOCK
        # one open file description: the dup sees it
        assert fcntl.fcntl(dup, fcntl.F_GETFL) == getfl()
        assert fcntl.fcntl(fd, fcntl.F_SETFL, os.O_APPEND) == 0
        assert getfl() == O_LARGEFILE | os.O_RDWR | os.O_APPEND
        # O_ASYNC is silently ignored without a ->fasync op; O_DIRECT is EINVAL
        assert fcntl.fcntl(fd, fcntl.F_SETFL, os.O_ASYNC) == 0
        assert getfl() == O_LARGEFILE | os.O_RDWR
        assert errno_name(fcntl.fcntl, fd, fcntl.F_SETFL, os.O_DIRECT) == "EINVAL"
        assert errno_name(fcntl.fcntl, fd, fcntl.F_SETFL, -1) == "EINVAL"
        assert getfl() == O_LARGEFILE | os.O_RDWR
        assert fcntl.fcntl(fd, fcntl.F_SETFL, os.O_WRONLY) == 0  # access mode: ignored
        assert getfl() == O_LARGEFILE | os.O_RDWR
        # FIONBIO reads an int through the pointer
        assert fcntl.ioctl(fd, FIONBIO, struct.pack("i", 1)) == struct.pack("i", 1)
        assert getfl() & os.O_NONBLOCK
        assert fcntl.ioctl(fd, FIONBIO, bytearray(struct.pack("i", 0))) == 0
        assert not getfl() & os.O_NONBLOCK
        assert errno_name(fcntl.ioctl, fd, FIONBIO, 16) == "EFAULT"
        # FIOASYNC: turning it on needs ->fasync (ENOTTY), "off" is already the state
        assert errno_name(fcntl.ioctl, fd, FIOASYNC, struct.pack("i", 1)) == "ENOTTY"
        assert fcntl.ioctl(fd, FIOASYNC, bytearray(struct.pack("i", 0))) == 0
        assert getfl() == O_LARGEFILE | os.O_RDWR
        # FIGETBSZ: the block size, through the pointer
        bsz = bytearray(4)
        assert fcntl.ioctl(fd, FIGETBSZ, bsz) == 0
        assert struct.unpack("i", bsz)[0] == 4096
        assert errno_name(fcntl.ioctl, fd, FIGETBSZ, 16) == "EFAULT"
        assert errno_name(fcntl.fcntl, fd, 9999) == "EINVAL"
    finally:
        os.close(dup)
        os.close(fd)


def test_fcntl_arg_is_a_c_unsigned_int(mock_kernel: Kernel) -> None:
    """CPython passes fcntl's int argument as an unsigned int, masked: 2**32 + 5 is 5."""
    r, w = os.pipe()
    dev = os.open(DEV, os.O_RDWR)
    made: list[int] = []
    try:
        for fd in (r, dev):  # a real fd and a mock fd answer alike
            taken = real_fds()
            expect = next(n for n in itertools.count(5) if n not in taken)
            made.append(fcntl.fcntl(fd, fcntl.F_DUPFD, (1 << 32) + 5))
            assert made[-1] == expect
            assert fcntl.fcntl(fd, fcntl.F_SETFD, (1 << 32) | 1) == 0
            assert cloexec(fd)
            assert errno_name(fcntl.fcntl, fd, fcntl.F_DUPFD, -1) == "EINVAL"
        assert made[1] in mock_kernel.init_process.files
    finally:
        for fd in (r, w, dev, *made):
            os.close(fd)


def test_status_flags_of_a_dma_buf(mock_kernel: Kernel) -> None:
    with udmabuf() as fd:
        # dma_buf_getfile keeps O_ACCMODE|O_NONBLOCK only: no O_LARGEFILE
        assert fcntl.fcntl(fd, fcntl.F_GETFL) == os.O_RDWR
        fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK | os.O_NOATIME)
        assert fcntl.fcntl(fd, fcntl.F_GETFL) == os.O_RDWR | os.O_NONBLOCK | os.O_NOATIME


def test_status_flags_at_open(mock_kernel: Kernel) -> None:
    fd = os.open(DEV, os.O_RDONLY | os.O_NONBLOCK | os.O_TRUNC | os.O_CREAT)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFL) == O_LARGEFILE | os.O_NONBLOCK
    finally:
        os.close(fd)


# -- dup2 across the mock/real boundary ------------------------------------------------------------
def test_dup2_of_a_mock_fd_onto_a_real_fd_closes_the_real_file(mock_kernel: Kernel) -> None:
    dev = os.open(DEV, os.O_RDWR)
    r, w = os.pipe()
    try:
        with mock_kernel.tracer.capture() as ev:
            assert os.dup2(dev, r) == r
        assert r in mock_kernel.init_process.files
        assert [e["fd"] for e in events(ev, "fd.install")] == [r]
        assert os.readlink(f"/proc/self/fd/{r}") == DEV
        assert stat.S_ISCHR(os.fstat(r).st_mode)
        # the pipe's read end is really gone: its writer sees no reader
        with pytest.raises(BrokenPipeError):
            os.write(w, b"x")
        assert mock_kernel.init_process.files[r] is mock_kernel.init_process.files[dev]
        assert mock_kernel.init_process.files[r].f_count == 2
    finally:
        for fd in (dev, r, w):
            os.close(fd)


def test_dup2_of_a_real_fd_onto_a_mock_fd_releases_the_mock_file(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    os.close(memfd)
    file = mock_kernel.init_process.files[buf]
    r, w = os.pipe()
    try:
        with mock_kernel.tracer.capture() as ev:
            assert os.dup2(r, buf) == buf
        assert buf not in mock_kernel.init_process.files
        assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
            "fd.close",
            "dma_buf.release",
            "file.release",
        ]
        assert file.released
        assert file.id not in mock_kernel.live_files
        assert not dma_buf_subsys(mock_kernel).dmabufs
        # buf is the pipe now, for real
        os.write(w, b"q")
        assert os.read(buf, 1) == b"q"
        assert not cloexec(buf)  # dup2 made it inheritable
    finally:
        for fd in (buf, r, w):
            os.close(fd)


def test_dup2_of_a_mock_fd_onto_another_drops_that_file(mock_kernel: Kernel) -> None:
    with udmabuf() as a, udmabuf() as b:
        files = mock_kernel.init_process.files
        fa, fb = files[a], files[b]
        with mock_kernel.tracer.capture() as ev:
            assert os.dup2(a, b) == b
        assert files[b] is fa
        assert fa.f_count == 2
        assert fb.released
        assert len(dma_buf_subsys(mock_kernel).dmabufs) == 1
        assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
            "fd.install",
            "fd.close",
            "dma_buf.release",
            "file.release",
        ]
        assert os.fstat(a).st_ino == os.fstat(b).st_ino


def test_failed_dup2_leaves_the_target_alone(mock_kernel: Kernel) -> None:
    with udmabuf() as buf:
        bad = lowest_free()
        file = mock_kernel.init_process.files[buf]
        assert errno_name(os.dup2, bad, buf) == "EBADF"
        assert errno_name(os.dup2, bad, buf, False) == "EBADF"
        assert mock_kernel.init_process.files[buf] is file
        assert file.f_count == 1
        assert errno_name(os.dup2, bad, bad) == "EBADF"


def test_dup3_errnos(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    with udmabuf() as buf, udmabuf() as other:
        bad = lowest_free()
        assert errno_name(os.dup2, buf, buf, inheritable=False) == "EINVAL"  # dup3 same fd
        assert errno_name(proc.sys_dup3, buf, buf, 0) == "EINVAL"
        assert errno_name(proc.sys_dup3, buf, other, os.O_NONBLOCK) == "EINVAL"
        assert errno_name(proc.sys_dup3, bad, other, os.O_NONBLOCK) == "EINVAL"  # flags first
        assert errno_name(proc.sys_dup3, bad, bad, 0) == "EINVAL"  # then the same-fd check
        assert errno_name(proc.sys_dup3, bad, other, 0) == "EBADF"
        assert errno_name(os.dup2, buf, -1) == "EBADF"
        assert errno_name(os.dup2, buf, -1, False) == "EBADF"
        assert proc.sys_dup3(buf, other, os.O_CLOEXEC) == other
        assert cloexec(other)
        assert proc.files[other] is proc.files[buf]


# -- close, bad fds --------------------------------------------------------------------------------
def test_close_of_bad_fds_and_double_close(mock_kernel: Kernel) -> None:
    dev = os.open(DEV, os.O_RDWR)
    os.close(dev)
    for call, args in (
        (os.close, (dev,)),
        (os.close, (-1,)),
        (os.fstat, (dev,)),
        (os.dup, (dev,)),
        (os.read, (dev, 1)),
        (fcntl.fcntl, (dev, fcntl.F_GETFD)),
        (fcntl.fcntl, (dev, fcntl.F_DUPFD, 0)),
        (fcntl.fcntl, (dev, 9999)),
        (fcntl.ioctl, (dev, FIOCLEX)),
        (fcntl.ioctl, (dev, UDMABUF_CREATE, bytearray(24))),
        (mmap.mmap, (dev, PAGE)),
    ):
        assert errno_name(call, *args) == "EBADF", call


# -- refcounting: release runs once, on the last reference -----------------------------------------
@pytest.mark.parametrize(
    "steps",
    [
        ("dup", "close_first", "close_dup"),
        ("dup", "close_dup", "close_first"),
        ("dup2_high", "close_first", "close_dup"),
        ("map", "close_first", "unmap"),
        ("map", "unmap", "close_first"),
        ("dup", "map", "close_first", "close_dup", "unmap"),
        ("map", "close_first", "gc_map"),
    ],
)
def test_release_runs_exactly_once_on_the_last_reference(
    mock_kernel: Kernel, probe: ProbeOps, steps: tuple[str, ...]
) -> None:
    first = os.open("/dev/mkprobe", os.O_RDWR)
    file: File = mock_kernel.init_process.files[first]
    refs = 1
    dup = -1
    maps: list[mmap.mmap] = []
    for i, step in enumerate(steps):
        with mock_kernel.tracer.capture() as ev:
            if step == "dup":
                dup = os.dup(first)
                refs += 1
            elif step == "dup2_high":
                dup = os.dup2(first, free_numbers(4)[-1])  # a free number above others
                refs += 1
            elif step == "map":
                hidden = lowest_free()
                maps.append(mmap.mmap(first, PAGE))
                # CPython's mmap keeps its own dup of the fd (the lowest free number,
                # close-on-exec) besides the mapping: two references, as on real Linux
                assert mock_kernel.init_process.files[hidden] is file
                assert cloexec(hidden)
                refs += 2
            elif step == "close_first":
                os.close(first)
                refs -= 1
            elif step == "close_dup":
                os.close(dup)
                refs -= 1
            elif step == "unmap":
                maps.pop().close()
                refs -= 2
            elif step == "gc_map":
                maps.pop()
                gc.collect()
                refs -= 2
        released = [e for e in ev if e["event"] == "file.release"]
        last = i == len(steps) - 1
        assert file.f_count == refs
        assert probe.releases.get(file.id, 0) == (1 if last else 0), step
        assert len(released) == (1 if last else 0)
        assert (file.id in mock_kernel.live_files) is not last
    assert refs == 0


def test_mapping_holds_the_dma_buf_after_close(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf(data=b"hello")
    try:
        file = mock_kernel.init_process.files[buf]
        hidden = lowest_free()
        m = mmap.mmap(buf, PAGE)
        assert file.f_count == 3  # the fd, CPython's dup of it, the mapping
        with mock_kernel.tracer.capture() as ev:
            os.close(buf)
        assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == ["fd.close"]
        assert set(mock_kernel.init_process.files) == {hidden}
        assert len(dma_buf_subsys(mock_kernel).dmabufs) == 1
        assert m[:5] == b"hello"
        m[:5] = b"HELLO"
        assert os.pread(memfd, 5, 0) == b"HELLO"
        with mock_kernel.tracer.capture() as ev:
            m.close()
        # as CPython's mmap_close: close its dup, then munmap
        assert [(e["event"], e.get("fd")) for e in ev if not e["event"].startswith("sys.")] == [
            ("fd.close", hidden),
            ("mm.munmap", None),
            ("dma_buf.release", None),
            ("file.release", None),
        ]
        assert not mock_kernel.init_process.files
        assert not dma_buf_subsys(mock_kernel).dmabufs
        m.close()  # a second close drops nothing more
        assert file.f_count == 0
    finally:
        os.close(memfd)


# -- /proc/self/fd and fdinfo ----------------------------------------------------------------------
def fdinfo(fd: int) -> dict[str, str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines())


def test_proc_fd_of_a_device_fd(mock_kernel: Kernel) -> None:
    fd = os.open(DEV, os.O_RDWR)
    try:
        link = f"/proc/self/fd/{fd}"
        assert os.readlink(link) == DEV
        assert os.readlink(f"/proc/{os.getpid()}/fd/{fd}") == DEV
        assert os.readlink(f"/proc/thread-self/fd/{fd}") == DEV
        assert os.readlink(os.fsencode(link)) == os.fsencode(DEV)
        lst = os.lstat(link)
        assert stat.S_ISLNK(lst.st_mode) and stat.S_IMODE(lst.st_mode) == 0o700
        st = os.stat(link)
        assert stat.S_ISCHR(st.st_mode)
        assert st.st_rdev == os.stat(DEV).st_rdev
        assert os.path.exists(link)
        info = fdinfo(fd)
        assert info == {
            "pos": "0",
            "flags": "02100002",  # O_CLOEXEC | O_LARGEFILE | O_RDWR
            "mnt_id": info["mnt_id"],
            "ino": str(os.fstat(fd).st_ino),
        }
        fi = os.stat(f"/proc/self/fdinfo/{fd}")
        assert stat.S_ISREG(fi.st_mode) and stat.S_IMODE(fi.st_mode) == 0o444
        fcntl.fcntl(fd, fcntl.F_SETFD, 0)
        assert fdinfo(fd)["flags"] == "0100002"
        assert errno_name(os.stat, link + "/") == "ENOTDIR"
    finally:
        os.close(fd)


def test_reopening_proc_self_fd(mock_kernel: Kernel) -> None:
    dev = os.open(DEV, os.O_RDWR)
    try:
        # a device: a new, independent open of the node
        with mock_kernel.tracer.capture() as ev:
            again = os.open(f"/proc/self/fd/{dev}", os.O_RDONLY)
        assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
            "vfs.open",
            "fd.install",
        ]
        files = mock_kernel.init_process.files
        assert files[again] is not files[dev]
        fcntl.fcntl(again, fcntl.F_SETFL, os.O_NONBLOCK)
        assert fcntl.fcntl(again, fcntl.F_GETFL) == O_LARGEFILE | os.O_RDONLY | os.O_NONBLOCK
        assert fcntl.fcntl(dev, fcntl.F_GETFL) == O_LARGEFILE | os.O_RDWR
        os.close(again)
        # a dma-buf has no path to open again (real Linux: ENXIO)
        with udmabuf() as buf:
            assert errno_name(os.open, f"/proc/self/fd/{buf}", os.O_RDWR) == "ENXIO"
            with pytest.raises(OSError) as e, open(f"/proc/self/fd/{buf}", "rb"):
                pass
            assert e.value.filename == f"/proc/self/fd/{buf}"
            assert mock_kernel.init_process.files[buf].f_count == 1
    finally:
        os.close(dev)


def test_proc_fd_of_a_dma_buf(mock_kernel: Kernel) -> None:
    with udmabuf() as buf:
        info = fdinfo(buf)
        assert (info["size"], info["count"], info["exp_name"]) == (str(2 * PAGE), "1", "udmabuf")
        assert info["flags"] == "02"  # O_RDWR, not close-on-exec
        dup = os.dup(buf)
        assert fdinfo(buf)["count"] == "2"
        assert fdinfo(dup)["flags"] == "02000002"
        os.close(dup)
        assert fdinfo(buf)["count"] == "1"
        st = os.stat(f"/proc/self/fd/{buf}")
        assert stat.S_IFMT(st.st_mode) == 0 and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_size == 2 * PAGE
        lst = os.lstat(f"/proc/self/fd/{buf}")
        assert stat.S_IMODE(lst.st_mode) == 0o700


def test_readlink_of_a_dma_buf_matches_real_linux(mock_kernel: Kernel) -> None:
    # golden dma_buf_fops.jsonl: proc_fd_links, set_name_b_len_5
    with udmabuf() as buf:
        assert os.readlink(f"/proc/self/fd/{buf}") == "/dmabuf:"
        fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"hello\0")
        assert os.readlink(f"/proc/self/fd/{buf}") == "/dmabuf:hello"


def test_proc_fd_paths_of_real_fds_stay_real(mock_kernel: Kernel) -> None:
    r, w = os.pipe()
    try:
        assert os.readlink(f"/proc/self/fd/{r}").startswith("pipe:[")
        assert "pos" in fdinfo(w)
        assert str(r) in os.listdir("/proc/self/fd")
        with udmabuf() as buf:
            # the directory is the real one: it lists mock fds too (their placeholders)
            assert {str(r), str(buf)} <= set(os.listdir("/proc/self/fd"))
    finally:
        os.close(r)
        os.close(w)


def test_failed_open_is_not_released() -> None:
    from errno import EBUSY

    import mockkernel
    from mockkernel.driver import FileOperations, kerr

    calls: list[str] = []

    class Refusing(FileOperations):
        name = "refusing"

        def open(self, file: File) -> None:
            calls.append("open")
            raise kerr(EBUSY)

        def release(self, file: File) -> None:
            calls.append("release")

    class Plugin:
        @mockkernel.hookimpl
        def mockkernel_register(self, registry: Any) -> None:
            registry.add_module("refusing", lambda k: k.misc_register("refusing", Refusing()))

    kernel = mockkernel.boot(plugins=[Plugin()])
    try:
        with pytest.raises(OSError) as e:
            kernel.init_process.sys_open("/dev/refusing", os.O_RDWR)
        assert e.value.errno == EBUSY
        assert calls == ["open"]
        assert not kernel.live_files
    finally:
        kernel.shutdown()
