"""Helpers shared by the PCI tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from mockkernel.pci import PciBus
from mockkernel.topology import BarSpec, DeviceSpec, MsiSpec, Topology

VFIO_BDF = "0000:01:00.0"
MLX5_BDF = "0000:02:00.0"
NIC_BDF = "0000:03:00.0"

BusFactory = Callable[..., PciBus]

#: QEMU's edu and ivshmem-plain as the real-Linux guest has them: conventional PCI
EDU = DeviceSpec(
    bdf="0000:01:00.0",
    vendor=0x1234,
    device=0x11E8,
    class_code=0x00FF00,
    iommu_group=6,
    pcie_type="conventional",
    io_enabled=True,
    pm=False,
    bars=(BarSpec(0, 0x100000),),
    msi=MsiSpec(vectors=1),
)
IVSHMEM = DeviceSpec(
    bdf="0000:00:04.0",
    vendor=0x1AF4,
    device=0x1110,
    class_code=0x050000,
    iommu_group=4,
    pcie_type="conventional",
    io_enabled=True,
    interrupt_pin=0,
    pm=False,
    bars=(BarSpec(0, 0x100), BarSpec(2, 0x100000, mem64=True, prefetch=True)),
)
GUEST = Topology(devices=(IVSHMEM, EDU))


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def with_device(topology: Topology, bdf: str, **changes: Any) -> Topology:
    """``topology`` with the device at ``bdf`` changed (``dataclasses.replace`` style)."""
    devices = tuple(
        dataclasses.replace(d, **changes) if d.bdf == bdf else d for d in topology.devices
    )
    return dataclasses.replace(topology, devices=devices)


def with_root_port(topology: Topology, **changes: Any) -> Topology:
    """``topology`` with its (only) root port changed."""
    (rp,) = topology.root_ports
    return dataclasses.replace(topology, root_ports=(dataclasses.replace(rp, **changes),))
