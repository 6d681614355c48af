"""The config region's permission tables (``vfio_pci_config.c``), beyond the 64-byte header.

The default topology's vfio-pci device is a PCI Express endpoint: PM at 0x40, PCI Express
at 0x60 (52 bytes), Device Serial Number at 0x100.  The guest topology's edu is
conventional PCI with MSI alone at 0x40 (64-bit, one vector) and QEMU's writable
device-specific area (``devspec_writable``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from mockkernel_vfio_pci.config import (
    CAP_PERMS,
    ECAP_PERMS,
    PCI_CAP_ID_BASIC,
    PCI_CAP_ID_EXP,
    PCI_CAP_ID_PM,
    UNASSIGNED_PERMS,
    msi_perm,
    raw_read,
    raw_write,
)
from mockkernel_vfio_pci.core import VfioPciDevice
from mockkernel_vfio_pci.dmabuf import VfioPciDmaBuf
from vfio_helpers import BDF, CONFIG, PATHS, Device, export, open_device

from mockkernel import Kernel
from mockkernel.pci import PciDev
from mockkernel.topology import DeviceSpec, MsiSpec, load_topology

GUEST = load_topology(Path(__file__).parent / "real_linux_guest.toml")
EDU = "0000:01:00.0"
PM, EXP = 0x40, 0x60
DEVCTL, DEVCTL2 = EXP + 0x08, EXP + 0x28


def _rd(fd: int, pos: int, n: int) -> int:
    return int.from_bytes(os.pread(fd, n, CONFIG + pos), "little")


def _wr(fd: int, pos: int, n: int, value: int) -> None:
    assert os.pwrite(fd, value.to_bytes(n, "little"), CONFIG + pos) == n


def _pdev(kernel: Kernel, bdf: str = BDF) -> PciDev:
    vdev: VfioPciDevice = kernel.bound[bdf].devices[bdf]  # type: ignore[attr-defined]
    return vdev.pdev


def _priv(kernel: Kernel, fd: int) -> VfioPciDmaBuf:
    priv: VfioPciDmaBuf = kernel.init_process.files[fd].private_data.priv
    return priv


def _bits(table: bytearray, off: int, n: int) -> int:
    return int.from_bytes(table[off : off + n], "little")


# -- the tables as upstream initialises them ---------------------------------------------------
def test_pcie_capability_table() -> None:
    """``init_pci_cap_exp_perm``: DEVCTL writable but Phantom Functions, FLR/MPS/MRRS
    virtual; DEVCTL2 writable but ARI; next pointer virtual; nothing else writable."""
    p = CAP_PERMS[PCI_CAP_ID_EXP]
    assert len(p.virt) == 52
    assert _bits(p.virt, 1, 1) == 0xFF and _bits(p.write, 1, 1) == 0
    assert _bits(p.virt, 0x08, 2) == 0x8000 | 0x00E0 | 0x7000
    assert _bits(p.write, 0x08, 2) == 0xFFFF & ~0x0200
    assert _bits(p.virt, 0x28, 2) == 0 and _bits(p.write, 0x28, 2) == 0xFFFF & ~0x0020
    others = [i for i in range(52) if p.write[i] and i not in (0x08, 0x09, 0x28, 0x29)]
    assert others == []


def test_pm_table() -> None:
    """``init_pci_cap_pm_perm``: PME bits virtual, the power state not writable."""
    p = CAP_PERMS[PCI_CAP_ID_PM]
    assert _bits(p.virt, 2, 2) == 0xF800 and _bits(p.write, 2, 2) == 0
    assert _bits(p.virt, 4, 4) == 0x8100
    assert _bits(p.write, 4, 4) == 0xFFFF_FFFF & ~0x8103


def test_msi_table_and_unassigned() -> None:
    """``init_pci_cap_msi_perm`` for 64-bit without masking; unassigned bytes are raw."""
    p = msi_perm(14, 0x0080)
    assert len(p.virt) == 16
    assert _bits(p.virt, 0, 4) == 0x00FF_FF00 and _bits(p.write, 0, 4) == 0x00FF_0000
    assert _bits(p.virt, 4, 4) == _bits(p.write, 4, 4) == 0xFFFF_FFFF  # address
    assert _bits(p.virt, 8, 4) == _bits(p.write, 8, 4) == 0xFFFF_FFFF  # upper address
    assert _bits(p.virt, 12, 2) == _bits(p.write, 12, 2) == 0xFFFF  # data
    assert UNASSIGNED_PERMS.readfn is raw_read and UNASSIGNED_PERMS.writefn is raw_write
    basic = CAP_PERMS[PCI_CAP_ID_BASIC]
    assert basic.virt[0x3C] == basic.write[0x3C] == 0xFF  # INTERRUPT_LINE
    assert basic.virt[0x3D] == 0xFF and basic.write[0x3D] == 0  # INTERRUPT_PIN
    assert basic.write[0x0D] == 0xFF and basic.virt[0x0D] == 0  # latency: to the device
    assert ECAP_PERMS[0x03].writefn is None  # DSN: read-only


# -- the default topology's PCI Express device -----------------------------------------------
def test_pcie_devctl_write(dev: Device, mock_kernel: Kernel) -> None:
    pdev = _pdev(mock_kernel)
    assert _rd(dev.fd, DEVCTL, 2) == 0x2810 == pdev.pci_read_config_word(DEVCTL)
    _wr(dev.fd, DEVCTL, 2, 0x0000)
    # MRRS 512 → 128: virtual, and applied to the device no lower than its MPS (128)
    assert _rd(dev.fd, DEVCTL, 2) == 0 and pdev.pci_read_config_word(DEVCTL) == 0
    _wr(dev.fd, DEVCTL, 2, 0xFFFF)
    # FLR reads 0; MPS and MRRS (an invalid 7) only virtual; Phantom Functions dropped
    assert _rd(dev.fd, DEVCTL, 2) == 0x7DFF
    assert pdev.pci_read_config_word(DEVCTL) == 0x0D1F
    _wr(dev.fd, DEVCTL2, 2, 0xFFFF)
    assert _rd(dev.fd, DEVCTL2, 2) == pdev.pci_read_config_word(DEVCTL2) == 0x07DF  # no ARI
    devcap = _rd(dev.fd, EXP + 4, 4)
    _wr(dev.fd, EXP + 4, 4, 0)
    assert _rd(dev.fd, EXP + 4, 4) == devcap  # read-only
    _wr(dev.fd, EXP, 4, 0)  # id, next, flags: dropped
    assert _rd(dev.fd, EXP, 1) == 0x10


def test_pcie_unassigned_and_ext_caps(dev: Device, mock_kernel: Kernel) -> None:
    """Without ``devspec_writable`` an unassigned byte drops the (raw) write; the DSN is
    read-only with its header from vconfig."""
    _wr(dev.fd, 0xF0, 4, 0x12345678)
    assert _rd(dev.fd, 0xF0, 4) == 0
    dsn = _rd(dev.fd, 0x100, 12).to_bytes(12, "little")
    _wr(dev.fd, 0x100, 4, 0)
    _wr(dev.fd, 0x104, 4, 0)
    assert _rd(dev.fd, 0x100, 12).to_bytes(12, "little") == dsn
    assert dsn[:2] == b"\x03\x00"


def test_pm_d3_write_revokes(dev: Device, mock_kernel: Kernel) -> None:
    """``vfio_pm_config_write`` → ``vfio_lock_and_set_power_state``: D3hot revokes every
    dma-buf; D0 un-revokes (memory decoding is on)."""
    pdev = _pdev(mock_kernel)
    fd = export(dev.fd)
    try:
        ctrl = _rd(dev.fd, PM + 4, 2)
        assert ctrl & 3 == 0
        with mock_kernel.tracer.capture() as events:
            _wr(dev.fd, PM + 4, 2, ctrl | 3)
        assert _priv(mock_kernel, fd).revoked
        assert pdev.pci_read_config_word(PM + 4) & 3 == 3
        assert _rd(dev.fd, PM + 4, 2) & 3 == 3  # the state bits read from the device
        assert [e for e in events if e["event"] == "vfio_pci.dma_buf_revoke"]
        _wr(dev.fd, PM + 4, 2, ctrl & ~3)
        assert not _priv(mock_kernel, fd).revoked
        assert pdev.pci_read_config_word(PM + 4) & 3 == 0
        # a byte write at PMCSR+1 is not at PCI_PM_CTRL: no state change
        _wr(dev.fd, PM + 5, 1, 0xFF)
        assert not _priv(mock_kernel, fd).revoked
    finally:
        os.close(fd)


@pytest.mark.parametrize("path", PATHS)
def test_d3_left_at_close(path: str, mock_kernel: Kernel) -> None:
    """Closing the device brings it back to D0 (``vfio_pci_core_disable``)."""
    dev = open_device(path)
    try:
        _wr(dev.fd, PM + 4, 2, 3)
    finally:
        dev.close()
    assert _pdev(mock_kernel).pci_read_config_word(PM + 4) & 3 == 0


def test_interrupt_line_virtual(dev: Device, mock_kernel: Kernel) -> None:
    pdev = _pdev(mock_kernel)
    _wr(dev.fd, 0x3C, 1, 0x55)
    assert _rd(dev.fd, 0x3C, 1) == 0x55 and pdev.pci_read_config_byte(0x3C) == 0
    _wr(dev.fd, 0x06, 2, 0xFFFF)  # status: no writable bit
    assert _rd(dev.fd, 0x06, 2) == pdev.pci_read_config_word(0x06)


# -- the guest's edu: MSI and raw bytes --------------------------------------------------------
@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
@pytest.mark.parametrize("path", PATHS)
def test_msi_rules(path: str) -> None:
    dev = open_device(path, EDU, 6)
    try:
        assert _rd(dev.fd, 0x42, 2) == 0x80
        _wr(dev.fd, 0x42, 2, 0xFFFF)
        assert _rd(dev.fd, 0x42, 2) == 0x8E  # no enable, QSIZE cut to msi_qmax 0
        _wr(dev.fd, 0x42, 2, 0x0001)
        assert _rd(dev.fd, 0x42, 2) == 0  # the 64-bit bit is virtual too
        _wr(dev.fd, 0x44, 4, 0xFFFF_FFFF)
        _wr(dev.fd, 0x4C, 4, 0xFFFF_FFFF)  # data (virtual) + 2 raw bytes past the cap
        assert _rd(dev.fd, 0x44, 4) == 0xFFFF_FFFF
        assert _rd(dev.fd, 0x4C, 4) == 0xFFFF_FFFF
        got = struct.unpack("<4I", os.pread(dev.fd, 16, CONFIG + 0x40))
        assert got == (0x0000_0005, 0xFFFF_FFFF, 0, 0xFFFF_FFFF)
        _wr(dev.fd, 0x4E, 2, 0)
    finally:
        dev.close()


@pytest.mark.mockkernel(topology=GUEST)
@pytest.mark.usefixtures("mock_kernel")
def test_raw_bytes_reach_the_device(mock_kernel: Kernel) -> None:
    dev = open_device(PATHS[0], EDU, 6)
    pdev = _pdev(mock_kernel, EDU)
    try:
        _wr(dev.fd, 0x50, 4, 0x12345678)
        assert _rd(dev.fd, 0x50, 4) == pdev.pci_read_config_dword(0x50) == 0x12345678
        assert pdev.pci_read_config_dword(0x44) == 0  # nothing virtual reaches it
        assert _rd(dev.fd, 0x3C, 1) == 0x0B  # the firmware's interrupt line
        _wr(dev.fd, 0x50, 4, 0)
    finally:
        dev.close()


# -- the device model's devspec_writable ---------------------------------------------------------
def test_devspec_writable_spares_capabilities() -> None:
    spec = DeviceSpec(
        bdf="0000:05:00.0", vendor=0x1234, device=0x11E8, class_code=0xFF00, iommu_group=1,
        pcie_type="conventional", pm=False, msi=MsiSpec(vectors=1), devspec_writable=True,
        interrupt_line=0x0B, serr_enabled=True,
    )  # fmt: skip
    pdev = PciDev(spec)
    try:
        cfg = pdev.cfg
        assert [cfg.wmask(o, 1) for o in (0x40, 0x41, 0x43)] == [0, 0, 0]
        assert cfg.wmask(0x42, 2) == 0x71  # MSI enable and QSIZE only
        assert cfg.wmask(0x4E, 2) == 0xFFFF and cfg.wmask(0xFC, 4) == 0xFFFF_FFFF
        assert cfg.read(0x3C, 1) == 0x0B and cfg.read(0x04, 2) & 0x100
        plain = PciDev(DeviceSpec(bdf="0000:06:00.0", vendor=1, device=2, class_code=0,
                                  iommu_group=2))  # fmt: skip
        try:
            assert plain.cfg.wmask(0xFC, 4) == 0 and plain.cfg.wmask(0x200, 4) == 0
        finally:
            plain.close()
    finally:
        pdev.close()
