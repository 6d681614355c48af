"""Probe: rtnetlink (``NETLINK_ROUTE``) on ``lo``, netlink protocols, and the netdev
family's page-pool / NAPI / qstats commands where ``lo`` shows them.

``RTM_GETLINK`` (dump, by index, by name, missing, neither; strict checking), the
``ifinfomsg`` header and the order of ``lo``'s attributes; ``RTM_GETADDR`` and
``RTM_GETROUTE`` dumps restricted to ``lo``'s IPv4 entries (header fields and attribute
order); rtnetlink's framing (``NLM_F_MULTI`` on each dump message, ``NLMSG_DONE``; a
message without ``rtgenmsg``; a type past ``RTM_MAX``); ``socket(AF_NETLINK, ...)`` of
protocols no kernel has; the netdev family's refusals (``page-pool-get``,
``page-pool-stats-get``, ``napi-get``, ``napi-set``, ``qstats-get``) and the lo-only
dumps.  Only ``lo`` is looked at: the guest's other devices differ from the mock's.
Values that depend on the machine (the MTU of ``lo`` is fixed by the kernel, its
statistics are not) are reduced to the attribute types.  Standard library only.
"""
import socket
import struct

from _probe import run_all

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 11, 12
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_ACK_TLVS, NLM_F_CAPPED = 0x300, 0x200, 0x100
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFLA_IFNAME, IFLA_MTU, IFLA_EXT_MASK, IFLA_TXQLEN, IFLA_OPERSTATE = 3, 4, 29, 13, 16
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_ADDRESS, IFLA_BROADCAST = 31, 32, 1, 2
IFLA_AF_SPEC = 26
IFA_LABEL = 3
RTA_OIF = 4
IFINFO = struct.Struct("=BxHiII")
IFADDR = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
LO = 1
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 3, 1, 2
CTRL_ATTR_MCAST_GROUPS = 7
NETDEV_CMD_PAGE_POOL_GET, NETDEV_CMD_PAGE_POOL_STATS_GET = 5, 9
NETDEV_CMD_NAPI_GET, NETDEV_CMD_QSTATS_GET, NETDEV_CMD_NAPI_SET = 11, 12, 14
A_PP_ID, A_PP_IFINDEX, A_PP_STATS_INFO = 1, 2, 1
A_NAPI_IFINDEX, A_NAPI_ID, A_NAPI_THREADED = 1, 2, 8
A_QSTATS_IFINDEX, A_QSTATS_SCOPE = 1, 4
ERR_NAMES = {1: "MSG", 2: "OFFS", 3: "COOKIE", 4: "POLICY", 5: "MISS_TYPE", 6: "MISS_NEST"}


def nla(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes((-n) % 4)


def nlmsg(mtype, flags, seq, payload):
    n = 16 + len(payload)
    return struct.pack("=IHHII", n, mtype, flags, seq, 0) + payload + bytes((-n) % 4)


def attr_types(data):
    out = []
    pos = 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        if n < 4:
            break
        out.append([t & 0x3FFF, n - 4] if t & NLA_F_NESTED == 0 else [t & 0x3FFF, "nested"])
        pos += (n + 3) & ~3
    return out


def attrs(data):
    out = {}
    pos = 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        if n < 4:
            break
        out.setdefault(t & 0x3FFF, data[pos + 4 : pos + n])
        pos += (n + 3) & ~3
    return out


def split(dgram):
    out = []
    pos = 0
    while pos + 16 <= len(dgram):
        n, t, f, seq, _pid = struct.unpack_from("=IHHII", dgram, pos)
        out.append((t, f, seq, dgram[pos + 16 : pos + n]))
        pos += (n + 3) & ~3
    return out


def sock(proto=0, strict=False):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    if strict:
        s.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    return s


def exchange(s, mtype, flags, payload):
    """Every message of the answer, up to the ack or NLMSG_DONE."""
    s.send(nlmsg(mtype, NLM_F_REQUEST | flags, 9, payload))
    out = []
    while True:
        for m in split(s.recv(1 << 16)):
            out.append(m)
            if m[0] in (NLMSG_ERROR, NLMSG_DONE) or not (flags & NLM_F_DUMP or m[1]):
                return out


def err(m, reqlen):
    t, f, _seq, p = m
    code = struct.unpack_from("=i", p)[0]
    out = {"type": t, "flags": f, "error": code}
    if f & NLM_F_ACK_TLVS:
        inner = 16 if f & NLM_F_CAPPED else reqlen
        if t == NLMSG_DONE:  # netlink_dump_done: the TLVs follow the errno
            inner = 0
        tl = attrs(p[4 + ((inner + 3) & ~3) :])
        out["tlvs"] = sorted(ERR_NAMES.get(k, k) for k in tl)
        if 1 in tl:
            out["msg"] = tl[1].split(b"\0")[0].decode()
    return out


def lo_up():
    import fcntl
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        if not flags & iff_up:
            fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))
        return {"lo_index": socket.if_nametoindex("lo")}


def link_msg(m):
    """An RTM_NEWLINK of lo; IFLA_AF_SPEC (per-family devconf) is left to link_af_spec."""
    t, f, _seq, p = m
    if t != RTM_NEWLINK:
        return {"type": t, "flags": f}
    family, itype, index, flags, change = IFINFO.unpack_from(p)
    a = attrs(p[IFINFO.size :])
    return {
        "type": t,
        "flags": f,
        "hdr": [family, itype, index, hex(flags), change],
        "attrs": [x for x in attr_types(p[IFINFO.size :]) if x[0] != IFLA_AF_SPEC],
        "name": a[IFLA_IFNAME].split(b"\0")[0].decode() if IFLA_IFNAME in a else None,
        "values": {k: a[v].hex() for k, v in (("mtu", IFLA_MTU), ("txqlen", IFLA_TXQLEN),
                   ("operstate", IFLA_OPERSTATE), ("txq", IFLA_NUM_TX_QUEUES),
                   ("rxq", IFLA_NUM_RX_QUEUES), ("address", IFLA_ADDRESS),
                   ("broadcast", IFLA_BROADCAST)) if v in a},
    }


def link_dump():
    with sock() as s:
        msgs = exchange(s, RTM_GETLINK, NLM_F_DUMP, IFINFO.pack(0, 0, 0, 0, 0))
        done = msgs[-1]
        lo = [link_msg(m) for m in msgs if m[0] == RTM_NEWLINK and IFINFO.unpack_from(m[3])[2] == LO]
        every_multi = all(m[1] & NLM_F_MULTI for m in msgs)
        return {"lo": lo, "all_multi": every_multi, "done": [done[0], done[1], done[3].hex()],
                "indexes_are_if_nameindex": [IFINFO.unpack_from(m[3])[2] for m in msgs[:-1]]
                == [i for i, _n in socket.if_nameindex()]}


def getlink(payload, strict=False, flags=0):
    def step():
        with sock(strict=strict) as s:
            msgs = exchange(s, RTM_GETLINK, flags, payload)
            out = []
            for m in msgs:
                if m[0] in (NLMSG_ERROR, NLMSG_DONE):
                    out.append(err(m, 16 + len(payload)))
                else:
                    out.append(link_msg(m))
            return out
    return step


def link_af_spec():
    """The families inside lo's IFLA_AF_SPEC."""
    with sock() as s:
        (m,) = exchange(s, RTM_GETLINK, 0, IFINFO.pack(0, 0, LO, 0, 0))
        spec = attrs(m[3][IFINFO.size :]).get(IFLA_AF_SPEC)
        return None if spec is None else [t for t, _n in attr_types(spec)]


def addr_dump(family=socket.AF_INET, strict=False):
    def step():
        with sock(strict=strict) as s:
            msgs = exchange(s, RTM_GETADDR, NLM_F_DUMP, IFADDR.pack(family, 0, 0, 0, 0))
            out = []
            for t, f, _seq, p in msgs[:-1]:
                fam, plen, fl, scope, index = IFADDR.unpack_from(p)
                if index == LO and fam == socket.AF_INET:
                    a = attrs(p[IFADDR.size :])
                    out.append({"type": t, "flags": f, "hdr": [fam, plen, fl, scope],
                                "attrs": attr_types(p[IFADDR.size :]),
                                "label": a[IFA_LABEL].split(b"\0")[0].decode(),
                                "local": socket.inet_ntoa(a[2]), "cacheinfo": a[6][:8].hex()})
            return {"lo": out, "done": [msgs[-1][0], msgs[-1][1]]}
    return step


def route_dump():
    with sock() as s:
        msgs = exchange(s, RTM_GETROUTE, NLM_F_DUMP,
                        RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0))
        out = []
        for t, f, _seq, p in msgs[:-1]:
            h = RTMSG.unpack_from(p)
            a = attrs(p[RTMSG.size :])
            if RTA_OIF in a and struct.unpack("=I", a[RTA_OIF])[0] == LO:
                out.append({"type": t, "flags": f, "hdr": list(h),
                            "attrs": attr_types(p[RTMSG.size :]),
                            "dst": socket.inet_ntoa(a[1]), "prefsrc": socket.inet_ntoa(a[7])})
        return {"lo": out, "done": [msgs[-1][0], msgs[-1][1]]}


def raw(mtype, flags, payload):
    def step():
        with sock() as s:
            msgs = exchange(s, mtype, flags, payload)
            return [err(m, 16 + len(payload)) if m[0] == NLMSG_ERROR else m[0] for m in msgs]
    return step


def protocol(proto):
    def step():
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto) as s:
            return s.proto
    return step


def netdev_id(s):
    payload = struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0) + nla(CTRL_ATTR_FAMILY_NAME, b"netdev\0")
    (m,) = exchange(s, GENL_ID_CTRL, 0, payload)
    a = attrs(m[3][4:])
    return struct.unpack("=H", a[CTRL_ATTR_FAMILY_ID])[0], a[CTRL_ATTR_MCAST_GROUPS]


def netdev(cmd, *nlas, flags=NLM_F_ACK):
    def step():
        with sock(16) as s:
            fid, _groups = netdev_id(s)
            payload = struct.pack("=BBH", cmd, 1, 0) + b"".join(nlas)
            msgs = exchange(s, fid, flags, payload)
            out = []
            for m in msgs:
                if m[0] == NLMSG_ERROR:
                    out.append(err(m, 16 + len(payload)))
                elif m[0] == NLMSG_DONE:
                    out.append({"done": err(m, 16)})
                else:
                    out.append({"cmd": m[3][0], "flags": m[1], "attrs": attr_types(m[3][4:])})
            return out
    return step


def page_pool_group_join():
    with sock(16) as s:
        _fid, groups = netdev_id(s)
        ids = {}
        pos = 0
        while pos + 4 <= len(groups):
            n, _t = struct.unpack_from("=HH", groups, pos)
            g = attrs(groups[pos + 4 : pos + n])
            ids[g[1].split(b"\0")[0].decode()] = struct.unpack("=I", g[2])[0]
            pos += (n + 3) & ~3
        s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, ids["page-pool"])
        return sorted(ids)


def nest(atype, *inner):
    return nla(atype | NLA_F_NESTED, b"".join(inner))


def u32(atype, v):
    return nla(atype, struct.pack("=I", v))


STEPS = [
    ("lo_up", lo_up),
    ("link_dump", link_dump),
    ("link_af_spec", link_af_spec),
    ("getlink_index", getlink(IFINFO.pack(0, 0, LO, 0, 0))),
    ("getlink_name", getlink(IFINFO.pack(0, 0, 0, 0, 0) + nla(IFLA_IFNAME, b"lo\0"))),
    ("getlink_name_ext_mask", getlink(IFINFO.pack(0, 0, 0, 0, 0) + nla(IFLA_IFNAME, b"lo\0")
                                      + u32(IFLA_EXT_MASK, 1))),
    ("getlink_missing_index", getlink(IFINFO.pack(0, 0, 999999, 0, 0))),
    ("getlink_missing_name", getlink(IFINFO.pack(0, 0, 0, 0, 0) + nla(IFLA_IFNAME, b"nosuch0\0"))),
    ("getlink_neither", getlink(IFINFO.pack(0, 0, 0, 0, 0))),
    ("getlink_strict_bad_header", getlink(IFINFO.pack(0, 0, LO, 1, 0), strict=True)),
    ("getlink_strict_bad_attr", getlink(IFINFO.pack(0, 0, LO, 0, 0) + u32(IFLA_MTU, 1500),
                                        strict=True)),
    ("linkdump_strict_index", getlink(IFINFO.pack(0, 0, LO, 0, 0), strict=True, flags=NLM_F_DUMP)),
    ("addr_dump", addr_dump()),
    ("addr_dump_unspec", addr_dump(socket.AF_UNSPEC)),
    ("addr_dump_strict", addr_dump(strict=True)),
    ("route_dump", route_dump),
    ("short_message_acked", raw(RTM_GETLINK, NLM_F_ACK, b"")),
    ("type_past_max", raw(200, NLM_F_ACK, bytes(16))),
    ("protocol_route", protocol(0)),
    ("protocol_generic", protocol(16)),
    ("protocol_1", protocol(1)),
    ("protocol_3", protocol(3)),
    ("protocol_31", protocol(31)),
    ("protocol_32", protocol(32)),
    ("page_pool_get_missing", netdev(NETDEV_CMD_PAGE_POOL_GET, nla(A_PP_ID, struct.pack("=I", 999999)))),
    ("page_pool_get_zero", netdev(NETDEV_CMD_PAGE_POOL_GET, nla(A_PP_ID, struct.pack("=I", 0)))),
    ("page_pool_get_none", netdev(NETDEV_CMD_PAGE_POOL_GET)),
    ("page_pool_stats_by_ifindex", netdev(NETDEV_CMD_PAGE_POOL_STATS_GET,
                                          nest(A_PP_STATS_INFO, u32(A_PP_IFINDEX, LO)))),
    ("page_pool_stats_no_id", netdev(NETDEV_CMD_PAGE_POOL_STATS_GET, nest(A_PP_STATS_INFO))),
    ("napi_get_missing", netdev(NETDEV_CMD_NAPI_GET, u32(A_NAPI_ID, 7))),
    ("napi_get_none", netdev(NETDEV_CMD_NAPI_GET)),
    ("napi_dump_lo", netdev(NETDEV_CMD_NAPI_GET, u32(A_NAPI_IFINDEX, LO), flags=NLM_F_DUMP)),
    ("napi_set_threaded_range", netdev(NETDEV_CMD_NAPI_SET, u32(A_NAPI_ID, 8192),
                                       u32(A_NAPI_THREADED, 3))),
    ("napi_set_missing", netdev(NETDEV_CMD_NAPI_SET, u32(A_NAPI_ID, 7))),
    ("qstats_do", netdev(NETDEV_CMD_QSTATS_GET)),
    ("qstats_dump_lo", netdev(NETDEV_CMD_QSTATS_GET, u32(A_QSTATS_IFINDEX, LO), flags=NLM_F_DUMP)),
    ("qstats_dump_missing", netdev(NETDEV_CMD_QSTATS_GET, u32(A_QSTATS_IFINDEX, 999999),
                                   flags=NLM_F_DUMP)),
    ("qstats_bad_scope", netdev(NETDEV_CMD_QSTATS_GET, u32(A_QSTATS_SCOPE, 2), flags=NLM_F_DUMP)),
    ("page_pool_group_join", page_pool_group_join),
]

if __name__ == "__main__":
    run_all(STEPS)
