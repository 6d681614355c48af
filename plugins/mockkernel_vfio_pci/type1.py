"""The type1 IOMMU backend of a container (``vfio_iommu_type1.c``), as far as userspace sees it.

After ``VFIO_SET_IOMMU`` a container passes every command it does not know to its
backend.  This one answers ``VFIO_IOMMU_GET_INFO`` (page sizes and the capability
chain: migration, DMA-mapping budget, usable IOVA ranges), ``VFIO_IOMMU_MAP_DMA``
and ``VFIO_IOMMU_UNMAP_DMA`` with upstream's checks and errnos, and ``ENOTTY``
otherwise.  The numbers are those of the real-Linux guest (intel-iommu, 39-bit
address width, the MSI window reserved), which Linux 7.2 printed:

* ``iova_pgsizes`` ``0x40201000`` (4 KiB, 2 MiB, 1 GiB); ``argsz`` needed 120;
* caps at 24: MIGRATION {flags 0, pgsize_bitmap 0x1000, max_dirty_bitmap_size
  0x10000000}, at 56: DMA_AVAIL {65535 minus the mappings}, at 72: IOVA_RANGE
  {[0, 0xfedfffff], [0xfef00000, 0x7fffffffff]}.

Mappings are bookkeeping only: ``vaddr`` must be readable user memory (``EFAULT``),
nothing is pinned, and no device DMA goes through them.
"""

from __future__ import annotations

import struct
from errno import EEXIST, EINVAL, ENOSPC, ENOTTY, EOVERFLOW
from typing import Final

from mockkernel.driver import copy_from_user, copy_to_user, kerr
from mockkernel.uapi.linux.vfio import (
    VFIO_DMA_MAP_FLAG_READ,
    VFIO_DMA_MAP_FLAG_VADDR,
    VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_DMA_UNMAP_FLAG_ALL,
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
    VFIO_DMA_UNMAP_FLAG_VADDR,
    VFIO_IOMMU_GET_INFO,
    VFIO_IOMMU_INFO_CAPS,
    VFIO_IOMMU_INFO_PGSIZES,
    VFIO_IOMMU_MAP_DMA,
    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
    VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
    VFIO_IOMMU_UNMAP_DMA,
    VFIO_TYPE1v2_IOMMU,
)

__all__ = ["IOVA_RANGES", "PGSIZE_BITMAP", "Type1Iommu"]

PGSIZE_BITMAP: Final = 0x40201000
IOVA_RANGES: Final = ((0x0, 0xFEDFFFFF), (0xFEF00000, 0x7F_FFFF_FFFF))
DMA_ENTRY_LIMIT: Final = 0xFFFF  # module parameter dma_entry_limit (U16_MAX)
DIRTY_BITMAP_SIZE_MAX: Final = 0x10000000
_INFO = struct.Struct("<IIQII")  # struct vfio_iommu_type1_info, 24 bytes
_U64 = (1 << 64) - 1


class Type1Iommu:
    """The ``struct vfio_iommu`` of one container."""

    def __init__(self, iommu_type: int) -> None:
        self.v2 = iommu_type == VFIO_TYPE1v2_IOMMU
        self.dmas: dict[int, tuple[int, int]] = {}  # iova -> (size, vaddr)

    @property
    def dma_avail(self) -> int:
        return DMA_ENTRY_LIMIT - len(self.dmas)

    def ioctl(self, cmd: int, arg: int) -> int:
        if cmd == VFIO_IOMMU_GET_INFO:
            return self.get_info(arg)
        if cmd == VFIO_IOMMU_MAP_DMA:
            return self.map_dma(arg)
        if cmd == VFIO_IOMMU_UNMAP_DMA:
            return self.unmap_dma(arg)
        raise kerr(ENOTTY)

    # -- VFIO_IOMMU_GET_INFO --------------------------------------------------------------
    def _caps(self) -> bytes:
        """The capability chain, offsets relative to the start of the info struct."""
        base = _INFO.size
        migration = struct.pack(
            "<HHIIIQQ",
            VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
            1,
            0,
            0,
            0,
            0x1000,
            DIRTY_BITMAP_SIZE_MAX,
        )
        avail = struct.pack("<HHIII", VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0, self.dma_avail, 0)
        iova = struct.pack(
            "<HHIII", VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0, len(IOVA_RANGES), 0
        )
        iova += b"".join(struct.pack("<QQ", lo, hi) for lo, hi in IOVA_RANGES)
        chain = [migration, avail, iova]
        out = bytearray()
        for i, raw in enumerate(chain):
            cap = bytearray(raw)
            nxt = base + len(out) + len(cap) if i + 1 < len(chain) else 0
            struct.pack_into("<I", cap, 4, nxt)
            out += cap
        return bytes(out)

    def get_info(self, arg: int) -> int:
        argsz, _flags, _pgsizes = struct.unpack("<IIQ", copy_from_user(arg, 16))
        if argsz < 16:
            raise kerr(EINVAL)
        minsz = min(argsz, _INFO.size)
        caps = self._caps()
        flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS
        cap_offset = 0
        if argsz < _INFO.size + len(caps):
            argsz = _INFO.size + len(caps)
        else:
            copy_to_user(arg + _INFO.size, caps)
            cap_offset = _INFO.size
        info = _INFO.pack(argsz, flags, PGSIZE_BITMAP, cap_offset, 0)
        copy_to_user(arg, info[:minsz])
        return 0

    # -- VFIO_IOMMU_MAP_DMA / UNMAP_DMA ---------------------------------------------------
    def _find(self, iova: int, size: int) -> int | None:
        """``vfio_find_dma``: a mapping overlapping ``[iova, iova + size)``."""
        for start, (length, _vaddr) in self.dmas.items():
            if start < iova + size and iova < start + length:
                return start
        return None

    def map_dma(self, arg: int) -> int:
        argsz, flags, vaddr, iova, size = struct.unpack("<IIQQQ", copy_from_user(arg, 32))
        mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR
        if argsz < 32 or flags & ~mask:
            raise kerr(EINVAL)
        prot = flags & (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
        set_vaddr = bool(flags & VFIO_DMA_MAP_FLAG_VADDR)
        if bool(prot) == set_vaddr:
            raise kerr(EINVAL)
        pgsize = PGSIZE_BITMAP & -PGSIZE_BITMAP
        if not size or (size | iova | vaddr) & (pgsize - 1):
            raise kerr(EINVAL)
        if iova + size - 1 > _U64 or vaddr + size - 1 > _U64:
            raise kerr(EOVERFLOW)  # check_add_overflow: no IOVA or vaddr wrap
        existing = self._find(iova, size)
        if set_vaddr:
            if existing is None or existing != iova or self.dmas[iova][0] != size:
                raise kerr(EINVAL)
            self.dmas[iova] = (size, vaddr)
            return 0
        if existing is not None:
            raise kerr(EEXIST)
        if not self.dma_avail:
            raise kerr(ENOSPC)
        if not any(lo <= iova and iova + size - 1 <= hi for lo, hi in IOVA_RANGES):
            raise kerr(EINVAL)
        # vfio_pin_pages_remote: the first and the last page must be user memory
        copy_from_user(vaddr, 1)
        copy_from_user(vaddr + size - 1, 1)
        self.dmas[iova] = (size, vaddr)
        return 0

    def unmap_dma(self, arg: int) -> int:
        raw = bytearray(copy_from_user(arg, 24))
        argsz, flags, iova, size = struct.unpack_from("<IIQQ", raw)
        mask = (
            VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
            | VFIO_DMA_UNMAP_FLAG_ALL
            | VFIO_DMA_UNMAP_FLAG_VADDR
        )
        if argsz < 24 or flags & ~mask:
            raise kerr(EINVAL)
        if flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP:
            raise kerr(EINVAL)  # dirty tracking is not started in this model
        pgsize = PGSIZE_BITMAP & -PGSIZE_BITMAP
        if flags & VFIO_DMA_UNMAP_FLAG_ALL:
            if iova or size:
                raise kerr(EINVAL)
            end = _U64 + 1
        else:
            if not size or iova & (pgsize - 1) or size & (pgsize - 1):
                raise kerr(EINVAL)
            end = iova + size
            if end - 1 > _U64:
                raise kerr(EOVERFLOW)  # check_add_overflow(iova, size - 1)
            if self.v2:  # no unmapping part of a mapping
                first = self._find(iova, 1)
                if first is not None and first != iova:
                    raise kerr(EINVAL)
                last = self._find(end - 1, 1)
                if last is not None and last + self.dmas[last][0] != end:
                    raise kerr(EINVAL)
        unmapped = 0
        for start in sorted(self.dmas):
            length, _vaddr = self.dmas[start]
            if iova <= start and start + length <= end:
                if not flags & VFIO_DMA_UNMAP_FLAG_VADDR:
                    del self.dmas[start]
                unmapped += length
        struct.pack_into("<Q", raw, 16, unmapped)
        copy_to_user(arg, bytes(raw))
        return 0
