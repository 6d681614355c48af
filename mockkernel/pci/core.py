"""The PCI core of one kernel: the bus, the fabric between its devices, what is bound.

``kernel.subsys(PciCore)`` scans the topology's bus on first use (boot does it first):
:attr:`PciCore.bus` holds every function (``struct pci_bus``), :attr:`PciCore.fabric`
carries their memory writes, and :attr:`PciCore.bound` records which driver each
function is bound to (``pdev->driver``).  Probing and removal are the module loader's
(:mod:`mockkernel.lifecycle`); the PCI core only records the outcome, and reaches the
loader from sysfs (``bind``, ``unbind``, ``remove``, ``rescan``) through
:attr:`PciCore.bus_ops`, as ``struct bus_type``'s methods are reached from below.
"""

from __future__ import annotations

from typing import Protocol

from ..context import KernelContext, Subsystem
from ..topology import Topology
from .bus import PciBus
from .fabric import Fabric

__all__ = ["BoundDriver", "PciBusOps", "PciContext", "PciCore"]


class PciContext(KernelContext, Protocol):
    """The kernel context as the PCI core sees it: plus the topology it scans."""

    @property
    def topology(self) -> Topology:
        """The machine booted (deeply frozen)."""


class BoundDriver(Protocol):
    """A PCI driver as the PCI core sees it once bound: only its name matters here."""

    name: str


class PciBusOps(Protocol):
    """What the PCI sysfs files call: the driver core's binding of drivers to functions
    (``drivers/base/bus.c``, ``dd.c``; ``drivers/pci/remove.c``, ``probe.c``).  Each
    raises ``OSError`` with Linux's errno."""

    def bind_store(self, driver: str, bdf: str) -> None:
        """``/sys/bus/pci/drivers/<driver>/bind``."""

    def unbind_store(self, driver: str, bdf: str) -> None:
        """``/sys/bus/pci/drivers/<driver>/unbind``."""

    def drivers_probe(self, bdf: str) -> None:
        """``/sys/bus/pci/drivers_probe``."""

    def remove_device(self, bdf: str) -> None:
        """``/sys/bus/pci/devices/<bdf>/remove``."""

    def rescan(self) -> None:
        """``/sys/bus/pci/rescan``."""


class PciCore(Subsystem):
    """The PCI devices of the topology, their fabric, and which driver each is bound to."""

    name = "pci"

    def __init__(self, kernel: PciContext) -> None:
        super().__init__(kernel)
        self.bus = PciBus.from_topology(kernel.topology, tracer=kernel.tracer, kernel=kernel)
        self.fabric = Fabric(self.bus, kernel.tracer)
        #: BDF -> the driver bound to that function, in probe order
        self.bound: dict[str, BoundDriver] = {}
        #: the driver core's binding operations (the module loader sets them at boot)
        self.bus_ops: PciBusOps | None = None
        #: the CPUs every device is local to (one NUMA node: all of them)
        self.nr_cpus = kernel.topology.kernel.nr_cpus

    def shutdown(self) -> None:
        """Every BAR's memory released (drivers were removed before)."""
        self.bound.clear()
        self.bus.close()
