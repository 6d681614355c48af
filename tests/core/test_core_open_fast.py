"""``os.open("/dev/<name>")`` of a device node, untraced, is the redirection's fast path:
the node comes from the Vfs's memo of ``/dev`` (``Vfs.dev_chrdevs``, emptied by every
change to the tree), ``namei.open_chrdev`` opens it (``vfs.open_chrdev``: the permission
and flag rules inline) and the fd is a ``dup`` of the kind's placeholder; ``close`` is one
real ``close``.  Every test here runs the same open both ways -- the fast path, and the
general one (``Process.sys_openat``'s walk, which a traced ``os.open`` also takes) -- and
compares everything a program and the kernel can see: the errno, or the file's flags,
mode, credentials, ``fstat``, ``F_GETFL``, close-on-exec; and no file left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.driver import File, FileOperations, kerr
from mockkernel.fs import (
    FMODE_LSEEK,
    FMODE_PREAD,
    FMODE_PWRITE,
    FMODE_READ,
    FMODE_WRITE,
    O_LARGEFILE,
    open_flags_to_file,
)
from mockkernel.fsnotify import IN_CLOSE_NOWRITE, IN_CLOSE_WRITE, IN_OPEN, inotify_file
from mockkernel.syscalls import AT_FDCWD
from mockkernel.vfs import Vfs

#: every open(2) flag bit a program may pass (O_RDONLY is 0: access modes 0..3 below)
FLAG_BITS = (
    os.O_NONBLOCK,
    os.O_APPEND,
    os.O_TRUNC,
    os.O_EXCL,
    os.O_NOCTTY,
    os.O_NOFOLLOW,
    os.O_SYNC,
    os.O_DSYNC,
    os.O_NOATIME,
    os.O_CREAT,
    os.O_DIRECTORY,
    os.O_PATH,
    os.O_CLOEXEC,
    os.O_ASYNC,
)

flags_st = st.builds(
    lambda acc, bits: acc | sum(bits),
    st.integers(0, 3),
    st.sets(st.sampled_from(FLAG_BITS)),
)


class Picky(FileOperations):
    """A device whose ``->open`` refuses ``O_NONBLOCK`` (``ENXIO``, as a busy tty) and
    counts its releases (a failed open must not reach ``->release``)."""

    name = "picky"

    def __init__(self) -> None:
        self.released = 0

    def open(self, file: File) -> None:
        if file.f_flags & os.O_NONBLOCK:
            raise kerr(errno.ENXIO)
        file.private_data = self

    def release(self, file: File) -> None:
        self.released += 1


@pytest.fixture
def picky(mock_kernel: Kernel) -> Iterator[Picky]:
    """``/dev/picky`` (0600) and ``/dev/open`` (0666, the default ops)."""
    ops = Picky()
    mock_kernel.misc_register("picky", ops, 0o600)
    mock_kernel.misc_register("open", FileOperations(), 0o666)
    yield ops
    mock_kernel.misc_deregister("picky")
    mock_kernel.misc_deregister("open")


@contextlib.contextmanager
def _as_user(user: bool) -> Iterator[None]:
    if not user:
        yield
        return
    groups, egid = os.getgroups(), os.getegid()
    os.setgroups([])
    os.setegid(65534)
    os.seteuid(65534)  # (nobody: neither the owner nor in the group of a root node)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(egid)
        os.setgroups(groups)


def _outcome(kernel: Kernel, opener: Callable[[], int]) -> tuple[object, ...]:
    """What a program and the kernel see of one open: the errno, or the open file."""
    try:
        fd = opener()
    except OSError as e:
        return ("error", errno.errorcode[e.errno or 0])
    proc = kernel.init_process
    try:
        f = proc.files[fd]
        st_ = os.fstat(fd)
        return (
            "file",
            f.path,
            f.f_flags,
            f.f_mode,
            f.f_op.name,
            f.f_cred is proc.cred,
            f.opened,
            f.f_count,
            st_.st_mode,
            st_.st_rdev,
            fcntl.fcntl(fd, fcntl.F_GETFL),
            os.get_inheritable(fd),
        )
    finally:
        os.close(fd)


def _fast(kernel: Kernel, path: str, flags: int) -> tuple[object, ...]:
    return _outcome(kernel, lambda: os.open(path, flags))


def _general(kernel: Kernel, path: str, flags: int) -> tuple[object, ...]:
    proc = kernel.init_process  # (os.open's O_CLOEXEC, as the redirection adds it)
    return _outcome(kernel, lambda: proc.sys_openat(AT_FDCWD, path, flags | os.O_CLOEXEC))


def _traced(kernel: Kernel, path: str, flags: int) -> tuple[object, ...]:
    with kernel.tracer.capture():
        return _outcome(kernel, lambda: os.open(path, flags))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/dev/udmabuf", "/dev/iommu", "/dev/picky", "/dev/open"]),
    flags=flags_st,
    user=st.booleans(),
)
def test_fast_and_general_open_agree(
    mock_kernel: Kernel, picky: Picky, path: str, flags: int, user: bool
) -> None:
    if user and os.geteuid() != 0:
        user = False  # (only root can become another user and back)
    k = mock_kernel
    memo = k.subsys(Vfs).dev_chrdevs
    live, released = set(k.live_files), picky.released
    with _as_user(user):
        memo.clear()
        fast = _fast(k, path, flags)
        fast_path_taken = path in memo
        general = _general(k, path, flags)
        traced = _traced(k, path, flags)
    assert fast == general == traced
    # the fast path took it unless a flag only the general path knows was given
    slow_flags = os.O_PATH | os.O_DIRECTORY | os.O_CREAT
    assert fast_path_taken == (not flags & slow_flags)
    assert set(k.live_files) == live, "an open or a failed open left a file behind"
    opened = sum(1 for r in (fast, general, traced) if r[0] == "file")
    if path == "/dev/picky" and not flags & os.O_PATH:  # (O_PATH: no ->open, ->release)
        assert picky.released - released == opened  # ->release once per opened file


def test_fast_open_errnos_are_linuxs(mock_kernel: Kernel, picky: Picky) -> None:
    """The answers the Hypothesis test compares, pinned (real Linux gives these)."""
    k = mock_kernel
    assert _fast(k, "/dev/picky", os.O_RDWR | os.O_NONBLOCK) == ("error", "ENXIO")
    assert _fast(k, "/dev/udmabuf", os.O_RDWR | os.O_DIRECTORY) == ("error", "ENOTDIR")
    assert _fast(k, "/dev/udmabuf", os.O_RDWR | os.O_CREAT | os.O_EXCL) == ("error", "EEXIST")
    # build_open_flags refuses O_CREAT|O_DIRECTORY before any lookup: nothing is made
    flags = os.O_RDWR | os.O_CREAT | os.O_DIRECTORY
    assert _fast(k, "/dev/udmabuf", flags | os.O_EXCL) == ("error", "EINVAL")
    assert _fast(k, "/dev/made", flags) == ("error", "EINVAL")
    assert not os.path.exists("/dev/made")
    got = _fast(k, "/dev/udmabuf", os.O_RDWR | os.O_TRUNC)  # O_TRUNC: no-op on a device
    assert got[0] == "file" and got[2] == os.O_RDWR | O_LARGEFILE
    if os.geteuid() == 0:
        with _as_user(True):
            assert _fast(k, "/dev/udmabuf", os.O_RDONLY) == ("error", "EACCES")  # 0660
            assert _fast(k, "/dev/picky", os.O_WRONLY) == ("error", "EACCES")  # 0600
            assert _fast(k, "/dev/open", os.O_RDWR)[0] == "file"  # 0666


def test_the_memo_follows_the_tree(mock_kernel: Kernel) -> None:
    """A node removed, renamed or replaced under ``/dev`` is what the next open sees."""
    k = mock_kernel
    memo = k.subsys(Vfs).dev_chrdevs
    first, second = Picky(), FileOperations()
    k.misc_register("gone", first)
    os.close(os.open("/dev/gone", os.O_RDWR))
    assert "/dev/gone" in memo
    k.misc_deregister("gone")
    assert _fast(k, "/dev/gone", os.O_RDWR) == ("error", "ENOENT")
    k.misc_register("gone", second)  # the same name, another driver
    assert _fast(k, "/dev/gone", os.O_RDWR)[4] == "file"  # (the default ops' name)
    k.misc_deregister("gone")
    if os.geteuid() == 0:  # rename(2) in devtmpfs is root's
        os.close(os.open("/dev/udmabuf", os.O_RDWR))
        os.rename("/dev/udmabuf", "/dev/udmabuf2")
        try:
            assert _fast(k, "/dev/udmabuf", os.O_RDWR) == ("error", "ENOENT")
            assert _fast(k, "/dev/udmabuf2", os.O_RDWR)[1] == "/dev/udmabuf2"
        finally:
            os.rename("/dev/udmabuf2", "/dev/udmabuf")
        assert _fast(k, "/dev/udmabuf", os.O_RDWR)[4] == "udmabuf"


def test_the_memo_of_a_host_device_follows_the_tree(mock_kernel: Kernel) -> None:
    """``/dev/null`` is the host's (a real fd) until the mock ``/dev`` owns its names."""
    k = mock_kernel
    vfs = k.subsys(Vfs)
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        assert fd not in k.init_process.files and "/dev/null" in vfs.dev_chrdevs
        assert os.write(fd, b"x") == 1
    finally:
        os.close(fd)
    vfs.mkdir("/dev", owned=True)  # the mock /dev shows no host device now
    assert _fast(k, "/dev/null", os.O_RDWR) == _general(k, "/dev/null", os.O_RDWR)
    assert _fast(k, "/dev/null", os.O_RDWR) == ("error", "ENOENT")


def test_threads_open_and_close_at_once(mock_kernel: Kernel) -> None:
    """Opens racing in threads each get their own number and file; the numbers stay the
    lowest free ones and nothing is left behind."""
    k = mock_kernel
    proc = k.init_process
    live = set(k.live_files)
    lowest = os.open("/dev/udmabuf", os.O_RDWR)
    os.close(lowest)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(300):
                fd = os.open("/dev/udmabuf", os.O_RDWR)
                file = proc.files[fd]
                assert file.f_count == 1 and proc.slots[fd] is file
                os.close(fd)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(k.live_files) == live
    again = os.open("/dev/udmabuf", os.O_RDWR)
    os.close(again)
    assert again == lowest


@pytest.mark.parametrize("traced", [False, True])
def test_open_and_close_are_heard(mock_kernel: Kernel, traced: bool) -> None:
    """inotify hears ``IN_OPEN`` and the close (``IN_CLOSE_WRITE``/``_NOWRITE``)."""
    k = mock_kernel
    proc = k.init_process
    ino = proc.install_file(inotify_file(k, os.O_NONBLOCK), True)
    try:
        wd = proc.sys_inotify_add_watch(ino, "/dev/udmabuf", 0xFFF)
        ctx = k.tracer.capture() if traced else contextlib.nullcontext()
        with ctx:
            os.close(os.open("/dev/udmabuf", os.O_RDWR))
            os.close(os.open("/dev/udmabuf", os.O_RDONLY))
        data = proc.sys_read(ino, 4096)
        got = []
        while data:
            w, mask, _cookie, n = struct.unpack_from("<iIII", data)
            got.append((w, mask))
            data = data[16 + n :]
        assert got == [(wd, IN_OPEN), (wd, IN_CLOSE_WRITE), (wd, IN_OPEN), (wd, IN_CLOSE_NOWRITE)]
    finally:
        os.close(ino)


@given(st.integers(0, 0o77777777))
def test_open_flags_to_file_is_build_open_flags(flags: int) -> None:
    """The table-driven ``open_flags_to_file`` is the rule as written out."""
    if flags & os.O_PATH:
        want = (flags & (os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW), 0x4000)
    else:
        acc = flags & os.O_ACCMODE
        mode = FMODE_PREAD | FMODE_PWRITE | FMODE_LSEEK
        if acc in (os.O_RDONLY, os.O_RDWR):
            mode |= FMODE_READ
        if acc in (os.O_WRONLY, os.O_RDWR):
            mode |= FMODE_WRITE
        drop = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_CLOEXEC
        want = ((flags & ~drop) | O_LARGEFILE, mode)
    assert open_flags_to_file(flags) == want
