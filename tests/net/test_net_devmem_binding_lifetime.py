"""The lifetime of a devmem binding after it is undone (``net/core/devmem.c``).

Upstream, ``net_devmem_unbind_dmabuf`` (the netlink socket closed) erases the id, takes
the binding off its socket's list and its queues and drops the netlink reference
(``percpu_ref_kill``); every niov still out -- a fragment queued on a socket or one
behind a user token (``atomic_long_inc(&niov->pp_ref_count)`` in
``tcp_recvmsg_dmabuf``) -- keeps its page pool, and so the binding, alive: the final
``__net_devmem_dmabuf_binding_free`` (unmap, detach, ``dma_buf_put``) runs when the
last one comes back (``SO_DEVMEM_DONTNEED``, the socket closed).
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockkernel_nic import MockNic, nic_dev
from nlclient import GenlClient, u32
from test_net_devmem_revocable import REVOCABLE, VFIO_BDF
from test_net_devmem_revocable import bind as bind_q
from test_net_devmem_rx import bind

from mockkernel import Kernel
from mockkernel.driver import PAGE_SIZE, dma_buf_subsys, unregister_netdev
from mockkernel.net.devmem_tcp import MSG_SOCK_DEVMEM
from mockkernel.net.netdev import DevmemBinding
from mockkernel.testing.net import DevmemSocket, TcpPeer, connect
from mockkernel.testing.rdma import VfioDevice, udmabuf
from mockkernel.uapi.linux.devmem_socket import SCM_DEVMEM_DMABUF, SO_DEVMEM_DONTNEED
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_QUEUE_DMABUF,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_IFINDEX,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_QUEUE_GET,
    NETDEV_QUEUE_TYPE_RX,
)

CMSG = struct.Struct("=QIIII")
ANC = socket.CMSG_SPACE(CMSG.size) * 16
DONTNEED = socket.SOL_SOCKET, SO_DEVMEM_DONTNEED
NIC = "0000:03:00.0"
QUEUE = 1


@pytest.fixture
def buf(mock_kernel: Kernel) -> Iterator[tuple[int, int]]:
    fd, memfd = udmabuf(4 * PAGE_SIZE)
    yield fd, memfd
    os.close(fd)
    os.close(memfd)


def nic_attachments(kernel: Kernel) -> list[Any]:
    return [
        a for a in dma_buf_subsys(kernel).attachments.values() if getattr(a.dev, "bdf", None) == NIC
    ]


def the_binding(kernel: Kernel) -> DevmemBinding:
    (binding,) = kernel.net.netdev.bindings.values()  # type: ignore[union-attr]
    return binding


def tokens_of(anc: list[tuple[int, int, bytes]]) -> list[tuple[int, ...]]:
    return [CMSG.unpack(d) for _l, t, d in anc if t == SCM_DEVMEM_DMABUF]


def queue_dmabuf(kernel: Kernel) -> int | None:
    with GenlClient() as other:
        reply = other.request(
            other.family("netdev"),
            NETDEV_CMD_QUEUE_GET,
            u32(NETDEV_A_QUEUE_ID, QUEUE),
            u32(NETDEV_A_QUEUE_IFINDEX, 2),
            u32(NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX),
        )[0]
        if NETDEV_A_QUEUE_DMABUF not in reply.attrs():
            return None
        return reply.u32(NETDEV_A_QUEUE_DMABUF)


def test_a_token_keeps_the_binding_mapped_after_unbind(
    mock_kernel: Kernel, nic: MockNic, buf: tuple[int, int]
) -> None:
    fd, memfd = buf
    nl = GenlClient()
    bind(nl, fd, queue=QUEUE)
    binding = the_binding(mock_kernel)
    assert queue_dmabuf(mock_kernel) == binding.id
    peer, sock = connect(mock_kernel, nic.netdev, QUEUE)
    peer.send(b"still mapped")
    _data, anc, _f, _ = sock.recvmsg(100, ANC, MSG_SOCK_DEVMEM)
    ((off, size, token, dmabuf_id, _),) = tokens_of(anc)
    with mock_kernel.tracer.capture() as events:
        nl.close()
    unbind = [e for e in events if e["event"] == "netdev.unbind"]
    assert [(e["id"], e["outstanding"]) for e in unbind] == [(binding.id, 1)]
    assert not [e for e in events if e["event"] == "netdev.binding_free"]
    # off the queue and out of the tables netlink shows, but attached and mapped
    assert nic.netdev.rx[QUEUE].binding is None and queue_dmabuf(mock_kernel) is None
    assert mock_kernel.net.netdev.bindings == {}  # type: ignore[union-attr]
    assert binding.unbound and not binding.freed and binding.sgt is not None
    (attach,) = nic_attachments(mock_kernel)
    assert attach is binding.attach
    assert os.pread(memfd, size, off) == b"still mapped"
    # what arrives now on the queue is readable
    peer.send(b"plain")
    assert sock.recv(100) == b"plain"
    with mock_kernel.tracer.capture() as events:
        assert sock.setsockopt(*DONTNEED, struct.pack("=II", token, 1)) == 1
    freed = [e for e in events if e["event"] == "netdev.binding_free"]
    assert [(e["id"], e["dmabuf"]) for e in freed] == [(dmabuf_id, binding.dmabuf.id)]
    assert binding.freed and nic_attachments(mock_kernel) == []
    assert sock.setsockopt(*DONTNEED, struct.pack("=II", token, 1)) == 0
    sock.close()


def test_queued_frags_keep_it_and_read_after_unbind(
    mock_kernel: Kernel, nic: MockNic, buf: tuple[int, int]
) -> None:
    fd, memfd = buf
    nl = GenlClient()
    bind(nl, fd, queue=QUEUE)
    binding = the_binding(mock_kernel)
    peer, sock = connect(mock_kernel, nic.netdev, QUEUE, mss=PAGE_SIZE)
    payload = os.urandom(2 * PAGE_SIZE)
    assert peer.send(payload) == len(payload)
    nl.close()  # two unread devmem skbs on the socket
    assert binding.outstanding() == 2 and len(nic_attachments(mock_kernel)) == 1
    data, anc, _f, _ = sock.recvmsg(1 << 16, ANC, MSG_SOCK_DEVMEM)
    got = tokens_of(anc)
    assert len(data) == len(payload) and [g[3] for g in got] == [binding.id] * 2
    assert b"".join(os.pread(memfd, g[1], g[0]) for g in got) == payload
    assert sock.setsockopt(*DONTNEED, struct.pack("=II", got[0][2], 1)) == 1
    assert not binding.freed and len(nic_attachments(mock_kernel)) == 1
    sock.close()  # the last token goes back with the socket
    assert binding.freed and nic_attachments(mock_kernel) == []


ORDERS = [
    ("nl", "close"),
    ("close", "nl"),
    ("nl", "dontneed", "close"),
    ("dontneed", "nl", "close"),
    ("nl", "unregister", "close"),
    ("unregister", "nl", "dontneed", "close"),
]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_every_ordering_frees_it_once(
    mock_kernel: Kernel, nic: MockNic, buf: tuple[int, int], order: tuple[str, ...]
) -> None:
    """A token out and a devmem skb queued; whatever the order of closing the netlink
    socket, returning the token, unregistering the NIC and closing the TCP socket, the
    attachment lives exactly while the binding is bound or a niov is out."""
    fd, _memfd = buf
    nl = GenlClient()
    bind(nl, fd, queue=QUEUE)
    binding = the_binding(mock_kernel)
    peer, sock = connect(mock_kernel, nic.netdev, QUEUE, mss=100)
    peer.send(os.urandom(200))
    _d, anc, _f, _ = sock.recvmsg(100, ANC, MSG_SOCK_DEVMEM)
    ((*_x, token, _id, _fl),) = tokens_of(anc)
    frees = []
    mock_kernel.tracer.add_sink(
        lambda e: frees.append(e["id"]) if e["event"] == "netdev.binding_free" else None
    )
    for step in order:
        if step == "nl":
            nl.close()
        elif step == "close":
            sock.close()
        elif step == "dontneed":
            assert sock.setsockopt(*DONTNEED, struct.pack("=II", token, 1)) == 1
        else:
            unregister_netdev(mock_kernel, nic.netdev)
            assert binding.bound_rxqs == [] and all(q.binding is None for q in nic.netdev.rx)
        alive = not binding.unbound or binding.outstanding() > 0
        assert bool(nic_attachments(mock_kernel)) == alive == (not binding.freed)
    assert frees == [binding.id] and binding.freed


@pytest.mark.mockkernel(topology=REVOCABLE)
def test_revoked_while_waiting_for_its_niovs(mock_kernel: Kernel) -> None:
    """Revocable mode: a binding unbound with a token out is still attached, so the
    exporter's revoke reaches it: it unmaps (no queue to quiesce, nothing written); the
    last token then frees it without a second unmap."""
    nic = nic_dev(mock_kernel)
    with VfioDevice(VFIO_BDF) as dev:
        bar = mmap.mmap(dev.fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        fd = dev.export(0x1000, 0x4000)
        nl = GenlClient()
        try:
            assert bind_q(nl, fd, queue=2) == 0
            binding = the_binding(mock_kernel)
            peer, sock = connect(mock_kernel, nic.netdev, 2)
            peer.send(b"in the bar")
            _d, anc, _f, _ = sock.recvmsg(100, ANC, MSG_SOCK_DEVMEM)
            ((off, size, token, *_),) = tokens_of(anc)
            nl.close()
            assert binding.unbound and binding.sgt is not None
            with mock_kernel.tracer.capture() as events:
                dev.reset()
            names = [e["event"] for e in events]
            assert "vfio_pci.dma_buf_revoke" in names and binding.sgt is None
            assert not [e for e in events if e["event"] == "pcie.tlp"]
            assert nic.quiesced == set()  # no queue carried it any more
            peer.send(b"after")  # readable now: not into the (revoked) buffer
            assert sock.recv(100) == b"after"
            assert bar[0x1000 + off : 0x1000 + off + size] == b"in the bar"
            assert len(nic_attachments(mock_kernel)) == 1
            assert sock.setsockopt(*DONTNEED, struct.pack("=II", token, 1)) == 1
            assert binding.freed and nic_attachments(mock_kernel) == []
            sock.close()
        finally:
            nl.close()
            os.close(fd)
            bar.close()
    assert not dma_buf_subsys(mock_kernel).attachments


def test_driver_level_dontneed_after_unbind(
    mock_kernel: Kernel, nic: MockNic, buf: tuple[int, int]
) -> None:
    """``MockNic.dontneed`` finds an unbound binding still waiting for its niovs."""
    fd, _memfd = buf
    nl = GenlClient()
    bind(nl, fd, queue=0)
    binding = the_binding(mock_kernel)
    frags = nic.receive(0, bytes(PAGE_SIZE + 1))
    nl.close()
    assert binding.outstanding() == 2 and not binding.freed
    nic.dontneed(frags[:1])
    assert not binding.freed
    nic.dontneed(frags[1:])
    assert binding.freed and nic_attachments(mock_kernel) == []


def test_program_socket_closes_after_unbind(
    mock_kernel: Kernel, nic: MockNic, buf: tuple[int, int]
) -> None:
    """Through the program's socket calls: the netlink socket closed first, the accepted
    connection reads the queued devmem payload and gives the token back."""
    fd, memfd = buf
    nl = GenlClient()
    bind(nl, fd, queue=QUEUE)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((nic.netdev.ipv4, 0))
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, *server.getsockname())
    conn, _ = server.accept()
    peer.send(b"devmem")
    nl.close()
    data, anc, _f, _ = conn.recvmsg(100, ANC, MSG_SOCK_DEVMEM)
    ((off, size, token, *_),) = tokens_of(anc)
    assert len(data) == 6 and os.pread(memfd, size, off) == b"devmem"
    assert len(nic_attachments(mock_kernel)) == 1
    assert conn.setsockopt(*DONTNEED, struct.pack("=II", token, 1)) == 1
    assert nic_attachments(mock_kernel) == []
    conn.close()
    server.close()


OPS = st.sampled_from(["send", "recv", "dontneed", "nl", "close"])


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, max_size=14), sizes=st.lists(st.integers(1, 2 * PAGE_SIZE), min_size=1))
def test_attached_exactly_while_bound_or_referenced(
    mock_kernel: Kernel, nic: MockNic, ops: list[str], sizes: list[int]
) -> None:
    """Random sends, reads, token returns and closes: the attachment exists iff the
    binding is bound or a niov is out; after both closes nothing is left."""
    fd, _memfd = udmabuf(4 * PAGE_SIZE)
    nl = GenlClient()
    sock: DevmemSocket | None = None
    try:
        bind(nl, fd, queue=QUEUE)
        binding = the_binding(mock_kernel)
        peer, sock = connect(mock_kernel, nic.netdev, QUEUE, mss=PAGE_SIZE)
        held: list[int] = []
        for i, op in enumerate(ops):
            if op == "send" and not sock.sk.closed:
                peer.send(os.urandom(sizes[i % len(sizes)]))
            elif op == "recv" and not sock.sk.closed and sock.sk.readable():
                _d, anc, _f, _ = sock.recvmsg(PAGE_SIZE, ANC, MSG_SOCK_DEVMEM)
                held += [t[2] for t in tokens_of(anc)]
            elif op == "dontneed" and held and not sock.sk.closed:
                assert sock.setsockopt(*DONTNEED, struct.pack("=II", held.pop(0), 1)) == 1
            elif op == "nl":
                nl.close()
            elif op == "close":
                sock.close()
            alive = not binding.unbound or binding.outstanding() > 0
            assert bool(nic_attachments(mock_kernel)) == alive == (not binding.freed)
            assert binding.outstanding() == len(
                {n for _b, n in sock.sk.user_frags.values()}
                | {n for _b, n in sock.sk._queued_niovs()}
            )
        sock.close()
        nl.close()
        assert binding.freed and nic_attachments(mock_kernel) == []
    finally:
        if sock is not None:
            sock.close()
        nl.close()
        os.close(fd)
        os.close(_memfd)
