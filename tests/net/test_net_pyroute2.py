"""pyroute2, unchanged, against the mock kernel: its generic netlink socket (a
``socket.socket`` subclass made with ``fileno=`` a dup of the mock socket's fd, driven by
asyncio datagram transports) on the ``netdev`` family, and ``IPRoute`` (rtnetlink) on
the mock's links and addresses -- one kernel, the same one ``socket.if_nameindex`` sees.

pyroute2 is imported at the top of this module, as a user's test module would: its
``socket.socket`` subclasses are defined before the fixture installs the redirection
(``sockets.socket_init`` makes their netlink instances mock).
"""

from __future__ import annotations

import importlib.util
import socket
from typing import Any

import pytest

from mockkernel import Kernel

if importlib.util.find_spec("pyroute2") is None:
    pytest.skip(
        "pyroute2 is not installed (it is in the 'test' extra: pip install -e '.[dev]')",
        allow_module_level=True,
    )

import pyroute2  # (bound before any redirection is installed)
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, genlmsg
from pyroute2.netlink.core import NoClose
from pyroute2.netlink.generic import GenericNetlinkSocket

from mockkernel.userspace.sockets import MockSocket

NETDEV_CMD_DEV_GET = 1
NETDEV_CMD_QUEUE_GET = 10


def _netdev_msg_class() -> Any:
    class NetdevMsg(genlmsg):  # type: ignore[misc]
        """The ``netdev`` family's dev and queue attribute sets (netdev.yaml)."""

        nla_map = (
            ("NETDEV_A_DEV_UNSPEC", "none"),
            ("NETDEV_A_DEV_IFINDEX", "uint32"),
            ("NETDEV_A_DEV_PAD", "none"),
            ("NETDEV_A_DEV_XDP_FEATURES", "uint64"),
            ("NETDEV_A_DEV_XDP_ZC_MAX_SEGS", "uint32"),
            ("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES", "uint64"),
            ("NETDEV_A_DEV_XSK_FEATURES", "uint64"),
        )

    class QueueMsg(genlmsg):  # type: ignore[misc]
        nla_map = (
            ("NETDEV_A_QUEUE_ID", "uint32"),
            ("NETDEV_A_QUEUE_IFINDEX", "uint32"),
            ("NETDEV_A_QUEUE_TYPE", "uint32"),
            ("NETDEV_A_QUEUE_NAPI_ID", "uint32"),
            ("NETDEV_A_QUEUE_DMABUF", "uint32"),
        )

    return NetdevMsg, QueueMsg


def test_pyroute2_was_imported_before_the_redirection() -> None:
    """(What the tests below rely on: pyroute2's socket class is a real one.)"""
    assert MockSocket not in NoClose.__mro__


def test_generic_netlink_socket_on_the_netdev_family(mock_kernel: Kernel) -> None:
    netdev_msg, _queue_msg = _netdev_msg_class()
    gs = GenericNetlinkSocket()
    try:
        gs.bind("netdev", netdev_msg)
        assert gs.prid >= 0x11 and {"mgmt", "page-pool"} <= set(gs.mcast_groups)
        msg = netdev_msg()
        msg["cmd"] = NETDEV_CMD_DEV_GET
        msg["version"] = 1
        devs = list(gs.nlm_request(msg, msg_type=gs.prid, msg_flags=NLM_F_REQUEST | NLM_F_DUMP))
        ifindexes = [m.get_attr("NETDEV_A_DEV_IFINDEX") for m in devs]
        assert ifindexes == [i for i, _name in socket.if_nameindex()]
    finally:
        gs.close()
    assert not mock_kernel.init_process.files


def test_iproute_lists_the_mock_kernels_links_and_addresses(mock_kernel: Kernel) -> None:
    with pyroute2.IPRoute() as ipr:
        links = ipr.get_links()
        assert [(m["index"], m.get("ifname")) for m in links] == socket.if_nameindex()
        lo, eth0 = links[0], links[1]
        assert lo.get("mtu") == 65536 and lo.get("address") == "00:00:00:00:00:00"
        assert eth0.get("mtu") == 1500 and eth0.get("broadcast") == "ff:ff:ff:ff:ff:ff"
        assert eth0.get("num_rx_queues") == 8
        (one,) = ipr.get_links(2)
        assert one.get("ifname") == "eth0"
        addrs = {(m.get("label"), m.get("address"), m["prefixlen"]) for m in ipr.get_addr()}
        assert addrs == {("lo", "127.0.0.1", 8), ("eth0", "192.0.2.1", 24)}
        main = [(m.get("dst"), m["dst_len"]) for m in ipr.get_routes(table=254)]
        assert main == [("192.0.2.0", 24)]
    assert not mock_kernel.init_process.files
