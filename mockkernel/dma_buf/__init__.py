"""The dma-buf subsystem (``drivers/dma-buf/``), in the files Linux keeps it in.

* :mod:`.core` -- ``dma-buf.c``: ``struct dma_buf``, export, fd/get/put, attach/detach,
  pin/map, invalidate, the dma-buf file, and ``DmaBufSubsystem`` (the live buffers and
  attachments of one kernel);
* :mod:`.fence` -- ``dma-fence.c`` and friends: fences, the stub, arrays, unwrap/merge;
* :mod:`.resv` -- ``dma-resv.c``: the reservation object and ``DMA_RESV_USAGE_*``;
* :mod:`.sync_file` -- ``sync_file.c``: a fence as an fd;
* :mod:`.debugfs` -- ``bufinfo``.

Drivers take these names from :mod:`mockkernel.driver`; this package re-exports what the
rest of the core and the tests import from ``mockkernel.dma_buf``.
"""

from __future__ import annotations

from .core import (
    DMA_BIDIRECTIONAL,
    DMA_FROM_DEVICE,
    DMA_TO_DEVICE,
    Attachment,
    Device,
    DmaBuf,
    DmaBufAttachOps,
    DmaBufOps,
    DmaBufSubsystem,
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
    dma_buf_init,
    dma_buf_invalidate_mappings,
    dma_buf_map_attachment,
    dma_buf_map_attachment_unlocked,
    dma_buf_pin,
    dma_buf_put,
    dma_buf_subsys,
    dma_buf_unmap_attachment,
    dma_buf_unmap_attachment_unlocked,
    dma_buf_unpin,
    is_dma_buf_file,
)
from .fence import DmaFence, DmaFenceArray, dma_fence_unwrap, dma_fence_unwrap_merge
from .resv import (
    DMA_RESV_USAGE_BOOKKEEP,
    DMA_RESV_USAGE_KERNEL,
    DMA_RESV_USAGE_READ,
    DMA_RESV_USAGE_WRITE,
    DmaResv,
    dma_resv_get_singleton,
)
from .sync_file import SyncFile, sync_file_create, sync_file_get_fence

__all__ = [
    "DMA_BIDIRECTIONAL",
    "DMA_FROM_DEVICE",
    "DMA_RESV_USAGE_BOOKKEEP",
    "DMA_RESV_USAGE_KERNEL",
    "DMA_RESV_USAGE_READ",
    "DMA_RESV_USAGE_WRITE",
    "DMA_TO_DEVICE",
    "Attachment",
    "Device",
    "DmaBuf",
    "DmaBufAttachOps",
    "DmaBufOps",
    "DmaBufSubsystem",
    "DmaFence",
    "DmaFenceArray",
    "DmaResv",
    "SgEntry",
    "SgTable",
    "SyncFile",
    "dma_buf_attach",
    "dma_buf_attach_revocable",
    "dma_buf_detach",
    "dma_buf_dynamic_attach",
    "dma_buf_export",
    "dma_buf_fd",
    "dma_buf_get",
    "dma_buf_get_pci_tph",
    "dma_buf_get_tph",
    "dma_buf_init",
    "dma_buf_invalidate_mappings",
    "dma_buf_map_attachment",
    "dma_buf_map_attachment_unlocked",
    "dma_buf_pin",
    "dma_buf_put",
    "dma_buf_subsys",
    "dma_buf_unmap_attachment",
    "dma_buf_unmap_attachment_unlocked",
    "dma_buf_unpin",
    "dma_fence_unwrap",
    "dma_fence_unwrap_merge",
    "dma_resv_get_singleton",
    "is_dma_buf_file",
    "sync_file_create",
    "sync_file_get_fence",
]
