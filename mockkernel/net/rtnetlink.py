"""rtnetlink: ``NETLINK_ROUTE`` for the mock's net devices (``net/core/rtnetlink.c``,
``net/ipv4/devinet.c``, ``net/ipv4/fib_frontend.c`` of Linux 7.2).

What is modelled is what a program reads: ``RTM_GETLINK`` (dump, and get by index or
name), ``RTM_GETADDR`` dumps (each device's one IPv4 address: ``lo``'s 127.0.0.1/8,
a NIC's ``ipv4``/``ipv4_prefixlen``) and ``RTM_GETROUTE`` dumps (the routes those
addresses imply in the main and local tables), with rtnetlink's framing (each dump
message ``NLM_F_MULTI``), its strict-check rules (``NETLINK_GET_STRICT_CHK``) and its
notifications to ``RTNLGRP_LINK``, ``RTNLGRP_IPV4_IFADDR`` and ``RTNLGRP_IPV4_ROUTE``
as NICs register and go.  Every other message type (changing a link, an address or a
route; neighbours, rules, qdiscs, ...) is ``EOPNOTSUPP`` with an extended-ack message
saying it is not modelled.  There is no IPv6: an ``AF_INET6`` dump is empty.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from errno import EINVAL, ENODEV, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..trace import TracePoint
from ..uapi.linux.netlink import (
    NETLINK_ROUTE,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_MULTI,
    NLMSG_HDRLEN,
)
from .netlink import (
    AttrSet,
    Msg,
    NetlinkTable,
    Nla,
    NlaType,
    NlError,
    Policy,
    nla_put,
    nla_put_nested,
    nla_put_string,
    nla_put_u32,
    nlmsg_put,
    parse_attrs,
)

if TYPE_CHECKING:
    from .netdev import NetDevice, NetdevState

__all__ = ["Rtnl"]

trace_rtnetlink_not_modelled = TracePoint("rtnetlink.not_modelled", "type", "dump")
trace_rtnetlink_notify = TracePoint("rtnetlink.notify", "ifindex", "new", "sent")

# linux/rtnetlink.h
RTM_BASE = 16
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_MAX = 123  # RTM_NEWTUNNEL + 3 (__RTM_MAX - 1)
RTNLGRP_LINK = 1
RTNLGRP_IPV4_IFADDR = 5
RTNLGRP_IPV4_ROUTE = 7
RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
RTPROT_KERNEL = 2
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST = 1, 2, 3
RTA_DST, RTA_OIF, RTA_PREFSRC, RTA_TABLE = 1, 4, 7, 15
# linux/if_link.h
IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU = 1, 2, 3, 4
IFLA_QDISC, IFLA_STATS, IFLA_TXQLEN, IFLA_MAP = 6, 7, 13, 14
IFLA_OPERSTATE, IFLA_LINKMODE, IFLA_LINKINFO = 16, 17, 18
IFLA_STATS64, IFLA_GROUP, IFLA_EXT_MASK, IFLA_PROMISCUITY = 23, 27, 29, 30
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_CARRIER, IFLA_CARRIER_CHANGES = 31, 32, 33, 35
IFLA_MASTER, IFLA_PROTO_DOWN, IFLA_GSO_MAX_SEGS, IFLA_GSO_MAX_SIZE = 10, 39, 40, 41
IFLA_XDP, IFLA_TARGET_NETNSID = 43, 46
IFLA_CARRIER_UP_COUNT, IFLA_CARRIER_DOWN_COUNT = 47, 48
IFLA_MIN_MTU, IFLA_MAX_MTU, IFLA_ALT_IFNAME = 50, 51, 53
IFLA_GRO_MAX_SIZE, IFLA_TSO_MAX_SIZE, IFLA_TSO_MAX_SEGS, IFLA_ALLMULTI = 58, 59, 60, 61
IFLA_DEVLINK_PORT, IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE = 62, 63, 64
IFLA_DPLL_PIN, IFLA_MAX_PACING_OFFLOAD_HORIZON, IFLA_NETNS_IMMUTABLE = 65, 66, 67
IFLA_HEADROOM, IFLA_TAILROOM = 68, 69
IFLA_XDP_ATTACHED = 2
IF_OPER_UNKNOWN, IF_OPER_DOWN, IF_OPER_UP = 0, 2, 6
# linux/if.h, if_arp.h
IFF_UP, IFF_BROADCAST, IFF_LOOPBACK, IFF_RUNNING = 0x1, 0x2, 0x8, 0x40
IFF_MULTICAST, IFF_LOWER_UP = 0x1000, 0x10000
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
# linux/if_addr.h
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
IFA_CACHEINFO, IFA_FLAGS, IFA_TARGET_NETNSID = 6, 8, 10
IFA_F_PERMANENT = 0x80
INFINITY_LIFE_TIME = 0xFFFFFFFF
AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10

_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")

#: ``ifla_policy``, the attributes a get or a dump reads (liberal: the rest is ignored)
_IFLA_POLICY = Policy(
    IFLA_ALT_IFNAME,
    {
        IFLA_IFNAME: Nla(NlaType.STRING, len=15),
        IFLA_ALT_IFNAME: Nla(NlaType.STRING, len=127),
        IFLA_EXT_MASK: Nla(NlaType.U32),
        IFLA_TARGET_NETNSID: Nla(NlaType.S32),
        IFLA_MASTER: Nla(NlaType.U32),
        IFLA_LINKINFO: Nla(NlaType.NESTED),
    },
)
#: what ``rtnl_valid_getlink_req`` / ``rtnl_valid_dump_ifinfo_req`` accept when strict
_GETLINK_STRICT = frozenset({IFLA_IFNAME, IFLA_ALT_IFNAME, IFLA_EXT_MASK, IFLA_TARGET_NETNSID})
_DUMPLINK_STRICT = frozenset({IFLA_TARGET_NETNSID, IFLA_EXT_MASK, IFLA_MASTER, IFLA_LINKINFO})
_MSG_NAMES = MappingProxyType(
    {
        16: "RTM_NEWLINK",
        17: "RTM_DELLINK",
        19: "RTM_SETLINK",
        20: "RTM_NEWADDR",
        21: "RTM_DELADDR",
        24: "RTM_NEWROUTE",
        25: "RTM_DELROUTE",
    }
)

Handler = Callable[[Msg], None]


def _attr_types(data: bytes, pos: int) -> list[tuple[int, int]]:
    """(type, offset) of each attribute from ``pos`` on (``nla_for_each_attr``)."""
    out: list[tuple[int, int]] = []
    while len(data) - pos >= 4:
        n, atype = struct.unpack_from("=HH", data, pos)
        if n < 4 or n > len(data) - pos:
            break
        out.append((atype & 0x3FFF, pos))
        pos += (n + 3) & ~3
    return out


def _in4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


class Rtnl:
    """The ``NETLINK_ROUTE`` protocol of one kernel: its input and its notifications."""

    def __init__(self, table: NetlinkTable, netdev: NetdevState) -> None:
        self.table = table
        self.netdev = netdev
        #: (message type, dump?) -> handler (``rtnl_register``)
        self.handlers: dict[tuple[int, bool], Handler] = {
            (RTM_GETLINK, False): self._getlink,
            (RTM_GETLINK, True): self._dump_links,
            (RTM_GETADDR, True): self._dump_addrs,
            (RTM_GETROUTE, True): self._dump_routes,
            (RTM_NEWLINK, False): self._newlink,
            (RTM_SETLINK, False): self._newlink,
        }
        netdev.notifiers.append(self._netdev_event)

    # -- input ---------------------------------------------------------------------------------
    def rcv_msg(self, msg: Msg) -> bool | None:
        """``rtnetlink_rcv_msg``: True when a dump was queued."""
        mtype = msg.type
        if mtype > RTM_MAX:
            raise NlError(EOPNOTSUPP)
        if len(msg.data) < NLMSG_HDRLEN + 1:  # no struct rtgenmsg: ignored, acked as 0
            return None
        dump = (mtype - RTM_BASE) & 3 == 2 and msg.flags & NLM_F_DUMP != 0
        handler = self.handlers.get((mtype, dump))
        if handler is None:
            kernel = self.table.kernel
            name = _MSG_NAMES.get(mtype, f"rtnetlink message {mtype}")
            trace_rtnetlink_not_modelled(kernel.tracer, mtype, dump)
            raise NlError(EOPNOTSUPP, f"{name}{' dump' if dump else ''} is not modelled")
        try:
            handler(msg)
        except NlError as e:
            if not dump:
                raise
            # netlink_dump: the dump started; its error ends it in NLMSG_DONE
            msg.sock.queue_dump([], msg.seq, e)
        return dump

    def _devices(self) -> list[NetDevice]:
        return [d for _, d in sorted(self.netdev.devices.items())]

    def _queue_dump(self, msg: Msg, mtype: int, payloads: list[bytes]) -> None:
        msgs = [nlmsg_put(mtype, NLM_F_MULTI, msg.seq, msg.portid, p) for p in payloads]
        msg.sock.queue_dump(msgs, msg.seq)

    # -- links ---------------------------------------------------------------------------------
    def _link_attrs(self, msg: Msg, strict_types: frozenset[int], what: str) -> AttrSet:
        base = NLMSG_HDRLEN + _IFINFOMSG.size
        if msg.sock.strict_chk:  # every attribute present, also those ifla_policy lacks
            for atype, _offset in _attr_types(msg.data, base):
                if atype not in strict_types:  # NL_SET_ERR_MSG: no attribute named
                    raise NlError(EINVAL, f"Unsupported attribute in {what}")
        return parse_attrs(msg.data[base:], base, _IFLA_POLICY, strict=False)

    def _ifinfomsg(self, msg: Msg, what: str) -> tuple[int, int, int, int, int] | None:
        if len(msg.data) < NLMSG_HDRLEN + _IFINFOMSG.size:
            return None
        fields: tuple[int, int, int, int, int] = _IFINFOMSG.unpack_from(msg.data, NLMSG_HDRLEN)
        _family, itype, _index, flags, change = fields
        if msg.sock.strict_chk and (itype or flags or change or msg.data[NLMSG_HDRLEN + 1]):
            raise NlError(EINVAL, f"Invalid values in header for {what}")
        return fields

    def _getlink(self, msg: Msg) -> None:
        """``rtnl_getlink``: by ``ifi_index``, else by ``IFLA_IFNAME``/``IFLA_ALT_IFNAME``."""
        hdr = self._ifinfomsg(msg, "get link request")
        if hdr is None:
            raise NlError(EINVAL, "Invalid header for get link" if msg.sock.strict_chk else None)
        attrs = self._link_attrs(msg, _GETLINK_STRICT, "get link request")
        index = hdr[2]
        dev: NetDevice | None
        if index > 0:
            dev = self.netdev.devices.get(index)
        elif IFLA_IFNAME in attrs or IFLA_ALT_IFNAME in attrs:
            name = attrs.get(IFLA_IFNAME) or attrs.get(IFLA_ALT_IFNAME)
            dev = next((d for d in self._devices() if d.name == name), None)
        else:
            raise NlError(EINVAL)
        if dev is None:
            raise NlError(ENODEV)
        reply = nlmsg_put(RTM_NEWLINK, 0, msg.seq, msg.portid, self.fill_ifinfo(dev, 0))
        msg.sock.queue(reply)

    def _newlink(self, msg: Msg) -> None:
        """``rtnl_newlink``/``rtnl_setlink``: find the device as they do (``EINVAL``
        without a header, ``ENODEV`` for none -- so iproute2's probe for
        ``RTM_NEWLINK`` support sees netlink work and never falls back to ioctls);
        creating a link (``NLM_F_CREATE``) or changing one is not modelled."""
        base = NLMSG_HDRLEN + _IFINFOMSG.size
        if len(msg.data) < base:
            raise NlError(EINVAL)
        index = _IFINFOMSG.unpack_from(msg.data, NLMSG_HDRLEN)[2]
        attrs = parse_attrs(msg.data[base:], base, _IFLA_POLICY, strict=False)
        dev: NetDevice | None = None
        if index > 0:
            dev = self.netdev.devices.get(index)
        elif IFLA_IFNAME in attrs or IFLA_ALT_IFNAME in attrs:
            name = attrs.get(IFLA_IFNAME) or attrs.get(IFLA_ALT_IFNAME)
            dev = next((d for d in self._devices() if d.name == name), None)
        elif msg.type == RTM_SETLINK:
            raise NlError(EINVAL)
        what = "RTM_SETLINK" if msg.type == RTM_SETLINK else "RTM_NEWLINK"
        if dev is None:
            if msg.type == RTM_NEWLINK and msg.flags & NLM_F_CREATE:
                self._not_modelled(msg, f"{what} creating a link is not modelled")
            raise NlError(ENODEV)
        self._not_modelled(msg, f"{what} changing {dev.name} is not modelled")

    def _not_modelled(self, msg: Msg, text: str) -> None:
        trace_rtnetlink_not_modelled(self.table.kernel.tracer, msg.type, False)
        raise NlError(EOPNOTSUPP, text)

    def _dump_links(self, msg: Msg) -> None:
        """``rtnl_dump_ifinfo``: every device, in ifindex order."""
        if msg.sock.strict_chk:
            hdr = self._ifinfomsg(msg, "link dump request")
            if hdr is None:
                raise NlError(EINVAL, "Invalid header for link dump")
            if hdr[2]:
                raise NlError(EINVAL, "Filter by device index not supported for link dumps")
            self._link_attrs(msg, _DUMPLINK_STRICT, "link dump request")
        self._queue_dump(msg, RTM_NEWLINK, [self.fill_ifinfo(d, 0) for d in self._devices()])

    @staticmethod
    def link_flags(dev: NetDevice) -> int:
        """``dev_get_flags``: up, running and with carrier while the device runs."""
        flags = IFF_LOOPBACK if dev.loopback else IFF_BROADCAST | IFF_MULTICAST
        if dev.running:
            flags |= IFF_UP | IFF_RUNNING | IFF_LOWER_UP
        return flags

    def fill_ifinfo(self, dev: NetDevice, change: int) -> bytes:
        """``rtnl_fill_ifinfo``: the header and the attributes, in the kernel's order."""
        lo = dev.loopback
        out = bytearray(
            _IFINFOMSG.pack(
                AF_UNSPEC,
                ARPHRD_LOOPBACK if lo else ARPHRD_ETHER,
                dev.ifindex,
                self.link_flags(dev),
                change,
            )
        )

        def u8(atype: int, v: int) -> None:
            nla_put(out, atype, bytes([v]))

        def u16(atype: int, v: int) -> None:
            nla_put(out, atype, struct.pack("=H", v))

        nla_put_string(out, IFLA_IFNAME, dev.name)
        nla_put_u32(out, IFLA_TXQLEN, dev.tx_queue_len)
        oper = IF_OPER_DOWN if not dev.running else IF_OPER_UNKNOWN if lo else IF_OPER_UP
        u8(IFLA_OPERSTATE, oper)
        u8(IFLA_LINKMODE, 0)
        u8(IFLA_NETNS_IMMUTABLE, int(lo))
        nla_put_u32(out, IFLA_MTU, dev.mtu)
        nla_put_u32(out, IFLA_MIN_MTU, 0 if lo else 68)
        nla_put_u32(out, IFLA_MAX_MTU, 0 if lo else 9000)
        nla_put_u32(out, IFLA_GROUP, 0)
        nla_put_u32(out, IFLA_PROMISCUITY, 0)
        nla_put_u32(out, IFLA_ALLMULTI, 0)
        nla_put_u32(out, IFLA_NUM_TX_QUEUES, dev.num_tx_queues)
        nla_put_u32(out, IFLA_GSO_MAX_SEGS, 65535)
        for atype in (
            IFLA_GSO_MAX_SIZE,
            IFLA_GRO_MAX_SIZE,
            IFLA_GSO_IPV4_MAX_SIZE,
            IFLA_GRO_IPV4_MAX_SIZE,
        ):
            nla_put_u32(out, atype, 65536)
        nla_put_u32(out, IFLA_TSO_MAX_SIZE, 524280 if lo else 65536)
        nla_put_u32(out, IFLA_TSO_MAX_SEGS, 65535)
        nla_put_u32(out, IFLA_MAX_PACING_OFFLOAD_HORIZON, 0)
        nla_put_u32(out, IFLA_NUM_RX_QUEUES, dev.num_rx_queues)
        u8(IFLA_CARRIER, int(dev.running))
        nla_put_u32(out, IFLA_CARRIER_CHANGES, 0)
        nla_put_u32(out, IFLA_CARRIER_UP_COUNT, 0)
        nla_put_u32(out, IFLA_CARRIER_DOWN_COUNT, 0)
        u16(IFLA_HEADROOM, 0)
        u16(IFLA_TAILROOM, 0)
        u8(IFLA_PROTO_DOWN, 0)
        nla_put(out, IFLA_ADDRESS, dev.dev_addr)
        nla_put(out, IFLA_BROADCAST, bytes(6) if lo else b"\xff" * 6)
        nla_put(out, IFLA_STATS64, bytes(8 * 25))  # struct rtnl_link_stats64: no traffic
        nla_put(out, IFLA_STATS, bytes(4 * 24))
        xdp = bytearray()
        nla_put(xdp, IFLA_XDP_ATTACHED, b"\0")
        nla_put(out, IFLA_XDP, bytes(xdp))
        nla_put_string(out, IFLA_QDISC, "noqueue" if lo or dev.num_tx_queues == 1 else "mq")
        nla_put(out, IFLA_MAP, bytes(32))  # struct rtnl_link_ifmap
        nla_put_nested(out, IFLA_DEVLINK_PORT, b"")
        nla_put_nested(out, IFLA_DPLL_PIN, b"")
        return bytes(out)

    # -- addresses -----------------------------------------------------------------------------
    @staticmethod
    def ifaddr(dev: NetDevice) -> tuple[str, int] | None:
        """The device's IPv4 address and prefix length (``in_device``'s one ``ifa``)."""
        if dev.loopback:
            return "127.0.0.1", 8
        if dev.ipv4 is None:
            return None
        return dev.ipv4, dev.ipv4_prefixlen

    def fill_ifaddr(self, dev: NetDevice) -> bytes | None:
        """``inet_fill_ifaddr``."""
        a = self.ifaddr(dev)
        if a is None:
            return None
        addr, plen = a
        scope = RT_SCOPE_HOST if dev.loopback else RT_SCOPE_UNIVERSE
        out = bytearray(_IFADDRMSG.pack(AF_INET, plen, IFA_F_PERMANENT, scope, dev.ifindex))
        nla_put(out, IFA_ADDRESS, _in4(addr))
        nla_put(out, IFA_LOCAL, _in4(addr))
        if not dev.loopback:
            net = ipaddress.IPv4Network(f"{addr}/{plen}", strict=False)
            nla_put(out, IFA_BROADCAST, net.broadcast_address.packed)
        nla_put_string(out, IFA_LABEL, dev.name)
        nla_put_u32(out, IFA_FLAGS, IFA_F_PERMANENT)
        # struct ifa_cacheinfo: permanent (forever), created and updated at boot
        nla_put(
            out, IFA_CACHEINFO, struct.pack("=IIII", INFINITY_LIFE_TIME, INFINITY_LIFE_TIME, 0, 0)
        )
        return bytes(out)

    def _family(self, msg: Msg, hdrlen: int, what: str) -> int:
        """The request's family; strict checking wants the whole header (``what``)."""
        if msg.sock.strict_chk and len(msg.data) < NLMSG_HDRLEN + hdrlen:
            raise NlError(EINVAL, f"Invalid header for {what}")
        return msg.data[NLMSG_HDRLEN]

    def _dump_addrs(self, msg: Msg) -> None:
        """``inet_dump_ifaddr`` (``rtnl_dump_all`` for ``AF_UNSPEC``); ``ifa_index``
        filters when strict."""
        family = self._family(msg, _IFADDRMSG.size, "address dump request")
        index = 0
        if msg.sock.strict_chk:
            _f, plen, flags, scope, index = _IFADDRMSG.unpack_from(msg.data, NLMSG_HDRLEN)
            if plen or flags or scope:
                raise NlError(EINVAL, "Invalid values in header for address dump request")
        out: list[bytes] = []
        if family != AF_INET6:
            for dev in self._devices():
                filled = self.fill_ifaddr(dev)
                if filled is not None and (not index or index == dev.ifindex):
                    out.append(filled)
        self._queue_dump(msg, RTM_NEWADDR, out)

    # -- routes --------------------------------------------------------------------------------
    def routes(self, dev: NetDevice) -> list[tuple[int, bytes]]:
        """``fib_add_ifaddr``: the routes the device's address implies, as (table, rtmsg
        and attributes): the prefix in main (not for ``lo``: its prefix is local), the
        address and the subnet broadcast in local."""
        a = self.ifaddr(dev)
        if a is None:
            return []
        addr, plen = a
        net = ipaddress.IPv4Network(f"{addr}/{plen}", strict=False)
        src = _in4(addr)

        def route(table: int, dst: bytes, dlen: int, scope: int, rtype: int) -> bytes:
            out = bytearray(_RTMSG.pack(AF_INET, dlen, 0, 0, table, RTPROT_KERNEL, scope, rtype, 0))
            nla_put_u32(out, RTA_TABLE, table)
            nla_put(out, RTA_DST, dst)
            nla_put(out, RTA_PREFSRC, src)
            nla_put_u32(out, RTA_OIF, dev.ifindex)
            return bytes(out)

        net_addr = net.network_address.packed
        out: list[tuple[int, bytes]] = []
        if dev.loopback:
            out.append(
                (RT_TABLE_LOCAL, route(RT_TABLE_LOCAL, net_addr, plen, RT_SCOPE_HOST, RTN_LOCAL))
            )
        else:
            out.append(
                (RT_TABLE_MAIN, route(RT_TABLE_MAIN, net_addr, plen, RT_SCOPE_LINK, RTN_UNICAST))
            )
        out.append((RT_TABLE_LOCAL, route(RT_TABLE_LOCAL, src, 32, RT_SCOPE_HOST, RTN_LOCAL)))
        bcast = net.broadcast_address.packed
        out.append((RT_TABLE_LOCAL, route(RT_TABLE_LOCAL, bcast, 32, RT_SCOPE_LINK, RTN_BROADCAST)))
        return out

    def _dump_routes(self, msg: Msg) -> None:
        """``inet_dump_fib``: the main table, then the local one, each in address order."""
        family = self._family(msg, _RTMSG.size, "FIB dump request")
        if family == AF_INET6:
            self._queue_dump(msg, RTM_NEWROUTE, [])
            return
        every = [r for d in self._devices() for r in self.routes(d)]
        # within a table, the trie's order: by destination, then by prefix length
        every.sort(key=lambda r: (r[0], r[1][_RTMSG.size + 12 : _RTMSG.size + 16], r[1][1]))
        self._queue_dump(msg, RTM_NEWROUTE, [r for _, r in every])

    # -- notifications -------------------------------------------------------------------------
    def _netdev_event(self, dev: NetDevice, registered: bool) -> None:
        """``rtmsg_ifinfo``, ``rtmsg_ifa`` and ``rtmsg_fib`` as a device comes or goes:
        to ``RTNLGRP_LINK``, ``RTNLGRP_IPV4_IFADDR`` and ``RTNLGRP_IPV4_ROUTE``."""
        table = self.table
        listens = table.has_listeners
        if not (
            listens(NETLINK_ROUTE, RTNLGRP_LINK)
            or listens(NETLINK_ROUTE, RTNLGRP_IPV4_IFADDR)
            or listens(NETLINK_ROUTE, RTNLGRP_IPV4_ROUTE)
        ):
            return  # nobody to tell (every boot): no message is built
        sent = 0

        def notify(group: int, mtype: int, payload: bytes) -> None:
            nonlocal sent
            sent += table.broadcast(NETLINK_ROUTE, group, nlmsg_put(mtype, 0, 0, 0, payload))

        addr = self.fill_ifaddr(dev)
        if registered:
            notify(RTNLGRP_LINK, RTM_NEWLINK, self.fill_ifinfo(dev, 0xFFFFFFFF))
            if addr is not None:
                notify(RTNLGRP_IPV4_IFADDR, RTM_NEWADDR, addr)
            for _t, r in self.routes(dev):
                notify(RTNLGRP_IPV4_ROUTE, RTM_NEWROUTE, r)
        else:
            for _t, r in self.routes(dev):
                notify(RTNLGRP_IPV4_ROUTE, RTM_DELROUTE, r)
            if addr is not None:
                notify(RTNLGRP_IPV4_IFADDR, RTM_DELADDR, addr)
            notify(RTNLGRP_LINK, RTM_DELLINK, self.fill_ifinfo(dev, 0xFFFFFFFF))
        kernel = table.kernel
        if sent:
            trace_rtnetlink_notify(kernel.tracer, dev.ifindex, registered, sent)
