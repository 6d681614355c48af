"""Probe: NETLINK_RDMA's nldev client as libibverbs and iproute2's ``rdma`` use it.

``RDMA_NLDEV_CMD_GET`` (dump and do), ``PORT_GET`` (dump and do), ``GET_CHARDEV``
(the uverbs char device), ``SYS_GET``; the framing of ``rdma_nl_rcv_msg`` (clients and
ops out of range or absent, ``NLM_F_DUMP``'s bits, ``NLM_F_ACK``, two messages in a
datagram) and the errnos and extended acks of bad requests.  Run on a machine with
exactly one RDMA device, ``rxe0`` (index 0), over an Ethernet interface.

Nothing machine-specific is printed: GUIDs, the interface's name and ifindex and the
char device number are shown as relations to sysfs, ``if_nametoindex`` and
``stat``.  Messages are listed across datagrams (where a dump's ``NLMSG_DONE`` falls is
the netlink core's business).  Standard library only.
"""
import errno
import os
import socket
import struct

from _probe import read_sysfs, run_all

NETLINK_RDMA = 20
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK = 10, 11
MSG_DONTWAIT = socket.MSG_DONTWAIT
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_ROOT, NLM_F_MATCH, NLM_F_DUMP = 0x100, 0x200, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
ERR_NAMES = {1: "MSG", 2: "OFFS", 3: "COOKIE", 4: "POLICY", 5: "MISS_TYPE", 6: "MISS_NEST"}

RDMA_NL_NLDEV = 5
CMD_GET, CMD_SET, CMD_PORT_GET, CMD_SYS_GET, CMD_GET_CHARDEV = 1, 2, 5, 6, 15
A_DEV_INDEX, A_DEV_NAME, A_PORT_INDEX, A_CAP_FLAGS = 1, 2, 3, 4
A_FW_VERSION, A_NODE_GUID, A_SYS_IMAGE_GUID = 5, 6, 7
A_NDEV_INDEX, A_NDEV_NAME = 50, 51
A_CHARDEV_TYPE, A_CHARDEV_NAME, A_CHARDEV_ABI, A_CHARDEV, A_UVERBS_DRIVER_ID = 69, 70, 71, 72, 73
NAMES = {1: "DEV_INDEX", 2: "DEV_NAME", 3: "PORT_INDEX", 4: "CAP_FLAGS", 5: "FW_VERSION",
         6: "NODE_GUID", 7: "SYS_IMAGE_GUID", 8: "SUBNET_PREFIX", 9: "LID", 10: "SM_LID",
         11: "LMC", 12: "PORT_STATE", 13: "PORT_PHYS_STATE", 14: "DEV_NODE_TYPE",
         50: "NDEV_INDEX", 51: "NDEV_NAME", 66: "NETNS_MODE", 67: "DEV_PROTOCOL",
         70: "CHARDEV_NAME", 71: "CHARDEV_ABI", 72: "CHARDEV", 73: "UVERBS_DRIVER_ID",
         84: "DEV_DIM", 93: "COPY_ON_FORK", 96: "PRIVILEGED_QKEY_MODE",
         101: "NAME_ASSIGN_TYPE", 103: "MONITOR_MODE"}
STRINGS = {A_DEV_NAME, A_FW_VERSION, A_NDEV_NAME, 67, A_CHARDEV_NAME}

DEV = "rxe0"
NO_DEV = 99


def T(op, client=RDMA_NL_NLDEV):
    return (client << 10) + op


def nla(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes((-n) % 4)


def nla_u32(atype, v):
    return nla(atype, struct.pack("=I", v))


def nla_str(atype, s):
    return nla(atype, s.encode() + b"\0")


def nlmsg(mtype, flags, seq, *attrs):
    payload = b"".join(attrs)
    n = 16 + len(payload)
    return struct.pack("=IHHII", n, mtype, flags, seq, 0) + payload + bytes((-n) % 4)


def rdma_sock(ext_ack=True):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_RDMA)
    s.bind((0, 0))
    if ext_ack:
        s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    return s


def attrs_of(data):
    out = []
    pos = 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        if n < 4:
            break
        out.append((t, data[pos + 4 : pos + n]))
        pos += (n + 3) & ~3
    return out


def guid_text(v):
    return ":".join("%04x" % ((v >> s) & 0xFFFF) for s in (48, 32, 16, 0))


def value(t, raw):
    """One attribute as the probe shows it: machine-specific values as relations."""
    if t in STRINGS:
        s = raw.rstrip(b"\0").decode()
        if t == A_NDEV_NAME:
            return {"is_sysfs_parent": s == read_sysfs("/sys/class/infiniband/%s/parent" % DEV)}
        return s
    if len(raw) == 1:
        return raw[0]
    if len(raw) == 4:
        v = struct.unpack("=I", raw)[0]
        return v
    if len(raw) == 8:
        v = struct.unpack("=Q", raw)[0]
        if t in (A_NODE_GUID, A_SYS_IMAGE_GUID):
            name = "node_guid" if t == A_NODE_GUID else "sys_image_guid"
            return {"is_sysfs_" + name: guid_text(v) == read_sysfs(
                "/sys/class/infiniband/%s/%s" % (DEV, name))}
        if t == A_CHARDEV:
            major = (v & 0xFFF00) >> 8
            minor = (v & 0xFF) | ((v >> 12) & 0xFFF00)
            st = os.stat("/dev/infiniband/uverbs0")
            return {"is_uverbs0_rdev": os.makedev(major, minor) == st.st_rdev}
        return hex(v)
    return "<%d bytes>" % len(raw)


def show_attrs(data):
    out = []
    ndev_index = None
    for t, raw in attrs_of(data):
        if t == A_NDEV_INDEX:
            ndev_index = struct.unpack("=I", raw)[0]
            out.append(["NDEV_INDEX", "<ifindex>"])
            continue
        if t == A_NDEV_NAME and ndev_index is not None:
            name = raw.rstrip(b"\0").decode()
            out.append(["ndev_index_is_if_nametoindex", socket.if_nametoindex(name) == ndev_index])
        out.append([NAMES.get(t, t), value(t, raw)])
    return out


def show(msgs, request_len):
    out = []
    for mtype, flags, payload in msgs:
        if mtype == NLMSG_ERROR:
            code = struct.unpack_from("=i", payload)[0]
            e = {"error": errno.errorcode.get(-code, code) if code else 0, "flags": hex(flags)}
            inner = struct.unpack_from("=I", payload, 4)[0] if len(payload) >= 8 else 0
            e["embedded"] = "header" if inner and flags & 0x100 else (
                "request" if inner == request_len else inner)
            if flags & 0x200:
                skip = 4 + (16 if flags & 0x100 else (inner + 3) & ~3)
                tlvs = {}
                for t, raw in attrs_of(payload[skip:]):
                    name = ERR_NAMES.get(t, t)
                    if t == 1:
                        tlvs[name] = raw.rstrip(b"\0").decode()
                    elif t in (2, 5, 6):
                        tlvs[name] = struct.unpack("=I", raw)[0]
                    else:
                        tlvs[name] = raw.hex()
                e["tlvs"] = tlvs
            out.append(e)
        elif mtype == NLMSG_DONE:
            code = struct.unpack_from("=i", payload)[0]
            out.append({"done": errno.errorcode.get(-code, code) if code else 0,
                        "flags": hex(flags)})
        else:
            out.append({"type": hex(mtype), "flags": hex(flags), "attrs": show_attrs(payload)})
    return out


def drain(s):
    msgs = []
    while True:
        try:
            d = s.recv(65536, MSG_DONTWAIT)
        except BlockingIOError:
            return msgs
        pos = 0
        while pos + 16 <= len(d):
            n, t, f, _seq, _pid = struct.unpack_from("=IHHII", d, pos)
            msgs.append((t, f, d[pos + 16 : pos + n]))
            pos += (n + 3) & ~3


def ask(data, ext_ack=True):
    s = rdma_sock(ext_ack)
    try:
        s.send(data)
        return show(drain(s), len(data))
    finally:
        s.close()


def req(op, flags, *attrs, client=RDMA_NL_NLDEV, ext_ack=True):
    def step():
        return ask(nlmsg(T(op, client), flags, 1, *attrs), ext_ack)

    return step


def socket_kinds():
    out = {}
    for name, kind in (("raw", socket.SOCK_RAW), ("dgram", socket.SOCK_DGRAM),
                       ("stream", socket.SOCK_STREAM)):
        try:
            s = socket.socket(socket.AF_NETLINK, kind, NETLINK_RDMA)
        except OSError as e:
            out[name] = errno.errorcode[e.errno]
        else:
            out[name] = "ok"
            s.close()
    return out


def sysfs_view():
    base = "/sys/class/infiniband/%s" % DEV
    return {
        "node_type": read_sysfs(base + "/node_type"),
        "fw_ver": read_sysfs(base + "/fw_ver"),
        "uverbs_ibdev": read_sysfs("/sys/class/infiniband_verbs/uverbs0/ibdev"),
        "uverbs_abi_version": read_sysfs("/sys/class/infiniband_verbs/uverbs0/abi_version"),
        "class_abi_version": read_sysfs("/sys/class/infiniband_verbs/abi_version"),
        "port_state": read_sysfs(base + "/ports/1/state"),
        "link_layer": read_sysfs(base + "/ports/1/link_layer"),
        "gids": len(os.listdir(base + "/ports/1/gids")),
        "gid1": read_sysfs(base + "/ports/1/gids/1"),
        "gid0_type": read_sysfs(base + "/ports/1/gid_attrs/types/0"),
        "gid0_ndev_is_parent": read_sysfs(base + "/ports/1/gid_attrs/ndevs/0")
        == read_sysfs(base + "/parent"),
    }


def unused_gid_attr(kind):
    def step():
        with open("/sys/class/infiniband/%s/ports/1/gid_attrs/%s/1" % (DEV, kind)) as f:
            return f.read()

    return step


IDX = nla_u32(A_DEV_INDEX, 0)
UVERBS = nla_str(A_CHARDEV_TYPE, "uverbs")
RQ = NLM_F_REQUEST
RA = NLM_F_REQUEST | NLM_F_ACK

STEPS = [
    ("socket_kinds", socket_kinds),
    ("sysfs", sysfs_view),
    ("sysfs_unused_gid_type", unused_gid_attr("types")),
    ("sysfs_unused_gid_ndev", unused_gid_attr("ndevs")),
    ("get_dump", req(CMD_GET, RQ | NLM_F_DUMP)),
    ("get_dump_ack", req(CMD_GET, RA | NLM_F_DUMP)),
    ("get_dump_root_bit", req(CMD_GET, RQ | NLM_F_ROOT)),
    ("get_dump_match_bit", req(CMD_GET, RQ | NLM_F_MATCH)),
    ("get_dump_attrs_ignored", req(CMD_GET, RQ | NLM_F_DUMP, nla_u32(A_DEV_INDEX, NO_DEV))),
    ("get_do", req(CMD_GET, RA, IDX)),
    ("get_do_no_ack", req(CMD_GET, RQ, IDX)),
    ("get_do_no_index", req(CMD_GET, RA)),
    ("get_do_bad_index", req(CMD_GET, RA, nla_u32(A_DEV_INDEX, NO_DEV))),
    ("get_do_short_index", req(CMD_GET, RA, nla(A_DEV_INDEX, b"\0\0"))),
    ("get_do_short_index_no_ext_ack", req(CMD_GET, RA, nla(A_DEV_INDEX, b"\0\0"), ext_ack=False)),
    ("get_do_long_index", req(CMD_GET, RA, nla(A_DEV_INDEX, bytes(8)))),
    ("get_do_unknown_attrs", req(CMD_GET, RA, IDX, nla(500, b"abcd"), nla(8, b"x"))),
    ("get_do_trailing_bytes", lambda: ask(nlmsg(T(CMD_GET), RA, 1, IDX, b"\x01\x02\x03\x04"))),
    ("get_no_request_flag", req(CMD_GET, NLM_F_ACK, IDX)),
    ("port_dump", req(CMD_PORT_GET, RQ | NLM_F_DUMP, IDX)),
    ("port_dump_no_index", req(CMD_PORT_GET, RQ | NLM_F_DUMP)),
    ("port_dump_bad_index", req(CMD_PORT_GET, RQ | NLM_F_DUMP, nla_u32(A_DEV_INDEX, NO_DEV))),
    ("port_dump_short_index", req(CMD_PORT_GET, RQ | NLM_F_DUMP, nla(A_DEV_INDEX, b"\0"))),
    ("port_do", req(CMD_PORT_GET, RA, IDX, nla_u32(A_PORT_INDEX, 1))),
    ("port_do_port0", req(CMD_PORT_GET, RA, IDX, nla_u32(A_PORT_INDEX, 0))),
    ("port_do_port2", req(CMD_PORT_GET, RA, IDX, nla_u32(A_PORT_INDEX, 2))),
    ("port_do_no_port", req(CMD_PORT_GET, RA, IDX)),
    ("port_do_bad_index", req(CMD_PORT_GET, RA, nla_u32(A_DEV_INDEX, NO_DEV),
                              nla_u32(A_PORT_INDEX, 1))),
    ("chardev_uverbs", req(CMD_GET_CHARDEV, RA, IDX, UVERBS)),
    ("chardev_uverbs_no_index", req(CMD_GET_CHARDEV, RA, UVERBS)),
    ("chardev_uverbs_port", req(CMD_GET_CHARDEV, RA, IDX, nla_u32(A_PORT_INDEX, 1), UVERBS)),
    ("chardev_uverbs_bad_port", req(CMD_GET_CHARDEV, RA, IDX, nla_u32(A_PORT_INDEX, 2), UVERBS)),
    ("chardev_port_no_index", req(CMD_GET_CHARDEV, RA, nla_u32(A_PORT_INDEX, 1), UVERBS)),
    ("chardev_bad_index", req(CMD_GET_CHARDEV, RA, nla_u32(A_DEV_INDEX, NO_DEV), UVERBS)),
    ("chardev_unknown_type", req(CMD_GET_CHARDEV, RA, IDX, nla_str(A_CHARDEV_TYPE, "foo"))),
    ("chardev_no_type", req(CMD_GET_CHARDEV, RA, IDX)),
    ("chardev_long_type", req(CMD_GET_CHARDEV, RA, IDX, nla_str(A_CHARDEV_TYPE, "uverbs" * 7))),
    ("chardev_type_without_nul", req(CMD_GET_CHARDEV, RA, IDX, nla(A_CHARDEV_TYPE, b"uverbs"))),
    ("chardev_dump", req(CMD_GET_CHARDEV, RQ | NLM_F_DUMP, IDX, UVERBS)),
    ("sys_get", req(CMD_SYS_GET, RA)),
    ("sys_get_dump", req(CMD_SYS_GET, RQ | NLM_F_DUMP)),
    ("sys_get_short_attr", req(CMD_SYS_GET, RA, nla(A_DEV_INDEX, b"\0"))),
    ("op_unspec", req(0, RA)),
    ("op_8_free", req(8, RA)),
    ("op_monitor", req(28, RA)),
    ("op_num_ops", req(31, RA)),
    ("op_1023", req(1023, RA)),
    ("client_0", req(CMD_GET, RA, client=0)),
    ("client_3_reserved", req(CMD_GET, RA, client=3)),
    ("client_6", req(CMD_GET, RA, client=6)),
    ("client_63", req(CMD_GET, RA, client=63)),
    ("two_messages", lambda: ask(nlmsg(T(CMD_SYS_GET), RQ, 1) + nlmsg(T(CMD_GET), RQ, 2, IDX))),
    ("short_datagram", lambda: ask(b"\x10\x00\x00")),
]

if __name__ == "__main__":
    run_all(STEPS)
