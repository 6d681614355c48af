"""The device fd on both access paths: info, regions, IRQs, reset, config/BAR I/O, mmap."""

from __future__ import annotations

import dataclasses
import fcntl
import mmap
import os
import struct

import pytest
from vfio_helpers import (
    BAR0_SIZE,
    BAR2_SIZE,
    BDF,
    CONFIG,
    PAGE,
    Device,
    call,
    ioctl_buf,
    open_group_path,
)

from mockkernel import Kernel
from mockkernel.topology import default_topology
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_GET_INFO,
    VFIO_DEVICE_GET_IRQ_INFO,
    VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
    VFIO_DEVICE_GET_REGION_INFO,
    VFIO_DEVICE_PCI_HOT_RESET,
    VFIO_DEVICE_RESET,
)

PCI_COMMAND = 4
MEM = 0x2
MASTER = 0x4


def _region(fd: int, index: int, argsz: int = 32) -> tuple[int, ...]:
    data = struct.pack("<IIIIQQ", argsz, 0, index, 0, 0, 0)
    return struct.unpack("<IIIIQQ", ioctl_buf(fd, VFIO_DEVICE_GET_REGION_INFO, data)[1])


def _cmd(fd: int) -> int:
    value: int = struct.unpack("<H", os.pread(fd, 2, CONFIG + PCI_COMMAND))[0]
    return value


def _set_cmd(fd: int, value: int) -> None:
    assert os.pwrite(fd, struct.pack("<H", value), CONFIG + PCI_COMMAND) == 2


def test_get_info(dev: Device) -> None:
    for argsz in (16, 24, 256):
        _, out = ioctl_buf(
            dev.fd, VFIO_DEVICE_GET_INFO, struct.pack("<IIIIII", argsz, 9, 0, 0, 7, 7)
        )
        assert struct.unpack("<IIII", out[:16]) == (argsz, 3, 9, 5)  # RESET|PCI, 9 regions, 5 irqs
    for argsz in (0, 15):
        data = struct.pack("<IIII", argsz, 0, 0, 0)
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_GET_INFO, data) == "EINVAL"


def test_region_info(dev: Device) -> None:
    rw_mmap, rw = 7, 3
    assert _region(dev.fd, 0) == (32, rw_mmap, 0, 0, BAR0_SIZE, 0)
    assert _region(dev.fd, 1) == (32, 0, 1, 0, 0, 1 << 40)  # upper half of 64-bit BAR0
    assert _region(dev.fd, 2) == (32, rw_mmap, 2, 0, BAR2_SIZE, 2 << 40)
    for index in (3, 4, 5, 6):  # absent BARs and no ROM: flags 0, size 0
        assert _region(dev.fd, index) == (32, 0, index, 0, 0, index << 40)
    assert _region(dev.fd, 7) == (32, rw, 7, 0, 4096, CONFIG)  # PCI Express: 4 KiB
    assert _region(dev.fd, 0, argsz=512)[0] == 512
    for index in (8, 9, 0xFFFFFFFF):  # VGA (none) and past the last region
        assert call(_region, dev.fd, index) == "EINVAL"
    assert call(_region, dev.fd, 0, 31) == "EINVAL"


def test_irq_info(dev: Device) -> None:
    def irq(index: int, argsz: int = 16) -> tuple[int, ...]:
        data = struct.pack("<IIII", argsz, 0, index, 0)
        return struct.unpack("<IIII", ioctl_buf(dev.fd, VFIO_DEVICE_GET_IRQ_INFO, data)[1])

    assert irq(0) == (16, 7, 0, 1)  # INTx: EVENTFD|MASKABLE|AUTOMASKED, pin A
    assert irq(1) == (16, 9, 1, 0)  # MSI: no MSI capability on this device
    assert irq(2) == (16, 9, 2, 0)  # MSI-X: none on this device
    assert irq(3) == (16, 9, 3, 1)  # ERR: a PCI Express device
    assert irq(4) == (16, 9, 4, 1)  # REQ
    assert call(irq, 5) == "EINVAL"
    assert call(irq, 0, 15) == "EINVAL"


def test_config_region(dev: Device, mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    pdev = mock_kernel.pci.get(BDF)
    assert struct.unpack("<HH", os.pread(dev.fd, 4, CONFIG)) == (pdev.vendor, pdev.device)
    assert len(os.pread(dev.fd, 3, CONFIG + 1)) == 3  # split in aligned pieces
    assert len(os.pread(dev.fd, 4096, CONFIG)) == 4096
    for pos, n in ((4096, 1), (4094, 4), (0, 4097)):  # reaching past the end: EFAULT
        assert call(os.pread, dev.fd, n, CONFIG + pos) == "EFAULT"
    assert call(os.pwrite, dev.fd, b"\0" * 4, CONFIG + 4096) == "EFAULT"
    assert os.pwrite(dev.fd, b"\xff\xff", CONFIG) == 2  # vendor id: read-only, dropped
    assert struct.unpack("<H", os.pread(dev.fd, 2, CONFIG))[0] == pdev.vendor
    # PCI_COMMAND reaches the device (the memory bit too: Linux 7.2 writes it through)
    assert _cmd(dev.fd) & MEM
    _set_cmd(dev.fd, _cmd(dev.fd) | MASTER)
    assert pdev.pci_read_config_word(PCI_COMMAND) & MASTER
    _set_cmd(dev.fd, _cmd(dev.fd) & ~MEM)
    assert not pdev.memory_enabled and not _cmd(dev.fd) & MEM
    _set_cmd(dev.fd, _cmd(dev.fd) | MEM)
    assert pdev.memory_enabled


def test_bar_sizing_is_virtual(dev: Device, mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    pdev = mock_kernel.pci.get(BDF)
    bar0 = pdev.bars[0]
    hw = pdev.pci_read_config_dword(0x10)
    assert struct.unpack("<I", os.pread(dev.fd, 4, CONFIG + 0x10))[0] == hw
    os.pwrite(dev.fd, b"\xff" * 4, CONFIG + 0x10)
    sized = struct.unpack("<I", os.pread(dev.fd, 4, CONFIG + 0x10))[0]
    assert sized == (~(bar0.size - 1) & 0xFFFFFFF0) | bar0.flags
    os.pwrite(dev.fd, b"\xff" * 4, CONFIG + 0x14)  # upper dword of the 64-bit BAR
    assert struct.unpack("<I", os.pread(dev.fd, 4, CONFIG + 0x14))[0] == 0xFFFFFFFF
    os.pwrite(dev.fd, b"\xff" * 4, CONFIG + 0x1C)  # absent BAR3
    assert struct.unpack("<I", os.pread(dev.fd, 4, CONFIG + 0x1C))[0] == 0
    assert pdev.pci_read_config_dword(0x10) == hw  # the device's BAR did not move
    os.pwrite(dev.fd, struct.pack("<I", hw), CONFIG + 0x10)
    assert struct.unpack("<I", os.pread(dev.fd, 4, CONFIG + 0x10))[0] == hw


def test_bar_io(dev: Device, mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get(BDF).bars[0]
    assert os.pwrite(dev.fd, b"hello", 16) == 5
    assert bar.map.read(16, 5) == b"hello"  # the kernel's view of the BAR
    bar.map.write(100, b"from the device")
    assert os.pread(dev.fd, 15, 100) == b"from the device"
    assert len(os.pread(dev.fd, 8, BAR0_SIZE - 4)) == 4  # short read at the end
    assert os.pread(dev.fd, 0, 1 << 50) == b""  # count 0: nothing is checked
    for pos in (BAR0_SIZE, 1 << 40, 3 << 40, 6 << 40, 8 << 40, 9 << 40):
        assert call(os.pread, dev.fd, 4, pos) == "EINVAL"
    assert call(os.pwrite, dev.fd, b"\0", 6 << 40) == "EINVAL"  # ROM
    _set_cmd(dev.fd, _cmd(dev.fd) & ~MEM)
    assert call(os.pread, dev.fd, 4, 0) == "EIO"
    assert call(os.pwrite, dev.fd, b"\0", 0) == "EIO"
    _set_cmd(dev.fd, _cmd(dev.fd) | MEM)
    assert os.pread(dev.fd, 5, 16) == b"hello"


def test_bar_mmap(dev: Device, mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get(BDF).bars[0]
    m = mmap.mmap(dev.fd, 2 * PAGE, offset=PAGE)
    try:
        m[0:4] = b"abcd"
        assert bar.map.read(PAGE, 4) == b"abcd"
        assert os.pread(dev.fd, 4, PAGE) == b"abcd"
        bar.map.write(PAGE + 8, b"xyz")
        assert m[8:11] == b"xyz"
    finally:
        m.close()
    whole = mmap.mmap(dev.fd, BAR0_SIZE)
    whole.close()
    ro = mmap.mmap(dev.fd, PAGE, prot=mmap.PROT_READ)
    ro.close()
    for length, offset, kw in (
        (2 * PAGE, BAR0_SIZE - PAGE, {}),  # past the BAR
        (PAGE, 0, {"flags": mmap.MAP_PRIVATE}),
        (PAGE, 1 << 40, {}),  # absent BAR
        (PAGE, 6 << 40, {}),  # ROM
        (PAGE, CONFIG, {}),
        (PAGE, 9 << 40, {}),
    ):
        assert call(mmap.mmap, dev.fd, length, offset=offset, **kw) == "EINVAL"


def test_reset(dev: Device, mock_kernel: Kernel) -> None:
    assert fcntl.ioctl(dev.fd, VFIO_DEVICE_RESET) == 0
    _set_cmd(dev.fd, _cmd(dev.fd) & ~MEM)
    assert fcntl.ioctl(dev.fd, VFIO_DEVICE_RESET) == 0
    assert not _cmd(dev.fd) & MEM  # config space is saved and restored around the reset
    _set_cmd(dev.fd, _cmd(dev.fd) | MEM)


def test_hot_reset_info(dev: Device) -> None:
    data = struct.pack("<III", 12, 0, 0)
    assert call(ioctl_buf, dev.fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, data) == "ENOSPC"
    buf = bytearray(struct.pack("<III", 64, 0, 0) + bytes(52))
    assert fcntl.ioctl(dev.fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, buf, True) == 0
    _argsz, flags, count = struct.unpack_from("<III", buf)
    assert count == 1
    ident, seg, bus, devfn = struct.unpack_from("<IHBB", buf, 12)
    assert (seg, bus, devfn) == (0, 1, 0)
    if dev.path == "group":
        assert (flags, ident) == (0, 6)  # the IOMMU group
    else:
        assert (flags, ident) == (3, dev.devid)  # DEV_ID | DEV_ID_OWNED
    assert call(ioctl_buf, dev.fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, bytes(12)) == "EINVAL"
    assert call(ioctl_buf, dev.fd, VFIO_DEVICE_PCI_HOT_RESET, bytes(16)) == "EINVAL"


def test_hot_reset_group_path(mock_kernel: Kernel) -> None:
    dev = open_group_path()
    g = dev.others[0]
    try:
        data = struct.pack("<IIIi", 16, 0, 1, g)
        assert ioctl_buf(dev.fd, VFIO_DEVICE_PCI_HOT_RESET, data)[0] == 0
        data = struct.pack("<IIIi", 16, 0, 1, dev.others[1])  # the container is not a group
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_PCI_HOT_RESET, data) == "EINVAL"
        data = struct.pack("<IIIi", 16, 0, 1, 999)
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_PCI_HOT_RESET, data) == "EBADF"
        data = struct.pack("<IIIii", 20, 0, 2, g, g)  # more fds than affected devices
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_PCI_HOT_RESET, data) == "EINVAL"
        nul = os.open("/dev/null", os.O_RDONLY)
        try:
            data = struct.pack("<IIIi", 16, 0, 1, nul)
            assert call(ioctl_buf, dev.fd, VFIO_DEVICE_PCI_HOT_RESET, data) == "EINVAL"
        finally:
            os.close(nul)
        data = struct.pack("<IIIi", 16, 1, 1, g)
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_PCI_HOT_RESET, data) == "EINVAL"
    finally:
        dev.close()


NO_RESET = dataclasses.replace(
    default_topology(),
    devices=tuple(
        dataclasses.replace(d, options={"reset": False}) if d.bdf == BDF else d
        for d in default_topology().devices
    ),
)


@pytest.mark.mockkernel(topology=NO_RESET)
@pytest.mark.usefixtures("mock_kernel")
def test_device_without_reset() -> None:
    dev = open_group_path()
    try:
        _, out = ioctl_buf(dev.fd, VFIO_DEVICE_GET_INFO, struct.pack("<IIII", 16, 0, 0, 0))
        assert struct.unpack("<IIII", out)[1] == 2  # PCI only, as QEMU's ivshmem
        assert call(fcntl.ioctl, dev.fd, VFIO_DEVICE_RESET) == "EINVAL"
    finally:
        dev.close()


def test_last_close_restores_command(mock_kernel: Kernel) -> None:
    """Linux 7.2: memory disabled, device closed, reopened: PCI_COMMAND is back as saved."""
    dev = open_group_path()
    before = _cmd(dev.fd)
    _set_cmd(dev.fd, before & ~MEM)
    dev.close()
    dev = open_group_path()
    try:
        assert _cmd(dev.fd) == before
    finally:
        dev.close()


def test_bar_mmap_validate_and_madvise(dev: Device, mock_kernel: Kernel) -> None:
    """``MAP_SHARED_VALIDATE`` maps a BAR as ``MAP_SHARED`` does (``EOPNOTSUPP`` with
    ``MAP_SYNC``: vfio-pci has no ``mmap_supported_flags``); a BAR mapping is
    ``VM_IO | VM_PFNMAP``, so ``madvise`` refuses what needs pages (``mm/madvise.c``, and
    the udmabuf answers of the ``generic_file`` golden) and ``msync`` has no ``->fsync``."""
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get(BDF).bars[0]
    m = mmap.mmap(dev.fd, PAGE, 0x03)  # MAP_SHARED_VALIDATE
    try:
        m[0:4] = b"vali"
        assert bar.map.read(0, 4) == b"vali"
        assert call(m.madvise, mmap.MADV_DONTNEED) == "EINVAL"
        assert call(m.madvise, 9) == "ENODEV"  # MADV_REMOVE: vfs_fallocate of the device
        assert call(m.madvise, mmap.MADV_WILLNEED) is None
        assert call(m.flush) == "EINVAL"
        assert bar.map.read(0, 4) == b"vali"  # nothing was dropped
    finally:
        m.close()
    assert call(mmap.mmap, dev.fd, PAGE, 0x03 | 0x80000) == "EOPNOTSUPP"
