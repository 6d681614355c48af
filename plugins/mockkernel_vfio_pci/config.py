"""The config region (``VFIO_PCI_CONFIG_REGION_INDEX``): a virtualised view of config space.

What Linux 7.2 showed (tests/real_linux probes, edu device) and this model does:

* reads pass through to the device, except the BARs and the ROM BAR, which are
  virtual: a write stores the value, a read returns it masked to the BAR's size with
  the BAR's flag bits (so BAR sizing with all-ones works and never moves the real BAR);
  an absent BAR reads 0;
* header writes reach the device through its write masks (read-only fields such as
  the vendor id are dropped there), ``PCI_COMMAND`` included: clearing
  ``PCI_COMMAND_MEMORY`` is seen in the device's own register (``/sys/.../config``);
* a write at ``PCI_COMMAND`` runs ``vfio_basic_config_write``'s protocol:
  ``memory_lock`` for write, every dma-buf revoked first if the new value clears
  memory decoding, un-revoked after if memory decoding is on;
* accesses are split in naturally aligned 4/2/1-byte pieces; any access reaching
  beyond the config size (256 bytes for a conventional device, 4096 with a PCI
  Express capability) is ``EFAULT``;
* [I] writes beyond the header (capabilities) are dropped: upstream routes them
  through per-capability permission tables, mostly virtualised.
"""

from __future__ import annotations

from errno import EFAULT
from typing import TYPE_CHECKING

from mockkernel.driver import PciDev, kerr

from .dmabuf import dma_buf_move

if TYPE_CHECKING:
    from .core import VfioPciDevice

__all__ = ["VConfig", "config_size"]

PCI_COMMAND = 0x04
PCI_COMMAND_MEMORY = 0x2
PCI_BASE_ADDRESS_0 = 0x10
PCI_BASE_ADDRESS_END = 0x28
PCI_ROM_ADDRESS = 0x30
PCI_STD_HEADER_SIZEOF = 0x40


def config_size(pdev: PciDev) -> int:
    """``pdev->cfg_size``: 4096 for a PCI Express function, 256 for conventional PCI."""
    return pdev.cfg_size


class VConfig:
    """The virtual part of one open device's config space (``vdev->vconfig``)."""

    def __init__(self, vdev: VfioPciDevice) -> None:
        self.vdev = vdev
        pdev = vdev.pdev
        self.size = config_size(pdev)
        # per BAR register (0..5): (address mask, flag bits)
        masks: list[tuple[int, int]] = [(0, 0)] * 6
        for index, bar in pdev.bars.items():
            size_mask = ~(bar.size - 1)
            masks[index] = (size_mask & 0xFFFF_FFF0, bar.flags)
            if bar.mem64:
                masks[index + 1] = ((size_mask >> 32) & 0xFFFF_FFFF, 0)
        self._masks = masks
        self._bars = bytearray(
            b"".join(
                pdev.pci_read_config_dword(PCI_BASE_ADDRESS_0 + 4 * i).to_bytes(4, "little")
                for i in range(6)
            )
        )

    # -- one aligned piece --------------------------------------------------------------
    def _read_bar(self, where: int, width: int) -> int:
        rel = where - PCI_BASE_ADDRESS_0
        reg = rel // 4
        mask, flags = self._masks[reg]
        dword = int.from_bytes(self._bars[4 * reg : 4 * reg + 4], "little")
        dword = (dword & mask) | flags if mask else 0
        shift = 8 * (rel % 4)
        return (dword >> shift) & ((1 << 8 * width) - 1)

    def read(self, where: int, width: int) -> int:
        if PCI_BASE_ADDRESS_0 <= where < PCI_BASE_ADDRESS_END:
            return self._read_bar(where, width)
        if PCI_ROM_ADDRESS <= where < PCI_ROM_ADDRESS + 4:
            return 0  # no expansion ROM in this model
        return self.vdev.pdev.cfg.read(where, width)

    def write(self, where: int, width: int, value: int) -> None:
        if PCI_BASE_ADDRESS_0 <= where < PCI_BASE_ADDRESS_END:
            rel = where - PCI_BASE_ADDRESS_0
            self._bars[rel : rel + width] = value.to_bytes(width, "little")
            return
        if PCI_ROM_ADDRESS <= where < PCI_ROM_ADDRESS + 4 or where >= PCI_STD_HEADER_SIZEOF:
            return
        pdev = self.vdev.pdev
        if where != PCI_COMMAND:
            _physical_write(pdev, where, width, value)
            return
        self._write_command(width, value)

    def _write_command(self, width: int, value: int) -> None:
        """``vfio_basic_config_write`` at ``PCI_COMMAND``: revocation around the write."""
        vdev = self.vdev
        new_mem = bool(value & PCI_COMMAND_MEMORY)
        with vdev.memory_write():
            if not new_mem:
                dma_buf_move(vdev, True, "memory_disable")
            _physical_write(vdev.pdev, PCI_COMMAND, width, value)
            if vdev.memory_enabled():
                dma_buf_move(vdev, False, "memory_enable")

    # -- a user access: split into aligned pieces ------------------------------------------
    def rw(self, pos: int, count: int, data: bytes | None) -> bytes:
        """``vfio_pci_config_rw``: read ``count`` bytes, or write ``data``, at ``pos``."""
        if pos < 0 or pos >= self.size or pos + count > self.size:
            raise kerr(EFAULT)
        out = bytearray()
        done = 0
        while done < count:
            where = pos + done
            left = count - done
            if left >= 4 and not where % 4:
                width = 4
            elif left >= 2 and not where % 2:
                width = 2
            else:
                width = 1
            if data is None:
                out += self.read(where, width).to_bytes(width, "little")
            else:
                self.write(where, width, int.from_bytes(data[done : done + width], "little"))
            done += width
        return bytes(out)


def _physical_write(pdev: PciDev, where: int, width: int, value: int) -> None:
    if width == 4:
        pdev.pci_write_config_dword(where, value)
    elif width == 2:
        pdev.pci_write_config_word(where, value)
    else:
        pdev.pci_write_config_byte(where, value)
