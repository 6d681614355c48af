"""Networking: netlink sockets, generic netlink, net devices and the ``netdev`` family.

The kernel's network state lives in one :class:`NetState` per kernel, made on first
use (:func:`net_state`): the netlink table, the generic netlink families (``nlctrl``
and ``netdev`` are built in) and the registered net devices (``lo`` is ifindex 1).
NIC drivers register a :class:`~mockkernel.net.netdev.NetDevice` with
:func:`register_netdev`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..uapi.linux.netlink import NETLINK_GENERIC
from .devmem_tcp import TcpTable
from .genetlink import GenlRegistry
from .netlink import NetlinkTable

if TYPE_CHECKING:
    from ..kernel import Kernel
    from .netdev import NetDevice, NetdevState

__all__ = ["NetState", "dev_get_by_name", "net_state", "register_netdev", "unregister_netdev"]


class NetState:
    """``struct net`` of the one namespace, and the global netlink/genl tables."""

    def __init__(self, kernel: Kernel) -> None:
        from .netdev import NetdevState

        self.kernel = kernel
        self.netlink = NetlinkTable(kernel)
        self.genl = GenlRegistry()
        self.netlink.inputs[NETLINK_GENERIC] = self.genl.rcv_msg
        self.netlink.unmodelled[NETLINK_GENERIC] = self.genl.unmodelled_groups
        self.netdev: NetdevState = NetdevState(kernel, self.genl)
        self.tcp = TcpTable(kernel)


def net_state(kernel: Kernel) -> NetState:
    """``kernel.net``, made on first use."""
    state = kernel.net
    if state is None:
        state = kernel.net = NetState(kernel)
    return state


def register_netdev(kernel: Kernel, dev: NetDevice) -> int:
    """``register_netdev``: give ``dev`` an ifindex and publish it; returns the ifindex."""
    return net_state(kernel).netdev.register(dev)


def unregister_netdev(kernel: Kernel, dev: NetDevice) -> None:
    """``unregister_netdev``: memory providers are uninstalled from its queues first."""
    net_state(kernel).netdev.unregister(dev)


def dev_get_by_name(kernel: Kernel, name: str) -> NetDevice | None:
    """``dev_get_by_name``: the registered net device called ``name``, if any."""
    for dev in net_state(kernel).netdev.devices.values():
        if dev.name == name:
            return dev
    return None
