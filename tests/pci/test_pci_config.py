"""Config space: header contents, write masks, BAR sizing, capability walks."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pci_testing import MLX5_BDF, NIC_BDF, VFIO_BDF, BusFactory, with_device

from mockkernel.pci import ConfigSpace, PciBus, PciDev
from mockkernel.pci import _regs as r
from mockkernel.topology import BarSpec, DeviceSpec, MsixSpec, TphSpec, default_topology


def test_header_carries_the_topology_ids(bus: PciBus) -> None:
    nic = bus.get(NIC_BDF)
    assert nic.pci_read_config_word(r.PCI_VENDOR_ID) == 0x8086
    assert nic.pci_read_config_word(r.PCI_DEVICE_ID) == 0x1593
    assert nic.pci_read_config_dword(r.PCI_CLASS_REVISION) == 0x020000_02
    assert nic.pci_read_config_byte(r.PCI_HEADER_TYPE) == r.PCI_HEADER_TYPE_NORMAL
    assert nic.pci_read_config_word(r.PCI_SUBSYSTEM_VENDOR_ID) == 0x8086
    assert nic.pci_read_config_word(r.PCI_SUBSYSTEM_ID) == 0x0005
    assert nic.pci_read_config_word(r.PCI_STATUS) & r.PCI_STATUS_CAP_LIST
    assert nic.pci_read_config_word(r.PCI_COMMAND) == r.PCI_COMMAND_MEMORY
    assert (nic.domain, nic.busnr, nic.devfn) == (0, 3, 0)


def test_read_only_registers_ignore_writes(bus: PciBus) -> None:
    pdev = bus.get(MLX5_BDF)
    before = bytes(pdev.pci_read_config_byte(i) for i in range(0x40))
    pdev.pci_write_config_dword(r.PCI_VENDOR_ID, 0xDEADBEEF)
    pdev.pci_write_config_dword(r.PCI_CLASS_REVISION, 0xFFFFFFFF)
    pdev.pci_write_config_word(r.PCI_SUBSYSTEM_ID, 0x1234)
    pdev.pci_write_config_byte(r.PCI_CAPABILITY_LIST, 0x80)
    pdev.pci_write_config_byte(r.PCI_INTERRUPT_PIN, 4)
    after = bytes(pdev.pci_read_config_byte(i) for i in range(0x40))
    assert after == before


def test_command_register_mask(bus: PciBus) -> None:
    pdev = bus.get(VFIO_BDF)
    pdev.pci_write_config_word(r.PCI_COMMAND, 0xFFFF)
    assert pdev.pci_read_config_word(r.PCI_COMMAND) == (
        r.PCI_COMMAND_MEMORY
        | r.PCI_COMMAND_MASTER
        | r.PCI_COMMAND_PARITY
        | r.PCI_COMMAND_SERR
        | r.PCI_COMMAND_INTX_DISABLE
    )
    assert not pdev.pci_read_config_word(r.PCI_COMMAND) & r.PCI_COMMAND_IO  # no I/O BARs


def test_status_error_bits_are_write_one_to_clear(bus: PciBus) -> None:
    pdev = bus.get(VFIO_BDF)
    errors = r.PCI_STATUS_REC_MASTER_ABORT | r.PCI_STATUS_DETECTED_PARITY
    status = pdev.pci_read_config_word(r.PCI_STATUS)
    pdev.cfg.poke(r.PCI_STATUS, 2, status | errors)  # the device saw two errors
    pdev.pci_write_config_word(r.PCI_STATUS, 0)
    assert pdev.pci_read_config_word(r.PCI_STATUS) == status | errors
    pdev.pci_write_config_word(r.PCI_STATUS, r.PCI_STATUS_REC_MASTER_ABORT | 0x10)
    assert pdev.pci_read_config_word(r.PCI_STATUS) == status | r.PCI_STATUS_DETECTED_PARITY


def _size_bar(pdev: PciDev, index: int) -> tuple[int, int]:
    """What a kernel's __pci_read_base does: save, write ~0, read, restore."""
    reg = r.PCI_BASE_ADDRESS_0 + 4 * index
    saved = pdev.pci_read_config_dword(reg)
    pdev.pci_write_config_dword(reg, 0xFFFFFFFF)
    sized = pdev.pci_read_config_dword(reg)
    pdev.pci_write_config_dword(reg, saved)
    assert pdev.pci_read_config_dword(reg) == saved
    return saved, sized


def test_bar_sizing_reads_back_the_size_mask(bus: PciBus) -> None:
    vfio = bus.get(VFIO_BDF)
    saved, sized = _size_bar(vfio, 0)  # 1 MiB, 64-bit, prefetchable
    flags = r.PCI_BASE_ADDRESS_MEM_TYPE_64 | r.PCI_BASE_ADDRESS_MEM_PREFETCH
    assert saved == (vfio.bars[0].bus_address & 0xFFFFFFFF) | flags
    assert sized == 0xFFF00000 | flags
    saved_hi, sized_hi = _size_bar(vfio, 1)
    assert saved_hi == vfio.bars[0].bus_address >> 32
    assert sized_hi == 0xFFFFFFFF
    saved, sized = _size_bar(vfio, 2)  # 64 KiB, 32-bit, not prefetchable
    assert saved == vfio.bars[2].bus_address == 0xE0000000
    assert sized == 0xFFFF0000
    for unused in (3, 4, 5):
        assert _size_bar(vfio, unused) == (0, 0)
    size = (~sized & 0xFFFFFFFF) + 1
    assert size == vfio.bars[2].size


def test_config_access_errors() -> None:
    cfg = ConfigSpace()
    for offset, width in [(1, 2), (2, 4), (4095, 2), (4096, 1), (-1, 1), (0, 3), (0, 8)]:
        with pytest.raises(OSError) as info:
            cfg.read(offset, width)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info:
            cfg.write(offset, width, 0)
        assert info.value.errno == errno.EINVAL
    assert cfg.read(4092, 4) == 0


def test_capability_walks(bus: PciBus) -> None:
    nic, vfio = bus.get(NIC_BDF), bus.get(VFIO_BDF)
    assert nic.pci_find_capability(r.PCI_CAP_ID_PM) == 0x40
    assert nic.pci_find_capability(r.PCI_CAP_ID_EXP) == nic.pcie_cap == 0x60
    assert nic.pci_find_capability(r.PCI_CAP_ID_MSIX) == nic.msix_cap == 0xA0
    assert nic.pci_find_capability(0x05) == 0  # no MSI
    assert vfio.pci_find_capability(r.PCI_CAP_ID_MSIX) == 0
    assert nic.pci_find_ext_capability(r.PCI_EXT_CAP_ID_DSN) == 0x100
    assert nic.pci_find_ext_capability(r.PCI_EXT_CAP_ID_TPH) == nic.tph_cap == 0x110
    assert vfio.pci_find_ext_capability(r.PCI_EXT_CAP_ID_TPH) == vfio.tph_cap == 0
    assert nic.cfg.find_ext_capability(r.PCI_EXT_CAP_ID_TPH, start=0x110) == 0
    assert nic.cfg.find_ext_capability(r.PCI_EXT_CAP_ID_TPH, start=0x100) == 0x110
    assert nic.cfg.find_ext_capability(r.PCI_EXT_CAP_ID_TPH, start=0x101) == 0
    assert vfio.pci_pcie_type() == r.PCI_EXP_TYPE_ENDPOINT


def test_capability_walks_survive_loops() -> None:
    cfg = ConfigSpace()
    assert cfg.find_capability(r.PCI_CAP_ID_EXP) == 0  # no CAP_LIST bit
    assert cfg.find_ext_capability(r.PCI_EXT_CAP_ID_TPH) == 0  # empty header
    cfg.add_capability(r.PCI_CAP_ID_PM, 0x40)
    cfg.poke(0x41, 1, 0x40)  # next points to itself
    assert cfg.find_capability(r.PCI_CAP_ID_EXP) == 0
    cfg.add_ext_capability(r.PCI_EXT_CAP_ID_DSN, 1, 0x100)
    cfg.poke(0x100, 4, r.PCI_EXT_CAP_ID_DSN | 1 << 16 | 0x100 << 20)  # loops too
    assert cfg.find_ext_capability(r.PCI_EXT_CAP_ID_TPH) == 0
    with pytest.raises(ValueError):
        cfg.add_capability(r.PCI_CAP_ID_EXP, 0x20)  # inside the header
    with pytest.raises(ValueError):
        ConfigSpace().add_ext_capability(r.PCI_EXT_CAP_ID_TPH, 1, 0x110)  # first not at 0x100


def test_devcap2_and_tph_capability_registers(bus: PciBus) -> None:
    vfio, mlx5, nic = bus.get(VFIO_BDF), bus.get(MLX5_BDF), bus.get(NIC_BDF)
    assert vfio.pcie_capability_read_dword(r.PCI_EXP_DEVCAP2) & 0x3000 == 0x3000
    assert mlx5.pcie_capability_read_dword(r.PCI_EXP_DEVCAP2) & 0x3000 == 0
    cap = mlx5.pci_read_config_dword(mlx5.tph_cap + r.PCI_TPH_CAP)
    assert cap == (
        r.PCI_TPH_CAP_ST_NS | r.PCI_TPH_CAP_ST_DS | r.PCI_TPH_CAP_EXT_TPH | r.PCI_TPH_LOC_CAP
    ) | (63 << 16)
    cap = nic.pci_read_config_dword(nic.tph_cap + r.PCI_TPH_CAP)
    assert cap == (
        r.PCI_TPH_CAP_ST_NS | r.PCI_TPH_CAP_ST_IV | r.PCI_TPH_CAP_ST_DS | r.PCI_TPH_LOC_MSIX
    ) | (63 << 16)
    msix = nic.msix_cap
    assert nic.pci_read_config_word(msix + r.PCI_MSIX_FLAGS) == 63
    assert nic.pci_read_config_dword(msix + r.PCI_MSIX_TABLE) == 3
    assert nic.pci_read_config_dword(msix + r.PCI_MSIX_PBA) == 0x8000 | 3
    # Only the mode and enable fields of TPH_CTRL are writable.
    mlx5.pci_write_config_dword(mlx5.tph_cap + r.PCI_TPH_CTRL, 0xFFFFFFFF)
    assert mlx5.pci_read_config_dword(mlx5.tph_cap + r.PCI_TPH_CTRL) == 0x307
    mlx5.pci_write_config_dword(mlx5.tph_cap + r.PCI_TPH_CAP, 0)
    assert mlx5.pci_read_config_dword(mlx5.tph_cap + r.PCI_TPH_CAP) & 0x7FF0000 == 63 << 16


def test_rc_integrated_endpoint(make_bus: BusFactory) -> None:
    topo = with_device(default_topology(), MLX5_BDF, root_port=None, pcie_type="rc-integrated")
    pdev = make_bus(topo).get(MLX5_BDF)
    assert pdev.pci_pcie_type() == r.PCI_EXP_TYPE_RC_END
    assert pdev.root_port is None


# -- property: random config writes only touch writable bits -----------------------------

_SMALL = DeviceSpec(
    bdf="0000:05:00.0",
    vendor=0x1234,
    device=0x5678,
    class_code=0x020000,
    iommu_group=0,
    bars=(BarSpec(0, 0x4000, mem64=True), BarSpec(2, 0x1000)),
    msix=MsixSpec(vectors=4, bar=2),
    tph=TphSpec(modes=("ns", "ds"), ext=True, st_table="cap", st_table_size=8),
)

_accesses = st.lists(
    st.tuples(
        st.integers(-8, ConfigSpace.SIZE + 8),
        st.sampled_from((1, 2, 4, 3, 8)),
        st.integers(0, 0xFFFFFFFF),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(_accesses)
def test_random_writes_never_touch_read_only_bits(accesses: list[tuple[int, int, int]]) -> None:
    pdev = PciDev(_SMALL)
    try:
        cfg = pdev.cfg
        for offset, width, value in accesses:
            valid = width in (1, 2, 4) and 0 <= offset <= ConfigSpace.SIZE - width
            valid = valid and offset % width == 0
            if not valid:
                with pytest.raises(OSError) as info:
                    pdev._write_config(offset, width, value)
                assert info.value.errno == errno.EINVAL
                continue
            old = cfg.read(offset, width)
            wmask, w1c = cfg.wmask(offset, width), cfg.w1cmask(offset, width)
            {1: pdev.pci_write_config_byte, 2: pdev.pci_write_config_word}.get(
                width, pdev.pci_write_config_dword
            )(offset, value)
            new = cfg.read(offset, width)
            value &= (1 << 8 * width) - 1
            assert (new ^ old) & ~(wmask | w1c) == 0  # read-only bits kept
            assert new & wmask == value & wmask  # writable bits took the value
            assert new & w1c & ~wmask == old & w1c & ~value & ~wmask  # W1C only clear
            assert pdev.pci_read_config_word(r.PCI_VENDOR_ID) == 0x1234
    finally:
        pdev.close()


def test_devices_built_from_one_spec_do_not_share_config_space(make_bus: BusFactory) -> None:
    """Power-on images are memoised per spec: each device must still get its own copy."""
    a, b = make_bus().get(VFIO_BDF), make_bus().get(VFIO_BDF)
    assert a.cfg is not b.cfg
    before = b.pci_read_config_word(r.PCI_COMMAND)
    a.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_MASTER | r.PCI_COMMAND_MEMORY)
    a.cfg.poke(r.PCI_STATUS, 2, r.PCI_STATUS_DETECTED_PARITY)
    assert b.pci_read_config_word(r.PCI_COMMAND) == before
    assert not b.pci_read_config_word(r.PCI_STATUS) & r.PCI_STATUS_DETECTED_PARITY
    c = make_bus().get(VFIO_BDF)  # a third, after the writes: the power-on state
    assert c.pci_read_config_word(r.PCI_COMMAND) == before
    assert bytes(c.cfg.image()[0]) == bytes(b.cfg.image()[0])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-8, ConfigSpace.SIZE + 8),
    st.sampled_from((1, 2, 4, 0, 3, 8, -1)),
    st.integers(1, 255),
)
def test_reads_are_the_bytes_little_endian_or_einval(offset: int, width: int, mul: int) -> None:
    """``read`` checks inline (its good case is every DMA's register read): the value is
    the ``width`` bytes at ``offset``, little-endian; any bad width, offset or alignment
    is ``EINVAL``, as ``_check`` says."""
    image = bytes((i * mul + i // 256) & 0xFF for i in range(ConfigSpace.SIZE))
    cfg = ConfigSpace()
    cfg.load_image((image, bytes(ConfigSpace.SIZE), bytes(ConfigSpace.SIZE), 0, 0))
    valid = width in (1, 2, 4) and 0 <= offset <= ConfigSpace.SIZE - width
    if not (valid and offset % width == 0):
        with pytest.raises(OSError) as info:
            cfg.read(offset, width)
        assert info.value.errno == errno.EINVAL
        return
    assert cfg.read(offset, width) == int.from_bytes(image[offset : offset + width], "little")
