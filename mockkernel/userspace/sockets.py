"""The userspace side of mock sockets: what ``socket.socket(...)`` returns for a mock family.

``socket.socket(AF_NETLINK, SOCK_RAW | SOCK_DGRAM, proto)`` is mock for every protocol
(one the mock kernel has not registered is ``EPROTONOSUPPORT``), also through a
``socket.socket`` subclass or ``fileno=`` a mock netlink fd (:class:`MockSocket`).
``socket.socket(AF_INET, SOCK_STREAM)`` is a real socket of a subclass
(:func:`make_inet_type`) that stays real in every call unless the program **binds or
connects it to a mock NIC's IPv4 address** (``NetDevice.ipv4``): from then on
``listen``, ``accept``, ``getsockname``/``getpeername``, ``recv``/``recv_into``/
``recvmsg`` (devmem: ``MSG_SOCK_DEVMEM``; a flow on a queue without a binding reads
plain bytes), ``send``, ``setsockopt(SOL_SOCKET, SO_DEVMEM_DONTNEED)`` and ``close``
reach the kernel's :class:`~mockkernel.net.tcp_sock.TcpSocket` (the rules the
supervisor's front-end uses too); the real fd stays open underneath as the number
the program sees.  Every other family/protocol is a real socket.  The object
returned behaves like a ``socket.socket`` for the calls a netlink client makes
(``bind``, ``send``/``sendto``/``sendmsg``, ``recv``/``recvfrom``/``recv_into``/
``recvmsg``, ``setsockopt``/``getsockopt``, ``getsockname``, ``close``, ``fileno``,
blocking and timeouts, a context manager); its fd is a mock fd, so ``os.close``,
``os.read`` and ``os.write`` on it reach the same socket.
"""

from __future__ import annotations

import contextlib
import os
import socket as _socket
import struct
import time
from builtins import type as builtins_type
from collections.abc import Callable
from errno import (
    EADDRINUSE,
    EAGAIN,
    EBADF,
    EINVAL,
    ENOPROTOOPT,
    ENOTSOCK,
    ESOCKTNOSUPPORT,
)
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import NotMine, kerr
from ..net.netlink import NetlinkSock, netlink_create, netlink_fops
from ..net.tcp_sock import (
    SO_RCVTIMEO_OLD,
    TcpSocket,
    WouldBlock,
    rcvtimeo_of,
    rcvtimeo_value,
)
from ..poll import EPOLLIN
from ..realfd import REAL, hide
from ..uapi.linux.netlink import NETLINK_GENERIC

if TYPE_CHECKING:
    from ..net.devmem_tcp import TcpTable
    from ..process import Process, TaskContext

__all__ = [
    "InetSocket",
    "MockSocket",
    "NetlinkSocket",
    "SocketCtx",
    "make_if_functions",
    "make_inet_type",
]

_T = TypeVar("_T")

#: ``socket.socket`` as imported before any redirection.
REAL_SOCKET: type[_socket.socket] = _socket.socket
#: ``socket.socket.__init__`` itself (the redirection replaces it by :func:`socket_init`)
_REAL_SOCKET_INIT: Any = _socket.socket.__init__
_AF_NETLINK = 16
_SOL_NETLINK = 270
_NETLINK_PKTINFO = 3
_AF_INET = 2
_SOL_SOCKET = 1
_SOCK_TYPE_MASK = 0xF
_SOCK_NONBLOCK = 0o4000
_SOCK_CLOEXEC = 0o2000000
_MSG_PEEK = 0x2
_MSG_TRUNC = 0x20
_MSG_DONTWAIT = 0x40
_MSG_OOB = 0x1
_MSG_ERRQUEUE = 0x2000
_SO_RCVLOWAT = 18
_SO_PEEK_OFF = 42
_DEFAULT_BUF = 212992  # net.core.{r,w}mem_default, and {r,w}mem_max
_SOCK_MIN_BUF = 2304  # SOCK_MIN_SNDBUF on x86-64; SOCK_MIN_RCVBUF is smaller, same rule here
#: the netlink protocols the mock kernel answers (any other is a real socket)


class NetlinkSocket:
    """A mock ``AF_NETLINK`` socket object (the Python ``socket.socket`` API)."""

    family = _socket.AddressFamily(_AF_NETLINK)

    def __init__(self, proc: Process, fd: int, stype: int, proto: int) -> None:
        self._proc = proc
        self._fd = fd
        self.type = _socket.SocketKind(stype & _SOCK_TYPE_MASK)
        self.proto = proto
        self._timeout: float | None = _socket.getdefaulttimeout()
        # SO_SNDBUF / SO_RCVBUF as getsockopt reports them (the kernel doubles what is set)
        self._bufs = {_socket.SO_SNDBUF: _DEFAULT_BUF, _socket.SO_RCVBUF: _DEFAULT_BUF}

    def __repr__(self) -> str:
        return f"<mockkernel NetlinkSocket fd={self._fd} proto={self.proto}>"

    # -- fd ------------------------------------------------------------------------------------
    def fileno(self) -> int:
        return self._fd

    def _sock(self) -> NetlinkSock:
        if self._fd < 0:
            raise kerr(EBADF)
        file = self._proc.files.get(self._fd)
        if file is None or file.f_op is not netlink_fops:
            raise kerr(EBADF)
        sock: NetlinkSock = file.private_data
        return sock

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        if fd in self._proc.files:
            self._proc.sys_close(fd)
        else:
            REAL.close(fd)

    def detach(self) -> int:
        fd, self._fd = self._fd, -1
        return fd

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            with contextlib.suppress(Exception):
                self.close()

    # -- blocking ------------------------------------------------------------------------------
    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    # -- addresses -----------------------------------------------------------------------------
    @staticmethod
    def _addr(address: Any) -> tuple[int, int]:
        if not isinstance(address, tuple) or len(address) != 2:
            raise TypeError("AF_NETLINK address must be tuple, not " + type(address).__name__)
        return int(address[0]) & 0xFFFFFFFF, int(address[1]) & 0xFFFFFFFF

    def bind(self, address: Any) -> None:
        pid, groups = self._addr(address)
        self._sock().bind(pid, groups)

    def getsockname(self) -> tuple[int, int]:
        sock = self._sock()
        return sock.portid, sock.groups

    def getpeername(self) -> tuple[int, int]:
        self._sock()
        return 0, 0

    def connect(self, address: Any) -> None:
        pid, _groups = self._addr(address)
        sock = self._sock()
        if pid:
            raise kerr(EINVAL)
        sock.autobind()

    # -- options -------------------------------------------------------------------------------
    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        sock = self._sock()
        if isinstance(value, int):
            v = value
        else:
            data = bytes(value)
            if len(data) < 4:
                if level == _socket.SOL_SOCKET:
                    raise kerr(EINVAL)
                data = bytes(4)  # netlink_setsockopt: a short value reads as 0
            v = struct.unpack_from("=i", data)[0]
        if level == _socket.SOL_SOCKET:
            if optname not in self._bufs:
                raise kerr(ENOPROTOOPT)
            self._bufs[optname] = max(min(v & 0xFFFFFFFF, _DEFAULT_BUF) * 2, _SOCK_MIN_BUF)
            return
        sock.setsockopt(level, optname, v)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        sock = self._sock()
        if level == _socket.SOL_SOCKET:
            values = {
                **self._bufs,
                _socket.SO_TYPE: int(self.type),
                _socket.SO_PROTOCOL: self.proto,
                _socket.SO_DOMAIN: _AF_NETLINK,
            }
            if optname not in values:
                raise kerr(ENOPROTOOPT)
            v = values[optname]
        else:
            if buflen is not None and buflen < 4:
                raise kerr(EINVAL)  # netlink_getsockopt: len < sizeof(int)
            v = sock.getsockopt(level, optname)
        if buflen is None:
            return v
        return struct.pack("=i", v)[:buflen]

    # -- data ----------------------------------------------------------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        return self._sock().send(bytes(data), 0)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.send(data, flags)

    def sendto(self, data: Any, flags_or_addr: Any, addr: Any = None) -> int:
        address = flags_or_addr if addr is None else addr
        pid, _groups = self._addr(address)
        return self._sock().send(bytes(data), pid)

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        data = b"".join(bytes(b) for b in buffers)
        pid = 0 if address is None else self._addr(address)[0]
        return self._sock().send(data, pid)

    def _recv(self, bufsize: int, flags: int) -> tuple[bytes, int]:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        sock = self._sock()
        try:
            return sock.recv(bufsize, flags)
        except BlockingIOError:
            if self._timeout == 0.0 or flags & _MSG_DONTWAIT or sock.nonblock:
                raise
            if self._timeout is not None:
                raise TimeoutError("timed out") from None
            # blocking with nothing queued would hang forever: nobody else can answer
            raise kerr(EAGAIN, "a blocking recv with nothing queued would never return") from None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._recv(bufsize, flags)[0]

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, tuple[int, int]]:
        return self._recv(bufsize, flags)[0], (0, 0)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        n = nbytes or len(view)
        data, _full = self._recv(n, flags)
        view[: len(data)] = data
        return len(data)

    def recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, tuple[int, int]]:
        return self.recv_into(buffer, nbytes, flags), (0, 0)

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[bytes, list[Any], int, tuple[int, int]]:
        data, full = self._recv(bufsize, flags)
        msg_flags = _MSG_TRUNC if full > len(data) else 0
        anc: list[Any] = []
        # netlink_cmsg_recv_pktinfo: the group a datagram came from (0: unicast)
        if self._sock().flag_opts.get(_NETLINK_PKTINFO) and ancbufsize >= _socket.CMSG_SPACE(4):
            anc.append((_SOL_NETLINK, _NETLINK_PKTINFO, struct.pack("=I", 0)))
        return data, anc, msg_flags, (0, 0)


class SocketCtx:
    """What ``socket.socket`` needs of one redirection: the kernel, the process, and the
    ``AF_INET`` stream class (built on the first such socket)."""

    def __init__(self, kernel: TaskContext, proc: Process) -> None:
        self.kernel = kernel
        self.proc = proc
        self._inet: type[_socket.socket] | None = None
        #: a ``socket.socket`` subclass defined before the redirection -> its mock variant
        self._variants: dict[type, type] = {}

    def mock_variant(self, cls: type) -> type:
        """``cls`` (a ``socket.socket`` subclass defined before the redirection was
        installed) with :class:`MockSocket` under it, for an instance that turns out to
        be a mock netlink socket (made once per class and redirection)."""
        variant = self._variants.get(cls)
        if variant is None:
            variant = _SocketMeta(cls.__name__, (cls, MockSocket), {"__module__": cls.__module__})
            variant.__qualname__ = cls.__qualname__
            self._variants[cls] = variant
        return variant

    def inet(self, family: int, stype: int, proto: int) -> _socket.socket:
        if self._inet is None:
            self._inet = make_inet_type(self.kernel, self.proc)
        return self._inet(family, stype, proto)

    def netlink(self, stype: int, proto: int = NETLINK_GENERIC) -> NetlinkSocket:
        """``socket(AF_NETLINK, stype, proto)`` in the mock kernel: every netlink
        protocol is the mock's (one the kernel lacks is ``EPROTONOSUPPORT``)."""
        from ..net import net_state

        if stype == -1:
            stype = _socket.SOCK_STREAM
        if proto == -1:  # CPython's default: 0, NETLINK_ROUTE
            proto = 0
        if stype & _SOCK_TYPE_MASK not in (_socket.SOCK_RAW, _socket.SOCK_DGRAM):
            raise kerr(ESOCKTNOSUPPORT)
        flags = os.O_CLOEXEC | (os.O_NONBLOCK if stype & _SOCK_NONBLOCK else 0)
        kernel, proc = self.kernel, self.proc
        fd = netlink_create(
            kernel, net_state(kernel).netlink, proc, proto, flags, stype & _SOCK_TYPE_MASK
        )
        s = NetlinkSocket(proc, fd, stype, proto)
        if stype & _SOCK_NONBLOCK:
            s.settimeout(0.0)
        return s


def _active_ctx() -> SocketCtx | None:
    """The installed redirection's socket context (None: none is installed)."""
    redir = _redirect.Redirection.active  # (no import per socket)
    return redir.socket_ctx if redir is not None else None


class _SocketMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, REAL_SOCKET | NetlinkSocket)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, REAL_SOCKET | NetlinkSocket)


class MockSocket(REAL_SOCKET, metaclass=_SocketMeta):  # type: ignore[misc,valid-type]
    """``socket.socket`` while a redirection is installed: ``AF_NETLINK`` is mock,
    ``AF_INET`` stream sockets become mock when bound to a NIC address, the rest is real.
    One class for every redirection (made once: a class costs ~25 us to build); it finds
    the installed one's context when called.

    A class a program derives from ``socket.socket`` while installed (pyroute2's
    ``NoClose``) derives from this one: its instances are real ``socket.socket`` objects,
    except that one made for ``AF_NETLINK`` or with ``fileno=`` a mock netlink fd stands
    for a :class:`NetlinkSocket` (``_nl``), to which the socket methods go."""

    #: the mock netlink socket a subclass's instance stands for (None: a real socket)
    _nl: NetlinkSocket | None = None

    def __new__(
        cls, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None
    ) -> Any:
        if cls is not MockSocket:  # a subclass: __init__ makes it real or mock
            return REAL_SOCKET.__new__(cls)
        ctx = _active_ctx()
        if ctx is None:  # a reference kept past uninstall: the real class
            return REAL_SOCKET(family, type, proto, fileno)
        if fileno is None:
            if family == _AF_NETLINK:
                return ctx.netlink(type, proto)
            if family in (_AF_INET, -1) and (type == -1 or type & _SOCK_TYPE_MASK == 1):
                # socket.socket() is AF_INET/SOCK_STREAM (CPython's defaults)
                return ctx.inet(_AF_INET, 1 if type == -1 else type, proto)
            return REAL_SOCKET(family, type, proto)
        nl = _adopt(ctx, fileno)
        return REAL_SOCKET(family, type, proto, fileno) if nl is None else nl

    def __init__(
        self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None
    ) -> None:
        """A subclass's instance: mock for ``AF_NETLINK`` or a mock netlink fd."""
        ctx = _active_ctx()
        nl: NetlinkSocket | None = None
        if ctx is not None:
            if fileno is None and family == _AF_NETLINK:
                nl = ctx.netlink(type, proto)
            elif fileno is not None:
                nl = _adopt(ctx, fileno)
        if nl is None:
            _REAL_SOCKET_INIT(self, family, type, proto, fileno)
            return
        self._nl = nl
        self._io_refs = 0
        self._closed = False

    @property
    def family(self) -> Any:
        nl = self._nl
        return nl.family if nl is not None else super().family

    @property
    def type(self) -> Any:
        nl = self._nl
        return nl.type if nl is not None else super().type

    @property
    def proto(self) -> int:
        nl = self._nl
        return nl.proto if nl is not None else int(REAL_SOCKET.proto.__get__(self))

    @property
    def timeout(self) -> float | None:
        nl = self._nl
        if nl is not None:
            return nl.gettimeout()
        value: float | None = REAL_SOCKET.timeout.__get__(self)
        return value

    def dup(self) -> Any:
        """``socket.dup``: through ``os.dup``, so a mock fd is duplicated in the mock."""
        if self._nl is None:
            return super().dup()
        return type(self)(self.family, self.type, self.proto, fileno=os.dup(self.fileno()))

    def _real_close(self, *args: Any) -> None:
        nl = self._nl
        if nl is None:
            super()._real_close(*args)
        else:
            nl.close()

    def detach(self) -> int:
        nl = self._nl
        if nl is None:
            fd: int = super().detach()
            return fd
        self._closed = True
        return nl.detach()


def _delegate(name: str) -> Any:
    """A ``MockSocket`` method: the real one, or ``NetlinkSocket``'s for a mock instance."""
    real = getattr(REAL_SOCKET, name)

    def method(self: MockSocket, *args: Any, **kwargs: Any) -> Any:
        nl = self._nl
        if nl is None:
            return real(self, *args, **kwargs)
        return getattr(nl, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = real.__doc__
    return method


for _name in (
    "fileno",
    "bind",
    "connect",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "send",
    "sendall",
    "sendto",
    "sendmsg",
    "recv",
    "recvfrom",
    "recv_into",
    "recvfrom_into",
    "recvmsg",
    "setblocking",
    "getblocking",
    "settimeout",
    "gettimeout",
):
    setattr(MockSocket, _name, _delegate(_name))
del _name


def socket_init(
    self: _socket.socket,
    family: int = -1,
    type: int = -1,
    proto: int = -1,
    fileno: int | None = None,
) -> None:
    """``socket.socket.__init__`` while a redirection is installed.

    A class derived from ``socket.socket`` *before* the redirection was installed (a
    library imported by the test module: pyroute2's ``NoClose``) does not derive from
    :class:`MockSocket`.  Its instance made for ``AF_NETLINK``, or with ``fileno=`` a mock
    netlink fd, becomes an instance of the class with :class:`MockSocket` under it
    (:meth:`SocketCtx.mock_variant`: same methods of its own, the socket calls go to the
    mock socket); every other socket is real, as before."""
    cls = builtins_type(self)
    # (not issubclass: MockSocket's metaclass says every socket class is one)
    ctx = _active_ctx() if cls is not REAL_SOCKET and MockSocket not in cls.__mro__ else None
    if ctx is not None and (
        (fileno is None and family == _AF_NETLINK)
        or (isinstance(fileno, int) and fileno in ctx.proc.files)
    ):
        try:
            self.__class__ = ctx.mock_variant(cls)
        except TypeError:  # a layout of its own (__slots__): it stays a real socket
            pass
        else:
            MockSocket.__init__(self, family, type, proto, fileno)  # type: ignore[arg-type]
            return
    _REAL_SOCKET_INIT(self, family, type, proto, fileno)


def _adopt(ctx: SocketCtx, fileno: Any) -> NetlinkSocket | None:
    """``socket.socket(fileno=fd)``: a mock netlink fd gives a :class:`NetlinkSocket` of
    its socket; any other mock fd is ``ENOTSOCK``; a real fd gives None (real)."""
    proc = ctx.proc
    file = proc.files.get(fileno) if isinstance(fileno, int) else None
    if file is None:
        return None
    if file.f_op is not netlink_fops:
        raise kerr(ENOTSOCK)
    sock: NetlinkSock = file.private_data
    s = NetlinkSocket(proc, fileno, sock.sock_type, sock.protocol)
    if sock.nonblock:
        s.settimeout(0.0)
    return s


class InetSocket(REAL_SOCKET):  # type: ignore[misc,valid-type]
    """A real TCP socket; bound to a mock NIC's address, a mock devmem one.

    The mock side is a kernel :class:`~mockkernel.net.tcp_sock.TcpSocket` (``_ts``),
    whose rules the supervisor's front-end shares; this class only converts Python's
    calling conventions.  :func:`make_inet_type` makes the subclass of one redirection,
    whose class attributes ``_kernel``, ``_proc`` and ``_tcp`` say whose sockets they
    are."""

    _kernel: TaskContext
    _proc: Process
    _tcp: TcpTable
    _ts: TcpSocket | None = None

    def _new_ts(self) -> TcpSocket:
        """The kernel socket this one becomes, with the ``SO_RCVTIMEO`` set so far."""
        ts = TcpSocket(self._kernel, self._tcp)
        t = rcvtimeo_of(super().getsockopt(_SOL_SOCKET, SO_RCVTIMEO_OLD, 16))
        ts.rcvtimeo = None if t is False else t
        return ts

    def _call(self, fn: Callable[[bool], _T], events: int, dontwait: bool = False) -> _T:
        """CPython's ``sock_call_ex`` over a mock socket: ``fn(blocking)`` makes the call.
        Blocking (no timeout): the kernel sleeps (``SO_RCVTIMEO`` applies), and a signal
        whose handler returns restarts the call (PEP 475); a timeout: wait up to it for
        ``events``, then the call without sleeping (``TimeoutError``); 0: no sleep."""
        timeout = self.gettimeout()
        if dontwait or timeout == 0.0:
            return fn(False)
        if timeout is None:
            while True:
                with contextlib.suppress(InterruptedError):
                    return fn(True)
        ts = self._ts
        assert ts is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0 or not ts.wait_poll(events, left):
                    raise TimeoutError("timed out")
            except InterruptedError:
                continue
            with contextlib.suppress(WouldBlock):
                return fn(False)

    def bind(self, address: Any) -> None:
        if isinstance(address, tuple) and len(address) == 2:
            host = address[0]
            if TcpSocket.is_mock_addr(self._tcp, host):
                if self._ts is not None:
                    raise kerr(EINVAL)
                ts = self._new_ts()
                ts.bind(host, int(address[1]))
                self._ts = ts
                self._proc.fd_pollers[self.fileno()] = ts.poll
                return
        super().bind(address)

    def connect(self, address: Any) -> None:
        """To a listener on a mock NIC address: this socket is the remote peer of the
        connection it accepts (``TcpSocket.connect``; ``BlockingIOError`` ``EINPROGRESS``
        on a non-blocking socket, as CPython's)."""
        mock = isinstance(address, tuple) and len(address) == 2
        if mock and TcpSocket.is_mock_addr(self._tcp, address[0]):
            ts = self._ts or self._new_ts()
            self._ts = ts
            fd = self.fileno()
            self._proc.fd_pollers[fd] = ts.poll
            try:
                ts.connect(address[0], int(address[1]), self.gettimeout() == 0.0)
            finally:
                if ts.out is not None:
                    self._proc.fd_readers[fd] = self._read
                    self._proc.fd_writers[fd] = self._write
                    self._proc.fd_socks[fd] = ts
            return
        super().connect(address)

    def connect_ex(self, address: Any) -> int:
        """``connect`` with the error as a number (0: connected)."""
        try:
            self.connect(address)
        except OSError as e:
            return e.errno or 0
        return 0

    def shutdown(self, how: int) -> None:
        if self._ts is None:
            super().shutdown(how)
        else:
            self._ts.shutdown(how)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        ts = self._ts
        if ts is not None:
            try:
                v = ts.getsockopt(level, optname)
            except NotMine:
                pass
            else:
                return v if buflen is None else v.to_bytes(4, "little")[:buflen]
        if buflen is None:
            return super().getsockopt(level, optname)
        return super().getsockopt(level, optname, buflen)

    def listen(self, backlog: int = 128) -> None:
        """A mock socket listens in the kernel; a host one bound to ``0.0.0.0`` listens
        on the host and, one kernel, on the mock NIC addresses (``TcpSocket.listen_any``:
        ``accept`` then takes a connection from either)."""
        if self._ts is not None:
            self._ts.listen()
            return
        host, port = super().getsockname()[:2]
        wildcard = host == "0.0.0.0" and self._tcp.has_addresses()
        if wildcard and port and self._tcp.port_listening(port):
            raise kerr(EADDRINUSE)  # a mock address listens on it
        super().listen(backlog)
        if not wildcard:
            return
        ts = self._new_ts()
        ts.host_fd = hide(self._kernel, REAL.dup(self.fileno()))  # (its readiness: the host's side)
        try:
            ts.listen_any(host, super().getsockname()[1])
        except BaseException:
            ts.release()
            raise
        self._ts = ts
        self._proc.fd_pollers[self.fileno()] = ts.poll

    def getsockname(self) -> Any:
        ts = self._ts
        if ts is not None and not ts.is_wildcard:
            return ts.addr
        return super().getsockname()

    def getpeername(self) -> Any:
        if self._ts is not None:
            return self._ts.getpeername()
        return super().getpeername()

    def accept(self) -> tuple[Any, Any]:
        ts = self._ts
        if ts is None:
            accepted: tuple[Any, Any] = super().accept()
            return accepted
        new = self._call(lambda blocking: ts.accept(nonblock=not blocking), EPOLLIN)
        if new is None:  # a wildcard listener's host side has a connection (ready now)
            host: tuple[Any, Any] = super().accept()
            return host
        conn = type(self)(_socket.AF_INET, _socket.SOCK_STREAM)
        conn._ts = new
        if new.rcvtimeo is not None:  # inherited (sk_clone): the real socket's too
            REAL_SOCKET.setsockopt(conn, _SOL_SOCKET, SO_RCVTIMEO_OLD, rcvtimeo_value(new.rcvtimeo))
        fd = conn.fileno()
        self._proc.fd_pollers[fd] = new.poll
        self._proc.fd_readers[fd] = conn._read
        self._proc.fd_writers[fd] = conn._write
        self._proc.fd_socks[fd] = new
        return conn, new.getpeername()

    def send(self, data: Any, flags: int = 0) -> int:
        ts = self._ts
        if ts is None:
            n: int = super().send(data, flags)
            return n
        if self.fileno() < 0:
            raise kerr(EBADF)
        return ts.send(bytes(memoryview(data).cast("B")), flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        ts = self._ts
        if ts is None:
            super().sendall(data, flags)
            return
        self.send(data, flags)

    def _write(self, data: bytes) -> int:
        """``write(2)`` on the connection: ``send`` with no flags."""
        return self.send(data)

    def _read(self, n: int) -> bytes:
        """``read(2)`` on the connection: ``recv`` with no flags (``sock_read_iter``)."""
        if n < 0:
            raise kerr(EINVAL)
        return self.recv(n)

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Any:
        ts = self._ts
        if ts is None:
            return super().recvmsg(bufsize, ancbufsize, flags)
        if self.fileno() < 0:
            raise kerr(EBADF)
        data, anc, msg_flags = self._call(
            lambda blocking: ts.recvmsg(bufsize, ancbufsize, flags, blocking=blocking),
            EPOLLIN,
            bool(flags & _MSG_DONTWAIT),
        )
        return data, anc, msg_flags, None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data: bytes
        if self._ts is None:
            data = super().recv(bufsize, flags)
            return data
        data = self.recvmsg(bufsize, 0, flags)[0]
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self._ts is None:
            n: int = super().recv_into(buffer, nbytes, flags)
            return n
        view = memoryview(buffer).cast("B")
        data = self.recvmsg(nbytes or len(view), 0, flags)[0]
        view[: len(data)] = data
        return len(data)

    def setsockopt(self, level: int, optname: int, value: Any, optlen: Any = None) -> Any:
        ts = self._ts
        if ts is not None:
            raw = value.to_bytes(4, "little", signed=True) if isinstance(value, int) else value
            try:
                return ts.setsockopt(level, optname, bytes(raw) if raw is not None else b"")
            except NotMine:
                pass  # the real socket underneath has it
        if optlen is None:
            return super().setsockopt(level, optname, value)
        return super().setsockopt(level, optname, value, optlen)

    def close(self) -> None:
        ts, self._ts = self._ts, None
        fd = self.fileno()
        if ts is not None:
            self._proc.fd_socks.pop(fd, None)
            for table in (self._proc.fd_pollers, self._proc.fd_readers, self._proc.fd_writers):
                table.pop(fd, None)
            ts.release()
        super().close()


def make_inet_type(kernel: TaskContext, proc: Process) -> type[_socket.socket]:
    """The ``AF_INET``/``SOCK_STREAM`` socket class of ``proc``: real until bound to a NIC
    address (:class:`InetSocket`, bound to this kernel and process)."""
    from ..net import net_state

    attrs = {"_kernel": kernel, "_proc": proc, "_tcp": net_state(kernel).tcp}
    cls: type[_socket.socket] = type("InetSocket", (InetSocket,), attrs)
    return cls


#: ``socket.if_*`` as imported before any redirection.
REAL_IF_NAMETOINDEX = _socket.if_nametoindex
REAL_IF_INDEXTONAME = _socket.if_indextoname
REAL_IF_NAMEINDEX = _socket.if_nameindex


def make_if_functions(kernel: TaskContext) -> dict[str, Any]:
    """``socket.if_nametoindex``/``if_indextoname``/``if_nameindex`` in the mock kernel's
    network namespace (``lo`` and the NICs' net devices), with CPython's argument
    conventions and errors (glibc answers through ``SIOCGIFINDEX``/``SIOCGIFNAME``)."""
    from ..net import net_state

    def devices() -> dict[int, Any]:
        return net_state(kernel).netdev.devices

    def if_nametoindex(oname: Any, /) -> int:
        name = os.fsencode(oname)  # PyUnicode_FSConverter: str, bytes, PathLike
        for ifindex, dev in devices().items():
            if os.fsencode(dev.name) == name:
                return int(ifindex)
        raise OSError("no interface with this name")

    def if_indextoname(index: Any, /) -> str:
        if not isinstance(index, int):
            return str(REAL_IF_INDEXTONAME(index))  # CPython's own TypeError
        if index < 0 or index >= 1 << 64:
            return str(REAL_IF_INDEXTONAME(index))  # CPython's own OverflowError
        dev = devices().get(index & 0xFFFFFFFF)  # (unsigned int)
        if dev is None:
            raise OSError(6, os.strerror(6))  # ENXIO, as glibc sets it
        return str(dev.name)

    def if_nameindex() -> list[tuple[int, str]]:
        return [(i, d.name) for i, d in sorted(devices().items())]

    return {
        "if_nametoindex": if_nametoindex,
        "if_indextoname": if_indextoname,
        "if_nameindex": if_nameindex,
    }


# (circular: redirect.py builds on this module; the name is read at call time only)
from . import redirect as _redirect  # noqa: E402
