"""``/sys/class/net``: each registered net device's directory (``net/core/net-sysfs.c``).

::

    /sys/class/net/<name>  -> ../../devices/<parent>/net/<name>   (a NIC: its PCI device)
                           -> ../../devices/virtual/net/<name>    (lo, devices without one)
    <dir>/{ifindex,iflink,mtu,address,broadcast,addr_len,type,flags,operstate,carrier,
           tx_queue_len,dev_id}
    <dir>/queues/{rx-<n>,tx-<n>}/

The values are rtnetlink's (``mockkernel.net.rtnetlink``): the same devices, ifindexes
and addresses ``RTM_GETLINK``, ``socket.if_nameindex`` and the netdev family show.
``/sys/class/net`` and ``/sys/devices/virtual/net`` belong to the mock (the host's
devices are not listed there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..vfs import Vfs

if TYPE_CHECKING:
    from ..context import KernelContext
    from .netdev import NetDevice

__all__ = ["netdev_register_kobject", "netdev_unregister_kobject"]

_CLASS = "/sys/class/net"


def _dev_dir(dev: NetDevice) -> str:
    parent = dev.sysfs_parent or "/sys/devices/virtual"
    return f"{parent}/net/{dev.name}"


def _attrs(dev: NetDevice) -> dict[str, Callable[[], str]]:
    from .rtnetlink import ARPHRD_ETHER, ARPHRD_LOOPBACK, IFF_LOWER_UP, IFF_RUNNING, Rtnl

    def mac(b: bytes) -> str:
        return ":".join(f"{x:02x}" for x in b)

    def flags() -> str:  # dev->flags: without the operational RUNNING/LOWER_UP bits
        return f"{Rtnl.link_flags(dev) & ~(IFF_RUNNING | IFF_LOWER_UP):#x}"

    def operstate() -> str:
        if not dev.running:
            return "down"
        return "unknown" if dev.loopback else "up"

    return {
        "ifindex": lambda: str(dev.ifindex),
        "iflink": lambda: str(dev.ifindex),
        "mtu": lambda: str(dev.mtu),
        "address": lambda: mac(dev.dev_addr),
        "broadcast": lambda: mac(bytes(6) if dev.loopback else b"\xff" * 6),
        "addr_len": lambda: "6",
        "type": lambda: str(ARPHRD_LOOPBACK if dev.loopback else ARPHRD_ETHER),
        "flags": flags,
        "operstate": operstate,
        "carrier": lambda: str(int(dev.running)),
        "tx_queue_len": lambda: str(dev.tx_queue_len),
        "dev_id": lambda: "0x0",
    }


def _line(show: Callable[[], str]) -> Callable[[], str]:
    """A sysfs show: the value and a newline (``sysfs_emit(buf, "%...\\n")``)."""
    return lambda: show() + "\n"


def netdev_register_kobject(kernel: KernelContext, dev: NetDevice) -> None:
    """The device's directory, its attributes and queues, and its ``/sys/class/net`` link."""
    vfs = kernel.subsys(Vfs)
    vfs.mkdir(_CLASS, owned=True)
    vfs.mkdir("/sys/devices/virtual/net", owned=True)
    d = _dev_dir(dev)

    def fill() -> None:
        """The attributes and queue directories, made when the directory is first
        looked into: most kernels never are, and a device has a dozen of each."""
        for name, show in _attrs(dev).items():
            vfs.attr(f"{d}/{name}", _line(show))
        for i in range(dev.num_rx_queues):
            vfs.mkdir(f"{d}/queues/rx-{i}", owned=True)
        for i in range(dev.num_tx_queues):
            vfs.mkdir(f"{d}/queues/tx-{i}", owned=True)

    vfs.mkdir(d, owned=True, populate=fill)
    vfs.symlink("../.." + d.removeprefix("/sys"), f"{_CLASS}/{dev.name}")


def netdev_unregister_kobject(kernel: KernelContext, dev: NetDevice) -> None:
    """The link and the directory go."""
    vfs = kernel.subsys(Vfs)
    if vfs.peek(f"{_CLASS}/{dev.name}") is not None:
        vfs.unlink(f"{_CLASS}/{dev.name}")
    if vfs.peek(_dev_dir(dev)) is not None:
        vfs.unlink(_dev_dir(dev))
