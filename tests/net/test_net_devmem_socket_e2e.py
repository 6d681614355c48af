"""End to end through the program's socket calls, revocable mode: a vfio-pci BAR dma-buf
with a TPH SET, bound over netlink; a peer's payload lands in the BAR at the offsets the
``SCM_DEVMEM_DMABUF`` cmsgs give, every TLP tagged; ``VFIO_DEVICE_RESET`` while bound
quiesces the queue and nothing reaches the revoked buffer; after the un-revoke traffic
resumes (the held bytes first) with the re-queried tag."""

from __future__ import annotations

import mmap
import os
import socket
import struct
from typing import Any

import pytest
from mockkernel_nic import nic_dev
from nlclient import GenlClient
from test_net_devmem_revocable import REVOCABLE, VFIO_BDF, bind

from mockkernel import Kernel
from mockkernel.driver import dma_buf_subsys
from mockkernel.net.devmem_tcp import MSG_SOCK_DEVMEM
from mockkernel.testing.net import TcpPeer
from mockkernel.testing.rdma import VFIO_DMA_BUF_TPH_ST, VfioDevice
from mockkernel.uapi.linux.devmem_socket import SCM_DEVMEM_DMABUF, SO_DEVMEM_DONTNEED

CMSG = struct.Struct("=QIIII")
BAR_OFFSET = 0x2000
SIZE = 0x4000
QUEUE = 5


def tlps(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (e["requester"], e["th"], e["ph"], e["st"], e["target"], e["status"])
        for e in events
        if e["event"] == "pcie.tlp"
    }


def receive(conn: socket.socket, bar: mmap.mmap) -> tuple[bytes, list[tuple[int, ...]]]:
    """One ``recvmsg(MSG_SOCK_DEVMEM)``: the payload read from the BAR at the cmsg
    offsets (relative to the dma-buf, so plus its BAR offset); the tokens returned."""
    data, anc, _flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(24) * 16, MSG_SOCK_DEVMEM)
    assert all((lvl, typ) == (socket.SOL_SOCKET, SCM_DEVMEM_DMABUF) for lvl, typ, _ in anc)
    frags = [CMSG.unpack(c) for _, _, c in anc]
    assert len(data) == sum(f[1] for f in frags)
    assert all(f[0] + f[1] <= SIZE for f in frags)
    got = b"".join(bar[BAR_OFFSET + off : BAR_OFFSET + off + size] for off, size, *_ in frags)
    toks = b"".join(struct.pack("=II", f[2], 1) for f in frags)
    assert conn.setsockopt(socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, toks) == len(frags)
    return got, frags


@pytest.mark.mockkernel(topology=REVOCABLE)
def test_vfio_tph_socket_path_across_a_reset(mock_kernel: Kernel, nl: GenlClient) -> None:
    nic = nic_dev(mock_kernel)
    with VfioDevice(VFIO_BDF) as dev:
        bar = mmap.mmap(dev.fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        fd = dev.export(BAR_OFFSET, SIZE)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST, st=0x21, ph=1)
            assert bind(nl, fd, queue=QUEUE) == 0
            server.bind((nic.netdev.ipv4, 0))
            server.listen(1)
            peer = TcpPeer.connect(mock_kernel, *server.getsockname())
            assert peer.sk.queue == QUEUE
            conn, _ = server.accept()

            # payload in the BAR at the cmsg offsets, every TLP tagged
            first = os.urandom(6000)  # two fragments
            with mock_kernel.tracer.capture() as events:
                assert peer.send(first) == len(first)
            assert tlps(events) == {("0000:03:00.0", True, 1, 0x21, f"{VFIO_BDF}:bar0", "ok")}
            got, frags = receive(conn, bar)
            assert got == first and len(frags) == 2

            # a reset while bound: the peer sends inside the revoke window
            held = b"held while revoked " * 8
            window: list[tuple[int, set[tuple[Any, ...]], bool]] = []

            def in_window(event: dict[str, object]) -> None:
                if event["event"] == "vfio_pci.dma_buf_revoke":
                    with mock_kernel.tracer.capture() as inner:
                        taken = peer.send(held)
                    window.append((taken, tlps(inner), QUEUE in nic.quiesced))

            mock_kernel.tracer.add_sink(in_window)
            try:
                with mock_kernel.tracer.capture() as events:
                    dev.reset()
            finally:
                mock_kernel.tracer.remove_sink(in_window)
            assert "mock_nic.quiesce" in [e["event"] for e in events]
            assert window == [(0, set(), True)]  # nothing taken, no TLP, queue quiesced
            assert peer.pending == len(held)
            assert held[:16] not in bar[BAR_OFFSET : BAR_OFFSET + SIZE]
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recvmsg(1 << 16, 4096, MSG_SOCK_DEVMEM)
            conn.setblocking(True)

            # un-revoked by the reset's end: a new tag, and the next send re-maps,
            # re-queries it and delivers the held bytes first
            dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST, st=0x33, ph=2)
            more = b"after the reset"
            with mock_kernel.tracer.capture() as events:
                assert peer.send(more) == len(held) + len(more)
            assert tlps(events) == {("0000:03:00.0", True, 2, 0x33, f"{VFIO_BDF}:bar0", "ok")}
            assert QUEUE not in nic.quiesced and nic.tph[QUEUE] == (0x33, 2)
            got, _frags = receive(conn, bar)
            assert got == held + more
            peer.close()
            assert conn.recvmsg(1 << 16, 4096, MSG_SOCK_DEVMEM)[:2] == (b"", [])
            conn.close()
        finally:
            server.close()
            nl.close()
            os.close(fd)
            bar.close()
    assert not dma_buf_subsys(mock_kernel).attachments
