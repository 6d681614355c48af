"""MSI-X, as far as TPH needs it: enabling vectors and the steering tag in vector control.

The MSI-X table lives where the capability says, in a BAR: entry *i* is 16 bytes at
``table_offset + 16 * i`` of that BAR's memory, and its vector-control dword carries
the steering tag in bits 31:16 (``PCI_MSIX_ENTRY_CTRL_ST``).  Because the table is
BAR memory, what :func:`pci_msix_write_tph_tag` writes is visible in every mapping of
the BAR's memfd.  No interrupts are delivered.
"""

from __future__ import annotations

from errno import EINVAL, ENOSPC, ENXIO, ERANGE

from ..errors import kerr
from ._regs import (
    PCI_MSIX_ENTRY_CTRL_ST,
    PCI_MSIX_ENTRY_SIZE,
    PCI_MSIX_ENTRY_VECTOR_CTRL,
    PCI_MSIX_FLAGS,
    PCI_MSIX_FLAGS_ENABLE,
    PCI_MSIX_FLAGS_QSIZE,
    PCI_MSIX_TABLE,
    PCI_MSIX_TABLE_BIR,
    PCI_MSIX_TABLE_OFFSET,
)
from .dev import PciDev

__all__ = [
    "pci_disable_msix",
    "pci_enable_msix_range",
    "pci_msix_vec_count",
    "pci_msix_write_tph_tag",
]


def pci_msix_vec_count(pdev: PciDev) -> int:
    """The MSI-X table size; ``-EINVAL`` if the device has no MSI-X capability."""
    if not pdev.msix_cap:
        raise kerr(EINVAL)
    return (pdev.pci_read_config_word(pdev.msix_cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1


def pci_enable_msix_range(pdev: PciDev, minvec: int, maxvec: int) -> int:
    """Enable MSI-X with between ``minvec`` and ``maxvec`` vectors; returns how many.

    ``-ERANGE`` if ``maxvec < minvec``; ``-EINVAL`` if already enabled or no MSI-X;
    ``-ENOSPC`` if the table has fewer than ``minvec`` entries.
    """
    if maxvec < minvec:
        raise kerr(ERANGE)
    if pdev.msix_enabled:
        raise kerr(EINVAL)
    nvec = min(maxvec, pci_msix_vec_count(pdev))
    if nvec < minvec:
        raise kerr(ENOSPC)
    flags = pdev.pci_read_config_word(pdev.msix_cap + PCI_MSIX_FLAGS)
    pdev.pci_write_config_word(pdev.msix_cap + PCI_MSIX_FLAGS, flags | PCI_MSIX_FLAGS_ENABLE)
    pdev.msix_enabled = True
    pdev.msix_nvec = nvec
    return nvec


def pci_disable_msix(pdev: PciDev) -> None:
    if not pdev.msix_enabled:
        return
    flags = pdev.pci_read_config_word(pdev.msix_cap + PCI_MSIX_FLAGS)
    pdev.pci_write_config_word(pdev.msix_cap + PCI_MSIX_FLAGS, flags & ~PCI_MSIX_FLAGS_ENABLE)
    pdev.msix_enabled = False
    pdev.msix_nvec = 0


def pci_msix_write_tph_tag(pdev: PciDev, index: int, tag: int) -> None:
    """Put ``tag`` in bits 31:16 of MSI-X entry ``index``'s vector control.

    ``-ENXIO`` if MSI-X is not enabled or ``index`` is not an allocated vector.
    """
    if not pdev.msix_enabled:
        raise kerr(ENXIO)
    if not 0 <= index < pdev.msix_nvec:
        raise kerr(ENXIO)
    table = pdev.pci_read_config_dword(pdev.msix_cap + PCI_MSIX_TABLE)
    bar = pdev.bars[table & PCI_MSIX_TABLE_BIR]
    offset = (table & PCI_MSIX_TABLE_OFFSET) + index * PCI_MSIX_ENTRY_SIZE
    offset += PCI_MSIX_ENTRY_VECTOR_CTRL
    ctrl = bar.map.read_u32(offset)
    ctrl = (ctrl & ~PCI_MSIX_ENTRY_CTRL_ST) | ((tag & 0xFFFF) << 16)
    bar.map.write_u32(offset, ctrl)
