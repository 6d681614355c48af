"""linux/iommufd.h: ``/dev/iommu``, IO address spaces for VFIO cdev devices (Linux 7.2).

Mirrored in header order up to ``IOMMU_VFIO_IOAS``: the command enum, object
destruction, IOAS allocation, IOVA ranges, map/map-file/copy/unmap, options and
the VFIO-compat IOAS.  The remaining commands (HWPT, HW info, dirty tracking,
fault queues, vIOMMU, vdevice, veventq, HW queue) have their ioctl numbers
only.  Like VFIO, iommufd ioctls are ``_IO``: each struct starts with its own
``size``, which the kernel checks instead of the command number.
"""

import ctypes
from ctypes import c_int32, c_uint16, c_uint32, c_uint64

from mockkernel.ioctl import _IO

__all__ = [
    "IOMMUFD_CMD_BASE",
    "IOMMUFD_CMD_DESTROY",
    "IOMMUFD_CMD_FAULT_QUEUE_ALLOC",
    "IOMMUFD_CMD_GET_HW_INFO",
    "IOMMUFD_CMD_HWPT_ALLOC",
    "IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP",
    "IOMMUFD_CMD_HWPT_INVALIDATE",
    "IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING",
    "IOMMUFD_CMD_HW_QUEUE_ALLOC",
    "IOMMUFD_CMD_IOAS_ALLOC",
    "IOMMUFD_CMD_IOAS_ALLOW_IOVAS",
    "IOMMUFD_CMD_IOAS_CHANGE_PROCESS",
    "IOMMUFD_CMD_IOAS_COPY",
    "IOMMUFD_CMD_IOAS_IOVA_RANGES",
    "IOMMUFD_CMD_IOAS_MAP",
    "IOMMUFD_CMD_IOAS_MAP_FILE",
    "IOMMUFD_CMD_IOAS_UNMAP",
    "IOMMUFD_CMD_OPTION",
    "IOMMUFD_CMD_VDEVICE_ALLOC",
    "IOMMUFD_CMD_VEVENTQ_ALLOC",
    "IOMMUFD_CMD_VFIO_IOAS",
    "IOMMUFD_CMD_VIOMMU_ALLOC",
    "IOMMUFD_TYPE",
    "IOMMU_DESTROY",
    "IOMMU_FAULT_QUEUE_ALLOC",
    "IOMMU_GET_HW_INFO",
    "IOMMU_HWPT_ALLOC",
    "IOMMU_HWPT_GET_DIRTY_BITMAP",
    "IOMMU_HWPT_INVALIDATE",
    "IOMMU_HWPT_SET_DIRTY_TRACKING",
    "IOMMU_HW_QUEUE_ALLOC",
    "IOMMU_IOAS_ALLOC",
    "IOMMU_IOAS_ALLOW_IOVAS",
    "IOMMU_IOAS_CHANGE_PROCESS",
    "IOMMU_IOAS_COPY",
    "IOMMU_IOAS_IOVA_RANGES",
    "IOMMU_IOAS_MAP",
    "IOMMU_IOAS_MAP_FILE",
    "IOMMU_IOAS_MAP_FIXED_IOVA",
    "IOMMU_IOAS_MAP_READABLE",
    "IOMMU_IOAS_MAP_WRITEABLE",
    "IOMMU_IOAS_UNMAP",
    "IOMMU_OPTION",
    "IOMMU_OPTION_HUGE_PAGES",
    "IOMMU_OPTION_OP_GET",
    "IOMMU_OPTION_OP_SET",
    "IOMMU_OPTION_RLIMIT_MODE",
    "IOMMU_VDEVICE_ALLOC",
    "IOMMU_VEVENTQ_ALLOC",
    "IOMMU_VFIO_IOAS",
    "IOMMU_VFIO_IOAS_CLEAR",
    "IOMMU_VFIO_IOAS_GET",
    "IOMMU_VFIO_IOAS_SET",
    "IOMMU_VIOMMU_ALLOC",
    "iommu_destroy",
    "iommu_ioas_alloc",
    "iommu_ioas_allow_iovas",
    "iommu_ioas_copy",
    "iommu_ioas_iova_ranges",
    "iommu_ioas_map",
    "iommu_ioas_map_file",
    "iommu_ioas_unmap",
    "iommu_iova_range",
    "iommu_option",
    "iommu_vfio_ioas",
]

_HEADER = "linux/iommufd.h"
IOMMUFD_TYPE = ord(";")

# enum: command numbers
IOMMUFD_CMD_BASE = 0x80
IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE
IOMMUFD_CMD_IOAS_ALLOC = 0x81
IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82
IOMMUFD_CMD_IOAS_COPY = 0x83
IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84
IOMMUFD_CMD_IOAS_MAP = 0x85
IOMMUFD_CMD_IOAS_UNMAP = 0x86
IOMMUFD_CMD_OPTION = 0x87
IOMMUFD_CMD_VFIO_IOAS = 0x88
IOMMUFD_CMD_HWPT_ALLOC = 0x89
IOMMUFD_CMD_GET_HW_INFO = 0x8A
IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8B
IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8C
IOMMUFD_CMD_HWPT_INVALIDATE = 0x8D
IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8E
IOMMUFD_CMD_IOAS_MAP_FILE = 0x8F
IOMMUFD_CMD_VIOMMU_ALLOC = 0x90
IOMMUFD_CMD_VDEVICE_ALLOC = 0x91
IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92
IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93
IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94


class iommu_destroy(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("id", c_uint32),
    ]


IOMMU_DESTROY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)


class iommu_ioas_alloc(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("out_ioas_id", c_uint32),
    ]


IOMMU_IOAS_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)


class iommu_iova_range(ctypes.Structure):
    _fields_ = [
        ("start", c_uint64),
        ("last", c_uint64),
    ]


class iommu_ioas_iova_ranges(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("ioas_id", c_uint32),
        ("num_iovas", c_uint32),
        ("__reserved", c_uint32),
        ("allowed_iovas", c_uint64),
        ("out_iova_alignment", c_uint64),
    ]


IOMMU_IOAS_IOVA_RANGES = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)


class iommu_ioas_allow_iovas(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("ioas_id", c_uint32),
        ("num_iovas", c_uint32),
        ("__reserved", c_uint32),
        ("allowed_iovas", c_uint64),
    ]


IOMMU_IOAS_ALLOW_IOVAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS)

# enum iommufd_ioas_map_flags
IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0
IOMMU_IOAS_MAP_WRITEABLE = 1 << 1
IOMMU_IOAS_MAP_READABLE = 1 << 2


class iommu_ioas_map(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("ioas_id", c_uint32),
        ("__reserved", c_uint32),
        ("user_va", c_uint64),
        ("length", c_uint64),
        ("iova", c_uint64),
    ]


IOMMU_IOAS_MAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)


class iommu_ioas_map_file(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("ioas_id", c_uint32),
        ("fd", c_int32),
        ("start", c_uint64),
        ("length", c_uint64),
        ("iova", c_uint64),
    ]


IOMMU_IOAS_MAP_FILE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE)


class iommu_ioas_copy(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("dst_ioas_id", c_uint32),
        ("src_ioas_id", c_uint32),
        ("length", c_uint64),
        ("dst_iova", c_uint64),
        ("src_iova", c_uint64),
    ]


IOMMU_IOAS_COPY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY)


class iommu_ioas_unmap(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("ioas_id", c_uint32),
        ("iova", c_uint64),
        ("length", c_uint64),
    ]


IOMMU_IOAS_UNMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

# enum iommufd_option
IOMMU_OPTION_RLIMIT_MODE = 0
IOMMU_OPTION_HUGE_PAGES = 1

# enum iommufd_option_ops
IOMMU_OPTION_OP_SET = 0
IOMMU_OPTION_OP_GET = 1


class iommu_option(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("option_id", c_uint32),
        ("op", c_uint16),
        ("__reserved", c_uint16),
        ("object_id", c_uint32),
        ("val64", c_uint64),
    ]


IOMMU_OPTION = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

# enum iommufd_vfio_ioas_op
IOMMU_VFIO_IOAS_GET = 0
IOMMU_VFIO_IOAS_SET = 1
IOMMU_VFIO_IOAS_CLEAR = 2


class iommu_vfio_ioas(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
        ("ioas_id", c_uint32),
        ("op", c_uint16),
        ("__reserved", c_uint16),
    ]


IOMMU_VFIO_IOAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS)


# Other commands: their numbers only; the argument structs are not mirrored.
IOMMU_HWPT_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)
IOMMU_GET_HW_INFO = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)
IOMMU_HWPT_SET_DIRTY_TRACKING = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)
IOMMU_HWPT_GET_DIRTY_BITMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)
IOMMU_HWPT_INVALIDATE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE)
IOMMU_FAULT_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)
IOMMU_VIOMMU_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC)
IOMMU_VDEVICE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC)
IOMMU_IOAS_CHANGE_PROCESS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS)
IOMMU_VEVENTQ_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC)
IOMMU_HW_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC)
