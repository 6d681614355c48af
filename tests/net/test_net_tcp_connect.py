"""A program connecting to its own listener on a mock NIC address (in-process; the
supervised twin is in ``tests/supervisor/test_sup_devmem_tcp.py``): it is the remote
peer of the connection the listener accepts, through ``net/tcp_sock.py``."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from mockkernel import Kernel


def test_connect_to_a_listener_on_the_nic(mock_kernel: Kernel) -> None:
    addr = mock_kernel.net.netdev.devices[2].ipv4
    assert addr is not None
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        srv.bind((addr, 0))
        port = srv.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            cli.connect((addr, port))  # not listening yet
        srv.listen(1)
        cli.connect((addr, port))
        with pytest.raises(OSError) as e:
            cli.connect((addr, port))
        assert e.value.errno == errno.EISCONN
        conn, peer = srv.accept()
        assert peer[0] == "192.0.2.254" and cli.getpeername() == (addr, port)
        cli.sendall(b"ping")
        assert conn.recv(10) == b"ping"
        conn.send(b"pong")
        assert os.read(cli.fileno(), 10) == b"pong"
        cli.setblocking(False)
        with pytest.raises(BlockingIOError):
            cli.recv(10)
        cli.close()
        assert conn.recv(10) == b""  # the peer's close ends the stream
        conn.close()
    finally:
        cli.close()
        srv.close()


def test_send_on_a_listener_is_epipe(mock_kernel: Kernel) -> None:
    addr = mock_kernel.net.netdev.devices[2].ipv4
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        s.listen(1)
        with pytest.raises(BrokenPipeError):
            s.send(b"x")


def test_socket_with_default_arguments_is_inet_stream(mock_kernel: Kernel) -> None:
    """``socket.socket()`` is ``AF_INET``/``SOCK_STREAM`` (CPython's defaults): bound to
    the NIC address it is the mock's, as under the supervisor."""
    addr = mock_kernel.net.netdev.devices[2].ipv4
    with socket.socket() as s:
        s.bind((addr, 0))
        s.listen(1)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert (addr, s.getsockname()[1]) in mock_kernel.net.tcp.listeners
