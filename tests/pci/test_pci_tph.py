"""The TPH library: drivers/pci/tph.c semantics and errnos (kernel.md section 6)."""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os
from collections.abc import Callable

import pytest
from pci_testing import MLX5_BDF, NIC_BDF, VFIO_BDF, BusFactory, with_device, with_root_port

from mockkernel.pci import (
    PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH,
    PCI_EXP_DEVCAP2_TPH_COMP_NONE,
    PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY,
    PCI_TPH_REQ_DISABLE,
    PCI_TPH_REQ_EXT_TPH,
    PCI_TPH_REQ_TPH_ONLY,
    PCI_TPH_ST_DS_MODE,
    PCI_TPH_ST_IV_MODE,
    PCI_TPH_ST_NS_MODE,
    TPH_MEM_TYPE_PM,
    TPH_MEM_TYPE_VM,
    PciBus,
    PciDev,
    pci_disable_msix,
    pci_enable_msix_range,
    pci_msix_vec_count,
    pcie_disable_tph,
    pcie_enable_tph,
    pcie_tph_completer_type,
    pcie_tph_enabled_req_type,
    pcie_tph_get_cpu_st,
    pcie_tph_get_st_table_loc,
    pcie_tph_get_st_table_size,
    pcie_tph_set_st_entry,
)
from mockkernel.pci import _regs as r
from mockkernel.topology import CpuSteeringTag, TphSpec, default_topology
from mockkernel.trace import Tracer


def raises(code: int, fn: Callable[..., object], *args: object) -> OSError:
    with pytest.raises(OSError) as info:
        fn(*args)
    assert info.value.errno == code
    assert info.value.strerror == os.strerror(code)
    return info.value


def ctrl(pdev: PciDev) -> int:
    return pdev.pci_read_config_dword(pdev.tph_cap + r.PCI_TPH_CTRL)


def st_entry(pdev: PciDev, index: int) -> int:
    return pdev.pci_read_config_word(pdev.tph_cap + r.PCI_TPH_BASE_SIZEOF + 2 * index)


def msix_ctrl(pdev: PciDev, index: int) -> int:
    return pdev.bars[3].map.read_u32(index * 16 + 12)


# -- pcie_enable_tph / pcie_disable_tph -------------------------------------------------


def test_enable_negotiates_ext_tph_and_writes_ctrl(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    assert pcie_tph_enabled_req_type(mlx5) == PCI_TPH_REQ_DISABLE
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    assert (mlx5.tph_enabled, mlx5.tph_mode) == (True, PCI_TPH_ST_DS_MODE)
    assert pcie_tph_enabled_req_type(mlx5) == PCI_TPH_REQ_EXT_TPH
    assert ctrl(mlx5) == PCI_TPH_ST_DS_MODE | PCI_TPH_REQ_EXT_TPH << 8


def test_enable_without_ext_tph_is_tph_only(bus: PciBus) -> None:
    nic = bus.get(NIC_BDF)
    pcie_enable_tph(nic, PCI_TPH_ST_IV_MODE)
    assert pcie_tph_enabled_req_type(nic) == PCI_TPH_REQ_TPH_ONLY
    assert ctrl(nic) == PCI_TPH_ST_IV_MODE | PCI_TPH_REQ_TPH_ONLY << 8


def test_enable_twice_is_ebusy(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    raises(errno.EBUSY, pcie_enable_tph, mlx5, PCI_TPH_ST_NS_MODE)
    assert mlx5.tph_mode == PCI_TPH_ST_DS_MODE


def test_enable_without_capability_is_einval(bus: PciBus) -> None:
    vfio = bus.get(VFIO_BDF)
    assert vfio.tph_cap == 0
    raises(errno.EINVAL, pcie_enable_tph, vfio, PCI_TPH_ST_NS_MODE)


def test_enable_unsupported_mode_is_einval(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)  # NS and DS only
    raises(errno.EINVAL, pcie_enable_tph, mlx5, PCI_TPH_ST_IV_MODE)
    raises(errno.EINVAL, pcie_enable_tph, mlx5, 5)
    assert not mlx5.tph_enabled
    pcie_enable_tph(mlx5, 8 | PCI_TPH_ST_DS_MODE)  # the kernel masks with MODE_SEL
    assert mlx5.tph_mode == PCI_TPH_ST_DS_MODE


def test_notph_is_einval(bus: PciBus) -> None:
    bus.tph_disabled = True
    raises(errno.EINVAL, pcie_enable_tph, bus.get(MLX5_BDF), PCI_TPH_ST_DS_MODE)


def test_req_type_is_min_with_root_port_completer(make_bus: BusFactory) -> None:
    bus = make_bus(with_root_port(default_topology(), tph_completer="tph-only"))
    mlx5 = bus.get(MLX5_BDF)
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    assert pcie_tph_enabled_req_type(mlx5) == PCI_TPH_REQ_TPH_ONLY


def test_root_port_without_completer_is_einval(make_bus: BusFactory) -> None:
    bus = make_bus(with_root_port(default_topology(), tph_completer="none"))
    mlx5 = bus.get(MLX5_BDF)
    raises(errno.EINVAL, pcie_enable_tph, mlx5, PCI_TPH_ST_DS_MODE)
    assert not mlx5.tph_enabled and ctrl(mlx5) == 0


def test_no_root_port_is_einval_but_rc_integrated_skips_the_check(make_bus: BusFactory) -> None:
    topo = with_device(default_topology(), MLX5_BDF, root_port=None)
    raises(errno.EINVAL, pcie_enable_tph, make_bus(topo).get(MLX5_BDF), PCI_TPH_ST_DS_MODE)
    topo = with_device(topo, MLX5_BDF, pcie_type="rc-integrated")
    rciep = make_bus(topo).get(MLX5_BDF)
    pcie_enable_tph(rciep, PCI_TPH_ST_DS_MODE)
    assert pcie_tph_enabled_req_type(rciep) == PCI_TPH_REQ_EXT_TPH


def test_disable_clears_ctrl_and_state(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    pcie_disable_tph(mlx5)  # not enabled: nothing happens
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    pcie_disable_tph(mlx5)
    assert (mlx5.tph_enabled, mlx5.tph_mode, mlx5.tph_req_type, ctrl(mlx5)) == (False, 0, 0, 0)
    pcie_disable_tph(bus.get(VFIO_BDF))  # no capability: nothing happens
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)  # can enable again


# -- pcie_tph_set_st_entry --------------------------------------------------------------


def test_set_st_entry_in_capability(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    assert (pcie_tph_get_st_table_loc(mlx5), pcie_tph_get_st_table_size(mlx5)) == (1, 64)
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    pcie_tph_set_st_entry(mlx5, 1, 0x0112)
    pcie_tph_set_st_entry(mlx5, 63, 0xABCD)
    assert (st_entry(mlx5, 0), st_entry(mlx5, 1), st_entry(mlx5, 63)) == (0, 0x0112, 0xABCD)
    assert ctrl(mlx5) == PCI_TPH_ST_DS_MODE | PCI_TPH_REQ_EXT_TPH << 8  # REQ_EN restored


def test_set_st_entry_needs_capability_and_enable(bus: PciBus) -> None:
    raises(errno.EINVAL, pcie_tph_set_st_entry, bus.get(VFIO_BDF), 0, 1)
    raises(errno.EINVAL, pcie_tph_set_st_entry, bus.get(MLX5_BDF), 0, 1)


def test_set_st_entry_out_of_range_is_enxio_and_disables_tph(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    for index in (64, 1 << 20, -1):
        pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
        raises(errno.ENXIO, pcie_tph_set_st_entry, mlx5, index, 0x10)
        assert not mlx5.tph_enabled
        assert pcie_tph_enabled_req_type(mlx5) == PCI_TPH_REQ_DISABLE
        assert ctrl(mlx5) == 0


def test_set_st_entry_in_no_st_mode_is_a_no_op(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    pcie_enable_tph(mlx5, PCI_TPH_ST_NS_MODE)
    pcie_tph_set_st_entry(mlx5, 9999, 0x10)  # not even range-checked
    assert mlx5.tph_enabled and st_entry(mlx5, 0) == 0


def test_set_st_entry_in_msix_table(bus: PciBus) -> None:
    nic = bus.get(NIC_BDF)
    assert (pcie_tph_get_st_table_loc(nic), pcie_tph_get_st_table_size(nic)) == (2, 0)
    assert pci_msix_vec_count(nic) == 64
    pcie_enable_tph(nic, PCI_TPH_ST_IV_MODE)
    raises(errno.ENXIO, pcie_tph_set_st_entry, nic, 0, 0x12)  # MSI-X not enabled
    assert not nic.tph_enabled

    assert pci_enable_msix_range(nic, 1, 8) == 8
    assert nic.pci_read_config_word(nic.msix_cap + r.PCI_MSIX_FLAGS) & r.PCI_MSIX_FLAGS_ENABLE
    pcie_enable_tph(nic, PCI_TPH_ST_IV_MODE)
    pcie_tph_set_st_entry(nic, 3, 0x12)
    assert msix_ctrl(nic, 3) == 0x12 << 16 | r.PCI_MSIX_ENTRY_CTRL_MASKBIT  # mask bit kept
    assert msix_ctrl(nic, 2) == r.PCI_MSIX_ENTRY_CTRL_MASKBIT
    assert ctrl(nic) == PCI_TPH_ST_IV_MODE | PCI_TPH_REQ_TPH_ONLY << 8
    bar = nic.bars[3]  # userspace mapping the BAR sees the table entry
    other = mmap.mmap(bar.memfd, bar.size)
    try:
        assert other[3 * 16 + 14 : 3 * 16 + 16] == b"\x12\x00"
    finally:
        other.close()

    raises(errno.ENXIO, pcie_tph_set_st_entry, nic, 8, 0x12)  # no vector 8 allocated
    assert not nic.tph_enabled
    pci_disable_msix(nic)
    assert not nic.msix_enabled
    pci_disable_msix(nic)


def test_set_st_entry_without_table_is_einval_and_disables(make_bus: BusFactory) -> None:
    tph = TphSpec(modes=("ns", "ds"), ext=True)  # ST table location: none
    mlx5 = make_bus(with_device(default_topology(), MLX5_BDF, tph=tph)).get(MLX5_BDF)
    assert (pcie_tph_get_st_table_loc(mlx5), pcie_tph_get_st_table_size(mlx5)) == (0, 0)
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    raises(errno.EINVAL, pcie_tph_set_st_entry, mlx5, 0, 1)
    assert not mlx5.tph_enabled


def test_msix_enable_errors(bus: PciBus) -> None:
    nic = bus.get(NIC_BDF)
    raises(errno.ERANGE, pci_enable_msix_range, nic, 4, 2)
    raises(errno.ENOSPC, pci_enable_msix_range, nic, 65, 100)
    assert pci_enable_msix_range(nic, 1, 1000) == 64
    raises(errno.EINVAL, pci_enable_msix_range, nic, 1, 1)
    raises(errno.EINVAL, pci_msix_vec_count, bus.get(VFIO_BDF))


# -- pcie_tph_get_cpu_st ----------------------------------------------------------------


def test_get_cpu_st_follows_the_enabled_request_type(bus: PciBus) -> None:
    mlx5, nic = bus.get(MLX5_BDF), bus.get(NIC_BDF)
    assert pcie_tph_get_cpu_st(mlx5, TPH_MEM_TYPE_VM, 2) == 0  # TPH not enabled: tag 0
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    pcie_enable_tph(nic, PCI_TPH_ST_IV_MODE)
    assert pcie_tph_get_cpu_st(mlx5, TPH_MEM_TYPE_VM, 2) == 0x0112
    assert pcie_tph_get_cpu_st(mlx5, TPH_MEM_TYPE_PM, 3) == 0x0223
    assert pcie_tph_get_cpu_st(nic, TPH_MEM_TYPE_VM, 1) == 0x11
    assert pcie_tph_get_cpu_st(nic, TPH_MEM_TYPE_PM, 0) == 0x20
    assert pcie_tph_get_cpu_st(nic, 7, 0) == 0  # unknown memory type: tag 0


def test_get_cpu_st_without_root_port_is_enodev(make_bus: BusFactory) -> None:
    topo = with_device(default_topology(), MLX5_BDF, root_port=None)
    raises(errno.ENODEV, pcie_tph_get_cpu_st, make_bus(topo).get(MLX5_BDF), TPH_MEM_TYPE_VM, 0)
    topo = with_device(topo, MLX5_BDF, pcie_type="rc-integrated")
    raises(errno.ENODEV, pcie_tph_get_cpu_st, make_bus(topo).get(MLX5_BDF), TPH_MEM_TYPE_VM, 0)


def test_get_cpu_st_dsm_failure_is_einval(make_bus: BusFactory, bus: PciBus) -> None:
    raises(errno.EINVAL, pcie_tph_get_cpu_st, bus.get(MLX5_BDF), TPH_MEM_TYPE_VM, 4)
    raises(errno.EINVAL, pcie_tph_get_cpu_st, bus.get(MLX5_BDF), TPH_MEM_TYPE_VM, -1)
    no_dsm = make_bus(with_root_port(default_topology(), cpu_st=()))
    raises(errno.EINVAL, pcie_tph_get_cpu_st, no_dsm.get(MLX5_BDF), TPH_MEM_TYPE_VM, 0)


def test_get_cpu_st_invalid_entry_is_tag_zero(make_bus: BusFactory) -> None:
    cpu_st = (CpuSteeringTag(0, vm_st=0x10, pm_xst=0x0220), CpuSteeringTag(1))
    bus = make_bus(with_root_port(default_topology(), cpu_st=cpu_st))
    mlx5, nic = bus.get(MLX5_BDF), bus.get(NIC_BDF)
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    pcie_enable_tph(nic, PCI_TPH_ST_DS_MODE)
    assert pcie_tph_get_cpu_st(mlx5, TPH_MEM_TYPE_VM, 0) == 0  # vm_xst invalid
    assert pcie_tph_get_cpu_st(mlx5, TPH_MEM_TYPE_PM, 0) == 0x0220
    assert pcie_tph_get_cpu_st(nic, TPH_MEM_TYPE_VM, 0) == 0x10
    assert pcie_tph_get_cpu_st(nic, TPH_MEM_TYPE_PM, 0) == 0  # pm_st invalid
    assert pcie_tph_get_cpu_st(nic, TPH_MEM_TYPE_VM, 1) == 0
    rp = bus.root_ports[0]
    assert rp.acpi_tph_dsm(0) == 1 | 0x10 << 8 | 1 << 33 | 0x0220 << 48
    assert rp.acpi_tph_dsm(1) == 0
    assert rp.acpi_tph_dsm(2) is None


# -- completer type and enabled request type ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (0, PCI_EXP_DEVCAP2_TPH_COMP_NONE),
        (1, PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY),
        (2, PCI_EXP_DEVCAP2_TPH_COMP_NONE),  # reserved
        (3, PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH),
    ],
)
def test_completer_type_decodes_devcap2(bus: PciBus, field: int, expected: int) -> None:
    vfio = bus.get(VFIO_BDF)
    devcap2 = vfio.pcie_cap + r.PCI_EXP_DEVCAP2
    other_bits = 0x0000_0810  # completion-timeout disable, LTR
    vfio.cfg.poke(devcap2, 4, other_bits | field << 12)  # what the hardware reports
    assert pcie_tph_completer_type(vfio) == expected


def test_completer_type_from_topology(make_bus: BusFactory, bus: PciBus) -> None:
    assert pcie_tph_completer_type(bus.get(VFIO_BDF)) == PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH
    assert pcie_tph_completer_type(bus.get(MLX5_BDF)) == PCI_EXP_DEVCAP2_TPH_COMP_NONE
    topo = with_device(default_topology(), VFIO_BDF, tph_completer="tph-only")
    vfio = make_bus(topo).get(VFIO_BDF)
    assert pcie_tph_completer_type(vfio) == PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY
    vfio.pcie_cap = 0  # no PCI Express capability: the read fails, NONE
    assert pcie_tph_completer_type(vfio) == PCI_EXP_DEVCAP2_TPH_COMP_NONE


# -- tracing ------------------------------------------------------------------------------


def test_tph_state_changes_are_traced(make_bus: BusFactory) -> None:
    tracer = Tracer()
    mlx5 = make_bus(tracer=tracer).get(MLX5_BDF)
    with tracer.capture() as events:
        pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
        pcie_tph_set_st_entry(mlx5, 5, 0x0111)
        with pytest.raises(OSError):
            pcie_tph_set_st_entry(mlx5, 64, 0x0111)
        pcie_disable_tph(mlx5)  # already disabled by the error: no event
    assert [{k: v for k, v in e.items() if k != "seq"} for e in events] == [
        {"event": "pci.tph_enable", "bdf": MLX5_BDF, "mode": 2, "req_type": 3},
        {"event": "pci.tph_set_st", "bdf": MLX5_BDF, "index": 5, "tag": 0x0111, "table": "cap"},
        {"event": "pci.tph_disable", "bdf": MLX5_BDF},
    ]


def test_tracer_off_emits_nothing(make_bus: BusFactory) -> None:
    class Exploding:
        enabled = False

        def emit(self, event: str, **fields: object) -> None:
            raise AssertionError(event)

    mlx5 = make_bus(tracer=Exploding()).get(MLX5_BDF)
    pcie_enable_tph(mlx5, PCI_TPH_ST_DS_MODE)
    pcie_tph_set_st_entry(mlx5, 1, 1)
    pcie_disable_tph(mlx5)
    mlx5.pci_write_config_word(r.PCI_COMMAND, 0)


def test_spec_is_kept_on_the_device(bus: PciBus) -> None:
    mlx5 = bus.get(MLX5_BDF)
    assert mlx5.spec == default_topology().device(MLX5_BDF)
    assert dataclasses.replace(mlx5.spec) == mlx5.spec
