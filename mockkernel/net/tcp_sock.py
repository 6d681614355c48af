"""The socket calls of a TCP socket on a mock NIC address (``af_inet.c``, ``tcp.c``).

A :class:`TcpSocket` is what a program's ``AF_INET``/``SOCK_STREAM`` socket becomes once
it is bound to a mock NIC's IPv4 address (``NetDevice.ipv4``): bound, then listening
(its :class:`~mockkernel.net.devmem_tcp.TcpListener`), or an accepted connection (its
:class:`~mockkernel.net.devmem_tcp.DevmemTcpSock`).  Both front-ends call it, so the
rules are written once: the in-process ``socket.socket`` subclass
(``userspace/sockets.py``: the real socket stays the fd) and the supervisor
(``supervisor/tcpsock.py``: the fd becomes a mock socket file, :func:`tcp_sock_file`).

Rules (``tcp_recvmsg``, ``inet_accept``, ``sock_setsockopt``, ``tcp_poll``):

* ``bind`` twice: ``EINVAL``; port 0 picks an ephemeral port, a listening one is
  ``EADDRINUSE`` (``TcpTable.port_for``).
* ``accept`` on a socket that is not listening: ``EINVAL``; nothing queued: a
  non-blocking caller gets ``EAGAIN`` (``WouldBlock``), a blocking one sleeps
  (``inet_csk_wait_for_connect``) until a peer connects -- another process of the tree,
  the test's ``TcpPeer`` -- or its ``SO_RCVTIMEO`` ends (``EAGAIN``) or a signal comes
  (``EINTR``: see ``mockkernel/wait.py``).
* ``recvmsg``: ``MSG_ERRQUEUE`` first (an empty error queue: ``EAGAIN``); a listener is
  ``ENOTCONN`` (``MSG_OOB``: ``EINVAL`` on a bound one), then the connection's
  ``DevmemTcpSock.recvmsg``; nothing queued: ``EAGAIN`` for a non-blocking caller, a
  blocking one sleeps (``sk_wait_data``) until bytes or the peer's FIN arrive, its
  ``SO_RCVTIMEO`` ends or a signal comes; ``MSG_WAITALL`` sleeps until the buffer can be
  filled (a timeout or a signal then returns what is queued, if anything).
* ``connect``: a non-blocking one is ``EINPROGRESS`` (the connection is made at once:
  writable, ``SO_ERROR`` 0; the next ``connect`` says 0, then ``EISCONN``); nobody
  listening: ``ECONNREFUSED``, or for a non-blocking one ``EINPROGRESS`` then
  ``SO_ERROR`` ``ECONNREFUSED`` (read once) and ``POLLERR | POLLHUP``.
* ``SO_RCVTIMEO`` (``sk_rcvtimeo``) is kept by the mock as well as set on the host socket
  (:func:`rcvtimeo_of`); ``SO_ERROR`` is the mock's (``sock_error``).
* ``setsockopt(SOL_SOCKET, SO_DEVMEM_DONTNEED)`` on a connection frees tokens;
  ``SO_RCVLOWAT`` and ``SO_PEEK_OFF`` would change what ``recv`` returns and are refused
  (``EOPNOTSUPP``, one ``devmem_tcp.not_modelled`` event); every other option is the
  host socket's (:class:`~mockkernel.errors.NotMine`: the front-end sets it there).
* ``send`` on a socket that is not connected: ``EPIPE`` (``sk_stream_wait_connect``).
"""

from __future__ import annotations

import os
import select
import stat
import struct
from collections.abc import Callable
from errno import (
    EAGAIN,
    EBADF,
    ECONNREFUSED,
    EINPROGRESS,
    EINTR,
    EINVAL,
    EISCONN,
    ENOTCONN,
    EOPNOTSUPP,
    EPIPE,
)
from typing import TYPE_CHECKING

from ..errors import NotMine, kerr
from ..fs import FMODE_READ, FMODE_WRITE, File, FileOperations, Inode
from ..poll import EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLRDNORM, EPOLLWRNORM
from ..realfd import REAL
from ..trace import TracePoint
from ..uapi.linux.devmem_socket import SO_DEVMEM_DONTNEED
from ..wait import wait_event_interruptible_timeout
from .dev_ioctl import SOCK_DEV_IOCTLS
from .devmem_tcp import MSG_WAITALL, WouldBlock, trace_devmem_tcp_not_modelled

if TYPE_CHECKING:
    from ..process import TaskContext
    from ..trace import Tracer
    from .devmem_tcp import DevmemTcpSock, TcpListener, TcpTable

__all__ = [
    "PEER_ADDR",
    "SO_RCVTIMEO_NEW",
    "SO_RCVTIMEO_OLD",
    "TcpSocket",
    "WouldBlock",
    "rcvtimeo_of",
    "rcvtimeo_value",
    "tcp_sock_file",
    "tcp_sock_fops",
    "tcp_splice_read",
    "tcp_splice_write",
]

SOL_SOCKET = 1
AF_INET = 2
SO_ERROR, SO_RCVLOWAT, SO_ACCEPTCONN, SO_PEEK_OFF = 4, 18, 30, 42
#: ``SO_RCVTIMEO`` with a ``struct timeval`` (glibc's on x86-64) and with a
#: ``struct __kernel_sock_timeval``: both 16 bytes of seconds and microseconds here
SO_RCVTIMEO_OLD, SO_RCVTIMEO_NEW = 20, 66
_TIMEVAL = struct.Struct("=qq")
RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK = 1, 2, 3
MSG_OOB, MSG_PEEK, MSG_TRUNC, MSG_ERRQUEUE = 0x1, 0x2, 0x20, 0x2000
trace_tcp_bind = TracePoint("tcp.bind", "addr", "port")
trace_tcp_listen = TracePoint("tcp.listen", "addr", "port")
trace_tcp_accept = TracePoint("tcp.accept", "addr", "port", "queue")
trace_tcp_connect = TracePoint("tcp.connect", "addr", "port", "queue")
trace_tcp_shutdown = TracePoint("tcp.shutdown", "how")
#: a blocking call slept: what for, and how it ended (ready, timeout, signal)
trace_tcp_sleep = TracePoint("tcp.sleep", "addr", "port", "why", "result")

#: the remote peer's address as ``accept``/``getpeername`` report it (TEST-NET-1)
PEER_ADDR = "192.0.2.254"
_PEER_PORT0 = 40000


def rcvtimeo_value(timeo: float | None) -> bytes:
    """The ``struct timeval`` ``getsockopt(SO_RCVTIMEO)`` reads for ``timeo``."""
    if timeo is None:
        return _TIMEVAL.pack(0, 0)
    usec = round(timeo * 1e6)
    return _TIMEVAL.pack(usec // 1_000_000, usec % 1_000_000)


def rcvtimeo_of(raw: bytes) -> float | bool | None:
    """``sock_set_timeout``: the timeout a ``SO_RCVTIMEO`` value sets, in seconds (``None``:
    none, ``{0, 0}``; 0.0 for a negative ``tv_sec``, as Linux); False when Linux refuses
    it (short: ``EINVAL``; ``tv_usec`` out of range: ``EDOM``) -- the host says which."""
    if len(raw) < _TIMEVAL.size:
        return False
    sec: int
    usec: int
    sec, usec = _TIMEVAL.unpack_from(raw)
    if not 0 <= usec < 1_000_000:
        return False
    if sec < 0:
        return 0.0
    if sec == 0 and usec == 0:
        return None
    return sec + usec / 1e6


class TcpSocket:
    """One TCP socket bound to a mock NIC address: bound, listening or connected."""

    def __init__(self, kernel: TaskContext, tcp: TcpTable) -> None:
        self.kernel = kernel
        self.tcp = tcp
        self.addr: tuple[str, int] | None = None
        self.listener: TcpListener | None = None
        self.sk: DevmemTcpSock | None = None
        self.peer: tuple[str, int] | None = None
        #: a program that connected to a listener on a mock NIC address: the accepted
        #: end it sends into (it is that connection's remote peer)
        self.out: DevmemTcpSock | None = None
        #: the family the program's socket speaks: ``AF_INET``, or ``AF_INET6`` with
        #: v4-mapped addresses (how a front-end spells the addresses; an accepted
        #: connection has its listener's)
        self.family = AF_INET
        #: ``sk_shutdown``: RCV_SHUTDOWN (1) and SEND_SHUTDOWN (2) bits
        self.shutdown_bits = 0
        #: a real fd of the host socket the program made, for the options the mock does
        #: not model (the supervisor's; in-process the program's own object is it)
        self.host_fd: int | None = None
        #: ``sk_rcvtimeo``: how long a blocking ``accept``/``recv`` sleeps (None: for ever)
        self.rcvtimeo: float | None = None
        #: ``sk_err``: what ``SO_ERROR`` reads (once) -- a refused non-blocking connect
        self.sk_err = 0
        #: connected by a non-blocking ``connect`` (``SS_CONNECTING``): the next
        #: ``connect`` says 0, not ``EISCONN``
        self.connecting = False

    def __repr__(self) -> str:
        state = "connected" if self.sk else "listening" if self.listener else "bound"
        return f"<TcpSocket {self.addr} {state}>"

    @staticmethod
    def is_mock_addr(tcp: TcpTable, host: object) -> bool:
        """Is ``host`` (a dotted IPv4 string) a present mock NIC's address?"""
        return isinstance(host, str) and tcp.nic_for(host) is not None

    # -- the calls ---------------------------------------------------------------------------
    def bind(self, host: str, port: int) -> None:
        """``inet_bind``: the address, a port chosen for 0 (``EINVAL``: bound already)."""
        if self.addr is not None:
            raise kerr(EINVAL)
        self.addr = (host, self.tcp.port_for(host, port))
        trace_tcp_bind(self.kernel.tracer, self.addr[0], self.addr[1])

    def listen(self) -> None:
        """``inet_listen``: a connection cannot listen (``EINVAL``); again: nothing."""
        if self.sk is not None or self.addr is None:
            raise kerr(EINVAL)
        if self.listener is None:
            self.listener = self.tcp.listen(*self.addr)
            trace_tcp_listen(self.kernel.tracer, self.addr[0], self.addr[1])

    def listen_any(self, host: str, port: int) -> None:
        """A host socket bound to every address (``host``: ``0.0.0.0`` or ``::``) and
        listening on the host (``host_fd``) listens on the mock NIC addresses too
        (:meth:`TcpTable.listen_any`): :meth:`accept` takes a mock connection, or says
        None when the host socket has one (the front-end accepts it there)."""
        self.listener = self.tcp.listen_any(host, port)
        self.addr = (host, port)
        trace_tcp_listen(self.kernel.tracer, host, port)

    @property
    def is_wildcard(self) -> bool:
        """A listener on every address (:meth:`listen_any`)?"""
        return self.listener is not None and self.listener.dev is None

    def _host_ready(self) -> bool:
        """Has the host socket of a wildcard listener a connection (or an error)?"""
        fd = self.host_fd
        if fd is None or self.listener is None or self.listener.dev is not None:
            return False
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(0))

    def accept(self, nonblock: bool) -> TcpSocket | None:
        """``inet_accept``: the next queued connection as a socket of its own (None: a
        wildcard listener's host socket has one, see :meth:`listen_any`)."""
        lsn = self.listener
        if lsn is None:
            raise kerr(EINVAL)
        if not lsn.backlog:
            timeo = 0.0 if nonblock else self.rcvtimeo

            def ready() -> bool:
                return bool(lsn.backlog) or self.listener is not lsn or self._host_ready()

            if timeo != 0.0:
                self._sleep(ready, timeo, "accept")
            if self.listener is not lsn:
                raise kerr(EINVAL)  # shut down while it slept: no longer listening
            if not lsn.backlog:
                if self._host_ready():
                    return None
                raise WouldBlock(EAGAIN, os.strerror(EAGAIN))
        conn = TcpSocket(self.kernel, self.tcp)
        conn.addr = self.addr
        conn.family = self.family
        conn.rcvtimeo = self.rcvtimeo  # sk_clone_lock: the listener's options
        conn.sk = lsn.backlog.popleft()
        if conn.sk.laddr is not None:
            conn.addr = (conn.sk.laddr, lsn.port)  # the address the peer connected to
        conn.peer = (PEER_ADDR, _PEER_PORT0 + self.tcp.accepted)
        self.tcp.accepted += 1
        trace_tcp_accept(self.kernel.tracer, lsn.addr, lsn.port, conn.sk.queue)
        return conn

    def connect(self, host: str, port: int, nonblock: bool = False) -> None:
        """``tcp_v4_connect`` to a listener on a mock NIC address: the program is the
        remote peer of the connection the listener accepts (what it sends arrives on
        the NIC's queue, what the listener's side sends it reads); nobody listening:
        ``ECONNREFUSED``; connected or listening already: ``EISCONN``; ``nonblock``:
        ``EINPROGRESS`` (see the module)."""
        if self.connecting:
            self.connecting = False  # __inet_stream_connect of an SS_CONNECTING socket
            return
        if self.sk is not None or self.out is not None or self.listener is not None:
            raise kerr(EISCONN)
        try:
            self.out = self.tcp.connect(host, port)
        except OSError as e:
            if nonblock and e.errno == ECONNREFUSED:  # the RST comes after EINPROGRESS
                self.sk_err = ECONNREFUSED
                raise kerr(EINPROGRESS) from None
            raise
        if self.addr is None:
            self.addr = (host, self.tcp.port_for(host, 0))
        self.peer = (host, port)
        trace_tcp_connect(self.kernel.tracer, host, port, self.out.queue)
        if nonblock:  # made already, but a non-blocking connect never waits to say so
            self.connecting = True
            raise kerr(EINPROGRESS)

    def _sleep(self, ready: Callable[[], bool], timeo: float | None, why: str) -> bool:
        """Sleep on the TCP wait queue until ``ready()`` (True) or ``timeo`` ends (False);
        ``EINTR`` for a signal.  One ``tcp.sleep`` event says how it ended."""
        result = "signal"
        try:
            ok = wait_event_interruptible_timeout(self.kernel, self.tcp.wq, ready, timeo)
            result = "ready" if ok else "timeout"
            return ok
        finally:
            host, port = self.addr or ("", 0)
            trace_tcp_sleep(self.kernel.tracer, host, port, why, result)

    def wait_poll(self, events: int, timeo: float | None) -> bool:
        """Sleep until :meth:`poll` reports one of ``events`` (True) or ``timeo`` ends
        (what a front-end with a timeout of its own does before a non-blocking call:
        CPython's ``sock_call_ex``); ``EINTR`` for a signal."""
        return self._sleep(lambda: bool(self.poll() & events), timeo, "poll")

    def getpeername(self) -> tuple[str, int]:
        if self.peer is None:
            raise kerr(ENOTCONN)
        return self.peer

    def recvmsg(
        self, bufsize: int, ancbufsize: int, flags: int, *, blocking: bool
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int]:
        """``tcp_recvmsg`` as CPython's ``recvmsg`` returns it (see :meth:`recvmsg_iov`;
        what was counted but not copied reads as zero bytes)."""
        iov, copied, anc, msg_flags = self.recvmsg_iov(
            bufsize, ancbufsize, flags, blocking=blocking
        )
        return iov + bytes(copied - len(iov)), anc, msg_flags

    def recvmsg_iov(
        self, bufsize: int, ancbufsize: int, flags: int, *, blocking: bool
    ) -> tuple[bytes, int, list[tuple[int, int, bytes]], int]:
        """``tcp_recvmsg``: (bytes written to the buffer, the return value, control
        messages, msg_flags); ``WouldBlock`` when nothing is queued and the caller does
        not wait (a caller that would wait for ever gets ``EAGAIN``: nobody else can
        send)."""
        if flags & MSG_ERRQUEUE:  # inet_recv_error: an empty queue, never waits
            raise kerr(EAGAIN, "the socket's error queue is empty")
        timeo = self.rcvtimeo if blocking else 0.0
        sk = self.sk
        if sk is None and self.out is not None:
            return self._recv_from_listener_side(bufsize, flags, timeo)
        if sk is None:
            if flags & MSG_OOB and self.listener is None:
                raise kerr(EINVAL, "no urgent data to read")
            raise kerr(ENOTCONN)
        waitall = bool(flags & MSG_WAITALL)

        def ready() -> bool:
            if sk.closed or sk.peer_closed or self.shutdown_bits & RCV_SHUTDOWN or not bufsize:
                return True
            return sk.fills(bufsize, ancbufsize, flags) if waitall else bool(sk.rxq)

        if timeo != 0.0 and not flags & MSG_OOB and not ready():
            try:
                self._sleep(ready, timeo, "recv")
            except OSError as e:
                if e.errno != EINTR or not waitall or not sk.rxq:
                    raise
                # interrupted with bytes queued: a MSG_WAITALL returns what it has
        try:
            return sk.recvmsg_iov(bufsize, ancbufsize, flags, blocking=False)
        except WouldBlock:
            if self.shutdown_bits & RCV_SHUTDOWN:
                return b"", 0, [], 0  # nothing queued after shutdown(SHUT_RD): end of stream
            raise

    def _recv_from_listener_side(
        self, bufsize: int, flags: int, timeo: float | None
    ) -> tuple[bytes, int, list[tuple[int, int, bytes]], int]:
        """A connecting program reads what the accepted side sent: plain bytes (a
        blocking caller sleeps for them, ``MSG_WAITALL`` for ``bufsize`` of them)."""
        out = self.out
        assert out is not None
        if bufsize < 0:
            raise kerr(EINVAL)
        if flags & MSG_OOB:
            raise kerr(EINVAL, "no urgent data to read")
        want = bufsize if flags & MSG_WAITALL else 1

        def ready() -> bool:
            done = out.closed or self.shutdown_bits & RCV_SHUTDOWN or not bufsize
            return bool(done) or len(out.tx) >= want

        if timeo != 0.0 and not ready():
            try:
                self._sleep(ready, timeo, "recv")
            except OSError as e:
                if e.errno != EINTR or not out.tx or want == 1:
                    raise
        if not out.tx:
            if out.closed or bufsize == 0 or self.shutdown_bits & RCV_SHUTDOWN:
                return b"", 0, [], 0
            raise WouldBlock(EAGAIN, os.strerror(EAGAIN))
        data = bytes(out.tx[:bufsize])
        if not flags & MSG_PEEK:
            del out.tx[: len(data)]
        return (b"" if flags & MSG_TRUNC else data), len(data), [], 0

    def send(self, data: bytes, flags: int) -> int:
        """``tcp_sendmsg``: a connection sends to its peer; a connecting program's bytes
        go on the wire to the NIC (what the NIC cannot take yet stays pending, as in an
        unacknowledged window); anything else is ``EPIPE``."""
        if self.shutdown_bits & SEND_SHUTDOWN:
            raise kerr(EPIPE)
        if self.out is not None:
            if self.out.closed:
                raise kerr(EPIPE)
            self.out.deliver(data)
            return len(data)
        if self.sk is None:
            raise kerr(EPIPE)
        return self.sk.send(data, flags)

    def setsockopt(self, level: int, optname: int, value: bytes) -> int:
        """The options the mock answers; ``NotMine`` for the host socket's."""
        if level == SOL_SOCKET and optname == SO_DEVMEM_DONTNEED and self.sk is not None:
            return self.sk.setsockopt(level, optname, value)
        if level == SOL_SOCKET and optname in (SO_RCVTIMEO_OLD, SO_RCVTIMEO_NEW):
            timeo = rcvtimeo_of(value)
            if timeo is not False:  # (a bad value: the host socket says why)
                self.rcvtimeo = timeo
            raise NotMine()  # set on the host socket too: its getsockopt reads it
        if level == SOL_SOCKET and optname in (SO_RCVLOWAT, SO_PEEK_OFF):
            # they change what recv returns (its target, where MSG_PEEK starts):
            # refused rather than set on the host socket and ignored
            name = "SO_RCVLOWAT" if optname == SO_RCVLOWAT else "SO_PEEK_OFF"
            trace_devmem_tcp_not_modelled(self.kernel.tracer, name)
            raise kerr(EOPNOTSUPP, f"{name} on a mock TCP socket is not modelled")
        raise NotMine()

    def shutdown(self, how: int) -> None:
        """``inet_shutdown``: ``how`` (``SHUT_RD``/``WR``/``RDWR``) else ``EINVAL``; a
        socket neither connected nor listening is ``ENOTCONN``; a listener shut for
        reading stops listening (its queued connections are reset); a connecting
        program's ``SHUT_WR`` is a FIN: the accepted side reads the end of the stream."""
        bits = how + 1
        if bits & ~SHUTDOWN_MASK or not 0 <= how <= 2:
            raise kerr(EINVAL)
        if self.sk is None and self.out is None:
            if self.listener is None:
                raise kerr(ENOTCONN)
            if bits & RCV_SHUTDOWN:
                lsn, self.listener = self.listener, None
                self.tcp.unlisten(lsn)
            return
        self.shutdown_bits |= bits
        if bits & SEND_SHUTDOWN and self.out is not None:
            self.out.peer_closed = True
        trace_tcp_shutdown(self.kernel.tracer, how)

    def getsockopt(self, level: int, optname: int) -> int:
        """``SO_ACCEPTCONN`` (is it listening?) and ``SO_ERROR`` (``sock_error``: read
        once) are the mock's; ``NotMine`` for the host socket's options."""
        if level == SOL_SOCKET and optname == SO_ACCEPTCONN:
            return int(self.listener is not None)
        if level == SOL_SOCKET and optname == SO_ERROR:
            err, self.sk_err = self.sk_err, 0
            return err
        raise NotMine()

    def poll(self) -> int:
        """``tcp_poll``: a listener is readable with a connection to accept; a
        connection is readable with bytes queued or the peer gone (``RDHUP``), and
        writable (the mock never fills a send buffer)."""
        lsn, sk, out = self.listener, self.sk, self.out
        if out is not None:
            mask = EPOLLOUT | EPOLLWRNORM
            if out.tx:
                mask |= EPOLLIN | EPOLLRDNORM
            if out.closed:
                mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP | EPOLLHUP
            return mask
        if sk is not None:
            mask = EPOLLOUT | EPOLLWRNORM
            if sk.readable():
                mask |= EPOLLIN | EPOLLRDNORM
            if sk.peer_closed or self.shutdown_bits & RCV_SHUTDOWN:
                mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP
            if self.shutdown_bits == SHUTDOWN_MASK:
                mask |= EPOLLHUP
            return mask
        if lsn is not None:
            return EPOLLIN | EPOLLRDNORM if lsn.backlog or self._host_ready() else 0
        # bound, neither listening nor connected (TCP_CLOSE); a refused connect: POLLERR
        return EPOLLOUT | EPOLLWRNORM | EPOLLHUP | (EPOLLERR if self.sk_err else 0)

    def read(self, n: int, nonblock: bool) -> bytes:
        """``read(2)``: ``recv`` with no flags (``sock_read_iter``)."""
        if n < 0:
            raise kerr(EINVAL)
        return self.recvmsg(n, 0, 0, blocking=not nonblock)[0]

    def release(self) -> None:
        """``inet_release``: the connection's fragments come back, a listener's queue is
        reset; the host socket goes."""
        sk, self.sk = self.sk, None
        if sk is not None:
            sk.close()
        out, self.out = self.out, None
        if out is not None:
            out.peer_closed = True  # the accepted side reads the end of the stream
        lsn, self.listener = self.listener, None
        if lsn is not None:
            self.tcp.unlisten(lsn)
        host, self.host_fd = self.host_fd, None
        if host is not None:
            from ..realfd import kernel_close

            kernel_close(self.kernel, host)


def tcp_splice_read(
    sock: TcpSocket, nonblock: bool, put: Callable[[bytes], int], count: int
) -> int:
    """``tcp_splice_read`` into a pipe (``put``: what it took), for both front-ends:
    nothing queued sleeps per the *socket's* ``O_NONBLOCK`` (``nonblock``) and
    ``SO_RCVTIMEO`` (``SPLICE_F_NONBLOCK`` only spares the wait for pipe room), with
    ``recv``'s answers: ``EAGAIN``, ``EINTR``, ``ENOTCONN``, 0 once the peer closed.  The
    bytes are peeked first and taken only as far as the pipe took them."""
    data = sock.recvmsg_iov(count, 0, MSG_PEEK, blocking=not nonblock)[0]
    n = put(data) if data else 0
    if n:
        sock.recvmsg_iov(n, 0, 0, blocking=False)
    return n


def tcp_splice_write(sock: TcpSocket, take: Callable[[int], bytes], count: int) -> int:
    """``splice_to_socket`` from a pipe: what ``take`` gives (up to ``count``) sent."""
    data = take(count)
    return sock.send(data, 0) if data else 0


class TcpSockFops(FileOperations):
    """A mock TCP socket as a file (the supervisor's): ``read``/``write`` are
    ``recv``/``send`` with no flags; ``->poll`` is ``tcp_poll``."""

    name = "socket"
    #: ``sock_ioctl``: the interface ioctls (``SIOCGIFINDEX`` & co.) of any socket
    ioctls = SOCK_DEV_IOCTLS

    def release(self, file: File) -> None:
        sock: TcpSocket = file.private_data
        sock.release()

    def _read(self, file: File, count: int, pos: int) -> bytes:
        sock: TcpSocket = file.private_data
        return sock.read(count, bool(file.f_flags & os.O_NONBLOCK))

    def _write(self, file: File, data: bytes, pos: int) -> int:
        sock: TcpSocket = file.private_data
        return sock.send(data, 0)

    def _poll(self, file: File) -> int:
        sock: TcpSocket = file.private_data
        return sock.poll()

    def _dname(self, file: File) -> str:
        return f"socket:[{file.inode.ino}]"

    def _splice_read(self, file: File, pos: int, put: Callable[[bytes], int], count: int) -> int:
        return tcp_splice_read(file.private_data, bool(file.f_flags & os.O_NONBLOCK), put, count)

    def _splice_write(self, file: File, pos: int, take: Callable[[int], bytes], count: int) -> int:
        return tcp_splice_write(file.private_data, take, count)

    read = _read
    write = _write
    poll = _poll
    dname = _dname
    splice_read = _splice_read
    splice_write = _splice_write


tcp_sock_fops = TcpSockFops()


def tcp_sock_file(kernel: TaskContext, sock: TcpSocket, nonblock: bool) -> File:
    """``sock_alloc_file``: a socket file for ``sock`` (one reference, the caller's)."""
    inode = Inode(ino=kernel.new_id() + 100000, mode=stat.S_IFSOCK | 0o777, dev=0x8)
    flags = os.O_RDWR | (os.O_NONBLOCK if nonblock else 0)
    return File(kernel, tcp_sock_fops, inode, flags, FMODE_READ | FMODE_WRITE, sock)


#: at most this much of the input file per ``sendfile`` (a short count is Linux's answer
#: too: programs loop); one call never reads a huge file into memory
SENDFILE_CHUNK = 1 << 24
trace_tcp_sendfile = TracePoint("tcp.sendfile", "in_fd", "offset", "sent")


def tcp_sendfile(
    tracer: Tracer, send: Callable[[bytes], int], real_in: int, in_fd: int, in_flags: int,
    off: int | None, count: int,
) -> tuple[int, int | None]:  # fmt: skip
    """``do_sendfile`` into a mock TCP socket, for both front-ends: ``real_in`` is the
    program's input file (its fd ``in_fd``, open with ``in_flags``) as a real fd the
    caller may use, ``off`` the ``*offset`` read from the program (None: the file's
    position, which moves), ``send`` the socket's ``tcp_sendmsg``.  Returns the bytes
    sent and the new ``*offset``.  The input must be open for reading (``EBADF``) and a
    regular file (a pipe, socket or directory: ``EINVAL``, no ``splice_read`` modelled);
    a negative ``*offset`` is ``EINVAL``."""
    if in_flags & os.O_ACCMODE == os.O_WRONLY or in_flags & os.O_PATH:
        raise kerr(EBADF)
    if not stat.S_ISREG(REAL.fstat(real_in).st_mode):
        raise kerr(EINVAL)
    if off is not None and off < 0:
        raise kerr(EINVAL)
    want = min(count, SENDFILE_CHUNK)
    if want <= 0:
        return 0, off
    data = REAL.pread(real_in, want, off) if off is not None else REAL.read(real_in, want)
    sent = 0
    try:
        if data:
            sent = send(data)
    finally:
        if off is None and sent < len(data):  # what did not go out is read again
            REAL.lseek(real_in, sent - len(data), os.SEEK_CUR)
    if tracer.enabled:
        trace_tcp_sendfile(tracer, in_fd, off, sent)
    return sent, None if off is None else off + sent
