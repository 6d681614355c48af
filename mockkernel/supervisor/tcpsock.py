"""Devmem TCP for supervised programs: a TCP socket becomes the mock's.

A program makes a real TCP socket (``socket`` is never trapped for ``AF_INET``: the
address is not known yet).  When it ``bind``\\ s or ``connect``\\ s it to a mock NIC's
IPv4 address (``NetDevice.ipv4``; ``AF_INET``, or ``AF_INET6`` with the v4-mapped
``::ffff:a.b.c.d`` upstream ``ncdevmem`` uses), the supervisor takes the real socket
(``pidfd_getfd``: kept as the host socket, for the options the mock does not model),
makes a kernel :class:`~mockkernel.net.tcp_sock.TcpSocket` and puts a mock socket file
at the same number in the child (``SECCOMP_IOCTL_NOTIF_ADDFD`` with ``SETFD``, the
real fd's close-on-exec and ``O_NONBLOCK`` kept).  From then on ``listen``,
``accept``/``accept4``, ``recvfrom``/``recvmsg`` (``MSG_SOCK_DEVMEM``, the
``SCM_DEVMEM_*`` control messages), ``sendto``/``sendmsg``, ``read``/``write``,
``setsockopt``/``getsockopt``, ``getsockname``/``getpeername``, ``poll``/``epoll`` and
``close`` on it are the kernel's, with the rules the in-process front-end uses.

A real fd's ``bind``/``connect`` to any other address costs one read of the sockaddr
(the call is trapped already) and goes on to the host; so does a non-TCP socket's.

A ``listen`` of a real TCP socket bound to every address (``0.0.0.0``, or ``::`` without
``IPV6_V6ONLY``) is one kernel's (:func:`real_listen`): the host socket listens (host
addresses and loopback stay real), the kernel's wildcard listener takes connections to
the mock NIC addresses, and ``accept`` serves both (a host connection is accepted here
and installed as a real fd with ``ADDFD``).

Blocking calls sleep in the kernel (``net/tcp_sock.py``, ``mockkernel/wait.py``) on the
worker serving them, which hands the pool's lead on first; a signal withdraws the
notification (``Supervisor.signal_pending``).  With ``SO_RCVTIMEO`` set the caller's tid
is in ``Supervisor.timed_sleepers`` so that the tracer makes a signal's restart an
``EINTR`` (``sock_intr_errno``).
"""

from __future__ import annotations

import _socket
import contextlib
import ctypes
import os
import socket
import struct
from collections.abc import Iterator
from errno import EADDRINUSE, EAFNOSUPPORT, EBADF, EINPROGRESS, EINVAL, EOPNOTSUPP
from typing import TYPE_CHECKING

from ..errors import NotMine, kerr
from ..fs import FMODE_WRITE
from ..net.tcp_sock import (
    SO_RCVTIMEO_OLD,
    SOL_SOCKET,
    TcpSocket,
    rcvtimeo_of,
    rcvtimeo_value,
    tcp_sendfile,
    tcp_sock_file,
    tcp_sock_fops,
)
from ..realfd import REAL, hide, kernel_close
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_to_user
from .fdtable import install_over
from .host import libc
from .uabi import MAX_RW_COUNT, i32

if TYPE_CHECKING:
    from ..context import KernelContext
    from ..fs import File
    from ..net.devmem_tcp import TcpTable
    from ..process import Process
    from .handlers import Call, Result

__all__ = ["quick_bind", "quick_listen", "real_bind_or_connect", "real_listen"]

AF_INET, AF_INET6 = 2, 10
SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC = 1, 0o4000, 0o2000000
MSG_DONTWAIT = 0x40
_SOCKADDR_IN = struct.Struct("=H2s4s8x")  # sin_family, sin_port (big endian), sin_addr
#: sin6_family, sin6_port, sin6_flowinfo, sin6_addr, sin6_scope_id
_SOCKADDR_IN6 = struct.Struct("=H2sI16sI")
_SIN6_MIN = 24  # SIN6_LEN_RFC2133: the shortest sockaddr_in6 inet6_bind takes
_V4MAPPED = bytes(10) + b"\xff\xff"
_MSGHDR = struct.Struct("=QI4xQQQQi4x")
_IOVEC = struct.Struct("=QQ")
_CMSGHDR = struct.Struct("=QII")  # cmsg_len, cmsg_level, cmsg_type
_MAX_OPT = 4096

trace_sup_tcp_socket = TracePoint("sup.tcp_socket", "pid", "fd", "addr", "port")


def _tcp(proc: Process) -> TcpTable:
    from ..net import net_state

    return net_state(proc.kernel).tcp


def _mock_sockaddr(proc: Process, addr: int, addrlen: int) -> tuple[str, int, int] | None:
    """``(host, port, family)`` of a ``sockaddr_in`` -- or a ``sockaddr_in6`` with a
    v4-mapped address (``::ffff:a.b.c.d``, as upstream ``ncdevmem`` binds) -- naming a
    mock NIC address; None otherwise (another family, short, unreadable: the real call
    answers)."""
    if not addr or addrlen < _SOCKADDR_IN.size:
        return None
    try:
        raw = proc.mm.read(addr, min(addrlen, _SIN6_MIN))
    except OSError:
        return None
    family = int.from_bytes(raw[:2], "little")
    if family == AF_INET:
        ip = raw[4:8]
    elif family == AF_INET6 and len(raw) >= _SIN6_MIN and raw[8:20] == _V4MAPPED:
        ip = raw[20:24]
    else:
        return None
    host = socket.inet_ntoa(ip)
    if not TcpSocket.is_mock_addr(_tcp(proc), host):
        return None
    return host, int.from_bytes(raw[2:4], "big"), family


def quick_bind(proc: Process, args: tuple[int, ...]) -> bool:
    """``bind``/``connect`` surely not the mock's: a real fd and an address that is not
    a mock NIC's (the one memory read a host socket's bind or connect costs)."""
    if i32(args[0]) in proc.files:
        return False
    return _mock_sockaddr(proc, args[1], i32(args[2])) is None


def _sockaddr(sock: TcpSocket, where: tuple[str, int]) -> bytes:
    """The address as the socket's family spells it (``sockaddr_in`` or a v4-mapped
    ``sockaddr_in6``; ``::`` for a wildcard listener's own)."""
    host, port = where
    if sock.family == AF_INET6:
        ip6 = bytes(16) if host == "::" else _V4MAPPED + socket.inet_aton(host)
        return _SOCKADDR_IN6.pack(AF_INET6, port.to_bytes(2, "big"), 0, ip6, 0)
    return _SOCKADDR_IN.pack(AF_INET, port.to_bytes(2, "big"), socket.inet_aton(host))


def _host_sockaddr(family: int, addr: tuple[object, ...]) -> bytes:
    """A host connection's peer address (CPython's tuple) as a ``sockaddr``."""
    host, port = str(addr[0]), int(str(addr[1]))
    if family == AF_INET6:
        flow, scope = int(str(addr[2])), int(str(addr[3]))
        ip6 = socket.inet_pton(AF_INET6, host)
        return _SOCKADDR_IN6.pack(AF_INET6, port.to_bytes(2, "big"), flow, ip6, scope)
    return _SOCKADDR_IN.pack(AF_INET, port.to_bytes(2, "big"), socket.inet_aton(host))


def quick_listen(proc: Process, args: tuple[int, ...]) -> bool:
    """``listen`` surely not the mock's: a real fd and no mock NIC address to reach."""
    return i32(args[0]) not in proc.files and not _tcp(proc).has_addresses()


def _wildcard(real: int) -> tuple[str, int, int] | None:
    """``(host, port, family)`` of a TCP socket bound to every address (``0.0.0.0``, or
    ``::`` without ``IPV6_V6ONLY``; port 0: not bound yet, ``listen`` binds it so);
    None for anything else (another family or type, one address, v6-only)."""
    s = _socket.socket(fileno=REAL.dup(real))
    try:
        if s.family not in (AF_INET, AF_INET6) or s.type != SOCK_STREAM:
            return None
        name = s.getsockname()
        if s.family == AF_INET6:
            if name[0] != "::" or s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                return None
        elif name[0] != "0.0.0.0":
            return None
        return str(name[0]), int(name[1]), int(s.family)
    finally:
        s.close()


def real_listen(c: Call, fd: int) -> Result:
    """``listen`` of a host TCP socket bound to every address: it listens on the host
    (host addresses, loopback: real connections) and, one kernel, on the mock NIC
    addresses (``TcpSocket.listen_any``); its number becomes a mock socket file that
    ``accept`` serves from both.  Any other ``listen`` of a real fd is the host's."""
    from .handlers import CONTINUE

    try:
        real = c.proc.fget_real(fd)
    except OSError:
        return CONTINUE
    try:
        where = _wildcard(real)
    except OSError:
        where = None
    if where is None:
        kernel_close(c.sv.kernel, real)
        return CONTINUE
    host, port, family = where
    tcp = _tcp(c.proc)
    k = c.sv.kernel
    sock = TcpSocket(k, tcp)
    sock.host_fd = real
    sock.family = family
    flags = _fd_flags(c.proc.pid, fd)
    file = tcp_sock_file(k, sock, bool(flags & os.O_NONBLOCK))
    try:
        if port and tcp.port_listening(port):
            raise kerr(EADDRINUSE)  # a mock address listens on it (checked before the host)
        sock.rcvtimeo = _host_rcvtimeo(real)
        s = _socket.socket(fileno=REAL.dup(real))
        try:
            s.listen(i32(c.args[1]))
            port = int(s.getsockname()[1])
        finally:
            s.close()
        sock.listen_any(host, port)
        install_over(c.proc, fd, file, bool(flags & os.O_CLOEXEC))
    except BaseException:
        file.put()  # the socket's release closes our host socket
        raise
    os.set_blocking(real, False)  # (ours alone now) accept never sleeps on the host
    trace_sup_tcp_socket(k.tracer, c.proc.pid, fd, host, port)
    return 0


def write_addr(addr: int, lenp: int, raw: bytes) -> None:
    """``move_addr_to_user``: as much of the address as fits, and its full length."""
    if not addr or not lenp:
        return
    (ulen,) = struct.unpack("=i", copy_from_user(lenp, 4))
    if ulen < 0:
        raise kerr(EINVAL)
    if ulen:
        copy_to_user(addr, raw[:ulen])
    copy_to_user(lenp, struct.pack("=i", len(raw)))


def _fd_flags(pid: int, fd: int) -> int:
    """The open flags of the child's real ``fd`` (``/proc/<pid>/fdinfo``)."""
    try:
        with REAL.builtin_open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0


def _host_is_unbound_tcp(real: int) -> bool:
    """Is the real socket ``real`` an ``AF_INET``/``AF_INET6`` stream socket not bound
    yet?"""
    s = _socket.socket(fileno=REAL.dup(real))
    try:
        if s.family not in (AF_INET, AF_INET6) or s.type != SOCK_STREAM:
            return False
        return bool(s.getsockname()[1] == 0)
    finally:
        s.close()


def _host_rcvtimeo(real: int) -> float | None:
    """The ``SO_RCVTIMEO`` the program set on its socket before it became the mock's."""
    s = _socket.socket(fileno=REAL.dup(real))
    try:
        t = rcvtimeo_of(s.getsockopt(SOL_SOCKET, SO_RCVTIMEO_OLD, 16))
    finally:
        s.close()
    return None if t is False else t


def real_bind_or_connect(c: Call, fd: int, connect: bool) -> Result:
    """``bind``/``connect`` of a real fd: to a mock NIC address a TCP socket becomes
    the mock's (its number now a mock socket file); anything else is the host's."""
    from .handlers import CONTINUE

    where = _mock_sockaddr(c.proc, c.args[1], i32(c.args[2]))
    if where is None:
        return CONTINUE
    try:
        real = c.proc.fget_real(fd)
    except OSError:
        return CONTINUE  # not open: the real call says EBADF
    try:
        if not _host_is_unbound_tcp(real):
            kernel_close(c.sv.kernel, real)
            return CONTINUE  # UDP, bound on the host already, not a socket: the host's
    except OSError:
        kernel_close(c.sv.kernel, real)
        return CONTINUE
    k = c.sv.kernel
    sock = TcpSocket(k, _tcp(c.proc))
    sock.host_fd = real
    sock.family = where[2]
    flags = _fd_flags(c.proc.pid, fd)
    nonblock = bool(flags & os.O_NONBLOCK)
    file = tcp_sock_file(k, sock, nonblock)
    in_progress = False
    try:
        sock.rcvtimeo = _host_rcvtimeo(real)
        if connect:
            try:
                sock.connect(where[0], where[1], nonblock)
            except OSError as e:
                if e.errno != EINPROGRESS:
                    raise
                in_progress = True  # the mock socket it is: SO_ERROR and poll say the rest
        else:
            sock.bind(where[0], where[1])
        install_over(c.proc, fd, file, bool(flags & os.O_CLOEXEC))
    except BaseException:
        file.put()  # the socket's release closes the host socket
        raise
    trace_sup_tcp_socket(k.tracer, c.proc.pid, fd, where[0], where[1])
    if in_progress:
        raise kerr(EINPROGRESS)
    return 0


# -- calls on a mock TCP socket file ---------------------------------------------------------
def _sock(file: File) -> TcpSocket:
    sock: TcpSocket = file.private_data
    return sock


def bind(c: Call, file: File) -> Result:
    where = _mock_sockaddr(c.proc, c.args[1], i32(c.args[2]))
    if where is None:
        raise kerr(EINVAL)  # bound already (inet_bind: EINVAL)
    _sock(file).bind(where[0], where[1])
    return 0


def connect(c: Call, file: File) -> Result:
    where = _mock_sockaddr(c.proc, c.args[1], i32(c.args[2]))
    if where is None:
        raise kerr(EAFNOSUPPORT if i32(c.args[2]) >= 2 else EINVAL)
    _sock(file).connect(where[0], where[1], bool(file.f_flags & os.O_NONBLOCK))
    return 0


def shutdown(c: Call, file: File) -> Result:
    _sock(file).shutdown(i32(c.args[1]))
    return 0


def listen(c: Call, file: File) -> Result:
    _sock(file).listen()
    return 0


def accept(c: Call, file: File, flags: int) -> Result:
    """``accept4``: the next connection as a new mock socket file (lowest free fd)."""
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise kerr(EINVAL)
    nonblock = bool(file.f_flags & os.O_NONBLOCK)
    while True:
        with _timed(c, _sock(file), not nonblock):
            conn = _sock(file).accept(nonblock)
        if conn is not None:
            break
        try:  # a wildcard listener's host socket has a connection: a real one
            return _host_accept(c, _sock(file), flags)
        except BlockingIOError:
            if nonblock:
                raise  # (someone else took it)
    k = c.sv.kernel
    new = tcp_sock_file(k, conn, bool(flags & SOCK_NONBLOCK))
    try:
        conn.host_fd = _host_socket(k)
        if conn.rcvtimeo is not None:  # inherited (sk_clone): getsockopt says so too
            raw = rcvtimeo_value(conn.rcvtimeo)
            lib = libc()
            lib.check(lib.setsockopt(conn.host_fd, SOL_SOCKET, SO_RCVTIMEO_OLD, raw, len(raw)))
        fd = c.proc.install_file(new, bool(flags & SOCK_CLOEXEC))
    except BaseException:
        new.put()
        raise
    write_addr(c.args[1], c.args[2], _sockaddr(conn, conn.getpeername()))
    return fd


def _host_accept(c: Call, sock: TcpSocket, flags: int) -> Result:
    """Accept a host connection of a wildcard listener into the child: a real socket
    (``ADDFD``, the lowest free number), its peer's address written back."""
    assert sock.host_fd is not None and c.sv.listener is not None
    s = _socket.socket(fileno=REAL.dup(sock.host_fd))
    try:
        new, addr = s._accept()  # type: ignore[attr-defined]  # (the C one: no wrapper)
    finally:
        s.close()
    try:
        if flags & SOCK_NONBLOCK:
            os.set_blocking(new, False)
        fd = c.sv.listener.addfd(new, None, bool(flags & SOCK_CLOEXEC))
    finally:
        REAL.close(new)
    write_addr(c.args[1], c.args[2], _host_sockaddr(sock.family, addr))
    return fd


def _host_socket(kernel: KernelContext) -> int:
    """A real TCP socket for an accepted connection's unmodelled options (as the
    in-process front-end's accepted socket is a real one), held by the kernel."""
    s = _socket.socket(AF_INET, SOCK_STREAM)
    return hide(kernel, s.detach())


def getsockname(c: Call, file: File) -> Result:
    sock = _sock(file)
    host, port = sock.addr or ("0.0.0.0", 0)
    write_addr(c.args[1], c.args[2], _sockaddr(sock, (host, port)))
    return 0


def getpeername(c: Call, file: File) -> Result:
    sock = _sock(file)
    write_addr(c.args[1], c.args[2], _sockaddr(sock, sock.getpeername()))
    return 0


def setsockopt(c: Call, file: File) -> Result:
    level, opt, optval, optlen = i32(c.args[1]), i32(c.args[2]), c.args[3], i32(c.args[4])
    if optlen < 0:
        raise kerr(EINVAL)
    raw = copy_from_user(optval, min(optlen, _MAX_OPT)) if optval and optlen else b""
    if optlen > _MAX_OPT:
        raw += bytes(1)  # longer than any option: SO_DEVMEM_DONTNEED says EINVAL
    sock = _sock(file)
    try:
        return sock.setsockopt(level, opt, raw)
    except NotMine:
        pass
    if sock.host_fd is None:
        raise kerr(EOPNOTSUPP)
    lib = libc()
    return lib.check(lib.setsockopt(sock.host_fd, level, opt, raw, len(raw)))


def getsockopt(c: Call, file: File) -> Result:
    """``SO_ACCEPTCONN`` the kernel's; any other option the host socket's."""
    level, opt, optval, lenp = i32(c.args[1]), i32(c.args[2]), c.args[3], c.args[4]
    (ulen,) = struct.unpack("=i", copy_from_user(lenp, 4))
    if ulen < 0:
        raise kerr(EINVAL)
    sock = _sock(file)
    try:
        v = sock.getsockopt(level, opt)
    except NotMine:
        pass
    else:
        n = min(ulen, 4)
        copy_to_user(optval, struct.pack("=i", v)[:n])
        copy_to_user(lenp, struct.pack("=i", n))
        return 0
    if sock.host_fd is None:
        raise kerr(EOPNOTSUPP)
    buf = ctypes.create_string_buffer(min(ulen, _MAX_OPT))
    n = ctypes.c_uint(len(buf))
    lib = libc()
    lib.check(lib.getsockopt(sock.host_fd, level, opt, buf, ctypes.byref(n)))
    copy_to_user(optval, buf.raw[: n.value])
    copy_to_user(lenp, struct.pack("=i", n.value))
    return 0


def _blocking(file: File, flags: int) -> bool:
    return not (file.f_flags & os.O_NONBLOCK or flags & MSG_DONTWAIT)


@contextlib.contextmanager
def _timed(c: Call, sock: TcpSocket, blocking: bool) -> Iterator[None]:
    """While a blocking call with ``SO_RCVTIMEO`` may sleep, a signal fails it with
    ``EINTR`` rather than restarting it (``Supervisor.timed_sleepers``)."""
    if not blocking or sock.rcvtimeo is None:
        yield
        return
    c.sv.timed_sleepers.add(c.tid)
    try:
        yield
    finally:
        c.sv.timed_sleepers.discard(c.tid)


def timed_file(c: Call, file: File | None) -> contextlib.AbstractContextManager[None]:
    """:func:`_timed` for a call that may sleep in ``file``'s ``recv`` (a mock TCP
    socket's ``tcp_splice_read``); a no-op for any other file."""
    if file is None or file.f_op is not tcp_sock_fops:
        return contextlib.nullcontext()
    return _timed(c, _sock(file), not file.f_flags & os.O_NONBLOCK)


def sendto(c: Call, file: File) -> Result:
    length = c.args[2]
    data = copy_from_user(c.args[1], length) if length else b""
    return _sock(file).send(data, i32(c.args[3]))


def sendmsg(c: Call, file: File) -> Result:
    _name, _nl, iov, iovlen, _ctl, _cl, _fl = _MSGHDR.unpack(
        copy_from_user(c.args[1], _MSGHDR.size)
    )
    data = b"".join(copy_from_user(base, n) for base, n in _iovecs(iov, iovlen) if n)
    return _sock(file).send(data, i32(c.args[2]))


def _iovecs(addr: int, count: int) -> list[tuple[int, int]]:
    if count > 1024:  # UIO_MAXIOV
        raise kerr(EINVAL)
    raw = copy_from_user(addr, _IOVEC.size * count) if count else b""
    return [_IOVEC.unpack_from(raw, _IOVEC.size * i) for i in range(count)]


def recvfrom(c: Call, file: File) -> Result:
    flags = i32(c.args[3])
    sock, blocking = _sock(file), _blocking(file, flags)
    with _timed(c, sock, blocking):
        data, copied, _anc, _mf = sock.recvmsg_iov(c.args[2], 0, flags, blocking=blocking)
    if data:
        copy_to_user(c.args[1], data)
    return copied  # TCP names no source address (msg_namelen 0)


def recvmsg(c: Call, file: File) -> Result:
    """``recvmsg``: the copied bytes scattered over the iovecs, each control message
    (``SCM_DEVMEM_LINEAR``, ``SCM_DEVMEM_DMABUF``) written as a ``cmsghdr``."""
    flags = i32(c.args[2])
    hdr = c.args[1]
    _name, _nl, iov, iovlen, ctl, ctllen, _fl = _MSGHDR.unpack(copy_from_user(hdr, _MSGHDR.size))
    vecs = _iovecs(iov, iovlen)
    total = sum(n for _b, n in vecs)
    sock, blocking = _sock(file), _blocking(file, flags)
    with _timed(c, sock, blocking):
        data, copied, anc, msg_flags = sock.recvmsg_iov(
            total, ctllen if ctl else 0, flags, blocking=blocking
        )
    pos = 0
    for base, n in vecs:
        if pos >= len(data):
            break
        copy_to_user(base, data[pos : pos + n])
        pos += n
    out = b""
    for level, ctype, cdata in anc:
        msg = _CMSGHDR.pack(_CMSGHDR.size + len(cdata), level, ctype) + cdata
        out += msg + bytes(-len(msg) % 8)
    if out:
        copy_to_user(ctl, out)
    copy_to_user(hdr + 8, struct.pack("=I", 0))  # msg_namelen: TCP names no peer
    copy_to_user(hdr + 40, struct.pack("=Q", len(out)))
    copy_to_user(hdr + 48, struct.pack("=i", msg_flags))
    return copied


def sendfile(c: Call, file: File) -> Result:
    """``sendfile(out_fd, in_fd, offset, count)`` into a mock TCP socket: the program's
    real ``in_fd`` (``pidfd_getfd``: the same open file, so without ``offset`` its
    position moves) through ``net.tcp_sock.tcp_sendfile``, the rules both front-ends
    share; ``*offset`` is read and written back in the program (``EFAULT``)."""
    if not file.f_mode & FMODE_WRITE:
        raise kerr(EBADF)
    in_fd, offp, count = i32(c.args[1]), c.args[2], min(c.args[3], MAX_RW_COUNT)
    with c.proc.fdget_real(in_fd) as real:
        off = struct.unpack("=q", copy_from_user(offp, 8))[0] if offp else None
        sock = _sock(file)
        sent, new_off = tcp_sendfile(
            c.sv.kernel.tracer, lambda data: sock.send(data, 0), real, in_fd,
            _fd_flags(c.proc.pid, in_fd), off, count,
        )  # fmt: skip
    if new_off is not None and new_off != off:
        copy_to_user(offp, struct.pack("=q", new_off))
    return sent
