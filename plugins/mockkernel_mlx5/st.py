"""Steering-tag indexes (``drivers/net/ethernet/mellanox/mlx5/core/lib/st.c``).

An mkey does not carry a steering tag, it carries an *index*: into the TPH
capability's ST table (table mode), or -- when the device has no table (location
NONE) -- the tag itself (direct mode).  Index 0 is
``MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX``: never handed out in table mode.

* :meth:`Mlx5St.create` -- ``mlx5_st_create``: needs the ``mkey_pcie_tph`` capability
  and a TPH requester; table mode needs >= 2 entries; both modes
  ``pcie_enable_tph(DS)``.  Any failure: no ST support (``None``).
* :meth:`Mlx5St.alloc_index` -- ``mlx5_st_alloc_index`` (DMAH): the CPU's tag from
  the root port's ``_DSM`` (``pcie_tph_get_cpu_st``), then :meth:`alloc_index_by_tag`.
* :meth:`Mlx5St.alloc_index_by_tag` -- the TPH series' helper: the entry with the same
  tag gets one more reference, or the lowest free index in ``[1, size-1]`` is written
  with ``pcie_tph_set_st_entry`` (``EBUSY`` when the table is full).
* :meth:`Mlx5St.get_index` / :meth:`dealloc_index` -- a reference more / less; the
  entry is forgotten at 0 (config space is left as it was); an unknown index is
  ``EINVAL``.  Direct mode keeps no state.
"""

from __future__ import annotations

import threading
from errno import EBUSY, EINVAL

from mockkernel.driver import (
    PCI_TPH_LOC_NONE,
    PCI_TPH_ST_DS_MODE,
    PciDev,
    kerr,
    pcie_enable_tph,
    pcie_tph_get_cpu_st,
    pcie_tph_get_st_table_loc,
    pcie_tph_get_st_table_size,
    pcie_tph_set_st_entry,
)
from mockkernel.uapi.linux.pci_regs import PCI_TPH_BASE_SIZEOF

__all__ = ["MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX", "Mlx5St"]

MLX5_MKC_PCIE_TPH_NO_STEERING_TAG_INDEX = 0


class Mlx5St:
    """``struct mlx5_st`` of one PCI function."""

    def __init__(self, pdev: PciDev, direct_mode: bool, size: int) -> None:
        self.pdev = pdev
        self.direct_mode = direct_mode
        self.size = size  # table entries (0 in direct mode)
        self.lock = threading.Lock()
        self.entries: dict[int, list[int]] = {}  # index -> [tag, refcount]

    def __repr__(self) -> str:
        mode = "direct" if self.direct_mode else f"table[{self.size}]"
        return f"<Mlx5St {self.pdev.bdf} {mode} used={sorted(self.entries)}>"

    @classmethod
    def create(cls, pdev: PciDev, mkey_pcie_tph: bool = True) -> Mlx5St | None:
        if not mkey_pcie_tph or not pdev.tph_cap:
            return None
        direct = pcie_tph_get_st_table_loc(pdev) == PCI_TPH_LOC_NONE
        size = 0
        if not direct:
            size = pcie_tph_get_st_table_size(pdev)
            if size < 2:  # entry 0 is reserved for "no TPH"
                return None
        try:
            pcie_enable_tph(pdev, PCI_TPH_ST_DS_MODE)
        except OSError:
            return None  # the OS does not support ST here
        return cls(pdev, direct, size)

    def alloc_index(self, mem_type: int, cpu_uid: int) -> int:
        """``mlx5_st_alloc_index``: an index for the steering tag of ``cpu_uid``'s memory."""
        tag = pcie_tph_get_cpu_st(self.pdev, mem_type, cpu_uid)
        return self.alloc_index_by_tag(tag)

    def alloc_index_by_tag(self, tag: int) -> int:
        if self.direct_mode:
            return tag
        with self.lock:
            for index, entry in self.entries.items():
                if entry[0] == tag:
                    entry[1] += 1
                    return index
            free = [i for i in range(1, self.size) if i not in self.entries]
            if not free:
                raise kerr(EBUSY)  # xa_alloc: no free index in [1, size-1]
            index = free[0]
            self.entries[index] = [tag, 1]
            try:
                pcie_tph_set_st_entry(self.pdev, index, tag)
            except OSError:
                del self.entries[index]
                raise
            return index

    def get_index(self, index: int) -> None:
        """``mlx5_st_get_index``: one more reference on a live index."""
        if self.direct_mode:
            return
        with self.lock:
            entry = self.entries.get(index)
            if entry is None:
                raise kerr(EINVAL)
            entry[1] += 1

    def dealloc_index(self, index: int) -> None:
        """``mlx5_st_dealloc_index``: one reference less; at 0 the index is free again."""
        if self.direct_mode:
            return
        with self.lock:
            entry = self.entries.get(index)
            if entry is None:
                raise kerr(EINVAL)
            entry[1] -= 1
            if entry[1] == 0:
                del self.entries[index]

    def tag_of(self, index: int) -> int:
        """The tag the device puts on a TLP for an mkey with ``index`` (what the table holds)."""
        if self.direct_mode:
            return index
        if not 0 <= index < self.size:
            return 0
        return self.pdev.pci_read_config_word(self.pdev.tph_cap + PCI_TPH_BASE_SIZEOF + 2 * index)
