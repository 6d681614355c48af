"""The ioctl command codec, bit for bit as x86-64 ``asm-generic/ioctl.h``.

An ioctl command is 32 bits: ``nr`` in bits 0-7, ``type`` in bits 8-15, the
argument ``size`` in bits 16-29 and the transfer direction in bits 30-31
(``_IOC_NONE`` 0, ``_IOC_WRITE`` 1, ``_IOC_READ`` 2, both 3)::

    _IOC(dir, type, nr, size) == dir << 30 | size << 16 | type << 8 | nr

The names are the kernel's own, so uapi modules read like the C headers::

    DMA_BUF_IOCTL_SYNC = _IOW(DMA_BUF_BASE, 0, dma_buf_sync)      # 0x40086200
    VFIO_DEVICE_FEATURE = _IO(VFIO_TYPE, VFIO_BASE + 17)          # 0x3B75

``type`` may be an int or a one-character string (``";"``, like C's ``';'``);
``size`` may be an int or a ctypes type, whose ``ctypes.sizeof`` is used (the
kernel's ``_IOC_TYPECHECK``).  Unlike the C macro, which silently lets an
oversized field spill into its neighbours, :func:`_IOC` raises ``ValueError``
for a field that does not fit.  The constants are checked against the real
header by ``tests/test_abi.py``.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from ctypes import _CData

__all__ = [
    "IOCSIZE_MASK",
    "IOCSIZE_SHIFT",
    "IOC_IN",
    "IOC_INOUT",
    "IOC_OUT",
    "_IO",
    "_IOC",
    "_IOC_DIR",
    "_IOC_DIRBITS",
    "_IOC_DIRMASK",
    "_IOC_DIRSHIFT",
    "_IOC_NONE",
    "_IOC_NR",
    "_IOC_NRBITS",
    "_IOC_NRMASK",
    "_IOC_NRSHIFT",
    "_IOC_READ",
    "_IOC_SIZE",
    "_IOC_SIZEBITS",
    "_IOC_SIZEMASK",
    "_IOC_SIZESHIFT",
    "_IOC_TYPE",
    "_IOC_TYPEBITS",
    "_IOC_TYPEMASK",
    "_IOC_TYPESHIFT",
    "_IOC_WRITE",
    "_IOR",
    "_IOW",
    "_IOWR",
    "IoctlSize",
    "IoctlType",
]

#: Header the int constants of this module mirror (checked by tests/test_abi.py).
_HEADER = "asm-generic/ioctl.h"
#: Exported names that are Python helpers, not names in the header.
_NOT_IN_HEADER = frozenset({"IoctlSize", "IoctlType"})

IoctlType: TypeAlias = int | str
"""An ioctl ``type`` byte: an int, or a one-character string such as ``";"``."""

IoctlSize: TypeAlias = int | type["_CData"]
"""An ioctl argument size: a byte count, or a ctypes type to take ``sizeof`` of."""

_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_DIRBITS = 2

_IOC_NRMASK = (1 << _IOC_NRBITS) - 1
_IOC_TYPEMASK = (1 << _IOC_TYPEBITS) - 1
_IOC_SIZEMASK = (1 << _IOC_SIZEBITS) - 1
_IOC_DIRMASK = (1 << _IOC_DIRBITS) - 1

_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS

_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2

# "...and for the drivers/sound files..."
IOC_IN = _IOC_WRITE << _IOC_DIRSHIFT
IOC_OUT = _IOC_READ << _IOC_DIRSHIFT
IOC_INOUT = (_IOC_WRITE | _IOC_READ) << _IOC_DIRSHIFT
IOCSIZE_MASK = _IOC_SIZEMASK << _IOC_SIZESHIFT
IOCSIZE_SHIFT = _IOC_SIZESHIFT


def _type_byte(type: IoctlType) -> int:
    if isinstance(type, str):
        if len(type) != 1:
            raise ValueError(f"ioctl type must be a single character, not {type!r}")
        return ord(type)
    return type


def _size_bytes(size: IoctlSize) -> int:
    if isinstance(size, int):
        return size
    return ctypes.sizeof(size)


def _check(field: str, value: int, mask: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ioctl {field} must be an int, not {value!r}")
    if not 0 <= value <= mask:
        raise ValueError(f"ioctl {field} {value:#x} out of range 0..{mask:#x}")


def _IOC(dir: int, type: IoctlType, nr: int, size: IoctlSize) -> int:
    """Encode an ioctl command; ``ValueError`` if a field does not fit its bits."""
    t = _type_byte(type)
    s = _size_bytes(size)
    _check("dir", dir, _IOC_DIRMASK)
    _check("type", t, _IOC_TYPEMASK)
    _check("nr", nr, _IOC_NRMASK)
    _check("size", s, _IOC_SIZEMASK)
    return (
        (dir << _IOC_DIRSHIFT)
        | (t << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (s << _IOC_SIZESHIFT)
    )


def _IO(type: IoctlType, nr: int) -> int:
    """A command with no argument copied (the size is 0)."""
    return _IOC(_IOC_NONE, type, nr, 0)


def _IOR(type: IoctlType, nr: int, size: IoctlSize) -> int:
    """A command whose argument the kernel writes (userspace reads)."""
    return _IOC(_IOC_READ, type, nr, size)


def _IOW(type: IoctlType, nr: int, size: IoctlSize) -> int:
    """A command whose argument the kernel reads (userspace writes)."""
    return _IOC(_IOC_WRITE, type, nr, size)


def _IOWR(type: IoctlType, nr: int, size: IoctlSize) -> int:
    """A command whose argument is copied in and back out."""
    return _IOC(_IOC_READ | _IOC_WRITE, type, nr, size)


def _IOC_DIR(nr: int) -> int:
    """The direction bits (``_IOC_NONE``, ``_IOC_WRITE``, ``_IOC_READ`` or both)."""
    return (nr >> _IOC_DIRSHIFT) & _IOC_DIRMASK


def _IOC_TYPE(nr: int) -> int:
    """The type byte (e.g. ``ord(";")`` for VFIO)."""
    return (nr >> _IOC_TYPESHIFT) & _IOC_TYPEMASK


def _IOC_NR(nr: int) -> int:
    """The command number within its type."""
    return (nr >> _IOC_NRSHIFT) & _IOC_NRMASK


def _IOC_SIZE(nr: int) -> int:
    """The argument size in bytes (0 for ``_IO`` commands, e.g. all of VFIO)."""
    return (nr >> _IOC_SIZESHIFT) & _IOC_SIZEMASK
