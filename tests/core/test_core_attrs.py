"""chmod, chown, utime, truncate and the xattr calls on mock paths and fds, in-process.

The rules live in ``mockkernel/syscalls/attr.py`` and ``xattr.py``; the in-process
redirection (``userspace/attrs.py``) and the supervisor reach the same code (the
supervisor's run of ``tests/supervisor/c/attrprobe.c`` is compared with real Linux 7.2).
Here: a change lands on the node's one inode (``stat`` by path and ``fstat`` by fd agree),
the caller's credentials decide, bad input gets Linux's errno, and a host path is left
to the real call.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.cred import Ids
from mockkernel.syscalls import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from mockkernel.syscalls.attr import UTIME_NOW, UTIME_OMIT

ATTR = "/sys/module/udmabuf/parameters/list_limit"
DEV = "/dev/udmabuf"


def err(fn: Callable[..., Any], *args: Any, **kw: Any) -> str | None:
    try:
        fn(*args, **kw)
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return None


@pytest.fixture
def user(mock_kernel: Kernel) -> Iterator[Kernel]:
    """The in-process caller as uid/gid 1000 without capabilities."""
    ids = Ids(1000, 1000, 1000, 1000, 1000, 1000, frozenset({1000}), 0)
    proc = mock_kernel.init_process
    proc.ids_hook = lambda: ids
    try:
        yield mock_kernel
    finally:
        del proc.ids_hook


@pytest.mark.usefixtures("mock_kernel")
def test_a_change_by_path_is_what_fstat_of_an_fd_shows() -> None:
    fd = os.open(DEV, os.O_RDWR)
    try:
        os.chmod(DEV, 0o640)
        os.chown(DEV, 12, 34)
        os.utime(DEV, ns=(1_000_000_005, 2_000_000_007))
        st_ = os.fstat(fd)
        assert (stat.S_IMODE(st_.st_mode), st_.st_uid, st_.st_gid) == (0o640, 12, 34)
        assert stat.S_ISCHR(st_.st_mode)
        assert (st_.st_atime_ns, st_.st_mtime_ns) == (1_000_000_005, 2_000_000_007)
        os.fchmod(fd, 0o600)  # and the other way round
        assert stat.S_IMODE(os.stat(DEV).st_mode) == 0o600
        os.setxattr(fd, "trusted.a", b"1")
        assert os.getxattr(DEV, "trusted.a") == b"1"
        assert os.listxattr(fd) == ["trusted.a"]
    finally:
        os.close(fd)


@pytest.mark.usefixtures("mock_kernel")
@settings(max_examples=60, deadline=None)
@given(mode=st.integers(0, 0o177777))
def test_chmod_keeps_the_type_and_takes_the_permission_bits(mode: int) -> None:
    os.chmod(ATTR, mode)
    got = os.stat(ATTR).st_mode
    assert stat.S_ISREG(got) and stat.S_IMODE(got) == mode & 0o7777


@pytest.mark.usefixtures("mock_kernel")
@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["trusted.", "security.", "user.", "system.", "other."]).flatmap(
        lambda p: st.text(st.characters(codec="ascii", exclude_characters="\0"), max_size=8).map(
            lambda s: p + s
        )
    ),
    value=st.binary(max_size=64),
)
def test_xattr_roundtrip_or_linuxs_errno(name: str, value: bytes) -> None:
    """sysfs stores ``trusted.``/``security.``; ``user.``, ``system.`` and unknown
    prefixes have no sysfs handler (``EOPNOTSUPP``); a stored value reads back and
    goes on ``removexattr``."""
    stores = name.startswith(("trusted.", "security."))
    e = err(os.setxattr, ATTR, name, value)
    assert e == (None if stores else "ENOTSUP")  # (EOPNOTSUPP's other name)
    if stores:
        assert os.getxattr(ATTR, name) == value
        assert err(os.setxattr, ATTR, name, value, os.XATTR_CREATE) == "EEXIST"
        os.removexattr(ATTR, name)
    assert err(os.getxattr, ATTR, name) in ("ENODATA", "ENOTSUP")
    assert os.listxattr(ATTR) == []


@pytest.mark.usefixtures("mock_kernel")
def test_bad_input() -> None:
    p = os.getpid()
    proc_maps = f"/proc/{p}/maps"
    assert err(os.chmod, "/dev/udmabuf-none", 0o600) == "ENOENT"
    assert err(os.chmod, proc_maps, 0o600) == "EPERM"
    assert err(os.chown, proc_maps, 1, 1) is None  # accepted, the task's ids show again
    assert err(os.truncate, DEV, 0) == "EINVAL"
    assert err(os.truncate, "/sys/class/infiniband_verbs", 0) == "EISDIR"
    assert err(os.truncate, ATTR, -1) == "EINVAL"
    assert err(os.setxattr, DEV, "user.x", b"1") == "EPERM"  # user. on a device node
    assert err(os.setxattr, DEV, "", b"1") == "ERANGE"
    assert err(os.setxattr, DEV, "trusted.x", b"1", 4) == "EINVAL"
    assert err(os.setxattr, DEV, "trusted.x", bytes(65537)) == "E2BIG"
    assert err(os.removexattr, DEV, "trusted.none") == "ENODATA"
    assert err(os.setxattr, proc_maps, "trusted.x", b"1") == "ENOTSUP"


def test_the_layer_directly(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    link = "/sys/class/infiniband_verbs/uverbs0"
    assert err(proc.sys_fchmodat, AT_FDCWD, DEV, 0o600, 0x4) == "EINVAL"
    assert err(proc.sys_fchmodat, AT_FDCWD, link, 0o600, AT_SYMLINK_NOFOLLOW) == "ENOTSUP"
    proc.sys_fchownat(AT_FDCWD, link, 5, 6, AT_SYMLINK_NOFOLLOW)
    assert os.lstat(link).st_uid == 5 and os.stat(link).st_uid == 0
    assert err(proc.sys_utimensat, AT_FDCWD, DEV, ((0, 10**9), (0, 0))) == "EINVAL"
    proc.sys_utimensat(AT_FDCWD, DEV, ((1, UTIME_OMIT), (7, 0)))
    assert os.stat(DEV).st_mtime_ns == 7 * 10**9
    # both UTIME_OMIT: nothing, not even the lookup (or the flags)
    proc.sys_utimensat(AT_FDCWD, "/dev/none", ((0, UTIME_OMIT), (0, UTIME_OMIT)), 0x4)
    proc.sys_utimensat(AT_FDCWD, DEV, ((0, UTIME_NOW), (0, UTIME_OMIT)))
    fd = os.open(ATTR, os.O_PATH)
    try:
        proc.sys_fchmodat(fd, "", 0o604, AT_EMPTY_PATH)  # an O_PATH fd answers
        assert stat.S_IMODE(os.stat(ATTR).st_mode) == 0o604
        assert err(proc.sys_utimensat, fd, None, None) == "EBADF"  # futimens: fdget
        assert err(proc.sys_setxattrat, fd, None, 0, "trusted.x", b"") == "EBADF"
    finally:
        os.close(fd)


def test_an_unprivileged_caller(user: Kernel) -> None:
    assert err(os.chmod, DEV, 0o666) == "EPERM"
    assert err(os.chown, DEV, 1000, -1) == "EPERM"
    assert err(os.chown, DEV, -1, -1) is None
    assert err(os.utime, DEV, ns=(1, 1)) == "EPERM"
    assert err(os.utime, DEV) == "EACCES"  # now: the owner or write permission
    assert err(os.truncate, ATTR, 0) == "EACCES"
    assert err(os.setxattr, DEV, "trusted.x", b"1") == "EPERM"
    assert err(os.setxattr, DEV, "security.x", b"1") == "EPERM"
    assert err(os.setxattr, ATTR, "user.x", b"1") == "EACCES"
    assert err(os.mkdir, "/dev/mine") == "EACCES"
    assert err(os.open, DEV, os.O_RDWR) == "EACCES"  # /dev/udmabuf is 0660 root:root
    assert err(os.getxattr, ATTR, "trusted.x") == "ENODATA"


def test_the_owner_may(user: Kernel) -> None:
    """Given the node, the user may chmod it, set its times and give it to its group."""
    user.init_process.ids_hook = None  # root gives it away first
    os.chown(ATTR, 1000, 0)
    ids = Ids(1000, 1000, 1000, 1000, 1000, 1000, frozenset({1000, 7}), 0)
    user.init_process.ids_hook = lambda: ids
    os.chmod(ATTR, 0o4600 | 0o2000)
    assert stat.S_IMODE(os.stat(ATTR).st_mode) == 0o4600  # S_ISGID: not in group 0
    os.utime(ATTR, ns=(3, 4))
    os.chown(ATTR, -1, 7)
    st_ = os.stat(ATTR)
    assert (st_.st_gid, stat.S_IMODE(st_.st_mode)) == (7, 0o600)  # chown drops S_ISUID
    assert err(os.chown, ATTR, -1, 8) == "EPERM"  # not its group


@pytest.mark.usefixtures("mock_kernel")
def test_host_paths_are_the_real_calls(tmp_path: Any) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    os.chmod(f, 0o600)
    os.truncate(f, 1)
    os.utime(f, ns=(5, 6))
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600 and os.stat(f).st_mtime_ns == 6
    assert f.read_bytes() == b"a"
    assert err(os.chmod, "/sys/kernel/mm", 0o700) == "EROFS"  # the host's sysfs: never
