"""Configuration space: 4 KiB (256 bytes for conventional PCI) of registers with write masks.

Each byte has a write mask (bits software may change; the rest are read-only) and a
write-1-to-clear mask (status bits a write of 1 clears), the way QEMU models it.  BAR
sizing falls out of the write mask: a BAR's writable bits are its address bits, so
writing all-ones and reading back gives ``~(size - 1) | flags``, as on hardware.

Two sides:

* software (drivers, and userspace through vfio-pci): :meth:`ConfigSpace.read` and
  :meth:`ConfigSpace.write` honour the masks.  A misaligned access, one reaching past
  :attr:`ConfigSpace.size` (``pdev->cfg_size``) or a width other than 1, 2 or 4
  raises ``OSError(EINVAL)`` (the kernel's
  ``PCIBIOS_BAD_REGISTER_NUMBER`` through ``pcibios_err_to_errno``).  Values are
  truncated to the access width, as a C ``u8``/``u16``/``u32`` argument would be.
* hardware (the device model building itself): :meth:`ConfigSpace.poke`,
  :meth:`ConfigSpace.set_wmask`, :meth:`ConfigSpace.set_w1cmask` and the capability
  builders bypass the masks.
"""

from __future__ import annotations

from errno import EINVAL

from ..errors import kerr
from ._regs import (
    PCI_CAP_LIST_ID,
    PCI_CAP_LIST_NEXT,
    PCI_CAPABILITY_LIST,
    PCI_CFG_SPACE_EXP_SIZE,
    PCI_CFG_SPACE_SIZE,
    PCI_EXT_CAP_ID,
    PCI_EXT_CAP_NEXT,
    PCI_STATUS,
    PCI_STATUS_CAP_LIST,
    PCI_STD_HEADER_SIZEOF,
)

__all__ = ["ConfigSpace"]

_PCI_FIND_CAP_TTL = 48  # drivers/pci/pci.c: bounds a looping capability list
_WIDTHS = (1, 2, 4)


class ConfigSpace:
    """One function's configuration space: ``size`` bytes (``pdev->cfg_size``).

    ``PCI_CFG_SPACE_EXP_SIZE`` (4096, the default) for a PCI Express function,
    ``PCI_CFG_SPACE_SIZE`` (256) for a conventional one, which has no extended
    capabilities.
    """

    __slots__ = ("_data", "_last_cap", "_last_ext_cap", "_w1cmask", "_wmask", "size")

    SIZE = PCI_CFG_SPACE_EXP_SIZE  # the largest

    def __init__(self, size: int = PCI_CFG_SPACE_EXP_SIZE) -> None:
        if size not in (PCI_CFG_SPACE_SIZE, PCI_CFG_SPACE_EXP_SIZE):
            raise ValueError(f"config space size {size} is neither 256 nor 4096")
        self.size = size
        self._data = bytearray(size)
        self._wmask = bytearray(size)
        self._w1cmask = bytearray(size)
        self._last_cap = 0
        self._last_ext_cap = 0

    def image(self) -> tuple[bytes, bytes, bytes, int, int]:
        """Everything this space holds, immutable: what :meth:`load_image` restores."""
        return (bytes(self._data), bytes(self._wmask), bytes(self._w1cmask),
                self._last_cap, self._last_ext_cap)  # fmt: skip

    def load_image(self, image: tuple[bytes, bytes, bytes, int, int]) -> None:
        data, wmask, w1cmask, self._last_cap, self._last_ext_cap = image
        if len(data) != self.size:
            raise ValueError(f"a {len(data)}-byte image for a {self.size}-byte config space")
        self._data[:] = data
        self._wmask[:] = wmask
        self._w1cmask[:] = w1cmask

    def _check(self, offset: int, width: int) -> None:
        if width not in _WIDTHS or offset < 0 or offset + width > self.size:
            raise kerr(EINVAL, f"config access at {offset:#x} width {width}")
        if offset & (width - 1):
            raise kerr(EINVAL, f"misaligned config access at {offset:#x} width {width}")

    # -- software side ------------------------------------------------------

    def read(self, offset: int, width: int) -> int:
        """Read ``width`` bytes (1, 2 or 4) at ``offset``, little-endian.

        The checks are :meth:`_check`'s, written inline: a device model reads its
        registers on every DMA (the command register, a steering tag), so the good case
        costs no extra call; anything else goes to ``_check`` for its ``EINVAL``."""
        end = offset + width
        if (
            (width == 4 or width == 2 or width == 1)
            and offset >= 0
            and end <= self.size
            and not offset & (width - 1)
        ):
            return int.from_bytes(self._data[offset:end], "little")
        self._check(offset, width)
        raise AssertionError("unreachable: _check accepted a bad config access")

    def read_bytes(self, offset: int, count: int) -> bytes:
        """``count`` bytes from ``offset``, in one slice (what ``pci_read_config`` gathers
        byte, word and dword at a time: reads have no side effects here)."""
        if offset < 0 or count < 0 or offset + count > self.size:
            raise kerr(EINVAL, f"config read [{offset:#x}, {offset + count:#x})")
        return memoryview(self._data)[offset : offset + count].tobytes()  # (one copy)

    def write(self, offset: int, width: int, value: int) -> None:
        """Write ``width`` bytes at ``offset``: only writable bits change, W1C bits clear."""
        self._check(offset, width)
        data, wmask, w1c = self._data, self._wmask, self._w1cmask
        for i in range(offset, offset + width):
            byte = value & 0xFF
            value >>= 8
            data[i] = ((data[i] & ~wmask[i]) | (byte & wmask[i])) & ~(byte & w1c[i])

    def find_capability(self, cap_id: int) -> int:
        """Offset of the first standard capability ``cap_id``, or 0 (``pci_find_capability``)."""
        if not self.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST:
            return 0
        pos = self.read(PCI_CAPABILITY_LIST, 1)
        for _ in range(_PCI_FIND_CAP_TTL):
            pos &= ~3
            if pos < PCI_STD_HEADER_SIZEOF:
                break
            ent = self.read(pos, 2)
            if ent & 0xFF == 0xFF:
                break
            if ent & 0xFF == cap_id:
                return pos
            pos = ent >> 8
        return 0

    def find_ext_capability(self, cap_id: int, start: int = 0) -> int:
        """Offset of the next extended capability ``cap_id`` after ``start``, or 0.

        ``pci_find_next_ext_capability`` semantics; ``start = 0`` is ``pci_find_ext_capability``.
        """
        if self.size <= PCI_CFG_SPACE_SIZE:
            return 0  # no extended config space
        if start & 3 or not 0 <= start <= PCI_CFG_SPACE_EXP_SIZE - 4:
            return 0  # the kernel's failed config read
        pos = start or PCI_CFG_SPACE_SIZE
        ttl = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) // 8
        header = self.read(pos, 4)
        if header == 0:
            return 0
        while ttl > 0:
            ttl -= 1
            if PCI_EXT_CAP_ID(header) == cap_id and pos != start:
                return pos
            pos = PCI_EXT_CAP_NEXT(header)
            if pos < PCI_CFG_SPACE_SIZE:
                break
            header = self.read(pos, 4)
        return 0

    # -- hardware side ------------------------------------------------------

    def poke(self, offset: int, width: int, value: int) -> None:
        """Set a register as the device itself would, ignoring the write masks."""
        self._check(offset, width)
        self._data[offset : offset + width] = (value & ((1 << 8 * width) - 1)).to_bytes(
            width, "little"
        )

    def set_wmask(self, offset: int, width: int, mask: int) -> None:
        """Make the ``mask`` bits of a register writable by software (the rest read-only)."""
        self._check(offset, width)
        self._wmask[offset : offset + width] = mask.to_bytes(width, "little")

    def set_w1cmask(self, offset: int, width: int, mask: int) -> None:
        """Make the ``mask`` bits of a register write-1-to-clear."""
        self._check(offset, width)
        self._w1cmask[offset : offset + width] = mask.to_bytes(width, "little")

    def wmask(self, offset: int, width: int) -> int:
        """The writable bits of a register."""
        self._check(offset, width)
        return int.from_bytes(self._wmask[offset : offset + width], "little")

    def w1cmask(self, offset: int, width: int) -> int:
        """The write-1-to-clear bits of a register."""
        self._check(offset, width)
        return int.from_bytes(self._w1cmask[offset : offset + width], "little")

    def add_capability(self, cap_id: int, offset: int) -> int:
        """Append a standard capability at ``offset`` to the list; returns ``offset``."""
        if offset & 3 or not PCI_STD_HEADER_SIZEOF <= offset < PCI_CFG_SPACE_SIZE - 2:
            raise ValueError(f"bad capability offset {offset:#x}")
        self.poke(offset + PCI_CAP_LIST_ID, 1, cap_id)
        self.poke(offset + PCI_CAP_LIST_NEXT, 1, 0)
        if self._last_cap:
            self.poke(self._last_cap + PCI_CAP_LIST_NEXT, 1, offset)
        else:
            self.poke(PCI_CAPABILITY_LIST, 1, offset)
            self.poke(PCI_STATUS, 2, self.read(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST)
        self._last_cap = offset
        return offset

    def add_ext_capability(self, cap_id: int, version: int, offset: int) -> int:
        """Append an extended capability at ``offset`` (the first must be at 0x100)."""
        first = not self._last_ext_cap
        if offset & 3 or (first and offset != PCI_CFG_SPACE_SIZE) or offset <= self._last_ext_cap:
            raise ValueError(f"bad extended capability offset {offset:#x}")
        self.poke(offset, 4, cap_id | (version << 16))
        if not first:
            prev = self.read(self._last_ext_cap, 4)
            self.poke(self._last_ext_cap, 4, (prev & 0x000F_FFFF) | (offset << 20))
        self._last_ext_cap = offset
        return offset
