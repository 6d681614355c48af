"""The devmem TCP receive path: a peer sends, ``recvmsg(MSG_SOCK_DEVMEM)`` hands out
``struct dmabuf_cmsg`` records with the payload already in the dma-buf,
``SO_DEVMEM_DONTNEED`` returns fragments, back-pressure holds the peer until it does."""

from __future__ import annotations

import errno
import mmap
import os
import socket
import struct
from collections.abc import Iterator

import pytest
from mockkernel_nic import MockNic, nic_dev
from nlclient import GenlClient
from test_net_devmem_revocable import REVOCABLE, VFIO_BDF
from test_net_devmem_revocable import bind as bind_q
from test_net_devmem_rx import TphExporter, bind

from mockkernel import Kernel
from mockkernel.driver import PAGE_SIZE, dma_buf_export, dma_buf_fd, dma_buf_subsys
from mockkernel.net.devmem_tcp import ETOOSMALL, MSG_SOCK_DEVMEM
from mockkernel.testing.net import DevmemSocket, TcpPeer, connect
from mockkernel.testing.rdma import VFIO_DMA_BUF_TPH_ST, VfioDevice, udmabuf
from mockkernel.uapi.linux.devmem_socket import SCM_DEVMEM_DMABUF, SO_DEVMEM_DONTNEED

CMSG = struct.Struct("=QIIII")


def frags(sock: DevmemSocket, bufsize: int = 1 << 20, anc: int = 4096) -> list[tuple[int, ...]]:
    data, ancdata, flags, _addr = sock.recvmsg(bufsize, anc, MSG_SOCK_DEVMEM)
    assert flags == 0
    assert all((lvl, typ) == (socket.SOL_SOCKET, SCM_DEVMEM_DMABUF) for lvl, typ, _ in ancdata)
    out = [CMSG.unpack(d) for _, _, d in ancdata]
    assert data == bytes(sum(f[1] for f in out))  # the count, nothing copied
    return out


def tokens(*ranges: tuple[int, int]) -> bytes:
    return b"".join(struct.pack("=II", s, c) for s, c in ranges)


@pytest.fixture
def tagged(mock_kernel: Kernel) -> Iterator[tuple[int, TphExporter]]:
    ops = TphExporter(mock_kernel, 4 * PAGE_SIZE, (0x42, 2))
    fd = dma_buf_fd(dma_buf_export(mock_kernel, ops, 4 * PAGE_SIZE, ops, "nic-test"), os.O_CLOEXEC)
    yield fd, ops
    os.close(fd)


def test_udmabuf_end_to_end(mock_kernel: Kernel, nl: GenlClient, nic: MockNic) -> None:
    fd, memfd = udmabuf(4 * PAGE_SIZE)
    try:
        bind(nl, fd, queue=1)
        peer, sock = connect(mock_kernel, nic.netdev, 1)
        payload = bytes(range(256)) * 24  # 6144 bytes: two fragments
        assert peer.send(payload) == len(payload)
        got = frags(sock)
        assert [(size, token, dmabuf_id, fl) for _o, size, token, dmabuf_id, fl in got] == [
            (PAGE_SIZE, 1, 1, 0),
            (len(payload) - PAGE_SIZE, 2, 1, 0),
        ]
        received = b"".join(os.pread(memfd, size, off) for off, size, *_ in got)
        assert received == payload
        with pytest.raises(BlockingIOError):
            sock.recvmsg(100, 4096, MSG_SOCK_DEVMEM)
        assert sock.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens((1, 2))) == 2
        assert sock.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens((1, 2))) == 0
        peer.close()
        assert sock.recvmsg(100, 4096, MSG_SOCK_DEVMEM)[0] == b""
        sock.close()
        binding = mock_kernel.net.netdev.bindings[1]  # type: ignore[union-attr]
        assert len(binding.free) == binding.num_niovs
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


def test_tlps_carry_the_tag(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic, tagged: tuple[int, TphExporter]
) -> None:
    fd, ops = tagged
    bind(nl, fd, queue=2)
    peer, sock = connect(mock_kernel, nic.netdev, 2)
    with mock_kernel.tracer.capture() as events:
        peer.send(b"q" * 100)
    tlps = [e for e in events if e["event"] == "pcie.tlp"]
    assert tlps and all(e["th"] and (e["st"], e["ph"]) == (0x42, 2) for e in tlps)
    ((off, size, *_),) = frags(sock)
    assert ops.view.read(off, size) == b"q" * 100
    sock.close()
    nl.close()


def test_errnos(mock_kernel: Kernel, nl: GenlClient, nic: MockNic) -> None:
    fd, memfd = udmabuf(4 * PAGE_SIZE)
    try:
        bind(nl, fd)
        peer, sock = connect(mock_kernel, nic.netdev, 0)
        peer.send(b"abc")
        for call in (lambda: sock.recv(10), lambda: sock.recvmsg(10, 4096)):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.EFAULT
        with pytest.raises(OSError) as e:
            sock.recvmsg(10, 8, MSG_SOCK_DEVMEM)  # no room for one dmabuf_cmsg
        assert e.value.errno == ETOOSMALL
        opt = socket.SOL_SOCKET, SO_DEVMEM_DONTNEED
        for bad in (b"\0" * 7, tokens(*[(1, 1)] * 129)):
            with pytest.raises(OSError) as e:
                sock.setsockopt(*opt, bad)
            assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        assert e.value.errno == errno.ENOPROTOOPT
        assert sock.setsockopt(*opt, b"") == 0
        assert sock.setsockopt(*opt, tokens((7, 3), (0xFFFFFFFF, 2))) == 0  # unknown: skipped
        # a partial read: each piece its own token, the niov free after both
        ((off, size, tok, *_),) = frags(sock, bufsize=2)
        assert (size, tok) == (2, 1)
        ((off2, size2, tok2, *_),) = frags(sock)
        assert (off2, size2, tok2) == (off + 2, 1, 2)
        binding = mock_kernel.net.netdev.bindings[1]  # type: ignore[union-attr]
        free = len(binding.free)
        assert sock.setsockopt(*opt, tokens((1, 1))) == 1
        assert len(binding.free) == free
        assert sock.setsockopt(*opt, tokens((2, 1))) == 1
        assert len(binding.free) == free + 1
        sock.close()
        with pytest.raises(OSError) as e:
            sock.recvmsg(10, 4096, MSG_SOCK_DEVMEM)
        assert e.value.errno == errno.EBADF
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


def test_back_pressure_resumes_after_dontneed(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic
) -> None:
    fd, memfd = udmabuf(2 * PAGE_SIZE)
    try:
        bind(nl, fd)
        peer, sock = connect(mock_kernel, nic.netdev, 0)
        payload = os.urandom(3 * PAGE_SIZE + 10)
        assert peer.send(payload) == 2 * PAGE_SIZE
        assert peer.pending == PAGE_SIZE + 10
        first = frags(sock)
        data = b"".join(os.pread(memfd, size, off) for off, size, *_ in first)
        opt = socket.SOL_SOCKET, SO_DEVMEM_DONTNEED
        assert sock.setsockopt(*opt, tokens((1, 1))) == 1  # one niov back: one page resumes
        assert peer.pending == 10
        second = frags(sock)
        assert [t[2] for t in second] == [1]  # the lowest free token again
        data += b"".join(os.pread(memfd, size, off) for off, size, *_ in second)
        assert sock.setsockopt(*opt, tokens((1, 2))) == 2
        assert peer.pending == 0
        data += b"".join(os.pread(memfd, size, off) for off, size, *_ in frags(sock))
        assert data == payload
        sock.close()  # outstanding tokens go back with the socket
        binding = mock_kernel.net.netdev.bindings[1]  # type: ignore[union-attr]
        assert sorted(binding.free) == [0, 1]
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


@pytest.mark.mockkernel(topology=REVOCABLE)
def test_vfio_revocable_end_to_end(mock_kernel: Kernel, nl: GenlClient) -> None:
    nic = nic_dev(mock_kernel)
    with VfioDevice(VFIO_BDF) as dev:
        bar = mmap.mmap(dev.fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        fd = dev.export(0x1000, 0x4000)
        try:
            dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST, st=0x21, ph=1)
            assert bind_q(nl, fd, queue=3) == 0
            peer, sock = connect(mock_kernel, nic.netdev, 3)
            with mock_kernel.tracer.capture() as events:
                assert peer.send(b"devmem over tcp") == 15
            ((off, size, token, dmabuf_id, _),) = frags(sock)
            assert (size, token, dmabuf_id) == (15, 1, 1)
            assert bar[0x1000 + off : 0x1000 + off + size] == b"devmem over tcp"
            tlps = {
                (e["requester"], e["th"], e["ph"], e["st"], e["target"], e["status"])
                for e in events
                if e["event"] == "pcie.tlp"
            }
            assert tlps == {("0000:03:00.0", True, 1, 0x21, f"{VFIO_BDF}:bar0", "ok")}
            assert sock.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens((1, 1))) == 1
            sock.close()
        finally:
            nl.close()
            os.close(fd)
            bar.close()
    assert not dma_buf_subsys(mock_kernel).attachments


def test_socket_redirection_rule(mock_kernel: Kernel, nl: GenlClient, nic: MockNic) -> None:
    """Bound to the NIC's address: mock; anywhere else: a real socket, untouched."""
    assert nic.netdev.ipv4 == "192.0.2.1"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as real:
        real.bind(("127.0.0.1", 0))
        real.listen()
        assert real.getsockname()[0] == "127.0.0.1"
        with socket.create_connection(real.getsockname()) as client:
            conn, _ = real.accept()
            client.sendall(b"real")
            assert conn.recv(4) == b"real"
            conn.close()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("192.0.2.1", 5201))
    assert server.getsockname() == ("192.0.2.1", 5201)
    with pytest.raises(OSError) as e:
        TcpPeer.connect(mock_kernel, "192.0.2.1", 5201)  # not listening yet
    assert e.value.errno == errno.ECONNREFUSED
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, "192.0.2.1", 5201)  # no devmem-bound queue
    assert peer.sk.queue == 0  # an ordinary readable flow (see test_net_devmem_linear)
    assert peer.send(b"plain") == 5
    conn, _ = server.accept()
    assert conn.recv(100) == b"plain"
    conn.close()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        with pytest.raises(OSError) as e:
            other.bind(("192.0.2.1", 5201))
        assert e.value.errno == errno.EADDRINUSE
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.accept()
    server.close()


def test_program_socket_end_to_end(mock_kernel: Kernel, nl: GenlClient, nic: MockNic) -> None:
    fd, memfd = udmabuf(2 * PAGE_SIZE)
    try:
        bind(nl, fd, queue=4)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("192.0.2.1", 0))
        server.listen(1)
        addr, port = server.getsockname()
        peer = TcpPeer.connect(mock_kernel, addr, port)
        assert peer.sk.queue == 4  # steered to the bound queue
        conn, _ = server.accept()
        assert conn.fileno() >= 0
        payload = b"m" * (PAGE_SIZE + 5) + b"n" * PAGE_SIZE
        assert peer.send(payload) == 2 * PAGE_SIZE  # one page waits for a niov
        with pytest.raises(OSError) as e:
            conn.recv(100)
        assert e.value.errno == errno.EFAULT
        data, anc, _flags, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(24) * 8, MSG_SOCK_DEVMEM)
        got = [CMSG.unpack(c) for _, _, c in anc]
        assert len(data) == 2 * PAGE_SIZE and [g[2] for g in got] == [1, 2]
        first = b"".join(os.pread(memfd, g[1], g[0]) for g in got)
        freed = conn.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, tokens((1, 2)))
        assert freed == 2 and peer.pending == 0
        data, anc, _flags, _ = conn.recvmsg(1 << 16, 4096, MSG_SOCK_DEVMEM)
        ((off, size, *_),) = [CMSG.unpack(c) for _, _, c in anc]
        assert first + os.pread(memfd, size, off) == payload
        peer.close()
        assert conn.recvmsg(1 << 16, 4096, MSG_SOCK_DEVMEM)[:2] == (b"", [])
        conn.close()  # the outstanding token goes back
        server.close()
        binding = mock_kernel.net.netdev.bindings[1]  # type: ignore[union-attr]
        assert sorted(binding.free) == [0, 1]
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


def test_closing_the_listener_resets_unaccepted(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic
) -> None:
    fd, memfd = udmabuf(PAGE_SIZE)
    try:
        bind(nl, fd)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("192.0.2.1", 7))
        server.listen(4)
        peer = TcpPeer.connect(mock_kernel, "192.0.2.1", 7)
        assert peer.send(b"never read") == 10
        server.close()
        binding = mock_kernel.net.netdev.bindings[1]  # type: ignore[union-attr]
        assert binding.free == [0]
        with pytest.raises(OSError) as e:
            peer.send(b"more")
        assert e.value.errno == errno.EPIPE
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)
