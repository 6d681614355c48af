"""TPH on vfio-pci dma-bufs: the ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` handlers and dma-buf ops.

PROPOSED, NOT MERGED (the "vfio dma-buf TPH" series, Zhiping Zhang).  Each function
is the adapter of one revision; :mod:`.profiles` says which a profile uses.

* ``feature_dma_buf_tph_v11``: the v9-v11 SET handler, in the order of kernel.md
  section 5 (eleven steps, the completer check first so PROBE fails too).
* ``get_pci_tph``: the v8+ dma-buf op; ``EOPNOTSUPP`` unless the requested
  namespace (8-bit ST or 16-bit extended ST) was set.  The value is valid only
  until the exporter's next ``invalidate_mappings``: importers re-query on a new
  mapping.
* ``feature_dma_buf_tph_v2`` and ``get_tph``: v2's 8-byte struct with one 16-bit
  tag, and the ``get_tph(st_width)`` op of v1/v2 (``EINVAL`` if the tag does not
  fit the importer's width).
"""

from __future__ import annotations

import ctypes
from errno import EINVAL, EOPNOTSUPP

from mockkernel.driver import (
    PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH,
    PCI_EXP_DEVCAP2_TPH_COMP_NONE,
    DmaBuf,
    copy_from_user,
    current_task,
    dma_buf_get,
    dma_buf_put,
    kerr,
    pcie_tph_completer_type,
)
from mockkernel.uapi.linux.vfio import VFIO_DEVICE_FEATURE_SET
from mockkernel.uapi.linux.vfio_tph import (
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
    vfio_device_feature_dma_buf_tph,
    vfio_device_feature_dma_buf_tph_v2,
)

from .core import VfioPciDevice, vfio_check_feature
from .dmabuf import VfioPciDmaBuf, VfioPciDmaBufOps

__all__ = [
    "feature_dma_buf_tph_v2",
    "feature_dma_buf_tph_v11",
    "get_pci_tph",
    "get_tph",
]

_TPH_FLAGS = VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT
_V11_SIZE = ctypes.sizeof(vfio_device_feature_dma_buf_tph)  # 12
_V2_SIZE = ctypes.sizeof(vfio_device_feature_dma_buf_tph_v2)  # 8


def _trace(vdev: VfioPciDevice, priv: VfioPciDmaBuf, **fields: int) -> None:
    # (the fields vary with the uAPI profile: Tracer.emit, a no-op while off)
    tracer = vdev.kernel.tracer
    if tracer.enabled:  # (the names are work: none while off)
        tracer.emit(
            "vfio_pci.dma_buf_tph_set",
            bdf=vdev.pdev.bdf,
            dmabuf=priv.dmabuf.id,
            uapi=vdev.profile.name,
            **fields,
        )


def _own_dmabuf(vdev: VfioPciDevice, dmabuf: DmaBuf) -> VfioPciDmaBuf:
    """Steps 8-9: a vfio-pci dma-buf (ops check) of this very device (``priv->vdev``)."""
    if not isinstance(dmabuf.ops, VfioPciDmaBufOps):
        raise kerr(EINVAL)
    priv: VfioPciDmaBuf = dmabuf.priv
    if priv.vdev is not vdev:
        raise kerr(EINVAL)
    return priv


def feature_dma_buf_tph_v11(vdev: VfioPciDevice, flags: int, arg: int, argsz: int) -> int:
    """v9-v11 ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (SET only, 12 bytes, full replacement)."""
    pdev = vdev.pdev
    completer = pcie_tph_completer_type(pdev)
    # 1. no TPH completer: EOPNOTSUPP, before check_feature (PROBE fails too)
    if completer == PCI_EXP_DEVCAP2_TPH_COMP_NONE:
        raise kerr(EOPNOTSUPP)
    # 2.
    if vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, _V11_SIZE) != 1:
        return 0
    # 3.
    t = vfio_device_feature_dma_buf_tph.from_buffer_copy(copy_from_user(arg, _V11_SIZE))
    # 4. 5.
    if t.flags & ~_TPH_FLAGS or t.ph & ~3:
        raise kerr(EINVAL)
    # 6. an extended tag needs an extended-TPH completer
    if t.flags & VFIO_DMA_BUF_TPH_ST_EXT and completer != PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH:
        raise kerr(EOPNOTSUPP)
    # 7. EBADF / EINVAL
    dmabuf = dma_buf_get(t.dmabuf_fd, current_task(vdev.kernel))
    try:
        # 8. 9.
        priv = _own_dmabuf(vdev, dmabuf)
        # 10. 11. (dma_resv_lock_interruptible cannot be interrupted here)
        with dmabuf.resv:
            priv.tph_flags = t.flags
            priv.st = t.steering_tag
            priv.xst = t.steering_tag_ext
            priv.ph = t.ph
        _trace(vdev, priv, flags=t.flags, st=t.steering_tag, xst=t.steering_tag_ext, ph=t.ph)
    finally:
        dma_buf_put(dmabuf)
    return 0


def feature_dma_buf_tph_v2(vdev: VfioPciDevice, flags: int, arg: int, argsz: int) -> int:
    """v2 ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH``: ``{s32 fd; u16 steering_tag; u8 ph; u8 reserved}``.

    Order inferred from the v2 description (no completer check; ``reserved != 0`` is
    ``EINVAL``; the buffer is looked up in ``vdev->dmabufs`` under ``memory_lock``,
    where the values are stored and the present flag set).
    """
    if vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, _V2_SIZE) != 1:
        return 0
    t = vfio_device_feature_dma_buf_tph_v2.from_buffer_copy(copy_from_user(arg, _V2_SIZE))
    if t.reserved:
        raise kerr(EINVAL)
    dmabuf = dma_buf_get(t.dmabuf_fd, current_task(vdev.kernel))
    try:
        if not isinstance(dmabuf.ops, VfioPciDmaBufOps):
            raise kerr(EINVAL)
        with vdev.memory_write():
            priv = vdev.dmabufs.get(dmabuf.id)
            if priv is None or priv.dmabuf is not dmabuf:
                raise kerr(EINVAL)
            priv.steering_tag = t.steering_tag
            priv.ph = t.ph
            priv.tph_present = True
        _trace(vdev, priv, st=t.steering_tag, ph=t.ph)
    finally:
        dma_buf_put(dmabuf)
    return 0


def get_pci_tph(dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
    """v8+ ``dma_buf_ops.get_pci_tph``: (xst or st, ph); resv held (the core asserts it)."""
    priv: VfioPciDmaBuf = dmabuf.priv
    if extended:
        if not priv.tph_flags & VFIO_DMA_BUF_TPH_ST_EXT:
            raise kerr(EOPNOTSUPP)
        return priv.xst, priv.ph
    if not priv.tph_flags & VFIO_DMA_BUF_TPH_ST:
        raise kerr(EOPNOTSUPP)
    return priv.st, priv.ph


def get_tph(dmabuf: DmaBuf, st_width: int) -> tuple[int, int]:
    """v1/v2 ``dma_buf_ops.get_tph``: ``EOPNOTSUPP`` if none set, ``EINVAL`` if too wide."""
    priv: VfioPciDmaBuf = dmabuf.priv
    if not priv.tph_present:
        raise kerr(EOPNOTSUPP)
    if st_width < 16 and priv.steering_tag > (1 << st_width) - 1:
        raise kerr(EINVAL)
    return priv.steering_tag, priv.ph
