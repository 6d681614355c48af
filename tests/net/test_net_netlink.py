"""The generic netlink surface: sockets, framing, acks, extended acks, nlctrl, policies."""

from __future__ import annotations

import errno
import os
import socket
import struct

import pytest
from nlclient import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    HDR,
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NETLINK_GENERIC,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_DUMP,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOL_NETLINK,
    GenlClient,
    Reply,
    attr,
    genl,
    msg,
    parse_attrs,
    split,
    u32,
)

from mockkernel import Kernel
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_DEV_IFINDEX,
    NETDEV_CMD_BIND_RX,
    NETDEV_CMD_DEV_GET,
)
from mockkernel.uapi.linux.netlink import (
    NLMSGERR_ATTR_MISS_TYPE,
    NLMSGERR_ATTR_MSG,
    NLMSGERR_ATTR_OFFS,
)

NETDEV_CMD_UNKNOWN = 99


def _nothing_queued(nl: GenlClient) -> None:
    with pytest.raises(BlockingIOError):
        nl.sock.recv(65536)


# -- the socket --
def test_generic_netlink_socket_is_mock_others_real(mock_kernel: Kernel) -> None:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    try:
        assert s.fileno() in mock_kernel.init_process.files
        assert isinstance(s, socket.socket)
        assert s.family == socket.AF_NETLINK and s.proto == NETLINK_GENERIC
    finally:
        s.close()
    assert s.fileno() == -1
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert udp.fileno() not in mock_kernel.init_process.files
        assert type(udp).__module__ == "socket"
        udp.bind(("127.0.0.1", 0))
    finally:
        udp.close()
    a, b = socket.socketpair()
    a.close()
    b.close()


def test_route_netlink_is_the_mock_kernels(mock_kernel: Kernel) -> None:
    """``NETLINK_ROUTE`` (also CPython's default protocol) is the mock's: one kernel."""
    for args in ((socket.SOCK_RAW, 0), (socket.SOCK_DGRAM,)):
        s = socket.socket(socket.AF_NETLINK, *args)
        try:
            assert s.fileno() in mock_kernel.init_process.files
            assert s.proto == 0
        finally:
            s.close()
    assert not mock_kernel.init_process.files


# (20, NETLINK_RDMA, is the mock's: the default topology has an RDMA device)
@pytest.mark.parametrize("proto", [1, 2, 4, 9, 15, 17, 31, 32, 1000])
def test_unmodelled_protocols_are_not_supported(mock_kernel: Kernel, proto: int) -> None:
    """A netlink family the mock kernel lacks is ``EPROTONOSUPPORT``, as on a Linux built
    without it (and any protocol out of 0..31): never the host's socket."""
    with pytest.raises(OSError) as e:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    assert e.value.errno == errno.EPROTONOSUPPORT
    assert not mock_kernel.init_process.files


def test_stream_type_is_not_supported(mock_kernel: Kernel) -> None:
    with pytest.raises(OSError) as e:
        socket.socket(socket.AF_NETLINK, socket.SOCK_STREAM, NETLINK_GENERIC)
    assert e.value.errno == errno.ESOCKTNOSUPPORT
    assert not mock_kernel.init_process.files


def test_bind_gives_the_pid_as_port(nl: GenlClient) -> None:
    assert nl.sock.getsockname() == (os.getpid(), 0)
    with GenlClient() as other:  # a second socket of the process gets another port
        assert other.sock.getsockname()[0] not in (0, os.getpid())


def test_os_close_and_os_read_write_reach_the_socket(mock_kernel: Kernel) -> None:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_GENERIC)
    fd = s.fileno()
    req = genl(
        GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST, 7, attr(CTRL_ATTR_FAMILY_NAME, b"netdev\0")
    )
    assert os.write(fd, req) == len(req)
    (reply,) = split(os.read(fd, 65536))
    assert reply.seq == 7 and reply.type == GENL_ID_CTRL
    os.close(fd)
    assert fd not in mock_kernel.init_process.files
    s.detach()


def test_sockopts(nl: GenlClient) -> None:
    assert nl.sock.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK) == 1
    nl.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    assert nl.sock.getsockopt(SOL_NETLINK, NETLINK_CAP_ACK) == 1
    with pytest.raises(OSError) as e:
        nl.sock.setsockopt(SOL_NETLINK, 999, 1)
    assert e.value.errno == errno.ENOPROTOOPT
    assert nl.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == NETLINK_GENERIC
    nl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # pyroute2 does this
    assert nl.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 65536  # doubled


def test_blocking_recv_with_nothing_queued_times_out(mock_kernel: Kernel) -> None:
    with GenlClient() as c:
        c.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            c.sock.recv(100)


# -- nlctrl --
def test_getfamily_by_name_and_id(nl: GenlClient) -> None:
    fid = nl.family("netdev")
    assert fid >= 0x13
    replies = nl.request(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        attr(CTRL_ATTR_FAMILY_ID, struct.pack("=H", fid) + b"\0\0"),
    )
    assert replies[0].attrs()[CTRL_ATTR_FAMILY_NAME] == [b"netdev\0"]
    assert replies[-1].type == NLMSG_ERROR and replies[-1].error == 0
    assert nl.family("nlctrl") == GENL_ID_CTRL


def test_getfamily_unknown_name_enoent_and_no_attr_einval(nl: GenlClient) -> None:
    with pytest.raises(OSError) as e:
        nl.family("nosuchfamily")
    assert e.value.errno == errno.ENOENT
    (ack,) = nl.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY)
    assert ack.error == -errno.EINVAL


def test_getfamily_dump_lists_every_family(nl: GenlClient) -> None:
    replies = nl.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, flags=NLM_F_DUMP)
    names = [r.attrs()[CTRL_ATTR_FAMILY_NAME][0] for r in replies[:-1]]
    assert names == [b"nlctrl\0", b"netdev\0"]
    assert all(r.flags & NLM_F_MULTI for r in replies)
    assert replies[-1].type == NLMSG_DONE


# -- framing and acks --
def test_unknown_family_enoent_unknown_command_eopnotsupp(nl: GenlClient) -> None:
    (ack,) = nl.request(0x3FF, 1)
    assert ack.error == -errno.ENOENT
    fid = nl.family("netdev")
    (ack,) = nl.request(fid, NETDEV_CMD_UNKNOWN)
    assert ack.error == -errno.EOPNOTSUPP
    (ack,) = nl.request(fid, NETDEV_CMD_BIND_RX, flags=NLM_F_DUMP)  # do-only command
    assert ack.error == -errno.EOPNOTSUPP


@pytest.mark.parametrize("nlmsg_len", [0, 8, 15])
def test_too_small_nlmsg_len_is_dropped_without_answer(nl: GenlClient, nlmsg_len: int) -> None:
    good = genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST | NLM_F_ACK, 1)
    bad = HDR.pack(nlmsg_len, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 2, 0) + bytes(4)
    nl.sock.send(bad + good)  # the rest of the datagram goes with it
    _nothing_queued(nl)


def test_nlmsg_len_past_the_datagram_is_dropped(nl: GenlClient) -> None:
    req = bytearray(genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST | NLM_F_ACK, 1))
    struct.pack_into("=I", req, 0, len(req) + 4)
    nl.sock.send(bytes(req))
    _nothing_queued(nl)


def test_messages_of_one_datagram_each_answered(nl: GenlClient) -> None:
    a = genl(0x3FF, 1, NLM_F_REQUEST, 1)
    b = genl(0x3FE, 1, NLM_F_REQUEST | NLM_F_ACK, 2)
    nl.sock.send(a + b)
    acks = split(nl.sock.recv(65536)) + split(nl.sock.recv(65536))
    assert [(r.seq, r.error) for r in acks] == [(1, -errno.ENOENT), (2, -errno.ENOENT)]


def test_not_a_request_answered_only_with_ack(nl: GenlClient) -> None:
    nl.sock.send(genl(0x3FF, 1, 0, 1))
    _nothing_queued(nl)
    nl.sock.send(genl(0x3FF, 1, NLM_F_ACK, 2))
    (ack,) = split(nl.sock.recv(65536))
    assert ack.error == 0 and ack.seq == 2
    nl.sock.send(msg(1, NLM_F_REQUEST | NLM_F_ACK, 3, b""))  # a control type: acked only
    (ack,) = split(nl.sock.recv(65536))
    assert ack.error == 0


def test_success_ack_is_capped_error_ack_carries_the_request(nl: GenlClient) -> None:
    req = genl(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        NLM_F_REQUEST | NLM_F_ACK,
        5,
        attr(CTRL_ATTR_FAMILY_NAME, b"netdev\0"),
    )
    nl.sock.send(req)
    split(nl.sock.recv(65536))
    (ack,) = split(nl.sock.recv(65536))
    assert ack.flags & NLM_F_CAPPED and ack.payload[4:] == req[:16]
    assert ack.pid == nl.sock.getsockname()[0]
    bad = genl(0x3FF, 1, NLM_F_REQUEST, 6, u32(1, 1))
    nl.sock.send(bad)
    (ack,) = split(nl.sock.recv(65536))
    assert not ack.flags & NLM_F_CAPPED and ack.payload[4:] == bad
    nl.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    nl.sock.send(bad)
    (ack,) = split(nl.sock.recv(65536))
    assert ack.flags & NLM_F_CAPPED and ack.payload[4:] == bad[:16]


def test_short_genl_header_einval(nl: GenlClient) -> None:
    nl.sock.send(msg(nl.family("netdev"), NLM_F_REQUEST, 1, b"\x01"))
    (ack,) = split(nl.sock.recv(65536))
    assert ack.error == -errno.EINVAL


# -- policies and extended acks --
def _dev_get(nl: GenlClient, *attrs: bytes) -> Reply:
    return nl.request(nl.family("netdev"), NETDEV_CMD_DEV_GET, *attrs)[-1]


def test_unknown_attribute_is_rejected_with_its_offset(nl: GenlClient) -> None:
    ack = _dev_get(nl, u32(NETDEV_A_DEV_IFINDEX, 1), u32(7, 0))
    assert ack.error == -errno.EINVAL
    assert ack.flags & NLM_F_ACK_TLVS
    assert ack.tlvs[NLMSGERR_ATTR_MSG] == [b"Unknown attribute type\0"]
    assert ack.tlvs[NLMSGERR_ATTR_OFFS] == [struct.pack("=I", 16 + 4 + 8)]


def test_wrong_length_and_range(nl: GenlClient) -> None:
    ack = _dev_get(nl, attr(NETDEV_A_DEV_IFINDEX, b"\1\0"))
    assert ack.error == -errno.EINVAL
    ack = _dev_get(nl, u32(NETDEV_A_DEV_IFINDEX, 0))  # NLA_POLICY_MIN(NLA_U32, 1)
    assert ack.error == -errno.ERANGE
    assert ack.tlvs[NLMSGERR_ATTR_MSG] == [b"integer out of range\0"]


def test_missing_attribute_reports_its_type(nl: GenlClient) -> None:
    ack = _dev_get(nl)
    assert ack.error == -errno.EINVAL
    assert ack.tlvs[NLMSGERR_ATTR_MISS_TYPE] == [struct.pack("=I", NETDEV_A_DEV_IFINDEX)]


def test_no_tlvs_without_ext_ack(mock_kernel: Kernel) -> None:
    with GenlClient(ext_ack=False) as c:
        ack = c.request(c.family("netdev"), NETDEV_CMD_DEV_GET, u32(7, 0))[-1]
        assert ack.error == -errno.EINVAL and not ack.tlvs
        assert not ack.flags & NLM_F_ACK_TLVS


def test_trailing_bytes_rejected(nl: GenlClient) -> None:
    ack = _dev_get(nl, u32(NETDEV_A_DEV_IFINDEX, 1) + b"\0\0\0")
    assert ack.error == -errno.EINVAL


def test_parse_helper_roundtrip() -> None:
    assert parse_attrs(u32(3, 9)) == {3: [struct.pack("=I", 9)]}


def test_socket_subclass_made_while_installed_is_real(mock_kernel: Kernel) -> None:
    class Mine(socket.socket):
        pass

    s = Mine(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert type(s) is Mine and s.fileno() not in mock_kernel.init_process.files
    finally:
        s.close()


def test_a_forgotten_socket_is_a_leak(mock_kernel_factory: object) -> None:
    kernel = mock_kernel_factory(install=True)  # type: ignore[operator]
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    fd = s.fileno()
    assert any(f"fd {fd} " in leak for leak in kernel.leaks())
    s.close()
    assert kernel.leaks() == []
