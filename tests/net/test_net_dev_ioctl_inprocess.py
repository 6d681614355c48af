"""In-process, the interface ioctls (``SIOCGIFINDEX`` & co.) on a *real* socket are the
mock kernel's (``net/dev_ioctl.py``), as under the supervisor: one program never sees two
kernels.  The mock's own sockets (netlink) answer them too, as every Linux socket does.

The NIC here is named ``mkioctl0`` -- a name the host does not have -- so a call that
reached the host by mistake would say ``ENODEV`` instead of acting on a host device.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockkernel import Kernel
from mockkernel.net import net_state
from mockkernel.topology import default_topology

REAL = Path(__file__).resolve().parent.parent / "real_linux"
NIC_BDF = "0000:03:00.0"
IFNAME = "mkioctl0"
TOPOLOGY = dataclasses.replace(
    default_topology(),
    devices=tuple(
        dataclasses.replace(d, options={**d.options, "ifname": IFNAME}) if d.bdf == NIC_BDF else d
        for d in default_topology().devices
    ),
)
SIOCGIFNAME, SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8910, 0x8913, 0x8914
SIOCGIFADDR, SIOCGIFMTU, SIOCSIFMTU = 0x8915, 0x8921, 0x8922
SIOCGIFINDEX, SIOCGIFCONF = 0x8933, 0x8912


def ifreq(name: bytes, tail: bytes = b"") -> bytes:
    return struct.pack("16s", name) + tail.ljust(24, b"\0")


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        yield s


pytestmark = pytest.mark.mockkernel(topology=TOPOLOGY)


def mock_index(kernel: Kernel, name: str) -> int:
    (index,) = [i for i, d in net_state(kernel).netdev.devices.items() if d.name == name]
    return index


def test_getters_on_a_real_socket_answer_for_the_mock(
    mock_kernel: Kernel, udp: socket.socket
) -> None:
    index = mock_index(mock_kernel, IFNAME)
    for fd in (udp.fileno(), udp):  # an int (the hot path) and an object with fileno()
        r = fcntl.ioctl(fd, SIOCGIFINDEX, ifreq(IFNAME.encode()))
        assert struct.unpack_from("=i", r, 16)[0] == index
        r = fcntl.ioctl(fd, SIOCGIFNAME, ifreq(b"", struct.pack("=i", index)))
        assert r[:16].rstrip(b"\0").decode() == IFNAME
        r = fcntl.ioctl(fd, SIOCGIFADDR, ifreq(b"lo"))
        assert socket.inet_ntoa(r[20:24]) == "127.0.0.1"
    buf = bytearray(ifreq(IFNAME.encode()))  # a mutable buffer: filled in place
    assert fcntl.ioctl(udp.fileno(), SIOCGIFMTU, buf) == 0
    assert struct.unpack_from("=i", buf, 16)[0] == net_state(mock_kernel).netdev.devices[index].mtu
    r = fcntl.ioctl(udp.fileno(), SIOCGIFCONF, struct.pack("=i4xQ", 0, 0))
    with_addr = [d for d in net_state(mock_kernel).netdev.devices.values() if d.name == "lo"]
    assert struct.unpack_from("=i", r)[0] >= 40 * len(with_addr)


def test_a_host_only_device_is_enodev(mock_kernel: Kernel, udp: socket.socket) -> None:
    host = socket.if_nameindex  # (redirected: the mock's)
    assert "eth0" not in dict(host()).values()
    with pytest.raises(OSError) as exc:
        fcntl.ioctl(udp.fileno(), SIOCGIFINDEX, ifreq(b"eth0"))  # the host has an eth0
    assert exc.value.errno == errno.ENODEV
    unused = max(dict(host())) + 1
    with pytest.raises(OSError) as exc:
        fcntl.ioctl(udp.fileno(), SIOCGIFNAME, ifreq(b"", struct.pack("=i", unused)))
    assert exc.value.errno == errno.ENODEV


def test_changes_are_refused_and_never_reach_the_host(
    mock_kernel: Kernel, udp: socket.socket
) -> None:
    want = errno.EOPNOTSUPP if os.geteuid() == 0 else errno.EPERM
    with mock_kernel.tracer.capture() as events:
        for cmd in (SIOCSIFFLAGS, SIOCSIFMTU):
            with pytest.raises(OSError) as exc:
                fcntl.ioctl(udp.fileno(), cmd, ifreq(IFNAME.encode(), struct.pack("=i", 1400)))
            assert exc.value.errno == want
    refused = [e for e in events if e["event"] == "net.ioctl_not_modelled"]
    assert len(refused) == (2 if want == errno.EOPNOTSUPP else 0)


def test_bad_arguments(mock_kernel: Kernel, udp: socket.socket) -> None:
    with pytest.raises(OSError) as exc:
        fcntl.ioctl(udp.fileno(), SIOCGIFINDEX, 0)  # a NULL ifreq
    assert exc.value.errno == errno.EFAULT
    r, w = os.pipe()
    try:  # not a socket: the real call's answer
        with pytest.raises(OSError) as exc:
            fcntl.ioctl(r, SIOCGIFINDEX, ifreq(b"lo"))
        assert exc.value.errno == errno.ENOTTY
    finally:
        os.close(r)
        os.close(w)
    closed = os.open("/dev/null", os.O_RDONLY)
    os.close(closed)
    with pytest.raises(OSError) as exc:
        fcntl.ioctl(closed, SIOCGIFINDEX, ifreq(b"lo"))
    assert exc.value.errno == errno.EBADF


def test_a_mock_netlink_socket_answers_them_too(mock_kernel: Kernel) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        assert s.fileno() in mock_kernel.init_process.files
        r = fcntl.ioctl(s.fileno(), SIOCGIFINDEX, ifreq(IFNAME.encode()))
        assert struct.unpack_from("=i", r, 16)[0] == mock_index(mock_kernel, IFNAME)
        with pytest.raises(OSError) as exc:
            fcntl.ioctl(s, SIOCGIFINDEX, ifreq(b"eth0"))
        assert exc.value.errno == errno.ENODEV


def test_the_dev_ioctl_probe_in_process_matches_real_linux(tmp_path: Path) -> None:
    """``mockkernel run`` (the in-process front-end) of the probe the supervisor passes."""
    env = dict(os.environ)
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", str(REAL / "probes" / "dev_ioctl.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    golden = (REAL / "golden" / "dev_ioctl.jsonl").read_text().splitlines()
    assert got == [json.loads(line) for line in golden]
