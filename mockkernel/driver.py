"""The driver API: everything a plugin (exporter, importer, device) may use.

Bundled drivers import from here, from :mod:`mockkernel.uapi` and
``mockkernel.hookimpl`` only -- the same surface a third-party plugin has.
It reads like the kernel headers a driver includes: ``linux/fs.h``,
``linux/dma-buf.h``, ``linux/uaccess.h``, ``linux/mm.h``, ``linux/pci.h``.
"""

from __future__ import annotations

from .dma_buf import (
    DMA_BIDIRECTIONAL,
    DMA_FROM_DEVICE,
    DMA_TO_DEVICE,
    Attachment,
    Device,
    DmaBuf,
    DmaBufAttachOps,
    DmaBufOps,
    DmaFence,
    SgEntry,
    SgTable,
    dma_buf_attach,
    dma_buf_attach_revocable,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_export,
    dma_buf_fd,
    dma_buf_get,
    dma_buf_get_pci_tph,
    dma_buf_get_tph,
    dma_buf_invalidate_mappings,
    dma_buf_map_attachment,
    dma_buf_map_attachment_unlocked,
    dma_buf_pin,
    dma_buf_put,
    dma_buf_unmap_attachment,
    dma_buf_unmap_attachment_unlocked,
    dma_buf_unpin,
    is_dma_buf_file,
)
from .errors import KernelBug, kerr
from .fs import FMODE_READ, FMODE_WRITE, File, FileOperations, Inode, generic_file_llseek
from .kernel import DriverRegistry, Kernel, PciDriver
from .locks import Mutex, RwSem
from .mm import PAGE_SIZE, KernelMap, Vma
from .pci import (
    PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH,
    PCI_EXP_DEVCAP2_TPH_COMP_NONE,
    PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY,
    PciBar,
    PciDev,
    pcie_tph_completer_type,
)
from .process import Process
from .realfd import hide, kernel_dup
from .uaccess import (
    copy_from_user,
    copy_to_user,
    get_user_struct,
    get_user_u32,
    put_user_u32,
    strndup_user,
)

__all__ = [
    "DMA_BIDIRECTIONAL",
    "DMA_FROM_DEVICE",
    "DMA_TO_DEVICE",
    "FMODE_READ",
    "FMODE_WRITE",
    "PAGE_SIZE",
    "PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH",
    "PCI_EXP_DEVCAP2_TPH_COMP_NONE",
    "PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY",
    "Attachment",
    "Device",
    "DmaBuf",
    "DmaBufAttachOps",
    "DmaBufOps",
    "DmaFence",
    "DriverRegistry",
    "File",
    "FileOperations",
    "Inode",
    "Kernel",
    "KernelBug",
    "KernelMap",
    "Mutex",
    "PciBar",
    "PciDev",
    "PciDriver",
    "Process",
    "RwSem",
    "SgEntry",
    "SgTable",
    "Vma",
    "copy_from_user",
    "copy_to_user",
    "dma_buf_attach",
    "dma_buf_attach_revocable",
    "dma_buf_detach",
    "dma_buf_dynamic_attach",
    "dma_buf_export",
    "dma_buf_fd",
    "dma_buf_get",
    "dma_buf_get_pci_tph",
    "dma_buf_get_tph",
    "dma_buf_invalidate_mappings",
    "dma_buf_map_attachment",
    "dma_buf_map_attachment_unlocked",
    "dma_buf_pin",
    "dma_buf_put",
    "dma_buf_unmap_attachment",
    "dma_buf_unmap_attachment_unlocked",
    "dma_buf_unpin",
    "generic_file_llseek",
    "get_user_struct",
    "get_user_u32",
    "hide",
    "is_dma_buf_file",
    "kernel_dup",
    "kerr",
    "pcie_tph_completer_type",
    "put_user_u32",
    "strndup_user",
]
