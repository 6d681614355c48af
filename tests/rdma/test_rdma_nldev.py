"""NETLINK_RDMA's nldev in-process: what libibverbs and ``rdma`` read, checked against the
devices the topology made, and every bad request answered with nldev's errno.

The machine here has both RDMA devices: ``rxe0`` over ``eth9`` (index 0: the rxe module
loads before the PCI drivers probe) and ``mlx5_0``, the default topology's ConnectX-7
(index 1).  The byte-level behaviour against real
Linux is the ``rdma_nldev`` golden (``test_rdma_goldens.py``); these tests check the
values and the mlx5 side, which the real-Linux guest cannot show.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.rdma import ib_device_by_name
from mockkernel.rdma.nldev import huge_encode_dev
from mockkernel.topology import RdmaSpec, RxeSpec, default_topology, load_topology
from mockkernel.uapi.rdma import rdma_netlink as R

TOPOLOGY = dataclasses.replace(default_topology(), rdma=RdmaSpec((RxeSpec("eth9"),)))
pytestmark = pytest.mark.mockkernel(topology=TOPOLOGY)

NETLINK_RDMA = 20
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
HDR = struct.Struct("=IHHII")
STRINGS = {
    R.RDMA_NLDEV_ATTR_DEV_NAME,
    R.RDMA_NLDEV_ATTR_FW_VERSION,
    R.RDMA_NLDEV_ATTR_NDEV_NAME,
    R.RDMA_NLDEV_ATTR_DEV_PROTOCOL,
    R.RDMA_NLDEV_ATTR_CHARDEV_NAME,
}


def T(op: int, client: int = R.RDMA_NL_NLDEV) -> int:
    return R.RDMA_NL_GET_TYPE(client, op)


def nla(atype: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes((-n) % 4)


def u32(atype: int, v: int) -> bytes:
    return nla(atype, struct.pack("=I", v))


def string(atype: int, s: str) -> bytes:
    return nla(atype, s.encode() + b"\0")


def nlmsg(mtype: int, flags: int, *attrs: bytes, seq: int = 7) -> bytes:
    payload = b"".join(attrs)
    return HDR.pack(16 + len(payload), mtype, flags, seq, 0) + payload


def parse(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        assert n >= 4
        out[t & 0x3FFF] = data[pos + 4 : pos + n]
        pos += (n + 3) & ~3
    return out


class Reply:
    def __init__(self, mtype: int, flags: int, seq: int, payload: bytes) -> None:
        self.type, self.flags, self.seq, self.payload = mtype, flags, seq, payload

    @property
    def errno(self) -> int:
        return -int(struct.unpack_from("=i", self.payload)[0])

    def attrs(self) -> dict[int, Any]:
        """Attribute values: the string attributes as text, the others as integers."""
        out: dict[int, Any] = {}
        for t, raw in parse(self.payload).items():
            if t in STRINGS:
                assert raw.endswith(b"\0")
                out[t] = raw[:-1].decode()
            else:
                out[t] = int.from_bytes(raw, "little")
        return out

    def order(self) -> list[int]:
        return list(parse(self.payload))


class RdmaClient:
    """``socket(AF_NETLINK, SOCK_RAW, NETLINK_RDMA)``, as libibverbs' libnl socket."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_RDMA)
        self.sock.bind((0, 0))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> list[Reply]:
        self.sock.send(data)
        out: list[Reply] = []
        while True:
            try:
                dgram = self.sock.recv(65536)
            except BlockingIOError:
                return out
            pos = 0
            while pos + 16 <= len(dgram):
                n, t, f, seq, _pid = HDR.unpack_from(dgram, pos)
                assert 16 <= n <= len(dgram) - pos
                out.append(Reply(t, f, seq, dgram[pos + 16 : pos + n]))
                pos += (n + 3) & ~3

    def ask(self, op: int, flags: int, *attrs: bytes) -> list[Reply]:
        return self.send(nlmsg(T(op), NLM_F_REQUEST | flags, *attrs))


@pytest.fixture
def nl(mock_kernel: Kernel) -> Iterator[RdmaClient]:
    client = RdmaClient()
    yield client
    client.close()


def sysfs(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def guid_text(v: int) -> str:
    return ":".join(f"{(v >> s) & 0xFFFF:04x}" for s in (48, 32, 16, 0))


# -- the device list -----------------------------------------------------------------------
def test_get_dump_lists_every_device_as_the_topology_made_it(
    mock_kernel: Kernel, nl: RdmaClient
) -> None:
    replies = nl.ask(R.RDMA_NLDEV_CMD_GET, NLM_F_DUMP)
    assert [(r.type, r.flags) for r in replies] == [
        (T(R.RDMA_NLDEV_CMD_GET), NLM_F_MULTI),
        (T(R.RDMA_NLDEV_CMD_GET), NLM_F_MULTI),
        (NLMSG_DONE, NLM_F_MULTI),
    ]
    assert replies[-1].errno == 0 and all(r.seq == 7 for r in replies)
    seen = []
    for r in replies[:-1]:
        a = r.attrs()
        dev = ib_device_by_name(mock_kernel, a[R.RDMA_NLDEV_ATTR_DEV_NAME])
        base = f"/sys/class/infiniband/{dev.name}"
        seen.append((a[R.RDMA_NLDEV_ATTR_DEV_INDEX], dev.name))
        assert a[R.RDMA_NLDEV_ATTR_DEV_INDEX] == dev.index
        assert a[R.RDMA_NLDEV_ATTR_PORT_INDEX] == len(dev.ports) == 1
        assert a[R.RDMA_NLDEV_ATTR_CAP_FLAGS] == dev.attrs.device_cap_flags
        assert guid_text(a[R.RDMA_NLDEV_ATTR_NODE_GUID]) == sysfs(f"{base}/node_guid")
        assert guid_text(a[R.RDMA_NLDEV_ATTR_SYS_IMAGE_GUID]) == sysfs(f"{base}/sys_image_guid")
        assert a[R.RDMA_NLDEV_ATTR_DEV_NODE_TYPE] == 1 and sysfs(f"{base}/node_type") == "1: CA"
        assert a[R.RDMA_NLDEV_ATTR_DEV_PROTOCOL] == "roce"
        assert a.get(R.RDMA_NLDEV_ATTR_FW_VERSION, "") == sysfs(f"{base}/fw_ver")
        order = [1, 2, 3, 4, 5, 6, 7, 14, 84, 101, 67]
        if dev.name == "mlx5_0":
            assert a[R.RDMA_NLDEV_ATTR_FW_VERSION] == "28.39.1002"
            assert (a[R.RDMA_NLDEV_ATTR_DEV_DIM], a[R.RDMA_NLDEV_ATTR_NAME_ASSIGN_TYPE]) == (1, 0)
        else:
            order.remove(5)  # rxe: no firmware string
            assert (a[R.RDMA_NLDEV_ATTR_DEV_DIM], a[R.RDMA_NLDEV_ATTR_NAME_ASSIGN_TYPE]) == (0, 1)
        assert r.order() == order
    assert seen == [(0, "rxe0"), (1, "mlx5_0")]


def test_get_do_equals_the_dump_entry(nl: RdmaClient) -> None:
    dump = nl.ask(R.RDMA_NLDEV_CMD_GET, NLM_F_DUMP)
    for index in (0, 1):
        do = nl.ask(R.RDMA_NLDEV_CMD_GET, NLM_F_ACK, u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, index))
        assert [(r.type, r.flags) for r in do] == [
            (T(R.RDMA_NLDEV_CMD_GET), 0),
            (NLMSG_ERROR, 0x100),
        ]
        assert do[0].payload == dump[index].payload and do[1].errno == 0


def test_ports(mock_kernel: Kernel, nl: RdmaClient) -> None:
    """RoCE ports: state and physical state, and rxe's net device (made by the rxe
    module for the topology's interface) by ifindex and name; no IB-only attributes."""
    for index, name in ((1, "mlx5_0"), (0, "rxe0")):
        dev = ib_device_by_name(mock_kernel, name)
        assert dev.index == index
        idx = u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, index)
        dump = nl.ask(R.RDMA_NLDEV_CMD_PORT_GET, NLM_F_DUMP, idx)
        assert [r.type for r in dump] == [T(R.RDMA_NLDEV_CMD_PORT_GET), NLMSG_DONE]
        do = nl.ask(R.RDMA_NLDEV_CMD_PORT_GET, 0, idx, u32(R.RDMA_NLDEV_ATTR_PORT_INDEX, 1))
        assert [r.type for r in do] == [T(R.RDMA_NLDEV_CMD_GET)]  # as nldev_port_get_doit puts it
        assert do[0].payload == dump[0].payload
        a = dump[0].attrs()
        assert a[R.RDMA_NLDEV_ATTR_PORT_STATE] == dev.ports[0].state == 4
        assert a[R.RDMA_NLDEV_ATTR_PORT_PHYS_STATE] == dev.ports[0].phys_state == 5
        assert sysfs(f"/sys/class/infiniband/{name}/ports/1/state") == "4: ACTIVE"
        for ib_only in (R.RDMA_NLDEV_ATTR_CAP_FLAGS, R.RDMA_NLDEV_ATTR_LID, R.RDMA_NLDEV_ATTR_LMC):
            assert ib_only not in a
        if name == "rxe0":
            assert (
                a[R.RDMA_NLDEV_ATTR_NDEV_NAME]
                == "eth9"
                == sysfs("/sys/class/infiniband/rxe0/parent")
            )
            assert a[R.RDMA_NLDEV_ATTR_NDEV_INDEX] == socket.if_nametoindex("eth9")
        else:
            assert R.RDMA_NLDEV_ATTR_NDEV_INDEX not in a


def test_infiniband_port_has_lid_and_capabilities(mock_kernel: Kernel, nl: RdmaClient) -> None:
    """An InfiniBand link layer adds CAP_FLAGS (mask and mask2), the subnet prefix of
    GID 0, LID, SM LID and LMC (``fill_port_info``)."""
    port = ib_device_by_name(mock_kernel, "mlx5_0").ports[0]
    saved = dataclasses.asdict(port)
    port.link_layer, port.lid, port.sm_lid, port.lmc = 1, 0x12, 0x1, 2
    port.port_cap_flags2 = 0x30
    try:
        r = nl.ask(
            R.RDMA_NLDEV_CMD_PORT_GET,
            0,
            u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, 1),
            u32(R.RDMA_NLDEV_ATTR_PORT_INDEX, 1),
        )[0]
        a = r.attrs()
        assert r.order() == [1, 2, 3, 4, 8, 9, 10, 11, 12, 13]
        assert a[R.RDMA_NLDEV_ATTR_CAP_FLAGS] == port.port_cap_flags | 0x30 << 32
        assert a[R.RDMA_NLDEV_ATTR_SUBNET_PREFIX] == 0xFE80_0000_0000_0000
        assert (a[9], a[10], a[11]) == (0x12, 0x1, 2)
        dev = nl.ask(R.RDMA_NLDEV_CMD_GET, 0, u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, 1))[0]
        assert dev.attrs()[R.RDMA_NLDEV_ATTR_DEV_PROTOCOL] == "ib"
    finally:
        for k, v in saved.items():
            setattr(port, k, v)


def test_chardev_is_the_uverbs_node(mock_kernel: Kernel, nl: RdmaClient) -> None:
    """What libibverbs' ``find_uverbs_nl`` reads; it must match ``try_access_device``'s
    stat of the node and the sysfs ``abi_version``."""
    for index, name, driver_id in ((1, "mlx5_0", 1), (0, "rxe0", 14)):
        dev = ib_device_by_name(mock_kernel, name)
        r = nl.ask(
            R.RDMA_NLDEV_CMD_GET_CHARDEV,
            0,
            u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, index),
            string(R.RDMA_NLDEV_ATTR_CHARDEV_TYPE, "uverbs"),
        )
        assert [x.type for x in r] == [T(R.RDMA_NLDEV_CMD_GET_CHARDEV)]
        a = r[0].attrs()
        assert r[0].order() == [73, 72, 71, 70]
        assert a[R.RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID] == driver_id == dev.driver_id
        node = f"/dev/infiniband/{a[R.RDMA_NLDEV_ATTR_CHARDEV_NAME]}"
        cdev = a[R.RDMA_NLDEV_ATTR_CHARDEV]
        major, minor = (cdev & 0xFFF00) >> 8, (cdev & 0xFF) | ((cdev >> 12) & 0xFFF00)
        assert os.makedev(major, minor) == os.stat(node).st_rdev
        uverbs = f"/sys/class/infiniband_verbs/{a[R.RDMA_NLDEV_ATTR_CHARDEV_NAME]}"
        assert sysfs(f"{uverbs}/ibdev") == name
        assert str(a[R.RDMA_NLDEV_ATTR_CHARDEV_ABI]) == sysfs(f"{uverbs}/abi_version")


def test_huge_encode_dev_round_trips() -> None:
    for major, minor in ((231, 192), (231, 0xFFFFF), (0xFFF, 0), (1, 0x100)):
        v = huge_encode_dev(os.makedev(major, minor))
        assert ((v & 0xFFF00) >> 8, (v & 0xFF) | ((v >> 12) & 0xFFF00)) == (major, minor)


def test_sys_get(nl: RdmaClient) -> None:
    r = nl.ask(R.RDMA_NLDEV_CMD_SYS_GET, 0)
    assert r[0].type == T(R.RDMA_NLDEV_CMD_SYS_GET)
    assert r[0].attrs() == {66: 1, 96: 0, 103: 1, 93: 1}  # shared netns, copy-on-fork


# -- bad requests ----------------------------------------------------------------------------
IDX0 = u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, 0)
UVERBS = string(R.RDMA_NLDEV_ATTR_CHARDEV_TYPE, "uverbs")
BAD = [
    ("get_no_index", T(1), 0, b"", errno.EINVAL),
    ("get_unknown_index", T(1), 0, u32(1, 2), errno.EINVAL),
    ("get_index_u64_max", T(1), 0, u32(1, 0xFFFFFFFF), errno.EINVAL),
    ("get_short_index", T(1), 0, nla(1, b"\0"), errno.EINVAL),
    ("port_no_port", T(5), 0, IDX0, errno.EINVAL),
    ("port_0", T(5), 0, IDX0 + u32(3, 0), errno.EINVAL),
    ("port_2", T(5), 0, IDX0 + u32(3, 2), errno.EINVAL),
    ("chardev_no_type", T(15), 0, IDX0, errno.EINVAL),
    ("chardev_no_device", T(15), 0, UVERBS, errno.EOPNOTSUPP),
    ("chardev_port", T(15), 0, IDX0 + u32(3, 1) + UVERBS, errno.EINVAL),
    ("chardev_unknown", T(15), 0, IDX0 + string(69, "nope"), errno.EOPNOTSUPP),
    ("chardev_umad_not_modelled", T(15), 0, IDX0 + string(69, "umad"), errno.EOPNOTSUPP),
    ("chardev_dump", T(15), NLM_F_DUMP, IDX0 + UVERBS, errno.EINVAL),
    ("sys_get_short_attr", T(6), 0, nla(1, b"\0"), errno.ERANGE),
    ("sys_get_dump", T(6), NLM_F_DUMP, b"", errno.EINVAL),
    ("op_unspec", T(0), 0, b"", errno.EINVAL),
    ("op_8", T(8), 0, b"", errno.EINVAL),
    ("op_monitor", T(28), 0, b"", errno.EINVAL),
    ("op_past_end", T(31), 0, b"", errno.EINVAL),
    ("frmr_pools_get_do", T(29), 0, b"", errno.EINVAL),
    ("client_1", T(1, 1), 0, b"", errno.EINVAL),
    ("client_3", T(1, 3), 0, b"", errno.EINVAL),
    ("client_6", T(1, 6), 0, b"", errno.EINVAL),
    ("ls_past_its_ops", T(3, R.RDMA_NL_LS), 0, b"", errno.EINVAL),
    ("set_not_modelled", T(2), 0, IDX0, errno.EOPNOTSUPP),
    ("ls_not_modelled", T(1, R.RDMA_NL_LS), 0, b"", errno.EOPNOTSUPP),
]


@pytest.mark.parametrize(
    ("mtype", "flags", "attrs", "err"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_requests_get_nldevs_errno(
    nl: RdmaClient, mtype: int, flags: int, attrs: bytes, err: int
) -> None:
    replies = nl.send(nlmsg(mtype, NLM_F_REQUEST | flags, attrs))
    assert [(r.type, r.errno) for r in replies] == [(NLMSG_ERROR, err)]


@pytest.mark.parametrize(
    ("mtype", "attrs"),
    [(T(5), b""), (T(5), u32(1, 5)), (T(29), b""), (T(9), IDX0), (T(1, R.RDMA_NL_IWCM), b"")],
    ids=["port_no_index", "port_unknown_index", "frmr", "res_get", "iwcm"],
)
def test_failed_dumps_end_in_done(nl: RdmaClient, mtype: int, attrs: bytes) -> None:
    """A started dump whose callback fails (or is not modelled) says so in NLMSG_DONE."""
    replies = nl.send(nlmsg(mtype, NLM_F_REQUEST | NLM_F_DUMP, attrs))
    assert [r.type for r in replies] == [NLMSG_DONE]
    assert replies[0].errno in (errno.EINVAL, errno.EOPNOTSUPP)


def test_not_modelled_is_traced(mock_kernel: Kernel, nl: RdmaClient) -> None:
    with mock_kernel.tracer.capture() as events:
        nl.ask(R.RDMA_NLDEV_CMD_RES_GET, NLM_F_DUMP)
        nl.ask(R.RDMA_NLDEV_CMD_GET_CHARDEV, 0, IDX0, string(69, "rdma_cm"))
    names = [(e["event"], e["op"]) for e in events if e["event"] == "rdma_nl.not_modelled"]
    assert names == [
        ("rdma_nl.not_modelled", "RDMA_NLDEV_CMD_RES_GET"),
        ("rdma_nl.not_modelled", "chardev rdma_cm"),
    ]


def test_monitor_group_is_refused(nl: RdmaClient) -> None:
    """Nothing is ever multicast on NETLINK_RDMA: joining would wait forever."""
    with pytest.raises(OSError) as e:
        nl.sock.setsockopt(270, 1, R.RDMA_NL_GROUP_NOTIFY)  # NETLINK_ADD_MEMBERSHIP
    assert e.value.errno == errno.EOPNOTSUPP


def test_no_rdma_device_no_protocol(mock_kernel_factory: Any) -> None:
    """Without an RDMA device ib_core is not loaded: the protocol does not exist."""
    kernel = mock_kernel_factory(load_topology("[kernel]\nnr_cpus = 1\n"))
    with kernel.install():
        with pytest.raises(OSError) as e:
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_RDMA)
        assert e.value.errno == errno.EPROTONOSUPPORT


# -- sysfs -----------------------------------------------------------------------------------
def test_sysfs_gid_table_and_provider_matching(mock_kernel: Kernel) -> None:
    dev = ib_device_by_name(mock_kernel, "mlx5_0")
    ports = "/sys/class/infiniband/mlx5_0/ports/1"
    assert len(os.listdir(f"{ports}/gids")) == dev.ports[0].gid_tbl_len == 255
    assert sysfs(f"{ports}/gids/1") == ":".join(["0000"] * 8)
    assert sysfs(f"{ports}/gid_attrs/types/0") == "RoCE v2"
    for unused in (f"{ports}/gid_attrs/types/1", f"{ports}/gid_attrs/ndevs/1"):
        with pytest.raises(OSError) as e:
            sysfs(unused)
        assert e.value.errno == errno.EINVAL
    # rdma-core's VERBS_PCI_MATCH fnmatches "pci:v%08Xd%08Xsv*" against the modalias
    assert sysfs("/sys/class/infiniband/mlx5_0/device/modalias").startswith(
        "pci:v000015B3d00001021sv000015B3sd00000041bc02sc00i00"
    )
    assert sysfs("/sys/class/infiniband/mlx5_0/device/vendor") == "0x15b3"
    assert os.path.realpath("/sys/class/infiniband/mlx5_0/device") == os.path.realpath(
        "/sys/class/infiniband_verbs/uverbs1/device"
    )
    assert os.listdir("/sys/class/infiniband/mlx5_0/device/infiniband_verbs") == ["uverbs1"]
    assert sysfs("/sys/class/infiniband_verbs/abi_version") == "6"
    assert not os.path.exists("/sys/class/infiniband_verbs/uverbs0/device")  # rxe: virtual


# -- anything a program may send -------------------------------------------------------------
_ATTR = st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=24), st.booleans()).map(
    lambda t: nla(t[0], t[1]) if t[2] else struct.pack("=HH", len(t[1]), t[0]) + t[1]
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    client=st.sampled_from([0, 2, 3, 4, 5, 5, 5, 6, 63]),
    op=st.one_of(st.integers(0, 32), st.integers(0, 1023)),
    flags=st.integers(0, 0xFFFF),
    attrs=st.lists(_ATTR, max_size=5),
    length_delta=st.sampled_from([0, 0, 0, -1, -4, 3, 100]),
)
def test_any_message_gets_a_well_formed_answer(
    nl: RdmaClient, client: int, op: int, flags: int, attrs: list[bytes], length_delta: int
) -> None:
    """Whatever is sent: no traceback, every reply well framed, an error is a known
    errno, nothing is left queued; the fixture's leak check runs at teardown."""
    payload = b"".join(attrs)
    n = max(16 + len(payload) + length_delta, 0)
    data = HDR.pack(n, T(op, client), flags, 9, 0) + payload
    replies = nl.send(data)
    for r in replies:
        assert r.seq == 9
        if r.type in (NLMSG_ERROR, NLMSG_DONE):
            assert r.errno in (0, errno.EINVAL, errno.ERANGE, errno.EOPNOTSUPP)
        else:
            assert r.type >> 10 == R.RDMA_NL_NLDEV
            parse(r.payload)
    fds = len(os.listdir("/proc/self/fd"))
    nl.ask(R.RDMA_NLDEV_CMD_SYS_GET, 0)  # the socket still works
    assert len(os.listdir("/proc/self/fd")) == fds


# -- libibverbs' two discovery paths ---------------------------------------------------------
def _discover_netlink(nl: RdmaClient) -> dict[str, tuple[str, int, int, int]]:
    """``find_sysfs_devs_nl``: the device dump, then each one's uverbs char device, kept
    only when ``try_access_device`` finds the node with that ``dev_t``."""
    found = {}
    for r in nl.ask(R.RDMA_NLDEV_CMD_GET, NLM_F_DUMP)[:-1]:
        a = r.attrs()
        cd = nl.ask(
            R.RDMA_NLDEV_CMD_GET_CHARDEV,
            0,
            u32(R.RDMA_NLDEV_ATTR_DEV_INDEX, a[R.RDMA_NLDEV_ATTR_DEV_INDEX]),
            string(R.RDMA_NLDEV_ATTR_CHARDEV_TYPE, "uverbs"),
        )[0].attrs()
        v = cd[R.RDMA_NLDEV_ATTR_CHARDEV]
        devt = os.makedev((v & 0xFFF00) >> 8, (v & 0xFF) | ((v >> 12) & 0xFFF00))
        name = cd[R.RDMA_NLDEV_ATTR_CHARDEV_NAME]
        if os.stat(f"/dev/infiniband/{name}").st_rdev == devt:
            found[a[R.RDMA_NLDEV_ATTR_DEV_NAME]] = (
                name,
                devt,
                cd[R.RDMA_NLDEV_ATTR_CHARDEV_ABI],
                cd[R.RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID],
            )
    return found


def _discover_sysfs() -> dict[str, tuple[str, int, int, int]]:
    """``find_sysfs_devs`` + ``match_device`` without a driver id: each
    ``infiniband_verbs/uverbsN``, its ``ibdev``, ``dev`` and ``abi_version``, and the
    provider by PCI modalias (mlx5's ``VERBS_PCI_MATCH``) or by name (rxe)."""
    import fnmatch

    found = {}
    base = "/sys/class/infiniband_verbs"
    for uverbs in sorted(os.listdir(base)):
        if not uverbs.startswith("uverbs"):
            continue
        ibdev = sysfs(f"{base}/{uverbs}/ibdev")
        major, minor = map(int, sysfs(f"{base}/{uverbs}/dev").split(":"))
        modalias_path = f"/sys/class/infiniband/{ibdev}/device/modalias"
        if os.path.exists(modalias_path):
            pci = fnmatch.fnmatch(sysfs(modalias_path), "pci:v000015B3d00001021sv*")
            driver = 1 if pci else 0
        else:
            driver = 14 if ibdev.startswith("rxe") else 0
        abi = int(sysfs(f"{base}/{uverbs}/abi_version"))
        found[ibdev] = (uverbs, os.makedev(major, minor), abi, driver)
    return found


def test_netlink_and_sysfs_discovery_agree(nl: RdmaClient) -> None:
    by_netlink = _discover_netlink(nl)
    assert set(by_netlink) == {"mlx5_0", "rxe0"}
    assert by_netlink == _discover_sysfs()
    assert sysfs("/sys/class/infiniband_verbs/abi_version") == "6"  # check_abi_version
