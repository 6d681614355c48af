"""The redirection's real-fd/host-path fast dispatchers (``userspace/fastcalls.py``, the
fast tests of ``paths.py``/``fileio.py``/``mmap.py``) are a faster way to the same answer:

* a host path or real fd takes the real function: the same result and the same errno
  (and ``filename``) as the real call made with the redirection out of the way;
* every path form (mock roots, host paths, relative, bytes, PathLike, ``dir_fd``) gets
  the same answer from the fast dispatcher as from the family's slow path, which decides
  as before the fast tests existed.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import pathlib
import select
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from core_helpers import DEV
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL, held_fds
from mockkernel.userspace import fastcalls
from mockkernel.userspace.redirect import Redirection

_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """What a call answered, comparable across calls (a stat's stable fields)."""
    try:
        r = fn(*args, **kwargs)
    except OSError as e:
        return ("errno", e.errno, e.filename)
    except (TypeError, ValueError, OverflowError) as e:
        return ("raised", type(e))
    if isinstance(r, os.stat_result):
        return ("stat", r.st_mode, r.st_ino, r.st_dev, r.st_size, r.st_rdev, r.st_nlink)
    return ("ok", r)


def redir() -> Redirection:
    active = Redirection.active
    assert active is not None
    return active


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A small real tree: a file, a directory, a symlink to each, a dangling link."""
    (tmp_path / "file").write_bytes(b"x" * 10)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inner").write_bytes(b"")
    os.symlink(tmp_path / "file", tmp_path / "link")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # (relative paths name the tree)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


_MOCK = [
    DEV,
    "/dev/null",
    "/dev/",
    "/dev/no-such-node",
    "/sys",
    "/sys/bus/pci/devices",
    "/sys/bus/pci/devices/0000:01:00.0/config",
    "/sys/no/such",
    "/proc",
    "/proc/self/fd",
    "/proc/bus/pci",
    "/proc/self/status",
]
_HOST_NAMES = ["file", "dir", "dir/inner", "link", "dangling", "missing", "file/notdir"]
_ODD = ["", "/", "/d", "/dx", "/devices-not", "/system", "/tmp", "/etc/hostname", "."]


@st.composite
def paths(draw: st.DrawFn, root: str) -> tuple[Any, int | None]:
    """``(path, dir_fd)``: a mock root, a host path absolute or relative, an odd string;
    as str, bytes or PathLike; with no dir_fd, a real directory's or ``/sys``'s."""
    kind = draw(st.sampled_from(["mock", "host", "relative", "odd"]))
    if kind == "mock":
        p = draw(st.sampled_from(_MOCK))
    elif kind == "host":
        p = f"{root}/{draw(st.sampled_from(_HOST_NAMES))}"
    elif kind == "relative":
        p = draw(st.sampled_from(_HOST_NAMES))
    else:
        p = draw(st.sampled_from(_ODD))
    form = draw(st.sampled_from(["str", "bytes", "pathlike"]))
    path: Any = p if form == "str" else os.fsencode(p) if form == "bytes" else pathlib.Path(p)
    where = draw(st.sampled_from([None, None, "real", "mock"]))
    dir_fd = None
    if where == "real":
        dir_fd = REAL.open(root, os.O_RDONLY | os.O_DIRECTORY)
    elif where == "mock":
        dir_fd = os.open("/sys/bus/pci/devices", os.O_RDONLY | os.O_DIRECTORY)
    return path, dir_fd


def _close(dir_fd: int | None) -> None:
    if dir_fd is not None:
        os.close(dir_fd)


@_SETTINGS
@given(data=st.data(), follow=st.booleans())
def test_stat_fast_and_slow_agree(
    mock_kernel: Kernel, tree: pathlib.Path, data: st.DataObject, follow: bool
) -> None:
    path, dir_fd = data.draw(paths(str(tree)))
    r = redir()
    try:
        fast = outcome(os.stat, path, dir_fd=dir_fd, follow_symlinks=follow)
        assert fast == outcome(r.paths.stat_slow, path, dir_fd, follow)
        fast_l = outcome(os.lstat, path, dir_fd=dir_fd)
        assert fast_l == outcome(r.paths.stat_slow, path, dir_fd, False)
        if dir_fd is None and follow:  # (os.path.exists: os.stat, following links)
            assert os.path.exists(path) == (fast[0] == "stat")
    finally:
        _close(dir_fd)


def test_stat_fast_and_slow_agree_on_every_form(mock_kernel: Kernel, tree: pathlib.Path) -> None:
    """Every path of the lists, in every form, with and without a ``dir_fd`` (the
    exhaustive companion of the Hypothesis test above)."""
    r = redir()
    root = str(tree)
    names = _MOCK + [f"{root}/{n}" for n in _HOST_NAMES] + _HOST_NAMES + _ODD
    real_dir = REAL.open(root, os.O_RDONLY | os.O_DIRECTORY)
    mock_dir = os.open("/sys/bus/pci/devices", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for p in names:
            for path in (p, os.fsencode(p), pathlib.Path(p)):
                for dir_fd in (None, real_dir, mock_dir):
                    for follow in (True, False):
                        fast = outcome(os.stat, path, dir_fd=dir_fd, follow_symlinks=follow)
                        slow = outcome(r.paths.stat_slow, path, dir_fd, follow)
                        assert fast == slow, (path, dir_fd, follow)
                    fast = outcome(os.lstat, path, dir_fd=dir_fd)
                    assert fast == outcome(r.paths.stat_slow, path, dir_fd, False)
                    for eff in (False, True):
                        kw = {"dir_fd": dir_fd, "effective_ids": eff}
                        fast = outcome(os.access, path, os.R_OK, **kw)
                        assert fast == outcome(r.paths.access, path, os.R_OK, **kw), path
    finally:
        os.close(mock_dir)
        REAL.close(real_dir)


@_SETTINGS
@given(data=st.data(), mode=st.sampled_from([os.F_OK, os.R_OK, os.W_OK | os.X_OK, 0o17]))
def test_access_fast_and_slow_agree(
    mock_kernel: Kernel, tree: pathlib.Path, data: st.DataObject, mode: int
) -> None:
    path, dir_fd = data.draw(paths(str(tree)))
    eff, follow = data.draw(st.booleans()), data.draw(st.booleans())
    r = redir()
    try:
        kw = {"dir_fd": dir_fd, "effective_ids": eff, "follow_symlinks": follow}
        assert outcome(os.access, path, mode, **kw) == outcome(r.paths.access, path, mode, **kw)
    finally:
        _close(dir_fd)


@_SETTINGS
@given(data=st.data())
def test_host_paths_take_the_real_call(
    mock_kernel: Kernel, tree: pathlib.Path, data: st.DataObject
) -> None:
    """A host path (absolute or relative str, bytes, PathLike, with a real dir_fd): the
    answer of the real function, errno and filename included."""
    name = data.draw(st.sampled_from(_HOST_NAMES))
    p = data.draw(st.sampled_from([f"{tree}/{name}", name]))
    path: Any = data.draw(st.sampled_from([p, os.fsencode(p), pathlib.Path(p)]))
    follow = data.draw(st.booleans())
    kw: dict[str, Any] = {"follow_symlinks": follow}
    if not p.startswith("/") and data.draw(st.booleans()):
        kw["dir_fd"] = REAL.open(str(tree), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert outcome(os.stat, path, **kw) == outcome(REAL.stat, path, **kw)
        kw_l = {k: v for k, v in kw.items() if k != "follow_symlinks"}
        assert outcome(os.lstat, path, **kw_l) == outcome(REAL.lstat, path, **kw_l)
        assert os.access(path, os.R_OK, **kw) == REAL.access(path, os.R_OK, **kw)
        if "dir_fd" not in kw:
            assert outcome(os.listdir, path) == outcome(REAL.listdir, path)
            got = outcome(lambda q: sorted(e.name for e in os.scandir(q)), path)
            assert got == outcome(lambda q: sorted(e.name for e in REAL.scandir(q)), path)
            assert outcome(lambda q: open(q, "rb").read(), path) == outcome(  # noqa: SIM115
                lambda q: REAL.builtin_open(q, "rb").read(), path
            )
    finally:
        _close(kw.get("dir_fd"))


def test_the_fast_dispatchers_are_installed(mock_kernel: Kernel) -> None:
    r = redir()
    for key, name in (("stat", "m_stat"), ("lseek", "m_lseek"), ("fcntl", "m_fcntl")):
        assert r.funcs[key].__code__ is getattr(fastcalls, name).__code__
    assert os.stat is r.funcs["stat"] and fcntl.fcntl is r.funcs["fcntl"]


@_SETTINGS
@given(
    fd_kind=st.sampled_from(["pipe", "file", "closed", "negative", "huge", "mock", "held"]),
    pos=st.integers(-5, 5),
    whence=st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, 7]),
)
def test_fd_calls_fast_and_slow_agree(
    mock_kernel: Kernel, tree: pathlib.Path, fd_kind: str, pos: int, whence: int
) -> None:
    """lseek/dup/fcntl of every kind of fd: the fast dispatcher answers as the slow path
    (a real fd: as the real call; a held fd: EBADF; a mock fd: the kernel)."""
    r = redir()
    fds = r.funcs  # (the installed ones)
    opened: list[int] = []
    if fd_kind == "pipe":
        a, b = os.pipe()
        opened += [a, b]
        fd = a
    elif fd_kind == "file":
        fd = REAL.open(str(tree / "file"), os.O_RDWR)
        opened.append(fd)
    elif fd_kind == "closed":
        fd = REAL.open("/dev/null", os.O_RDONLY)
        REAL.close(fd)
    elif fd_kind == "negative":
        fd = -1
    elif fd_kind == "huge":
        fd = 1 << 40
    elif fd_kind == "mock":
        fd = os.open(DEV, os.O_RDWR)
        opened.append(fd)
    else:
        os.listdir("/sys/bus/pci/devices")  # (the probes have run: BARs are held memfds)
        held = sorted(held_fds(mock_kernel))
        assert held, "the booted default topology holds real fds (BAR memory)"
        fd = held[0]
    fdcalls = fds["lseek"].__globals__["_lseek_slow"].__self__  # (the FdCalls)
    try:

        def seek(fn: Callable[..., Any]) -> tuple[Any, ...]:
            with contextlib.suppress(Exception):  # (each from offset 0: SEEK_CUR)
                os.lseek(fd, 0, os.SEEK_SET)
            return outcome(fn, fd, pos, whence)

        assert seek(os.lseek) == seek(fdcalls.lseek)
        if fd_kind in ("pipe", "file", "closed", "negative", "huge"):
            assert seek(os.lseek) == seek(REAL.lseek)
            assert outcome(fcntl.fcntl, fd, fcntl.F_GETFL) == outcome(REAL.fcntl, fd, fcntl.F_GETFL)
            assert outcome(fcntl.fcntl, fd, fcntl.F_GETFD, 0) == outcome(
                REAL.fcntl, fd, fcntl.F_GETFD, 0
            )
        assert outcome(fcntl.fcntl, fd, fcntl.F_GETFL) == outcome(fdcalls.fcntl, fd, fcntl.F_GETFL)
        got, want = outcome(os.dup, fd), outcome(fdcalls.dup, fd)
        for o in (got, want):
            if o[0] == "ok":
                os.close(o[1])
        assert got[0] == want[0]
        if got[0] != "ok":
            assert got == want
        if fd_kind == "held":
            assert got[:2] == ("errno", 9)  # EBADF: the kernel's, not the program's
    finally:
        for n in opened:
            os.close(n)


def test_fcntl_with_no_argument_passes_none(mock_kernel: Kernel) -> None:
    """``fcntl(fd, cmd)`` of a real fd is the real call without a third argument (and
    the slow path reads an omitted one as 0)."""
    a, b = os.pipe()
    try:
        assert fcntl.fcntl(a, fcntl.F_GETFL) == REAL.fcntl(a, fcntl.F_GETFL)
        assert fcntl.fcntl(a, fcntl.F_SETFL, os.O_NONBLOCK) == 0
        assert REAL.fcntl(a, fcntl.F_GETFL) & os.O_NONBLOCK
        fd = os.open(DEV, os.O_RDWR)
        try:
            assert fcntl.fcntl(fd, fcntl.F_GETFD) == fcntl.FD_CLOEXEC
            assert fcntl.fcntl(fd, fcntl.F_GETFD) == fcntl.fcntl(fd, fcntl.F_GETFD, 0)
        finally:
            os.close(fd)
    finally:
        REAL.close(a)
        REAL.close(b)


def test_mmap_of_a_real_memfd_is_the_real_map(mock_kernel: Kernel) -> None:
    memfd = os.memfd_create("fast")
    try:
        os.ftruncate(memfd, mmap.PAGESIZE)
        REAL.pwrite(memfd, b"abc", 0)
        with mmap.mmap(memfd, mmap.PAGESIZE) as m:
            assert isinstance(m, mmap.mmap) and m[:3] == b"abc"
            m[3:4] = b"d"
        assert REAL.pread(memfd, 4, 0) == b"abcd"
        with pytest.raises(ValueError):
            mmap.mmap(memfd, 2 * mmap.PAGESIZE)  # (the real type's own check)
        with pytest.raises(OSError) as e:
            mmap.mmap(1 << 20, mmap.PAGESIZE)
        assert e.value.errno == 9
    finally:
        REAL.close(memfd)


def test_select_and_poll_of_real_fds_answer_as_the_real_calls(mock_kernel: Kernel) -> None:
    """Lists of real fds go to the real select at once; a poll object of real fds keeps
    its real poll object while its registrations stand, and makes it again after a
    change; a mock fd registered later takes the slow path."""
    real_select = Redirection.active.real_more["select"] if Redirection.active else None
    assert real_select is not None and select.select is not real_select
    a, b = os.pipe()
    try:
        assert select.select([a], [b], [], 0) == real_select([a], [b], [], 0) == ([], [b], [])
        os.write(b, b"x")
        assert select.select([a], [], [a], 0) == ([a], [], [])
        assert select.select((a,), iter([]), [], 0) == ([a], [], [])  # (the slow path)
        with pytest.raises(ValueError):
            select.select([-1], [], [], 0)
        p = select.poll()
        p.register(a, select.POLLIN)
        assert p.poll(0) == [(a, select.POLLIN)]
        os.read(a, 1)
        assert p.poll(0) == []
        p.register(b, select.POLLOUT)
        assert p.poll(0) == [(b, select.POLLOUT)]
        p.unregister(b)
        assert p.poll(0) == []
        p.modify(a, select.POLLOUT)
        assert p.poll(0) == []
        fd = os.open(DEV, os.O_RDWR)
        try:
            p.register(fd, select.POLLIN)
            assert p.poll(0) == real_poll_of_mock(fd)
        finally:
            p.unregister(fd)
            os.close(fd)
        assert p.poll(0) == []
    finally:
        os.close(a)
        os.close(b)


def real_poll_of_mock(fd: int) -> list[tuple[int, int]]:
    """What the slow path answers for the mock fd alone (a second poll object)."""
    q = select.poll()
    q.register(fd, select.POLLIN)
    return q.poll(0)


def test_socket_of_the_default_family_is_still_the_kernels(mock_kernel: Kernel) -> None:
    s = socket.socket()
    try:
        assert isinstance(s, socket.socket) and s.family == socket.AF_INET
        assert type(s).__name__ == "InetSocket"  # (bound to a NIC address it becomes mock)
    finally:
        s.close()
