"""``SCM_DEVMEM_LINEAR`` and readable flows in the devmem TCP receive path.

Upstream (``net/ipv4/tcp.c``: ``tcp_recvmsg_locked`` → ``tcp_recvmsg_dmabuf``;
``net/core/scm.c``: ``put_cmsg_notrunc``):

* payload that header split left in the linear head of an unreadable skb is copied into
  the buffer and reported by one ``SCM_DEVMEM_LINEAR`` ``struct dmabuf_cmsg`` with only
  ``frag_size`` set, before the skb's ``SCM_DEVMEM_DMABUF`` fragments;
* a readable skb (a queue without a binding, or a segment that fitted in the head: no
  net_iov frag, so ``skb->unreadable`` stays false) is copied with no control message,
  with or without ``MSG_SOCK_DEVMEM``;
* one call never mixes readable and unreadable skbs (``last_copied_dmabuf``);
* a control buffer shorter than ``CMSG_LEN(24)`` is ``ETOOSMALL`` (525) when nothing was
  received yet in the call, else the call returns what it has.
"""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockkernel_nic import MockNic, nic_dev
from nlclient import GenlClient
from test_net_devmem_revocable import REVOCABLE, VFIO_BDF
from test_net_devmem_revocable import bind as bind_q
from test_net_devmem_rx import bind

from mockkernel import Kernel
from mockkernel.driver import PAGE_SIZE, dma_buf_subsys
from mockkernel.net.devmem_tcp import ETOOSMALL, MSG_SOCK_DEVMEM
from mockkernel.testing.net import TcpPeer, connect
from mockkernel.testing.rdma import VfioDevice, udmabuf
from mockkernel.topology import default_topology
from mockkernel.uapi.linux.devmem_socket import (
    SCM_DEVMEM_DMABUF,
    SCM_DEVMEM_LINEAR,
    SO_DEVMEM_DONTNEED,
)

CMSG = struct.Struct("=QIIII")
ONE = socket.CMSG_SPACE(CMSG.size)  # 40: one dmabuf_cmsg
DONTNEED = socket.SOL_SOCKET, SO_DEVMEM_DONTNEED
NIOVS = 8
NIC_BDF = "0000:03:00.0"


@pytest.fixture
def buf(mock_kernel: Kernel, bound_udmabuf: Callable[[int, int], int]) -> int:
    """A udmabuf of ``NIOVS`` pages bound to RX queue 1: its memfd (to read it)."""
    return bound_udmabuf(NIOVS, 1)


def cmsgs(anc: list[tuple[int, int, bytes]]) -> list[tuple[int, tuple[int, ...]]]:
    assert all(level == socket.SOL_SOCKET for level, _t, _d in anc)
    return [(ctype, CMSG.unpack(data)) for _l, ctype, data in anc]


def reassemble(data: bytes, anc: list[tuple[int, int, bytes]], memfd: int) -> tuple[bytes, bytes]:
    """The payload one ``recvmsg`` delivered, in order, and the token ranges to give back:
    ``SCM_DEVMEM_LINEAR`` bytes come from the buffer (packed at its start: only copied
    bytes move its cursor), ``SCM_DEVMEM_DMABUF`` bytes from the dma-buf at the offset."""
    if not anc:
        return data, b""
    out = b""
    pos = 0
    tokens = b""
    for ctype, (off, size, token, dmabuf_id, fl) in cmsgs(anc):
        if ctype == SCM_DEVMEM_LINEAR:
            assert (off, token, dmabuf_id, fl) == (0, 0, 0, 0)
            out += data[pos : pos + size]
            pos += size
        else:
            assert ctype == SCM_DEVMEM_DMABUF and fl == 0
            out += os.pread(memfd, size, off)
            tokens += struct.pack("=II", token, 1)
    assert len(out) == len(data)
    assert data[pos:] == bytes(len(data) - pos)  # frags: nothing written (mock: zeros)
    return out, tokens


def free_niovs(kernel: Kernel) -> int:
    binding = kernel.net.netdev.bindings[1]  # type: ignore[union-attr]
    return len(binding.free)


def test_linear_then_frags_in_one_recvmsg(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient
) -> None:
    nic.linear_payload = 100
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    payload = os.urandom(PAGE_SIZE + 300)  # one segment: 100 in the head, 2 frags
    with mock_kernel.tracer.capture() as events:
        assert peer.send(payload) == len(payload)
        data, anc, flags, _ = sock.recvmsg(1 << 16, 16 * ONE, MSG_SOCK_DEVMEM)
    assert flags == 0 and len(data) == len(payload)
    got = cmsgs(anc)
    assert [t for t, _ in got] == [SCM_DEVMEM_LINEAR, SCM_DEVMEM_DMABUF, SCM_DEVMEM_DMABUF]
    assert got[0][1] == (0, 100, 0, 0, 0)  # only frag_size
    assert [c[1:4] for _t, c in got[1:]] == [(PAGE_SIZE, 1, 1), (200, 2, 1)]
    assert data[:100] == payload[:100]  # the buffer holds exactly the head bytes
    assert data[100:] == bytes(len(payload) - 100)
    (o1, s1, *_), (o2, s2, *_) = (c for _t, c in got[1:])
    assert os.pread(buf, s1, o1) + os.pread(buf, s2, o2) == payload[100:]
    assert reassemble(data, anc, buf)[0] == payload
    skb = [e for e in events if e["event"] == "devmem_tcp.rx_skb"]
    assert [(e["readable"], e["linear"], e["frags"], e["bytes"]) for e in skb] == [
        (False, 100, 2, len(payload))
    ]
    rec = [e for e in events if e["event"] == "devmem_tcp.recvmsg"]
    assert [(e["bytes"], e["frags"], e["linear"]) for e in rec] == [(len(payload), 2, 100)]
    assert sock.setsockopt(*DONTNEED, struct.pack("=II", 1, 2)) == 2
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


def test_linear_parts_of_several_skbs_pack_at_the_buffer_start(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient
) -> None:
    nic.linear_payload = 10
    peer, sock = connect(mock_kernel, nic.netdev, 1, mss=50)
    payload = os.urandom(150)  # three segments: 10 linear + a 40-byte frag each
    assert peer.send(payload) == 150
    data, anc, _f, _ = sock.recvmsg(1 << 16, 16 * ONE, MSG_SOCK_DEVMEM)
    got = cmsgs(anc)
    assert [(t, c[1]) for t, c in got] == [(SCM_DEVMEM_LINEAR, 10), (SCM_DEVMEM_DMABUF, 40)] * 3
    assert data[:30] == payload[0:10] + payload[50:60] + payload[100:110]
    assert reassemble(data, anc, buf)[0] == payload
    # a short read splits the linear part: the rest comes first next time
    peer.send(payload)
    data, anc, _f, _ = sock.recvmsg(4, 16 * ONE, MSG_SOCK_DEVMEM)
    assert data == payload[:4] and [(t, c[1]) for t, c in cmsgs(anc)] == [(SCM_DEVMEM_LINEAR, 4)]
    data, anc, _f, _ = sock.recvmsg(10, 16 * ONE, MSG_SOCK_DEVMEM)
    assert [(t, c[1]) for t, c in cmsgs(anc)] == [(SCM_DEVMEM_LINEAR, 6), (SCM_DEVMEM_DMABUF, 4)]
    assert data == payload[4:10] + bytes(4)
    sock.close()  # outstanding tokens and queued frags go back
    assert free_niovs(mock_kernel) == NIOVS


@pytest.mark.parametrize("head", [64, 65, 1000])
def test_head_at_least_the_segment_is_a_readable_skb(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient, head: int
) -> None:
    """No net_iov frag: ``skb->unreadable`` is never set, the skb is read like any other."""
    nic.linear_payload = head
    peer, sock = connect(mock_kernel, nic.netdev, 1, mss=64)
    payload = os.urandom(128)
    assert peer.send(payload) == 128
    assert free_niovs(mock_kernel) == NIOVS  # nothing went to the dma-buf
    data, anc, _f, _ = sock.recvmsg(1 << 16, 16 * ONE, MSG_SOCK_DEVMEM)
    assert (data, anc) == (payload, [])
    peer.send(payload)
    assert sock.recv(100) == payload[:100]  # no MSG_SOCK_DEVMEM needed
    assert sock.recvmsg(100, 0)[:2] == (payload[100:], [])
    sock.close()


@pytest.mark.parametrize("flags", [0, MSG_SOCK_DEVMEM])
def test_unbound_queue_is_a_readable_flow(mock_kernel: Kernel, nic: MockNic, flags: int) -> None:
    """No binding on any queue: the connection is accepted, steered to queue 0, and the
    program reads the bytes themselves, with no control message."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((nic.netdev.ipv4, 0))
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *server.getsockname(), mss=1000)
    assert peer.sk.queue == 0
    conn, _ = server.accept()
    payload = os.urandom(5000)
    with mock_kernel.tracer.capture() as events:
        assert peer.send(payload) == 5000 and peer.pending == 0
    assert [(e["readable"], e["frags"]) for e in events if e["event"] == "devmem_tcp.rx_skb"] == [
        (True, 0)
    ] * 5
    data, anc, msg_flags, _ = conn.recvmsg(3000, 4 * ONE, flags)
    assert (data, anc, msg_flags) == (payload[:3000], [], 0)
    buffer = bytearray(1500)
    assert conn.recv_into(buffer, 0, flags) == 1500 and buffer == payload[3000:4500]
    assert conn.recv(1 << 16, flags) == payload[4500:]
    conn.setblocking(False)
    with pytest.raises(BlockingIOError):
        conn.recv(10)
    peer.close()
    assert conn.recv(10) == b""
    conn.close()
    server.close()
    with pytest.raises(OSError) as e:  # nobody listens: refused as upstream
        TcpPeer.connect(mock_kernel, nic.netdev.ipv4, 9)
    assert e.value.errno == errno.ECONNREFUSED


def test_readable_and_devmem_skbs_never_mix(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient
) -> None:
    nic.linear_payload = 100
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    a, b, c = os.urandom(100), os.urandom(300), os.urandom(50)
    for part in (a, b, c):  # readable (all linear), devmem (100 + 200), readable
        assert peer.send(part) == len(part)
    big = 1 << 16
    # without MSG_SOCK_DEVMEM: the readable skb, then a stop at the devmem one
    assert sock.recv(big) == a
    with pytest.raises(OSError) as e:
        sock.recv(big)
    assert e.value.errno == errno.EFAULT
    data, anc, _f, _ = sock.recvmsg(big, 16 * ONE, MSG_SOCK_DEVMEM)
    assert [(t, x[1]) for t, x in cmsgs(anc)] == [
        (SCM_DEVMEM_LINEAR, 100),
        (SCM_DEVMEM_DMABUF, 200),
    ]
    assert reassemble(data, anc, buf)[0] == b  # c stayed queued
    assert sock.recvmsg(big, 16 * ONE, MSG_SOCK_DEVMEM)[:2] == (c, [])
    # readable first, then devmem, in one queue: the call stops at the boundary
    peer.send(a)
    peer.send(b)
    assert sock.recvmsg(big, 16 * ONE, MSG_SOCK_DEVMEM)[:2] == (a, [])
    data, anc, _f, _ = sock.recvmsg(big, 16 * ONE, MSG_SOCK_DEVMEM)
    assert reassemble(data, anc, buf)[0] == b
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


def test_binding_installed_or_removed_mid_connection(mock_kernel: Kernel, nic: MockNic) -> None:
    """The kind of each skb is decided when it arrives: an unbound queue's flow turns
    devmem once a binding is installed, and readable again once it goes."""
    fd, memfd = udmabuf(4 * PAGE_SIZE)
    nl = GenlClient()
    try:
        peer, sock = connect(mock_kernel, nic.netdev, 3)
        peer.send(b"before")
        bind(nl, fd, queue=3)
        peer.send(b"devmem")
        peer.send(b"more devmem")
        assert sock.recvmsg(100, 4 * ONE, MSG_SOCK_DEVMEM)[:2] == (b"before", [])
        data, anc, _f, _ = sock.recvmsg(100, 4 * ONE, MSG_SOCK_DEVMEM)
        assert reassemble(data, anc, memfd)[0] == b"devmemmore devmem"
        peer.send(b"queued devmem")
        nl.close()  # unbind with a token outstanding and a devmem skb queued
        assert nic.netdev.rx[3].binding is None
        peer.send(b"after")
        data, anc, _f, _ = sock.recvmsg(100, 4 * ONE, MSG_SOCK_DEVMEM)
        assert [t for t, _ in cmsgs(anc)] == [SCM_DEVMEM_DMABUF] and len(data) == 13
        assert sock.recv(100) == b"after"
        assert sock.setsockopt(*DONTNEED, struct.pack("=II", 1, 3)) == 3
        sock.close()
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


def test_control_buffer_too_small(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient
) -> None:
    nic.linear_payload = 100
    peer, sock = connect(mock_kernel, nic.netdev, 1)
    payload = os.urandom(100 + PAGE_SIZE + 50)  # linear 100, frags 4096 and 50
    peer.send(payload)
    for anc in (0, 8, socket.CMSG_LEN(CMSG.size) - 1):  # not even the LINEAR record
        with pytest.raises(OSError) as e:
            sock.recvmsg(1 << 16, anc, MSG_SOCK_DEVMEM)
        assert e.value.errno == ETOOSMALL == 525
    assert sock.sk.readable() == len(payload)  # nothing consumed
    # room for one record: the linear part only (partial, no error, no MSG_CTRUNC)
    data, anc, flags, _ = sock.recvmsg(1 << 16, socket.CMSG_LEN(CMSG.size), MSG_SOCK_DEVMEM)
    assert (data, flags) == (payload[:100], 0)
    assert [(t, c[1]) for t, c in cmsgs(anc)] == [(SCM_DEVMEM_LINEAR, 100)]
    # room for one and a half: the first fragment, then a stop
    data, anc, flags, _ = sock.recvmsg(1 << 16, ONE + ONE // 2, MSG_SOCK_DEVMEM)
    assert len(data) == PAGE_SIZE and flags == 0
    assert [(t, c[1], c[2]) for t, c in cmsgs(anc)] == [(SCM_DEVMEM_DMABUF, PAGE_SIZE, 1)]
    with pytest.raises(OSError) as e:
        sock.recvmsg(1 << 16, 0, MSG_SOCK_DEVMEM)
    assert e.value.errno == ETOOSMALL
    data, anc, _f, _ = sock.recvmsg(1 << 16, ONE, MSG_SOCK_DEVMEM)
    assert [(t, c[1], c[2]) for t, c in cmsgs(anc)] == [(SCM_DEVMEM_DMABUF, 50, 2)]
    # a readable skb needs no control buffer at all
    nic.linear_payload = PAGE_SIZE
    peer.send(b"plain")
    assert sock.recvmsg(100, 0, MSG_SOCK_DEVMEM)[:2] == (b"plain", [])
    assert sock.setsockopt(*DONTNEED, struct.pack("=II", 1, 2)) == 2
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


def test_back_pressure_keeps_the_linear_part_with_its_segment(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient
) -> None:
    """No niov: the segment is not taken, its head neither; resumed after DONTNEED."""
    nic.linear_payload = 16
    peer, sock = connect(mock_kernel, nic.netdev, 1, mss=PAGE_SIZE + 16)
    payload = os.urandom((NIOVS + 2) * (PAGE_SIZE + 16))
    assert peer.send(payload) == NIOVS * (PAGE_SIZE + 16)
    assert peer.pending == 2 * (PAGE_SIZE + 16)
    out = b""
    while len(out) < len(payload):
        data, anc, _f, _ = sock.recvmsg(1 << 20, 64 * ONE, MSG_SOCK_DEVMEM)
        got, tokens = reassemble(data, anc, buf)
        out += got
        sock.setsockopt(*DONTNEED, tokens)
    assert out == payload and peer.pending == 0
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


def _topology(**options: Any) -> Any:
    return dataclasses.replace(
        default_topology(),
        devices=tuple(
            dataclasses.replace(d, options=options) if d.bdf == NIC_BDF else d
            for d in default_topology().devices
        ),
    )


@pytest.mark.mockkernel(topology=_topology(linear_payload=8))
def test_program_socket_linear_from_topology(mock_kernel: Kernel, nl: GenlClient) -> None:
    """The topology option ``linear_payload``, through the program's socket calls."""
    nic = nic_dev(mock_kernel)
    assert nic.linear_payload == 8
    fd, memfd = udmabuf(2 * PAGE_SIZE)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        bind(nl, fd, queue=2)
        server.bind((nic.netdev.ipv4, 0))
        server.listen(1)
        peer = TcpPeer.connect(mock_kernel, *server.getsockname())
        assert peer.sk.queue == 2
        conn, _ = server.accept()
        peer.send(b"headers!payload in device memory")
        data, anc, _f, _ = conn.recvmsg(1 << 16, 4 * ONE, MSG_SOCK_DEVMEM)
        assert data[:8] == b"headers!"
        got, tokens = reassemble(data, anc, memfd)
        assert got == b"headers!payload in device memory"
        assert conn.setsockopt(*DONTNEED, tokens) == 1
        peer.close()
        assert conn.recvmsg(1 << 16, 4 * ONE, MSG_SOCK_DEVMEM)[:2] == (b"", [])
        conn.close()
    finally:
        server.close()
        nl.close()
        os.close(fd)
        os.close(memfd)


@pytest.mark.parametrize("bad", [-1, "8"])
def test_bad_topology_option(mock_kernel_factory: Any, bad: Any) -> None:
    with pytest.raises(ValueError, match="linear_payload"):
        mock_kernel_factory(_topology(linear_payload=bad))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 3 * PAGE_SIZE), min_size=1, max_size=6),
    mss=st.sampled_from([0, 1, 7, 100, 1448, PAGE_SIZE, PAGE_SIZE + 1, 9000]),
    head=st.sampled_from([0, 1, 5, 66, 100, 1448, PAGE_SIZE, 10000]),
    reads=st.lists(st.integers(1, 3 * PAGE_SIZE), min_size=1, max_size=8),
    anc_records=st.integers(1, 6),
    devmem_flag=st.booleans(),
)
def test_every_byte_exactly_once_in_order(
    mock_kernel: Kernel,
    nic: MockNic,
    buf: int,
    nl: GenlClient,
    sizes: list[int],
    mss: int,
    head: int,
    reads: list[int],
    anc_records: int,
    devmem_flag: bool,
) -> None:
    """Random sends, segment and head sizes, recv sizes and control-buffer sizes: the
    iov's linear/readable bytes and the dma-buf at the cmsg offsets, put back in cmsg
    order, are the sent stream, each byte once (back-pressure and DONTNEED included)."""
    nic.linear_payload = head
    peer, sock = connect(mock_kernel, nic.netdev, 1, mss=mss)
    sent = b""
    out = b""
    i = 0
    for size in sizes:
        chunk = os.urandom(size)
        sent += chunk
        peer.send(chunk)
        while sock.sk.readable():
            flags = MSG_SOCK_DEVMEM if devmem_flag else 0
            bufsize = reads[i % len(reads)]
            i += 1
            try:
                data, anc, msg_flags, _ = sock.recvmsg(bufsize, anc_records * ONE, flags)
            except OSError as e:
                assert e.errno == errno.EFAULT and not devmem_flag
                flags = MSG_SOCK_DEVMEM
                data, anc, msg_flags, _ = sock.recvmsg(bufsize, anc_records * ONE, flags)
            assert msg_flags == 0 and 0 < len(data) <= bufsize
            kinds = {t for t, _ in cmsgs(anc)}
            assert not anc or len(anc) <= anc_records
            assert kinds <= {SCM_DEVMEM_LINEAR, SCM_DEVMEM_DMABUF}
            got, tokens = reassemble(data, anc, buf)
            out += got
            if tokens:
                assert sock.setsockopt(*DONTNEED, tokens) == len(tokens) // 8
    assert peer.pending == 0
    assert out == sent
    assert sock.sk.user_frags == {}
    sock.close()
    assert free_niovs(mock_kernel) == NIOVS


def test_unaccepted_and_mid_stream_closes_leave_nothing(
    mock_kernel: Kernel, nic: MockNic, buf: int, nl: GenlClient
) -> None:
    """Readable and devmem skbs queued, tokens out, bytes pending: closing the listener
    (unaccepted: reset) or the connection mid-stream gives every niov back."""
    nic.linear_payload = 32
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((nic.netdev.ipv4, 0))
    server.listen(4)
    first = TcpPeer.connect(mock_kernel, *server.getsockname(), mss=PAGE_SIZE)
    second = TcpPeer.connect(mock_kernel, *server.getsockname(), mss=PAGE_SIZE)
    assert first.sk.queue == second.sk.queue == 1
    first.send(b"x" * 20)  # a readable skb (shorter than the linear part)
    first.send(os.urandom(3 * PAGE_SIZE))  # devmem skbs
    conn, _ = server.accept()  # the first; the second stays in the backlog
    second.send(os.urandom(10 * PAGE_SIZE))  # more than the niovs left: some pending
    assert second.pending > 0
    assert conn.recv(100) == b"x" * 20
    _data, anc, _f, _ = conn.recvmsg(PAGE_SIZE, 4 * ONE, MSG_SOCK_DEVMEM)  # a token out
    assert [t for t, _ in cmsgs(anc)] == [SCM_DEVMEM_LINEAR, SCM_DEVMEM_DMABUF]
    server.close()  # resets the unaccepted second connection
    with pytest.raises(OSError) as e:
        second.send(b"more")
    assert e.value.errno == errno.EPIPE
    conn.close()  # mid-stream: queued frags and the outstanding token
    assert free_niovs(mock_kernel) == NIOVS
    with pytest.raises(OSError) as e:
        first.send(b"more")
    assert e.value.errno == errno.EPIPE


@pytest.mark.mockkernel(topology=REVOCABLE)
def test_revoked_buffer_holds_the_whole_segment(mock_kernel: Kernel, nl: GenlClient) -> None:
    """Revocable mode: a segment offered while the buffer is revoked is not taken, its
    linear part neither; after the un-revoke it arrives split as usual."""
    nic = nic_dev(mock_kernel)
    nic.linear_payload = 16
    with VfioDevice(VFIO_BDF) as dev:
        bar = mmap.mmap(dev.fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        fd = dev.export(0x1000, 0x4000)
        try:
            assert bind_q(nl, fd, queue=2) == 0
            peer, sock = connect(mock_kernel, nic.netdev, 2)
            held = b"h" * 16 + b"held while revoked"
            window: list[tuple[int, int]] = []

            def in_window(event: dict[str, object]) -> None:
                if event["event"] == "vfio_pci.dma_buf_revoke":
                    window.append((peer.send(held), sock.sk.readable()))

            mock_kernel.tracer.add_sink(in_window)
            try:
                dev.reset()
            finally:
                mock_kernel.tracer.remove_sink(in_window)
            assert window == [(0, 0)] and peer.pending == len(held)
            assert peer.send(b"!") == len(held) + 1
            data, anc, _f, _ = sock.recvmsg(1 << 16, 4 * ONE, MSG_SOCK_DEVMEM)
            got = cmsgs(anc)
            assert [(t, c[1]) for t, c in got] == [(SCM_DEVMEM_LINEAR, 16), (SCM_DEVMEM_DMABUF, 19)]
            off = got[1][1][0]
            assert data[:16] + bar[0x1000 + off : 0x1000 + off + 19] == held + b"!"
            assert sock.setsockopt(*DONTNEED, struct.pack("=II", got[1][1][2], 1)) == 1
            sock.close()
        finally:
            nl.close()
            os.close(fd)
            bar.close()
    assert not dma_buf_subsys(mock_kernel).attachments
