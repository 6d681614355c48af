"""PCI: config space, BARs backed by real memory, MSI-X tables and the TPH library.

Layers, bottom up:

* :mod:`.config`: :class:`ConfigSpace`, 4 KiB of registers with write masks (256 bytes
  for a conventional PCI function).
* :mod:`.dev`: :class:`PciDev` (``struct pci_dev``), :class:`PciBar` (a memfd plus
  the kernel's mapping of it), :class:`PciRootPort` (completer type and ``_DSM``).
* :mod:`.bus`: :class:`PciBus`, every function of a :class:`~mockkernel.topology.Topology`.
* :mod:`.msi` and :mod:`.tph`: ``drivers/pci/msi`` and ``drivers/pci/tph.c`` as
  functions over a :class:`PciDev`, with the kernel's names and errnos.

Drivers learn about ``PCI_COMMAND`` changes (memory decode on/off) through
:meth:`PciDev.add_command_listener`.
"""

from __future__ import annotations

from .bus import PciBus
from .config import ConfigSpace
from .dev import CommandListener, EventTracer, PciBar, PciDev, PciRootPort
from .msi import pci_disable_msix, pci_enable_msix_range, pci_msix_vec_count, pci_msix_write_tph_tag
from .tph import (
    PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH,
    PCI_EXP_DEVCAP2_TPH_COMP_NONE,
    PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY,
    PCI_TPH_LOC_CAP,
    PCI_TPH_LOC_MSIX,
    PCI_TPH_LOC_NONE,
    PCI_TPH_REQ_DISABLE,
    PCI_TPH_REQ_EXT_TPH,
    PCI_TPH_REQ_TPH_ONLY,
    PCI_TPH_ST_DS_MODE,
    PCI_TPH_ST_IV_MODE,
    PCI_TPH_ST_NS_MODE,
    TPH_MEM_TYPE_PM,
    TPH_MEM_TYPE_VM,
    TphMemType,
    pcie_disable_tph,
    pcie_enable_tph,
    pcie_tph_completer_type,
    pcie_tph_enabled_req_type,
    pcie_tph_get_cpu_st,
    pcie_tph_get_st_table_loc,
    pcie_tph_get_st_table_size,
    pcie_tph_set_st_entry,
)

__all__ = [
    "PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH",
    "PCI_EXP_DEVCAP2_TPH_COMP_NONE",
    "PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY",
    "PCI_TPH_LOC_CAP",
    "PCI_TPH_LOC_MSIX",
    "PCI_TPH_LOC_NONE",
    "PCI_TPH_REQ_DISABLE",
    "PCI_TPH_REQ_EXT_TPH",
    "PCI_TPH_REQ_TPH_ONLY",
    "PCI_TPH_ST_DS_MODE",
    "PCI_TPH_ST_IV_MODE",
    "PCI_TPH_ST_NS_MODE",
    "TPH_MEM_TYPE_PM",
    "TPH_MEM_TYPE_VM",
    "CommandListener",
    "ConfigSpace",
    "EventTracer",
    "PciBar",
    "PciBus",
    "PciDev",
    "PciRootPort",
    "TphMemType",
    "pci_disable_msix",
    "pci_enable_msix_range",
    "pci_msix_vec_count",
    "pci_msix_write_tph_tag",
    "pcie_disable_tph",
    "pcie_enable_tph",
    "pcie_tph_completer_type",
    "pcie_tph_enabled_req_type",
    "pcie_tph_get_cpu_st",
    "pcie_tph_get_st_table_loc",
    "pcie_tph_get_st_table_size",
    "pcie_tph_set_st_entry",
]
