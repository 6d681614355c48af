"""Interface ioctls on a plain socket and RTM_NEWLINK/RTM_SETLINK lookups, on ``lo``.

What glibc's ``if_nametoindex``/``if_indextoname``, ``ifconfig`` and iproute2's
fallbacks rely on: ``SIOCGIF*`` answers for ``lo`` and for a device that does not exist,
``SIOCGIFCONF`` sizes, and the errors ``RTM_NEWLINK``/``RTM_SETLINK`` give before they
would change anything (no device, no header, ``NLM_F_CREATE`` without a kind).
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct

from _probe import emit


def ifreq(name: bytes, tail: bytes = b"") -> bytes:
    return struct.pack("16s", name) + tail.ljust(24, b"\0")


def call(step: str, cmd: int, arg: bytes, decode) -> None:  # type: ignore[no-untyped-def]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        r = fcntl.ioctl(s, cmd, arg)
        emit(step, ok=decode(r))
    except OSError as e:
        emit(step, errno=errno.errorcode[e.errno or 0])
    finally:
        s.close()


def sa(r: bytes) -> str:
    return socket.inet_ntoa(r[20:24])


def lo_up() -> None:
    """Bring lo up when it is down (the guest's lo starts down; elsewhere it is up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), 0x8913, req))[1]
        if not flags & 1:
            fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH22x", b"lo", flags | 1))


def main() -> None:
    lo_up()
    call("SIOCGIFINDEX lo", 0x8933, ifreq(b"lo"), lambda r: struct.unpack_from("=i", r, 16)[0] == socket.if_nametoindex("lo"))
    call("SIOCGIFINDEX missing", 0x8933, ifreq(b"nosuchdev0"), lambda r: "found")
    call("SIOCGIFNAME lo", 0x8910, ifreq(b"", struct.pack("=i", socket.if_nametoindex("lo"))), lambda r: r[:16].rstrip(b"\0").decode())
    call("SIOCGIFNAME missing", 0x8910, ifreq(b"", struct.pack("=i", 99999)), lambda r: "found")
    call("SIOCGIFFLAGS lo", 0x8913, ifreq(b"lo"), lambda r: hex(struct.unpack_from("=H", r, 16)[0]))
    call("SIOCGIFMTU lo", 0x8921, ifreq(b"lo"), lambda r: struct.unpack_from("=i", r, 16)[0])
    call("SIOCGIFTXQLEN lo", 0x8942, ifreq(b"lo"), lambda r: struct.unpack_from("=i", r, 16)[0])
    call("SIOCGIFMETRIC lo", 0x891D, ifreq(b"lo"), lambda r: struct.unpack_from("=i", r, 16)[0])
    call("SIOCGIFHWADDR lo", 0x8927, ifreq(b"lo"), lambda r: [struct.unpack_from("=H", r, 16)[0], r[18:24].hex()])
    call("SIOCGIFADDR lo", 0x8915, ifreq(b"lo"), sa)
    call("SIOCGIFNETMASK lo", 0x891B, ifreq(b"lo"), sa)
    call("SIOCGIFBRDADDR lo", 0x8919, ifreq(b"lo"), sa)
    call("SIOCGIFDSTADDR lo", 0x8917, ifreq(b"lo"), sa)
    call("SIOCGIFADDR missing", 0x8915, ifreq(b"nosuchdev0"), sa)
    call("SIOCGIFMAP lo", 0x8970, ifreq(b"lo"), lambda r: r[16:40].hex())
    call("SIOCSIFMTU missing", 0x8922, ifreq(b"nosuchdev0", struct.pack("=i", 1400)), lambda r: "set")
    call("SIOCGIFCONF sizes", 0x8912, struct.pack("=i4xQ", 0, 0), lambda r: struct.unpack_from("=i", r)[0] % 40 == 0)
    nl(0x10, 0x5, 0, b"", "RTM_NEWLINK no device")
    nl(0x10, 0x5, 0, nla(3, b"nosuchdev0\0"), "RTM_NEWLINK missing name")
    nl(0x10, 0x5, 99999, b"", "RTM_NEWLINK missing index")
    nl(0x10, 0x405, 0, nla(3, b"nosuchdev0\0"), "RTM_NEWLINK create without kind")
    nl(0x13, 0x5, 0, b"", "RTM_SETLINK no device")
    nl(0x13, 0x5, 99999, b"", "RTM_SETLINK missing index")
    nl(0x10, 0x5, None, b"", "RTM_NEWLINK short header")


def nla(atype: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, atype) + data + b"\0" * (-n % 4)


def nl(mtype: int, flags: int, index: int | None, attrs: bytes, step: str) -> None:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        s.bind((0, 0))
        body = b"\0" * 4 if index is None else struct.pack("=BxHiII", 0, 0, index, 0, 0) + attrs
        s.send(struct.pack("=IHHII", 16 + len(body), mtype, flags, 1, 0) + body)
        r = s.recv(65536)
        err = struct.unpack_from("=i", r, 16)[0]
        emit(step, ok=errno.errorcode.get(-err, err) if err else 0)
    finally:
        s.close()


if __name__ == "__main__":
    main()
