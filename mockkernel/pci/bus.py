"""The PCI bus: every function and root port of a topology, by BDF.

:meth:`PciBus.from_topology` builds the live objects; :meth:`PciBus.close` releases
every BAR's memory and is safe to call twice.  ``tph_disabled`` is the ``notph``
boot parameter: while set, ``pcie_enable_tph`` fails with ``-EINVAL``.

A function leaves the bus with :meth:`PciBus.remove_device`
(``pci_stop_and_remove_bus_device``, ``/sys/bus/pci/devices/<bdf>/remove``) and comes
back with :meth:`PciBus.rescan` (``pci_rescan_bus``): the hardware is still there, so
the same :class:`PciDev` (its BAR memory) is found again, in bus-scan order.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from ..topology import Topology
from .dev import EventTracer, PciDev, PciRootPort

if TYPE_CHECKING:
    from ..context import KernelContext

__all__ = ["PciBus"]


class PciBus:
    """All PCI functions of one kernel, in topology (bus-scan) order."""

    def __init__(self) -> None:
        self.devices: tuple[PciDev, ...] = ()
        self.root_ports: tuple[PciRootPort, ...] = ()
        self.tph_disabled = False  # the "notph" kernel parameter
        self._by_bdf: dict[str, PciDev] = {}
        #: every function the hardware has, present or removed, in bus-scan order
        self._hardware: tuple[PciDev, ...] = ()

    @classmethod
    def from_topology(
        cls,
        topology: Topology,
        *,
        tracer: EventTracer | None = None,
        kernel: KernelContext | None = None,
    ) -> PciBus:
        """The functions of ``topology``; ``kernel`` owns their BAR memory (``None``: a bus
        built alone, in a unit test of the PCI layer)."""
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
                    kernel=kernel,
                )
        except BaseException:
            bus.devices = bus._hardware = tuple(bus._by_bdf.values())
            bus.close()
            raise
        bus.devices = bus._hardware = tuple(bus._by_bdf.values())
        return bus

    def remove_device(self, bdf: str) -> PciDev:
        """Take the function at ``bdf`` off the bus (``pci_remove_bus_device``): lookups
        no longer find it.  Its driver must have been removed first.  ``KeyError`` if
        no such function is present."""
        pdev = self._by_bdf.pop(bdf)
        self.devices = tuple(d for d in self.devices if d is not pdev)
        return pdev

    def rescan(self) -> list[PciDev]:
        """``pci_rescan_bus``: the removed functions found again; returns them.  Each is
        enumerated afresh: a new ``pci_dev`` has no ``driver_override``."""
        found = [d for d in self._hardware if d.bdf not in self._by_bdf]
        for pdev in found:
            pdev.driver_override = None
            self._by_bdf[pdev.bdf] = pdev
        self.devices = tuple(d for d in self._hardware if d.bdf in self._by_bdf)
        return found

    def get(self, bdf: str) -> PciDev:
        """The function at ``bdf``; ``KeyError`` if there is none (test with ``in``)."""
        return self._by_bdf[bdf]

    def get_present(self, bdf: str) -> PciDev | None:
        """The function at ``bdf`` if it is on the bus now, else ``None``."""
        return self._by_bdf.get(bdf)

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
        """Close every function (their BARs' memfds and mappings), removed ones too.
        Idempotent."""
        for pdev in self._hardware:
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
