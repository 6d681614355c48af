"""inotify on mock nodes, through the syscall layer (``Process.sys_inotify_add_watch``):
what the VFS reports for changes made in-process.  The event sequences of opens,
writes, renames and removals are compared with Linux 7.2 by the supervisor's
``c/inotifyprobe.c``; here the queue's own rules."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.fsnotify import (
    IN_ATTRIB,
    IN_CLOSE_NOWRITE,
    IN_IGNORED,
    IN_MODIFY,
    IN_OPEN,
    IN_Q_OVERFLOW,
    MAX_QUEUED_EVENTS,
    inotify_file,
)
from mockkernel.process import Process

ATTR = "/sys/module/udmabuf/parameters/list_limit"
DIR = "/sys/module/udmabuf/parameters"


@pytest.fixture
def inotify(mock_kernel: Kernel) -> Iterator[tuple[Process, int]]:
    proc = mock_kernel.init_process
    fd = proc.install_file(inotify_file(mock_kernel, os.O_NONBLOCK), True)
    yield proc, fd
    os.close(fd)


def events(proc: Process, fd: int) -> list[tuple[int, int, str]]:
    out = []
    try:
        data = proc.sys_read(fd, 65536)
    except OSError as e:
        assert e.errno == errno.EAGAIN
        return out
    while data:
        wd, mask, _cookie, n = struct.unpack_from("<iIII", data)
        out.append((wd, mask, data[16 : 16 + n].rstrip(b"\0").decode()))
        data = data[16 + n :]
    return out


def test_a_file_and_its_directory(inotify: tuple[Process, int]) -> None:
    proc, fd = inotify
    wf = proc.sys_inotify_add_watch(fd, ATTR, 0xFFF)
    os.chmod(ATTR, 0o600)
    os.chmod(ATTR, 0o644)  # identical events in a row merge
    assert events(proc, fd) == [(wf, IN_ATTRIB, "")]
    wdir = proc.sys_inotify_add_watch(fd, DIR, 0xFFF)
    assert (wf, wdir) == (1, 2)
    assert proc.sys_inotify_add_watch(fd, ATTR, IN_ATTRIB) == wf  # the same watch, updated
    os.chmod(ATTR, 0o600)  # the directory hears first
    assert events(proc, fd) == [(wdir, IN_ATTRIB, "list_limit"), (wf, IN_ATTRIB, "")]
    os.close(os.open(ATTR, os.O_RDONLY | os.O_PATH))  # O_PATH: no open, no close event
    assert events(proc, fd) == []
    with open(ATTR, "rb"):
        pass  # the directory's watch hears the open and close; the file's asks IN_ATTRIB only
    assert events(proc, fd) == [
        (wdir, IN_OPEN, "list_limit"),
        (wdir, IN_CLOSE_NOWRITE, "list_limit"),
    ]
    proc.sys_inotify_rm_watch(fd, wf)
    assert events(proc, fd) == [(wf, IN_IGNORED, "")]
    assert _errno(proc.sys_inotify_rm_watch, fd, wf) == "EINVAL"


def _errno(fn: object, *args: object) -> str | None:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return None


def test_a_device_node_open_and_close(inotify: tuple[Process, int]) -> None:
    proc, fd = inotify
    wd = proc.sys_inotify_add_watch(fd, "/dev/udmabuf", IN_OPEN | IN_CLOSE_NOWRITE | IN_MODIFY)
    os.close(os.open("/dev/udmabuf", os.O_RDONLY))
    assert events(proc, fd) == [(wd, IN_OPEN, ""), (wd, IN_CLOSE_NOWRITE, "")]


def test_bad_input(inotify: tuple[Process, int]) -> None:
    proc, fd = inotify
    assert _errno(proc.sys_inotify_add_watch, fd, ATTR, 0) == "EINVAL"
    assert _errno(proc.sys_inotify_add_watch, fd, ATTR, 0x30000002) == "EINVAL"
    assert _errno(proc.sys_inotify_add_watch, fd, ATTR, 0x01000002) == "ENOTDIR"
    assert _errno(proc.sys_inotify_add_watch, fd, "/dev/none", 2) == "ENOENT"
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        assert _errno(proc.sys_inotify_add_watch, dev, ATTR, 2) == "EINVAL"  # not inotify
    finally:
        os.close(dev)
    proc.sys_inotify_add_watch(fd, DIR, IN_ATTRIB)
    assert _errno(proc.sys_inotify_add_watch, fd, DIR, 0x10000004) == "EEXIST"
    os.chmod(DIR, 0o755)
    assert _errno(proc.sys_read, fd, 15) == "EINVAL"  # the first event does not fit
    assert len(proc.sys_read(fd, 16)) == 16
    assert _errno(proc.sys_read, fd, 16) == "EAGAIN"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(1, 40))
def test_fionread_counts_the_queued_bytes(mock_kernel: Kernel, n: int) -> None:
    """Alternating events never merge: ``n`` of them, 32 bytes each with the child's
    name (16 + ``list_limit`` padded to 16), read back in one go."""
    proc = mock_kernel.init_process
    fd = proc.install_file(inotify_file(mock_kernel, os.O_NONBLOCK), True)
    try:
        proc.sys_inotify_add_watch(fd, DIR, IN_ATTRIB | IN_MODIFY)
        for i in range(n):
            if i % 2:
                os.truncate(ATTR, 0)
            else:
                os.chmod(ATTR, 0o644)
        buf = bytearray(4)
        fcntl.ioctl(fd, 0x541B, buf)  # FIONREAD
        assert struct.unpack("<i", buf)[0] == 32 * n
        assert len(events(proc, fd)) == n
    finally:
        os.close(fd)


def test_the_queue_overflows_once(inotify: tuple[Process, int]) -> None:
    proc, fd = inotify
    proc.sys_inotify_add_watch(fd, ATTR, IN_ATTRIB | IN_MODIFY)
    for i in range(MAX_QUEUED_EVENTS + 5):
        if i % 2:
            os.truncate(ATTR, 0)
        else:
            os.chmod(ATTR, 0o644)
    got = []
    while True:
        batch = events(proc, fd)
        if not batch:
            break
        got += batch
    assert len(got) == MAX_QUEUED_EVENTS + 1
    assert got[-1] == (-1, IN_Q_OVERFLOW, "")
