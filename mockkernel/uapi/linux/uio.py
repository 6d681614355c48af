"""linux/uio.h: the devmem TCP RX records (Linux 7.2 uapi).

``recvmsg(..., MSG_SOCK_DEVMEM)`` returns one ``struct dmabuf_cmsg`` per fragment
(``SCM_DEVMEM_DMABUF``: payload in the dma-buf; ``SCM_DEVMEM_LINEAR``: payload in the
iovec); ``setsockopt(SO_DEVMEM_DONTNEED)`` gives fragments back as ``struct
dmabuf_token`` ranges.  The option numbers are in :mod:`mockkernel.uapi.linux.devmem_socket`.
"""

import ctypes
from ctypes import c_uint32, c_uint64

__all__ = ["UIO_MAXIOV", "dmabuf_cmsg", "dmabuf_token"]

_HEADER = "linux/uio.h"

UIO_MAXIOV = 1024


class dmabuf_cmsg(ctypes.Structure):
    _fields_ = [
        ("frag_offset", c_uint64),
        ("frag_size", c_uint32),
        ("frag_token", c_uint32),
        ("dmabuf_id", c_uint32),
        ("flags", c_uint32),
    ]


class dmabuf_token(ctypes.Structure):
    _fields_ = [("token_start", c_uint32), ("token_count", c_uint32)]
