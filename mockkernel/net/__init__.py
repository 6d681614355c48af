"""Networking: netlink sockets, generic netlink, net devices and the ``netdev`` family.

The kernel's network state lives in one :class:`NetState` per kernel, made on first
use (:func:`net_state`): the netlink table, the generic netlink families (``nlctrl``
and ``netdev`` are built in) and the registered net devices (``lo`` is ifindex 1).
NIC drivers register a :class:`~mockkernel.net.netdev.NetDevice` with
:func:`register_netdev`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..context import Subsystem
from ..uapi.linux.netlink import NETLINK_GENERIC, NETLINK_ROUTE
from .devmem_tcp import TcpTable
from .genetlink import GenlRegistry
from .netlink import NetlinkTable
from .rtnetlink import Rtnl

if TYPE_CHECKING:
    from ..context import KernelContext
    from ..process import TaskContext
    from .netdev import DevmemBinding, NetDevice, NetdevState

__all__ = [
    "NetState",
    "dev_get_by_name",
    "net_devmem_lookup_dmabuf",
    "net_state",
    "register_netdev",
    "unregister_netdev",
]


class NetState(Subsystem):
    """``struct net`` of the one namespace, and the global netlink/genl tables: the
    network subsystem of one kernel (``kernel.subsys(NetState)``)."""

    name = "net"

    def __init__(self, kernel: TaskContext) -> None:
        from .netdev import NetdevState

        super().__init__(kernel)
        self.netlink = NetlinkTable(kernel)
        self.genl = GenlRegistry()
        self.netdev: NetdevState = NetdevState(kernel, self.genl)
        self.netdev.netlink = self.netlink
        self.rtnl = Rtnl(self.netlink, self.netdev)
        # the netlink families of this kernel, one line each (netlink_kernel_create)
        self.netlink.register_protocol(NETLINK_ROUTE, self.rtnl.rcv_msg)
        self.netlink.register_protocol(NETLINK_GENERIC, self.genl.rcv_msg)
        self.netlink.unmodelled_groups[NETLINK_GENERIC] = self.genl.unmodelled_groups
        self.tcp = TcpTable(kernel)


def net_state(kernel: KernelContext) -> NetState:
    """The kernel's network state, made on first use."""
    return kernel.subsys(NetState)


def register_netdev(kernel: KernelContext, dev: NetDevice) -> int:
    """``register_netdev``: give ``dev`` an ifindex and publish it; returns the ifindex."""
    return net_state(kernel).netdev.register(dev)


def unregister_netdev(kernel: KernelContext, dev: NetDevice) -> None:
    """``unregister_netdev``: memory providers are uninstalled from its queues first."""
    net_state(kernel).netdev.unregister(dev)


def net_devmem_lookup_dmabuf(kernel: KernelContext, binding_id: int) -> DevmemBinding | None:
    """``net_devmem_lookup_dmabuf``: the devmem binding with this id -- still bound, or
    unbound and waiting for its niovs to come back -- else ``None``.  Called by a NIC
    driver returning the niovs of ``SO_DEVMEM_DONTNEED`` fragments to their binding."""
    return net_state(kernel).netdev.lookup(binding_id)


def dev_get_by_name(kernel: KernelContext, name: str) -> NetDevice | None:
    """``dev_get_by_name``: the registered net device called ``name``, if any."""
    for dev in net_state(kernel).netdev.devices.values():
        if dev.name == name:
            return dev
    return None
