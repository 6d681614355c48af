"""Mock netlink sockets for supervised programs: ``NETLINK_ROUTE`` (links, addresses,
routes: iproute2's ``ip``, glibc's ``if_nameindex``/``getaddrinfo``), ``NETLINK_GENERIC``
(nlctrl, the netdev family: ``genl``, YNL) and ``NETLINK_RDMA`` (the nldev family).

rdma-core's libibverbs (through libnl) and iproute2's ``rdma`` (through libmnl) find
RDMA devices with ``socket(AF_NETLINK, SOCK_RAW, NETLINK_RDMA)``, ``bind``,
``getsockname``, ``setsockopt(SOL_NETLINK, ...)``, ``sendto``/``sendmsg`` and
``recvfrom``/``recvmsg``.  (``sendmsg`` is not trapped yet -- see :func:`sys_sendmsg` --
so libnl's requests fail and libibverbs reads sysfs instead; libmnl, ``rdma``'s, uses
``sendto``.)  For the protocols in :data:`MOCK_PROTOCOLS` ``socket``
makes the kernel's :class:`~mockkernel.net.netlink.NetlinkSock` (``netlink_create``) and
installs it as a mock fd; the socket calls on such an fd run here, the same rules as
the in-process :class:`~mockkernel.userspace.sockets.NetlinkSocket`.  Every other
``socket`` (``AF_INET``, ``NETLINK_ROUTE`` -- glibc's ``getaddrinfo`` uses it -- ...)
and every call on a real fd is the host's (``CONTINUE``).

Replies are queued when the request is sent (the mock answers synchronously), so a
receive with nothing queued is ``EAGAIN`` even on a blocking socket: nothing could ever
arrive, and a hang is worse than an error.
"""

from __future__ import annotations

import os
import struct
from errno import EAGAIN, EINVAL, ENOPROTOOPT, ENOTSOCK, EOPNOTSUPP, ESOCKTNOSUPPORT
from typing import TYPE_CHECKING

from ..errors import kerr
from ..net.netlink import NetlinkSock, netlink_create, netlink_fops
from ..net.tcp_sock import tcp_sock_fops
from ..uaccess import copy_from_user, copy_to_user
from . import tcpsock
from .uabi import i32

if TYPE_CHECKING:
    from ..fs import File
    from .handlers import Call, Result

__all__ = ["MOCK_PROTOCOLS"]

AF_NETLINK = 16
NETLINK_ROUTE, NETLINK_GENERIC, NETLINK_RDMA = 0, 16, 20
#: the netlink protocols a supervised program's ``socket`` reaches the mock for
MOCK_PROTOCOLS = frozenset({NETLINK_ROUTE, NETLINK_GENERIC, NETLINK_RDMA})
SOL_SOCKET, SO_TYPE, SO_SNDBUF, SO_RCVBUF, SO_PROTOCOL, SO_DOMAIN = 1, 3, 7, 8, 38, 39
SOCK_DGRAM, SOCK_RAW, SOCK_NONBLOCK, SOCK_CLOEXEC = 2, 3, 0o4000, 0o2000000
MSG_TRUNC = 0x20
_SOCKADDR_NL = struct.Struct("=HHII")  # nl_family, nl_pad, nl_pid, nl_groups
_MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
_IOVEC = struct.Struct("=QQ")
_DEFAULT_BUF = 212992  # net.core.{w,r}mem_default
_SOCK_MIN_BUF = 4608
_BUFS = "sup.sockbufs"  # NetlinkSock.priv: SO_SNDBUF/SO_RCVBUF as getsockopt reports them


def _sock(c: Call, fd: int) -> NetlinkSock:
    file = c.proc.fdget(fd)
    if file.f_op is not netlink_fops:
        raise kerr(ENOTSOCK)
    sock: NetlinkSock = file.private_data
    return sock


def _tcp(c: Call) -> File | None:
    """The mock TCP socket file at argument 0 (None: a netlink socket or not a socket)."""
    file = c.proc.fdget(i32(c.args[0]))
    return file if file.f_op is tcp_sock_fops else None


def _bufs(sock: NetlinkSock) -> dict[int, int]:
    bufs = sock.priv.get(_BUFS)
    if bufs is None:
        bufs = sock.priv[_BUFS] = {SO_SNDBUF: _DEFAULT_BUF, SO_RCVBUF: _DEFAULT_BUF}
        sock.destructors[_BUFS] = lambda _priv: None
    assert isinstance(bufs, dict)
    return bufs


def _read_addr(addr: int, addrlen: int) -> tuple[int, int]:
    """``(nl_pid, nl_groups)`` of a ``sockaddr_nl`` (``EINVAL``: short or not netlink)."""
    if addrlen < _SOCKADDR_NL.size:
        raise kerr(EINVAL)
    family, _pad, pid, groups = _SOCKADDR_NL.unpack(copy_from_user(addr, _SOCKADDR_NL.size))
    if family != AF_NETLINK:
        raise kerr(EINVAL)
    return pid, groups


def _write_addr(addr: int, lenp: int, pid: int, groups: int) -> None:
    """``move_addr_to_user``: as much of the address as fits, and its full length."""
    if not addr or not lenp:
        return
    (ulen,) = struct.unpack("=i", copy_from_user(lenp, 4))
    if ulen < 0:
        raise kerr(EINVAL)
    raw = _SOCKADDR_NL.pack(AF_NETLINK, 0, pid, groups)
    if ulen:
        copy_to_user(addr, raw[:ulen])
    copy_to_user(lenp, struct.pack("=i", len(raw)))


def sys_socket(c: Call) -> Result:
    from ..net import net_state
    from .handlers import CONTINUE

    family, stype, protocol = i32(c.args[0]), i32(c.args[1]), i32(c.args[2])
    if family != AF_NETLINK or protocol not in MOCK_PROTOCOLS:
        return CONTINUE
    if stype & ~(0xF | SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise kerr(EINVAL)
    if stype & 0xF not in (SOCK_RAW, SOCK_DGRAM):
        raise kerr(ESOCKTNOSUPPORT)
    flags = (os.O_CLOEXEC if stype & SOCK_CLOEXEC else 0) | (
        os.O_NONBLOCK if stype & SOCK_NONBLOCK else 0
    )
    k = c.sv.kernel
    return netlink_create(k, net_state(k).netlink, c.proc, protocol, flags)


def sys_bind(c: Call) -> Result:
    """A real socket bound to a mock NIC address becomes a mock TCP socket
    (``tcpsock.py``); a mock one binds in the kernel."""
    fd = i32(c.args[0])
    if fd not in c.proc.files:
        return tcpsock.real_bind_or_connect(c, fd, connect=False)
    if (tcp := _tcp(c)) is not None:
        return tcpsock.bind(c, tcp)
    sock = _sock(c, fd)
    pid, groups = _read_addr(c.args[1], i32(c.args[2]))
    sock.bind(pid, groups)
    return 0


def sys_connect(c: Call) -> Result:
    fd = i32(c.args[0])
    if fd not in c.proc.files:
        return tcpsock.real_bind_or_connect(c, fd, connect=True)
    if (tcp := _tcp(c)) is not None:
        return tcpsock.connect(c, tcp)
    sock = _sock(c, fd)
    pid, _groups = _read_addr(c.args[1], i32(c.args[2]))
    if pid:
        raise kerr(EINVAL)  # only the kernel (port 0) is a peer here
    sock.autobind()
    return 0


def sys_getsockname(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.getsockname(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    _write_addr(c.args[1], c.args[2], sock.portid, sock.groups)
    return 0


def sys_getpeername(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.getpeername(c, tcp)
    _sock(c, i32(c.args[0]))
    _write_addr(c.args[1], c.args[2], 0, 0)
    return 0


def sys_setsockopt(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.setsockopt(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    level, opt, optval, optlen = i32(c.args[1]), i32(c.args[2]), c.args[3], i32(c.args[4])
    if optlen < 0:
        raise kerr(EINVAL)
    raw = copy_from_user(optval, min(optlen, 4)) if optval and optlen else b""
    if level == SOL_SOCKET:
        if len(raw) < 4:
            raise kerr(EINVAL)
        bufs = _bufs(sock)
        if opt not in bufs:
            raise kerr(ENOPROTOOPT)
        (v,) = struct.unpack("=I", raw)
        bufs[opt] = max(min(v, _DEFAULT_BUF) * 2, _SOCK_MIN_BUF)
        return 0
    v = struct.unpack("=i", raw)[0] if len(raw) == 4 else 0  # a short value reads as 0
    sock.setsockopt(level, opt, v)
    return 0


def sys_getsockopt(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.getsockopt(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    level, opt, optval, lenp = i32(c.args[1]), i32(c.args[2]), c.args[3], c.args[4]
    (ulen,) = struct.unpack("=i", copy_from_user(lenp, 4))
    if ulen < 0:
        raise kerr(EINVAL)
    if level == SOL_SOCKET:
        values = {**_bufs(sock), SO_TYPE: SOCK_RAW, SO_PROTOCOL: sock.protocol,
                  SO_DOMAIN: AF_NETLINK}  # fmt: skip
        if opt not in values:
            raise kerr(ENOPROTOOPT)
        v = values[opt]
    else:
        if ulen < 4:
            raise kerr(EINVAL)  # netlink_getsockopt: len < sizeof(int)
        v = sock.getsockopt(level, opt)
    n = min(ulen, 4)
    copy_to_user(optval, struct.pack("=i", v)[:n])
    copy_to_user(lenp, struct.pack("=i", n))
    return 0


def sys_sendto(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.sendto(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    length = c.args[2]
    data = copy_from_user(c.args[1], length) if length else b""
    pid = _read_addr(c.args[4], i32(c.args[5]))[0] if c.args[4] else 0
    return sock.send(data, pid)


def _iovecs(addr: int, count: int) -> list[tuple[int, int]]:
    if count > 1024:  # UIO_MAXIOV
        raise kerr(EINVAL)
    raw = copy_from_user(addr, _IOVEC.size * count) if count else b""
    return [_IOVEC.unpack_from(raw, _IOVEC.size * i) for i in range(count)]


def sys_sendmsg(c: Call) -> Result:
    """``sendmsg`` on a mock netlink fd (libnl's ``nl_sendmsg``); the launcher's hand-off
    of the seccomp listener carries the injection marker, so it is never trapped."""
    if (tcp := _tcp(c)) is not None:
        return tcpsock.sendmsg(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    name, namelen, iov, iovlen, _ctl, _ctllen, _fl = _MSGHDR.unpack(
        copy_from_user(c.args[1], _MSGHDR.size)
    )
    data = b"".join(copy_from_user(base, n) for base, n in _iovecs(iov, iovlen) if n)
    pid = _read_addr(name, namelen)[0] if name else 0
    return sock.send(data, pid)


def _recv(sock: NetlinkSock, count: int, flags: int) -> tuple[bytes, int]:
    try:
        return sock.recv(count, flags)
    except OSError as e:
        if e.errno == EAGAIN:
            raise kerr(EAGAIN) from None  # nothing will ever arrive: never block
        raise


def sys_recvfrom(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.recvfrom(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    flags = i32(c.args[3])
    data, full = _recv(sock, c.args[2], flags)
    if data:
        copy_to_user(c.args[1], data)
    _write_addr(c.args[4], c.args[5], 0, 0)
    return full if flags & MSG_TRUNC else len(data)


def sys_listen(c: Call) -> Result:
    """A mock TCP socket listens in the kernel (a netlink one: ``EOPNOTSUPP``,
    ``sock_no_listen``)."""
    fd = i32(c.args[0])
    if fd not in c.proc.files:
        return tcpsock.real_listen(c, fd)  # a host socket on INADDR_ANY: the mock's too
    if (tcp := _tcp(c)) is not None:
        return tcpsock.listen(c, tcp)
    _sock(c, fd)
    raise kerr(EOPNOTSUPP)


def sys_shutdown(c: Call) -> Result:
    """A mock TCP socket's ``inet_shutdown`` (netlink: ``EOPNOTSUPP``,
    ``sock_no_shutdown``)."""
    if (tcp := _tcp(c)) is not None:
        return tcpsock.shutdown(c, tcp)
    _sock(c, i32(c.args[0]))
    raise kerr(EOPNOTSUPP)


def sys_accept4(c: Call) -> Result:
    """``accept``/``accept4`` on a mock TCP listener (netlink: ``EOPNOTSUPP``)."""
    if (tcp := _tcp(c)) is not None:
        return tcpsock.accept(c, tcp, i32(c.args[3]))
    _sock(c, i32(c.args[0]))
    raise kerr(EOPNOTSUPP)


def sys_accept(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.accept(c, tcp, 0)
    _sock(c, i32(c.args[0]))
    raise kerr(EOPNOTSUPP)


def sys_recvmsg(c: Call) -> Result:
    if (tcp := _tcp(c)) is not None:
        return tcpsock.recvmsg(c, tcp)
    sock = _sock(c, i32(c.args[0]))
    flags = i32(c.args[2])
    hdr = c.args[1]
    name, _namelen, iov, iovlen, _ctl, _ctllen, _fl = _MSGHDR.unpack(
        copy_from_user(hdr, _MSGHDR.size)
    )
    vecs = _iovecs(iov, iovlen)
    data, full = _recv(sock, sum(n for _b, n in vecs), flags)
    pos = 0
    for base, n in vecs:
        if pos >= len(data):
            break
        copy_to_user(base, data[pos : pos + n])
        pos += n
    if name:
        copy_to_user(name, _SOCKADDR_NL.pack(AF_NETLINK, 0, 0, 0))
    # msg_namelen, msg_controllen (no cmsg), msg_flags
    copy_to_user(hdr + 8, struct.pack("=I", _SOCKADDR_NL.size if name else 0))
    copy_to_user(hdr + 40, struct.pack("=Q", 0))
    copy_to_user(hdr + 48, struct.pack("=i", MSG_TRUNC if full > len(data) else 0))
    return full if flags & MSG_TRUNC else len(data)
