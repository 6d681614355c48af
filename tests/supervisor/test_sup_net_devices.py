"""Supervised programs see the kernel's network devices, whatever interface they use:
``NETLINK_ROUTE`` and generic netlink sockets are the mock's, and the interface ioctls
(``SIOCGIFINDEX`` & co.) on any real socket answer for the mock's devices -- never the
host's (``tests/real_linux/golden/dev_ioctl.jsonl``, probe ``dev_ioctl.py``)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mockkernel.kernel import Kernel

REAL = Path(__file__).parent.parent / "real_linux"


def test_the_dev_ioctl_probe_matches_real_linux(kernel: Kernel) -> None:
    r = kernel.run(
        [sys.executable, str(REAL / "probes" / "dev_ioctl.py")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    want = [
        json.loads(line) for line in (REAL / "golden" / "dev_ioctl.jsonl").read_text().splitlines()
    ]
    assert got == want


PROGRAM = r"""
import fcntl, socket, struct
names = dict(socket.if_nameindex())
print(all(socket.if_nametoindex(n) == i for i, n in names.items()))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ifreq(name, tail=b""):
    return struct.pack("16s", name) + tail.ljust(24, b"\0")
r = fcntl.ioctl(s, 0x8915, ifreq(b"eth0"))  # SIOCGIFADDR
print(socket.inet_ntoa(r[20:24]))
r = fcntl.ioctl(s, 0x8912, struct.pack("=i4xQ", 0, 0))  # SIOCGIFCONF: the size
print(struct.unpack_from("=i", r)[0] // 40)
for cmd in (0x8914, 0x8922):  # SIOCSIFFLAGS, SIOCSIFMTU on a mock device
    try:
        fcntl.ioctl(s, cmd, ifreq(b"eth0"))
    except OSError as e:
        print(e.errno)
"""


def test_interface_ioctls_answer_for_the_mock_devices(kernel: Kernel) -> None:
    with kernel.tracer.capture() as events:
        r = kernel.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # the default topology: lo and eth0 (192.0.2.1), both with an address
    change = str(errno.EOPNOTSUPP if os.geteuid() == 0 else errno.EPERM)
    assert r.stdout.splitlines() == ["True", "192.0.2.1", "2", change, change]
    if os.geteuid() == 0:
        assert [e["cmd"] for e in events if e["event"] == "net.ioctl_not_modelled"] == [
            "0x8914",
            "0x8922",
        ]


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's ip is not installed")
def test_ip_link_sees_the_mock_and_cannot_change_the_host(kernel: Kernel) -> None:
    """``ip link set DEV down`` probes ``RTM_NEWLINK`` with an empty request: ``ENODEV``
    (as Linux) keeps it on netlink, which says the change is not modelled; before, an
    ``EOPNOTSUPP`` there sent it to the legacy ioctl -- on the host's device."""
    host = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    r = kernel.run(["ip", "-br", "link"], capture_output=True, text=True, timeout=60)
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["lo", "eth0"]
    r = kernel.run(
        ["ip", "link", "set", "eth0", "down"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "not modelled" in r.stderr or "Operation not permitted" in r.stderr
    r = kernel.run(["ip", "link", "set", "nosuchdev0", "up"], capture_output=True, text=True)
    assert r.returncode != 0 and 'Cannot find device "nosuchdev0"' in r.stderr
    assert subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout == host


BAD_INPUT = r"""
import ctypes, errno, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for cmd in (0x8933, 0x8913, 0x8912):  # SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFCONF
    r = libc.ioctl(s.fileno(), cmd, 0x10)
    print(r, errno.errorcode[ctypes.get_errno()] if r < 0 else 0)
buf = ctypes.create_string_buffer(40)  # room for one ifreq of two
conf = ctypes.create_string_buffer(struct.pack("=i4xQ", 40, ctypes.addressof(buf)))
print(libc.ioctl(s.fileno(), 0x8912, conf), struct.unpack_from("=i", conf.raw)[0],
      buf.raw[:16].rstrip(b"\0").decode())
"""


def test_interface_ioctls_bad_input(kernel: Kernel) -> None:
    """A pointer the kernel cannot read is EFAULT; SIOCGIFCONF fills only whole ifreqs."""
    r = kernel.run([sys.executable, "-c", BAD_INPUT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["-1 EFAULT", "-1 EFAULT", "-1 EFAULT", "0 40 lo"]
    assert kernel.leaks() == []
