"""Helpers shared by the PCI tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from mockkernel.pci import PciBus
from mockkernel.topology import Topology

VFIO_BDF = "0000:01:00.0"
MLX5_BDF = "0000:02:00.0"
NIC_BDF = "0000:03:00.0"

BusFactory = Callable[..., PciBus]


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
