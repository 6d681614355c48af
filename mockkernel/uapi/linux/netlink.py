"""linux/netlink.h: netlink message framing (Linux 7.2 uapi), the parts mockkernel uses.

A datagram is a run of messages, each a ``struct nlmsghdr`` and a payload padded to
``NLMSG_ALIGNTO``; attributes are ``struct nlattr`` TLVs padded to ``NLA_ALIGNTO``.
Errors and acks are ``NLMSG_ERROR`` messages carrying a ``struct nlmsgerr`` and, with
``NETLINK_EXT_ACK``, the ``NLMSGERR_ATTR_*`` TLVs.
"""

import ctypes
from ctypes import c_int, c_uint16, c_uint32

__all__ = [
    "NETLINK_CAP_ACK",
    "NETLINK_EXT_ACK",
    "NETLINK_GENERIC",
    "NETLINK_GET_STRICT_CHK",
    "NETLINK_RDMA",
    "NETLINK_ROUTE",
    "NLA_ALIGNTO",
    "NLA_F_NESTED",
    "NLA_F_NET_BYTEORDER",
    "NLA_HDRLEN",
    "NLMSGERR_ATTR_COOKIE",
    "NLMSGERR_ATTR_MAX",
    "NLMSGERR_ATTR_MISS_NEST",
    "NLMSGERR_ATTR_MISS_TYPE",
    "NLMSGERR_ATTR_MSG",
    "NLMSGERR_ATTR_OFFS",
    "NLMSGERR_ATTR_POLICY",
    "NLMSGERR_ATTR_UNUSED",
    "NLMSG_ALIGNTO",
    "NLMSG_DONE",
    "NLMSG_ERROR",
    "NLMSG_HDRLEN",
    "NLMSG_MIN_TYPE",
    "NLMSG_NOOP",
    "NLMSG_OVERRUN",
    "NLM_F_ACK",
    "NLM_F_ACK_TLVS",
    "NLM_F_APPEND",
    "NLM_F_ATOMIC",
    "NLM_F_CAPPED",
    "NLM_F_CREATE",
    "NLM_F_DUMP",
    "NLM_F_DUMP_FILTERED",
    "NLM_F_DUMP_INTR",
    "NLM_F_ECHO",
    "NLM_F_EXCL",
    "NLM_F_MATCH",
    "NLM_F_MULTI",
    "NLM_F_REPLACE",
    "NLM_F_REQUEST",
    "NLM_F_ROOT",
    "nlattr",
    "nlmsgerr",
    "nlmsghdr",
    "sockaddr_nl",
]

_HEADER = "linux/netlink.h"

NETLINK_ROUTE = 0
NETLINK_GENERIC = 16
NETLINK_RDMA = 20

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_ATOMIC = 0x400
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NLMSG_ALIGNTO = 4
NLMSG_HDRLEN = 16
NLMSG_NOOP = 0x1
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLMSG_OVERRUN = 0x4
NLMSG_MIN_TYPE = 0x10

NLMSGERR_ATTR_UNUSED = 0
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2
NLMSGERR_ATTR_COOKIE = 3
NLMSGERR_ATTR_POLICY = 4
NLMSGERR_ATTR_MISS_TYPE = 5
NLMSGERR_ATTR_MISS_NEST = 6
NLMSGERR_ATTR_MAX = 6

NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_ALIGNTO = 4
NLA_HDRLEN = 4


class sockaddr_nl(ctypes.Structure):
    _fields_ = [
        ("nl_family", c_uint16),
        ("nl_pad", c_uint16),
        ("nl_pid", c_uint32),
        ("nl_groups", c_uint32),
    ]


class nlmsghdr(ctypes.Structure):
    _fields_ = [
        ("nlmsg_len", c_uint32),
        ("nlmsg_type", c_uint16),
        ("nlmsg_flags", c_uint16),
        ("nlmsg_seq", c_uint32),
        ("nlmsg_pid", c_uint32),
    ]


class nlmsgerr(ctypes.Structure):
    _fields_ = [("error", c_int), ("msg", nlmsghdr)]


class nlattr(ctypes.Structure):
    _fields_ = [("nla_len", c_uint16), ("nla_type", c_uint16)]
