"""Fixtures for the PCI model: buses built from topologies, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pci_testing import BusFactory

from mockkernel.pci import PciBus
from mockkernel.topology import Topology, default_topology


@pytest.fixture
def make_bus() -> Iterator[BusFactory]:
    buses: list[PciBus] = []

    def make(topology: Topology | None = None, **kwargs: Any) -> PciBus:
        bus = PciBus.from_topology(topology or default_topology(), **kwargs)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


@pytest.fixture
def bus(make_bus: BusFactory) -> PciBus:
    return make_bus()
