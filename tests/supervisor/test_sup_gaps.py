"""Calls a supervised program makes on mock fds and paths beyond the basic set: extended
attributes, ``unshare(CLONE_FILES)``/``CLOSE_RANGE_UNSHARE``, ``chdir`` into a mock
directory, ``vfork``+``exec``; each probe prints on the mock what it printed on real
Linux 7.2 (``tests/real_linux/golden/c_<probe>.txt``; regenerate with
``tests/real_linux/regen_c.sh xattrprobe unshareprobe chdirprobe vforkprobe mmsgprobe``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mockkernel.kernel import Kernel
from mockkernel.supervisor.handlers import TABLE

GOLDEN = Path(__file__).parent.parent / "real_linux" / "golden"


@pytest.mark.parametrize(
    "probe", ["xattrprobe", "unshareprobe", "chdirprobe", "vforkprobe", "mmsgprobe"]
)
def test_probe_matches_real_linux(kernel: Kernel, build: Callable[[str], str], probe: str) -> None:
    r = kernel.run([build(probe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    want = (GOLDEN / f"c_{probe}.txt").read_text().splitlines()
    assert r.stdout.splitlines() == want
    assert kernel.leaks() == []


def test_ls_long_lists_a_mock_directory(kernel: Kernel) -> None:
    """``ls -l`` asks for ACLs (``listxattr``/``getxattr``) of each entry: a mock entry
    answers as sysfs does, not ``ENOENT`` from the host."""
    r = kernel.run(["ls", "-l", "/sys/class/infiniband_verbs/abi_version", "/dev/udmabuf"],
                   capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert [line.split()[-1] for line in r.stdout.splitlines()] == [
        "/dev/udmabuf",
        "/sys/class/infiniband_verbs/abi_version",
    ]


def test_the_xattr_calls_are_in_the_table() -> None:
    names = {s.name for s in TABLE.values()}
    assert {"getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr"} <= names
    assert "unshare" in names


def test_sendmmsg_recvmmsg_on_a_mock_netlink_socket(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    """Each message is the mock socket's own ``sendmsg``/``recvmsg`` (no placeholder's
    ``ENOTSOCK``): a dump request answered, ``EAGAIN`` when nothing is queued."""
    r = kernel.run([build("nlmmsg")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "recvmmsg empty: -1 EAGAIN",
        "sendmmsg: 1, msg_len 16",
        "recvmmsg: some",
        "message 0: len ok 1, seq 7, type dev",
        "sendmmsg empty vector: 0",
    ]
    assert kernel.leaks() == []


#: ``..`` from a mock directory fd out to host files (``dirs`` probe's ``openat_in_dir``)
DOTDOT = """
import os, stat, sys
dfd = os.open("/dev/vfio", os.O_RDONLY | os.O_DIRECTORY)
lowest = os.dup(0); os.close(lowest)
null = os.open("../null", os.O_RDONLY, dir_fd=dfd)
chr_ = stat.S_ISCHR(os.fstat(null).st_mode)
print("null", null == lowest, chr_, os.readlink(f"/proc/self/fd/{null}"))
os.close(null)
os.umask(0o077)
new = os.open("../.." + sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=dfd)
os.write(new, b"hi")
print("new", oct(stat.S_IMODE(os.fstat(new).st_mode)), os.get_inheritable(new))
os.close(new)
try:
    os.open("../no-such-file-here", os.O_RDONLY, dir_fd=dfd)
except OSError as e:
    print("missing", e.errno == 2)
"""


def test_dotdot_from_a_mock_directory_opens_the_host_file(kernel: Kernel, tmp_path: Path) -> None:
    """``openat(dirfd, "../null")`` from a mock directory fd reaches the host's file (the
    supervisor opens it for the caller, at Linux's lowest free number), ``O_CREAT`` takes
    the caller's umask, and what neither has is ``ENOENT``."""
    target = tmp_path / "made"
    r = kernel.run(["python3", "-c", DOTDOT, str(target)], capture_output=True, text=True,
                   timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "null True True /dev/null",
        "new 0o600 False",
        "missing True",
    ]
    assert target.read_bytes() == b"hi"
    assert kernel.leaks() == []
