"""TPH on vfio dma-bufs, profile ``tph-v11`` (the default): the SET handler's eleven steps
(kernel.md section 5, v9-v11 order) and the ``get_pci_tph`` dma-buf op."""

from __future__ import annotations

import os
import struct

import pytest
from mockkernel_vfio_pci.core import VfioPciDevice
from mockkernel_vfio_pci.tph import feature_dma_buf_tph_v11
from vfio_helpers import (
    BDF,
    MULTI,
    PAGE,
    Device,
    TestImporter,
    call,
    export,
    feature,
    open_device,
    tph_v11,
)

from mockkernel import Kernel, KernelBug
from mockkernel.driver import Attachment, dma_buf_get, dma_buf_get_pci_tph, dma_buf_put
from mockkernel.testing import sealed_memfd
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET,
)
from mockkernel.uapi.linux.vfio_tph import (
    VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
)

ST, EXT = VFIO_DMA_BUF_TPH_ST, VFIO_DMA_BUF_TPH_ST_EXT
TPH = VFIO_DEVICE_FEATURE_DMA_BUF_TPH
SET13 = VFIO_DEVICE_FEATURE_SET | TPH


def _query(kernel: Kernel, fd: int, extended: bool) -> tuple[int, int] | str:
    """What an importer would get: ``dma_buf_get_pci_tph`` under the reservation lock."""
    dmabuf = dma_buf_get(fd, kernel.current)
    try:
        with dmabuf.resv:
            return call(dma_buf_get_pci_tph, dmabuf, extended)  # type: ignore[return-value]
    finally:
        dma_buf_put(dmabuf)


def _vdev(kernel: Kernel, bdf: str = BDF) -> VfioPciDevice:
    vdev: VfioPciDevice = kernel.bound[bdf].devices[bdf]  # type: ignore[attr-defined]
    return vdev


# -- the SET handler, step by step ---------------------------------------------------------
@pytest.mark.mockkernel(topology=MULTI)
def test_step1_no_completer_fails_before_everything(mock_kernel: Kernel) -> None:
    dev = open_device("group", "0000:06:00.0", 11)  # tph_completer = "none"
    try:
        assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_PROBE | TPH) == "EOPNOTSUPP"
        assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_GET | TPH) == "EOPNOTSUPP"
        assert call(feature, dev.fd, SET13, b"", 8) == "EOPNOTSUPP"  # before the argsz check
        fd = export(dev.fd)
        assert call(tph_v11, dev.fd, fd, ST, st=1) == "EOPNOTSUPP"
        os.close(fd)
    finally:
        dev.close()


def test_step2_check_feature(dev: Device) -> None:
    assert feature(dev.fd, VFIO_DEVICE_FEATURE_PROBE | TPH) == 0
    assert feature(dev.fd, VFIO_DEVICE_FEATURE_PROBE | SET13) == 0
    assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | TPH) == (
        "EINVAL"
    )
    assert call(feature, dev.fd, VFIO_DEVICE_FEATURE_GET | TPH, bytes(12)) == "EINVAL"
    assert call(feature, dev.fd, SET13, bytes(11)) == "EINVAL"  # argsz 19 < 8 + 12


def test_step3_efault(dev: Device, mock_kernel: Kernel) -> None:
    vdev = _vdev(mock_kernel)
    assert call(feature_dma_buf_tph_v11, vdev, SET13, 16, 12) == "EFAULT"


def test_steps_4_to_9_in_order(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    try:
        assert call(tph_v11, dev.fd, -1, 4) == "EINVAL"  # 4. undefined flag, before the fd
        assert call(tph_v11, dev.fd, -1, 1 << 31) == "EINVAL"
        assert call(tph_v11, dev.fd, -1, ST, ph=4) == "EINVAL"  # 5. ph > 3, before the fd
        assert call(tph_v11, dev.fd, -1, 0) == "EBADF"  # 7. bad fd
        assert call(tph_v11, dev.fd, 999, ST) == "EBADF"
        assert call(tph_v11, dev.fd, dev.fd, ST) == "EINVAL"  # 7. a file, not a dma-buf
        nul = os.open("/dev/null", os.O_RDONLY)
        try:
            assert call(tph_v11, dev.fd, nul, ST) == "EINVAL"  # a real fd, not a dma-buf
        finally:
            os.close(nul)
        assert tph_v11(dev.fd, fd, ST | EXT, xst=0xFFFF, st=0xFF, ph=3) == 0  # 11.
    finally:
        os.close(fd)


@pytest.mark.mockkernel(topology=MULTI)
def test_step6_extended_tag_needs_extended_completer(mock_kernel: Kernel) -> None:
    dev = open_device("cdev", "0000:05:00.0")  # tph_completer = "tph-only"
    try:
        fd = export(dev.fd)
        assert call(tph_v11, dev.fd, -1, EXT | ST) == "EOPNOTSUPP"  # 6. before the fd
        assert call(tph_v11, dev.fd, fd, EXT, xst=1) == "EOPNOTSUPP"
        assert call(tph_v11, dev.fd, fd, EXT | 4) == "EINVAL"  # 4. comes first
        assert call(tph_v11, dev.fd, fd, EXT, ph=4) == "EINVAL"  # 5. comes first
        assert tph_v11(dev.fd, fd, ST, st=0x42, ph=1) == 0  # the 8-bit namespace works
        assert _query(mock_kernel, fd, False) == (0x42, 1)
        assert _query(mock_kernel, fd, True) == "EOPNOTSUPP"
        os.close(fd)
    finally:
        dev.close()


def test_step8_another_exporters_dmabuf(dev: Device) -> None:
    memfd = sealed_memfd(PAGE)
    udev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        ufd = struct.unpack("<i", struct.pack("<i", _udmabuf(udev, memfd)))[0]
        assert call(tph_v11, dev.fd, ufd, ST, st=1) == "EINVAL"
        os.close(ufd)
    finally:
        os.close(udev)
        os.close(memfd)


def _udmabuf(udev: int, memfd: int) -> int:
    import fcntl

    buf = bytearray(struct.pack("<iIQQ", memfd, 0, 0, PAGE))
    fd: int = fcntl.ioctl(udev, UDMABUF_CREATE, buf, True)
    return fd


@pytest.mark.mockkernel(topology=MULTI)
def test_step9_another_devices_dmabuf(mock_kernel: Kernel) -> None:
    a = open_device("group")
    b = open_device("cdev", "0000:04:00.0")
    try:
        fd = export(b.fd)
        assert call(tph_v11, a.fd, fd, ST, st=1) == "EINVAL"  # priv->vdev != vdev
        assert tph_v11(b.fd, fd, ST, st=1) == 0
        os.close(fd)
    finally:
        a.close()
        b.close()


def test_step9_dmabuf_of_a_closed_device(mock_kernel: Kernel) -> None:
    dev = open_device("group")
    fd = export(dev.fd)
    dev.close()  # cleanup: priv->vdev = NULL
    dev = open_device("group")
    try:
        assert call(tph_v11, dev.fd, fd, ST, st=1) == "EINVAL"
    finally:
        dev.close()
        os.close(fd)


# -- semantics: full replacement, get_pci_tph, revoked, importers ----------------------------
def test_full_replacement_and_query(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    try:
        assert _query(mock_kernel, fd, False) == "EOPNOTSUPP"  # nothing set yet
        tph_v11(dev.fd, fd, ST | EXT, xst=0x0110, st=0x10, ph=1)
        assert _query(mock_kernel, fd, False) == (0x10, 1)
        assert _query(mock_kernel, fd, True) == (0x0110, 1)
        tph_v11(dev.fd, fd, EXT, xst=0x0222, st=0x99, ph=2)  # ST clear: invalidated
        assert _query(mock_kernel, fd, False) == "EOPNOTSUPP"
        assert _query(mock_kernel, fd, True) == (0x0222, 2)
        tph_v11(dev.fd, fd, 0)  # both invalidated
        assert _query(mock_kernel, fd, True) == "EOPNOTSUPP"
        dup = os.dup(fd)  # any fd of the buffer names it
        tph_v11(dev.fd, dup, ST, st=7)
        os.close(dup)
        assert _query(mock_kernel, fd, False) == (7, 0)
    finally:
        os.close(fd)


def test_get_pci_tph_asserts_the_reservation_lock(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    tph_v11(dev.fd, fd, ST, st=1)
    dmabuf = dma_buf_get(fd, mock_kernel.current)
    try:
        with pytest.raises(KernelBug):
            dma_buf_get_pci_tph(dmabuf, False)
    finally:
        dma_buf_put(dmabuf)
        os.close(fd)


def test_set_while_revoked(dev: Device, mock_kernel: Kernel) -> None:
    """``revoked`` is not checked by the SET handler."""
    cmd = struct.unpack("<H", os.pread(dev.fd, 2, (7 << 40) + 4))[0]
    os.pwrite(dev.fd, struct.pack("<H", cmd & ~2), (7 << 40) + 4)
    fd = export(dev.fd)
    try:
        assert tph_v11(dev.fd, fd, ST, st=3) == 0
        assert _query(mock_kernel, fd, False) == (3, 0)
    finally:
        os.pwrite(dev.fd, struct.pack("<H", cmd), (7 << 40) + 4)
        os.close(fd)


class TphImporter(TestImporter):
    """Takes the TPH value when it maps, as mlx5 does; re-queries on the next mapping."""

    __test__ = False
    seen: list[tuple[int, int] | str]

    def map(self):  # type: ignore[no-untyped-def]
        sgt = super().map()
        assert self.dmabuf is not None
        with self.dmabuf.resv:
            self.seen.append(call(dma_buf_get_pci_tph, self.dmabuf, True))  # type: ignore[arg-type]
        return sgt

    def invalidate_mappings(self, attach: Attachment) -> None:
        super().invalidate_mappings(attach)


def test_value_valid_until_next_invalidation(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    imp = TphImporter(mock_kernel)
    imp.seen = []
    try:
        tph_v11(dev.fd, fd, EXT, xst=0x100)  # set before passing the fd on, as required
        imp.import_fd(fd)
        tph_v11(dev.fd, fd, EXT, xst=0x200)  # a later SET: the importer's value stays
        assert imp.seen == [(0x100, 0)]
        cmd = struct.unpack("<H", os.pread(dev.fd, 2, (7 << 40) + 4))[0]
        os.pwrite(dev.fd, struct.pack("<H", cmd & ~2), (7 << 40) + 4)  # invalidate
        os.pwrite(dev.fd, struct.pack("<H", cmd), (7 << 40) + 4)
        imp.map()  # a new mapping: re-query
        assert imp.seen == [(0x100, 0), (0x200, 0)]
    finally:
        imp.release()
        os.close(fd)


def test_tph_on_a_dmabuf_after_set_from_other_path(mock_kernel: Kernel) -> None:
    """Group path and cdev path are the same device: a buffer of one is set through it."""
    dev = open_device("cdev")
    try:
        fd = export(dev.fd, [(0, PAGE)])
        assert tph_v11(dev.fd, fd, ST, st=9, ph=3) == 0
        assert _query(mock_kernel, fd, False) == (9, 3)
        os.close(fd)
    finally:
        dev.close()
