"""linux/dma-buf.h: the dma-buf file ioctls (Linux 7.2 uapi).

``DMA_BUF_IOCTL_SYNC`` brackets CPU access to an mmap'ed buffer,
``DMA_BUF_SET_NAME`` names it for debugfs and fdinfo (at most
``DMA_BUF_NAME_LEN`` bytes with the NUL), and the sync-file pair exports or
imports implicit fences.  ``DMA_BUF_SET_NAME`` is ``_IOW`` of a ``const char *``
and so equals ``DMA_BUF_SET_NAME_B`` on 64-bit; the kernel accepts both numbers.
"""

import ctypes
from ctypes import c_int32, c_uint32, c_uint64

from mockkernel.ioctl import _IOW, _IOWR

__all__ = [
    "DMA_BUF_BASE",
    "DMA_BUF_IOCTL_EXPORT_SYNC_FILE",
    "DMA_BUF_IOCTL_IMPORT_SYNC_FILE",
    "DMA_BUF_IOCTL_SYNC",
    "DMA_BUF_NAME_LEN",
    "DMA_BUF_SET_NAME",
    "DMA_BUF_SET_NAME_A",
    "DMA_BUF_SET_NAME_B",
    "DMA_BUF_SYNC_END",
    "DMA_BUF_SYNC_READ",
    "DMA_BUF_SYNC_RW",
    "DMA_BUF_SYNC_START",
    "DMA_BUF_SYNC_VALID_FLAGS_MASK",
    "DMA_BUF_SYNC_WRITE",
    "dma_buf_export_sync_file",
    "dma_buf_import_sync_file",
    "dma_buf_sync",
]

_HEADER = "linux/dma-buf.h"


class dma_buf_sync(ctypes.Structure):
    """DMA_BUF_IOCTL_SYNC argument: ``DMA_BUF_SYNC_*`` flags."""

    _fields_ = [
        ("flags", c_uint64),
    ]


DMA_BUF_SYNC_READ = 1 << 0
DMA_BUF_SYNC_WRITE = 2 << 0
DMA_BUF_SYNC_RW = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE
DMA_BUF_SYNC_START = 0 << 2
DMA_BUF_SYNC_END = 1 << 2
DMA_BUF_SYNC_VALID_FLAGS_MASK = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END

DMA_BUF_NAME_LEN = 32


class dma_buf_export_sync_file(ctypes.Structure):
    """DMA_BUF_IOCTL_EXPORT_SYNC_FILE argument: ``flags`` in, sync-file ``fd`` out."""

    _fields_ = [
        ("flags", c_uint32),  # Read/write flags
        ("fd", c_int32),  # Returned sync file descriptor
    ]


class dma_buf_import_sync_file(ctypes.Structure):
    """DMA_BUF_IOCTL_IMPORT_SYNC_FILE argument: ``flags`` and the sync-file ``fd``."""

    _fields_ = [
        ("flags", c_uint32),  # Read/write flags
        ("fd", c_int32),  # Sync file descriptor
    ]


DMA_BUF_BASE = ord("b")
DMA_BUF_IOCTL_SYNC = _IOW(DMA_BUF_BASE, 0, dma_buf_sync)

# 32/64bitness of this uapi was botched in android, there's no difference
# between them in actual uapi, they're just different numbers.
DMA_BUF_SET_NAME = _IOW(DMA_BUF_BASE, 1, ctypes.c_char_p)  # const char *
DMA_BUF_SET_NAME_A = _IOW(DMA_BUF_BASE, 1, c_uint32)
DMA_BUF_SET_NAME_B = _IOW(DMA_BUF_BASE, 1, c_uint64)
DMA_BUF_IOCTL_EXPORT_SYNC_FILE = _IOWR(DMA_BUF_BASE, 2, dma_buf_export_sync_file)
DMA_BUF_IOCTL_IMPORT_SYNC_FILE = _IOW(DMA_BUF_BASE, 3, dma_buf_import_sync_file)
