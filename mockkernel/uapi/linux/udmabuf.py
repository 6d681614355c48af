"""linux/udmabuf.h: ``/dev/udmabuf``, dma-bufs made of memfd pages (Linux 7.2 uapi).

``UDMABUF_CREATE`` turns one page-aligned slice of a sealed memfd
(``F_SEAL_SHRINK`` set, ``F_SEAL_WRITE`` not) into a dma-buf and returns its
fd; ``UDMABUF_CREATE_LIST`` concatenates ``count`` slices.
"""

import ctypes
from ctypes import c_uint32, c_uint64

from mockkernel.ioctl import _IOW

__all__ = [
    "UDMABUF_CREATE",
    "UDMABUF_CREATE_LIST",
    "UDMABUF_FLAGS_CLOEXEC",
    "udmabuf_create",
    "udmabuf_create_item",
    "udmabuf_create_list",
]

_HEADER = "linux/udmabuf.h"

UDMABUF_FLAGS_CLOEXEC = 0x01


class udmabuf_create(ctypes.Structure):
    """UDMABUF_CREATE argument."""

    _fields_ = [
        ("memfd", c_uint32),
        ("flags", c_uint32),
        ("offset", c_uint64),
        ("size", c_uint64),
    ]


class udmabuf_create_item(ctypes.Structure):
    """One slice of a UDMABUF_CREATE_LIST."""

    _fields_ = [
        ("memfd", c_uint32),
        ("__pad", c_uint32),
        ("offset", c_uint64),
        ("size", c_uint64),
    ]


class udmabuf_create_list(ctypes.Structure):
    """UDMABUF_CREATE_LIST argument: a header followed by ``count`` items."""

    _fields_ = [
        ("flags", c_uint32),
        ("count", c_uint32),
        ("list", udmabuf_create_item * 0),
    ]


UDMABUF_CREATE = _IOW("u", 0x42, udmabuf_create)
UDMABUF_CREATE_LIST = _IOW("u", 0x43, udmabuf_create_list)
