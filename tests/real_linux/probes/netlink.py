"""Probe: generic netlink (nlctrl and the netdev family) as a program sees it.

nlctrl ``CTRL_CMD_GETFAMILY`` (by name, by id, unknown, malformed, dump), the framing of
``netlink_rcv_skb``/``netlink_ack`` (short and overlong messages, unknown types,
``NLM_F_REQUEST``/``NLM_F_ACK``, two messages in one datagram, ``NETLINK_EXT_ACK`` and
``NETLINK_CAP_ACK``: the embedded request and the ``NLMSGERR_ATTR_*`` TLVs), the
``netdev`` family on ``lo`` (``DEV_GET``, ``QUEUE_GET``, ``BIND_RX``/``BIND_TX`` with a
udmabuf dma-buf), socket options, ``getsockname`` and ``bind``.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or {"step": NAME,
"errno": "ENAME"}.  Only ``lo`` (ifindex 1) is looked at: the other net devices differ
between the guest and the mock.  No dynamic family ids, group ids or port ids: only
relations (nlctrl's id 0x10 and its group 0x10 are fixed by the ABI).  Standard library
only; /dev/udmabuf needs root on real Linux.
"""
import errno
import os
import socket
import struct

from _probe import Res, make_dmabuf, run_all

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_PKTINFO = 3
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
MSG_DONTWAIT = socket.MSG_DONTWAIT

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLA_F_NESTED = 0x8000

GENL_ID_CTRL = 0x10
GENL_START_ALLOC = 0x13
CTRL_CMD_NEWFAMILY, CTRL_CMD_GETFAMILY, CTRL_CMD_GETPOLICY = 1, 3, 10
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
CTRL_NAMES = {1: "FAMILY_ID", 2: "FAMILY_NAME", 3: "VERSION", 4: "HDRSIZE", 5: "MAXATTR",
              6: "OPS", 7: "MCAST_GROUPS", 8: "POLICY", 9: "OP_POLICY", 10: "OP"}
ERR_NAMES = {1: "MSG", 2: "OFFS", 3: "COOKIE", 4: "POLICY", 5: "MISS_TYPE", 6: "MISS_NEST"}

NETDEV_CMD_DEV_GET, NETDEV_CMD_QUEUE_GET = 1, 10
NETDEV_CMD_BIND_RX, NETDEV_CMD_BIND_TX = 13, 15
A_DEV_IFINDEX = 1
DEV_NAMES = {1: "IFINDEX", 2: "PAD", 3: "XDP_FEATURES", 4: "XDP_ZC_MAX_SEGS",
             5: "XDP_RX_METADATA_FEATURES", 6: "XSK_FEATURES"}
A_QUEUE_ID, A_QUEUE_IFINDEX, A_QUEUE_TYPE = 1, 2, 3
QUEUE_NAMES = {1: "ID", 2: "IFINDEX", 3: "TYPE", 4: "NAPI_ID", 5: "DMABUF", 6: "IO_URING",
               7: "XSK", 8: "LEASE"}
A_DMABUF_IFINDEX, A_DMABUF_QUEUES, A_DMABUF_FD, A_DMABUF_ID = 1, 2, 3, 4
QTYPE_RX, QTYPE_TX = 0, 1

LO = 1
NO_IFINDEX = 999999
NO_FAMILY = 1000


# --- building ------------------------------------------------------------------------


def nla(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes((-n) % 4)


def nla_u32(atype, v):
    return nla(atype, struct.pack("=I", v))


def nla_str(atype, s):
    return nla(atype, s.encode() + b"\0")


def nest(atype, *inner):
    return nla(atype | NLA_F_NESTED, b"".join(inner))


def nlmsg(mtype, flags, seq, payload, length=None):
    n = 16 + len(payload) if length is None else length
    return struct.pack("=IHHII", n, mtype, flags, seq, 0) + payload


def genl(family, cmd, flags, seq, *attrs, version=1):
    body = struct.pack("=BBH", cmd, version, 0) + b"".join(attrs)
    m = nlmsg(family, flags, seq, body)
    return m + bytes((-len(m)) % 4)


def getfamily_name(name, flags=NLM_F_REQUEST | NLM_F_ACK, seq=1):
    return genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, flags, seq, nla_str(CTRL_ATTR_FAMILY_NAME, name))


# --- sockets -------------------------------------------------------------------------


def nl_sock(ext_ack=True, cap_ack=False):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    s.bind((0, 0))
    if ext_ack:
        s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    if cap_ack:
        s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    return s


def drain(s):
    """Every datagram queued now (the kernel answers within sendmsg / recvmsg)."""
    out = []
    while True:
        try:
            out.append(s.recv(65536, MSG_DONTWAIT))
        except BlockingIOError:
            return out


def family_id(s, name):
    s.send(getfamily_name(name, NLM_F_REQUEST, 99))
    msgs = split(drain(s)[0])
    return struct.unpack("=H", attrs_of(msgs[0][4][4:])[CTRL_ATTR_FAMILY_ID][0])[0]


# --- parsing -------------------------------------------------------------------------


def split(dgram):
    """(len, type, flags, seq, payload) of each message of a datagram."""
    out, pos = [], 0
    while pos + 16 <= len(dgram):
        n, t, f, seq, pid = struct.unpack_from("=IHHII", dgram, pos)
        out.append((n, t, f, seq, dgram[pos + 16:pos + n], pid))
        if n < 16:
            break
        pos += (n + 3) & ~3
    return out


def attr_list(data):
    """[(type with flags, payload)] in order."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        if n < 4:
            break
        out.append((t, data[pos + 4:pos + n]))
        pos += (n + 3) & ~3
    return out


def attrs_of(data):
    d = {}
    for t, p in attr_list(data):
        d.setdefault(t & 0x3FFF, []).append(p)
    return d


def num(p):
    if len(p) == 1:
        return p[0]
    if len(p) == 2:
        return struct.unpack("=H", p)[0]
    if len(p) == 4:
        return struct.unpack("=I", p)[0]
    if len(p) == 8:
        return struct.unpack("=Q", p)[0]
    return "<%d bytes>" % len(p)


def ename(code):
    return errno.errorcode.get(-code, str(code)) if code else 0


def err_tlvs(data):
    out = {}
    for t, p in attr_list(data):
        name = ERR_NAMES.get(t & 0x3FFF, str(t))
        if name == "MSG":
            out[name] = p.split(b"\0", 1)[0].decode()
        elif name == "POLICY":
            out[name] = {str(pt & 0x3FFF): num(pp) for pt, pp in attr_list(p)}
        else:
            out[name] = num(p)
    return out


def describe(m, port, fam=None):
    """One message as a dict of deterministic facts."""
    n, t, f, seq, payload, pid = m
    d = {"flags": hex(f), "seq": seq, "pid_is_port": pid == port}
    if t == NLMSG_ERROR:
        d["type"] = "ERROR"
        code, = struct.unpack_from("=i", payload)
        inner_len, inner_type, inner_flags, inner_seq = struct.unpack_from("=IHHI", payload, 4)
        d.update(error=ename(code), inner_len=inner_len, inner_flags=hex(inner_flags),
                 inner_seq=inner_seq, len=n)
        embedded = 16 if f & NLM_F_CAPPED else inner_len
        d["embedded"] = min(embedded, len(payload) - 4)
        if f & NLM_F_ACK_TLVS:
            d["tlvs"] = err_tlvs(payload[4 + ((embedded + 3) & ~3):])
    elif t == NLMSG_DONE:
        d["type"] = "DONE"
        d["payload"] = list(struct.unpack_from("=i", payload)) if len(payload) >= 4 else len(payload)
        d["tlvs"] = err_tlvs(payload[4:]) if len(payload) > 4 else None
    else:
        d["type"] = "nlctrl" if t == GENL_ID_CTRL else ("family" if t == fam else "other")
        cmd, ver, _ = struct.unpack_from("=BBH", payload)
        d.update(cmd=cmd, version=ver)
    return d


def exchange(s, data, fam=None):
    """Send data; every datagram that comes back, each a list of described messages."""
    sent = s.send(data)
    port = s.getsockname()[0]
    return {"sent": sent, "dgrams": [[describe(m, port, fam) for m in split(d)]
                                     for d in drain(s)]}


def ctrl_info(payload):
    """A CTRL_CMD_NEWFAMILY reply's attributes."""
    out = {"order": [CTRL_NAMES.get(t & 0x3FFF, t) for t, _ in attr_list(payload[4:])]}
    for t, p in attr_list(payload[4:]):
        name = CTRL_NAMES.get(t & 0x3FFF, str(t))
        if name == "FAMILY_NAME":
            out[name] = p.split(b"\0", 1)[0].decode()
            out["name_len"] = len(p)
        elif name == "FAMILY_ID":
            fid = num(p)
            out[name] = fid if fid == GENL_ID_CTRL else (
                "dynamic" if fid >= GENL_START_ALLOC else fid)
        elif name == "OPS":
            out[name] = [[i & 0x3FFF, {str(k): num(v[0]) for k, v in sorted(attrs_of(op).items())}]
                         for i, op in attr_list(p)]
            out["ops_nested_flag"] = sorted({bool(i & NLA_F_NESTED) for i, _ in attr_list(p)})
        elif name == "MCAST_GROUPS":
            grps = []
            for i, g in attr_list(p):
                a = attrs_of(g)
                gid = num(a[2][0])
                grps.append([i & 0x3FFF, a[1][0].split(b"\0", 1)[0].decode(),
                             gid if gid == GENL_ID_CTRL else "dynamic"])
            out[name] = grps
        else:
            out[name] = num(p)
        out.setdefault("nested_flags", {})[name] = bool(t & NLA_F_NESTED)
    return out


# --- nlctrl ----------------------------------------------------------------------------


def getfamily(name, part):
    """GETFAMILY by name: the reply without its ops list ("info"), or the ops list alone."""
    def step():
        with nl_sock() as s:
            s.send(getfamily_name(name))
            dg = drain(s)
            msgs = [m for d in dg for m in split(d)]
            port = s.getsockname()[0]
            info = ctrl_info(msgs[0][4])
            ops = info.pop("OPS", None)
            if part == "ops":
                return ops
            return {"dgrams": len(dg), "msgs": [describe(m, port) for m in msgs], "info": info}
    return step


def lo_up():
    """Bring lo up when it is down (the guest's lo starts down; elsewhere it is up already)."""
    import fcntl
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        if not flags & iff_up:
            fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        return {"up": bool(flags & iff_up), "lo_index": socket.if_nametoindex("lo")}


def getfamily_netdev_by_id():
    with nl_sock() as s:
        fid = family_id(s, "netdev")
        s.send(genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST, 2,
                    struct.pack("=HHH", 6, CTRL_ATTR_FAMILY_ID, fid) + b"\0\0"))
        msgs = [m for d in drain(s) for m in split(d)]
        return {"name": ctrl_info(msgs[0][4]).get("FAMILY_NAME"), "n": len(msgs)}


def getfamily_raw(*attrs, flags=NLM_F_REQUEST | NLM_F_ACK, cmd=CTRL_CMD_GETFAMILY, version=1,
                  ext_ack=True):
    def step():
        with nl_sock(ext_ack) as s:
            r = exchange(s, genl(GENL_ID_CTRL, cmd, flags, 5, *attrs, version=version))
            for d in r["dgrams"]:
                for m in d:
                    m.pop("cmd", None) if m["type"] == "ERROR" else None
            return r
    return step


def getfamily_raw_bytes(data):
    """GETFAMILY with data as the attribute area (malformed attributes)."""
    def step():
        with nl_sock() as s:
            return exchange(s, nlmsg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 6,
                                     struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0) + data))
    return step


def getfamily_name_and_id(fid_of, name):
    def step():
        with nl_sock() as s:
            fid = GENL_ID_CTRL if fid_of == "nlctrl" else family_id(s, fid_of)
            s.send(genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST | NLM_F_ACK, 3,
                        struct.pack("=HHH", 6, CTRL_ATTR_FAMILY_ID, fid) + b"\0\0",
                        nla_str(CTRL_ATTR_FAMILY_NAME, name)))
            msgs = [m for d in drain(s) for m in split(d)]
            port = s.getsockname()[0]
            out = [describe(m, port) for m in msgs]
            if msgs and msgs[0][1] == GENL_ID_CTRL:
                out[0]["name"] = ctrl_info(msgs[0][4]).get("FAMILY_NAME")
            return out
    return step


def dump_families(flags):
    def step():
        with nl_sock() as s:
            s.send(genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, flags, 7))
            msgs = [m for d in drain(s) for m in split(d)]
            port = s.getsockname()[0]
            names = [ctrl_info(m[4]).get("FAMILY_NAME") for m in msgs if m[1] == GENL_ID_CTRL]
            return {"more_than_one": len(names) > 1, "has_nlctrl": "nlctrl" in names,
                    "has_netdev": "netdev" in names, "nlctrl_first": names[:1] == ["nlctrl"],
                    "flags": sorted({hex(m[2]) for m in msgs if m[1] == GENL_ID_CTRL}),
                    "cmds": sorted({m[4][0] for m in msgs if m[1] == GENL_ID_CTRL}),
                    "last": describe(msgs[-1], port),
                    "types_after_done": [m[1] for m in msgs[msgs.index(msgs[-1]) + 1:]]}
    return step


# --- framing ---------------------------------------------------------------------------


def framing(build, ext_ack=True, cap_ack=False):
    def step():
        with nl_sock(ext_ack, cap_ack) as s:
            return exchange(s, build())
    return step


def req_family(name, flags, seq):
    return getfamily_name(name, flags, seq)


def two_messages(first, second):
    def step():
        with nl_sock() as s:
            r = exchange(s, req_family(first, NLM_F_REQUEST | NLM_F_ACK, 1)
                         + req_family(second, NLM_F_REQUEST | NLM_F_ACK, 2))
            return r
    return step


def unaligned_then_second():
    # the first message's nlmsg_len is not a multiple of 4: the next starts aligned
    m1 = nlmsg(NO_FAMILY, NLM_F_REQUEST | NLM_F_ACK, 1, b"\x03\x01\x00\x00\x05\x00\x00\x00\x61",
               length=25)
    m1 += bytes((-len(m1)) % 4)
    return m1 + req_family("nlctrl", NLM_F_REQUEST | NLM_F_ACK, 2)


def error_variants(ext_ack, cap_ack):
    """A GETFAMILY whose name attribute is bad, so the error has an attribute offset."""
    def step():
        with nl_sock(ext_ack, cap_ack) as s:
            r = exchange(s, genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST | NLM_F_ACK, 4,
                                 nla_str(CTRL_ATTR_FAMILY_NAME, "nosuchfamily")))
            bad = exchange(s, genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST, 5,
                                   struct.pack("=HH", 5, CTRL_ATTR_FAMILY_ID) + b"\x10\0\0\0"))
            ok = exchange(s, getfamily_name("nlctrl", NLM_F_REQUEST | NLM_F_ACK, 6))
            return {"unknown": r, "short_id": bad, "ok_ack": ok["dgrams"][-1]}
    return step


# --- netdev ------------------------------------------------------------------------------


def netdev_attrs(payload, names):
    out = {}
    for t, p in attr_list(payload[4:]):
        name = names.get(t & 0x3FFF, str(t))
        out[name] = [num(p), len(p)]
    return out


def netdev(cmd, *attrs, flags=NLM_F_REQUEST | NLM_F_ACK, names=DEV_NAMES, keep=None):
    """One netdev request; replies described, with their attributes decoded."""
    def step():
        with nl_sock() as s:
            fid = family_id(s, "netdev")
            s.send(genl(fid, cmd, flags, 8, *attrs))
            port = s.getsockname()[0]
            out = []
            for d in drain(s):
                for m in split(d):
                    desc = describe(m, port, fid)
                    if m[1] == fid:
                        desc["attrs"] = netdev_attrs(m[4], names)
                        if keep is not None and not keep(desc["attrs"]):
                            continue
                    out.append(desc)
            return out
    return step


def is_lo(a):
    return a.get("IFINDEX", [None])[0] == LO


def queue(qid, qtype, ifindex=LO):
    return (nla_u32(A_QUEUE_ID, qid), nla_u32(A_QUEUE_IFINDEX, ifindex),
            nla_u32(A_QUEUE_TYPE, qtype))


def with_udmabuf(cmd, build):
    """A netdev request carrying a fresh udmabuf dma-buf's fd."""
    def step():
        with Res() as r, nl_sock() as s:
            memfd, buf = make_dmabuf(r)
            fid = family_id(s, "netdev")
            return exchange(s, genl(fid, cmd, NLM_F_REQUEST | NLM_F_ACK, 9, *build(buf)), fid)
    return step


def rx_queue(qid, qtype=QTYPE_RX):
    return nest(A_DMABUF_QUEUES, nla_u32(A_QUEUE_ID, qid), nla_u32(A_QUEUE_TYPE, qtype))


# --- socket options, addresses ----------------------------------------------------------


def sockopts():
    with nl_sock(ext_ack=False) as s:
        out = {}
        for name, opt in (("EXT_ACK", NETLINK_EXT_ACK), ("CAP_ACK", NETLINK_CAP_ACK),
                          ("GET_STRICT_CHK", NETLINK_GET_STRICT_CHK)):
            before = s.getsockopt(SOL_NETLINK, opt)
            s.setsockopt(SOL_NETLINK, opt, 5)
            on = s.getsockopt(SOL_NETLINK, opt)
            s.setsockopt(SOL_NETLINK, opt, 0)
            out[name] = [before, on, s.getsockopt(SOL_NETLINK, opt)]
        return out


def sockopt_call(fn):
    def step():
        with nl_sock(ext_ack=False) as s:
            return fn(s)
    return step


def so_bufs(s):
    out = {}
    for name, opt in (("RCVBUF", socket.SO_RCVBUF), ("SNDBUF", socket.SO_SNDBUF)):
        s.setsockopt(socket.SOL_SOCKET, opt, 65536)
        out[name] = s.getsockopt(socket.SOL_SOCKET, opt)
    out["type"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
    out["protocol"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    out["domain"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
    return out


def getsockname_steps():
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as s:
        before = s.getsockname()
        s.bind((0, 0))
        port, groups = s.getsockname()
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as s2:
            s2.bind((0, 0))
            port2 = s2.getsockname()[0]
        return {"before": list(before), "port_is_pid": port == os.getpid(), "groups": groups,
                "second_port_differs": port2 != port, "second_port_is_pid": port2 == os.getpid(),
                "peer": list(s.getpeername())}


def autobind_on_send():
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as s:
        s.send(getfamily_name("nlctrl"))
        drain(s)
        return {"port_is_pid": s.getsockname()[0] == os.getpid()}


def bind_groups(groups):
    def step():
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as s:
            s.bind((0, groups))
            return {"groups": s.getsockname()[1]}
    return step


def add_membership(group):
    def step():
        with nl_sock() as s:
            gid = group
            if group == "netdev-mgmt":
                s.send(getfamily_name("netdev", NLM_F_REQUEST, 1))
                info = ctrl_info(split(drain(s)[0])[0][4])
                s.send(getfamily_name("netdev", NLM_F_REQUEST, 1))
                raw = attrs_of(split(drain(s)[0])[0][4][4:])
                grps = {attrs_of(g)[1][0].split(b"\0")[0].decode(): num(attrs_of(g)[2][0])
                        for _, g in attr_list(raw[7][0])}
                gid = grps["mgmt"]
                del info
            s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, gid)
            after = s.getsockname()[1]
            s.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, gid)
            return {"groups_after_add_is_zero": after == 0, "dropped": s.getsockname()[1]}
    return step


def sendto_port(port_of):
    def step():
        with nl_sock() as s:
            port = s.getsockname()[0] if port_of == "self" else 0x7FFFFFF0
            return s.sendto(getfamily_name("nlctrl"), (port, 0))
    return step


def recv_truncated():
    with nl_sock() as s:
        s.send(getfamily_name("nlctrl", NLM_F_REQUEST, 1))
        data, anc, flags, addr = s.recvmsg(20)
        rest = drain(s)
        return {"len": len(data), "msg_trunc": bool(flags & socket.MSG_TRUNC),
                "addr": list(addr), "left": len(rest)}


def recv_peek():
    with nl_sock() as s:
        s.send(getfamily_name("nlctrl", NLM_F_REQUEST | NLM_F_ACK, 1))
        a = s.recv(65536, socket.MSG_PEEK | MSG_DONTWAIT)
        b = s.recv(65536, MSG_DONTWAIT)
        c = s.recv(65536, MSG_DONTWAIT)
        return {"peek_same": a == b, "then_ack": split(c)[0][1] == NLMSG_ERROR,
                "left": len(drain(s))}


def blank(n):
    return lambda: b"\0" * n


run_all([
    # nlctrl GETFAMILY
    ("lo_up", lo_up),
    ("getfamily_nlctrl", getfamily("nlctrl", "info")),
    ("getfamily_nlctrl_ops", getfamily("nlctrl", "ops")),
    ("getfamily_netdev", getfamily("netdev", "info")),
    ("getfamily_netdev_ops", getfamily("netdev", "ops")),
    ("getfamily_by_id_nlctrl", getfamily_raw(
        struct.pack("=HHH", 6, CTRL_ATTR_FAMILY_ID, GENL_ID_CTRL) + b"\0\0",
        flags=NLM_F_REQUEST)),
    ("getfamily_netdev_by_id", getfamily_netdev_by_id),
    ("getfamily_unknown_name", getfamily_raw(nla_str(CTRL_ATTR_FAMILY_NAME, "nosuchfamily"))),
    ("getfamily_unknown_name_no_ext_ack",
     getfamily_raw(nla_str(CTRL_ATTR_FAMILY_NAME, "nosuchfamily"), ext_ack=False)),
    ("getfamily_unknown_id", getfamily_raw(
        struct.pack("=HHH", 6, CTRL_ATTR_FAMILY_ID, NO_FAMILY) + b"\0\0")),
    ("getfamily_id_zero", getfamily_raw(struct.pack("=HHH", 6, CTRL_ATTR_FAMILY_ID, 0) + b"\0\0")),
    ("getfamily_no_attrs", getfamily_raw()),
    ("getfamily_id_nlctrl_name_netdev", getfamily_name_and_id("nlctrl", "netdev")),
    ("getfamily_id_netdev_name_nlctrl", getfamily_name_and_id("netdev", "nlctrl")),
    ("getfamily_name_no_nul", getfamily_raw(nla(CTRL_ATTR_FAMILY_NAME, b"nlctrl"))),
    ("getfamily_name_too_long", getfamily_raw(nla_str(CTRL_ATTR_FAMILY_NAME, "n" * 20))),
    ("getfamily_name_empty", getfamily_raw(nla(CTRL_ATTR_FAMILY_NAME, b"\0"))),
    ("getfamily_id_u32", getfamily_raw(nla_u32(CTRL_ATTR_FAMILY_ID, GENL_ID_CTRL),
                                       flags=NLM_F_REQUEST)),
    ("getfamily_id_one_byte", getfamily_raw(nla(CTRL_ATTR_FAMILY_ID, b"\x10"))),
    ("getfamily_unknown_attr", getfamily_raw(nla_u32(40, 1),
                                             nla_str(CTRL_ATTR_FAMILY_NAME, "nlctrl"),
                                             flags=NLM_F_REQUEST)),
    ("getfamily_name_nested_flag", getfamily_raw(
        nla(CTRL_ATTR_FAMILY_NAME | NLA_F_NESTED, b"nlctrl\0"), flags=NLM_F_REQUEST)),
    ("getfamily_bad_nla_len", getfamily_raw_bytes(struct.pack("=HH", 2, 2) + b"nlctrl\0\0")),
    ("getfamily_nla_len_past_end", getfamily_raw_bytes(struct.pack("=HH", 40, 2) + b"nlctrl\0\0")),
    ("getfamily_truncated_attr_header", getfamily_raw_bytes(b"\x0b\x00")),
    ("getfamily_trailing_after_name", getfamily_raw_bytes(
        nla_str(CTRL_ATTR_FAMILY_NAME, "nlctrl") + b"\x01\x02")),
    ("getfamily_cmd_newfamily", getfamily_raw(nla_str(CTRL_ATTR_FAMILY_NAME, "nlctrl"),
                                              cmd=CTRL_CMD_NEWFAMILY)),
    ("getfamily_cmd_unknown", getfamily_raw(nla_str(CTRL_ATTR_FAMILY_NAME, "nlctrl"), cmd=99)),
    ("getfamily_version_0", getfamily_raw(nla_str(CTRL_ATTR_FAMILY_NAME, "nlctrl"),
                                          flags=NLM_F_REQUEST, version=0)),
    ("getfamily_no_genl_header", framing(
        lambda: nlmsg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 1, b""))),
    ("getfamily_short_genl_header", framing(
        lambda: nlmsg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 1, b"\x03\x01"))),
    ("dump_families", dump_families(NLM_F_REQUEST | NLM_F_DUMP)),
    ("dump_families_ack", dump_families(NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK)),
    ("dump_families_root_only", dump_families(NLM_F_REQUEST | 0x100)),
    # framing
    ("datagram_shorter_than_header", framing(blank(8))),
    ("datagram_empty", framing(blank(0))),
    ("nlmsg_len_past_datagram", framing(
        lambda: nlmsg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 1,
                      b"\x03\x01\0\0" + nla_str(2, "nlctrl"), length=200))),
    ("nlmsg_len_below_header", framing(
        lambda: nlmsg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 1, b"\0" * 16, length=8))),
    ("unknown_family_ack", framing(
        lambda: genl(NO_FAMILY, 1, NLM_F_REQUEST | NLM_F_ACK, 1))),
    ("unknown_family_no_ack", framing(lambda: genl(NO_FAMILY, 1, NLM_F_REQUEST, 1))),
    ("unknown_family_no_ext_ack", framing(
        lambda: genl(NO_FAMILY, 1, NLM_F_REQUEST | NLM_F_ACK, 1), ext_ack=False)),
    ("noop_type_ack", framing(lambda: nlmsg(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 1, b""))),
    ("noop_type_no_ack", framing(lambda: nlmsg(NLMSG_NOOP, NLM_F_REQUEST, 1, b""))),
    ("done_type_ack", framing(lambda: nlmsg(NLMSG_DONE, NLM_F_REQUEST | NLM_F_ACK, 1, b"\0" * 4))),
    ("type_0x0f_ack", framing(lambda: nlmsg(0x0F, NLM_F_REQUEST | NLM_F_ACK, 1, b"\0" * 4))),
    ("no_request_flag_ack", framing(lambda: req_family("nlctrl", NLM_F_ACK, 1))),
    ("no_request_flag_no_ack", framing(lambda: req_family("nlctrl", 0, 1))),
    ("no_request_flag_unknown_family", framing(lambda: genl(NO_FAMILY, 1, NLM_F_ACK, 1))),
    ("request_ack", framing(lambda: req_family("nlctrl", NLM_F_REQUEST | NLM_F_ACK, 1))),
    ("request_no_ack", framing(lambda: req_family("nlctrl", NLM_F_REQUEST, 1))),
    ("request_ack_cap_ack", framing(lambda: req_family("nlctrl", NLM_F_REQUEST | NLM_F_ACK, 1),
                                    cap_ack=True)),
    ("request_echo_flag", framing(lambda: req_family("nlctrl", NLM_F_REQUEST | 0x8, 1))),
    ("two_messages_ok_ok", two_messages("nlctrl", "netdev")),
    ("two_messages_bad_ok", two_messages("nosuchfamily", "nlctrl")),
    ("unaligned_len_then_second", framing(unaligned_then_second)),
    ("trailing_garbage_after_message", framing(
        lambda: req_family("nlctrl", NLM_F_REQUEST | NLM_F_ACK, 1) + b"\x01\x02\x03")),
    ("errors_ext_ack_off", error_variants(False, False)),
    ("errors_ext_ack_on", error_variants(True, False)),
    ("errors_cap_ack", error_variants(False, True)),
    ("errors_ext_and_cap_ack", error_variants(True, True)),
    # netdev DEV_GET
    ("dev_get_lo", netdev(NETDEV_CMD_DEV_GET, nla_u32(A_DEV_IFINDEX, LO))),
    ("dev_get_lo_no_ack", netdev(NETDEV_CMD_DEV_GET, nla_u32(A_DEV_IFINDEX, LO),
                                 flags=NLM_F_REQUEST)),
    ("dev_get_ifindex_0", netdev(NETDEV_CMD_DEV_GET, nla_u32(A_DEV_IFINDEX, 0))),
    ("dev_get_missing", netdev(NETDEV_CMD_DEV_GET)),
    ("dev_get_nonexistent", netdev(NETDEV_CMD_DEV_GET, nla_u32(A_DEV_IFINDEX, NO_IFINDEX))),
    ("dev_get_ifindex_u64", netdev(NETDEV_CMD_DEV_GET, nla(A_DEV_IFINDEX, struct.pack("=Q", 1)))),
    ("dev_get_unknown_attr", netdev(NETDEV_CMD_DEV_GET, nla_u32(A_DEV_IFINDEX, LO),
                                    nla_u32(3, 0))),
    ("dev_get_nested_flag", netdev(NETDEV_CMD_DEV_GET,
                                   nla(A_DEV_IFINDEX | NLA_F_NESTED, struct.pack("=I", 1)))),
    ("dev_get_dump", netdev(NETDEV_CMD_DEV_GET, flags=NLM_F_REQUEST | NLM_F_DUMP, keep=is_lo)),
    ("dev_get_dump_with_ifindex", netdev(NETDEV_CMD_DEV_GET, nla_u32(A_DEV_IFINDEX, LO),
                                         flags=NLM_F_REQUEST | NLM_F_DUMP, keep=is_lo)),
    ("netdev_cmd_unknown", netdev(99)),
    ("netdev_cmd_ntf", netdev(2)),
    ("netdev_cmd_0", netdev(0)),
    # netdev QUEUE_GET
    ("queue_get_lo_rx0", netdev(NETDEV_CMD_QUEUE_GET, *queue(0, QTYPE_RX), names=QUEUE_NAMES)),
    ("queue_get_lo_tx0", netdev(NETDEV_CMD_QUEUE_GET, *queue(0, QTYPE_TX), names=QUEUE_NAMES)),
    ("queue_get_lo_rx1", netdev(NETDEV_CMD_QUEUE_GET, *queue(1, QTYPE_RX), names=QUEUE_NAMES)),
    ("queue_get_lo_type_2", netdev(NETDEV_CMD_QUEUE_GET, *queue(0, 2), names=QUEUE_NAMES)),
    ("queue_get_missing_all", netdev(NETDEV_CMD_QUEUE_GET, names=QUEUE_NAMES)),
    ("queue_get_missing_type", netdev(NETDEV_CMD_QUEUE_GET, *queue(0, 0)[:2],
                                      names=QUEUE_NAMES)),
    ("queue_get_nonexistent", netdev(NETDEV_CMD_QUEUE_GET, *queue(0, 0, NO_IFINDEX),
                                     names=QUEUE_NAMES)),
    ("queue_get_dump_lo", netdev(NETDEV_CMD_QUEUE_GET, nla_u32(A_QUEUE_IFINDEX, LO),
                                 flags=NLM_F_REQUEST | NLM_F_DUMP, names=QUEUE_NAMES)),
    ("queue_get_dump_all_lo_part", netdev(NETDEV_CMD_QUEUE_GET, flags=NLM_F_REQUEST | NLM_F_DUMP,
                                          names=QUEUE_NAMES,
                                          keep=lambda a: a.get("IFINDEX", [0])[0] == LO)),
    ("queue_get_dump_nonexistent", netdev(NETDEV_CMD_QUEUE_GET,
                                          nla_u32(A_QUEUE_IFINDEX, NO_IFINDEX),
                                          flags=NLM_F_REQUEST | NLM_F_DUMP, names=QUEUE_NAMES)),
    ("queue_get_dump_with_id", netdev(NETDEV_CMD_QUEUE_GET, *queue(0, 0),
                                      flags=NLM_F_REQUEST | NLM_F_DUMP, names=QUEUE_NAMES)),
    # netdev BIND_RX / BIND_TX on lo
    ("bind_rx_lo", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd), rx_queue(0)))),
    ("bind_rx_missing_all", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: ())),
    ("bind_rx_missing_fd", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), rx_queue(0)))),
    ("bind_rx_missing_queues", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd)))),
    ("bind_rx_queue_missing_id", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd),
        nest(A_DMABUF_QUEUES, nla_u32(A_QUEUE_TYPE, QTYPE_RX))))),
    ("bind_rx_queue_not_nested", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd),
        nla(A_DMABUF_QUEUES, nla_u32(A_QUEUE_ID, 0) + nla_u32(A_QUEUE_TYPE, QTYPE_RX))))),
    ("bind_rx_tx_queue", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd), rx_queue(0, QTYPE_TX)))),
    ("bind_rx_nonexistent", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, NO_IFINDEX), nla_u32(A_DMABUF_FD, fd), rx_queue(0)))),
    ("bind_rx_ifindex_0", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, 0), nla_u32(A_DMABUF_FD, fd), rx_queue(0)))),
    ("bind_rx_dmabuf_id_attr", with_udmabuf(NETDEV_CMD_BIND_RX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd), rx_queue(0),
        nla_u32(A_DMABUF_ID, 1)))),
    ("bind_tx_lo", with_udmabuf(NETDEV_CMD_BIND_TX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd)))),
    ("bind_tx_missing_fd", with_udmabuf(NETDEV_CMD_BIND_TX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO),))),
    ("bind_tx_nonexistent", with_udmabuf(NETDEV_CMD_BIND_TX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, NO_IFINDEX), nla_u32(A_DMABUF_FD, fd)))),
    ("bind_tx_with_queues", with_udmabuf(NETDEV_CMD_BIND_TX, lambda fd: (
        nla_u32(A_DMABUF_IFINDEX, LO), nla_u32(A_DMABUF_FD, fd), rx_queue(0)))),
    # socket options and addresses
    ("sockopts_netlink", sockopts),
    ("sockopt_unknown", sockopt_call(lambda s: s.setsockopt(SOL_NETLINK, 99, 1))),
    ("getsockopt_unknown", sockopt_call(lambda s: s.getsockopt(SOL_NETLINK, 99))),
    ("sockopt_short_value", sockopt_call(
        lambda s: s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, b"\x01\x00"))),
    ("sockopt_pktinfo", sockopt_call(
        lambda s: [s.setsockopt(SOL_NETLINK, NETLINK_PKTINFO, 1),
                   s.getsockopt(SOL_NETLINK, NETLINK_PKTINFO)])),
    ("getsockopt_short_buffer", sockopt_call(
        lambda s: s.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 2))),
    ("so_bufs", sockopt_call(so_bufs)),
    ("getsockname", getsockname_steps),
    ("autobind_on_send", autobind_on_send),
    ("bind_groups_1", bind_groups(1)),
    ("bind_groups_bit_15", bind_groups(1 << 15)),
    ("add_membership_nlctrl_notify", add_membership(GENL_ID_CTRL)),
    ("add_membership_netdev_mgmt", add_membership("netdev-mgmt")),
    ("add_membership_unused_group", add_membership(1000)),
    ("sendto_own_port", sendto_port("self")),
    ("sendto_unbound_port", sendto_port("other")),
    ("recv_truncated", recv_truncated),
    ("recv_peek", recv_peek),
])
