"""rdma/rdma_user_ioctl_cmds.h: the ``RDMA_VERBS_IOCTL`` framing (Linux 7.2 uapi).

One ioctl carries every uverbs method: an ``ib_uverbs_ioctl_hdr`` naming the
object and method, followed by ``num_attrs`` ``ib_uverbs_attr`` entries.  The
header's ``length`` is the byte size of header plus attributes.  An attribute's
``data`` is the value itself when ``len`` ≤ 8 (inline) and a user pointer
otherwise; for IDR and FD attributes it is the handle or fd (``data_s64``).
``UVERBS_ATTR_F_MANDATORY`` makes an attribute the kernel does not know an
error; ``UVERBS_ATTR_F_VALID_OUTPUT`` is set by the kernel on output
attributes it wrote.  The command number encodes only the 24-byte header.
"""

import ctypes
from ctypes import c_int64, c_uint8, c_uint16, c_uint32, c_uint64

from mockkernel.ioctl import _IOWR

__all__ = [
    "RDMA_IOCTL_MAGIC",
    "RDMA_VERBS_IOCTL",
    "UVERBS_ATTR_F_MANDATORY",
    "UVERBS_ATTR_F_VALID_OUTPUT",
    "ib_uverbs_attr",
    "ib_uverbs_ioctl_hdr",
]

_HEADER = "rdma/rdma_user_ioctl_cmds.h"

# Documentation/userspace-api/ioctl/ioctl-number.rst
RDMA_IOCTL_MAGIC = 0x1B

# enum
UVERBS_ATTR_F_MANDATORY = 1 << 0  # User input
# Valid output bit should be ignored and considered set in mandatory fields.
# This bit is kernel output.
UVERBS_ATTR_F_VALID_OUTPUT = 1 << 1


class _ib_uverbs_attr_enum_data(ctypes.Structure):
    _fields_ = [
        ("elem_id", c_uint8),
        ("reserved", c_uint8),
    ]


class _ib_uverbs_attr_attr_data(ctypes.Union):
    _fields_ = [
        ("enum_data", _ib_uverbs_attr_enum_data),
        ("reserved", c_uint16),
    ]


class _ib_uverbs_attr_u(ctypes.Union):
    _fields_ = [
        # ptr to command, inline data, idr/fd or ptr to __u32 array of IDRs
        ("data", c_uint64),
        ("data_s64", c_int64),  # Used by FD_IN and FD_OUT
    ]


class ib_uverbs_attr(ctypes.Structure):
    """One attribute: id, length, ``UVERBS_ATTR_F_*`` flags and the value or pointer."""

    _anonymous_ = ("_u",)
    _fields_ = [
        ("attr_id", c_uint16),  # command specific type attribute
        ("len", c_uint16),  # only for pointers and IDRs array
        ("flags", c_uint16),  # combination of UVERBS_ATTR_F_XXXX
        ("attr_data", _ib_uverbs_attr_attr_data),  # union { enum_data; reserved; }
        ("_u", _ib_uverbs_attr_u),  # union { data; data_s64; }
    ]


class ib_uverbs_ioctl_hdr(ctypes.Structure):
    """RDMA_VERBS_IOCTL argument: the header, then ``num_attrs`` attributes."""

    _fields_ = [
        ("length", c_uint16),
        ("object_id", c_uint16),
        ("method_id", c_uint16),
        ("num_attrs", c_uint16),
        ("reserved1", c_uint64),
        ("driver_id", c_uint32),
        ("reserved2", c_uint32),
        ("attrs", ib_uverbs_attr * 0),
    ]


RDMA_VERBS_IOCTL = _IOWR(RDMA_IOCTL_MAGIC, 1, ib_uverbs_ioctl_hdr)
