"""The redirection's mock-or-real decision (``userspace/hotpath.py``) at its edges.

The decision is one index into ``Process.slots``: None, an IndexError (a number past every
mock fd) or a TypeError (not an int) means "real".  These tests pin down the cases where
that shortcut could go wrong: negative numbers (which index a Python list from its end),
mock fds past the list's first size, real fds past its end, int subclasses, objects with
``fileno()``, and the path shapes ``os.open`` takes.
"""

from __future__ import annotations

import enum
import fcntl
import os
import pathlib
import stat
import struct
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import DEV, DMA_BUF_IOCTL_SYNC, FIONREAD, errno_name, make_udmabuf

from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL

SYNC_READ_START = struct.pack("=Q", 1 | 0)  # DMA_BUF_SYNC_READ | DMA_BUF_SYNC_START


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, str]:
    try:
        return ("ok", repr(fn(*args)))
    except Exception as e:  # the exception's type, errno and message
        return (type(e).__name__, str(e))


def _proc(kernel: Kernel) -> object:
    proc = kernel.installed_process
    assert proc is not None
    return proc


def test_a_negative_fd_that_aliases_a_mock_slot_is_ebadf(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    try:
        slots = _proc(mock_kernel).slots  # type: ignore[attr-defined]
        alias = buf - len(slots)  # slots[alias] is slots[buf]: the mock file
        assert alias < 0 and slots[alias] is slots[buf] is not None
        # each answers as the real function does for a negative number
        for fn, real, args in (
            (os.read, REAL.read, (alias, 1)),
            (os.write, REAL.write, (alias, b"x")),
            (os.fstat, REAL.fstat, (alias,)),
            (fcntl.ioctl, REAL.ioctl, (alias, FIONREAD, bytearray(4))),
            (os.close, REAL.close, (alias,)),
        ):
            assert _outcome(fn, *args) == _outcome(real, *args), fn
        # the mock fd is untouched
        assert fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, bytearray(SYNC_READ_START)) == 0
    finally:
        os.close(buf)
        os.close(memfd)


def test_mock_fds_past_the_first_slots_route_to_the_kernel(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()
    proc = _proc(mock_kernel)
    first = len(proc.slots)  # type: ignore[attr-defined]
    dups: list[int] = []
    try:
        while not dups or dups[-1] < first + 8:
            dups.append(os.dup(buf))
        high = dups[-1]
        assert high >= first and len(proc.slots) > high  # type: ignore[attr-defined]
        assert os.fstat(high).st_ino == os.fstat(buf).st_ino  # the same mock inode
        assert fcntl.ioctl(high, DMA_BUF_IOCTL_SYNC, bytearray(SYNC_READ_START)) == 0
        assert os.lseek(high, 0, os.SEEK_END) == 8192  # dma-buf llseek: the size
        assert errno_name(os.read, high, 1) == "EINVAL"  # dma-buf has no read
    finally:
        for fd in reversed(dups):
            os.close(fd)
        os.close(buf)
        os.close(memfd)
    assert all(s is None for s in proc.slots[first:])  # type: ignore[attr-defined]


def test_real_fds_past_the_slots_are_real(mock_kernel: Kernel) -> None:
    slots = _proc(mock_kernel).slots  # type: ignore[attr-defined]
    r, w = os.pipe()
    high = len(slots) + 100
    try:
        assert os.dup2(w, high) == high
        assert os.write(high, b"ab") == 2
        buf = bytearray(4)
        assert fcntl.ioctl(r, FIONREAD, buf) == 0 and struct.unpack("=i", buf)[0] == 2
        assert stat.S_ISFIFO(os.fstat(high).st_mode)
        os.close(high)
        assert errno_name(os.close, high) == "EBADF"
        assert os.read(r, 2) == b"ab"
    finally:
        os.close(r)
        os.close(w)


def test_int_subclasses_and_fileno_objects_reach_the_mock_ioctl(mock_kernel: Kernel) -> None:
    memfd, buf = make_udmabuf()

    class Fd(enum.IntEnum):
        BUF = buf

    class Holder:
        def fileno(self) -> int:
            return buf

    try:
        arg = bytearray(SYNC_READ_START)
        assert fcntl.ioctl(Fd.BUF, DMA_BUF_IOCTL_SYNC, arg) == 0
        assert fcntl.ioctl(Holder(), DMA_BUF_IOCTL_SYNC, arg) == 0
        # an unknown request on the mock file is the driver's ENOTTY, not the real memfd's
        assert errno_name(fcntl.ioctl, Holder(), FIONREAD, bytearray(4)) == "ENOTTY"
    finally:
        os.close(buf)
        os.close(memfd)


def test_fileno_objects_on_real_fds_stay_real(mock_kernel: Kernel) -> None:
    r, w = os.pipe()

    class Holder:
        def fileno(self) -> int:
            return r

    try:
        os.write(w, b"xyz")
        out = bytearray(4)
        assert fcntl.ioctl(Holder(), FIONREAD, out) == 0
        assert struct.unpack("=i", out)[0] == 3
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    "path",
    [DEV, DEV.encode(), pathlib.Path(DEV)],
    ids=["str", "bytes", "PathLike"],
)
def test_os_open_of_a_mock_path_in_every_spelling(mock_kernel: Kernel, path: object) -> None:
    fd = os.open(path, os.O_RDWR)  # type: ignore[arg-type]
    try:
        assert stat.S_ISCHR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def test_os_open_of_short_and_odd_paths_is_real(mock_kernel: Kernel) -> None:
    assert errno_name(os.open, "", os.O_RDONLY) == "ENOENT"
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)  # a real directory fd
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    with pytest.raises(TypeError):
        os.open(123.0, os.O_RDONLY)  # type: ignore[arg-type]
    assert errno_name(os.open, "/dev/no-such-mock-node", os.O_RDONLY) == "ENOENT"
    assert errno_name(os.open, "/sys/no/such", os.O_RDONLY) == "ENOENT"


def test_os_open_with_dir_fd_goes_to_the_real_os(mock_kernel: Kernel, tmp_path: object) -> None:
    d = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open("f", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=d)
        os.close(fd)
        assert os.path.exists(os.path.join(str(tmp_path), "f"))
    finally:
        os.close(d)
