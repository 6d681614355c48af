"""A plain-Python generic netlink client, written as a program for real Linux would be.

It only uses ``socket`` and ``struct``: no mockkernel import.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

NETLINK_GENERIC = 16
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

HDR = struct.Struct("=IHHII")


def attr(atype: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + bytes((-n) % 4)


def u32(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("=I", v))


def nest(atype: int, *inner: bytes) -> bytes:
    return attr(atype | NLA_F_NESTED, b"".join(inner))


def msg(mtype: int, flags: int, seq: int, payload: bytes) -> bytes:
    n = 16 + len(payload)
    return HDR.pack(n, mtype, flags, seq, 0) + payload + bytes((-n) % 4)


def genl(family: int, cmd: int, flags: int, seq: int, *attrs: bytes, version: int = 1) -> bytes:
    return msg(family, flags, seq, struct.pack("=BBH", cmd, version, 0) + b"".join(attrs))


def parse_attrs(data: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    pos = 0
    while pos + 4 <= len(data):
        n, t = struct.unpack_from("=HH", data, pos)
        if n < 4:
            break
        out.setdefault(t & 0x3FFF, []).append(data[pos + 4 : pos + n])
        pos += (n + 3) & ~3
    return out


@dataclass
class Reply:
    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes
    error: int | None = None  # NLMSG_ERROR: the (negative) errno
    tlvs: dict[int, list[bytes]] = field(default_factory=dict)

    def attrs(self) -> dict[int, list[bytes]]:
        return parse_attrs(self.payload[4:])

    def u32(self, atype: int) -> int:
        return int(struct.unpack("=I", self.attrs()[atype][0])[0])


def split(dgram: bytes) -> list[Reply]:
    out = []
    pos = 0
    while pos + 16 <= len(dgram):
        n, t, f, seq, pid = HDR.unpack_from(dgram, pos)
        payload = dgram[pos + 16 : pos + n]
        r = Reply(t, f, seq, pid, payload)
        if t == NLMSG_ERROR:
            r.error = struct.unpack_from("=i", payload)[0]
            if f & NLM_F_ACK_TLVS:
                inner = 16 if f & NLM_F_CAPPED else struct.unpack_from("=I", payload, 4)[0]
                r.tlvs = parse_attrs(payload[4 + ((inner + 3) & ~3) :])
        out.append(r)
        pos += (n + 3) & ~3
    return out


class GenlClient:
    def __init__(self, ext_ack: bool = True) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.bind((0, 0))
        if ext_ack:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> GenlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recv(self) -> list[Reply]:
        return split(self.sock.recv(65536))

    def request(self, family: int, cmd: int, *attrs: bytes, flags: int = NLM_F_ACK) -> list[Reply]:
        """Send one request; collect every reply up to its ack or NLMSG_DONE."""
        self.seq += 1
        self.sock.send(genl(family, cmd, NLM_F_REQUEST | flags, self.seq, *attrs))
        out: list[Reply] = []
        while True:
            for r in self.recv():
                assert r.seq == self.seq
                out.append(r)
                if r.type in (NLMSG_ERROR, NLMSG_DONE):
                    return out
                dump = flags & NLM_F_DUMP == NLM_F_DUMP  # a dump always ends in NLMSG_DONE
                if not flags & NLM_F_ACK and not r.flags & NLM_F_MULTI and not dump:
                    return out

    def family(self, name: str) -> int:
        replies = self.request(
            GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
        )
        if replies[0].error:
            raise OSError(-replies[0].error, f"family {name}")
        return int(struct.unpack("=H", replies[0].attrs()[CTRL_ATTR_FAMILY_ID][0])[0])
