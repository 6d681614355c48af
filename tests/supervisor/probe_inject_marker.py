"""Probe: the real kernel ignores the bits that carry the supervisor's injection marker.

Runs each call the mmap engine injects with ``INJECT_MARK`` in the high 32 bits of its
marker argument (``mmap``: the fd; the others: the unused sixth argument) and prints
what it did.  The same lines on the host and on real Linux (``real-linux/run``) are
the proof; ``test_ptrace_marker.py`` runs it on the host.
"""

from __future__ import annotations

import ctypes
import os
import sys

MARK = 0x6D6B494A  # mockkernel.supervisor.ptrace.INJECT_MARK (this probe imports nothing)
PAGE = os.sysconf("SC_PAGE_SIZE")

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def sc(nr: int, *args: int) -> int:
    r = libc.syscall(
        ctypes.c_long(nr), *[ctypes.c_long(a - (1 << 64) if a >= 1 << 63 else a) for a in args]
    )
    return int(r) if r != -1 else -ctypes.get_errno()


def hi(v: int) -> int:
    return (v & 0xFFFFFFFF) | (MARK << 32)


def main() -> None:
    fd = os.memfd_create("probe")
    os.ftruncate(fd, 2 * PAGE)
    os.pwrite(fd, b"page-one", PAGE)
    # mmap of a file: fd carries the marker
    a = sc(9, 0, PAGE, 3, 1, hi(fd), PAGE)
    print("mmap marked fd:", "ok" if a > 0 else a, ctypes.string_at(a, 8) if a > 0 else b"")
    ctypes.memmove(a, b"written", 7)
    print("coherent:", os.pread(fd, 7, PAGE))
    # anonymous mmap: fd -1 with the marker in its high half
    b = sc(9, 0, PAGE, 3, 0x22, hi(-1), 0)
    print("mmap anon marked:", "ok" if b > 0 else b)
    # MAP_FIXED over it with a marked fd
    c = sc(9, b, PAGE, 3, 0x11, hi(fd), 0)
    print("mmap fixed marked:", c == b)
    # the sixth argument of five-or-fewer-argument calls
    path = f"/proc/{os.getpid()}/fd/{fd}".encode() + b"\0"
    buf = ctypes.create_string_buffer(path)
    o = sc(257, -100, ctypes.addressof(buf), os.O_RDWR | os.O_CLOEXEC, 0, 0, MARK << 32)
    print("openat marked:", "ok" if o >= 0 else o)
    h = sc(72, o, 1030, 900, 0, 0, MARK << 32)
    print("fcntl F_DUPFD_CLOEXEC marked:", h >= 900)
    print("close marked:", sc(3, o, 0, 0, 0, 0, MARK << 32), sc(3, h, 0, 0, 0, 0, MARK << 32))
    print(
        "munmap marked:", sc(11, a, PAGE, 0, 0, 0, MARK << 32), sc(11, b, PAGE, 0, 0, 0, MARK << 32)
    )
    print("bad fd marked:", sc(9, 0, PAGE, 3, 1, hi(4000), 0))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
