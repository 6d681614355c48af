"""Netlink: framing, attribute policies, acks (``net/netlink/af_netlink.c``, ``lib/nlattr.c``).

A netlink socket here is a mock file (``struct file`` of a socket inode) whose private
data is a :class:`NetlinkSock`: ``send`` hands the datagram to the protocol's input
(``netlink_rcv_skb``), replies are queued as datagrams for ``recv``.  Only
``NETLINK_GENERIC`` has an input (:mod:`mockkernel.net.genetlink`).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from errno import EAGAIN, ECONNREFUSED, EINVAL, ENOPROTOOPT, ERANGE
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..fs import FMODE_READ, FMODE_WRITE, File, FileOperations, Inode
from ..poll import EPOLLIN, EPOLLOUT, EPOLLRDNORM, EPOLLWRBAND, EPOLLWRNORM
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
)

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..process import Process

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
    "nlmsg_align",
    "nlmsg_put",
    "parse_attrs",
]

SOL_NETLINK = 270
_NLA_TYPE_MASK = 0xFFFF & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
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
    ) -> None:
        super().__init__(errno, msg)
        self.errno = errno
        self.msg = msg
        self.bad_attr = bad_attr
        self.miss_type = miss_type
        self.miss_nest = miss_nest


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


def nla_put_string(out: bytearray, atype: int, value: str) -> None:
    nla_put(out, atype, value.encode() + b"\0")


def nla_put_nested(out: bytearray, atype: int, inner: bytes) -> None:
    nla_put(out, atype | NLA_F_NESTED, inner)


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


# exact lengths of the fixed-size types (``nla_attr_len``) and their struct formats
_FIXED: dict[NlaType, tuple[int, str]] = {
    NlaType.U8: (1, "=B"),
    NlaType.U16: (2, "=H"),
    NlaType.U32: (4, "=I"),
    NlaType.U64: (8, "=Q"),
    NlaType.S32: (4, "=i"),
    NlaType.S64: (8, "=q"),
}


@dataclass(frozen=True)
class Nla:
    """One policy entry (``struct nla_policy``): type, range (``NLA_POLICY_MIN/MAX``), length."""

    type: NlaType
    min: int | None = None
    max: int | None = None
    len: int = 0  # strings: maximal length; binary: maximal length
    nested: Policy | None = None


@dataclass(frozen=True)
class Policy:
    """A policy table and its ``maxtype``."""

    maxtype: int
    attrs: dict[int, Nla] = field(default_factory=dict)


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
    if strict and pt.type is NlaType.NESTED and not nested_flag:
        raise NlError(EINVAL, "NLA_F_NESTED is missing", bad_attr=attr.offset)
    if strict and pt.type is not NlaType.NESTED and nested_flag:
        raise NlError(EINVAL, "NLA_F_NESTED not expected", bad_attr=attr.offset)
    fixed = _FIXED.get(pt.type)
    if fixed is not None:
        size, fmt = fixed
        if n != size and (strict or n < size):
            msg = "invalid attribute length" if strict else "Attribute failed policy validation"
            raise NlError(EINVAL, msg, bad_attr=attr.offset)
        attr.value = struct.unpack_from(fmt, data)[0]
        if (pt.min is not None and attr.value < pt.min) or (
            pt.max is not None and attr.value > pt.max
        ):
            raise NlError(ERANGE, "integer out of range", bad_attr=attr.offset)
    elif pt.type is NlaType.FLAG:
        if n:
            raise NlError(EINVAL, "Attribute failed policy validation", bad_attr=attr.offset)
        attr.value = True
    elif pt.type is NlaType.NUL_STRING:
        minlen = min(n, pt.len + 1) if pt.len else n
        if not minlen or b"\0" not in data[:minlen]:
            raise NlError(EINVAL, "Attribute failed policy validation", bad_attr=attr.offset)
        attr.value = data.split(b"\0", 1)[0].decode(errors="replace")
    elif pt.type is NlaType.STRING:
        s = data.split(b"\0", 1)[0] if data.endswith(b"\0") else data
        if pt.len and len(s) > pt.len:
            raise NlError(ERANGE, "Attribute failed policy validation", bad_attr=attr.offset)
        attr.value = s.decode(errors="replace")
    elif pt.type is NlaType.BINARY:
        if pt.len and n > pt.len:
            raise NlError(ERANGE, "Attribute failed policy validation", bad_attr=attr.offset)
        attr.value = data
    elif pt.type is NlaType.NESTED:
        if n and n < NLA_HDRLEN:
            raise NlError(EINVAL, "Attribute failed policy validation", bad_attr=attr.offset)
        if pt.nested is not None:
            attr.nested = parse_attrs(data, attr.offset + NLA_HDRLEN, pt.nested, strict)
            attr.nested.offset = attr.offset
            attr.nested.is_nest = True
        attr.value = attr.nested


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
    if strict and pos < end:
        raise NlError(EINVAL, "bytes leftover after parsing attributes")
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


#: A protocol's input: handles one request, returns nothing or raises NlError/OSError.
#: Returning ``True`` means "a dump was started" (no ack: the dump ends with NLMSG_DONE).
ProtocolInput = Callable[[Msg], bool | None]


# -- the socket --
class NetlinkFops(FileOperations):
    """``netlink_ops`` as a file: ``read``/``write`` are ``recv``/``send`` with no flags."""

    name = "socket"

    def release(self, file: File) -> None:
        sock: NetlinkSock = file.private_data
        sock.release()

    def _read(self, file: File, count: int, pos: int) -> bytes:
        sock: NetlinkSock = file.private_data
        return sock.recv(count, 0)[0]

    def _write(self, file: File, data: bytes, pos: int) -> int:
        sock: NetlinkSock = file.private_data
        return sock.send(data, 0)

    def _dname(self, file: File) -> str:
        return f"socket:[{file.inode.ino}]"

    def _poll(self, file: File) -> int:
        """``datagram_poll``: readable with a queued message; always writable (the mock
        kernel answers each request at once, so the send buffer never fills)."""
        sock: NetlinkSock = file.private_data
        mask = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND
        if sock.rx:
            mask |= EPOLLIN | EPOLLRDNORM
        return mask

    poll = _poll

    read = _read
    write = _write
    dname = _dname


netlink_fops = NetlinkFops()


class NetlinkTable:
    """The kernel's netlink state (``nl_table``): bound ports and protocol inputs."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.ports: dict[int, NetlinkSock] = {}
        self.inputs: dict[int, ProtocolInput] = {}
        self._rover = itertools.count(-4096, -1)
        self.sockets: set[NetlinkSock] = set()


class NetlinkSock:
    """``struct netlink_sock``: port, flags, queued replies and per-family private data."""

    def __init__(self, table: NetlinkTable, proc: Process, protocol: int, nonblock: bool) -> None:
        self.table = table
        self.kernel = table.kernel
        self.proc = proc
        self.protocol = protocol
        self.portid = 0
        self.groups = 0
        self.nonblock = nonblock
        self.ext_ack = False
        self.cap_ack = False
        self.strict_chk = False
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
        if groups:
            raise kerr(ENOPROTOOPT, "no multicast groups in the mock")
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
        if opt == NETLINK_EXT_ACK:
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
            NETLINK_EXT_ACK: self.ext_ack,
            NETLINK_CAP_ACK: self.cap_ack,
            NETLINK_GET_STRICT_CHK: self.strict_chk,
        }
        if opt not in flags:
            raise kerr(ENOPROTOOPT)
        return int(flags[opt])

    # -- data ----------------------------------------------------------------------------------
    def send(self, data: bytes, dest: int) -> int:
        """``netlink_sendmsg`` to the kernel (port 0): the protocol input runs now."""
        if dest:
            raise kerr(ECONNREFUSED)
        self.autobind()
        if self.kernel.tracer.enabled:
            self.kernel.tracer.emit("netlink.send", portid=self.portid, len=len(data))
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

    def queue_dump(self, msgs: list[bytes], seq: int) -> None:
        """Replies of a dump, packed into datagrams, and the closing ``NLMSG_DONE``."""
        msgs = [*msgs, nlmsg_put(NLMSG_DONE, NLM_F_MULTI, seq, self.portid, struct.pack("=i", 0))]
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
            body += msg.data
        else:
            flags |= NLM_F_CAPPED
            body += msg.data[:NLMSG_HDRLEN]
        tlvs = bytearray()
        if self.ext_ack and err is not None:
            if err.msg:
                nla_put_string(tlvs, NLMSGERR_ATTR_MSG, err.msg)
            if err.bad_attr is not None and err.bad_attr < len(msg.data):
                nla_put_u32(tlvs, NLMSGERR_ATTR_OFFS, err.bad_attr)
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
    kernel: Kernel, table: NetlinkTable, proc: Process, protocol: int, flags: int
) -> int:
    """``socket(AF_NETLINK, type, protocol)``: a socket file installed in ``proc``; its fd."""
    nonblock = bool(flags & os.O_NONBLOCK)
    sock = NetlinkSock(table, proc, protocol, nonblock)
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
