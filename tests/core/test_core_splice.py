"""``os.splice`` in-process with a mock file or a mock TCP socket at one end
(``mockkernel/syscalls/splice.py``): bytes go through intact both ways, and any
arguments give a count or an ``OSError`` with Linux's errno for them -- never another
exception, a leaked real fd or a kernel leak.  (What each case answers is checked
against real Linux by ``tests/supervisor/test_sup_splice.py`` and ``spliceprobe.c``.)"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL, held_fds
from mockkernel.testing.net import TcpPeer

NIC = "192.0.2.1"
F_NONBLOCK = os.SPLICE_F_NONBLOCK


def real_fds(kernel: Kernel) -> set[int]:
    """The real fds open now, but those the kernel holds (placeholders made on first use)."""
    return {int(n) for n in REAL.listdir("/proc/self/fd")} - held_fds(kernel)


@pytest.fixture
def conn(mock_kernel: Kernel) -> Iterator[tuple[socket.socket, TcpPeer]]:
    """An accepted mock TCP connection and its remote peer."""
    server = socket.socket()
    server.bind((NIC, 0))
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *server.getsockname())
    c, _ = server.accept()
    server.close()
    yield c, peer
    c.close()
    peer.close()


def test_bytes_go_both_ways(mock_kernel: Kernel, conn: tuple[socket.socket, TcpPeer]) -> None:
    c, peer = conn
    r, w = os.pipe()
    try:
        payload = bytes(range(256)) * 40  # 10 KiB
        os.write(w, payload)
        sent = 0
        while sent < len(payload):
            sent += os.splice(r, c.fileno(), len(payload) - sent)
        assert peer.recv() == payload
        peer.send(b"from the wire")
        assert os.splice(c.fileno(), w, 4) == 4
        assert os.splice(c.fileno(), w, 100) == 9
        assert os.read(r, 100) == b"from the wire"
        peer.close()
        assert os.splice(c.fileno(), w, 100) == 0  # the end of the stream
    finally:
        os.close(r)
        os.close(w)
    assert mock_kernel.leaks() == []


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"count": -1}, ValueError),
        ({"count": "4"}, TypeError),
        ({"count": 4, "flags": -1}, ValueError),
        ({"count": 4, "flags": 1 << 32}, OverflowError),
        ({"count": 4, "offset_src": "0"}, TypeError),
    ],
)
def test_python_refuses_what_cpython_refuses(
    conn: tuple[socket.socket, TcpPeer], kwargs: dict[str, object], exc: type[Exception]
) -> None:
    """Before any syscall, as the real ``os.splice`` converts its arguments."""
    c, _peer = conn
    r, w = os.pipe()
    try:
        with pytest.raises(exc):
            os.splice(r, c.fileno(), **kwargs)  # type: ignore[arg-type]
    finally:
        os.close(r)
        os.close(w)


ERRNOS = {errno.EBADF, errno.EINVAL, errno.ESPIPE, errno.EAGAIN, errno.EPIPE}
#: the pairs that move bytes: a pipe and the mock socket, a sysfs file into a pipe (its
#: ``config`` is open read-only here), and the host's own file into a pipe (a real call)
MOVERS = {("pipe r", "sock"), ("sock", "pipe w"), ("config", "pipe w"), ("file", "pipe w")}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    src=st.sampled_from(["pipe r", "pipe w", "sock", "dmabuf", "config", "closed", "file"]),
    dst=st.sampled_from(["pipe r", "pipe w", "sock", "dmabuf", "config", "closed", "file"]),
    count=st.integers(0, 1 << 20),
    off_src=st.none() | st.integers(-2, 1 << 12),
    off_dst=st.none() | st.integers(-2, 1 << 12),
    flags=st.sampled_from([F_NONBLOCK, F_NONBLOCK | 0x1, F_NONBLOCK | 0x4, F_NONBLOCK | 0x10]),
    queued=st.binary(max_size=64),
    sent=st.binary(max_size=64),
)
def test_any_arguments_answer_as_linux_may(
    mock_kernel: Kernel, conn: tuple[socket.socket, TcpPeer], src: str, dst: str, count: int,
    off_src: int | None, off_dst: int | None, flags: int, queued: bytes, sent: bytes,
) -> None:  # fmt: skip
    c, peer = conn
    c.setblocking(False)  # (SPLICE_F_NONBLOCK does not spare a socket's wait for data)
    before = real_fds(mock_kernel)
    r, w = os.pipe()
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    bdf = min(n for n in os.listdir("/sys/bus/pci/drivers/vfio-pci") if ":" in n)
    config = os.open(f"/sys/bus/pci/devices/{bdf}/config", os.O_RDONLY)
    reg = os.open("/proc/self/exe", os.O_RDONLY)
    fds = {"pipe r": r, "pipe w": w, "sock": c.fileno(), "dmabuf": dev, "config": config,
           "closed": 999, "file": reg}  # fmt: skip
    try:
        if queued:
            os.write(w, queued)
        if sent:
            peer.send(sent)
        try:
            n = os.splice(fds[src], fds[dst], count, off_src, off_dst, flags)
        except OSError as e:
            assert e.errno in ERRNOS, (e, src, dst)
            if count == 0:
                pytest.fail("a zero count is 0 before any check")
            if flags & 0x10:
                assert e.errno == errno.EINVAL
        else:
            assert 0 <= n <= count
            assert not n or (src, dst) in MOVERS, (src, dst, n)
    finally:
        for fd in {r, w, dev, config, reg}:
            os.close(fd)
    assert real_fds(mock_kernel) == before
