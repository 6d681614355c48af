"""Mock directories in supervised programs: the ones the host lacks open as mock fds.

libibverbs finds RDMA devices with ``opendir("/sys/class/infiniband_verbs")``,
``readdir`` and ``openat(dirfd(dir), "uverbs0/ibdev")``: those directories exist only in
the mock, so they open as mock fds whose ``getdents64`` lists the mock tree.  A mock
directory over a host one (``/dev``, ``/sys/class``) stays the host's, so a listing
never hides the host's entries.
"""

from __future__ import annotations

import errno

from mockkernel import Kernel

PROG = """
import os
fd = os.open("/sys/class/infiniband_verbs", os.O_RDONLY | os.O_DIRECTORY)
print("list", sorted(os.listdir(fd)))
with open(os.open("uverbs0/ibdev", os.O_RDONLY, dir_fd=fd)) as f:
    print("ibdev", f.read().strip())
print("stat", os.stat("uverbs0/abi_version", dir_fd=fd).st_size > 0)
try:
    os.open("abi_version/x", os.O_RDONLY, dir_fd=fd)
except OSError as e:
    print("notdir", e.errno)
try:
    os.open("/sys/class/infiniband_verbs/abi_version", os.O_RDONLY | os.O_DIRECTORY)
except OSError as e:
    print("o_directory", e.errno)
os.close(fd)
print("dev", "null" in os.listdir("/dev"))
"""


def test_a_mock_directory_the_host_lacks_lists_and_resolves_relative_paths(
    mock_kernel: Kernel,
) -> None:
    r = mock_kernel.run(["python3", "-c", PROG], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "list ['abi_version', 'uverbs0']" in lines
    assert "ibdev mlx5_0" in lines
    assert "stat True" in lines
    assert f"notdir {errno.ENOTDIR}" in lines
    assert f"o_directory {errno.ENOTDIR}" in lines
    assert "dev True" in lines  # /dev stays the host's listing


def test_ls_of_a_mock_directory(mock_kernel: Kernel) -> None:
    r = mock_kernel.run(["ls", "-1", "/sys/class/infiniband_verbs"], capture_output=True,
                        text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["abi_version", "uverbs0"]
