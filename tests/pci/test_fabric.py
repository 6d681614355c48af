"""The PCIe fabric: TLP splitting, address decoding, TPH fields, unsupported requests."""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import pytest

import mockkernel
from mockkernel.kernel import Kernel
from mockkernel.mm import KernelMap
from mockkernel.pci.fabric import Fabric
from mockkernel.pci.tph import pcie_tph_completer_type

VFIO = "0000:01:00.0"  # extended-TPH completer, BAR0 1 MiB
MLX = "0000:02:00.0"
NIC = "0000:03:00.0"  # no TPH completer


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = mockkernel.boot()
    yield k
    k.shutdown()


def test_write_lands_in_bar_and_is_seen_through_a_user_mapping(kernel: Kernel) -> None:
    assert kernel.pci is not None
    target = kernel.pci.get(VFIO).bars[0]
    user = mmap.mmap(target.memfd, target.size)
    try:
        res = kernel.fabric.memory_write(kernel.pci.get(MLX), target.bus_address + 0x10, b"hi")
        assert res.ok and res.delivered == 2
        assert user[0x10:0x12] == b"hi"
    finally:
        user.close()


def test_the_bar_decodes_to_its_last_byte_and_no_further(kernel: Kernel) -> None:
    """``pci_resource_end`` is the BAR's last address: a write there lands, one past it
    is an unsupported request (nothing else decodes there)."""
    assert kernel.pci is not None
    bar = kernel.pci.get(VFIO).bars[0]
    mlx = kernel.pci.get(MLX)
    res = kernel.fabric.memory_write(mlx, bar.end, b"z")
    assert res.ok and res.delivered == 1
    assert bar.map.read(bar.size - 1, 1) == b"z"
    res = kernel.fabric.memory_write(mlx, bar.end - 1, b"yz")  # the run ends at the end
    assert res.ok and res.delivered == 2
    assert kernel.fabric.memory_write(mlx, bar.end + 1, b"!").tlps[0].status == "ur"


def test_splits_at_max_payload_and_4k(kernel: Kernel) -> None:
    assert kernel.pci is not None
    bar = kernel.pci.get(VFIO).bars[0]
    start = bar.bus_address + 4096 - 100
    res = kernel.fabric.memory_write(kernel.pci.get(MLX), start, bytes(600))
    assert [t.length for t in res.tlps] == [100, 256, 244]
    assert all(t.address % 4096 + t.length <= 4096 for t in res.tlps)
    assert res.tlps[1].address == bar.bus_address + 4096


def test_tph_fields_and_extended_prefix_only_for_ext_completer(kernel: Kernel) -> None:
    assert kernel.pci is not None
    mlx = kernel.pci.get(MLX)
    vfio_bar = kernel.pci.get(VFIO).bars[0]
    nic = kernel.pci.get(NIC)
    assert pcie_tph_completer_type(kernel.pci.get(VFIO)) == 3
    assert pcie_tph_completer_type(nic) == 0
    with kernel.tracer.capture() as events:
        res = kernel.fabric.memory_write(mlx, vfio_bar.bus_address, b"x", ph=2, steering_tag=0x1234)
    (tlp,) = res.tlps
    assert (tlp.th, tlp.ph, tlp.st, tlp.st_ext, tlp.steering_tag) == (True, 2, 0x34, 0x12, 0x1234)
    assert tlp.requester_id == (0x02 << 8) | 0
    (ev,) = [e for e in events if e["event"] == "pcie.tlp"]
    assert ev["st"] == 0x34 and ev["st_ext"] == 0x12 and ev["target"] == f"{VFIO}:bar0"
    nic_bar = nic.bars[0]
    (tlp2,) = kernel.fabric.memory_write(
        mlx, nic_bar.bus_address, b"x", ph=1, steering_tag=0x1234
    ).tlps
    assert tlp2.st == 0x34 and tlp2.st_ext is None  # no prefix to a non-extended completer
    (tlp3,) = kernel.fabric.memory_write(mlx, nic_bar.bus_address, b"x").tlps
    assert (tlp3.th, tlp3.ph, tlp3.st, tlp3.st_ext) == (False, 0, 0, None)


def test_unsupported_request_when_nothing_decodes_or_memory_disabled(kernel: Kernel) -> None:
    assert kernel.pci is not None
    mlx = kernel.pci.get(MLX)
    res = kernel.fabric.memory_write(mlx, 0x10, b"lost")
    assert not res.ok and res.tlps[0].status == "ur" and res.delivered == 0
    vfio = kernel.pci.get(VFIO)
    bar = vfio.bars[0]
    cmd = vfio.pci_read_config_word(0x04)
    vfio.pci_write_config_word(0x04, cmd & ~0x2)  # PCI_COMMAND_MEMORY off
    res = kernel.fabric.memory_write(mlx, bar.bus_address, b"drop")
    assert res.tlps[0].status == "ur"
    assert bar.map.read(0, 4) == b"\0\0\0\0"
    vfio.pci_write_config_word(0x04, cmd)
    assert kernel.fabric.memory_write(mlx, bar.bus_address, b"land").ok
    assert bar.map.read(0, 4) == b"land"


def test_ram_ranges_decode_and_refuse_overlap(kernel: Kernel) -> None:
    import os

    assert kernel.pci is not None
    fd = os.memfd_create("ram")
    try:
        os.ftruncate(fd, 8192)
        mem = KernelMap(kernel, fd, 8192)
        fab: Fabric = kernel.fabric
        fab.add_ram(0x1_0000_0000, 8192, mem)
        with pytest.raises(ValueError):
            fab.add_ram(0x1_0000_1000, 4096, mem)
        res = fab.memory_write(kernel.pci.get(MLX), 0x1_0000_1000, b"ram!", ph=0, steering_tag=7)
        assert res.ok and res.tlps[0].target == "ram"
        assert (
            res.tlps[0].st_ext == 0
        )  # the root port completes extended TPH in the default topology
        assert os.pread(fd, 4, 4096) == b"ram!"
        fab.remove_ram(0x1_0000_0000)
        assert not fab.memory_write(kernel.pci.get(MLX), 0x1_0000_1000, b"x").ok
        mem.close()
    finally:
        os.close(fd)


def test_bad_tph_arguments_are_rejected(kernel: Kernel) -> None:
    assert kernel.pci is not None
    mlx = kernel.pci.get(MLX)
    with pytest.raises(ValueError):
        kernel.fabric.memory_write(mlx, 0, b"x", ph=4)
    with pytest.raises(ValueError):
        kernel.fabric.memory_write(mlx, 0, b"x", ph=0, steering_tag=0x10000)


def test_tlps_equal_those_made_field_by_field(kernel: Kernel) -> None:
    """The fabric makes its TLPs without the dataclass's __init__ (its hot loop): each is
    the TLP ``Tlp(...)`` makes from the same fields, and as frozen."""
    import dataclasses

    from mockkernel.pci.fabric import Tlp

    assert kernel.pci is not None
    bar = kernel.pci.get(VFIO).bars[0]
    res = kernel.fabric.memory_write(
        kernel.pci.get(MLX), bar.bus_address + 4096 - 8, bytes(300), ph=1, steering_tag=0x1234
    )
    assert len(res.tlps) == 3
    for t in res.tlps:
        fields = [getattr(t, f.name) for f in dataclasses.fields(Tlp)]
        same = Tlp(*fields)
        assert t == same and hash(t) == hash(same) and repr(t) == repr(same)
        assert dataclasses.asdict(t) == dataclasses.asdict(same)
        with pytest.raises(dataclasses.FrozenInstanceError):
            t.length = 1  # type: ignore[misc]
