"""linux/sync_file.h: the sync_file ioctls (Linux 7.2 uapi).

A sync file (from ``DMA_BUF_IOCTL_EXPORT_SYNC_FILE`` or a driver) holds one fence.
``SYNC_IOC_MERGE`` makes a new sync file holding the fences of two, under a name the
caller chooses; ``SYNC_IOC_FILE_INFO`` reports the file's name and status and, when
``num_fences`` is not 0, one ``sync_fence_info`` per fence at the user pointer
``sync_fence_info``; ``SYNC_IOC_SET_DEADLINE`` hints when the fence should signal.
Opcodes 0, 1 and 2 were burned in the de-staging API change.
"""

import ctypes
from ctypes import c_char, c_int32, c_uint32, c_uint64

from mockkernel.ioctl import _IOW, _IOWR

__all__ = [
    "SYNC_IOC_FILE_INFO",
    "SYNC_IOC_MAGIC",
    "SYNC_IOC_MERGE",
    "SYNC_IOC_SET_DEADLINE",
    "sync_fence_info",
    "sync_file_info",
    "sync_merge_data",
    "sync_set_deadline",
]

_HEADER = "linux/sync_file.h"


class sync_merge_data(ctypes.Structure):
    """SYNC_IOC_MERGE argument: ``name`` and ``fd2`` in, the new fd in ``fence``."""

    _fields_ = [
        ("name", c_char * 32),  # name of new fence
        ("fd2", c_int32),  # file descriptor of second fence
        ("fence", c_int32),  # returns the fd of the new fence to userspace
        ("flags", c_uint32),  # merge_data flags (must be 0)
        ("pad", c_uint32),  # padding for 64-bit alignment, should always be zero
    ]


class sync_fence_info(ctypes.Structure):
    """One fence of a sync file, as SYNC_IOC_FILE_INFO reports it."""

    _fields_ = [
        ("obj_name", c_char * 32),  # name of parent sync_timeline
        ("driver_name", c_char * 32),  # name of driver implementing the parent
        ("status", c_int32),  # status of the fence 0:active 1:signaled <0:error
        ("flags", c_uint32),  # fence_info flags
        ("timestamp_ns", c_uint64),  # timestamp of status change in nanoseconds
    ]


class sync_file_info(ctypes.Structure):
    """SYNC_IOC_FILE_INFO argument: the file's name, status and fence count."""

    _fields_ = [
        ("name", c_char * 32),  # name of fence
        ("status", c_int32),  # status of fence. 1: signaled 0:active <0:error
        ("flags", c_uint32),  # sync_file_info flags (must be 0)
        ("num_fences", c_uint32),  # number of fences in the sync_file
        ("pad", c_uint32),  # padding for 64-bit alignment, should always be zero
        ("sync_fence_info", c_uint64),  # user pointer to num_fences struct sync_fence_info
    ]


class sync_set_deadline(ctypes.Structure):
    """SYNC_IOC_SET_DEADLINE argument: the deadline (CLOCK_MONOTONIC ns)."""

    _fields_ = [
        ("deadline_ns", c_uint64),
        ("pad", c_uint64),  # must be 0: room for future extension
    ]


SYNC_IOC_MAGIC = ord(">")

SYNC_IOC_MERGE = _IOWR(SYNC_IOC_MAGIC, 3, sync_merge_data)
SYNC_IOC_FILE_INFO = _IOWR(SYNC_IOC_MAGIC, 4, sync_file_info)
SYNC_IOC_SET_DEADLINE = _IOW(SYNC_IOC_MAGIC, 5, sync_set_deadline)
