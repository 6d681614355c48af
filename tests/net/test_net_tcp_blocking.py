"""Blocking mock TCP sockets in-process (the supervised twin: ``c/sockblock.c`` against
its real-Linux golden, ``tests/supervisor/test_sup_tcp_blocking.py``): ``accept`` and
``recv`` sleep until another thread connects or sends; ``SO_RCVTIMEO`` ends the sleep
with ``EAGAIN``, a Python timeout with ``TimeoutError``; a signal runs its handler
during the sleep (an exception it raises ends the call, else the call goes on: PEP 475);
a non-blocking ``connect`` is ``EINPROGRESS``; a listener on ``0.0.0.0`` is reached at
the NIC's address and at loopback."""

from __future__ import annotations

import errno
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel import Kernel
from mockkernel.net import net_state
from mockkernel.testing.net import TcpPeer


@pytest.fixture
def addr(mock_kernel: Kernel) -> str:
    a = mock_kernel.net.netdev.devices[2].ipv4
    assert a is not None
    return a


@pytest.fixture
def listener(addr: str) -> Iterator[socket.socket]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((addr, 0))
    srv.listen(4)
    yield srv
    srv.close()


def when_asleep(kernel: Kernel, then: Callable[[], object]) -> threading.Thread:
    """A thread that runs ``then`` once a task sleeps on the TCP wait queue."""
    wq = net_state(kernel).tcp.wq

    def run() -> None:
        while not wq.waitqueue_active():
            time.sleep(0.001)
        then()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_accept_sleeps_until_a_peer_connects(mock_kernel: Kernel, listener: socket.socket) -> None:
    """Without the sleep the call would say EAGAIN: the peer connects only once the
    accept sleeps."""
    peers: list[TcpPeer] = []
    t = when_asleep(
        mock_kernel, lambda: peers.append(TcpPeer.connect(mock_kernel, *listener.getsockname()))
    )
    conn, peer = listener.accept()
    t.join()
    assert peer == ("192.0.2.254", 40000) and len(peers) == 1
    t = when_asleep(mock_kernel, lambda: peers[0].send(b"late"))
    assert conn.recv(10) == b"late"  # recv sleeps too
    t.join()
    t = when_asleep(mock_kernel, peers[0].close)
    assert conn.recv(10) == b""  # the FIN wakes it: end of stream
    t.join()
    conn.close()


def test_a_connecting_thread_wakes_accept_and_recv(
    mock_kernel: Kernel, listener: socket.socket
) -> None:
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t = when_asleep(mock_kernel, lambda: cli.connect(listener.getsockname()))
    conn, _ = listener.accept()
    t.join()
    t = when_asleep(mock_kernel, lambda: conn.send(b"to the client"))
    assert cli.recv(100) == b"to the client"  # the connecting side sleeps as well
    t.join()
    cli.close()
    conn.close()


def test_nonblocking_and_timeouts(mock_kernel: Kernel, listener: socket.socket) -> None:
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.setblocking(True)
    listener.settimeout(0.01)
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.settimeout(None)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("qq", 0, 10000))
    with mock_kernel.tracer.capture() as events, pytest.raises(BlockingIOError) as e:
        listener.accept()  # SO_RCVTIMEO: EAGAIN after the timeout
    assert e.value.errno == errno.EAGAIN
    assert [(ev["why"], ev["result"]) for ev in events if ev["event"] == "tcp.sleep"] == [
        ("accept", "timeout")
    ]
    peer = TcpPeer.connect(mock_kernel, *listener.getsockname())
    conn, _ = listener.accept()
    with pytest.raises(BlockingIOError):  # inherited from the listener (sk_clone)
        conn.recv(10)
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    sec, usec = struct.unpack("qq", raw)
    assert sec == 0 and 10000 <= usec < 20000  # (the host rounds it up to jiffies)
    with pytest.raises(BlockingIOError):
        conn.recv(10, socket.MSG_DONTWAIT)
    peer.send(b"x")
    assert conn.recv(10) == b"x"
    conn.close()


class Interrupted(Exception):
    pass


def test_a_signal_interrupts_a_sleeping_accept(
    mock_kernel: Kernel, listener: socket.socket
) -> None:
    """The handler runs while the accept sleeps: an exception it raises ends the call
    (a handler that returns lets it sleep on: PEP 475's retry, as CPython on Linux)."""
    calls: list[int] = []

    def handler(signum: int, frame: object) -> None:
        calls.append(signum)
        if len(calls) == 2:
            raise Interrupted

    old = signal.signal(signal.SIGUSR1, handler)
    main = threading.main_thread().ident
    assert main is not None
    try:

        def twice() -> None:
            signal.pthread_kill(main, signal.SIGUSR1)
            while len(calls) < 1:
                time.sleep(0.001)
            when_asleep(mock_kernel, lambda: signal.pthread_kill(main, signal.SIGUSR1)).join()

        t = when_asleep(mock_kernel, twice)
        with pytest.raises(Interrupted):
            listener.accept()
        t.join()
        assert calls == [signal.SIGUSR1, signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def test_nonblocking_connect(mock_kernel: Kernel, listener: socket.socket, addr: str) -> None:
    port = listener.getsockname()[1]
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli.setblocking(False)
    assert cli.connect_ex((addr, port)) == errno.EINPROGRESS
    assert cli.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    assert cli.connect_ex((addr, port)) == 0  # the connection was made
    assert cli.connect_ex((addr, port)) == errno.EISCONN
    conn, _ = listener.accept()
    cli.close()
    conn.close()
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refused.setblocking(False)
    with pytest.raises(BlockingIOError):
        refused.connect((addr, port + 1))
    err = refused.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    assert (err, refused.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)) == (
        errno.ECONNREFUSED,
        0,
    )
    refused.close()


def test_a_listener_on_inaddr_any(mock_kernel: Kernel, addr: str) -> None:
    """One kernel: a connection to the NIC's address reaches a listener on 0.0.0.0 (it
    names the address it reached); loopback reaches its host side; a mock address
    cannot listen on its port any more."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("0.0.0.0", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    assert srv.getsockname() == ("0.0.0.0", port)
    peer = TcpPeer.connect(mock_kernel, addr, port)
    conn, _ = srv.accept()
    peer.send(b"mock")
    assert conn.recv(10) == b"mock" and conn.getsockname() == (addr, port)
    host = socket.create_connection(("127.0.0.1", port))
    real, raddr = srv.accept()
    host.sendall(b"host")
    assert real.recv(10) == b"host" and raddr[0] == "127.0.0.1"
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        other.bind((addr, port))
    assert e.value.errno == errno.EADDRINUSE
    for s in (other, real, host, conn, srv):
        s.close()
    with pytest.raises(ConnectionRefusedError):
        TcpPeer.connect(mock_kernel, addr, port)  # closed: nobody listens any more


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=8),
)
def test_blocking_recvs_read_the_stream_in_order(
    mock_kernel: Kernel, listener: socket.socket, chunks: list[bytes], sizes: list[int]
) -> None:
    """Whatever the sender's pieces and the reader's sizes, blocking recvs racing a
    sending thread read the stream whole and in order, then the FIN's end of stream."""
    peer = TcpPeer.connect(mock_kernel, *listener.getsockname())
    conn, _ = listener.accept()

    def send() -> None:
        for c in chunks:
            peer.send(c)
        peer.close()

    sender = threading.Thread(target=send)
    sender.start()
    got, i = b"", 0
    while data := conn.recv(sizes[i % len(sizes)]):
        assert len(data) <= sizes[i % len(sizes)]
        got, i = got + data, i + 1
    sender.join()
    conn.close()
    assert got == b"".join(chunks)
