"""asm-generic/socket.h: the devmem TCP socket options (Linux 7.2 uapi, x86-64 values).

The ``SCM_*`` control-message types use the ``SO_*`` numbers.
"""

__all__ = [
    "SCM_DEVMEM_DMABUF",
    "SCM_DEVMEM_LINEAR",
    "SO_DEVMEM_DMABUF",
    "SO_DEVMEM_DONTNEED",
    "SO_DEVMEM_LINEAR",
]

_HEADER = "asm-generic/socket.h"

SO_DEVMEM_LINEAR = 78
SCM_DEVMEM_LINEAR = SO_DEVMEM_LINEAR
SO_DEVMEM_DMABUF = 79
SCM_DEVMEM_DMABUF = SO_DEVMEM_DMABUF
SO_DEVMEM_DONTNEED = 80
