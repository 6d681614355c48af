"""select / poll / epoll on a TCP socket that became mock by binding to the NIC address:
the kernel answers (``tcp_poll``), not the idle real socket underneath."""

from __future__ import annotations

import select
import socket
import threading
import time

from mockkernel import Kernel
from mockkernel.testing.net import TcpPeer

ADDR = ("192.0.2.1", 5201)
IN, OUT = select.POLLIN, select.POLLOUT


def _revents(sock: socket.socket, events: int = IN | OUT | select.POLLPRI) -> int:
    p = select.poll()
    p.register(sock, events)
    got = p.poll(0)
    return got[0][1] if got else 0


def test_listener_and_connection_readiness(mock_kernel: Kernel) -> None:
    proc = mock_kernel.init_process
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(ADDR)
    # bound, neither listening nor connected: TCP_CLOSE (OUT and HUP, as a real one)
    assert _revents(server) == OUT | select.POLLHUP
    server.listen(1)
    assert _revents(server) == 0  # nothing to accept
    assert select.select([server], [], [], 0) == ([], [], [])
    peer = TcpPeer.connect(mock_kernel, *ADDR)
    assert _revents(server) == IN
    assert select.select([server], [], [], 0)[0] == [server]
    conn, _ = server.accept()
    assert _revents(server) == 0
    assert _revents(conn) == OUT  # connected, nothing queued
    peer.send(b"hello")
    assert _revents(conn) == IN | OUT
    assert select.select([conn], [conn], [], 0) == ([conn], [conn], [])
    assert conn.recv(100) == b"hello"
    assert _revents(conn) == OUT
    peer.close()
    # the peer's FIN: readable (recv gives b""), RDHUP when asked for
    assert _revents(conn, IN | OUT | select.POLLRDHUP) == IN | OUT | select.POLLRDHUP
    assert conn.recv(100) == b""
    fds = {server.fileno(), conn.fileno()}
    conn.close()
    server.close()
    assert not fds & set(proc.fd_pollers)  # nothing left behind


def test_a_blocking_select_wakes_when_the_peer_sends(mock_kernel: Kernel) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(ADDR)
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *ADDR)
    conn, _ = server.accept()
    try:
        timer = threading.Timer(0.05, peer.send, (b"late",))
        t0 = time.monotonic()
        timer.start()
        try:
            r, _w, _x = select.select([conn], [], [], 5)
        finally:
            timer.join()
        assert r == [conn] and time.monotonic() - t0 >= 0.04
        assert conn.recv(10) == b"late"
    finally:
        conn.close()
        server.close()


def test_epoll_and_selectors_see_the_mock_state(mock_kernel: Kernel) -> None:
    import selectors

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(ADDR)
    server.listen(1)
    try:
        with select.epoll() as ep, selectors.DefaultSelector() as sel:
            ep.register(server.fileno(), select.EPOLLIN)
            sel.register(server, selectors.EVENT_READ)
            assert ep.poll(0) == [] and sel.select(0) == []
            TcpPeer.connect(mock_kernel, *ADDR)
            assert ep.poll(0) == [(server.fileno(), select.EPOLLIN)]
            assert [key.fileobj for key, _ in sel.select(0)] == [server]
            conn, _ = server.accept()
            conn.close()
    finally:
        server.close()


def test_real_tcp_sockets_keep_real_readiness(mock_kernel: Kernel) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as real:
        real.bind(("127.0.0.1", 0))
        real.listen(1)
        assert real.fileno() not in mock_kernel.init_process.fd_pollers
        assert _revents(real) == 0
        with socket.create_connection(real.getsockname()):
            deadline = time.monotonic() + 5
            while not _revents(real) and time.monotonic() < deadline:
                time.sleep(0.001)
            assert _revents(real) == IN
            conn, _ = real.accept()
            conn.close()


def test_os_read_on_a_mock_connection_reads_the_stream(mock_kernel: Kernel) -> None:
    """``read(2)`` on a connected socket is ``recv`` with no flags; the idle real socket
    underneath would say ENOTCONN."""
    import errno
    import os

    proc = mock_kernel.init_process
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(ADDR)
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *ADDR)
    conn, _ = server.accept()
    fd = conn.fileno()
    try:
        peer.send(b"hello world")
        assert os.read(fd, 5) == b"hello"
        assert os.read(fd, 100) == b" world"
        conn.setblocking(False)
        try:
            os.read(fd, 10)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("an empty non-blocking read returned")
        try:
            os.read(fd, -1)
        except OSError as e:
            assert e.errno == errno.EINVAL
        else:
            raise AssertionError("a negative count was accepted")
        peer.close()
        assert os.read(fd, 10) == b""  # end of stream
        # a listener (and any real socket) keeps the real answer
        try:
            os.read(server.fileno(), 10)
        except OSError as e:
            assert e.errno == errno.ENOTCONN
        else:
            raise AssertionError("read on a listener worked")
    finally:
        conn.close()
        server.close()
    assert fd not in proc.fd_readers and fd not in proc.fd_pollers


def test_the_program_can_send_to_the_peer(mock_kernel: Kernel) -> None:
    """``send``/``sendall``/``os.write`` on a mock connection reach the peer
    (``TcpPeer.recv``); after the peer's close they are ``EPIPE``."""
    import errno
    import os

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(ADDR)
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *ADDR)
    conn, _ = server.accept()
    fd = conn.fileno()
    try:
        assert conn.send(b"ping ") == 5
        conn.sendall(memoryview(b"and "))
        assert os.write(fd, bytearray(b"pong")) == 4
        assert peer.recv(3) == b"pin" and peer.recv() == b"g and pong"
        assert peer.recv() == b""
        for flags in (socket.MSG_OOB, 0x1000000):
            try:
                conn.send(b"x", flags)
            except OSError as e:
                assert e.errno == errno.EOPNOTSUPP and "not modelled" in str(e)
            else:
                raise AssertionError(f"send flags {flags:#x} accepted")
        assert conn.send(b"y", socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL) == 1
        peer.close()
        for send in (lambda: conn.send(b"z"), lambda: os.write(fd, b"z")):
            try:
                send()
            except OSError as e:
                assert e.errno == errno.EPIPE
            else:
                raise AssertionError("a send after the peer closed worked")
        # a listener is not connected: the real socket's EPIPE, unchanged
        try:
            server.send(b"x")
        except OSError as e:
            assert e.errno == errno.EPIPE
        else:
            raise AssertionError("send on a listener worked")
    finally:
        conn.close()
        server.close()
    assert fd not in mock_kernel.init_process.fd_writers
