"""Revocable mode of the mock NIC (beyond upstream): a vfio-pci dma-buf binds, payload
lands in the BAR with the exporter's steering tag, a reset quiesces the queue and drops
traffic while revoked, and traffic resumes (re-mapped, TPH re-queried) after un-revoke."""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os

import pytest
from mockkernel_nic import nic_dev
from nlclient import GenlClient, nest, u32

from mockkernel import Kernel
from mockkernel.driver import dma_buf_subsys
from mockkernel.testing.rdma import VFIO_DMA_BUF_TPH_ST, VfioDevice
from mockkernel.topology import default_topology
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_DMABUF_FD,
    NETDEV_A_DMABUF_IFINDEX,
    NETDEV_A_DMABUF_QUEUES,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_BIND_RX,
    NETDEV_QUEUE_TYPE_RX,
)

NIC_BDF = "0000:03:00.0"
VFIO_BDF = "0000:01:00.0"
NIC_RID = 0x03 << 8

REVOCABLE = dataclasses.replace(
    default_topology(),
    devices=tuple(
        dataclasses.replace(d, options={"devmem": "revocable"}) if d.bdf == NIC_BDF else d
        for d in default_topology().devices
    ),
)


def bind(nl: GenlClient, fd: int, queue: int) -> int:
    queues = nest(
        NETDEV_A_DMABUF_QUEUES,
        u32(NETDEV_A_QUEUE_ID, queue),
        u32(NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX),
    )
    r = nl.request(
        nl.family("netdev"),
        NETDEV_CMD_BIND_RX,
        u32(NETDEV_A_DMABUF_IFINDEX, 2),
        u32(NETDEV_A_DMABUF_FD, fd),
        queues,
    )[0]
    return r.error or 0


@pytest.mark.mockkernel(topology=REVOCABLE)
def test_vfio_bar_receive_tagged_across_a_reset(mock_kernel: Kernel, nl: GenlClient) -> None:
    nic = nic_dev(mock_kernel)
    with VfioDevice(VFIO_BDF) as dev:
        bar = mmap.mmap(dev.fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        fd = dev.export(0x1000, 0x4000)
        try:
            dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST, st=0x21, ph=1)
            assert bind(nl, fd, queue=3) == 0
            assert nic.tph[3] == (0x21, 1)
            frags = nic.receive(3, b"devmem payload")
            (frag,) = frags
            assert bar[0x1000 + frag.offset : 0x1000 + frag.offset + 14] == b"devmem payload"
            assert {(t.requester_id, t.th, t.ph, t.st, t.target, t.status) for t in frag.tlps} == {
                (NIC_RID, True, 1, 0x21, f"{VFIO_BDF}:bar0", "ok")
            }
            nic.dontneed(frags)

            # a reset revokes: the queue is quiesced and nothing reaches the buffer
            window: list[object] = []

            def peer(event: dict[str, object]) -> None:
                if event["event"] == "vfio_pci.dma_buf_revoke":
                    window.append(nic.receive(3, b"lost"))

            mock_kernel.tracer.add_sink(peer)
            try:
                with mock_kernel.tracer.capture() as events:
                    dev.reset()
            finally:
                mock_kernel.tracer.remove_sink(peer)
            names = [e["event"] for e in events]
            assert "mock_nic.quiesce" in names
            assert window == [[]] and nic.drops == 1
            assert b"lost" not in bar[0x1000:0x5000]

            # un-revoked by the reset's end: the next payload re-maps and lands, tagged
            dev.set_tph(fd, VFIO_DMA_BUF_TPH_ST, st=0x33, ph=2)
            (frag,) = nic.receive(3, b"after reset")
            assert bar[0x1000 + frag.offset : 0x1000 + frag.offset + 11] == b"after reset"
            assert all(t.st == 0x33 and t.ph == 2 and t.status == "ok" for t in frag.tlps)
            assert 3 not in nic.quiesced
            nic.dontneed([frag])
        finally:
            nl.close()
            os.close(fd)
            bar.close()


@pytest.mark.mockkernel(topology=REVOCABLE)
def test_revoked_at_bind_time_is_enodev(mock_kernel: Kernel, nl: GenlClient) -> None:
    with VfioDevice(VFIO_BDF) as dev:
        fd = dev.export(0x1000, 0x4000)
        try:
            dev.memory(False)
            assert bind(nl, fd, queue=0) == -errno.ENODEV
            dev.memory(True)
            assert bind(nl, fd, queue=0) == 0
        finally:
            nl.close()
            os.close(fd)
    assert not dma_buf_subsys(mock_kernel).attachments
