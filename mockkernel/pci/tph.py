"""TPH (TLP Processing Hints): ``drivers/pci/tph.c`` and ``include/linux/pci-tph.h``.

The functions keep the kernel's names, argument order and checks, in the kernel's
order.  A negative errno becomes ``OSError(errno, os.strerror(errno))``; a function
that returns a value through a pointer in C (``pcie_tph_get_cpu_st``) returns it.

* ``pcie_enable_tph(pdev, mode)``: ``-EINVAL`` if TPH is off system-wide (``notph``,
  :attr:`PciBus.tph_disabled`), the device has no TPH Requester capability, or
  ``mode`` is not one it supports; ``-EBUSY`` if already enabled.  The request type
  is EXT_TPH if the capability has the Extended TPH bit, else TPH_ONLY, then the
  ``min()`` with the root port's completer type (RC-integrated endpoints skip that);
  DISABLE at the end is ``-EINVAL``.
* ``pcie_tph_set_st_entry(pdev, index, tag)``: ``-EINVAL`` without the capability or
  when not enabled; a no-op in No-ST mode.  The requester is disabled while the
  entry is written and re-enabled after; on any error TPH is disabled entirely.
* ``pcie_tph_get_cpu_st(pdev, mem_type, cpu_uid)``: ``-ENODEV`` without a root port,
  ``-EINVAL`` if its ``_DSM`` fails (the kernel also zeroes ``*tag``); an entry whose
  valid bit is clear, or a device whose TPH is not enabled, yields tag 0.
* ``pcie_tph_completer_type(pdev)`` (TPH series, not merged): DEVCAP2[13:12] with the
  reserved value 2 folded into NONE.  ``pcie_tph_enabled_req_type(pdev)`` is
  ``pdev.tph_req_type``.
"""

from __future__ import annotations

from enum import IntEnum
from errno import EBUSY, EINVAL, ENODEV, ENXIO

from ..errors import kerr
from ..trace import TracePoint
from ._regs import (
    PCI_EXP_DEVCAP2,
    PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH,
    PCI_EXP_DEVCAP2_TPH_COMP_MASK,
    PCI_EXP_DEVCAP2_TPH_COMP_NONE,
    PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY,
    PCI_EXP_TYPE_RC_END,
    PCI_TPH_BASE_SIZEOF,
    PCI_TPH_CAP,
    PCI_TPH_CAP_EXT_TPH,
    PCI_TPH_CAP_LOC_MASK,
    PCI_TPH_CAP_ST_DS,
    PCI_TPH_CAP_ST_IV,
    PCI_TPH_CAP_ST_MASK,
    PCI_TPH_CAP_ST_NS,
    PCI_TPH_CTRL,
    PCI_TPH_CTRL_MODE_SEL_MASK,
    PCI_TPH_CTRL_REQ_EN_MASK,
    PCI_TPH_LOC_CAP,
    PCI_TPH_LOC_MSIX,
    PCI_TPH_LOC_NONE,
    PCI_TPH_REQ_DISABLE,
    PCI_TPH_REQ_EXT_TPH,
    PCI_TPH_REQ_TPH_ONLY,
    PCI_TPH_ST_DS_MODE,
    PCI_TPH_ST_IV_MODE,
    PCI_TPH_ST_NS_MODE,
)
from .dev import PciDev
from .msi import pci_msix_write_tph_tag

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
    "TphMemType",
    "pcie_disable_tph",
    "pcie_enable_tph",
    "pcie_tph_completer_type",
    "pcie_tph_enabled_req_type",
    "pcie_tph_get_cpu_st",
    "pcie_tph_get_st_table_loc",
    "pcie_tph_get_st_table_size",
    "pcie_tph_set_st_entry",
]

trace_pci_tph_set_st = TracePoint("pci.tph_set_st", "bdf", "index", "tag", "table")
trace_pci_tph_disable = TracePoint("pci.tph_disable", "bdf")
trace_pci_tph_enable = TracePoint("pci.tph_enable", "bdf", "mode", "req_type")


class TphMemType(IntEnum):
    """``enum tph_mem_type``: which memory the steering tag targets."""

    VM = 0  # volatile memory
    PM = 1  # persistent memory


TPH_MEM_TYPE_VM = TphMemType.VM
TPH_MEM_TYPE_PM = TphMemType.PM


def _field_get(mask: int, reg: int) -> int:
    return (reg & mask) >> ((mask & -mask).bit_length() - 1)


def _field_prep(mask: int, val: int) -> int:
    return (val << ((mask & -mask).bit_length() - 1)) & mask


def _set_ctrl_reg_req_en(pdev: PciDev, req_type: int) -> None:
    reg = pdev.pci_read_config_dword(pdev.tph_cap + PCI_TPH_CTRL)
    reg &= ~PCI_TPH_CTRL_REQ_EN_MASK
    reg |= _field_prep(PCI_TPH_CTRL_REQ_EN_MASK, req_type)
    pdev.pci_write_config_dword(pdev.tph_cap + PCI_TPH_CTRL, reg)


def _get_st_modes(pdev: PciDev) -> int:
    reg = pdev.pci_read_config_dword(pdev.tph_cap + PCI_TPH_CAP)
    return reg & (PCI_TPH_CAP_ST_NS | PCI_TPH_CAP_ST_IV | PCI_TPH_CAP_ST_DS)


def _get_rp_completer_type(pdev: PciDev) -> int:
    rp = pdev.root_port
    return 0 if rp is None else rp.tph_completer


def pcie_tph_get_st_table_loc(pdev: PciDev) -> int:
    """The raw ST Table Location field: 0 none, 1 capability, 2 MSI-X table."""
    reg = pdev.pci_read_config_dword(pdev.tph_cap + PCI_TPH_CAP)
    return _field_get(PCI_TPH_CAP_LOC_MASK, reg)


def pcie_tph_get_st_table_size(pdev: PciDev) -> int:
    """Entries in the ST table if it lives in the capability, else 0."""
    loc = _field_prep(PCI_TPH_CAP_LOC_MASK, pcie_tph_get_st_table_loc(pdev))
    if loc != PCI_TPH_LOC_CAP:
        return 0
    reg = pdev.pci_read_config_dword(pdev.tph_cap + PCI_TPH_CAP)
    return _field_get(PCI_TPH_CAP_ST_MASK, reg) + 1


def pcie_tph_enabled_req_type(pdev: PciDev) -> int:
    """``PCI_TPH_REQ_DISABLE``, ``_TPH_ONLY`` or ``_EXT_TPH``: what is enabled now."""
    return pdev.tph_req_type


def pcie_tph_completer_type(pdev: PciDev) -> int:
    """The device's own TPH completer support (DEVCAP2[13:12]); reserved 2 reads as NONE."""
    reg = pdev.pcie_capability_read_dword(PCI_EXP_DEVCAP2)
    comp = _field_get(PCI_EXP_DEVCAP2_TPH_COMP_MASK, reg)
    if comp in (PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY, PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH):
        return comp
    return PCI_EXP_DEVCAP2_TPH_COMP_NONE


def _extract_tag(mem_type: int, req_type: int, info: int) -> int:
    """``tph_extract_tag``: the tag of ``union st_info`` for this request type."""
    if req_type == PCI_TPH_REQ_TPH_ONLY:  # 8-bit tag
        if mem_type == TPH_MEM_TYPE_VM and info & (1 << 0):
            return (info >> 8) & 0xFF
        if mem_type == TPH_MEM_TYPE_PM and info & (1 << 32):
            return (info >> 40) & 0xFF
    elif req_type == PCI_TPH_REQ_EXT_TPH:  # 16-bit tag
        if mem_type == TPH_MEM_TYPE_VM and info & (1 << 1):
            return (info >> 16) & 0xFFFF
        if mem_type == TPH_MEM_TYPE_PM and info & (1 << 33):
            return (info >> 48) & 0xFFFF
    return 0


def pcie_tph_get_cpu_st(pdev: PciDev, mem_type: int, cpu_uid: int) -> int:
    """The steering tag for memory of ``mem_type`` near CPU ``cpu_uid``, from the ``_DSM``."""
    rp = pdev.root_port
    if rp is None:
        raise kerr(ENODEV)
    info = rp.acpi_tph_dsm(cpu_uid)
    if info is None:
        raise kerr(EINVAL)
    return _extract_tag(mem_type, pdev.tph_req_type, info)


def _write_tag_to_st_table(pdev: PciDev, index: int, tag: int) -> None:
    if not 0 <= index < pcie_tph_get_st_table_size(pdev):
        raise kerr(ENXIO)
    pdev.pci_write_config_word(pdev.tph_cap + PCI_TPH_BASE_SIZEOF + 2 * index, tag)


def pcie_tph_set_st_entry(pdev: PciDev, index: int, tag: int) -> None:
    """Write ``tag`` (a ``u16``) into ST table entry ``index``, wherever the table lives."""
    if not pdev.tph_cap:
        raise kerr(EINVAL)
    if not pdev.tph_enabled:
        raise kerr(EINVAL)
    if pdev.tph_mode == PCI_TPH_ST_NS_MODE:
        return
    tag &= 0xFFFF
    # Disable TPH while the ST changes (PCIe r6.2 sec 6.17.3, "ST Modes of Operation").
    _set_ctrl_reg_req_en(pdev, PCI_TPH_REQ_DISABLE)
    loc = _field_prep(PCI_TPH_CAP_LOC_MASK, pcie_tph_get_st_table_loc(pdev))
    try:
        if loc == PCI_TPH_LOC_MSIX:
            pci_msix_write_tph_tag(pdev, index, tag)
        elif loc == PCI_TPH_LOC_CAP:
            _write_tag_to_st_table(pdev, index, tag)
        else:
            raise kerr(EINVAL)
    except OSError:
        pcie_disable_tph(pdev)
        raise
    _set_ctrl_reg_req_en(pdev, pdev.tph_req_type)
    tracer = pdev.tracer
    if tracer is not None:
        table = "msix" if loc == PCI_TPH_LOC_MSIX else "cap"
        trace_pci_tph_set_st(tracer, pdev.bdf, index, tag, table)


def pcie_disable_tph(pdev: PciDev) -> None:
    """Turn TPH off: ``PCI_TPH_CTRL = 0`` and the per-device state cleared."""
    if not pdev.tph_cap or not pdev.tph_enabled:
        return
    pdev.pci_write_config_dword(pdev.tph_cap + PCI_TPH_CTRL, 0)
    pdev.tph_mode = 0
    pdev.tph_req_type = 0
    pdev.tph_enabled = False
    tracer = pdev.tracer
    if tracer is not None:
        trace_pci_tph_disable(tracer, pdev.bdf)


def pcie_enable_tph(pdev: PciDev, mode: int) -> None:
    """Enable TPH in ST ``mode`` (``PCI_TPH_ST_NS_MODE``, ``_IV_MODE`` or ``_DS_MODE``)."""
    if pdev.bus is not None and pdev.bus.tph_disabled:
        raise kerr(EINVAL)
    if not pdev.tph_cap:
        raise kerr(EINVAL)
    if pdev.tph_enabled:
        raise kerr(EBUSY)
    mode &= PCI_TPH_CTRL_MODE_SEL_MASK
    if not (1 << mode) & _get_st_modes(pdev):
        raise kerr(EINVAL)
    pdev.tph_mode = mode
    reg = pdev.pci_read_config_dword(pdev.tph_cap + PCI_TPH_CAP)
    if _field_get(PCI_TPH_CAP_EXT_TPH, reg):
        pdev.tph_req_type = PCI_TPH_REQ_EXT_TPH
    else:
        pdev.tph_req_type = PCI_TPH_REQ_TPH_ONLY
    if pdev.pci_pcie_type() != PCI_EXP_TYPE_RC_END:
        pdev.tph_req_type = min(pdev.tph_req_type, _get_rp_completer_type(pdev))
    if pdev.tph_req_type == PCI_TPH_REQ_DISABLE:
        raise kerr(EINVAL)
    reg = pdev.pci_read_config_dword(pdev.tph_cap + PCI_TPH_CTRL)
    reg &= ~PCI_TPH_CTRL_MODE_SEL_MASK
    reg |= _field_prep(PCI_TPH_CTRL_MODE_SEL_MASK, pdev.tph_mode)
    reg &= ~PCI_TPH_CTRL_REQ_EN_MASK
    reg |= _field_prep(PCI_TPH_CTRL_REQ_EN_MASK, pdev.tph_req_type)
    pdev.pci_write_config_dword(pdev.tph_cap + PCI_TPH_CTRL, reg)
    pdev.tph_enabled = True
    tracer = pdev.tracer
    if tracer is not None:
        trace_pci_tph_enable(tracer, pdev.bdf, mode, pdev.tph_req_type)
