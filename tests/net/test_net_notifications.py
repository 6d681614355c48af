"""Netlink multicast: netdev's "mgmt" group gets ``DEV_ADD_NTF``/``DEV_DEL_NTF`` as
``netdev_genl_dev_notify`` sends them (the "page-pool" group: test_net_page_pool.py)."""

from __future__ import annotations

import socket
import struct

from nlclient import GenlClient, attr, parse_attrs, split

from mockkernel import Kernel
from mockkernel.net import register_netdev, unregister_netdev
from mockkernel.net.netdev import NetDevice
from mockkernel.uapi.linux.genetlink import (
    CTRL_ATTR_FAMILY_NAME,
    CTRL_ATTR_MCAST_GROUPS,
    CTRL_ATTR_MCAST_GRP_ID,
    CTRL_ATTR_MCAST_GRP_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
)
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_DEV_IFINDEX,
    NETDEV_CMD_DEV_ADD_NTF,
    NETDEV_CMD_DEV_DEL_NTF,
)

SOL_NETLINK = 270
ADD, DROP = 1, 2


def _mcast_groups(nl: GenlClient, name: str) -> dict[str, int]:
    """A family's multicast groups as nlctrl reports them (CTRL_ATTR_MCAST_GROUPS)."""
    replies = nl.request(
        GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
    )
    out: dict[str, int] = {}
    for entry in parse_attrs(replies[0].attrs()[CTRL_ATTR_MCAST_GROUPS][0]).values():
        grp = parse_attrs(entry[0])
        gname = grp[CTRL_ATTR_MCAST_GRP_NAME][0].split(b"\0")[0].decode()
        out[gname] = struct.unpack("=I", grp[CTRL_ATTR_MCAST_GRP_ID][0][:4])[0]
    return out


def _group_ids(kernel: Kernel) -> tuple[int, int]:
    from mockkernel.net import net_state

    fam = net_state(kernel).netdev.family
    return fam.mcgrp_offset, fam.mcgrp_offset + 1  # mgmt, page-pool


def _ntfs(sock: socket.socket) -> list[tuple[int, int, int, int]]:
    """(nlmsg type, seq, cmd, ifindex) of every queued notification."""
    out = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return out
        for r in split(data):
            cmd = r.payload[0]
            attrs = parse_attrs(r.payload[4:])
            (ifindex,) = struct.unpack("=I", attrs[NETDEV_A_DEV_IFINDEX][0][:4])
            out.append((r.type, r.seq, cmd, ifindex))


def test_mgmt_members_hear_devices_come_and_go(mock_kernel: Kernel, nl: GenlClient) -> None:
    mgmt, _pp = _group_ids(mock_kernel)
    family = nl.family("netdev")
    with (
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16) as member,
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16) as other,
    ):
        member.setsockopt(SOL_NETLINK, ADD, mgmt)
        other.bind((0, 0))
        dev = NetDevice("mk7", 1, 1)
        with mock_kernel.tracer.capture() as events:
            ifindex = register_netdev(mock_kernel, dev)
            unregister_netdev(mock_kernel, dev)
        assert _ntfs(member) == [
            (family, 0, NETDEV_CMD_DEV_ADD_NTF, ifindex),
            (family, 0, NETDEV_CMD_DEV_DEL_NTF, ifindex),
        ]
        assert _ntfs(other) == []
        assert [e["cmd"] for e in events if e["event"] == "netdev.notify"] == [
            NETDEV_CMD_DEV_ADD_NTF,
            NETDEV_CMD_DEV_DEL_NTF,
        ]
        member.setsockopt(SOL_NETLINK, DROP, mgmt)
        dev2 = NetDevice("mk8", 1, 1)
        register_netdev(mock_kernel, dev2)
        unregister_netdev(mock_kernel, dev2)
        assert _ntfs(member) == []


def test_bind_groups_mask_joins_mgmt_too(mock_kernel: Kernel) -> None:
    mgmt, _pp = _group_ids(mock_kernel)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16) as member:
        member.bind((0, 1 << (mgmt - 1)))
        dev = NetDevice("mk9", 1, 1)
        ifindex = register_netdev(mock_kernel, dev)
        unregister_netdev(mock_kernel, dev)
        assert [(c, i) for _t, _s, c, i in _ntfs(member)] == [
            (NETDEV_CMD_DEV_ADD_NTF, ifindex),
            (NETDEV_CMD_DEV_DEL_NTF, ifindex),
        ]


def test_the_group_ids_are_what_nlctrl_reports(mock_kernel: Kernel, nl: GenlClient) -> None:
    mgmt, pp = _group_ids(mock_kernel)
    assert _mcast_groups(nl, "netdev") == {"mgmt": mgmt, "page-pool": pp}
