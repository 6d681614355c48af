"""Regressions from the ``netlink`` real-Linux probe: what Linux 7.2 answered and the mock
did not (``tests/real_linux/golden/netlink.jsonl``)."""

from __future__ import annotations

import errno
import os
import socket
import struct

from nlclient import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    NLA_F_NESTED,
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
    attr,
    genl,
    nest,
    parse_attrs,
    split,
    u32,
)

from mockkernel import Kernel

CTRL_ATTR_MAXATTR, CTRL_ATTR_OPS, CTRL_ATTR_MCAST_GROUPS = 5, 6, 7
NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, NLMSGERR_ATTR_POLICY = 1, 2, 4
DEV_GET, QUEUE_GET, BIND_RX = 1, 10, 13
GENL_UNS_ADMIN_PERM = 0x10


def _raw_attrs(payload: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos + 4 <= len(payload):
        n, t = struct.unpack_from("=HH", payload, pos)
        out.append((t, payload[pos + 4 : pos + n]))
        pos += (n + 3) & ~3
    return out


def _getfamily(nl: GenlClient, *attrs: bytes) -> list:
    return nl.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, *attrs)


def _name(s: str) -> bytes:
    return attr(CTRL_ATTR_FAMILY_NAME, s.encode() + b"\0")


def test_ctrl_fill_info_nests_without_flag_and_maxattr_0(mock_kernel: Kernel) -> None:
    """ctrl_fill_info: nla_nest_start_noflag; per-op policies leave MAXATTR 0; nlctrl's
    "notify" group is GENL_ID_CTRL."""
    with GenlClient() as nl:
        for fam in ("nlctrl", "netdev"):
            reply = _getfamily(nl, _name(fam))[0]
            raw = dict(_raw_attrs(reply.payload[4:]))
            assert CTRL_ATTR_OPS in raw and CTRL_ATTR_MCAST_GROUPS in raw
            assert CTRL_ATTR_OPS | NLA_F_NESTED not in raw
            assert struct.unpack("=I", raw[CTRL_ATTR_MAXATTR])[0] == 0
        grps = parse_attrs(dict(_raw_attrs(_getfamily(nl, _name("nlctrl"))[0].payload[4:]))[7])
        notify = parse_attrs(grps[1][0])
        assert struct.unpack("=I", notify[2][0])[0] == GENL_ID_CTRL


def test_netdev_bind_rx_is_uns_admin_perm(mock_kernel: Kernel) -> None:
    with GenlClient() as nl:
        raw = dict(_raw_attrs(_getfamily(nl, _name("netdev"))[0].payload[4:]))
        ops = {}
        for _i, op in _raw_attrs(raw[CTRL_ATTR_OPS]):
            a = parse_attrs(op)
            ops[struct.unpack("=I", a[1][0])[0]] = struct.unpack("=I", a[2][0])[0]
        assert ops[BIND_RX] == 0x02 | 0x08 | GENL_UNS_ADMIN_PERM


def test_getfamily_name_wins_over_id(mock_kernel: Kernel) -> None:
    """ctrl_getfamily looks the id up, then the name replaces it."""
    with GenlClient() as nl:
        ident = struct.pack("=HHH", 6, CTRL_ATTR_FAMILY_ID, GENL_ID_CTRL) + b"\0\0"
        reply = _getfamily(nl, ident, _name("netdev"))[0]
        assert reply.attrs()[CTRL_ATTR_FAMILY_NAME][0] == b"netdev\0"


def test_policy_errors_carry_nlmsgerr_attr_policy(mock_kernel: Kernel) -> None:
    """NL_SET_ERR_MSG_ATTR_POL: the failed policy's range and type in the ext ack."""
    with GenlClient() as nl:
        fid = nl.family("netdev")
        err = nl.request(fid, DEV_GET, u32(1, 0))[-1]
        assert err.error == -errno.ERANGE
        pol = parse_attrs(err.tlvs[NLMSGERR_ATTR_POLICY][0])
        assert struct.unpack("=Q", pol[4][0])[0] == 1  # MIN_VALUE_U
        assert struct.unpack("=Q", pol[5][0])[0] == 0xFFFFFFFF  # MAX_VALUE_U
        assert struct.unpack("=I", pol[1][0])[0] == 4  # NL_ATTR_TYPE_U32


def test_liberal_short_u16_is_erange(mock_kernel: Kernel) -> None:
    """validate_nla: err starts at -ERANGE; a too-short fixed-size attribute keeps it."""
    with GenlClient() as nl:
        err = _getfamily(nl, attr(CTRL_ATTR_FAMILY_ID, b"\x10"))[-1]
        assert err.error == -errno.ERANGE
        assert err.tlvs[NLMSGERR_ATTR_MSG][0] == b"Attribute failed policy validation\0"


def test_liberal_leftover_bytes_warn_in_ack_and_error(mock_kernel: Kernel) -> None:
    """__nla_validate_parse sets "bytes leftover" even when it does not fail: a success
    ack carries it (NLM_F_ACK_TLVS), and so does a later error without a message."""
    with GenlClient() as nl:
        replies = _getfamily(nl, _name("nlctrl") + b"\x01\x02")
        ack = replies[-1]
        assert ack.error == 0 and ack.flags == NLM_F_CAPPED | NLM_F_ACK_TLVS
        assert ack.tlvs[NLMSGERR_ATTR_MSG][0] == b"bytes leftover after parsing attributes\0"
        bad = _getfamily(nl, struct.pack("=HH", 2, 2) + b"nlctrl\0\0")[-1]
        assert bad.error == -errno.EINVAL
        assert bad.tlvs[NLMSGERR_ATTR_MSG][0] == b"bytes leftover after parsing attributes\0"


def test_error_embeds_request_padded(mock_kernel: Kernel) -> None:
    """netlink_ack: the embedded request is padded to 4 bytes in nlmsg_len."""
    with GenlClient(ext_ack=False) as nl:
        nl.sock.send(
            struct.pack("=IHHII", 18, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 1, 0)
            + b"\x03\x01\0\0"
        )
        dgram = nl.sock.recv(65536)
        assert struct.unpack_from("=I", dgram)[0] == 16 + 4 + 20


def test_netdev_dump_without_multi_and_no_attrs(mock_kernel: Kernel) -> None:
    """genlmsg_iput: netdev's dump messages have flags 0; DEV_GET's dump takes no attribute."""
    with GenlClient() as nl:
        fid = nl.family("netdev")
        replies = nl.request(fid, DEV_GET, flags=NLM_F_DUMP)
        assert [r.flags for r in replies[:-1]] == [0] * (len(replies) - 1)
        assert replies[-1].type == NLMSG_DONE and replies[-1].flags & NLM_F_MULTI
        err = nl.request(fid, DEV_GET, u32(1, 1), flags=NLM_F_DUMP)[-1]
        assert err.type == NLMSG_ERROR and err.error == -errno.EINVAL
        assert err.tlvs[NLMSGERR_ATTR_MSG][0] == b"Unknown attribute type\0"


def test_dump_error_ends_in_done(mock_kernel: Kernel) -> None:
    """netlink_dump: the dump callback's error is NLMSG_DONE's errno, not an NLMSG_ERROR."""
    with GenlClient() as nl:
        fid = nl.family("netdev")
        replies = nl.request(fid, QUEUE_GET, u32(2, 999999), flags=NLM_F_DUMP)
        assert len(replies) == 1 and replies[0].type == NLMSG_DONE
        assert struct.unpack("=i", replies[0].payload[:4])[0] == -errno.ENODEV


def test_bind_rx_unknown_ifindex_names_no_attribute(mock_kernel: Kernel) -> None:
    with GenlClient() as nl:
        fid = nl.family("netdev")
        q = nest(2, u32(1, 0), u32(3, 0))
        err = nl.request(fid, BIND_RX, u32(1, 999999), u32(3, 0), q)[-1]
        assert err.error == -errno.ENODEV and NLMSGERR_ATTR_OFFS not in err.tlvs


def test_socket_options_and_groups(mock_kernel: Kernel) -> None:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    try:
        s.bind((0, 1 << 15))
        assert s.getsockname()[1] == 1 << 15
        s.setsockopt(SOL_NETLINK, 1, 2)  # NETLINK_ADD_MEMBERSHIP (netdev "mgmt")
        assert s.getsockname()[1] == 1 << 15 | 1 << 1
        s.setsockopt(SOL_NETLINK, 2, 2)  # NETLINK_DROP_MEMBERSHIP
        assert s.getsockname()[1] == 1 << 15
        for bad in (0, 1000):
            try:
                s.setsockopt(SOL_NETLINK, 1, bad)
            except OSError as e:
                assert e.errno == errno.EINVAL
            else:
                raise AssertionError(f"ADD_MEMBERSHIP accepted group {bad}")
        s.setsockopt(SOL_NETLINK, 11, b"\x01\x00")  # short: reads as 0
        assert s.getsockopt(SOL_NETLINK, 11) == 0
        try:
            s.getsockopt(SOL_NETLINK, 11, 2)
        except OSError as e:
            assert e.errno == errno.EINVAL
        else:
            raise AssertionError("a 2-byte getsockopt worked")
        s.setsockopt(SOL_NETLINK, 3, 1)  # NETLINK_PKTINFO
        assert s.getsockopt(SOL_NETLINK, 3) == 1
        s.send(genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST, 1, _name("nlctrl")))
        data, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(4))
        assert split(data)[0].type == GENL_ID_CTRL
        assert anc == [(SOL_NETLINK, 3, struct.pack("=I", 0))]
    finally:
        s.close()


def test_send_empty_and_to_own_port(mock_kernel: Kernel) -> None:
    with GenlClient() as nl:
        try:
            nl.sock.send(b"")
        except OSError as e:
            assert e.errno == errno.ENODATA
        else:
            raise AssertionError("an empty send worked")
        port = nl.sock.getsockname()[0]
        assert port == os.getpid()
        data = genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST, 1, _name("nlctrl"))
        assert nl.sock.sendto(data, (port, 0)) == len(data)
        assert nl.sock.recv(65536) == data  # queued on the socket as it was sent
