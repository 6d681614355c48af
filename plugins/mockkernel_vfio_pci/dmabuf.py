"""``VFIO_DEVICE_FEATURE_DMA_BUF``: BAR slices exported as dma-bufs (``vfio_pci_dmabuf.c``).

DOC: the life of a vfio-pci dma-buf

1. ``feature_dma_buf`` runs the upstream GET flow, errno for errno (numbered below as
   in ``kernel.md`` section 4), and returns the new fd.  The buffer is linked into
   ``vdev.dmabufs`` under ``memory_lock`` and ``resv``; it is *born revoked* when the
   device's memory decoding is off.
2. Importers attach (``VfioPciDmaBufOps.attach``: only peer-to-peer, revocable
   importers; ``ENODEV`` while revoked) and map: the scatter list holds the bus
   addresses of the BAR slices, each entry pointing at the BAR's kernel mapping
   (``SgEntry.mem``), so a DMA into it lands in the BAR's memfd.
3. ``dma_buf_move(vdev, True)`` revokes (``PCI_COMMAND_MEMORY`` cleared, reset,
   low-power entry): under ``resv`` it sets ``revoked`` and calls the importers'
   ``invalidate_mappings``; it then waits until every mapping is unmapped.  Here
   nothing can wait, so a mapping still present afterwards is a ``kernel.warn``
   (upstream would block in ``wait_for_completion`` forever).
   ``dma_buf_move(vdev, False)`` un-revokes without notifying anyone.
4. ``dma_buf_cleanup`` (last close of the device) revokes for good and unlinks
   every buffer: the dma-buf fds stay valid, attach and map answer ``ENODEV``.
5. ``release`` (the dma-buf's last reference) unlinks it if the device still has it.
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array
from collections.abc import Callable
from errno import EFAULT, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, EOVERFLOW
from typing import TYPE_CHECKING

from mockkernel.driver import (
    DMA_RESV_USAGE_BOOKKEEP,
    PAGE_SIZE,
    Attachment,
    DmaBuf,
    DmaBufOps,
    File,
    KernelBug,
    PciBar,
    SgEntry,
    SgTable,
    TracePoint,
    copy_from_user,
    dma_buf_attach_revocable,
    dma_buf_export,
    dma_buf_fd,
    dma_buf_invalidate_mappings,
    dma_buf_put,
    kerr,
)
from mockkernel.uapi.linux.vfio import VFIO_DEVICE_FEATURE_GET, VFIO_PCI_ROM_REGION_INDEX

from .core import vfio_check_feature

if TYPE_CHECKING:
    from .core import VfioPciDevice

__all__ = [
    "EXP_NAME",
    "KMALLOC_MAX_SIZE",
    "VfioPciDmaBuf",
    "VfioPciDmaBufOps",
    "dma_buf_cleanup",
    "dma_buf_move",
    "feature_dma_buf",
    "make_dmabuf_ops",
]

trace_vfio_pci_dma_buf_export = TracePoint(
    "vfio_pci.dma_buf_export",
    *("bdf", "dmabuf", "region", "nr_ranges", "size", "revoked", "tph"),
)
trace_vfio_pci_dma_buf_revoke = TracePoint(
    "vfio_pci.dma_buf_revoke", "bdf", "dmabuf", "reason", "attachments"
)
trace_vfio_pci_dma_buf_unrevoke = TracePoint(
    "vfio_pci.dma_buf_unrevoke", "bdf", "dmabuf", "reason", "attachments"
)
trace_vfio_pci_dma_buf_cleanup = TracePoint("vfio_pci.dma_buf_cleanup", "bdf", "dmabuf")

#: ``exp_name`` of the buffers: ``KBUILD_MODNAME`` of vfio_pci_dmabuf.c (real 7.2's fdinfo)
EXP_NAME = "vfio_pci_core"
#: ``memdup_array_user`` is a kmalloc: more than this many bytes of ranges is ENOMEM
#: (x86-64: 1 << (MAX_PAGE_ORDER + PAGE_SHIFT)); real 7.2 gave ENOMEM for 262145 ranges.
KMALLOC_MAX_SIZE = 1 << 22
_HDR = struct.Struct("<IIII")  # struct vfio_device_feature_dma_buf, 16 bytes
_RANGE = 16  # struct vfio_region_dma_range
_U64 = (1 << 64) - 1
_DMA_IOVA_USE_SWIOTLB = 1 << 63
_PAGE_MASK = PAGE_SIZE - 1


class VfioPciDmaBuf:
    """``struct vfio_pci_dma_buf``: the exporter's private data of one buffer."""

    __slots__ = (
        "bar",
        "dmabuf",
        "lengths",
        "nr_mapped",
        "nr_ranges",
        "offsets",
        "ph",
        "region_index",
        "revoked",
        "size",
        "st",
        "steering_tag",
        "tph_flags",
        "tph_present",
        "vdev",
        "xst",
    )

    def __init__(
        self,
        vdev: VfioPciDevice,
        region_index: int,
        bar: PciBar,
        offsets: array[int],
        lengths: array[int],
        size: int,
    ) -> None:
        self.vdev: VfioPciDevice | None = vdev  # NULL once the device cleaned up
        self.region_index = region_index
        self.bar = bar
        self.offsets = offsets  # the phys_vec: offsets in the BAR ...
        self.lengths = lengths  # ... and lengths
        self.nr_ranges = len(offsets)
        self.size = size
        self.revoked = False
        self.nr_mapped = 0  # live scatter lists (the kref's extra counts)
        self.dmabuf: DmaBuf
        # TPH, v7-v11 (profile tph-v11): both namespaces with their valid bits
        self.tph_flags = 0
        self.st = 0
        self.xst = 0
        self.ph = 0
        # TPH, v1/v2: one tag and a present bit (ph shared with the above)
        self.tph_present = False
        self.steering_tag = 0

    def __repr__(self) -> str:
        bdf = self.vdev.pdev.bdf if self.vdev is not None else "-"
        return f"<VfioPciDmaBuf {bdf} bar{self.region_index} size={self.size}>"


class VfioPciDmaBufOps(DmaBufOps):
    """``vfio_pci_dmabuf_ops``: no pin/unpin, no mmap, no cpu-access ops, as upstream.

    The TPH op is the uAPI profile's (``get_pci_tph`` or ``get_tph``, or none): given
    when the table is made, as a designated initializer names it."""

    def __init__(
        self,
        *,
        get_pci_tph: Callable[[DmaBuf, bool], tuple[int, int]] | None = None,
        get_tph: Callable[[DmaBuf, int], tuple[int, int]] | None = None,
    ) -> None:
        self.get_pci_tph = get_pci_tph
        self.get_tph = get_tph

    def attach(self, dmabuf: DmaBuf, attach: Attachment) -> None:
        priv: VfioPciDmaBuf = dmabuf.priv
        if not attach.peer2peer:
            raise kerr(EOPNOTSUPP)
        if priv.revoked:
            raise kerr(ENODEV)
        if not dma_buf_attach_revocable(attach):
            raise kerr(EOPNOTSUPP)

    def map_dma_buf(self, attach: Attachment, direction: int) -> SgTable:
        dmabuf = attach.dmabuf
        dmabuf.resv.assert_held()
        priv: VfioPciDmaBuf = dmabuf.priv
        if priv.revoked:
            raise kerr(ENODEV)
        bar = priv.bar
        start = bar.bus_address
        mem = bar.map
        sgt = SgTable(
            [
                SgEntry(start + off, ln, mem, off)
                for off, ln in zip(priv.offsets, priv.lengths, strict=True)
            ]
        )
        priv.nr_mapped += 1
        return sgt

    def unmap_dma_buf(self, attach: Attachment, sgt: SgTable, direction: int) -> None:
        priv: VfioPciDmaBuf = attach.dmabuf.priv
        if priv.nr_mapped <= 0:
            raise KernelBug(f"unmap of {priv!r} that has no mapping")
        priv.nr_mapped -= 1
        sgt.entries.clear()

    def release(self, dmabuf: DmaBuf) -> None:
        priv: VfioPciDmaBuf = dmabuf.priv
        vdev = priv.vdev
        if vdev is not None:
            vdev.memory_lock.down_write()
            try:
                vdev.dmabufs.pop(dmabuf.id, None)
            finally:
                vdev.memory_lock.up_write()
            priv.vdev = None


def make_dmabuf_ops(tph_ops: dict[str, Callable[..., tuple[int, int]]]) -> VfioPciDmaBufOps:
    """The ops table of one uAPI profile: the shared ops plus the profile's TPH op."""
    for name in tph_ops:
        if name not in ("get_pci_tph", "get_tph"):
            raise ValueError(f"not a TPH dma-buf op: {name!r}")
    return VfioPciDmaBufOps(**tph_ops)


# -- range validation: whole-array checks in C, a per-range walk only to name the failure --
_LOW_NIBBLE = bytes(i & 0x0F for i in range(256))


def _split(raw: bytes, nr: int) -> tuple[array[int], array[int]]:
    """The offsets and lengths of the first ``nr`` ``vfio_region_dma_range`` entries."""
    words = array("Q")
    words.frombytes(raw[: nr * _RANGE])
    if sys.byteorder != "little":
        words.byteswap()
    return words[0::2], words[1::2]


def _validate(raw: bytes, offsets: array[int], lengths: array[int]) -> int:
    """Step 7 (every failure is EINVAL, so the first failing range needs no search)."""
    nr = len(offsets)
    # page alignment of every u64: its low byte is 0 and its second byte's low nibble too
    low = raw[0 : nr * _RANGE : 8]
    second = raw[1 : nr * _RANGE : 8].translate(_LOW_NIBBLE)
    if 0 in lengths or low.count(0) != 2 * nr or second.count(0) != 2 * nr:
        raise kerr(EINVAL)
    total = sum(lengths)
    if total > _U64 or total & _DMA_IOVA_USE_SWIOTLB:  # size_t overflow; bit 63
        raise kerr(EINVAL)
    return total


def _fill_phys_vec(bar: PciBar, offsets: array[int], lengths: array[int]) -> None:
    """Step 9, ``vfio_pci_core_fill_phys_vec``: every range inside the BAR."""
    start = bar.bus_address
    max_addr = start + bar.size
    if start + max(map(operator.add, offsets, lengths)) <= max_addr:
        return  # all inside; max_addr < 2**64, so nothing overflowed either
    for off, ln in zip(offsets, lengths, strict=True):  # the first failing range decides
        paddr = start + off
        end = paddr + ln
        if paddr > _U64 or end > _U64:
            raise kerr(EOVERFLOW)
        if end > max_addr:
            raise kerr(EINVAL)


# -- the GET flow ---------------------------------------------------------------------------
def feature_dma_buf(vdev: VfioPciDevice, flags: int, arg: int, argsz: int) -> int:
    """``vfio_pci_core_feature_dma_buf``; returns the new fd (or 0 for PROBE)."""
    # 1. no pci_ops->get_dmabuf_phys: EOPNOTSUPP, before the flags (PROBE fails too)
    if not vdev.get_dmabuf_phys:
        raise kerr(EOPNOTSUPP)
    # 2. GET only, 16-byte header
    if vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET, _HDR.size) != 1:
        return 0
    # 3.
    region_index, open_flags, dflags, nr_ranges = _HDR.unpack(copy_from_user(arg, _HDR.size))
    profile = vdev.profile
    tph_supplied = bool(dflags & profile.dma_buf_tph_flag)
    # 4.
    if not nr_ranges or dflags & ~profile.dma_buf_flags:
        raise kerr(EINVAL)
    # 5. the region is the BAR number; ROM and above, or a BAR that is not there: ENODEV
    pdev = vdev.pdev
    bar = pdev.bars.get(region_index) if region_index < VFIO_PCI_ROM_REGION_INDEX else None
    if bar is None:
        raise kerr(ENODEV)
    # 6. memdup_array_user: a kmalloc of the whole array (u32 count, as v1 computed it)
    nr_entries = (nr_ranges + (1 if tph_supplied else 0)) & 0xFFFFFFFF
    nbytes = nr_entries * _RANGE
    if nbytes > KMALLOC_MAX_SIZE:
        raise kerr(ENOMEM)
    if nr_entries < nr_ranges:
        # tph-v1's "nr_ranges + 1" wrapped to 0: memdup of 0 bytes, then the ranges are
        # read from ZERO_SIZE_PTR -- an oops on a real kernel.
        vdev.kernel.warn(
            f"vfio-pci {pdev.bdf}: {profile.name} nr_ranges + 1 wrapped to 0: "
            "ZERO_SIZE_PTR dereference"
        )
        raise kerr(EFAULT)
    raw = copy_from_user(arg + _HDR.size, nbytes)
    offsets, lengths = _split(raw, nr_ranges)
    # 7. validate_dmabuf_input: each range page aligned and non-empty; the total a size_t
    total = _validate(raw, offsets, lengths)
    # 8. allocations cannot fail here.
    # 9. get_dmabuf_phys: a p2p provider for the BAR, then every range inside the BAR
    if not bar.p2pdma:
        raise kerr(EINVAL)
    _fill_phys_vec(bar, offsets, lengths)
    # 10. the device registration is always there while an fd is open.
    priv = VfioPciDmaBuf(vdev, region_index, bar, offsets, lengths, total)
    if tph_supplied:  # tph-v1: entries[nr_ranges] is a struct vfio_region_dma_tph
        tag, ph = struct.unpack_from("<HB", raw, nr_ranges * _RANGE)
        priv.steering_tag = tag
        priv.ph = ph
        priv.tph_present = True
    # 11.
    kernel = vdev.kernel
    dmabuf = dma_buf_export(kernel, vdev.dmabuf_ops, total, priv, EXP_NAME, open_flags)
    priv.dmabuf = dmabuf
    # 12. born revoked when memory decoding is off
    with vdev.memory_write(), dmabuf.resv:
        priv.revoked = not vdev.memory_enabled()
        vdev.dmabufs[dmabuf.id] = priv
    trace_vfio_pci_dma_buf_export(
        kernel.tracer, pdev.bdf, dmabuf.id, region_index, nr_ranges, total, priv.revoked,
        tph_supplied,
    )  # fmt: skip
    # 13.
    try:
        return dma_buf_fd(dmabuf, open_flags)
    except BaseException:
        dma_buf_put(dmabuf)
        raise


# -- revocation -----------------------------------------------------------------------------
def _wait_for_unmap(vdev: VfioPciDevice, priv: VfioPciDmaBuf) -> None:
    """``kref_put`` + ``wait_for_completion``: every importer must have unmapped by now."""
    if priv.nr_mapped:
        vdev.kernel.warn(
            f"vfio-pci {vdev.pdev.bdf}: revoking dma-buf #{priv.dmabuf.id} waits forever: "
            f"{priv.nr_mapped} mapping(s) still present after invalidate_mappings"
        )


def dma_buf_move(vdev: VfioPciDevice, revoked: bool, reason: str) -> None:
    """``vfio_pci_dma_buf_move``: revoke or un-revoke every live buffer (memory_lock held)."""
    vdev.memory_lock.assert_write_held()
    kernel = vdev.kernel
    tracer = kernel.tracer
    for priv in list(vdev.dmabufs.values()):
        file = priv.dmabuf.file
        if file.released:  # get_file_active failed: the buffer is being released
            continue
        file.get()
        try:
            if priv.revoked == revoked:
                continue
            dmabuf = priv.dmabuf
            with dmabuf.resv:
                priv.revoked = revoked
                if revoked:
                    dma_buf_invalidate_mappings(dmabuf)
                    dmabuf.resv.wait(DMA_RESV_USAGE_BOOKKEEP)
            if revoked:
                _wait_for_unmap(vdev, priv)
            tp = trace_vfio_pci_dma_buf_revoke if revoked else trace_vfio_pci_dma_buf_unrevoke
            tp(tracer, vdev.pdev.bdf, dmabuf.id, reason, len(dmabuf.attachments))
        finally:
            vdev.defer_fput(file)


def dma_buf_cleanup(vdev: VfioPciDevice) -> None:
    """``vfio_pci_dma_buf_cleanup``: the last device fd is gone; revoke and unlink for good."""
    tracer = vdev.kernel.tracer
    with vdev.memory_write():
        dma_buf_move(vdev, True, "close")
        for priv in list(vdev.dmabufs.values()):
            file = priv.dmabuf.file
            if file.released:
                continue
            file.get()
            with priv.dmabuf.resv:
                del vdev.dmabufs[priv.dmabuf.id]
                priv.vdev = None
                priv.revoked = True
            trace_vfio_pci_dma_buf_cleanup(tracer, vdev.pdev.bdf, priv.dmabuf.id)
            vdev.defer_fput(file)


def dma_buf_files(vdev: VfioPciDevice) -> list[File]:
    """The files of the device's live buffers (for tests and debugging)."""
    return [p.dmabuf.file for p in vdev.dmabufs.values() if not p.dmabuf.file.released]
