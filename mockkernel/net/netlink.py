"""Netlink: framing, attribute policies, acks (``net/netlink/af_netlink.c``, ``lib/nlattr.c``).

A netlink socket here is a mock file (``struct file`` of a socket inode) whose private
data is a :class:`NetlinkSock`: ``send`` hands the datagram to the protocol's input
(``netlink_rcv_skb``), replies are queued as datagrams for ``recv``.  The protocols a
kernel has are the ones registered in :attr:`NetlinkTable.inputs` (the one place:
:meth:`NetlinkTable.register_protocol`, as ``netlink_kernel_create``):
``NETLINK_ROUTE`` (:mod:`mockkernel.net.rtnetlink`) and ``NETLINK_GENERIC``
(:mod:`mockkernel.net.genetlink`); a socket of any other protocol is
``EPROTONOSUPPORT``, as on a Linux built without that family.

Attribute parsing follows ``__nla_validate_parse``: strict (the default of every
family since 5.2) or liberal (``GENL_DONT_VALIDATE_STRICT``), with the same errnos
and extended-ack messages.
"""

from __future__ import annotations

import enum
import itertools
import os
import stat
import struct
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from errno import (
    EAGAIN,
    ECONNREFUSED,
    EINVAL,
    ENOBUFS,
    ENODATA,
    ENOPROTOOPT,
    EOPNOTSUPP,
    EPROTONOSUPPORT,
    ERANGE,
)
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..fault_inject import should_fail
from ..fs import FMODE_READ, FMODE_WRITE, File, FileOperations, Inode
from ..poll import EPOLLIN, EPOLLOUT, EPOLLRDNORM, EPOLLWRBAND, EPOLLWRNORM
from ..trace import TracePoint
from ..uapi.linux.netlink import (
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NETLINK_GET_STRICT_CHK,
    NLA_F_NESTED,
    NLA_F_NET_BYTEORDER,
    NLA_HDRLEN,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDRLEN,
    NLMSG_MIN_TYPE,
    NLMSGERR_ATTR_MISS_NEST,
    NLMSGERR_ATTR_MISS_TYPE,
    NLMSGERR_ATTR_MSG,
    NLMSGERR_ATTR_OFFS,
    NLMSGERR_ATTR_POLICY,
)
from .dev_ioctl import SOCK_DEV_IOCTLS

if TYPE_CHECKING:
    from ..process import Process, TaskContext

__all__ = [
    "SOL_NETLINK",
    "AttrSet",
    "Msg",
    "NetlinkSock",
    "NlError",
    "Nla",
    "NlaType",
    "Policy",
    "nla_put",
    "nla_put_nested",
    "nla_put_string",
    "nla_put_u16",
    "nla_put_u32",
    "nla_put_u64",
    "nla_put_uint",
    "nlmsg_align",
    "nlmsg_put",
    "parse_attrs",
]

trace_netlink_send = TracePoint("netlink.send", "portid", "len")
trace_netlink_not_modelled = TracePoint("netlink.not_modelled", "group", "what")
trace_netlink_no_protocol = TracePoint("netlink.no_protocol", "protocol")

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_PKTINFO = 3
NETLINK_BROADCAST_ERROR = 4
NETLINK_NO_ENOBUFS = 5
#: genetlink's ``nlk->ngroups`` (mc_groups_longs * BITS_PER_LONG with few families)
NETLINK_NGROUPS = 64
_NLA_TYPE_MASK = 0xFFFF & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
SOCK_RAW = 3
#: ``MAX_LINKS``: netlink protocol numbers are 0..31
MAX_LINKS = 32
#: How many bytes of queued replies one datagram of a dump carries at most.
DUMP_CHUNK = 8192

_HDR = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")


def nlmsg_align(n: int) -> int:
    return (n + 3) & ~3


# -- errors and extended acks --
class NlError(Exception):
    """A request failed: ``-errno`` in the ack, and what ``struct netlink_ext_ack`` holds.

    ``bad_attr`` and ``miss_nest`` are offsets from the start of the request's
    ``nlmsghdr`` (``NLMSGERR_ATTR_OFFS`` / ``NLMSGERR_ATTR_MISS_NEST``).
    """

    def __init__(
        self,
        errno: int,
        msg: str | None = None,
        *,
        bad_attr: int | None = None,
        miss_type: int | None = None,
        miss_nest: int | None = None,
        policy: Nla | None = None,
    ) -> None:
        super().__init__(errno, msg)
        self.errno = errno
        self.msg = msg
        self.bad_attr = bad_attr
        self.miss_type = miss_type
        self.miss_nest = miss_nest
        #: the policy entry the bad attribute failed (``NL_SET_ERR_MSG_ATTR_POL``):
        #: ``NLMSGERR_ATTR_POLICY`` in the extended ack
        self.policy = policy


# -- attribute building --
def nla_put(out: bytearray, atype: int, payload: bytes) -> None:
    out += _NLA.pack(NLA_HDRLEN + len(payload), atype)
    out += payload
    out += bytes(nlmsg_align(len(payload)) - len(payload))


def nla_put_u16(out: bytearray, atype: int, value: int) -> None:
    nla_put(out, atype, struct.pack("=H", value))


def nla_put_u32(out: bytearray, atype: int, value: int) -> None:
    nla_put(out, atype, struct.pack("=I", value))


def nla_put_u64(out: bytearray, atype: int, value: int) -> None:
    nla_put(out, atype, struct.pack("=Q", value))


def nla_put_uint(out: bytearray, atype: int, value: int) -> None:
    """``nla_put_uint``: a u32 when the value fits, else a u64."""
    nla_put(out, atype, struct.pack("=I" if value <= 0xFFFFFFFF else "=Q", value))


def nla_put_string(out: bytearray, atype: int, value: str) -> None:
    nla_put(out, atype, value.encode() + b"\0")


def nla_put_nested(out: bytearray, atype: int, inner: bytes) -> None:
    nla_put(out, atype | NLA_F_NESTED, inner)


def nla_put_nested_noflag(out: bytearray, atype: int, inner: bytes) -> None:
    """``nla_nest_start_noflag``: a nest without ``NLA_F_NESTED`` (old families, nlctrl)."""
    nla_put(out, atype, inner)


def nlmsg_put(
    mtype: int, flags: int, seq: int, portid: int, payload: bytes | bytearray = b""
) -> bytes:
    """One message: header and payload, padded to ``NLMSG_ALIGNTO``."""
    n = NLMSG_HDRLEN + len(payload)
    return _HDR.pack(n, mtype, flags, seq, portid) + bytes(payload) + bytes(nlmsg_align(n) - n)


# -- policies and parsing --
class NlaType(enum.Enum):
    UNSPEC = 0
    U8 = 1
    U16 = 2
    U32 = 3
    U64 = 4
    S32 = 5
    S64 = 6
    FLAG = 7
    STRING = 8
    NUL_STRING = 9
    NESTED = 10
    BINARY = 11
    UINT = 12  # NLA_UINT: a u32 or a u64 (nla_put_uint picks the shorter)


# exact lengths of the fixed-size types (``nla_attr_len``) and their struct formats
_FIXED: Mapping[NlaType, tuple[int, str]] = MappingProxyType(
    {
        NlaType.U8: (1, "=B"),
        NlaType.U16: (2, "=H"),
        NlaType.U32: (4, "=I"),
        NlaType.U64: (8, "=Q"),
        NlaType.S32: (4, "=i"),
        NlaType.S64: (8, "=q"),
    }
)


@dataclass(frozen=True)
class Nla:
    """One policy entry (``struct nla_policy``): type, range (``NLA_POLICY_MIN/MAX``), length."""

    type: NlaType
    min: int | None = None
    max: int | None = None
    len: int = 0  # strings: maximal length; binary: maximal length
    nested: Policy | None = None
    #: ``NLA_POLICY_MASK``: the bits a value may have ("reserved bit set" otherwise)
    mask: int | None = None


@dataclass(frozen=True)
class Policy:
    """A policy table and its ``maxtype`` (read-only: one table serves every kernel)."""

    maxtype: int
    attrs: Mapping[int, Nla] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))


@dataclass
class Attr:
    """A parsed attribute: its type, offset in the message, payload and value."""

    type: int
    offset: int
    data: bytes
    value: Any = None
    nested: AttrSet | None = None


@dataclass
class AttrSet:
    """The attributes of one level (``tb[]``): the last of each type, and all of them in order."""

    offset: int  # of the nest attribute (or of the message), for MISS_NEST
    last: dict[int, Attr] = field(default_factory=dict)
    all: list[Attr] = field(default_factory=list)
    is_nest: bool = False
    #: an extended-ack message set without failing (liberal parsing's leftover bytes)
    warning: str | None = None

    def get(self, atype: int) -> Any:
        a = self.last.get(atype)
        return None if a is None else a.value

    def __contains__(self, atype: int) -> bool:
        return atype in self.last

    def require(self, *types: int) -> None:
        """``GENL_REQ_ATTR_CHECK``/``NL_REQ_ATTR_CHECK``: ``EINVAL`` + the missing type."""
        for t in types:
            if t not in self.last:
                raise NlError(EINVAL, miss_type=t, miss_nest=self.offset if self.is_nest else None)

    def each(self, atype: int) -> Iterator[Attr]:
        return (a for a in self.all if a.type == atype)


def _validate(attr: Attr, raw_type: int, pt: Nla, strict: bool) -> None:
    data = attr.data
    n = len(data)
    nested_flag = bool(raw_type & NLA_F_NESTED)

    # validate_nla: every failure names the attribute and its policy (NL_SET_ERR_MSG_ATTR_POL);
    # err starts as -ERANGE, only the NLA_F_NESTED checks, strict lengths and NUL strings
    # say -EINVAL
    def fail(errno: int, msg: str = "Attribute failed policy validation") -> NlError:
        return NlError(errno, msg, bad_attr=attr.offset, policy=pt)

    if strict and pt.type is NlaType.NESTED and not nested_flag:
        raise fail(EINVAL, "NLA_F_NESTED is missing")
    if strict and pt.type is not NlaType.NESTED and nested_flag:
        raise fail(EINVAL, "NLA_F_NESTED not expected")
    fixed = _FIXED.get(pt.type)
    if fixed is not None:
        size, fmt = fixed
        if n != size and strict:
            raise fail(EINVAL, "invalid attribute length")
        if n < size:  # liberal: a longer attribute only warns, a shorter one fails
            raise fail(ERANGE)
        attr.value = struct.unpack_from(fmt, data)[0]
        if (pt.min is not None and attr.value < pt.min) or (
            pt.max is not None and attr.value > pt.max
        ):
            raise fail(ERANGE, "integer out of range")
    elif pt.type is NlaType.UINT:
        if n not in (4, 8):
            raise fail(EINVAL, "invalid attribute length")
        attr.value = int.from_bytes(data, "little")
        if pt.mask is not None and attr.value & ~pt.mask:
            # nla_validate_mask: NL_SET_ERR_MSG_ATTR, without the policy
            raise NlError(EINVAL, "reserved bit set", bad_attr=attr.offset)
        if (pt.min is not None and attr.value < pt.min) or (
            pt.max is not None and attr.value > pt.max
        ):
            raise fail(ERANGE, "integer out of range")
    elif pt.type is NlaType.FLAG:
        if n:
            raise fail(ERANGE)
        attr.value = True
    elif pt.type is NlaType.NUL_STRING:
        minlen = min(n, pt.len + 1) if pt.len else n
        if not minlen or b"\0" not in data[:minlen]:
            raise fail(EINVAL)
        # and, falling through to NLA_STRING's check, the length without a final NUL
        if pt.len and n - (data[-1:] == b"\0") > pt.len:
            raise fail(ERANGE)
        attr.value = data.split(b"\0", 1)[0].decode(errors="replace")
    elif pt.type is NlaType.STRING:
        s = data.split(b"\0", 1)[0] if data.endswith(b"\0") else data
        if pt.len and len(s) > pt.len:
            raise fail(ERANGE)
        attr.value = s.decode(errors="replace")
    elif pt.type is NlaType.BINARY:
        if pt.len and n > pt.len:
            raise fail(ERANGE)
        attr.value = data
    elif pt.type is NlaType.NESTED:
        if n and n < NLA_HDRLEN:
            raise fail(ERANGE)
        if pt.nested is not None:
            attr.nested = parse_attrs(data, attr.offset + NLA_HDRLEN, pt.nested, strict)
            attr.nested.offset = attr.offset
            attr.nested.is_nest = True
        attr.value = attr.nested


#: ``enum netlink_attribute_type`` of each policy type (``NL_ATTR_TYPE_*``)
_NL_ATTR_TYPE = MappingProxyType(
    {
        NlaType.FLAG: 1,
        NlaType.U8: 2,
        NlaType.U16: 3,
        NlaType.U32: 4,
        NlaType.U64: 5,
        NlaType.S32: 8,
        NlaType.S64: 9,
        NlaType.BINARY: 10,
        NlaType.STRING: 11,
        NlaType.NUL_STRING: 12,
        NlaType.NESTED: 13,
        NlaType.UINT: 16,
    }
)
_NL_POLICY_TYPE_ATTR_TYPE = 1
_NL_POLICY_TYPE_ATTR_MIN_VALUE_S = 2
_NL_POLICY_TYPE_ATTR_MAX_VALUE_S = 3
_NL_POLICY_TYPE_ATTR_MIN_VALUE_U = 4
_NL_POLICY_TYPE_ATTR_MAX_VALUE_U = 5
_NL_POLICY_TYPE_ATTR_MAX_LENGTH = 7


def policy_attr_info(pt: Nla) -> bytes:
    """``__netlink_policy_dump_write_attr`` without a dump state: the range or maximal
    length of one policy entry, then its ``NL_ATTR_TYPE_*`` (``NLMSGERR_ATTR_POLICY``)."""
    out = bytearray()
    fixed = _FIXED.get(pt.type)
    if fixed is not None:
        bits = fixed[0] * 8
        if fixed[1].islower():  # signed
            lo = -(1 << (bits - 1)) if pt.min is None else pt.min
            hi = (1 << (bits - 1)) - 1 if pt.max is None else pt.max
            nla_put(out, _NL_POLICY_TYPE_ATTR_MIN_VALUE_S, struct.pack("=q", lo))
            nla_put(out, _NL_POLICY_TYPE_ATTR_MAX_VALUE_S, struct.pack("=q", hi))
        else:
            lo = 0 if pt.min is None else pt.min
            hi = (1 << bits) - 1 if pt.max is None else pt.max
            nla_put_u64(out, _NL_POLICY_TYPE_ATTR_MIN_VALUE_U, lo)
            nla_put_u64(out, _NL_POLICY_TYPE_ATTR_MAX_VALUE_U, hi)
    elif pt.type in (NlaType.STRING, NlaType.NUL_STRING, NlaType.BINARY) and pt.len:
        nla_put_u32(out, _NL_POLICY_TYPE_ATTR_MAX_LENGTH, pt.len)
    nla_put_u32(out, _NL_POLICY_TYPE_ATTR_TYPE, _NL_ATTR_TYPE.get(pt.type, 0))
    return bytes(out)


def parse_attrs(data: bytes, base: int, policy: Policy, strict: bool = True) -> AttrSet:
    """``__nla_validate_parse``: ``data`` starts ``base`` bytes into the message."""
    out = AttrSet(offset=base)
    pos = 0
    end = len(data)
    while end - pos >= NLA_HDRLEN:
        nla_len, raw_type = _NLA.unpack_from(data, pos)
        if nla_len < NLA_HDRLEN or nla_len > end - pos:
            break
        atype = raw_type & _NLA_TYPE_MASK
        attr = Attr(atype, base + pos, bytes(data[pos + NLA_HDRLEN : pos + nla_len]))
        if atype > policy.maxtype:
            if strict:
                raise NlError(EINVAL, "Unknown attribute type", bad_attr=attr.offset)
        else:
            pt = policy.attrs.get(atype)
            if pt is None or pt.type is NlaType.UNSPEC:
                if strict:
                    raise NlError(EINVAL, "Unsupported attribute", bad_attr=attr.offset)
            else:
                _validate(attr, raw_type, pt, strict)
                out.last[atype] = attr
                out.all.append(attr)
        pos += nlmsg_align(nla_len)
    if pos < end:
        # __nla_validate_parse: the message is set either way; only NL_VALIDATE_TRAILING
        # (strict) fails, liberal parsing keeps it as a warning for the ack
        if strict:
            raise NlError(EINVAL, "bytes leftover after parsing attributes")
        out.warning = "bytes leftover after parsing attributes"
    return out


# -- messages --
@dataclass
class Msg:
    """One request as the protocol input sees it (``nlh`` and the sender)."""

    data: bytes  # the whole message, header included (nlmsg_len bytes)
    type: int
    flags: int
    seq: int
    portid: int  # the sender's port (NETLINK_CB(skb).portid)
    sock: NetlinkSock
    #: ``extack->_msg`` set without an error (a warning): sent in the ack's TLVs
    extack_msg: str | None = None


#: A protocol's input: handles one request, returns nothing or raises NlError/OSError.
#: Returning ``True`` means "a dump was started" (no ack: the dump ends with NLMSG_DONE).
ProtocolInput = Callable[[Msg], bool | None]


# -- the socket --
class NetlinkFops(FileOperations):
    """``netlink_ops`` as a file: ``read``/``write`` are ``recv``/``send`` with no flags."""

    name = "socket"
    #: ``sock_ioctl``: the interface ioctls (``SIOCGIFINDEX`` & co.) of any socket
    ioctls = SOCK_DEV_IOCTLS

    def release(self, file: File[NetlinkSock]) -> None:
        sock = file.private_data
        sock.release()

    def read(self, file: File[NetlinkSock], count: int, pos: int) -> bytes:
        sock = file.private_data
        return sock.recv(count, 0)[0]

    def write(self, file: File[NetlinkSock], data: bytes, pos: int) -> int:
        sock = file.private_data
        return sock.send(data, 0)

    def dname(self, file: File) -> str:
        return f"socket:[{file.inode.ino}]"

    def poll(self, file: File[NetlinkSock]) -> int:
        """``datagram_poll``: readable with a queued message; always writable (the mock
        kernel answers each request at once, so the send buffer never fills)."""
        sock = file.private_data
        mask = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND
        if sock.rx:
            mask |= EPOLLIN | EPOLLRDNORM
        return mask


netlink_fops = NetlinkFops()


class NetlinkTable:
    """The kernel's netlink state (``nl_table``): bound ports and protocol inputs."""

    def __init__(self, kernel: TaskContext) -> None:
        self.kernel = kernel
        self.ports: dict[int, NetlinkSock] = {}
        #: protocol -> its input (``nl_table[protocol].registered``): the table of the
        #: families this kernel has; fill it with :meth:`register_protocol`
        self.inputs: dict[int, ProtocolInput] = {}
        self._rover = itertools.count(-4096, -1)
        self.sockets: set[NetlinkSock] = set()
        #: protocol -> multicast group id -> the notifications the mock never sends there
        self.unmodelled_groups: dict[int, dict[int, str]] = {}

    def register_protocol(self, protocol: int, nl_input: ProtocolInput) -> None:
        """``netlink_kernel_create``: the one place a netlink family is registered.  From
        then on ``socket(AF_NETLINK, ..., protocol)`` makes a mock socket whose requests
        go to ``nl_input``; without it the socket is ``EPROTONOSUPPORT``."""
        if not 0 <= protocol < MAX_LINKS or protocol in self.inputs:
            raise ValueError(f"netlink protocol {protocol} cannot be registered")
        self.inputs[protocol] = nl_input

    def has_listeners(self, protocol: int, group: int) -> bool:
        """``netlink_has_listeners``: whether any socket of ``protocol`` is a member of
        ``group`` (1-based) -- so a notification nobody would get is not even built (at
        boot, every device's ``RTM_NEWLINK`` and page-pool event would be)."""
        bit = 1 << (group - 1)
        return any(
            s.protocol == protocol and not s.released and s.groups & bit for s in self.sockets
        )

    def broadcast(self, protocol: int, group: int, msg: bytes) -> int:
        """``netlink_broadcast``: ``msg`` to every socket of ``protocol`` that is a member
        of ``group`` (1-based); returns how many sockets got it."""
        sent = 0
        for sock in list(self.sockets):
            if sock.protocol == protocol and not sock.released and sock.groups >> (group - 1) & 1:
                sock.queue(msg)
                sent += 1
        return sent

    def refuse_unmodelled(self, protocol: int, groups: int) -> None:
        """``EOPNOTSUPP`` (with a trace event) for a membership whose notifications are
        not modelled: a program waiting on it would otherwise wait forever."""
        for gid, what in self.unmodelled_groups.get(protocol, {}).items():
            if groups >> (gid - 1) & 1:
                trace_netlink_not_modelled(self.kernel.tracer, gid, what)
                raise kerr(EOPNOTSUPP, f"{what} are not modelled")


class NetlinkSock:
    """``struct netlink_sock``: port, flags, queued replies and per-family private data."""

    def __init__(
        self,
        table: NetlinkTable,
        proc: Process,
        protocol: int,
        nonblock: bool,
        sock_type: int = SOCK_RAW,
    ) -> None:
        self.table = table
        self.kernel = table.kernel
        self.proc = proc
        self.protocol = protocol
        #: ``sock->type``: ``SOCK_RAW`` or ``SOCK_DGRAM`` (the same to netlink)
        self.sock_type = sock_type
        self.portid = 0
        self.groups = 0
        self.nonblock = nonblock
        self.ext_ack = False
        self.cap_ack = False
        self.strict_chk = False
        #: stored flags without further effect here (NETLINK_PKTINFO: recvmsg's cmsg)
        self.flag_opts: dict[int, bool] = {
            NETLINK_PKTINFO: False,
            NETLINK_BROADCAST_ERROR: False,
            NETLINK_NO_ENOBUFS: False,
        }
        self.rx: deque[bytes] = deque()
        #: per-family private data (``genl_sk_priv``), destroyed on release
        self.priv: dict[str, Any] = {}
        self.destructors: dict[str, Callable[[Any], None]] = {}
        self.released = False
        table.sockets.add(self)

    def __repr__(self) -> str:
        return f"<NetlinkSock proto={self.protocol} portid={self.portid}>"

    # -- ports ------------------------------------------------------------------------------
    def autobind(self) -> None:
        if self.portid:
            return
        ports = self.table.ports
        pid = self.proc.pid
        if pid not in ports:
            self.portid = pid
        else:
            while True:
                candidate = next(self.table._rover) & 0xFFFFFFFF
                if candidate not in ports:
                    self.portid = candidate
                    break
        ports[self.portid] = self

    def bind(self, portid: int, groups: int) -> None:
        """``netlink_bind``: the port, and the first 32 multicast groups as a bitmask.
        A group whose notifications are not modelled is ``EOPNOTSUPP``."""
        self.table.refuse_unmodelled(self.protocol, groups)
        self.groups = groups
        if self.portid:
            if portid and portid != self.portid:
                raise kerr(EINVAL)
            return
        if portid:
            if portid in self.table.ports:
                raise kerr(98)  # EADDRINUSE
            self.portid = portid
            self.table.ports[portid] = self
        else:
            self.autobind()

    # -- options -------------------------------------------------------------------------------
    def setsockopt(self, level: int, opt: int, value: int) -> None:
        if level != SOL_NETLINK:
            raise kerr(ENOPROTOOPT)
        if opt in (NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP):
            # netlink_setsockopt: group numbers 1..ngroups
            if not value or value - 1 >= NETLINK_NGROUPS:
                raise kerr(EINVAL)
            bit = 1 << (value - 1)
            if opt == NETLINK_ADD_MEMBERSHIP:
                self.table.refuse_unmodelled(self.protocol, bit)
            self.autobind()
            if opt == NETLINK_ADD_MEMBERSHIP:
                self.groups |= bit
            else:
                self.groups &= ~bit
        elif opt in self.flag_opts:
            self.flag_opts[opt] = bool(value)
        elif opt == NETLINK_EXT_ACK:
            self.ext_ack = bool(value)
        elif opt == NETLINK_CAP_ACK:
            self.cap_ack = bool(value)
        elif opt == NETLINK_GET_STRICT_CHK:
            self.strict_chk = bool(value)
        else:
            raise kerr(ENOPROTOOPT)

    def getsockopt(self, level: int, opt: int) -> int:
        if level != SOL_NETLINK:
            raise kerr(ENOPROTOOPT)
        flags = {
            **self.flag_opts,
            NETLINK_EXT_ACK: self.ext_ack,
            NETLINK_CAP_ACK: self.cap_ack,
            NETLINK_GET_STRICT_CHK: self.strict_chk,
        }
        if opt not in flags:
            raise kerr(ENOPROTOOPT)
        return int(flags[opt])

    # -- data ----------------------------------------------------------------------------------
    def send(self, data: bytes, dest: int) -> int:
        """``netlink_sendmsg``: to the kernel (port 0) the protocol input runs now; to a
        bound port (this socket's own included) the datagram is queued there as is."""
        if not data:
            raise kerr(ENODATA)
        self.autobind()
        if should_fail(self.kernel, "netlink_skb"):
            raise kerr(ENOBUFS)  # netlink_alloc_large_skb failed
        if dest:
            peer = self.table.ports.get(dest)
            if peer is None or peer.released:
                raise kerr(ECONNREFUSED)
            peer.queue(bytes(data))
            return len(data)
        if self.kernel.tracer.enabled:  # (a hot path: no call while off)
            trace_netlink_send(self.kernel.tracer, self.portid, len(data))
        self._rcv_skb(bytes(data))
        return len(data)

    def recv(self, count: int, flags: int) -> tuple[bytes, int]:
        """One datagram (truncated to ``count``); returns it and its full length."""
        if not self.rx:
            raise kerr(EAGAIN)
        msg_peek = 0x2
        dgram = self.rx[0] if flags & msg_peek else self.rx.popleft()
        return dgram[: max(count, 0)], len(dgram)

    def queue(self, dgram: bytes) -> None:
        self.rx.append(dgram)

    def queue_dump(self, msgs: list[bytes], seq: int, err: NlError | None = None) -> None:
        """Replies of a dump, packed into datagrams, and the closing ``NLMSG_DONE``
        (``netlink_dump_done``: the dump's errno, and its message with extended acks)."""
        body = bytearray(struct.pack("=i", -err.errno if err is not None else 0))
        flags = NLM_F_MULTI
        if err is not None and self.ext_ack and (err.msg or err.bad_attr is not None):
            if err.msg:
                nla_put_string(body, NLMSGERR_ATTR_MSG, err.msg)
            if err.bad_attr is not None:
                nla_put_u32(body, NLMSGERR_ATTR_OFFS, err.bad_attr)
            flags |= NLM_F_ACK_TLVS
        msgs = [*msgs, nlmsg_put(NLMSG_DONE, flags, seq, self.portid, body)]
        chunk = bytearray()
        for m in msgs:
            if chunk and len(chunk) + len(m) > DUMP_CHUNK:
                self.rx.append(bytes(chunk))
                chunk = bytearray()
            chunk += m
        self.rx.append(bytes(chunk))

    def _rcv_skb(self, skb: bytes) -> None:
        """``netlink_rcv_skb``: each message, its ack; a short header ends the datagram."""
        handler = self.table.inputs.get(self.protocol)
        pos = 0
        total = len(skb)
        while total - pos >= NLMSG_HDRLEN:
            nlmsg_len, mtype, mflags, seq, _pid = _HDR.unpack_from(skb, pos)
            if nlmsg_len < NLMSG_HDRLEN or total - pos < nlmsg_len:
                return  # dropped without an answer, as Linux does
            msg = Msg(skb[pos : pos + nlmsg_len], mtype, mflags, seq, self.portid, self)
            err: NlError | None = None
            dumping = False
            if mflags & NLM_F_REQUEST and mtype >= NLMSG_MIN_TYPE and handler is not None:
                try:
                    dumping = bool(handler(msg))
                except NlError as e:
                    err = e
                except OSError as e:
                    err = NlError(e.errno or EINVAL)
            if not dumping and (mflags & NLM_F_ACK or err is not None):
                self.queue(self._ack(msg, err))
            pos += min(nlmsg_align(nlmsg_len), total - pos)

    def _ack(self, msg: Msg, err: NlError | None) -> bytes:
        """``netlink_ack``: ``NLMSG_ERROR`` with the errno, the request and the ext-ack TLVs."""
        code = -err.errno if err is not None else 0
        flags = 0
        body = bytearray(struct.pack("=i", code))
        if err is not None and not self.cap_ack:
            # the whole request, padded (nlmsg_put of the payload aligns it)
            body += msg.data + bytes(nlmsg_align(len(msg.data)) - len(msg.data))
        else:
            flags |= NLM_F_CAPPED
            body += msg.data[:NLMSG_HDRLEN]
        tlvs = bytearray()
        # netlink_ack_tlv_fill: the message (an error's, or a warning on success), then,
        # for errors only, the offset, the failed policy and the missing attribute
        text = err.msg if err is not None and err.msg else msg.extack_msg
        if self.ext_ack and text:
            nla_put_string(tlvs, NLMSGERR_ATTR_MSG, text)
        if self.ext_ack and err is not None:
            if err.bad_attr is not None and err.bad_attr < len(msg.data):
                nla_put_u32(tlvs, NLMSGERR_ATTR_OFFS, err.bad_attr)
            if err.policy is not None:
                # a nest (nla_nest_start: NLA_F_NESTED set, as real Linux 7.2 sends it)
                nla_put_nested(tlvs, NLMSGERR_ATTR_POLICY, policy_attr_info(err.policy))
            if err.miss_type is not None:
                nla_put_u32(tlvs, NLMSGERR_ATTR_MISS_TYPE, err.miss_type)
            if err.miss_nest is not None:
                nla_put_u32(tlvs, NLMSGERR_ATTR_MISS_NEST, err.miss_nest)
        if tlvs:
            flags |= NLM_F_ACK_TLVS
            body += tlvs
        n = NLMSG_HDRLEN + len(body)
        return _HDR.pack(n, NLMSG_ERROR, flags, msg.seq, msg.portid) + bytes(body)

    # -- release -------------------------------------------------------------------------------
    def release(self) -> None:
        """``netlink_release``: per-family private data destroyed, the port freed."""
        if self.released:
            return
        self.released = True
        try:
            for name, priv in list(self.priv.items()):
                self.destructors[name](priv)
        finally:
            self.priv.clear()
            self.rx.clear()
            if self.portid and self.table.ports.get(self.portid) is self:
                del self.table.ports[self.portid]
            self.table.sockets.discard(self)


def netlink_create(
    kernel: TaskContext,
    table: NetlinkTable,
    proc: Process,
    protocol: int,
    flags: int,
    sock_type: int = SOCK_RAW,
) -> int:
    """``socket(AF_NETLINK, type, protocol)``: a socket file installed in ``proc``; its fd.

    ``netlink_create``: a protocol out of range or not registered in ``table`` is
    ``EPROTONOSUPPORT`` (the caller checked the socket type: ``ESOCKTNOSUPPORT``)."""
    if not 0 <= protocol < MAX_LINKS or protocol not in table.inputs:
        trace_netlink_no_protocol(kernel.tracer, protocol)
        raise kerr(EPROTONOSUPPORT)
    nonblock = bool(flags & os.O_NONBLOCK)
    sock = NetlinkSock(table, proc, protocol, nonblock, sock_type)
    inode = Inode(ino=kernel.new_id() + 100000, mode=stat.S_IFSOCK | 0o777, dev=0x8)
    file = File(
        kernel,
        netlink_fops,
        inode,
        os.O_RDWR | (flags & os.O_NONBLOCK),
        FMODE_READ | FMODE_WRITE,
        sock,
    )
    try:
        return proc.install_file(file, bool(flags & os.O_CLOEXEC))
    except BaseException:
        file.put()
        raise
