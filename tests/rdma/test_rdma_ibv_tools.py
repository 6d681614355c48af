"""rdma-core's own tools, unchanged, on the mock RDMA devices (issue 14).

``ibv_devices``, ``ibv_devinfo`` and ``ibv_devinfo -v`` run supervised
(``mock_kernel.run``) on a machine with ``mlx5_0`` (the default ConnectX-7) and
``rxe0`` (soft-RoCE): libibverbs finds them through sysfs, matches the mlx5 provider by
the PCI ids and rxe by its driver id, opens ``/dev/infiniband/uverbsN``, creates a
context with each provider's driver data, maps mlx5's UAR pages, and queries the
device, its port and GIDs.  What the tools print is checked against what the mock's
sysfs says (itself checked against the topology by ``test_rdma_nldev``/``topology``).

Two builds: rdma-core 59 (``.ci/build-rdma-core``, cached) and Debian 12's rdma-core 44
(``apt-get install ibverbs-utils ibverbs-providers``).  Each skips in one line when absent.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import pytest

from mockkernel import Kernel
from mockkernel.topology import RdmaSpec, RxeSpec, default_topology

MLX5_RXE = dataclasses.replace(default_topology(), rdma=RdmaSpec(rxe=(RxeSpec("enp0s2"),)))
pytestmark = pytest.mark.mockkernel(topology=MLX5_RXE)

DEVICES = ("mlx5_0", "rxe0")


def _build59() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    base = Path(os.environ.get("MOCKKERNEL_RDMA_CORE_DIR", cache / "mockkernel" / "rdma-core-59"))
    return base / "src" / "rdma-core" / "build"


B59 = _build59()


@dataclasses.dataclass(frozen=True)
class Tools:
    """Where one rdma-core's tools live, and the environment they need."""

    version: str
    bin: Path
    env: dict[str, str]

    def run(self, kernel: Kernel, *argv: str) -> Any:
        env = {**os.environ, **self.env}
        return kernel.run([str(self.bin / argv[0]), *argv[1:]], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip


def _tools(version: str) -> Tools:
    if version == "59":
        if not (B59.parent.parent.parent / ".built").exists():
            pytest.skip("rdma-core 59 is not built (.ci/build-rdma-core builds it)")
        # the in-place build's libibverbs finds its providers through build/etc/libibverbs.d
        return Tools("59", B59 / "bin", {"LD_LIBRARY_PATH": str(B59 / "lib")})
    if not Path("/usr/bin/ibv_devinfo").exists():
        pytest.skip("Debian's rdma-core 44 tools are not installed (apt-get install ibverbs-utils)")
    return Tools("44", Path("/usr/bin"), {})


@pytest.fixture(params=["59", "44"])
def tools(request: pytest.FixtureRequest, mock_kernel: Kernel) -> Tools:
    return _tools(request.param)


def sysfs(dev: str, attr: str) -> str | None:
    """``/sys/class/infiniband/<dev>/<attr>`` as the mock serves it (``None``: absent)."""
    try:
        with open(f"/sys/class/infiniband/{dev}/{attr}") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def _blocks(out: str) -> dict[str, str]:
    """``ibv_devinfo``'s output, one text block per ``hca_id``."""
    parts = re.split(r"^hca_id:\s*(\S+)\n", out, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _field(block: str, name: str) -> str:
    m = re.search(rf"^\s*{name}:\s*(.+)$", block, flags=re.M)
    assert m, f"{name} not in {block!r}"
    return m.group(1).strip()


def test_ibv_devices_lists_both_with_their_node_guids(mock_kernel: Kernel, tools: Tools) -> None:
    r = tools.run(mock_kernel, "ibv_devices")
    assert r.returncode == 0, r.stderr
    listed = dict(re.findall(r"^\s+(\S+)\s+([0-9a-f]{16})$", r.stdout, flags=re.M))
    assert set(listed) == set(DEVICES)
    for dev in DEVICES:
        guid = sysfs(dev, "node_guid")
        assert guid is not None
        assert listed[dev] == guid.replace(":", "")


def test_ibv_devinfo_reports_what_sysfs_says(mock_kernel: Kernel, tools: Tools) -> None:
    r = tools.run(mock_kernel, "ibv_devinfo")
    assert r.returncode == 0, r.stderr
    blocks = _blocks(r.stdout)
    assert set(blocks) == set(DEVICES)
    for dev, block in blocks.items():
        assert _field(block, "node_guid") == sysfs(dev, "node_guid")
        assert _field(block, "sys_image_guid") == sysfs(dev, "sys_image_guid")
        # rxe has no firmware (no fw_ver file); the library prints the zero version
        assert _field(block, "fw_ver") == (sysfs(dev, "fw_ver") or "0.0.0")
        ports = os.listdir(f"/sys/class/infiniband/{dev}/ports")
        assert _field(block, "phys_port_cnt") == str(len(ports))
        state = sysfs(dev, "ports/1/state")
        assert state is not None
        num, name = state.split(": ")
        assert _field(block, "state") == f"PORT_{name} ({num})"
        assert _field(block, "link_layer") == sysfs(dev, "ports/1/link_layer")
    assert _field(blocks["mlx5_0"], "vendor_id") == "0x02c9"  # Mellanox's OUI
    assert _field(blocks["mlx5_0"], "vendor_part_id") == str(0x1021)  # the PCI device id


def test_ibv_devinfo_v_lists_the_gid_table(mock_kernel: Kernel, tools: Tools) -> None:
    r = tools.run(mock_kernel, "ibv_devinfo", "-v")
    assert r.returncode == 0, r.stderr
    assert "Failed" not in r.stderr
    blocks = _blocks(r.stdout)
    assert set(blocks) == set(DEVICES)
    for dev, block in blocks.items():
        gids = dict(re.findall(r"GID\[\s*(\d+)\]:\s*(\S+?),? RoCE v2", block))
        assert gids, block
        for index, text in gids.items():
            raw = sysfs(dev, f"ports/1/gids/{index}")
            assert raw is not None
            assert ipaddress.IPv6Address(text) == ipaddress.IPv6Address(raw)
        assert int(_field(block, "max_qp")) > 0


def test_unmodelled_provider_methods_answer_eprotonosupport_in_the_trace(
    mock_kernel: Kernel,
) -> None:
    """mlx5's provider asks for DEVX (``MLX5_IB_OBJECT_DEVX``) and a UAR object; the mock
    does not model them: ``EPROTONOSUPPORT`` as for a device without DEVX, and an
    ``rdma.unsupported`` event naming the driver-namespace object and method."""
    tools = _tools("59")
    with mock_kernel.tracer.capture() as events:
        r = tools.run(mock_kernel, "ibv_devinfo", "-d", "mlx5_0")
    assert r.returncode == 0, r.stderr
    unsupported = [e for e in events if e["event"] == "rdma.unsupported"]
    assert unsupported
    assert all(e["ibdev"] == "mlx5_0" and e["errno"] == "EPROTONOSUPPORT" for e in unsupported)
    assert all(e["driver_ns"] for e in unsupported)
    assert {"0x1000"} <= {e["object"] for e in unsupported}  # MLX5_IB_OBJECT_DEVX


# -- iproute2's rdma: NETLINK_RDMA sockets of a supervised program reach the mock -------------
RDMA = Path("/usr/bin/rdma")


def _rdma(kernel: Kernel, *argv: str) -> str:
    if not RDMA.exists():
        pytest.skip("iproute2's rdma is not installed (/usr/bin/rdma)")
    r = kernel.run([str(RDMA), *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return str(r.stdout)


def test_rdma_dev_agrees_with_sysfs(mock_kernel: Kernel) -> None:
    out = _rdma(mock_kernel, "dev")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\d+: (\S+): (.*)$", out, re.M)}
    assert set(rows) == set(DEVICES)
    for dev, row in rows.items():
        assert f"node_guid {sysfs(dev, 'node_guid')}" in row
        assert f"sys_image_guid {sysfs(dev, 'sys_image_guid')}" in row
        fw = sysfs(dev, "fw_ver")
        assert (f"fw {fw}" in row) if fw else (" fw " not in row)


def test_rdma_link_agrees_with_sysfs(mock_kernel: Kernel) -> None:
    out = _rdma(mock_kernel, "link")
    rows = dict(re.findall(r"^link (\S+)/1 (.*)$", out, re.M))
    assert set(rows) == set(DEVICES)
    for dev, row in rows.items():
        state = sysfs(dev, "ports/1/state")
        assert state is not None
        assert f"state {state.split(': ')[1]} " in row
    assert "netdev enp0s2" in rows["rxe0"]  # the topology's [[rdma.rxe]] netdev


PROBE = """
import socket, sys
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_STREAM, 20)
except OSError as e:
    print("stream", e.errno)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 20)
s.bind((0, 0))
print("port", s.getsockname()[0] > 0)
# RDMA_NLDEV_CMD_GET (1) of the RDMA_NL_NLDEV client (5): a dump
hdr = (5 << 10) | 1
import struct
s.sendto(struct.pack("=IHHII", 16, hdr, 0x301, 1, 0), (0, 0))
names = []
done = False
while not done:
    data = s.recv(65536)
    pos = 0
    while pos < len(data):  # a datagram of a dump holds several messages
        n, t = struct.unpack_from("=IH", data, pos)
        if t == 3:  # NLMSG_DONE
            done = True
            break
        off = pos + 16
        while off < pos + n:
            alen, atype = struct.unpack_from("=HH", data, off)
            if atype == 2:  # RDMA_NLDEV_ATTR_DEV_NAME
                names.append(data[off + 4 : off + alen - 1].decode())
            off += (alen + 3) & ~3
        pos += (n + 3) & ~3
s.setblocking(False)
try:
    s.recv(100)
except OSError as e:
    print("empty", e.errno)
print("names", sorted(names))
print("route is the host's", socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).fileno() > 0)
"""


def test_a_supervised_python_speaks_nldev_and_keeps_the_hosts_other_sockets(
    mock_kernel: Kernel,
) -> None:
    r = mock_kernel.run(["python3", "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"stream {errno.ESOCKTNOSUPPORT}" in lines
    assert "port True" in lines
    assert f"empty {errno.EAGAIN}" in lines
    assert f"names {sorted(DEVICES)}" in lines
    assert "route is the host's True" in lines


# -- pyverbs (rdma-core 59's Python binding) -------------------------------------------------
PYVERBS_PROG = """
import ctypes, fcntl, os, struct
import pyverbs.device as d
from pyverbs.mr import DmaBufMR
from pyverbs.pd import PD
print("devices", sorted(x.name.decode() for x in d.get_device_list()))
ctx = d.Context(name="mlx5_0")
print("fw", ctx.query_device().fw_version)
pd = PD(ctx)
mfd = os.memfd_create("buf", os.MFD_ALLOW_SEALING)
os.ftruncate(mfd, 1 << 16)
fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
dev = os.open("/dev/udmabuf", os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
create = ctypes.create_string_buffer(struct.pack("=IIQQ", mfd, 1, 0, 1 << 16))
dmabuf = libc.ioctl(dev, ctypes.c_ulong(0x40187542), create)  # UDMABUF_CREATE
assert dmabuf >= 0, ctypes.get_errno()
mr = DmaBufMR(pd, 1 << 16, 1 | 2, dmabuf=dmabuf, offset=0)  # LOCAL_WRITE | REMOTE_WRITE
print("mr", mr.lkey, mr.rkey)
mr.close()
pd.close()
ctx.close()
"""


def test_pyverbs_registers_a_udmabuf_dmabuf_mr_on_mlx5(mock_kernel: Kernel) -> None:
    """pyverbs 59, unchanged: the device list, a context on ``mlx5_0``, a PD and a
    ``DmaBufMR`` of a udmabuf dma-buf (``ibv_reg_dmabuf_mr``), as the kernel saw them."""
    import importlib.machinery
    import sys

    pkg = B59 / "python" / "pyverbs"
    if not any(pkg.glob(f"device{importlib.machinery.EXTENSION_SUFFIXES[0]}")):
        pytest.skip(f"no pyverbs built for this interpreter under {pkg}")
    env = {**os.environ, "PYTHONPATH": str(B59 / "python"), "LD_LIBRARY_PATH": str(B59 / "lib")}
    with mock_kernel.tracer.capture() as events:
        r = mock_kernel.run([sys.executable, "-c", PYVERBS_PROG], capture_output=True,
                            text=True, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"devices {sorted(DEVICES)}" in lines
    assert f"fw {sysfs('mlx5_0', 'fw_ver')}" in lines
    regs = [e for e in events if e["event"] == "rdma.reg_mr"]
    assert len(regs) == 1
    reg = regs[0]
    assert (reg["ibdev"], reg["kind"], reg["length"], reg["access"]) == (
        "mlx5_0", "UmemDmabuf", 1 << 16, 3)  # fmt: skip
    assert f"mr {reg['lkey']} {reg['rkey']}" in lines
    assert [e["lkey"] for e in events if e["event"] == "rdma.dereg_mr"] == [reg["lkey"]]
