"""Finding PCI devices and the fabric they sit on, as drivers do (``drivers/pci/search.c``).

A driver is handed its own ``pdev`` at ``probe``; these are for the rest: the
functions next to it (a bus reset hits them all), a device by name (a test helper
finding a driver's object through :func:`~mockkernel.pci.dev.pci_get_drvdata`), and
the PCIe fabric its DMA goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .core import PciCore

if TYPE_CHECKING:
    from .core import PciContext
    from .dev import PciDev
    from .fabric import Fabric

__all__ = ["for_each_pci_dev", "pci_fabric", "pci_find_device_by_name"]


def for_each_pci_dev(kernel: PciContext) -> Iterator[PciDev]:
    """``for_each_pci_dev``: every PCI function of the kernel's machine, in bus order
    (none before the bus is scanned at boot)."""
    bus = kernel.subsys(PciCore).bus
    return iter(() if bus is None else bus.devices)


def pci_find_device_by_name(kernel: PciContext, name: str) -> PciDev | None:
    """``bus_find_device_by_name(&pci_bus_type, NULL, name)``: the function whose name
    is ``name`` (its BDF, ``"0000:03:00.0"``), or ``None``."""
    bus = kernel.subsys(PciCore).bus
    if bus is None:
        return None
    try:
        return bus.get(name)
    except KeyError:
        return None


def pci_fabric(kernel: PciContext) -> Fabric:
    """The PCIe fabric of the kernel's machine (the hardware, not a kernel API).

    A device model's DMA goes through it (``memory_write`` with the TLP's TPH bits:
    what a NIC or an RDMA adapter writes into memory), and an exporter whose pages are
    system RAM makes them decodable there (``add_ram``/``remove_ram``).  Available
    once the bus is scanned, i.e. in every module ``init`` and ``probe``.
    """
    return kernel.subsys(PciCore).fabric
