"""``recv`` flags on a mock TCP socket, on readable and on devmem skbs.

Upstream (``net/ipv4/tcp.c``: ``tcp_recvmsg``, ``tcp_recvmsg_locked``,
``tcp_recvmsg_dmabuf``, ``tcp_recv_urg``; ``net/ipv4/ip_sockglue.c``: ``ip_recv_error``):

* ``MSG_ERRQUEUE`` goes to ``inet_recv_error`` before anything else: an empty error
  queue is ``EAGAIN``, whatever the blocking mode;
* ``MSG_OOB`` goes to ``tcp_recv_urg``: no urgent data is ``EINVAL`` (the mock's peer
  never sends any);
* ``MSG_PEEK`` reads from a private sequence number: nothing is consumed; it stops at a
  readable/devmem boundary like any read; on devmem it runs ``tcp_recvmsg_dmabuf``, so
  every peeked fragment gets a token holding a reference of its own;
* ``MSG_TRUNC`` skips the copy step: bytes are counted and consumed, with no
  ``MSG_SOCK_DEVMEM`` needed, no token, no boundary stop; fragments dropped this way
  return their niovs;
* ``MSG_WAITALL`` raises the target to the full length: it still stops at a boundary or
  an error, returns what there is once the peer closed or on a non-blocking socket, and
  (mock rule) a blocking one that what is queued cannot fill raises ``EAGAIN``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockkernel_nic import MockNic
from nlclient import GenlClient

from mockkernel import Kernel
from mockkernel.driver import PAGE_SIZE
from mockkernel.net.devmem_tcp import (
    MSG_ERRQUEUE,
    MSG_OOB,
    MSG_PEEK,
    MSG_SOCK_DEVMEM,
    MSG_TRUNC,
    MSG_WAITALL,
)
from mockkernel.testing.net import TcpPeer, connect
from mockkernel.uapi.linux.devmem_socket import (
    SCM_DEVMEM_DMABUF,
    SCM_DEVMEM_LINEAR,
    SO_DEVMEM_DONTNEED,
)

CMSG = struct.Struct("=QIIII")
ANC = socket.CMSG_SPACE(CMSG.size) * 16
DONTNEED = socket.SOL_SOCKET, SO_DEVMEM_DONTNEED
NIOVS = 4
BIG = 1 << 16
MSG_DONTWAIT = socket.MSG_DONTWAIT


@pytest.fixture
def memfd(mock_kernel: Kernel, bound_udmabuf: Callable[[int, int], int]) -> int:
    """A udmabuf of ``NIOVS`` pages bound to RX queue 1."""
    return bound_udmabuf(NIOVS, 1)


def free_niovs(kernel: Kernel) -> int:
    return len(kernel.net.netdev.bindings[1].free)  # type: ignore[union-attr]


def frags(anc: list[tuple[int, int, bytes]]) -> list[tuple[int, ...]]:
    return [CMSG.unpack(d) for _l, t, d in anc if t == SCM_DEVMEM_DMABUF]


def errno_of(call: object) -> int:
    with pytest.raises(OSError) as e:
        call()  # type: ignore[operator]
    assert e.value.errno is not None
    return e.value.errno


# -- MSG_PEEK ---------------------------------------------------------------------------------
def test_peek_readable_consumes_nothing(mock_kernel: Kernel, nic: MockNic) -> None:
    peer, sock = connect(mock_kernel, nic.netdev, 0, mss=4)  # no binding: readable
    peer.send(b"abcdefghij")
    assert sock.recv(6, MSG_PEEK) == b"abcdef"  # across skbs
    assert sock.recv(100, MSG_PEEK) == b"abcdefghij"
    assert sock.sk.readable() == 10
    assert sock.recv(3) == b"abc"
    assert sock.recv(100, MSG_PEEK | MSG_SOCK_DEVMEM) == b"defghij"
    assert sock.recv(100) == b"defghij"
    with pytest.raises(BlockingIOError):
        sock.recv(1, MSG_PEEK)
    peer.close()
    assert sock.recv(1, MSG_PEEK) == b""
    sock.close()


def test_peek_stops_at_the_devmem_boundary(
    mock_kernel: Kernel, nic: MockNic, memfd: int, nl: GenlClient
) -> None:
    nic.linear_payload = 10
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    peer.send(b"short")  # fits the head: readable
    peer.send(b"h" * 10 + b"devmem")  # devmem
    assert sock.recvmsg(BIG, ANC, MSG_PEEK | MSG_SOCK_DEVMEM)[:2] == (b"short", [])
    assert sock.recv(BIG, MSG_PEEK) == b"short"
    assert sock.recv(BIG) == b"short"
    # devmem without MSG_SOCK_DEVMEM: EFAULT, peeking or not, nothing consumed
    assert errno_of(lambda: sock.recv(BIG, MSG_PEEK)) == errno.EFAULT
    assert sock.sk.readable() == 16 and free_niovs(mock_kernel) == NIOVS - 1
    sock.close()


def test_peek_devmem_hands_out_tokens_that_hold_a_reference(
    mock_kernel: Kernel, nic: MockNic, memfd: int, nl: GenlClient
) -> None:
    nic.linear_payload = 4
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    peer.send(b"HEAD" + b"payload")
    data, anc, _f, _ = sock.recvmsg(BIG, ANC, MSG_PEEK | MSG_SOCK_DEVMEM)
    assert [t for _l, t, _d in anc] == [SCM_DEVMEM_LINEAR, SCM_DEVMEM_DMABUF]
    assert data[:4] == b"HEAD" and len(data) == 11
    ((off, size, tok1, _id, _fl),) = frags(anc)
    assert os.pread(memfd, size, off) == b"payload"
    assert sock.sk.readable() == 11  # nothing consumed
    data, anc, _f, _ = sock.recvmsg(BIG, ANC, MSG_SOCK_DEVMEM)
    ((off2, size2, tok2, _id, _fl),) = frags(anc)
    assert (off2, size2) == (off, size) and tok2 != tok1 and sock.sk.readable() == 0
    free = free_niovs(mock_kernel)
    assert sock.setsockopt(*DONTNEED, struct.pack("=II", tok2, 1)) == 1
    assert free_niovs(mock_kernel) == free  # the peeked token still holds the niov
    assert sock.setsockopt(*DONTNEED, struct.pack("=II", tok1, 1)) == 1
    assert free_niovs(mock_kernel) == NIOVS
    sock.close()


def test_peek_tokens_go_back_with_the_socket(
    mock_kernel: Kernel, nic: MockNic, memfd: int, nl: GenlClient
) -> None:
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    peer.send(b"x" * 100)
    for _ in range(3):
        assert len(frags(sock.recvmsg(BIG, ANC, MSG_PEEK | MSG_SOCK_DEVMEM)[1])) == 1
    assert len(sock.sk.user_frags) == 3
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


# -- MSG_TRUNC --------------------------------------------------------------------------------
def test_trunc_readable_discards_and_counts(mock_kernel: Kernel, nic: MockNic) -> None:
    peer, sock = connect(mock_kernel, nic.netdev, 0)
    peer.send(b"0123456789")
    assert sock.recv(4, MSG_TRUNC | MSG_PEEK) == bytes(4)  # counted, not copied
    assert sock.sk.readable() == 10
    assert sock.recvmsg(4, 0, MSG_TRUNC)[:3] == (bytes(4), [], 0)  # no MSG_TRUNC flag out
    assert sock.recv(100) == b"456789"
    sock.close()


def test_trunc_devmem_needs_no_flag_frees_niovs_and_crosses_boundaries(
    mock_kernel: Kernel, nic: MockNic, memfd: int, nl: GenlClient
) -> None:
    nic.linear_payload = 8
    peer, sock = connect(mock_kernel, nic.netdev, 1, mss=PAGE_SIZE + 8)
    peer.send(b"tiny")  # readable
    payload = os.urandom(NIOVS * (PAGE_SIZE + 8) + 100)  # more than the niovs: back-pressure
    peer.send(payload)
    assert free_niovs(mock_kernel) == 0 and peer.pending == 100
    with mock_kernel.tracer.capture() as events:
        data, anc, flags, _ = sock.recvmsg(4 + PAGE_SIZE + 8 + 20, ANC, MSG_TRUNC)
    assert (len(data), anc, flags) == (4 + PAGE_SIZE + 28, [], 0)
    (rec,) = [e for e in events if e["event"] == "devmem_tcp.recvmsg"]
    assert rec["trunc"] and not rec["peek"]
    # one niov dropped (no token): it went back, and the held bytes moved on
    assert peer.pending == 0 and sock.sk.user_frags == {}
    data, anc, _f, _ = sock.recvmsg(BIG, ANC, MSG_SOCK_DEVMEM)
    got = frags(anc)
    assert got[0][1] == PAGE_SIZE - 12  # the rest of the partly discarded fragment
    tail = b"".join(os.pread(memfd, g[1], g[0]) for g in got[1:])
    assert tail.endswith(payload[-92:])  # the held segment: 8 linear bytes, 92 in a frag
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


# -- MSG_WAITALL ------------------------------------------------------------------------------
def test_waitall_non_blocking_and_after_fin_returns_what_there_is(
    mock_kernel: Kernel, nic: MockNic
) -> None:
    peer, sock = connect(mock_kernel, nic.netdev, 0, mss=3)
    peer.send(b"abcdefg")
    assert sock.recv(5, MSG_WAITALL) == b"abcde"  # across skbs, filled
    assert sock.recv(100, MSG_WAITALL) == b"fg"  # the test socket never sleeps
    with pytest.raises(BlockingIOError):
        sock.recv(100, MSG_WAITALL)
    peer.send(b"xy")
    peer.close()
    assert sock.recv(100, MSG_WAITALL) == b"xy"
    assert sock.recv(100, MSG_WAITALL) == b""
    sock.close()


@pytest.fixture
def conn(mock_kernel: Kernel, nic: MockNic) -> Iterator[tuple[TcpPeer, socket.socket]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((nic.netdev.ipv4, 0))
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *server.getsockname(), mss=4)
    conn, _ = server.accept()
    yield peer, conn
    conn.close()
    server.close()


def test_waitall_blocking_socket(
    mock_kernel: Kernel, conn: tuple[TcpPeer, socket.socket], nl: GenlClient
) -> None:
    peer, sock = conn
    peer.send(b"0123456789")
    assert sock.recv(8, MSG_WAITALL) == b"01234567"
    # 2 queued, the peer still there: SO_RCVTIMEO ends the wait with what there is
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("qq", 0, 1000))
    assert sock.recv(8, MSG_WAITALL | MSG_PEEK) == b"89"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("qq", 0, 0))
    assert sock.recv(8, MSG_WAITALL | MSG_PEEK | MSG_DONTWAIT) == b"89"  # nothing consumed
    sock.settimeout(1.0)  # CPython: O_NONBLOCK underneath, so WAITALL returns early
    assert sock.recv(8, MSG_WAITALL | MSG_PEEK) == b"89"
    sock.settimeout(None)
    # a blocking MSG_WAITALL sleeps until the buffer can be filled: two sends later
    sender = threading.Thread(target=lambda: (peer.send(b"a"), peer.send(b"b")))
    sender.start()
    assert sock.recv(4, MSG_WAITALL) == b"89ab"
    sender.join()
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(4)
    sock.settimeout(None)
    peer.send(b"end")
    peer.close()
    assert sock.recv(100, MSG_WAITALL) == b"end"  # FIN: what there is


def test_waitall_stops_at_a_boundary(
    mock_kernel: Kernel, nic: MockNic, memfd: int, nl: GenlClient
) -> None:
    nic.linear_payload = 16
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((nic.netdev.ipv4, 0))
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *server.getsockname())
    conn, _ = server.accept()
    peer.send(b"readable")  # in the head: readable
    peer.send(b"r" * 16 + b"devmem")
    assert conn.recv(BIG, MSG_WAITALL) == b"readable"  # a boundary, not a wait
    data, anc, _f, _ = conn.recvmsg(BIG, ANC, MSG_WAITALL | MSG_SOCK_DEVMEM | MSG_DONTWAIT)
    assert len(data) == 22 and len(frags(anc)) == 1
    conn.close()
    server.close()


# -- MSG_OOB, MSG_ERRQUEUE --------------------------------------------------------------------
def test_oob_is_einval_and_errqueue_eagain(
    mock_kernel: Kernel, nic: MockNic, memfd: int, nl: GenlClient
) -> None:
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    for _ in range(2):  # empty, then devmem queued
        assert errno_of(lambda: sock.recv(10, MSG_OOB)) == errno.EINVAL
        assert errno_of(lambda: sock.recv(10, MSG_OOB | MSG_PEEK)) == errno.EINVAL
        with pytest.raises(BlockingIOError):
            sock.recvmsg(10, 4096, MSG_ERRQUEUE)
        peer.send(b"data")
    assert sock.sk.readable() == 8  # untouched
    sock.close()


def test_unconnected_and_listening_sockets(mock_kernel: Kernel, nic: MockNic) -> None:
    """``tcp_recvmsg``: MSG_ERRQUEUE first; then a listener is ENOTCONN before MSG_OOB;
    a bound, unconnected socket: MSG_OOB EINVAL, else ENOTCONN."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((nic.netdev.ipv4, 0))
        assert errno_of(lambda: s.recv(1, MSG_OOB)) == errno.EINVAL
        assert errno_of(lambda: s.recv(1)) == errno.ENOTCONN
        assert errno_of(lambda: s.recv(1, MSG_ERRQUEUE)) == errno.EAGAIN
        s.listen(1)
        assert errno_of(lambda: s.recv(1, MSG_OOB)) == errno.ENOTCONN
        assert errno_of(lambda: s.recv(1, MSG_ERRQUEUE)) == errno.EAGAIN


@pytest.mark.parametrize("timeout", [None, 0.0, 0.01])
def test_errqueue_never_waits(conn: tuple[TcpPeer, socket.socket], timeout: float | None) -> None:
    """The error queue is empty: ``EAGAIN`` at once, whether the socket blocks or not;
    with a Python timeout CPython first polls for ``POLLIN`` (nothing queued: it times
    out, as on Linux), and with bytes queued makes the call (``EAGAIN``)."""
    peer, sock = conn
    sock.settimeout(timeout)
    if timeout:
        with pytest.raises(TimeoutError):
            sock.recvmsg(10, 4096, MSG_ERRQUEUE)
    else:
        with pytest.raises(BlockingIOError, match="error queue"):
            sock.recvmsg(10, 4096, MSG_ERRQUEUE)
    peer.send(b"data")
    with pytest.raises(BlockingIOError, match="error queue"):
        sock.recvmsg(10, 4096, MSG_ERRQUEUE | MSG_PEEK)
    assert sock.recv(10) == b"data"
    sock.close()
    assert errno_of(lambda: sock.recv(10)) == errno.EBADF


def test_recv_options_not_modelled_are_refused(
    mock_kernel: Kernel, conn: tuple[TcpPeer, socket.socket]
) -> None:
    _peer, sock = conn
    for opt in (42, 18):  # SO_PEEK_OFF, SO_RCVLOWAT: they change what recv returns
        with mock_kernel.tracer.capture() as events:
            assert errno_of(lambda o=opt: sock.setsockopt(socket.SOL_SOCKET, o, 1)) == (
                errno.EOPNOTSUPP
            )
        assert [e["event"] for e in events] == ["devmem_tcp.not_modelled"]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # others: the real socket


# -- properties -------------------------------------------------------------------------------
FLAGS = st.sampled_from([0, MSG_PEEK, MSG_TRUNC, MSG_TRUNC | MSG_PEEK, MSG_WAITALL])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 2 * PAGE_SIZE), min_size=1, max_size=5),
    mss=st.sampled_from([0, 100, 1448, PAGE_SIZE]),
    head=st.sampled_from([0, 5, 100, PAGE_SIZE]),
    reads=st.lists(st.tuples(st.integers(1, 3 * PAGE_SIZE), FLAGS), min_size=1, max_size=8),
)
def test_peek_is_a_prefix_and_trunc_skips_exactly(
    mock_kernel: Kernel,
    nic: MockNic,
    memfd: int,
    nl: GenlClient,
    sizes: list[int],
    mss: int,
    head: int,
    reads: list[tuple[int, int]],
) -> None:
    """Random streams (readable and devmem skbs), random reads with PEEK/TRUNC/WAITALL:
    a peek returns what the next plain read of the same size returns (bytes and
    fragment offsets), consuming nothing; TRUNC skips exactly the bytes it counts; the
    stream, minus the skipped bytes, comes out once, in order; every niov comes back."""
    nic.linear_payload = head
    peer, sock = connect(mock_kernel, nic.netdev, 1, mss=mss)
    sent = b"".join(os.urandom(n) for n in sizes)
    peer.send(sent)
    pos = 0  # of the stream
    i = 0

    def payload(data: bytes, anc: list[tuple[int, int, bytes]]) -> tuple[bytes, bytes]:
        if not anc:
            return data, b""
        got = b""
        lin = 0
        toks = b""
        for _l, t, d in anc:
            off, size, tok, _id, _fl = CMSG.unpack(d)
            if t == SCM_DEVMEM_LINEAR:
                got += data[lin : lin + size]
                lin += size
            else:
                got += os.pread(memfd, size, off)
                toks += struct.pack("=II", tok, 1)
        return got, toks

    while sock.sk.readable() or peer.pending:
        bufsize, flags = reads[i % len(reads)]
        i += 1
        assert i < 100_000
        before = sock.sk.readable()
        data, anc, _f, _ = sock.recvmsg(bufsize, ANC, flags | MSG_SOCK_DEVMEM)
        got, toks = payload(data, anc)
        if toks:
            assert sock.setsockopt(*DONTNEED, toks) == len(toks) // 8
        if flags & MSG_PEEK:
            assert sock.sk.readable() == before
            if flags & MSG_TRUNC:  # the count a TRUNC of the same size then skips
                counted = len(sock.recvmsg(bufsize, ANC, MSG_TRUNC)[0])
                assert counted == len(data)
                pos += counted
            else:
                assert sent[pos : pos + len(got)] == got
                data2, anc2, _f, _ = sock.recvmsg(bufsize, ANC, MSG_SOCK_DEVMEM)
                got2, toks2 = payload(data2, anc2)
                if toks2:
                    sock.setsockopt(*DONTNEED, toks2)
                assert got2 == got
                pos += len(got2)
        elif flags & MSG_TRUNC:
            assert 0 < len(data) <= bufsize and not anc and data == bytes(len(data))
            pos += len(data)
        else:
            assert got == sent[pos : pos + len(got)]
            pos += len(got)
    assert pos == len(sent)
    assert sock.sk.user_frags == {}
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS
