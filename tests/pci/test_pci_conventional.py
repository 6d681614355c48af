"""Conventional PCI functions, MSI, the interrupt pin, PCI_COMMAND.IO and sub-page BARs.

The device model describes QEMU's edu and ivshmem as the real-Linux guest sees them
(``tests/vfio/real_linux_guest.toml``): no PCI Express capability (256 bytes of config
space, no extended capabilities), an MSI capability, no interrupt pin, the I/O enable bit
writable and on, a 256-byte BAR.
"""

from __future__ import annotations

import dataclasses
import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pci_testing import EDU, GUEST, IVSHMEM, VFIO_BDF, BusFactory, with_device

from mockkernel.pci import ConfigSpace, PciDev, pcie_tph_completer_type
from mockkernel.pci import _regs as r
from mockkernel.topology import (
    PAGE_SIZE,
    BarSpec,
    DeviceSpec,
    MsiSpec,
    MsixSpec,
    Topology,
    default_topology,
    layout_bars,
)


def _caps(pdev: PciDev) -> list[int]:
    """The standard capability ids, in list order."""
    out = []
    pos = pdev.pci_read_config_byte(r.PCI_CAPABILITY_LIST)
    while pos:
        out.append(pdev.pci_read_config_byte(pos))
        pos = pdev.pci_read_config_byte(pos + 1)
    return out


def test_conventional_function_has_256_bytes_and_no_pcie(make_bus: BusFactory) -> None:
    edu = make_bus(GUEST).get(EDU.bdf)
    assert edu.cfg_size == edu.cfg.size == r.PCI_CFG_SPACE_SIZE
    assert not edu.pci_is_pcie() and edu.pcie_cap == 0
    assert edu.pci_pcie_type() == 0  # the kernel's pcie_flags_reg of a non-PCIe device
    assert pcie_tph_completer_type(edu) == 0
    assert edu.pci_find_ext_capability(r.PCI_EXT_CAP_ID_DSN) == 0
    assert edu.tph_cap == 0
    assert _caps(edu) == [r.PCI_CAP_ID_MSI]  # QEMU's edu: no PM capability, MSI at 0x40
    assert edu.msi_cap == 0x40 and edu.pm_cap == 0
    assert edu.pci_read_config_dword(0xFC) == 0  # the last register
    for where, width in ((0x100, 4), (0xFE, 4), (0x100, 1)):
        with pytest.raises(OSError) as info:
            edu.cfg.read(where, width)
        assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        edu.pci_write_config_dword(0x100, 0)
    assert info.value.errno == errno.EINVAL


def test_pcie_function_keeps_4096_bytes(make_bus: BusFactory) -> None:
    vfio = make_bus().get(VFIO_BDF)
    assert vfio.cfg_size == r.PCI_CFG_SPACE_EXP_SIZE and vfio.pci_is_pcie()
    assert vfio.msi_cap == 0
    assert vfio.pci_find_ext_capability(r.PCI_EXT_CAP_ID_DSN) == 0x100
    with pytest.raises(ValueError, match="neither 256 nor 4096"):
        ConfigSpace(512)


@pytest.mark.parametrize(
    ("spec", "flags", "size"),
    [
        (MsiSpec(vectors=1), r.PCI_MSI_FLAGS_64BIT, 14),
        (MsiSpec(vectors=4), 2 << 1 | r.PCI_MSI_FLAGS_64BIT, 14),
        (MsiSpec(vectors=32, addr64=False), 5 << 1, 10),
        (MsiSpec(vectors=8, per_vector_mask=True), 3 << 1 | 0x180, 24),
        (MsiSpec(vectors=2, addr64=False, per_vector_mask=True), 1 << 1 | 0x100, 20),
    ],
)
def test_msi_capability(make_bus: BusFactory, spec: MsiSpec, flags: int, size: int) -> None:
    pdev = make_bus(Topology(devices=(dataclasses.replace(EDU, msi=spec),))).get(EDU.bdf)
    msi = pdev.msi_cap
    assert msi == 0x40 and pdev.pci_find_capability(r.PCI_CAP_ID_MSI) == msi  # (no PM)
    assert pdev.pci_read_config_word(msi + r.PCI_MSI_FLAGS) == flags
    # Multiple Message Capable is read-only; enable and Multiple Message Enable are not
    pdev.pci_write_config_word(msi + r.PCI_MSI_FLAGS, 0xFFFF)
    assert pdev.pci_read_config_word(msi + r.PCI_MSI_FLAGS) == flags | 0x71
    pdev.pci_write_config_dword(msi + r.PCI_MSI_ADDRESS_LO, 0xFEE0_0003)
    assert pdev.pci_read_config_dword(msi + r.PCI_MSI_ADDRESS_LO) == 0xFEE0_0000
    data = r.PCI_MSI_DATA_64 if spec.addr64 else r.PCI_MSI_DATA_32
    pdev.pci_write_config_word(msi + data, 0x4041)
    assert pdev.pci_read_config_word(msi + data) == 0x4041
    if spec.per_vector_mask:
        mask = r.PCI_MSI_MASK_64 if spec.addr64 else r.PCI_MSI_MASK_32
        pdev.pci_write_config_dword(msi + mask, 0xFFFF_FFFF)
        assert pdev.pci_read_config_dword(msi + mask) == (1 << spec.vectors) - 1
    # nothing past the capability is writable (it ends before the PCI Express one would)
    assert all(pdev.cfg.wmask(msi + i, 1) == 0 for i in range(size, 0x60 - msi))


def test_msi_with_pcie_and_msix_keeps_every_capability(make_bus: BusFactory) -> None:
    spec = DeviceSpec(
        bdf="0000:05:00.0",
        vendor=1,
        device=2,
        class_code=3,
        iommu_group=0,
        bars=(BarSpec(0, 0x1000),),
        msi=MsiSpec(vectors=16, per_vector_mask=True),
        msix=MsixSpec(vectors=4, bar=0),
    )
    pdev = make_bus(Topology(devices=(spec,))).get(spec.bdf)
    assert _caps(pdev) == [r.PCI_CAP_ID_PM, r.PCI_CAP_ID_MSI, r.PCI_CAP_ID_EXP, r.PCI_CAP_ID_MSIX]
    assert (pdev.msi_cap, pdev.pcie_cap, pdev.msix_cap) == (0x48, 0x60, 0xA0)


def test_without_pm_or_msi_there_is_no_capability_list(make_bus: BusFactory) -> None:
    """QEMU's ivshmem-plain: ``PCI_STATUS_CAP_LIST`` clear, the pointer 0."""
    pdev = make_bus(GUEST).get(IVSHMEM.bdf)
    assert not pdev.pci_read_config_word(r.PCI_STATUS) & r.PCI_STATUS_CAP_LIST
    assert pdev.pci_read_config_byte(r.PCI_CAPABILITY_LIST) == 0
    assert _caps(pdev) == [] and pdev.pm_cap == pdev.msi_cap == 0
    with_pm = make_bus(Topology(devices=(dataclasses.replace(IVSHMEM, pm=True),))).get(IVSHMEM.bdf)
    assert _caps(with_pm) == [r.PCI_CAP_ID_PM] and with_pm.pm_cap == 0x40


@pytest.mark.parametrize("pin", [0, 1, 2, 4])
def test_interrupt_pin(make_bus: BusFactory, pin: int) -> None:
    topo = with_device(default_topology(), VFIO_BDF, interrupt_pin=pin)
    pdev = make_bus(topo).get(VFIO_BDF)
    assert pdev.pci_read_config_byte(r.PCI_INTERRUPT_PIN) == pin
    pdev.pci_write_config_byte(r.PCI_INTERRUPT_PIN, 3)  # read-only
    assert pdev.pci_read_config_byte(r.PCI_INTERRUPT_PIN) == pin


def test_io_enable_bit(make_bus: BusFactory) -> None:
    bus = make_bus(GUEST)
    edu = bus.get(EDU.bdf)
    assert edu.pci_read_config_word(r.PCI_COMMAND) == r.PCI_COMMAND_IO | r.PCI_COMMAND_MEMORY
    edu.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_MEMORY)
    assert edu.pci_read_config_word(r.PCI_COMMAND) == r.PCI_COMMAND_MEMORY  # writable
    edu.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_IO)
    assert edu.pci_read_config_word(r.PCI_COMMAND) == r.PCI_COMMAND_IO
    off = make_bus(with_device(GUEST, EDU.bdf, io_enabled=False, memory_enabled=False))
    pdev = off.get(EDU.bdf)
    assert pdev.pci_read_config_word(r.PCI_COMMAND) == 0
    pdev.pci_write_config_word(r.PCI_COMMAND, 0xFFFF)
    assert not pdev.pci_read_config_word(r.PCI_COMMAND) & r.PCI_COMMAND_IO  # hardwired


def test_sub_page_bar(make_bus: BusFactory) -> None:
    ivshmem = make_bus(GUEST).get(IVSHMEM.bdf)
    bar0 = ivshmem.bars[0]
    assert bar0.size == 0x100 and bar0.bus_address % PAGE_SIZE == 0
    assert ivshmem.pci_resource_len(0) == 0x100
    # sizing through the write mask: ~(size - 1), as the golden's 0xffffff00
    ivshmem.pci_write_config_dword(r.PCI_BASE_ADDRESS_0, 0xFFFF_FFFF)
    assert ivshmem.pci_read_config_dword(r.PCI_BASE_ADDRESS_0) == 0xFFFF_FF00
    bar0.map.write(0xFC, b"last")
    assert bar0.map.read(0xFC, 4) == b"last"
    with pytest.raises(ValueError, match="outside"):
        bar0.map.read(0xFE, 4)
    assert ivshmem.pci_read_config_byte(r.PCI_INTERRUPT_PIN) == 0


def test_sub_page_bars_each_start_a_page() -> None:
    small = [BarSpec(i, 16 << i) for i in range(6)]
    dev = DeviceSpec("0000:01:00.0", 1, 2, 3, iommu_group=0, bars=tuple(small))
    addrs = layout_bars((dev,))
    starts = [addrs[dev.bdf, i] for i in range(6)]
    assert all(a % PAGE_SIZE == 0 for a in starts)
    assert len({a // PAGE_SIZE for a in starts}) == 6  # never two in one page


_CONVENTIONAL = DeviceSpec(
    bdf="0000:05:00.0",
    vendor=0x1234,
    device=0x5678,
    class_code=0x020000,
    iommu_group=0,
    pcie_type="conventional",
    io_enabled=True,
    bars=(BarSpec(0, 0x40, mem64=True), BarSpec(2, 0x1000)),
    msi=MsiSpec(vectors=4, per_vector_mask=True),
    msix=MsixSpec(vectors=4, bar=2),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-8, 0x110), st.sampled_from((1, 2, 4)), st.integers(0, 2**32 - 1)),
        max_size=40,
    )
)
def test_random_writes_stay_in_256_bytes(accesses: list[tuple[int, int, int]]) -> None:
    pdev = PciDev(_CONVENTIONAL)
    try:
        for offset, width, value in accesses:
            valid = 0 <= offset <= 256 - width and offset % width == 0
            if not valid:
                with pytest.raises(OSError) as info:
                    pdev._write_config(offset, width, value)
                assert info.value.errno == errno.EINVAL
                continue
            old, wmask = pdev.cfg.read(offset, width), pdev.cfg.wmask(offset, width)
            w1c = pdev.cfg.w1cmask(offset, width)
            pdev._write_config(offset, width, value)
            assert (pdev.cfg.read(offset, width) ^ old) & ~(wmask | w1c) == 0
    finally:
        pdev.close()
