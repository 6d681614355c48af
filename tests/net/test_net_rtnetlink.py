"""rtnetlink (``NETLINK_ROUTE``) on the mock's net devices, written as a plain program:
links, addresses and routes consistent with ``socket.if_nameindex`` and the netdev
family; strict checking; extended acks for what is not modelled; link/address/route
notifications as a NIC registers and goes; ``socket.socket`` subclasses and asyncio
datagram transports over a mock netlink socket."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nlclient import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_MULTI,
    NLMSG_DONE,
    NLMSG_ERROR,
    Reply,
    attr,
    msg,
    split,
)
from nlclient import parse_attrs as nla_parse

from mockkernel import Kernel
from mockkernel.net import register_netdev, unregister_netdev
from mockkernel.net.netdev import NetDevice

SOL_NETLINK = 270
NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 11, 12
NLMSGERR_ATTR_MSG = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU = 1, 2, 3, 4
IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 13, 16, 31, 32
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL = 1, 2, 3
RTA_DST, RTA_OIF, RTA_PREFSRC = 1, 4, 7
IFINFO = struct.Struct("=BxHiII")
IFADDR = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")


class Rt:
    """A minimal rtnetlink client."""

    def __init__(self, strict: bool = False) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        if strict:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        self.sock.setblocking(False)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, mtype: int, flags: int, payload: bytes) -> list[Reply]:
        self.seq += 1
        self.sock.send(msg(mtype, 1 | flags, self.seq, payload))
        out: list[Reply] = []
        while True:
            for r in split(self.sock.recv(65536)):
                out.append(r)
                if r.type in (NLMSG_ERROR, NLMSG_DONE) or not (flags & NLM_F_DUMP or r.flags):
                    return out


@pytest.fixture
def rt(mock_kernel: Kernel) -> Rt:
    client = Rt()
    yield client  # type: ignore[misc]
    client.close()


def _links(rt: Rt) -> list[tuple[tuple[int, int, int, int, int], dict[int, list[bytes]]]]:
    replies = rt.request(RTM_GETLINK, NLM_F_DUMP, IFINFO.pack(0, 0, 0, 0, 0))
    assert replies[-1].type == NLMSG_DONE and replies[-1].flags & NLM_F_MULTI
    out = []
    for r in replies[:-1]:
        assert r.type == RTM_NEWLINK and r.flags == NLM_F_MULTI
        out.append((IFINFO.unpack_from(r.payload), nla_parse(r.payload[IFINFO.size :])))
    return out


def _name(a: dict[int, list[bytes]], t: int = IFLA_IFNAME) -> str:
    return a[t][0].split(b"\0")[0].decode()


def test_link_dump_is_if_nameindex(rt: Rt) -> None:
    links = _links(rt)
    assert [(h[2], _name(a)) for h, a in links] == socket.if_nameindex()
    (lo_h, lo), (eth_h, eth) = links[0], links[1]
    assert lo_h[1] == 772 and lo_h[3] == 0x10049  # ARPHRD_LOOPBACK; UP|LOOPBACK|RUNNING|LOWER_UP
    assert (
        eth_h[1] == 1 and eth_h[3] == 0x11043
    )  # ARPHRD_ETHER; UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP
    assert struct.unpack("=I", lo[IFLA_MTU][0]) == (65536,)
    assert struct.unpack("=I", eth[IFLA_MTU][0]) == (1500,)
    assert eth[IFLA_BROADCAST] == [b"\xff" * 6] and len(eth[IFLA_ADDRESS][0]) == 6
    assert eth[IFLA_OPERSTATE] == [b"\x06"]  # IF_OPER_UP
    assert struct.unpack("=I", eth[IFLA_NUM_RX_QUEUES][0]) == (8,)
    assert struct.unpack("=I", eth[IFLA_TXQLEN][0]) == (1000,)


def test_getlink_by_index_and_by_name(rt: Rt) -> None:
    (by_index,) = rt.request(RTM_GETLINK, 0, IFINFO.pack(0, 0, 2, 0, 0))
    by_name = rt.request(RTM_GETLINK, 0, IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, b"eth0\0"))
    assert by_index.type == RTM_NEWLINK and by_index.flags == 0
    assert by_index.payload == by_name[0].payload
    assert _name(nla_parse(by_index.payload[IFINFO.size :])) == "eth0"
    (missing,) = rt.request(RTM_GETLINK, 0, IFINFO.pack(0, 0, 99, 0, 0))
    assert missing.error == -errno.ENODEV
    (neither,) = rt.request(RTM_GETLINK, 0, IFINFO.pack(0, 0, 0, 0, 0))
    assert neither.error == -errno.EINVAL


def test_addresses_and_routes(rt: Rt) -> None:
    replies = rt.request(RTM_GETADDR, NLM_F_DUMP, IFADDR.pack(0, 0, 0, 0, 0))
    addrs = []
    for r in replies[:-1]:
        family, plen, _flags, scope, index = IFADDR.unpack_from(r.payload)
        a = nla_parse(r.payload[IFADDR.size :])
        ip = str(ipaddress.IPv4Address(a[IFA_LOCAL][0]))
        addrs.append((index, _name(a, IFA_LABEL), ip, plen, scope))
        assert family == socket.AF_INET and a[IFA_ADDRESS] == a[IFA_LOCAL]
    assert addrs == [(1, "lo", "127.0.0.1", 8, 254), (2, "eth0", "192.0.2.1", 24, 0)]
    replies = rt.request(
        RTM_GETROUTE, NLM_F_DUMP, RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
    )
    routes = []
    for r in replies[:-1]:
        h = RTMSG.unpack_from(r.payload)
        a = nla_parse(r.payload[RTMSG.size :])
        dst = str(ipaddress.IPv4Address(a[RTA_DST][0]))
        routes.append((h[4], h[7], f"{dst}/{h[1]}", struct.unpack("=I", a[RTA_OIF][0])[0]))
    assert routes == [
        (254, 1, "192.0.2.0/24", 2),
        (255, 2, "127.0.0.0/8", 1),
        (255, 2, "127.0.0.1/32", 1),
        (255, 3, "127.255.255.255/32", 1),
        (255, 2, "192.0.2.1/32", 2),
        (255, 3, "192.0.2.255/32", 2),
    ]
    v6 = rt.request(RTM_GETADDR, NLM_F_DUMP, IFADDR.pack(socket.AF_INET6, 0, 0, 0, 0))
    assert [r.type for r in v6] == [NLMSG_DONE]


@pytest.mark.parametrize(
    ("mtype", "name"),
    [(RTM_NEWLINK, "RTM_NEWLINK"), (RTM_DELLINK, "RTM_DELLINK"), (RTM_NEWADDR, "RTM_NEWADDR")],
)
def test_changes_are_not_modelled_with_an_extended_ack(rt: Rt, mtype: int, name: str) -> None:
    (ack,) = rt.request(mtype, NLM_F_ACK, IFINFO.pack(0, 0, 2, 0, 0))
    assert ack.error == -errno.EOPNOTSUPP
    what = f"{name} changing eth0" if mtype == RTM_NEWLINK else name
    assert ack.tlvs[NLMSGERR_ATTR_MSG] == [f"{what} is not modelled".encode() + b"\0"]
    (beyond,) = rt.request(200, NLM_F_ACK, bytes(16))  # past RTM_MAX: no message
    assert beyond.error == -errno.EOPNOTSUPP and not beyond.tlvs


@pytest.mark.parametrize(
    ("mtype", "flags", "index", "attrs", "want"),
    [
        (RTM_NEWLINK, 0, 0, b"", errno.ENODEV),  # iproute2's probe for RTM_NEWLINK support
        (RTM_NEWLINK, 0, 99999, b"", errno.ENODEV),
        (RTM_NEWLINK, 0, 0, b"\x10\x00\x03\x00nosuchdev0\x00\x00", errno.ENODEV),
        (RTM_NEWLINK, 0x400, 0, b"\x10\x00\x03\x00nosuchdev0\x00\x00", errno.EOPNOTSUPP),
        (RTM_SETLINK, 0, 0, b"", errno.EINVAL),
        (RTM_SETLINK, 0, 99999, b"", errno.ENODEV),
        (RTM_SETLINK, 0, 1, b"", errno.EOPNOTSUPP),
    ],
)
def test_link_requests_find_the_device_first(
    rt: Rt, mtype: int, flags: int, index: int, attrs: bytes, want: int
) -> None:
    """As ``rtnl_newlink``/``rtnl_setlink`` (``tests/real_linux/golden/dev_ioctl.jsonl``)."""
    (ack,) = rt.request(mtype, NLM_F_ACK | flags, IFINFO.pack(0, 0, index, 0, 0) + attrs)
    assert ack.error == -want
    (short,) = rt.request(RTM_NEWLINK, NLM_F_ACK, b"\0" * 4)
    assert short.error == -errno.EINVAL


def test_strict_checking(mock_kernel: Kernel) -> None:
    rt = Rt(strict=True)
    try:
        # a dump's own error ends it: NLMSG_DONE carries the errno and the message
        (done,) = rt.request(RTM_GETLINK, NLM_F_DUMP, IFINFO.pack(0, 0, 2, 0, 0))
        assert done.type == NLMSG_DONE and done.flags == NLM_F_MULTI | 0x200
        assert struct.unpack_from("=i", done.payload) == (-errno.EINVAL,)
        assert b"Filter by device index" in nla_parse(done.payload[4:])[NLMSGERR_ATTR_MSG][0]
        (bad,) = rt.request(RTM_GETLINK, 0, IFINFO.pack(0, 0, 1, 1, 0))
        assert bad.tlvs[NLMSGERR_ATTR_MSG] == [b"Invalid values in header for get link request\0"]
        only_eth0 = rt.request(RTM_GETADDR, NLM_F_DUMP, IFADDR.pack(socket.AF_INET, 0, 0, 0, 2))
        assert [IFADDR.unpack_from(r.payload)[4] for r in only_eth0[:-1]] == [2]
    finally:
        rt.close()


def test_notifications_as_a_nic_comes_and_goes(rt: Rt, mock_kernel: Kernel) -> None:
    # RTNLGRP_LINK (1), RTNLGRP_IPV4_IFADDR (5) by bind; RTNLGRP_IPV4_ROUTE (7) by option
    rt.sock.bind((0, 1 << 0 | 1 << 4))
    rt.sock.setsockopt(SOL_NETLINK, 1, 7)
    dev = NetDevice("eth9", 2, 2, ipv4="198.51.100.7")
    register_netdev(mock_kernel, dev)
    unregister_netdev(mock_kernel, dev)
    got = []
    while True:
        try:
            got += [(r.type, r.seq, r.pid) for r in split(rt.sock.recv(65536))]
        except BlockingIOError:
            break
    new = [RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWROUTE, RTM_NEWROUTE]
    gone = [RTM_DELROUTE, RTM_DELROUTE, RTM_DELROUTE, RTM_DELADDR, RTM_DELLINK]
    assert got == [(t, 0, 0) for t in new + gone]


def test_a_socket_subclass_over_a_mock_fd(mock_kernel: Kernel) -> None:
    """pyroute2's ``NoClose``: a ``socket.socket`` subclass made with ``fileno=`` a dup."""

    class NoClose(socket.socket):
        pass

    prime = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
    s = NoClose(fileno=os.dup(prime.fileno()))
    prime.close()
    try:
        assert isinstance(s, NoClose) and isinstance(s, socket.socket)
        assert (s.family, s.type, s.proto) == (socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
        s.send(msg(RTM_GETLINK, 1, 7, IFINFO.pack(0, 0, 1, 0, 0)))
        (r,) = split(s.recv(65536))
        assert r.type == RTM_NEWLINK and r.seq == 7
        d = s.dup()
        assert type(d) is NoClose and d.fileno() != s.fileno()
        d.close()
        made = NoClose(socket.AF_NETLINK, socket.SOCK_RAW, 16)
        assert made.fileno() in mock_kernel.init_process.files
        made.close()
    finally:
        s.close()
    assert not mock_kernel.init_process.files
    with pytest.raises(OSError) as e:
        NoClose(socket.AF_NETLINK, socket.SOCK_RAW, 5)
    assert e.value.errno == errno.EPROTONOSUPPORT


class _DefinedBeforeInstall(socket.socket):
    """A library's ``socket.socket`` subclass, defined when its module is imported
    (before the fixture installs the redirection), with a ``__dict__`` of its own."""

    def __init__(self, sock: socket.socket) -> None:
        self.magic = 7
        super().__init__(fileno=os.dup(sock.fileno()))
        sock.close()


def test_a_subclass_defined_before_installation(mock_kernel: Kernel) -> None:
    """Its instance on a mock netlink fd is a mock socket, still of its own class."""
    s = _DefinedBeforeInstall(
        socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
    )
    try:
        assert isinstance(s, _DefinedBeforeInstall) and s.magic == 7
        assert s.fileno() in mock_kernel.init_process.files
        s.send(msg(RTM_GETLINK, 1, 9, IFINFO.pack(0, 0, 1, 0, 0)))
        (r,) = split(s.recv(65536))
        assert r.type == RTM_NEWLINK and r.seq == 9
    finally:
        s.close()
    assert not mock_kernel.init_process.files
    real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # a real fd stays a real socket of the class
        early = _DefinedBeforeInstall(real)
        assert early.fileno() not in mock_kernel.init_process.files
        assert early.family == socket.AF_INET
        early.close()
    finally:
        real.close()


def test_an_asyncio_datagram_transport(mock_kernel: Kernel) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[bytes] = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got.set_result(data)

        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
        transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
        try:
            transport.sendto(msg(RTM_GETLINK, 1, 3, IFINFO.pack(0, 0, 2, 0, 0)), (0, 0))
            return await asyncio.wait_for(got, 5)
        finally:
            transport.close()

    (r,) = split(asyncio.run(main()))
    assert r.type == RTM_NEWLINK and _name(nla_parse(r.payload[IFINFO.size :])) == "eth0"
    assert not mock_kernel.init_process.files


def test_sys_class_net_is_the_same_devices(rt: Rt, mock_kernel: Kernel) -> None:
    """``/sys/class/net`` lists the mock's devices (not the host's), with rtnetlink's
    ifindexes, MTUs and addresses; a NIC's directory is under its PCI function."""
    links = {_name(a): (h, a) for h, a in _links(rt)}
    assert sorted(os.listdir("/sys/class/net")) == sorted(links)
    for name, (hdr, a) in links.items():
        d = f"/sys/class/net/{name}"
        with open(f"{d}/ifindex") as f:
            assert int(f.read()) == hdr[2]
        with open(f"{d}/mtu") as f:
            assert int(f.read()) == struct.unpack("=I", a[IFLA_MTU][0])[0]
        with open(f"{d}/address") as f:
            assert bytes.fromhex(f.read().strip().replace(":", "")) == a[IFLA_ADDRESS][0]
        with open(f"{d}/type") as f:
            assert int(f.read()) == hdr[1]
    assert (
        os.readlink("/sys/class/net/eth0")
        == "../../devices/pci0000:00/0000:00:01.0/0000:03:00.0/net/eth0"
    )  # behind its root port
    assert sorted(os.listdir("/sys/class/net/eth0/queues"))[:2] == ["rx-0", "rx-1"]
    dev = NetDevice("eth9", 1, 1)
    register_netdev(mock_kernel, dev)
    assert "eth9" in os.listdir("/sys/class/net")
    assert os.readlink("/sys/class/net/eth9") == "../../devices/virtual/net/eth9"
    unregister_netdev(mock_kernel, dev)
    assert "eth9" not in os.listdir("/sys/class/net")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mtype=st.integers(16, 130),
    flags=st.sampled_from([0, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP | NLM_F_ACK]),
    payload=st.binary(max_size=64),
    strict=st.booleans(),
)
def test_any_request_gets_an_answer_never_a_traceback(
    mock_kernel: Kernel, mtype: int, flags: int, payload: bytes, strict: bool
) -> None:
    """Whatever arrives, rtnetlink answers with netlink messages (a reply, an ack or
    ``NLMSG_DONE``), as ``rtnetlink_rcv_msg`` does; the socket stays usable."""
    rt = Rt(strict=strict)
    try:
        rt.seq += 1
        rt.sock.send(msg(mtype, 1 | flags, rt.seq, payload))
        got = []
        while True:
            try:
                got += split(rt.sock.recv(65536))
            except BlockingIOError:
                break
        for r in got:
            assert r.type in (NLMSG_ERROR, NLMSG_DONE, RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE)
            assert r.seq == rt.seq
            if r.type == NLMSG_ERROR:
                assert r.error is not None and r.error <= 0
        (ok,) = rt.request(RTM_GETLINK, 0, IFINFO.pack(0, 0, 1, 0, 0))
        assert ok.type == RTM_NEWLINK
    finally:
        rt.close()
