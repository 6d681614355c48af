"""The mock NIC's devmem RX data path (driver level): payload DMA into the bound dma-buf
through the fabric, one niov per fragment, TPH from the exporter, back-pressure."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest
from mockkernel_nic import MockNic
from nlclient import GenlClient, nest, u32

from mockkernel import Kernel
from mockkernel.driver import (
    PAGE_SIZE,
    Attachment,
    DmaBuf,
    DmaBufOps,
    KernelMap,
    SgEntry,
    SgTable,
    dma_buf_export,
    dma_buf_fd,
    hide,
    kernel_close,
)
from mockkernel.testing.rdma import udmabuf
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_DMABUF_FD,
    NETDEV_A_DMABUF_IFINDEX,
    NETDEV_A_DMABUF_QUEUES,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_BIND_RX,
    NETDEV_QUEUE_TYPE_RX,
)

ETH0 = 2
RAM = 0x4_0000_0000  # where the test exporter's pages sit on the bus


class TphExporter(DmaBufOps):
    """System memory at ``RAM`` with a steering tag: what a TPH-aware exporter hands out."""

    def __init__(self, kernel: Kernel, size: int, tph: tuple[int, int] | None) -> None:
        self.kernel = kernel
        self.size = size
        self.memfd = hide(kernel, os.memfd_create("nic-test", os.MFD_CLOEXEC))
        os.ftruncate(self.memfd, size)
        self.view = KernelMap(kernel, self.memfd, size)
        kernel.fabric.add_ram(RAM, size, self.view)
        self.tph = tph
        self.queries: list[bool] = []

    def map_dma_buf(self, attach: Attachment, direction: int) -> SgTable:  # type: ignore[override]
        return SgTable([SgEntry(RAM, self.size, self.view)])

    def unmap_dma_buf(self, attach: Attachment, sgt: SgTable, direction: int) -> None:  # type: ignore[override]
        pass

    def release(self, dmabuf: DmaBuf) -> None:  # type: ignore[override]
        self.kernel.fabric.remove_ram(RAM)
        self.view.close()
        kernel_close(self.kernel, self.memfd)

    def get_pci_tph(self, dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:  # type: ignore[override]
        dmabuf.resv.assert_held()
        self.queries.append(extended)
        if self.tph is None:
            raise OSError(errno.EOPNOTSUPP, "no TPH")
        return self.tph


def bind(nl: GenlClient, fd: int, queue: int = 0) -> None:
    queues = nest(
        NETDEV_A_DMABUF_QUEUES,
        u32(NETDEV_A_QUEUE_ID, queue),
        u32(NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX),
    )
    r = nl.request(
        nl.family("netdev"),
        NETDEV_CMD_BIND_RX,
        u32(NETDEV_A_DMABUF_IFINDEX, ETH0),
        u32(NETDEV_A_DMABUF_FD, fd),
        queues,
    )[0]
    assert r.error is None


@pytest.fixture
def tph_buf(mock_kernel: Kernel) -> Iterator[tuple[int, TphExporter]]:
    ops = TphExporter(mock_kernel, 4 * PAGE_SIZE, (0x42, 2))
    fd = dma_buf_fd(dma_buf_export(mock_kernel, ops, 4 * PAGE_SIZE, ops, "nic-test"), os.O_CLOEXEC)
    yield fd, ops
    os.close(fd)


def test_udmabuf_payload_lands_without_tph(nl: GenlClient, nic: MockNic) -> None:
    fd, memfd = udmabuf(4 * PAGE_SIZE)
    try:
        bind(nl, fd, queue=1)
        assert nic.tph[1] is None and "exporter" in nic.tph_reason
        payload = bytes(range(256)) * 40  # 10240 bytes: 3 fragments
        frags = nic.receive(1, payload)
        assert [f.size for f in frags] == [4096, 4096, 2048]
        got = b"".join(os.pread(memfd, f.size, f.offset) for f in frags)
        assert got == payload
        tlps = [t for f in frags for t in f.tlps]
        assert tlps and all(t.status == "ok" and not t.th for t in tlps)
        nic.dontneed(frags)  # else the binding outlives the netlink socket (a leak)
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


def test_back_pressure_and_dontneed(nl: GenlClient, nic: MockNic) -> None:
    fd, memfd = udmabuf(2 * PAGE_SIZE)
    try:
        bind(nl, fd)
        frags = nic.receive(0, bytes(3 * PAGE_SIZE))
        assert sum(f.size for f in frags) == 2 * PAGE_SIZE  # the third page is not taken
        assert nic.receive(0, b"x") == []
        nic.dontneed(frags[:1])
        (again,) = nic.receive(0, b"y" * 10)
        assert again.offset == frags[0].offset
        assert os.pread(memfd, 10, again.offset) == b"y" * 10
        nic.dontneed([*frags[1:], again])
    finally:
        nl.close()
        os.close(fd)
        os.close(memfd)


def test_payload_writes_carry_the_exporters_tag(
    nl: GenlClient, nic: MockNic, tph_buf: tuple[int, TphExporter]
) -> None:
    fd, ops = tph_buf
    bind(nl, fd, queue=2)
    assert ops.queries == [False]  # the E810 requests 8-bit tags
    assert nic.tph[2] == (0x42, 2)
    frags = nic.receive(2, b"z" * 5000)
    tlps = [t for f in frags for t in f.tlps]
    assert tlps and all(t.th and t.steering_tag == 0x42 and t.ph == 2 for t in tlps)
    assert ops.view.read(0, 5000) == b"z" * 5000
    nic.dontneed(frags)
    nl.close()


def test_tph_error_falls_back_to_no_tph(mock_kernel: Kernel, nl: GenlClient, nic: MockNic) -> None:
    ops = TphExporter(mock_kernel, PAGE_SIZE, None)
    fd = dma_buf_fd(dma_buf_export(mock_kernel, ops, PAGE_SIZE, ops, "nic-test"), os.O_CLOEXEC)
    try:
        bind(nl, fd)
        assert nic.tph[0] is None
        (frag,) = nic.receive(0, b"a")
        assert not frag.tlps[0].th and frag.tlps[0].status == "ok"
        nic.dontneed([frag])
    finally:
        nl.close()
        os.close(fd)


def test_receive_on_an_unbound_queue(nic: MockNic) -> None:
    with pytest.raises(ValueError):
        nic.receive(5, b"x")
