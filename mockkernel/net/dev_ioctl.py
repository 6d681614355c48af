"""The interface ioctls on any socket (``net/core/dev_ioctl.c``, ``devinet_ioctl``).

``SIOCGIFINDEX``, ``SIOCGIFFLAGS``, ``SIOCGIFHWADDR``, ... name a network device by
``ifr_name`` (or, for ``SIOCGIFNAME``, by index): glibc's ``if_nametoindex`` and
``if_indextoname``, ``ifconfig``, iproute2's fallbacks and many C programs use them on
a plain ``AF_INET``/``AF_UNIX`` datagram socket.  They are the kernel's, whatever the
socket: a program sees the mock's devices -- never the host's -- and a device the mock
does not have is ``ENODEV`` (as Linux for a name it does not know).

What a reader of the device gets is answered from the device (``dev->flags``,
``dev->mtu``, ``dev->dev_addr``, its one IPv4 address); every change (``SIOCSIF*``,
``SIOCETHTOOL``, bonding/bridge/VLAN/private ioctls) is ``EPERM`` without
``CAP_NET_ADMIN`` and otherwise ``EOPNOTSUPP`` with a ``net.ioctl_not_modelled``
trace event: the mock cannot change a topology.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from errno import EADDRNOTAVAIL, EFAULT, EINVAL, ENODEV, EOPNOTSUPP, EPERM
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..errors import kerr
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_to_user

if TYPE_CHECKING:
    from ..context import KernelContext
    from ..fs import File, IoctlHandler
    from .netdev import NetDevice

__all__ = [
    "DEV_IOCTL_CMDS",
    "IFREQ_SIZE",
    "SOCK_DEV_IOCTLS",
    "capable_net_admin",
    "is_dev_ioctl",
    "sock_dev_ioctl",
]

IFNAMSIZ = 16
IFREQ_SIZE = 40  # struct ifreq on x86-64: the name and a 24-byte union
AF_INET = 2
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772

# uapi/linux/sockios.h
SIOCGIFNAME = 0x8910
SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFDSTADDR = 0x8917
SIOCGIFBRDADDR = 0x8919
SIOCGIFNETMASK = 0x891B
SIOCGIFMETRIC = 0x891D
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
SIOCGIFPFLAGS = 0x8935
SIOCGIFTXQLEN = 0x8942
SIOCGIFMAP = 0x8970
#: the device ioctls of ``sock_ioctl``'s range (``SIOCGIFNAME`` .. ``SIOCGIFMAP`` and
#: beyond, up to the protocol- and device-private numbers)
_FIRST, _PRIVATE = 0x8910, 0x89E0
#: every such number, for a front-end's one set lookup (``is_dev_ioctl`` as a set)
DEV_IOCTL_CMDS = frozenset(range(_FIRST, _PRIVATE))
_GETTERS = frozenset(
    (SIOCGIFNAME, SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFDSTADDR, SIOCGIFBRDADDR,
     SIOCGIFNETMASK, SIOCGIFMETRIC, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFPFLAGS,
     SIOCGIFTXQLEN, SIOCGIFMAP)
)  # fmt: skip
_IFCONF = struct.Struct("=i4xQ")  # ifc_len, ifc_buf


trace_net_ioctl_not_modelled = TracePoint(
    "net.ioctl_not_modelled", "cmd", "ifname", hex_keys=("cmd",)
)


def is_dev_ioctl(cmd: int) -> bool:
    """Is ``cmd`` one of the device ioctls every socket answers (not a private one)?"""
    return _FIRST <= cmd < _PRIVATE


def _devices(kernel: KernelContext) -> dict[int, NetDevice]:
    from . import net_state

    return net_state(kernel).netdev.devices


def _by_name(kernel: KernelContext, raw: bytes | bytearray) -> NetDevice:
    name = raw[:IFNAMSIZ].split(b"\0", 1)[0].decode(errors="replace")
    for dev in _devices(kernel).values():
        if dev.name == name:
            return dev
    raise kerr(ENODEV)


def _sockaddr_in(addr: str) -> bytes:
    return struct.pack("=HH4s8x", AF_INET, 0, ipaddress.IPv4Address(addr).packed)


def _not_modelled(kernel: KernelContext, cmd: int, name: str, admin: bool) -> OSError:
    if not admin:
        return kerr(EPERM)  # every change needs CAP_NET_ADMIN
    trace_net_ioctl_not_modelled(kernel.tracer, cmd, name)
    return kerr(EOPNOTSUPP, f"ioctl {cmd:#x} on {name or 'a device'} is not modelled")


_CAP_NET_ADMIN = 12


def capable_net_admin() -> bool:
    """``capable(CAP_NET_ADMIN)`` of the calling thread (its effective set): a mock
    socket's caller, or an in-process program's ioctl on a real socket."""
    try:
        with open("/proc/thread-self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def sock_file_ioctl(file: File, cmd: int, arg: int) -> int:
    """``sock_ioctl`` -> ``sock_do_ioctl`` -> ``dev_ioctl`` for a mock socket's file:
    the protocol has no ioctl of its own there (``-ENOIOCTLCMD``)."""
    return sock_dev_ioctl(file.kernel, cmd, arg, admin=capable_net_admin())


#: the ``ioctls`` table entries every mock socket's file operations share
SOCK_DEV_IOCTLS: Mapping[int, IoctlHandler] = MappingProxyType(
    dict.fromkeys(DEV_IOCTL_CMDS, sock_file_ioctl)
)


def sock_dev_ioctl(kernel: KernelContext, cmd: int, arg: int, *, admin: bool) -> int:
    """Serve device ioctl ``cmd`` whose argument is the user pointer ``arg`` (an
    ``ifreq``, or an ``ifconf`` for ``SIOCGIFCONF``); returns 0 or raises."""
    from .rtnetlink import Rtnl  # (rtnetlink is above the socket files that use this)

    if cmd == SIOCGIFCONF:
        return _ifconf(kernel, arg)
    if not arg:
        raise kerr(EFAULT)
    req = bytearray(copy_from_user(arg, IFREQ_SIZE))
    if cmd == SIOCGIFNAME:
        (index,) = struct.unpack_from("=i", req, IFNAMSIZ)
        dev = _devices(kernel).get(index)
        if dev is None:
            raise kerr(ENODEV)
        copy_to_user(arg, dev.name.encode().ljust(IFNAMSIZ, b"\0")[:IFNAMSIZ])
        return 0
    name = req[:IFNAMSIZ].split(b"\0", 1)[0].decode(errors="replace")
    if cmd not in _GETTERS:
        _by_name(kernel, req)  # an unknown device first: ENODEV
        raise _not_modelled(kernel, cmd, name, admin)
    dev = _by_name(kernel, req)
    out = bytearray(24)
    if cmd == SIOCGIFFLAGS:
        struct.pack_into("=H", out, 0, Rtnl.link_flags(dev) & 0xFFFF)
    elif cmd in (SIOCGIFMETRIC, SIOCGIFPFLAGS):
        pass  # 0
    elif cmd == SIOCGIFMTU:
        struct.pack_into("=i", out, 0, dev.mtu)
    elif cmd == SIOCGIFINDEX:
        struct.pack_into("=i", out, 0, dev.ifindex)
    elif cmd == SIOCGIFTXQLEN:
        struct.pack_into("=i", out, 0, dev.tx_queue_len)
    elif cmd == SIOCGIFHWADDR:
        kind = ARPHRD_LOOPBACK if dev.loopback else ARPHRD_ETHER
        struct.pack_into("=H", out, 0, kind)
        out[2 : 2 + len(dev.dev_addr[:14])] = dev.dev_addr[:14]
    elif cmd == SIOCGIFMAP:
        pass  # no I/O ports, memory windows or legacy IRQ to report
    else:  # the IPv4 address family (devinet_ioctl)
        got = Rtnl.ifaddr(dev)
        if got is None:
            raise kerr(EADDRNOTAVAIL)
        addr, plen = got
        net = ipaddress.IPv4Network(f"{addr}/{plen}", strict=False)
        if cmd == SIOCGIFADDR:
            out[:16] = _sockaddr_in(addr)
        elif cmd == SIOCGIFNETMASK:
            out[:16] = _sockaddr_in(str(net.netmask))
        elif cmd == SIOCGIFBRDADDR:  # as rtnetlink's IFA_BROADCAST: none on loopback
            out[:16] = _sockaddr_in("0.0.0.0" if dev.loopback else str(net.broadcast_address))
        else:  # SIOCGIFDSTADDR: ifa_address, the local one (no point-to-point peer)
            out[:16] = _sockaddr_in(addr)
    copy_to_user(arg + IFNAMSIZ, bytes(out))
    return 0


def _ifconf(kernel: KernelContext, arg: int) -> int:
    """``SIOCGIFCONF``: an ``ifreq`` (name, IPv4 address) per device with an address;
    with a NULL buffer only the length needed.  A buffer too small gets what fits."""
    from .rtnetlink import Rtnl

    if not arg:
        raise kerr(EFAULT)
    length, buf = _IFCONF.unpack(copy_from_user(arg, _IFCONF.size))
    entries = []
    for _index, dev in sorted(_devices(kernel).items()):
        got = Rtnl.ifaddr(dev)
        if got is not None:
            name = dev.name.encode().ljust(IFNAMSIZ, b"\0")[:IFNAMSIZ]
            entries.append(name + _sockaddr_in(got[0]).ljust(24, b"\0"))
    if not buf:
        copy_to_user(arg, struct.pack("=i", IFREQ_SIZE * len(entries)))
        return 0
    if length < 0:
        raise kerr(EINVAL)
    fit = entries[: length // IFREQ_SIZE]
    if fit:
        copy_to_user(buf, b"".join(fit))
    copy_to_user(arg, struct.pack("=i", IFREQ_SIZE * len(fit)))
    return 0
