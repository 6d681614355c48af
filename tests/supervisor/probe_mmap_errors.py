"""Probe: what ``mmap(2)`` of a udmabuf dma-buf returns for raw arguments a C program
can pass (zero or huge lengths, negative offsets, unaligned ``MAP_FIXED``, bad types).

Prints ``name errno`` per case (``ok`` for success).  The golden
(``probe_mmap_errors.golden``) is this probe's output on real Linux 7.2
(``real-linux/run``); ``test_mmap_inject.py`` makes the same calls in a traced child
whose ``mmap`` the supervisor's engine serves, and compares.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

PAGE = os.sysconf("SC_PAGE_SIZE")
#: (name, length, prot, flags, offset, addr)
CASES = [
    ("zero-length", 0, 3, 1, 0, 0),
    ("huge-length", 1 << 62, 3, 1, 0, 0),
    ("length-past-user-space", 1 << 47, 3, 1, 0, 0),
    ("negative-offset", PAGE, 3, 1, -PAGE, 0),
    ("unaligned-offset", PAGE, 3, 1, 100, 0),
    ("unaligned-fixed-addr", PAGE, 3, 0x11, 0, 0x10001),
    ("private", PAGE, 3, 2, 0, 0),
    ("no-map-type", PAGE, 3, 0, 0, 0),
    ("prot-exec", PAGE, 7, 1, 0, 0),
    ("validate-unknown-flag", PAGE, 3, 3 | 0x800000, 0, 0),
    ("validate-ok", PAGE, 3, 3, 0, 0),
    ("read-only", 2 * PAGE, 1, 1, 0, 0),
]


def raw_mmap(length: int, prot: int, flags: int, fd: int, off: int, addr: int) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(
        *(
            ctypes.c_long(v)
            for v in (
                9,
                addr,
                length - (1 << 64) if length >= 1 << 63 else length,
                prot,
                flags,
                fd,
                off,
            )
        )
    )
    if r == -1:
        return errno.errorcode[ctypes.get_errno()]
    libc.syscall(ctypes.c_long(11), ctypes.c_long(r), ctypes.c_long(length))
    return "ok"


def main() -> None:
    mfd = os.memfd_create("probe", os.MFD_ALLOW_SEALING)
    os.ftruncate(mfd, 2 * PAGE)
    fcntl.fcntl(mfd, 1033, 0x2)
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", mfd, 0, 0, 2 * PAGE)))
    for name, length, prot, flags, off, addr in CASES:
        print(name, raw_mmap(length, prot, flags, buf, off, addr))


if __name__ == "__main__":
    main()
