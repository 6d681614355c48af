"""The PCI bus: every function and root port of a topology, by BDF.

:meth:`PciBus.from_topology` builds the live objects; :meth:`PciBus.close` releases
every BAR's memory and is safe to call twice.  ``tph_disabled`` is the ``notph``
boot parameter: while set, ``pcie_enable_tph`` fails with ``-EINVAL``.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from ..topology import Topology
from .dev import EventTracer, PciDev, PciRootPort

__all__ = ["PciBus"]


class PciBus:
    """All PCI functions of one kernel, in topology (bus-scan) order."""

    def __init__(self) -> None:
        self.devices: tuple[PciDev, ...] = ()
        self.root_ports: tuple[PciRootPort, ...] = ()
        self.tph_disabled = False  # the "notph" kernel parameter
        self._by_bdf: dict[str, PciDev] = {}

    @classmethod
    def from_topology(cls, topology: Topology, *, tracer: EventTracer | None = None) -> PciBus:
        bus = cls()
        bus.root_ports = tuple(PciRootPort(spec) for spec in topology.root_ports)
        ports = {rp.bdf: rp for rp in bus.root_ports}
        try:
            for dev in topology.devices:
                bus._by_bdf[dev.bdf] = PciDev(
                    dev,
                    bar_addresses={
                        b.index: topology.bar_address(dev.bdf, b.index) for b in dev.bars
                    },
                    root_port=None if dev.root_port is None else ports[dev.root_port],
                    bus=bus,
                    tracer=tracer,
                )
        except BaseException:
            bus.devices = tuple(bus._by_bdf.values())
            bus.close()
            raise
        bus.devices = tuple(bus._by_bdf.values())
        return bus

    def get(self, bdf: str) -> PciDev:
        """The function at ``bdf``; ``KeyError`` if there is none (test with ``in``)."""
        return self._by_bdf[bdf]

    def get_root_port(self, bdf: str) -> PciRootPort:
        """The root port at ``bdf``; ``KeyError`` if there is none."""
        for rp in self.root_ports:
            if rp.bdf == bdf:
                return rp
        raise KeyError(bdf)

    def iommu_groups(self) -> dict[int, list[PciDev]]:
        """IOMMU group number to its functions, in bus order."""
        groups: dict[int, list[PciDev]] = {}
        for pdev in self.devices:
            groups.setdefault(pdev.iommu_group, []).append(pdev)
        return groups

    def __iter__(self) -> Iterator[PciDev]:
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    def __contains__(self, bdf: object) -> bool:
        return bdf in self._by_bdf

    def close(self) -> None:
        """Close every function (their BARs' memfds and mappings).  Idempotent."""
        for pdev in self.devices:
            pdev.close()

    def __enter__(self) -> PciBus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PciBus {len(self.devices)} devices, {len(self.root_ports)} root ports>"
