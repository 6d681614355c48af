"""vfio-pci on conventional PCI functions: the real-Linux guest's edu and ivshmem.

What Linux 7.2 answered for them (``golden/vfio_device.jsonl``), on both access paths: a
256-byte config region, no ERR irq, the MSI count from the capability, no INTx without an
interrupt pin, ``PCI_COMMAND.IO`` as firmware left it, and a 256-byte BAR that maps as one
page.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

import pytest
from vfio_helpers import CONFIG, PAGE, PATHS, call, ioctl_buf, open_device

from mockkernel import Kernel
from mockkernel.pci import PciBar
from mockkernel.topology import BarSpec, MsiSpec, load_topology
from mockkernel.uapi.linux.vfio import VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_GET_REGION_INFO

GUEST = load_topology(Path(__file__).parent / "real_linux_guest.toml")
IVSHMEM, EDU = "0000:00:04.0", "0000:01:00.0"
GROUPS = {IVSHMEM: 4, EDU: 6}


def _region(fd: int, index: int) -> tuple[int, ...]:
    data = struct.pack("<IIIIQQ", 32, 0, index, 0, 0, 0)
    return struct.unpack("<IIIIQQ", ioctl_buf(fd, VFIO_DEVICE_GET_REGION_INFO, data)[1])


def _irq(fd: int, index: int) -> tuple[int, ...]:
    data = struct.pack("<IIII", 16, 0, index, 0)
    return struct.unpack("<IIII", ioctl_buf(fd, VFIO_DEVICE_GET_IRQ_INFO, data)[1])


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bdf", [IVSHMEM, EDU])
def test_config_region_is_256_bytes(path: str, bdf: str) -> None:
    dev = open_device(path, bdf, GROUPS[bdf])
    try:
        assert _region(dev.fd, 7) == (32, 3, 7, 0, 0x100, CONFIG)
        assert len(os.pread(dev.fd, 256, CONFIG)) == 256
        assert len(os.pread(dev.fd, 4, CONFIG + 252)) == 4
        for pos, n in ((256, 1), (254, 4), (0, 4096), (4096, 4)):
            assert call(os.pread, dev.fd, n, CONFIG + pos) == "EFAULT"
        assert call(os.pwrite, dev.fd, b"\0" * 4, CONFIG + 256) == "EFAULT"
        cmd = struct.unpack("<H", os.pread(dev.fd, 2, CONFIG + 4))[0]
        assert cmd & 0x3 == 0x3  # IO (left on by firmware) and MEMORY
        assert os.pwrite(dev.fd, struct.pack("<H", cmd & ~1), CONFIG + 4) == 2
        assert not struct.unpack("<H", os.pread(dev.fd, 2, CONFIG + 4))[0] & 1  # writable
    finally:
        dev.close()


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
@pytest.mark.parametrize("path", PATHS)
def test_irqs_of_conventional_functions(path: str) -> None:
    edu = open_device(path, EDU, GROUPS[EDU])
    ivshmem = open_device(path, IVSHMEM, GROUPS[IVSHMEM])
    try:
        assert _irq(edu.fd, 0) == (16, 7, 0, 1)  # INTA#
        assert _irq(edu.fd, 1) == (16, 9, 1, 1)  # MSI, one vector
        assert _irq(ivshmem.fd, 0) == (16, 7, 0, 0)  # no interrupt pin
        assert _irq(ivshmem.fd, 1) == (16, 9, 1, 0)  # no MSI capability
        for fd in (edu.fd, ivshmem.fd):
            assert _irq(fd, 2) == (16, 9, 2, 0)
            assert call(_irq, fd, 3) == "EINVAL"  # ERR: PCI Express only
            assert _irq(fd, 4) == (16, 9, 4, 1)
    finally:
        edu.close()
        ivshmem.close()


MSI8 = load_topology(
    (Path(__file__).parent / "real_linux_guest.toml")
    .read_text()
    .replace("vectors = 1", "vectors = 8")
)


@pytest.mark.mockkernel(topology=MSI8)
def test_msi_count_is_multiple_message_capable(mock_kernel: Kernel) -> None:
    assert MSI8.device(EDU).msi == MsiSpec(vectors=8)
    dev = open_device("group", EDU, GROUPS[EDU])
    try:
        assert _irq(dev.fd, 1) == (16, 9, 1, 8)
    finally:
        dev.close()


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.parametrize("path", PATHS)
def test_sub_page_bar(mock_kernel: Kernel, path: str) -> None:
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get(IVSHMEM).bars[0]
    dev = open_device(path, IVSHMEM, GROUPS[IVSHMEM])
    try:
        assert _region(dev.fd, 0) == (32, 7, 0, 0, 0x100, 0)  # READ|WRITE|MMAP
        assert len(os.pread(dev.fd, 4096, 0)) == 256
        assert len(os.pread(dev.fd, 4, 254)) == 2
        assert call(os.pread, dev.fd, 4, 256) == "EINVAL"
        m = mmap.mmap(dev.fd, PAGE)  # the whole page the BAR starts
        try:
            m[0:4] = b"regs"
            assert bar.map.read(0, 4) == b"regs" == os.pread(dev.fd, 4, 0)
        finally:
            m.close()
        for length, offset in ((2 * PAGE, 0), (PAGE, PAGE)):
            assert call(mmap.mmap, dev.fd, length, offset=offset) == "EINVAL"
    finally:
        dev.close()


def test_sub_page_bar_off_a_page_start_cannot_be_mapped() -> None:
    """``vfio_pci_probe_mmaps``: a sub-page BAR that does not start a page is not mappable
    (the topology's layout never makes one: Linux gives sub-page BARs a page in a guest)."""
    from mockkernel_vfio_pci.device import bar_mmap_supported

    bars = [
        PciBar(IVSHMEM, BarSpec(0, size), addr)
        for size, addr in ((0x100, 0xE0000000), (0x100, 0xE0000100), (0x1000, 0xE0001000))
    ]
    try:
        assert [bar_mmap_supported(b) for b in bars] == [True, False, True]
    finally:
        for b in bars:
            b.close()
