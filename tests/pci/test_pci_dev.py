"""PciBus/PciDev/PciBar: BAR addresses and memory, PCI_COMMAND listeners, no fd leaks."""

from __future__ import annotations

import dataclasses
import itertools
import mmap
import os

import pytest
from pci_testing import MLX5_BDF, NIC_BDF, VFIO_BDF, BusFactory, open_fds, with_device

from mockkernel.pci import PciBus, PciDev
from mockkernel.pci import _regs as r
from mockkernel.topology import default_topology
from mockkernel.trace import Tracer


def test_bus_lookup_and_iommu_groups(bus: PciBus) -> None:
    assert [p.bdf for p in bus] == [VFIO_BDF, MLX5_BDF, NIC_BDF]
    assert len(bus) == 3 and VFIO_BDF in bus and "0000:09:00.0" not in bus
    assert bus.get(VFIO_BDF).driver_name == "vfio-pci"
    with pytest.raises(KeyError):
        bus.get("0000:09:00.0")
    groups = bus.iommu_groups()
    assert {g: [p.bdf for p in devs] for g, devs in groups.items()} == {
        6: [VFIO_BDF],
        7: [MLX5_BDF],
        8: [NIC_BDF],
    }
    rp = bus.get_root_port("0000:00:01.0")
    assert all(p.root_port is rp and p.bus is bus for p in bus)


def test_bar_addresses_are_aligned_disjoint_and_stable(make_bus: BusFactory) -> None:
    bus1, bus2 = make_bus(), make_bus()
    bars = [bar for pdev in bus1 for bar in pdev.bars.values()]
    for bar in bars:
        assert bar.bus_address % bar.size == 0
        assert bar.end == bar.bus_address + bar.size - 1
        assert bar.mem64 or bar.end < 1 << 32
    spans = sorted((bar.bus_address, bar.end) for bar in bars)
    assert all(a_end < b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    again = [bar.bus_address for pdev in bus2 for bar in pdev.bars.values()]
    assert again == [bar.bus_address for bar in bars]
    vfio = bus1.get(VFIO_BDF)
    assert vfio.pci_resource_start(0) == vfio.bars[0].bus_address
    assert vfio.pci_resource_len(0) == 0x100000
    assert vfio.bars[0].p2pdma and not vfio.bars[2].p2pdma
    assert vfio.bars[0].flags == r.PCI_BASE_ADDRESS_MEM_TYPE_64 | r.PCI_BASE_ADDRESS_MEM_PREFETCH


def test_bar_memory_is_a_shared_memfd(bus: PciBus) -> None:
    bar = bus.get(VFIO_BDF).bars[0]
    link = os.readlink(f"/proc/self/fd/{bar.memfd}")
    assert link.startswith(f"/memfd:mockkernel:{VFIO_BDF}:bar0")
    assert os.fstat(bar.memfd).st_size == bar.size
    assert not os.get_inheritable(bar.memfd)
    other = mmap.mmap(bar.memfd, bar.size)
    try:
        bar.map[0x1000:0x1004] = b"\x01\x02\x03\x04"  # the kernel (a TLP) writes
        assert other[0x1000:0x1004] == b"\x01\x02\x03\x04"  # userspace sees it
        other[bar.size - 2 :] = b"hi"  # userspace writes
        assert bar.map[bar.size - 2 :] == b"hi"
    finally:
        other.close()


def test_msix_table_starts_masked(bus: PciBus) -> None:
    nic = bus.get(NIC_BDF)
    table = nic.bars[3].map
    for i in range(64):
        assert int.from_bytes(table[i * 16 + 12 : i * 16 + 16], "little") == 1


def test_bar_memory_is_made_on_first_use_with_its_power_on_contents() -> None:
    before = open_fds()
    bus = PciBus.from_topology(default_topology())
    try:
        nic_table, untouched = bus.get(NIC_BDF).bars[3], bus.get(VFIO_BDF).bars[0]
        assert open_fds() == before and not untouched.closed
        nic_table.power_on_write(0, b"\xaa")  # not made yet: kept until it is
        assert nic_table.map[0:1] == b"\xaa"  # made now, MSI-X entry 0 and this byte
        assert int.from_bytes(nic_table.map[12:16], "little") == 1
        nic_table.power_on_write(1, b"\xbb")  # made: written at once
        assert nic_table.map[0:2] == b"\xaa\xbb" and len(open_fds() - before) == 1
    finally:
        bus.close()
    assert open_fds() == before
    assert untouched.closed and untouched.memfd == -1  # closed before use: never made
    with pytest.raises(ValueError, match="after close"):
        untouched.map.read(0, 1)


def test_close_releases_every_fd_and_is_idempotent() -> None:
    before = open_fds()
    bus = PciBus.from_topology(default_topology())
    assert open_fds() == before  # a BAR's memory is made on first use
    bars = [bar for pdev in bus for bar in pdev.bars.values()]
    assert len(bars) == 5 and all(bar.memfd >= 0 for bar in bars)
    new = open_fds() - before
    assert len(new) == 5  # five BARs, one memfd each (the kernel mapping takes no fd)
    assert min(int(fd) for fd in new) > 100  # kept out of the low numbers a program would be given
    bar = bus.get(VFIO_BDF).bars[0]
    bus.close()
    bus.close()
    assert open_fds() == before
    assert bar.closed and bar.memfd == -1 and all(p.closed for p in bus)
    bar.close()
    bus.get(MLX5_BDF).close()
    with PciBus.from_topology(default_topology()):
        pass
    assert open_fds() == before


def test_failed_construction_leaks_nothing() -> None:
    before = open_fds()
    spec = default_topology().device(VFIO_BDF)
    with pytest.raises(KeyError):
        PciDev(spec, bar_addresses={0: 0x3800_0000_0000})  # no address for BAR2
    assert open_fds() == before
    pdev = PciDev(spec)  # standalone: laid out on its own
    assert pdev.bars[2].bus_address == 0xE000_0000
    pdev.close()
    assert open_fds() == before


def test_root_port_must_match_the_spec(bus: PciBus) -> None:
    spec = dataclasses.replace(default_topology().device(VFIO_BDF), root_port="0000:00:02.0")
    with pytest.raises(ValueError, match="sits behind"):
        PciDev(spec, root_port=bus.root_ports[0])


# -- PCI_COMMAND ------------------------------------------------------------------------


def test_memory_enabled_follows_topology_and_command(make_bus: BusFactory) -> None:
    bus = make_bus(with_device(default_topology(), VFIO_BDF, memory_enabled=False))
    vfio = bus.get(VFIO_BDF)
    assert not vfio.memory_enabled
    assert bus.get(MLX5_BDF).memory_enabled
    vfio.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_MEMORY)
    assert vfio.memory_enabled


def test_command_listeners_see_changes_only(bus: PciBus) -> None:
    vfio = bus.get(VFIO_BDF)
    calls: list[tuple[str, int, int, bool]] = []

    def listener(pdev: PciDev, old: int, new: int) -> None:
        calls.append((pdev.bdf, old, new, pdev.memory_enabled))

    vfio.add_command_listener(listener)
    mem, master = r.PCI_COMMAND_MEMORY, r.PCI_COMMAND_MASTER
    vfio.pci_write_config_word(r.PCI_COMMAND, mem)  # no change
    vfio.pci_write_config_word(r.PCI_COMMAND, 0)
    vfio.pci_write_config_byte(r.PCI_COMMAND, mem | master)
    vfio.pci_write_config_dword(r.PCI_COMMAND, mem | master)  # covers STATUS too; no change
    vfio.pci_write_config_byte(r.PCI_COMMAND + 1, 0x04)  # INTX_DISABLE in the high byte
    vfio.pci_write_config_word(r.PCI_CACHE_LINE_SIZE, 0x10)  # elsewhere
    vfio.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_IO | mem | master | 0x400)  # IO is RO
    assert calls == [
        (VFIO_BDF, mem, 0, False),
        (VFIO_BDF, 0, mem | master, True),
        (VFIO_BDF, mem | master, mem | master | 0x400, True),
    ]
    vfio.remove_command_listener(listener)
    vfio.pci_write_config_word(r.PCI_COMMAND, 0)
    assert len(calls) == 3


def test_command_change_is_traced(make_bus: BusFactory) -> None:
    tracer = Tracer()
    vfio = make_bus(tracer=tracer).get(VFIO_BDF)
    vfio.pci_write_config_word(r.PCI_COMMAND, r.PCI_COMMAND_MEMORY)  # no change: no event
    with tracer.capture() as events:
        vfio.pci_write_config_word(r.PCI_COMMAND, 0)
        vfio.pci_write_config_word(r.PCI_CACHE_LINE_SIZE, 0x10)
    assert [{k: v for k, v in e.items() if k != "seq"} for e in events] == [
        {"event": "pci.config_write", "bdf": VFIO_BDF, "where": 4, "old": 2, "new": 0}
    ]
