"""The config region (``VFIO_PCI_CONFIG_REGION_INDEX``): config space as vfio-pci virtualises it.

Modelled on ``drivers/vfio/pci/vfio_pci_config.c``, checked against Linux 7.2 (probes
``vfio_device``, ``vfio_config`` and ``pci_caps`` on QEMU's edu and ivshmem):

* ``vfio_config_init`` builds a per-byte map of which capability owns each byte
  (``pci_config_map``: the header is ``PCI_CAP_ID_BASIC``, bytes no capability covers are
  ``PCI_CAP_ID_INVALID``) and a virtual copy of config space (``vconfig``) filled from
  the device: the header, then each capability the walk keeps (``vfio_cap_init``,
  ``vfio_ecap_init``; a capability of length 0 in ``pci_cap_length`` is hidden by
  relinking the previous next pointer in ``vconfig``).
* Each capability has a permission table (``struct perm_bits``): per bit, whether it is
  virtualised (read from and written to ``vconfig``) and whether it is writable; the rest
  reads from the device and writes are dropped.  ``vfio_default_config_read``/``_write``
  apply them; the tables are ``init_pci_cap_basic_perm``, ``init_pci_cap_pm_perm``,
  ``init_pci_cap_msi_perm`` (per device), ``init_pci_cap_exp_perm``,
  ``init_pci_cap_af_perm``, ``init_pci_cap_vpd_perm`` (address/data virtual; the VPD
  transfer itself is not modelled), ``init_pci_cap_pcix_perm``,
  ``init_pci_ext_cap_err_perm`` and ``init_pci_ext_cap_pwr_perm``.  Any other capability
  is read-only with its id and next pointer virtual (``vfio_direct_config_read``); a
  vendor-specific capability (and extended VNDR/DVSEC) is written raw.
* Bytes no capability covers get raw access (``unassigned_perms``:
  ``vfio_raw_config_read``/``_write``): what the device keeps, it keeps (QEMU makes its
  device-specific area writable: the ``devspec_writable`` topology key).
* MSI (``vfio_msi_config_write``): flags low byte, address and data are virtual; after a
  write reaching the flags, the enable bit is cleared (MSI is enabled only through
  ``VFIO_DEVICE_SET_IRQS``: the bit sticks only while MSI is the device's IRQ type; what
  ``SET_IRQS`` itself does leaves the virtual bit as it was), a Multiple Message Enable
  larger than ``msi_qmax`` (``log2`` of the vectors ``SET_IRQS`` last enabled, 0 before)
  is cut to it, and the flags go to ``vconfig`` and to the device.  A write of 0xffff at
  the flags reads back 0x8e.
* PM (``vfio_pm_config_write``): the power-state bits are not writable; a write at
  ``PCI_PM_CTRL`` sets the device's power state through ``vfio_lock_and_set_power_state``,
  which, entering D3hot, revokes every dma-buf (``vfio_pci_dma_buf_move(vdev, true)``)
  and zaps the BAR mappings; leaving it, un-revokes if memory decoding is on.
* PCI Express (``vfio_exp_config_write``): DEVCTL is writable except Phantom Functions;
  FLR, Max Payload Size and Max Read Request Size are virtual.  A Max Read Request Size
  change is applied to the device, no lower than its Max Payload Size
  (``pcie_set_readrq``); FLR reads back 0 (the model's devices do not advertise FLR).
  DEVCTL2 is writable except ARI.
* The header (``vfio_basic_config_read``/``_write``): the BARs and the ROM BAR are
  virtual (BAR sizing; an absent BAR and the ROM read 0); ``INTERRUPT_LINE`` is virtual
  and writable (reads the device's value until written, then what was written, until the
  device is closed); ``INTERRUPT_PIN``, the ids, the capability pointer and the status
  register's capability bit are virtual and read-only; cache line size, latency timer
  and BIST are written to the device; everything else is read-only.
* A write at ``PCI_COMMAND`` runs ``vfio_basic_config_write``'s protocol: ``memory_lock``
  for write, every dma-buf revoked first if the new value clears memory decoding,
  un-revoked after if memory decoding is on.  [I] The ``INTX_DISABLE`` bit is written
  through (upstream virtualises it and drives the device's bit through its INTx
  masking, which for a device with no IRQ set up ends in the same register value).
* Accesses are split in aligned pieces of at most 4 bytes that never span two
  capabilities (``vfio_pci_cap_remaining_dword``); any access reaching beyond the config
  size (256 bytes for a conventional device, 4096 with a PCI Express capability) is
  ``EFAULT``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from errno import EFAULT
from types import MappingProxyType
from typing import TYPE_CHECKING

from mockkernel.driver import PciDev, kerr
from mockkernel.uapi.linux.pci_regs import (
    PCI_AF_CTRL,
    PCI_AF_CTRL_FLR,
    PCI_BASE_ADDRESS_0,
    PCI_BIST,
    PCI_CACHE_LINE_SIZE,
    PCI_CAP_EXP_ENDPOINT_SIZEOF_V1,
    PCI_CAP_EXP_ENDPOINT_SIZEOF_V2,
    PCI_CAP_ID_AF,
    PCI_CAP_ID_AGP,
    PCI_CAP_ID_EXP,
    PCI_CAP_ID_MSI,
    PCI_CAP_ID_MSIX,
    PCI_CAP_ID_PCIX,
    PCI_CAP_ID_PM,
    PCI_CAP_ID_VNDR,
    PCI_CAP_ID_VPD,
    PCI_CAP_LIST_NEXT,
    PCI_CAPABILITY_LIST,
    PCI_CFG_SPACE_SIZE,
    PCI_COMMAND,
    PCI_COMMAND_MEMORY,
    PCI_DEVICE_ID,
    PCI_EXP_DEVCAP,
    PCI_EXP_DEVCAP_FLR,
    PCI_EXP_DEVCTL,
    PCI_EXP_DEVCTL2,
    PCI_EXP_DEVCTL2_ARI,
    PCI_EXP_DEVCTL_BCR_FLR,
    PCI_EXP_DEVCTL_PAYLOAD,
    PCI_EXP_DEVCTL_PHANTOM,
    PCI_EXP_DEVCTL_READRQ,
    PCI_EXP_FLAGS,
    PCI_EXP_FLAGS_TYPE,
    PCI_EXP_FLAGS_VERS,
    PCI_EXP_TYPE_RC_END,
    PCI_EXT_CAP_ID_DVSEC,
    PCI_EXT_CAP_ID_ERR,
    PCI_EXT_CAP_ID_PWR,
    PCI_EXT_CAP_ID_TPH,
    PCI_EXT_CAP_ID_VNDR,
    PCI_INTERRUPT_LINE,
    PCI_INTERRUPT_PIN,
    PCI_LATENCY_TIMER,
    PCI_MSI_ADDRESS_HI,
    PCI_MSI_ADDRESS_LO,
    PCI_MSI_DATA_32,
    PCI_MSI_DATA_64,
    PCI_MSI_FLAGS,
    PCI_MSI_FLAGS_64BIT,
    PCI_MSI_FLAGS_ENABLE,
    PCI_MSI_FLAGS_MASKBIT,
    PCI_MSI_FLAGS_QSIZE,
    PCI_MSI_MASK_32,
    PCI_MSI_MASK_64,
    PCI_MSI_PENDING_32,
    PCI_MSI_PENDING_64,
    PCI_PM_CAP_D1,
    PCI_PM_CAP_D2,
    PCI_PM_CAP_PME_MASK,
    PCI_PM_CTRL,
    PCI_PM_CTRL_PME_ENABLE,
    PCI_PM_CTRL_PME_STATUS,
    PCI_PM_CTRL_STATE_MASK,
    PCI_PM_PMC,
    PCI_ROM_ADDRESS,
    PCI_STATUS,
    PCI_STATUS_CAP_LIST,
    PCI_STD_HEADER_SIZEOF,
    PCI_TPH_BASE_SIZEOF,
    PCI_TPH_CAP,
    PCI_TPH_CAP_LOC_MASK,
    PCI_TPH_CAP_ST_MASK,
    PCI_TPH_CAP_ST_SHIFT,
    PCI_TPH_LOC_CAP,
    PCI_VENDOR_ID,
)
from mockkernel.uapi.linux.vfio import VFIO_PCI_MSI_IRQ_INDEX

from .dmabuf import dma_buf_move

if TYPE_CHECKING:
    from .core import VfioPciDevice

__all__ = ["PERMS", "Perm", "VConfig", "config_size"]

PCI_BASE_ADDRESS_END = 0x28

PCI_CAP_ID_BASIC = 0  # vfio's fake id for the standard header
PCI_CAP_ID_INVALID = 0xFF  # bytes no capability covers
PCI_CAP_ID_MAX = 0x15  # PCI_CAP_ID_FLATTENING_PORTAL_BRIDGE

PCI_D0, PCI_D1, PCI_D2, PCI_D3HOT = 0, 1, 2, 3


PCI_X_CMD = 2
PCI_X_ECC_CSR = 8
PCI_CAP_PCIX_SIZEOF_V0 = 8
PCI_CAP_PCIX_SIZEOF_V2 = 24
PCI_VPD_ADDR = 2
PCI_VPD_DATA = 4

PCI_EXT_CAP_ID_MAX = 0x2E  # ids past the table are read-only either way (direct_ro_perms)
PCI_PWR_DATA = 4
PCI_ERR_UNCOR_STATUS = 4
PCI_ERR_UNCOR_MASK = 8
PCI_ERR_UNCOR_SEVER = 12
PCI_ERR_COR_STATUS = 16
PCI_ERR_COR_MASK = 20
PCI_ERR_CAP = 24
PCI_ERR_ROOT_COMMAND = 44

NO_VIRT = 0
ALL_VIRT = 0xFFFF_FFFF
NO_WRITE = 0
ALL_WRITE = 0xFFFF_FFFF

#: ``pci_cap_length``: 0 hides the capability, 0xFF is variable (``vfio_cap_len``)
PCI_CAP_LENGTH = MappingProxyType(
    {
        PCI_CAP_ID_BASIC: PCI_STD_HEADER_SIZEOF,
        PCI_CAP_ID_PM: 8,  # PCI_PM_SIZEOF
        PCI_CAP_ID_AGP: 48,  # PCI_AGP_SIZEOF
        PCI_CAP_ID_VPD: 8,  # PCI_CAP_VPD_SIZEOF
        0x04: 0,  # SLOTID
        PCI_CAP_ID_MSI: 0xFF,
        0x06: 0,  # CHSWP
        PCI_CAP_ID_PCIX: 0xFF,
        0x08: 0xFF,  # HT
        PCI_CAP_ID_VNDR: 0xFF,
        0x0A: 0,  # DBG
        0x0B: 0,  # CCRC
        0x0C: 0,  # SHPC
        0x0D: 0,  # SSVID
        0x0E: 0,  # AGP3
        0x0F: 0,  # SECDEV
        PCI_CAP_ID_EXP: 0xFF,
        PCI_CAP_ID_MSIX: 12,  # PCI_CAP_MSIX_SIZEOF
        0x12: 0xFF,  # SATA
        PCI_CAP_ID_AF: 6,  # PCI_CAP_AF_SIZEOF
    }
)
#: ``pci_ext_cap_length`` (the ids this model can meet; others are hidden)
PCI_EXT_CAP_LENGTH = MappingProxyType(
    {
        PCI_EXT_CAP_ID_ERR: PCI_ERR_ROOT_COMMAND,
        0x03: 12,  # DSN: PCI_EXT_CAP_DSN_SIZEOF
        PCI_EXT_CAP_ID_PWR: 16,  # PCI_EXT_CAP_PWR_SIZEOF
        PCI_EXT_CAP_ID_VNDR: 0xFF,
        0x0E: 8,  # ARI: PCI_EXT_CAP_ARI_SIZEOF
        0x0F: 8,  # ATS: PCI_EXT_CAP_ATS_SIZEOF
        0x10: 64,  # SR-IOV: PCI_EXT_CAP_SRIOV_SIZEOF
        0x13: 16,  # PRI: PCI_EXT_CAP_PRI_SIZEOF
        PCI_EXT_CAP_ID_TPH: 0xFF,
        0x18: 8,  # LTR: PCI_EXT_CAP_LTR_SIZEOF
        PCI_EXT_CAP_ID_DVSEC: 0xFF,
    }
)

ReadFn = Callable[["VConfig", int, int, "Perm", int], int]
WriteFn = Callable[["VConfig", int, int, "Perm", int, int], None]


def config_size(pdev: PciDev) -> int:
    """``pdev->cfg_size``: 4096 for a PCI Express function, 256 for conventional PCI."""
    return pdev.cfg_size


def _mask(width: int) -> int:
    return (1 << 8 * width) - 1


# -- struct perm_bits ---------------------------------------------------------------------
class Perm:
    """``struct perm_bits``: virtual and writable bits per byte, and the access functions.

    Without tables (``virt``/``write`` empty) a capability is read with ``readfn`` and,
    when ``writefn`` is ``None``, its writes are dropped.
    """

    __slots__ = ("readfn", "virt", "write", "writefn")

    def __init__(self, size: int = 0, readfn: ReadFn | None = None,
                 writefn: WriteFn | None = None) -> None:  # fmt: skip
        size = (size + 3) & ~3  # alloc_perm_bits rounds up to a dword
        self.virt = bytearray(size)
        self.write = bytearray(size)
        self.readfn: ReadFn | None = readfn
        self.writefn: WriteFn | None = writefn
        if size:
            self.readfn = readfn or default_read
            self.writefn = writefn or default_write

    def set(self, off: int, width: int, virt: int, write: int) -> None:
        """``p_setb``/``p_setw``/``p_setd``."""
        self.virt[off : off + width] = (virt & _mask(width)).to_bytes(width, "little")
        self.write[off : off + width] = (write & _mask(width)).to_bytes(width, "little")

    def bits(self, table: bytearray, offset: int, count: int) -> int:
        chunk = table[offset : offset + count]
        return int.from_bytes(chunk.ljust(count, b"\0"), "little")


# -- access functions (vfio_*_config_read/write) ------------------------------------------
def _phys_read(vc: VConfig, pos: int, count: int) -> int:
    return vc.pdev.cfg.read(pos, count)  # vfio_user_config_read


def _phys_write(vc: VConfig, pos: int, count: int, value: int) -> None:
    pdev = vc.pdev
    if count == 4:
        pdev.pci_write_config_dword(pos, value)
    elif count == 2:
        pdev.pci_write_config_word(pos, value)
    else:
        pdev.pci_write_config_byte(pos, value)


def default_read(vc: VConfig, pos: int, count: int, perm: Perm, offset: int) -> int:
    """``vfio_default_config_read``: virtual bits from vconfig, the rest from the device."""
    val = vc.vget(pos, count)
    virt = perm.bits(perm.virt, offset, count)
    if virt != _mask(count):
        val = (_phys_read(vc, pos, count) & ~virt) | (val & virt)
    return val


def default_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_default_config_write``: writable virtual bits to vconfig, the rest to the device."""
    write = perm.bits(perm.write, offset, count)
    if not write:
        return  # drop, no writable bits
    virt = perm.bits(perm.virt, offset, count)
    if write & virt:
        vc.vset(pos, count, (vc.vget(pos, count) & ~(write & virt)) | (val & write & virt))
    if write & ~virt:
        phys = _phys_read(vc, pos, count)
        phys = (phys & ~(write & ~virt)) | (val & (write & ~virt))
        _phys_write(vc, pos, count, phys & _mask(count))


def direct_read(vc: VConfig, pos: int, count: int, perm: Perm, offset: int) -> int:
    """``vfio_direct_config_read``: the device, except the capability id/next (vconfig)."""
    val = _phys_read(vc, pos, count)
    if pos >= PCI_CFG_SPACE_SIZE:
        if offset < 4:
            val = vc.vget(pos, count)
    elif pos >= PCI_STD_HEADER_SIZEOF:
        if offset == 0 and count > 1:
            n = min(PCI_MSI_FLAGS, count)
            val = (val & ~_mask(n)) | vc.vget(pos, n)
        elif offset == PCI_CAP_LIST_NEXT:
            val = (val & ~0xFF) | vc.vget(pos, 1)
    return val


def raw_read(vc: VConfig, pos: int, count: int, perm: Perm, offset: int) -> int:
    """``vfio_raw_config_read``."""
    return _phys_read(vc, pos, count)


def raw_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_raw_config_write``."""
    _phys_write(vc, pos, count, val)


def basic_read(vc: VConfig, pos: int, count: int, perm: Perm, offset: int) -> int:
    """``vfio_basic_config_read``: BARs and ROM from the BAR model, the rest per the table."""
    if PCI_BASE_ADDRESS_0 <= pos < PCI_BASE_ADDRESS_END:
        return vc.read_bar(pos, count)
    if PCI_ROM_ADDRESS <= pos < PCI_ROM_ADDRESS + 4:
        return 0  # no expansion ROM in this model (vfio_bar_fixup)
    return default_read(vc, pos, count, perm, offset)


def basic_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_basic_config_write``: the BARs, and the memory-enable protocol at COMMAND."""
    if PCI_BASE_ADDRESS_0 <= pos < PCI_BASE_ADDRESS_END:
        vc.write_bar(pos, count, val)
        return
    if offset != PCI_COMMAND:
        default_write(vc, pos, count, perm, offset, val)
        return
    vdev = vc.vdev
    new_mem = bool(val & PCI_COMMAND_MEMORY)
    with vdev.memory_write():
        if not new_mem:
            dma_buf_move(vdev, True, "memory_disable")
        default_write(vc, pos, count, perm, offset, val)
        if vdev.memory_enabled():
            dma_buf_move(vdev, False, "memory_enable")


def pm_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_pm_config_write``: a write at PMCSR sets the power state."""
    default_write(vc, pos, count, perm, offset, val)
    if offset == PCI_PM_CTRL:
        vc.lock_and_set_power_state(val & PCI_PM_CTRL_STATE_MASK, pos - offset)


def msi_read(vc: VConfig, pos: int, count: int, perm: Perm, offset: int) -> int:
    """``vfio_msi_config_read``.  Upstream also rewrites QMASK at ``vconfig[start]`` (not at
    the flags); those bits are not virtual there, so nothing a user reads changes."""
    return default_read(vc, pos, count, perm, offset)


def msi_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_msi_config_write``: enable only via SET_IRQS, QSIZE capped at ``msi_qmax``."""
    default_write(vc, pos, count, perm, offset, val)
    if offset <= PCI_MSI_FLAGS and offset + count >= PCI_MSI_FLAGS:
        start = pos - offset
        flags = vc.vget(start + PCI_MSI_FLAGS, 2)
        if not vc.msi_enabled:
            flags &= ~PCI_MSI_FLAGS_ENABLE
        if (flags & PCI_MSI_FLAGS_QSIZE) >> 4 > vc.msi_qmax:
            flags = (flags & ~PCI_MSI_FLAGS_QSIZE) | vc.msi_qmax << 4
        vc.vset(start + PCI_MSI_FLAGS, 2, flags)
        vc.pdev.pci_write_config_word(start + PCI_MSI_FLAGS, flags)


def exp_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_exp_config_write``: FLR and Max Read Request Size handled after the write."""
    start = pos - offset
    ctrl_at = start + PCI_EXP_DEVCTL
    readrq = vc.vget(ctrl_at, 2) & PCI_EXP_DEVCTL_READRQ
    default_write(vc, pos, count, perm, offset, val)
    ctrl = vc.vget(ctrl_at, 2)
    if ctrl & PCI_EXP_DEVCTL_BCR_FLR:
        vc.vset(ctrl_at, 2, ctrl & ~PCI_EXP_DEVCTL_BCR_FLR)
        if _phys_read(vc, start + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_FLR:
            vc.function_reset()
    ctrl = vc.vget(ctrl_at, 2)
    if readrq != ctrl & PCI_EXP_DEVCTL_READRQ:
        rq = 128 << ((ctrl & PCI_EXP_DEVCTL_READRQ) >> 12)
        phys = _phys_read(vc, ctrl_at, 2)
        mps = 128 << ((phys & PCI_EXP_DEVCTL_PAYLOAD) >> 5)  # pcie_get_mps
        rq = max(rq, mps)
        if 128 <= rq <= 4096:  # pcie_set_readrq
            v = (rq.bit_length() - 1 - 7) << 12
            vc.pdev.pci_write_config_word(ctrl_at, (phys & ~PCI_EXP_DEVCTL_READRQ) | v)


def af_write(vc: VConfig, pos: int, count: int, perm: Perm, offset: int, val: int) -> None:
    """``vfio_af_config_write``: the FLR bit is cleared after the write (no AF FLR modelled)."""
    default_write(vc, pos, count, perm, offset, val)
    ctrl_at = pos - offset + PCI_AF_CTRL
    vc.vset(ctrl_at, 1, vc.vget(ctrl_at, 1) & ~PCI_AF_CTRL_FLR)


# -- the shared tables (vfio_pci_init_perm_bits) -------------------------------------------
def _basic_perm() -> Perm:
    """``init_pci_cap_basic_perm``."""
    p = Perm(PCI_STD_HEADER_SIZEOF, basic_read, basic_write)
    p.set(PCI_VENDOR_ID, 2, ALL_VIRT, NO_WRITE)
    p.set(PCI_DEVICE_ID, 2, ALL_VIRT, NO_WRITE)
    # [I] upstream: virt PCI_COMMAND_INTX_DISABLE (see the module docstring)
    p.set(PCI_COMMAND, 2, NO_VIRT, ALL_WRITE)
    p.set(PCI_STATUS, 2, PCI_STATUS_CAP_LIST, NO_WRITE)
    p.set(PCI_CACHE_LINE_SIZE, 1, NO_VIRT, ALL_WRITE)
    p.set(PCI_LATENCY_TIMER, 1, NO_VIRT, ALL_WRITE)
    p.set(PCI_BIST, 1, NO_VIRT, ALL_WRITE)
    for reg in range(PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_END, 4):
        p.set(reg, 4, ALL_VIRT, ALL_WRITE)
    p.set(PCI_ROM_ADDRESS, 4, ALL_VIRT, ALL_WRITE)
    p.set(PCI_CAPABILITY_LIST, 1, ALL_VIRT, NO_WRITE)
    p.set(PCI_INTERRUPT_LINE, 1, ALL_VIRT, ALL_WRITE)
    p.set(PCI_INTERRUPT_PIN, 1, ALL_VIRT, NO_WRITE)
    return p


def _pm_perm() -> Perm:
    """``init_pci_cap_pm_perm``: PME bits virtual (and cleared), power state read-only."""
    p = Perm(8, writefn=pm_write)
    p.set(PCI_CAP_LIST_NEXT, 1, ALL_VIRT, NO_WRITE)
    p.set(PCI_PM_PMC, 2, PCI_PM_CAP_PME_MASK, NO_WRITE)
    pme = PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS
    p.set(PCI_PM_CTRL, 4, pme, ~(pme | PCI_PM_CTRL_STATE_MASK))
    return p


def _vpd_perm() -> Perm:
    """``init_pci_cap_vpd_perm`` (the VPD transfer of ``vfio_vpd_config_write`` is not modelled)."""
    p = Perm(8)
    p.set(PCI_CAP_LIST_NEXT, 1, ALL_VIRT, NO_WRITE)
    p.set(PCI_VPD_ADDR, 2, ALL_VIRT, ALL_WRITE)
    p.set(PCI_VPD_DATA, 4, ALL_VIRT, ALL_WRITE)
    return p


def _pcix_perm() -> Perm:
    """``init_pci_cap_pcix_perm``."""
    p = Perm(PCI_CAP_PCIX_SIZEOF_V2)
    p.set(PCI_CAP_LIST_NEXT, 1, ALL_VIRT, NO_WRITE)
    p.set(PCI_X_CMD, 2, NO_VIRT, ALL_WRITE)
    p.set(PCI_X_ECC_CSR, 4, NO_VIRT, ALL_WRITE)
    return p


def _exp_perm() -> Perm:
    """``init_pci_cap_exp_perm``."""
    p = Perm(PCI_CAP_EXP_ENDPOINT_SIZEOF_V2, writefn=exp_write)
    p.set(PCI_CAP_LIST_NEXT, 1, ALL_VIRT, NO_WRITE)
    p.set(
        PCI_EXP_DEVCTL,
        2,
        PCI_EXP_DEVCTL_BCR_FLR | PCI_EXP_DEVCTL_PAYLOAD | PCI_EXP_DEVCTL_READRQ,
        ~PCI_EXP_DEVCTL_PHANTOM,
    )
    p.set(PCI_EXP_DEVCTL2, 2, NO_VIRT, ~PCI_EXP_DEVCTL2_ARI)
    return p


def _af_perm() -> Perm:
    """``init_pci_cap_af_perm``."""
    p = Perm(6, writefn=af_write)
    p.set(PCI_CAP_LIST_NEXT, 1, ALL_VIRT, NO_WRITE)
    p.set(PCI_AF_CTRL, 1, PCI_AF_CTRL_FLR, PCI_AF_CTRL_FLR)
    return p


def _ext_err_perm() -> Perm:
    """``init_pci_ext_cap_err_perm``."""
    p = Perm(PCI_ERR_ROOT_COMMAND)
    p.set(0, 4, ALL_VIRT, NO_WRITE)
    unc = 0x0001 | 0x0010 | 0x0020 | 0x1000 | 0x2000 | 0x4000 | 0x8000
    unc |= 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x100000 | 0x200000
    unc |= 0x400000 | 0x800000 | 0x1000000 | 0x2000000  # PCI_ERR_UNC_* (UND ... TLPPRE)
    p.set(PCI_ERR_UNCOR_STATUS, 4, NO_VIRT, unc)
    p.set(PCI_ERR_UNCOR_MASK, 4, NO_VIRT, unc)
    p.set(PCI_ERR_UNCOR_SEVER, 4, NO_VIRT, unc)
    cor = 0x0001 | 0x0040 | 0x0080 | 0x0100 | 0x1000 | 0x2000 | 0x4000 | 0x8000
    p.set(PCI_ERR_COR_STATUS, 4, NO_VIRT, cor)
    p.set(PCI_ERR_COR_MASK, 4, NO_VIRT, cor)
    p.set(PCI_ERR_CAP, 4, NO_VIRT, 0x0020 | 0x0100)  # ECRC generation/check enable
    return p


def _ext_pwr_perm() -> Perm:
    """``init_pci_ext_cap_pwr_perm``."""
    p = Perm(16)
    p.set(0, 4, ALL_VIRT, NO_WRITE)
    p.set(PCI_PWR_DATA, 1, NO_VIRT, ALL_WRITE)
    return p


def _init_perm_bits() -> tuple[Mapping[int, Perm], Mapping[int, Perm]]:
    """``vfio_pci_init_perm_bits``: by default read-only, id and next virtual."""
    cap = {i: Perm(readfn=direct_read) for i in range(PCI_CAP_ID_MAX + 1)}
    ecap = {i: Perm(readfn=direct_read) for i in range(PCI_EXT_CAP_ID_MAX + 1)}
    cap[PCI_CAP_ID_BASIC] = _basic_perm()
    cap[PCI_CAP_ID_PM] = _pm_perm()
    cap[PCI_CAP_ID_VPD] = _vpd_perm()
    cap[PCI_CAP_ID_PCIX] = _pcix_perm()
    cap[PCI_CAP_ID_VNDR].writefn = raw_write
    cap[PCI_CAP_ID_EXP] = _exp_perm()
    cap[PCI_CAP_ID_AF] = _af_perm()
    ecap[PCI_EXT_CAP_ID_ERR] = _ext_err_perm()
    ecap[PCI_EXT_CAP_ID_PWR] = _ext_pwr_perm()
    ecap[PCI_EXT_CAP_ID_VNDR].writefn = raw_write
    ecap[PCI_EXT_CAP_ID_DVSEC].writefn = raw_write
    return MappingProxyType(cap), MappingProxyType(ecap)  # built once: read-only from here


CAP_PERMS, ECAP_PERMS = _init_perm_bits()
UNASSIGNED_PERMS = Perm(readfn=raw_read, writefn=raw_write)
DIRECT_RO_PERMS = Perm(readfn=direct_read)
#: the shared tables by name, for tests
PERMS: Mapping[str, Mapping[int, Perm]] = MappingProxyType(
    {"cap": CAP_PERMS, "ecap": ECAP_PERMS, "unassigned": MappingProxyType({0: UNASSIGNED_PERMS})}
)


def msi_perm(length: int, flags: int) -> Perm:
    """``init_pci_cap_msi_perm``: per device, from the capability's flags."""
    p = Perm(length, msi_read, msi_write)
    p.set(PCI_CAP_LIST_NEXT, 1, ALL_VIRT, NO_WRITE)
    p.set(PCI_MSI_FLAGS, 1, ALL_VIRT, ALL_WRITE)  # the upper byte is reserved
    p.set(PCI_MSI_ADDRESS_LO, 4, ALL_VIRT, ALL_WRITE)
    if flags & PCI_MSI_FLAGS_64BIT:
        p.set(PCI_MSI_ADDRESS_HI, 4, ALL_VIRT, ALL_WRITE)
        p.set(PCI_MSI_DATA_64, 2, ALL_VIRT, ALL_WRITE)
        if flags & PCI_MSI_FLAGS_MASKBIT:
            p.set(PCI_MSI_MASK_64, 4, NO_VIRT, ALL_WRITE)
            p.set(PCI_MSI_PENDING_64, 4, NO_VIRT, ALL_WRITE)
    else:
        p.set(PCI_MSI_DATA_32, 2, ALL_VIRT, ALL_WRITE)
        if flags & PCI_MSI_FLAGS_MASKBIT:
            p.set(PCI_MSI_MASK_32, 4, NO_VIRT, ALL_WRITE)
            p.set(PCI_MSI_PENDING_32, 4, NO_VIRT, ALL_WRITE)
    return p


# -- one open device -----------------------------------------------------------------------
class VConfig:
    """One open device's ``vconfig``, ``pci_config_map`` and ``msi_perm``."""

    def __init__(self, vdev: VfioPciDevice) -> None:
        self.vdev = vdev
        pdev = self.pdev = vdev.pdev
        self.size = config_size(pdev)
        self.msi_perm: Perm | None = None
        self.extended_caps = False
        self.map = bytearray([PCI_CAP_ID_INVALID]) * self.size
        self.map[:PCI_STD_HEADER_SIZEOF] = bytes(PCI_STD_HEADER_SIZEOF)  # PCI_CAP_ID_BASIC
        self.vconfig = bytearray(self.size)
        self._fill(0, PCI_STD_HEADER_SIZEOF)
        # per BAR register (0..5): (address mask, flag bits) -- vfio_bar_fixup
        masks: list[tuple[int, int]] = [(0, 0)] * 6
        for index, bar in pdev.bars.items():
            size_mask = ~(bar.size - 1)
            masks[index] = (size_mask & 0xFFFF_FFF0, bar.flags)
            if bar.mem64:
                masks[index + 1] = ((size_mask >> 32) & 0xFFFF_FFFF, 0)
        self._masks = masks
        self._cap_init()
        self._ecap_init()

    @property
    def msi_enabled(self) -> bool:
        """``irq_is(vdev, VFIO_PCI_MSI_IRQ_INDEX)``: MSI enabled through ``SET_IRQS``."""
        return self.vdev.irq_type == VFIO_PCI_MSI_IRQ_INDEX

    @property
    def msi_qmax(self) -> int:
        return self.vdev.msi_qmax

    # -- vconfig ------------------------------------------------------------------------
    def vget(self, pos: int, count: int) -> int:
        return int.from_bytes(self.vconfig[pos : pos + count], "little")

    def vset(self, pos: int, count: int, value: int) -> None:
        self.vconfig[pos : pos + count] = (value & _mask(count)).to_bytes(count, "little")

    def _fill(self, pos: int, length: int) -> None:
        """``vfio_fill_vconfig_bytes``."""
        cfg = self.pdev.cfg
        self.vconfig[pos : pos + length] = bytes(cfg.read(p, 1) for p in range(pos, pos + length))

    def _cap_len(self, cap: int, pos: int) -> int:
        """``vfio_cap_len`` for the variable-length capabilities."""
        cfg = self.pdev.cfg
        if cap == PCI_CAP_ID_MSI:
            flags = cfg.read(pos + PCI_MSI_FLAGS, 2)
            length = 10 + (4 if flags & PCI_MSI_FLAGS_64BIT else 0)
            length += 10 if flags & PCI_MSI_FLAGS_MASKBIT else 0
            if self.msi_perm is None:
                self.msi_perm = msi_perm(length, flags)
            return length
        if cap == PCI_CAP_ID_VNDR:
            return cfg.read(pos + 2, 1)
        if cap == PCI_CAP_ID_EXP:
            if self.size > PCI_CFG_SPACE_SIZE:
                self.extended_caps = cfg.read(PCI_CFG_SPACE_SIZE, 4) != 0
            flags = cfg.read(pos + PCI_EXP_FLAGS, 2)
            rc_end = (flags & PCI_EXP_FLAGS_TYPE) >> 4 == PCI_EXP_TYPE_RC_END
            if flags & PCI_EXP_FLAGS_VERS == 1:
                return 0xC if rc_end else PCI_CAP_EXP_ENDPOINT_SIZEOF_V1
            return 0x2C if rc_end else PCI_CAP_EXP_ENDPOINT_SIZEOF_V2
        if cap == PCI_CAP_ID_PCIX:
            return PCI_CAP_PCIX_SIZEOF_V2 if cfg.read(pos + PCI_X_CMD, 2) & 0x3000 else 8
        return 0  # HT, SATA: not modelled (no device of this model has them)

    def _cap_init(self) -> None:
        """``vfio_cap_init``: walk the list, map each capability, fill its vconfig bytes."""
        cfg = self.pdev.cfg
        if not cfg.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST:
            return
        pos = cfg.read(PCI_CAPABILITY_LIST, 1)
        prev = PCI_CAPABILITY_LIST
        caps = 0
        loops = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) // 4
        while pos and loops:
            loops -= 1
            cap = cfg.read(pos, 1)
            nxt = cfg.read(pos + PCI_CAP_LIST_NEXT, 1)
            length = 0
            if cap and cap <= PCI_CAP_ID_MAX:
                length = PCI_CAP_LENGTH.get(cap, 0)
                if length == 0xFF:
                    length = self._cap_len(cap, pos)
            if not length:
                self.vconfig[prev] = nxt  # hide it
                pos = nxt
                continue
            self.map[pos : pos + length] = bytes([cap]) * length
            self._fill(pos, length)
            if cap == PCI_CAP_ID_PM:  # vfio_update_pm_vconfig_bytes
                pmc = pos + PCI_PM_PMC
                self.vset(pmc, 2, self.vget(pmc, 2) & ~PCI_PM_CAP_PME_MASK)
                ctrl = pos + PCI_PM_CTRL
                pme = PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS
                self.vset(ctrl, 2, self.vget(ctrl, 2) & ~pme)
            prev = pos + PCI_CAP_LIST_NEXT
            pos = nxt
            caps += 1
        if not caps:
            self.vset(PCI_STATUS, 2, self.vget(PCI_STATUS, 2) & ~PCI_STATUS_CAP_LIST)

    def _ext_cap_len(self, ecap: int, epos: int) -> int:
        cfg = self.pdev.cfg
        if ecap == PCI_EXT_CAP_ID_VNDR:
            return cfg.read(epos + 4, 4) >> 20  # PCI_VSEC_HDR_LEN_SHIFT
        if ecap == PCI_EXT_CAP_ID_DVSEC:
            return cfg.read(epos + 4, 4) >> 20  # PCI_DVSEC_HEADER1_LEN
        if ecap == PCI_EXT_CAP_ID_TPH:
            cap = cfg.read(epos + PCI_TPH_CAP, 4)
            if cap & PCI_TPH_CAP_LOC_MASK == PCI_TPH_LOC_CAP:
                sts = (cap & PCI_TPH_CAP_ST_MASK) >> PCI_TPH_CAP_ST_SHIFT
                return PCI_TPH_BASE_SIZEOF + sts * 2 + 2
            return PCI_TPH_BASE_SIZEOF
        return 0

    def _ecap_init(self) -> None:
        """``vfio_ecap_init``: the extended chain; the first dword of each is virtual."""
        if not self.extended_caps:
            return
        cfg = self.pdev.cfg
        epos = PCI_CFG_SPACE_SIZE
        prev: int | None = None
        ecaps = 0
        loops = (self.size - PCI_CFG_SPACE_SIZE) // 4
        while loops and epos >= PCI_CFG_SPACE_SIZE:
            loops -= 1
            header = cfg.read(epos, 4)
            ecap = header & 0xFFFF
            length = 0
            hidden = False
            if ecap <= PCI_EXT_CAP_ID_MAX:
                length = PCI_EXT_CAP_LENGTH.get(ecap, 0)
                if length == 0xFF:
                    length = self._ext_cap_len(ecap, epos)
            if not length:
                if prev is not None:
                    epos = (header >> 20) & 0xFFC
                    val = self.vget(prev, 4) & ~(0xFFC << 20)
                    self.vset(prev, 4, val | epos << 20)
                    continue
                length = 4
                hidden = True
            self.map[epos : epos + length] = bytes([ecap & 0xFF]) * length
            self._fill(epos, length)
            if hidden:
                self.vset(epos, 4, self.vget(epos, 4) & (0xFFC << 20))
            else:
                ecaps += 1
            prev = epos
            epos = (header >> 20) & 0xFFC
        if not ecaps:
            self.vset(PCI_CFG_SPACE_SIZE, 4, 0)

    # -- the BARs (vfio_bar_fixup) ------------------------------------------------------
    def read_bar(self, pos: int, count: int) -> int:
        reg = (pos - PCI_BASE_ADDRESS_0) // 4
        mask, flags = self._masks[reg]
        dword = self.vget(PCI_BASE_ADDRESS_0 + 4 * reg, 4)
        dword = (dword & mask) | flags if mask else 0
        return (dword >> 8 * (pos % 4)) & _mask(count)

    def write_bar(self, pos: int, count: int, value: int) -> None:
        self.vset(pos, count, value)

    # -- power state and resets -----------------------------------------------------------
    def lock_and_set_power_state(self, state: int, pm: int) -> None:
        """``vfio_lock_and_set_power_state`` with the dma-buf revocation around it."""
        vdev = self.vdev
        with vdev.memory_write():
            if state >= PCI_D3HOT:
                dma_buf_move(vdev, True, "power_d3")
            set_power_state(self.pdev, state)
            if vdev.memory_enabled():
                dma_buf_move(vdev, False, "power_d0")

    def function_reset(self) -> None:
        """An FLR through the config region: revoke around it (no device here has FLR)."""
        vdev = self.vdev
        with vdev.memory_write():
            dma_buf_move(vdev, True, "flr")
            if vdev.memory_enabled():
                dma_buf_move(vdev, False, "flr")

    # -- one access -----------------------------------------------------------------------
    def _perm(self, pos: int) -> tuple[Perm, int]:
        """The table for ``pos`` and where its capability starts (``vfio_config_do_rw``)."""
        cap = self.map[pos]
        if cap == PCI_CAP_ID_INVALID:
            return UNASSIGNED_PERMS, pos
        if pos < PCI_STD_HEADER_SIZEOF:
            return CAP_PERMS[PCI_CAP_ID_BASIC], 0
        base = PCI_CFG_SPACE_SIZE if pos >= PCI_CFG_SPACE_SIZE else PCI_STD_HEADER_SIZEOF
        start = pos
        while start - 1 >= base and self.map[start - 1] == cap:  # vfio_find_cap_start
            start -= 1
        if pos >= PCI_CFG_SPACE_SIZE:
            return ECAP_PERMS.get(cap, DIRECT_RO_PERMS), start
        if cap == PCI_CAP_ID_MSI and self.msi_perm is not None:
            return self.msi_perm, start
        return CAP_PERMS[cap], start

    def read(self, pos: int, count: int) -> int:
        perm, start = self._perm(pos)
        if perm.readfn is None:
            return 0
        return perm.readfn(self, pos, count, perm, pos - start) & _mask(count)

    def write(self, pos: int, count: int, value: int) -> None:
        perm, start = self._perm(pos)
        if perm.writefn is not None:
            perm.writefn(self, pos, count, perm, pos - start, value & _mask(count))

    def _chunk(self, pos: int, count: int) -> int:
        """``vfio_pci_cap_remaining_dword`` then the largest aligned access that fits."""
        cap = self.map[pos]
        i = 1
        while (pos + i) % 4 and self.map[pos + i] == cap:
            i += 1
        count = min(count, i)
        if count >= 4 and not pos % 4:
            return 4
        if count >= 2 and not pos % 2:
            return 2
        return 1

    def rw(self, pos: int, count: int, data: bytes | None) -> bytes:
        """``vfio_pci_config_rw``: read ``count`` bytes, or write ``data``, at ``pos``."""
        if pos < 0 or pos >= self.size or pos + count > self.size:
            raise kerr(EFAULT)
        out = bytearray()
        done = 0
        while done < count:
            where = pos + done
            width = self._chunk(where, count - done)
            if data is None:
                out += self.read(where, width).to_bytes(width, "little")
            else:
                self.write(where, width, int.from_bytes(data[done : done + width], "little"))
            done += width
        return bytes(out)


def in_d3(pdev: PciDev) -> bool:
    """``pdev->current_state >= PCI_D3hot``, from the PM capability's PMCSR."""
    pm = pdev.pm_cap
    return bool(pm) and (pdev.cfg.read(pm + PCI_PM_CTRL, 2) & PCI_PM_CTRL_STATE_MASK) >= PCI_D3HOT


def set_power_state(pdev: PciDev, state: int) -> None:
    """``vfio_pci_set_power_state`` → ``pci_set_power_state`` (D0 and D3hot; a D1/D2 the
    device does not support fails there and changes nothing)."""
    pm = pdev.pm_cap
    if not pm:
        return
    pmc = pdev.cfg.read(pm + PCI_PM_PMC, 2)
    if (state == PCI_D1 and not pmc & PCI_PM_CAP_D1) or (
        state == PCI_D2 and not pmc & PCI_PM_CAP_D2
    ):
        return
    ctrl = pdev.cfg.read(pm + PCI_PM_CTRL, 2)
    pdev.pci_write_config_word(
        pm + PCI_PM_CTRL, (ctrl & ~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS)) | state
    )
