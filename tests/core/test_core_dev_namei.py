"""mkdir, unlink, rmdir and rename in the kernel's trees never reach the host.

Under ``/dev`` (the mock devtmpfs) root changes the mock tree only, as devtmpfs lets root;
anyone else gets ``EACCES`` (``/dev`` is ``drwxr-xr-x root``).  The mock's sysfs and
``/proc/bus/pci`` have no such ops (``EPERM`` for root); the host trees the mock keeps
read-only answer ``EROFS``; a host node shown through ``/dev`` (``/dev/null``) cannot be
removed or renamed (``EROFS``, docs/fidelity.md); a rename between the mock tree and
another file system is ``EXDEV``.  After each case the host's ``/dev`` is as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mockkernel import Kernel
from mockkernel.realfd import REAL


def err(fn: Callable[..., Any], *args: Any) -> str | None:
    try:
        fn(*args)
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return None


@pytest.fixture
def host_dev(mock_kernel: Kernel) -> Iterator[Kernel]:
    before = sorted(REAL.listdir("/dev"))
    yield mock_kernel
    assert sorted(REAL.listdir("/dev")) == before, "the host's /dev was changed"


@contextlib.contextmanager
def as_user(uid: int = 65534) -> Iterator[None]:
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


ROOT_CASES = [
    ("mkdir", ("/dev/null",), "EEXIST"),
    ("mkdir", ("/dev/vfio",), "EEXIST"),
    ("mkdir", ("/sys/bus/pci/new",), "EPERM"),
    ("mkdir", ("/proc/bus/pci/new",), "EPERM"),
    ("mkdir", ("/sys/kernel/new",), "EROFS"),
    ("mkdir", ("/proc/sys/new",), "EROFS"),
    ("unlink", ("/dev/null",), "EROFS"),
    ("unlink", ("/dev/nothing",), "ENOENT"),
    ("unlink", ("/dev/vfio",), "EISDIR"),
    ("rmdir", ("/dev/udmabuf",), "ENOTDIR"),
    ("rmdir", ("/dev/vfio",), "ENOTEMPTY"),
    ("unlink", ("/sys/bus/pci/rescan",), "EPERM"),
    ("unlink", ("/sys/kernel/nothing",), "ENOENT"),
    ("unlink", ("/proc/bus/pci/devices",), "EPERM"),
    ("rename", ("/dev/udmabuf", "/tmp/udmabuf"), "EXDEV"),
    ("rename", ("/dev/null", "/dev/null2"), "EROFS"),
    ("rename", ("/dev/nothing", "/dev/x"), "ENOENT"),
    ("rename", ("/dev/vfio", "/dev/vfio/inside"), "EINVAL"),
    ("rename", ("/sys/bus/pci/rescan", "/sys/bus/pci/r"), "EPERM"),
    ("rename", ("/sys/bus/pci/rescan", "/dev/r"), "EXDEV"),
]


@pytest.mark.skipif(os.geteuid() != 0, reason="root's rules (the user's are tested below)")
@pytest.mark.parametrize(("fn", "args", "want"), ROOT_CASES)
def test_root_errnos(host_dev: Kernel, fn: str, args: tuple[str, ...], want: str) -> None:
    assert err(getattr(os, fn), *args) == want  # looked up now: the redirected function


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to seteuid")
def test_root_changes_the_mock_devtmpfs_only(host_dev: Kernel) -> None:
    with host_dev.tracer.capture() as ev:
        os.mkdir("/dev/mine")
        os.rename("/dev/udmabuf", "/dev/mine/udmabuf")
    assert ("vfs.rename", "/dev/udmabuf") in [(e["event"], e.get("old")) for e in ev]
    assert "mine" in os.listdir("/dev") and not os.path.exists("/dev/udmabuf")
    os.close(os.open("/dev/mine/udmabuf", os.O_RDWR))  # the node still opens the driver
    assert err(os.rmdir, "/dev/mine") == "ENOTEMPTY"
    os.replace("/dev/mine/udmabuf", "/dev/udmabuf")
    os.rmdir("/dev/mine")
    os.chdir("/dev")
    try:
        assert err(os.unlink, "null") == "EROFS", "a relative path from /dev is judged too"
    finally:
        os.chdir("/")
    os.unlink("/dev/vfio/devices/vfio0")
    assert not os.path.exists("/dev/vfio/devices/vfio0")
    # the driver's removal does not look for the node root removed (dev_mynode)
    fd = os.open("/sys/bus/pci/drivers/vfio-pci/unbind", os.O_WRONLY)
    os.write(fd, b"0000:01:00.0")
    os.close(fd)
    assert host_dev.leaks() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to seteuid")
def test_other_users_get_eacces(host_dev: Kernel) -> None:
    with as_user():
        assert err(os.mkdir, "/dev/mine") == "EACCES"
        assert err(os.unlink, "/dev/udmabuf") == "EACCES"
        assert err(os.rename, "/dev/udmabuf", "/dev/u") == "EACCES"
        assert err(os.mkdir, "/sys/bus/pci/new") == "EACCES"
        assert err(os.mkdir, "/dev/vfio") == "EEXIST", "the lookup comes first"
    assert os.path.exists("/dev/udmabuf")


def test_host_paths_stay_the_hosts(host_dev: Kernel, tmp_path: Any) -> None:
    d = tmp_path / "d"
    os.mkdir(d)
    os.rename(d, tmp_path / "e")
    os.rmdir(tmp_path / "e")
    (tmp_path / "f").write_text("x")
    os.unlink(tmp_path / "f")
    assert os.listdir(tmp_path) == []
