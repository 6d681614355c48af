"""The syscall layer driven directly through ``Process.sys_*`` (no redirection), family by
family: what a supervisor of other processes calls.  Mostly on a spawned (virtual)
process; the expectations are real Linux 7.2's (tests/real_linux/probes/dirs.py)."""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import stat
import struct
from collections.abc import Iterator

import pytest
from core_helpers import errno_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel.errors import NotMine, kerr
from mockkernel.fs import DT_CHR, DT_DIR, DT_LNK, File, FileOperations
from mockkernel.kernel import Kernel
from mockkernel.process import Process
from mockkernel.syscalls import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from mockkernel.syscalls.ioctl import FIOQSIZE, VFS_IOCTL_CMDS, VFS_IOCTLS
from mockkernel.syscalls.readdir import DIRENT64_HEAD, parse_dirents64
from mockkernel.uapi.linux.ioctls import FIOCLEX, FIONREAD

VFIO = "/dev/vfio"
CONTAINER = "/dev/vfio/vfio"
PCI = "/sys/bus/pci/devices"
O_DIR = os.O_RDONLY | os.O_DIRECTORY


@pytest.fixture
def proc(kernel: Kernel) -> Iterator[Process]:
    p = kernel.spawn("syscalls")
    yield p
    p.exit()


def a_pci_link(kernel: Kernel) -> str:
    return PCI + "/" + sorted(kernel.vfs.listdir(PCI) or [])[0]


# -- the fd family -------------------------------------------------------------------------
def test_fd_family_errors(proc: Process) -> None:
    assert errno_name(proc.sys_close, 3) == "EBADF"
    assert errno_name(proc.sys_dup, -1) == "EBADF"
    fd = proc.sys_open(CONTAINER, os.O_RDWR)
    assert errno_name(proc.sys_dup3, fd, 9, os.O_NONBLOCK) == "EINVAL"
    assert errno_name(proc.sys_dup3, fd, fd, 0) == "EINVAL"
    assert proc.sys_dup2(fd, fd) == fd
    assert errno_name(proc.sys_dup2, fd, -1) == "EBADF"
    assert errno_name(proc.sys_fcntl, fd, 12345) == "EINVAL"
    assert errno_name(proc.sys_fcntl, fd, fcntl.F_DUPFD, -1) == "EINVAL"
    proc.sys_close(fd)


def test_o_path_files_answer_only_fdget_raw_calls(proc: Process) -> None:
    fd = proc.sys_open(VFIO, os.O_PATH)
    assert proc.sys_fcntl(fd, fcntl.F_GETFL) == os.O_PATH  # no O_LARGEFILE (as Linux)
    assert errno_name(proc.sys_fcntl, fd, fcntl.F_SETFL, os.O_NONBLOCK) == "EBADF"
    assert stat.S_ISDIR(proc.sys_fstat(fd).st_mode)
    assert errno_name(proc.sys_read, fd, 1) == "EBADF"
    assert errno_name(proc.sys_write, fd, b"x") == "EBADF"
    assert errno_name(proc.sys_lseek, fd, 0, os.SEEK_SET) == "EBADF"
    assert errno_name(proc.sys_ioctl, fd, FIOCLEX, 0) == "EBADF"
    assert errno_name(proc.sys_getdents64, fd, 4096) == "EBADF"
    assert errno_name(proc.sys_fsync, fd) == "EBADF"
    assert errno_name(proc.sys_mmap, fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ, 0, 0) == "EBADF"
    dup = proc.sys_dup(fd)
    assert stat.S_ISDIR(proc.sys_fstat(dup).st_mode)
    child = proc.sys_openat(fd, "vfio", os.O_PATH | os.O_CLOEXEC)  # a dirfd all the same
    assert stat.S_ISCHR(proc.sys_fstat(child).st_mode)
    assert proc.sys_fcntl(child, fcntl.F_GETFD) == fcntl.FD_CLOEXEC
    for n in (fd, dup, child):
        proc.sys_close(n)


def test_o_path_of_a_device_does_not_open_it(kernel: Kernel, proc: Process) -> None:
    opened: list[File] = []

    class Counting(FileOperations):
        name = "counting"

        def open(self, file: File) -> None:
            opened.append(file)

    kernel.misc_register("counting", Counting())
    fd = proc.sys_open("/dev/counting", os.O_PATH)
    assert opened == []
    proc.sys_close(fd)
    fd = proc.sys_open("/dev/counting", os.O_RDWR)
    assert len(opened) == 1
    proc.sys_close(fd)


# -- read/write on a directory ----------------------------------------------------------------
def test_rw_family_on_a_directory(proc: Process) -> None:
    fd = proc.sys_open(VFIO, O_DIR)
    assert errno_name(proc.sys_read, fd, 16) == "EISDIR"
    assert errno_name(proc.sys_pread, fd, 16, 0) == "EISDIR"
    assert errno_name(proc.sys_pread, fd, 16, -1) == "EINVAL"
    assert errno_name(proc.sys_write, fd, b"x") == "EBADF"
    assert errno_name(proc.sys_readv, fd, 8, -1) == "EINVAL"
    assert proc.sys_lseek(fd, 0, os.SEEK_SET) == 0
    assert errno_name(proc.sys_lseek, fd, 0, os.SEEK_END) == "EINVAL"
    assert errno_name(proc.sys_lseek, fd, -1, os.SEEK_SET) == "EINVAL"
    proc.sys_fsync(fd)  # noop_fsync
    rw = mmap.PROT_READ
    assert errno_name(proc.sys_mmap, fd, 4096, mmap.MAP_SHARED, rw, 0, 0) == "ENODEV"
    proc.sys_close(fd)


# -- ioctl: one dispatch ----------------------------------------------------------------------
def test_ioctl_dispatch_on_a_directory(proc: Process) -> None:
    fd = proc.sys_open(VFIO, O_DIR)
    assert errno_name(proc.sys_ioctl, fd, FIONREAD, 0) == "ENOTTY"  # no driver behind it
    assert proc.sys_ioctl(fd, FIOCLEX, 0) == 0  # do_vfs_ioctl answers
    assert proc.sys_fcntl(fd, fcntl.F_GETFD) == fcntl.FD_CLOEXEC
    size = ctypes.c_int64(-1)
    assert proc.sys_ioctl(fd, FIOQSIZE, ctypes.addressof(size)) == 0
    assert size.value == 0  # i_size of a mock directory
    assert errno_name(proc.sys_ioctl, 99, FIOCLEX, 0) == "EBADF"
    chr_fd = proc.sys_open(CONTAINER, os.O_RDWR)
    assert errno_name(proc.sys_ioctl, chr_fd, FIOQSIZE, ctypes.addressof(size)) == "ENOTTY"
    proc.sys_close(chr_fd)
    proc.sys_close(fd)


def test_the_hot_path_takes_its_vfs_ioctls_from_the_layer(mock_kernel: Kernel) -> None:
    from mockkernel.userspace.redirect import Redirection

    redir = Redirection.active
    assert redir is not None
    assert frozenset(VFS_IOCTLS) == VFS_IOCTL_CMDS
    fd = os.open("/dev/udmabuf", os.O_RDWR)  # (a misc device: its table names no VFS command)
    try:
        fcntl.ioctl(fd, FIOCLEX, 0)
        fop = mock_kernel.init_process.files[fd].f_op
    finally:
        os.close(fd)
    tables = redir.funcs["ioctl"].__globals__["_ioctl_tables"]
    assert set(tables[fop]) == set(fop.ioctls) - VFS_IOCTL_CMDS
    rigged = type("Rigged", (FileOperations,), {"ioctls": dict.fromkeys(VFS_IOCTL_CMDS, print)})()
    assert redir.funcs["ioctl"].__globals__["_ioctl_table"](rigged) == {}


# -- namei: which paths are the mock's ----------------------------------------------------------
def test_paths_that_are_not_the_mocks(proc: Process) -> None:
    for call in (
        lambda: proc.sys_openat(AT_FDCWD, "relative", os.O_RDONLY),
        lambda: proc.sys_openat(AT_FDCWD, "/etc/hostname", os.O_RDONLY),
        lambda: proc.sys_openat(AT_FDCWD, "/dev", O_DIR),  # an overlay directory
        lambda: proc.sys_openat(77, "x", os.O_RDONLY),  # a real fd of a virtual process
        lambda: proc.sys_newfstatat(AT_FDCWD, "/dev/null"),
        lambda: proc.sys_faccessat(AT_FDCWD, "/proc/version", os.R_OK),
        lambda: proc.sys_readlinkat(AT_FDCWD, "/dev/stdin"),
    ):
        with pytest.raises(NotMine) as e:
            call()
        assert e.value.path is None


def test_leaving_the_tree_from_a_mock_dirfd_names_the_real_path(proc: Process) -> None:
    d = proc.sys_open(VFIO, O_DIR)
    with pytest.raises(NotMine) as e:
        proc.sys_openat(d, "../null", os.O_RDONLY)
    assert e.value.path == "/dev/null"
    with pytest.raises(NotMine) as e:
        proc.sys_newfstatat(d, "../null")
    assert e.value.path == "/dev/null"
    proc.sys_close(d)


def test_dirfd_rules(kernel: Kernel, proc: Process) -> None:
    d = proc.sys_open(VFIO, O_DIR)
    c = proc.sys_openat(d, "vfio", os.O_RDWR)
    assert proc.files[c].path == CONTAINER
    assert errno_name(proc.sys_openat, c, "vfio", os.O_RDONLY) == "ENOTDIR"
    assert errno_name(proc.sys_openat, -5, "vfio", os.O_RDONLY) == "EBADF"
    assert errno_name(proc.sys_openat, d, "", os.O_RDONLY) == "ENOENT"
    assert errno_name(proc.sys_openat, d, "nope", os.O_RDONLY) == "ENOENT"
    a = proc.sys_openat(c, CONTAINER, os.O_RDWR)  # an absolute path ignores dirfd
    dot = proc.sys_openat(d, ".", O_DIR)
    assert proc.files[dot].path == VFIO
    # this Python process's table knows its real fds: a number open nowhere is EBADF
    init = kernel.init_process
    assert errno_name(init.sys_openat, 1 << 20, "x", os.O_RDONLY) == "EBADF"
    for n in (d, c, a, dot):
        proc.sys_close(n)


def test_open_flags_on_directories_devices_and_links(kernel: Kernel, proc: Process) -> None:
    link = a_pci_link(kernel)
    assert errno_name(proc.sys_open, VFIO, os.O_WRONLY) == "EISDIR"
    assert errno_name(proc.sys_open, VFIO, os.O_RDWR | os.O_DIRECTORY) == "EISDIR"
    assert errno_name(proc.sys_open, VFIO, os.O_RDONLY | os.O_CREAT) == "EISDIR"
    assert errno_name(proc.sys_open, VFIO, O_DIR | os.O_CREAT) == "EINVAL"
    assert errno_name(proc.sys_open, CONTAINER, os.O_RDWR | os.O_DIRECTORY) == "ENOTDIR"
    assert errno_name(proc.sys_open, CONTAINER + "/", os.O_RDWR) == "ENOTDIR"
    assert errno_name(proc.sys_open, VFIO + "/new", os.O_RDWR | os.O_CREAT) == "EACCES"
    assert errno_name(proc.sys_open, link, os.O_RDONLY | os.O_NOFOLLOW) == "ELOOP"
    assert errno_name(proc.sys_open, link, O_DIR | os.O_NOFOLLOW) == "ENOTDIR"
    fd = proc.sys_open(link, os.O_PATH | os.O_NOFOLLOW)
    assert stat.S_ISLNK(proc.sys_fstat(fd).st_mode)
    assert proc.sys_fcntl(fd, fcntl.F_GETFL) == os.O_PATH | os.O_NOFOLLOW
    proc.sys_close(fd)
    fd = proc.sys_open(link, O_DIR)  # followed: the device's directory
    assert stat.S_ISDIR(proc.sys_fstat(fd).st_mode)
    assert proc.sys_fcntl(fd, fcntl.F_GETFL) == O_DIR | 0o100000
    proc.sys_close(fd)


# -- the stat family --------------------------------------------------------------------------
def test_stat_family(kernel: Kernel, proc: Process) -> None:
    link = a_pci_link(kernel)
    assert stat.S_ISDIR(proc.sys_newfstatat(AT_FDCWD, VFIO).st_mode)
    assert stat.S_ISDIR(proc.sys_newfstatat(AT_FDCWD, link).st_mode)
    assert stat.S_ISLNK(proc.sys_newfstatat(AT_FDCWD, link, AT_SYMLINK_NOFOLLOW).st_mode)
    assert errno_name(proc.sys_newfstatat, AT_FDCWD, VFIO, 0x4) == "EINVAL"
    assert errno_name(proc.sys_newfstatat, AT_FDCWD, VFIO + "/nope") == "ENOENT"
    assert errno_name(proc.sys_newfstatat, AT_FDCWD, CONTAINER + "/x") == "ENOTDIR"
    d = proc.sys_open(VFIO, O_DIR)
    assert proc.sys_newfstatat(d, "", AT_EMPTY_PATH) == proc.sys_fstat(d)
    assert errno_name(proc.sys_newfstatat, d, "") == "ENOENT"
    assert stat.S_ISCHR(proc.sys_newfstatat(d, "vfio").st_mode)
    assert stat.S_ISCHR(proc.sys_statx(d, "vfio", 0, 0x7FF).st_mode)
    assert errno_name(proc.sys_statx, d, "vfio", 0, 0x80000000) == "EINVAL"
    assert errno_name(proc.sys_statx, d, "vfio", 0x6000, 0) == "EINVAL"
    proc.sys_faccessat(d, "vfio", os.F_OK)
    assert errno_name(proc.sys_faccessat, d, "vfio", 0o10) == "EINVAL"
    assert errno_name(proc.sys_faccessat, d, "nope", os.F_OK) == "ENOENT"
    proc.sys_close(d)


def test_readlinkat(kernel: Kernel, proc: Process) -> None:
    link = a_pci_link(kernel)
    target = kernel.vfs.lookup(link, follow=False).target  # type: ignore[union-attr]
    assert proc.sys_readlinkat(AT_FDCWD, link) == os.fsencode(target)
    assert proc.sys_readlinkat(AT_FDCWD, link, 3) == os.fsencode(target)[:3]
    assert errno_name(proc.sys_readlinkat, AT_FDCWD, link, 0) == "EINVAL"
    assert errno_name(proc.sys_readlinkat, AT_FDCWD, VFIO) == "EINVAL"
    fd = proc.sys_open(link, os.O_PATH | os.O_NOFOLLOW)
    assert proc.sys_readlinkat(fd, "") == os.fsencode(target)  # an O_PATH link fd
    proc.sys_close(fd)


# -- getdents64 -------------------------------------------------------------------------------
def test_getdents64_records(kernel: Kernel, proc: Process) -> None:
    fd = proc.sys_open(VFIO, O_DIR)
    data = proc.sys_getdents64(fd, 65536)
    assert proc.sys_getdents64(fd, 65536) == b""  # the end
    ents = parse_dirents64(data)
    names = [e[3] for e in ents]
    assert names[:2] == [".", ".."]
    assert sorted(names[2:]) == sorted(kernel.vfs.listdir(VFIO) or [])
    types = {e[3]: e[2] for e in ents}
    assert types["."] == types[".."] == types["devices"] == DT_DIR
    assert types["vfio"] == DT_CHR
    assert dict((e[3], e[0]) for e in ents)["vfio"] == proc.sys_newfstatat(fd, "vfio").st_ino
    pos = 0
    while pos < len(data):  # each record: its length a multiple of 8, the name NUL-ended
        reclen = struct.unpack_from("<H", data, pos + 16)[0]
        assert reclen % 8 == 0 and data[pos + DIRENT64_HEAD.size :][:reclen].count(0) >= 1
        pos += reclen
    # d_off is where the next entry is: seeking there resumes after that entry
    proc.sys_lseek(fd, ents[1][1], os.SEEK_SET)
    assert [e[3] for e in parse_dirents64(proc.sys_getdents64(fd, 65536))] == names[2:]
    proc.sys_close(fd)


def test_getdents64_errors(kernel: Kernel, proc: Process) -> None:
    c = proc.sys_open(CONTAINER, os.O_RDWR)
    assert errno_name(proc.sys_getdents64, c, 4096) == "ENOTDIR"
    assert errno_name(proc.sys_getdents64, 42, 4096) == "EBADF"
    d = proc.sys_open(PCI, O_DIR)
    assert errno_name(proc.sys_getdents64, d, 23) == "EINVAL"  # "." needs 24 bytes
    assert len(parse_dirents64(proc.sys_getdents64(d, 24))) == 1
    for n in (c, d):
        proc.sys_close(n)
    link = a_pci_link(kernel)
    d = proc.sys_open(PCI, O_DIR)
    types = {e[3]: e[2] for e in parse_dirents64(proc.sys_getdents64(d, 65536))}
    assert types[link.rsplit("/", 1)[1]] == DT_LNK
    proc.sys_close(d)


def _reclen(name: str) -> int:
    return (DIRENT64_HEAD.size + len(name.encode()) + 1 + 7) & ~7


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_getdents64_every_entry_once_whatever_the_sizes(
    kernel: Kernel, data: st.DataObject
) -> None:
    """Reading a directory with buffers of any sizes: each entry exactly once, in order;
    ``EINVAL`` (and no progress) exactly when the next entry does not fit; otherwise as
    many whole records as fit.  Sizes are drawn anywhere, and often at the edges:
    exactly the next few records, one byte less.  (One kernel for every example: each
    makes and ends its own process.)"""
    proc = kernel.spawn("dents")
    try:
        fd = proc.sys_open(PCI, O_DIR)
        expected = parse_dirents64(proc.sys_getdents64(fd, 1 << 16))
        proc.sys_lseek(fd, 0, os.SEEK_SET)
        got: list[tuple[int, int, int, str]] = []
        for _ in range(data.draw(st.integers(1, 30))):
            ahead = expected[len(got) : len(got) + 3]
            edges = [sum(_reclen(e[3]) for e in ahead[:j]) for j in (1, 2, 3)]
            count = data.draw(
                st.one_of(
                    st.integers(0, 300),
                    st.sampled_from(edges),
                    st.sampled_from([max(0, n - 1) for n in edges]),
                )
            )
            nxt = ahead[0] if ahead else None
            try:
                chunk = proc.sys_getdents64(fd, count)
            except OSError as e:
                assert e.errno == 22 and nxt is not None and count < _reclen(nxt[3])
                continue
            assert nxt is None or count >= _reclen(nxt[3])  # it succeeds only when it fits
            assert (chunk == b"") == (nxt is None)
            assert len(chunk) <= count
            records = parse_dirents64(chunk)
            after = len(got) + len(records)
            if after < len(expected):  # the record after the last would not have fit
                assert len(chunk) + _reclen(expected[after][3]) > count
            got += records
        got += parse_dirents64(proc.sys_getdents64(fd, 1 << 16))
        assert got == expected
        proc.sys_close(fd)
    finally:
        proc.exit()


def test_a_driver_without_iterate_is_not_a_directory(kernel: Kernel, proc: Process) -> None:
    class Plain(FileOperations):
        name = "plain"

        def read(self, file: File, count: int, pos: int) -> bytes:
            raise kerr(5)

    kernel.misc_register("plain", Plain())
    fd = proc.sys_open("/dev/plain", os.O_RDONLY)
    assert errno_name(proc.sys_getdents64, fd, 4096) == "ENOTDIR"
    proc.sys_close(fd)


# -- poll: one scan ---------------------------------------------------------------------------
def test_poll_one_scan(kernel: Kernel, proc: Process) -> None:
    from mockkernel.poll import EPOLLIN, EPOLLNVAL, EPOLLOUT

    d = proc.sys_open(VFIO, O_DIR)  # no ->poll: always readable and writable
    assert proc.sys_poll([(d, EPOLLIN), (-1, EPOLLIN), (d, EPOLLOUT), (50, EPOLLIN)]) == [
        EPOLLIN,
        0,
        EPOLLOUT,
        None,  # a virtual process's other numbers are the front-end's
    ]
    proc.sys_close(d)
    r, w = os.pipe()
    try:  # this Python process: a real fd is the real OS's, a number open nowhere POLLNVAL
        assert kernel.init_process.sys_poll([(r, EPOLLIN), (1 << 20, EPOLLIN)]) == [
            None,
            EPOLLNVAL,
        ]
    finally:
        os.close(r)
        os.close(w)
