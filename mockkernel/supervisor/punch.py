"""A hole punched in a real memfd whose pages a driver pinned: the pins move first.

A supervised program may punch a hole in the memfd behind a udmabuf --
``fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ...)`` or
``madvise(addr, len, MADV_REMOVE)`` on its own shared mapping of the memfd.  Both
are real calls on a real file, which the real kernel runs (the handler answers
``CONTINUE``); but the mock's pinned pages *are* the memfd's, so before that the
handler calls the core's notifier (``mm/gup.py``: :meth:`PinnedPages.punch_hole`),
which copies the pinned pages in the range to kernel-private backing and has their
owners lay every mapping over the copy.

Only a punch that will succeed may move them (a failed punch leaves the buffer and
the memfd coherent): the handler first runs the checks the real call makes and
moves nothing when one fails -- ``vfs_fallocate``'s and ``shmem_fallocate``'s
(the exact mode, the range, an fd open for writing, no write seal), and for
``MADV_REMOVE`` ``madvise_remove``'s per area, walked as ``madvise_walk_vmas`` does,
from ``/proc/<pid>/smaps`` (``VmFlags``: ``lo`` locked is ``EINVAL``, an anonymous
area ``EINVAL``, not shared-and-may-write ``EACCES``: the walk stops there).
"""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING

from ..gup import PinnedPages
from ..mm import PAGE_SIZE, page_align
from ..syscalls.attr import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, OFFSET_MAX
from .uabi import i32

if TYPE_CHECKING:
    from ..process import Process
    from .handlers import Call

__all__ = ["before_fallocate", "before_madv_remove", "quick_fallocate", "smaps_areas"]

_F_GET_SEALS = 1034
_F_SEAL_WRITE = 0x0008
_F_SEAL_FUTURE_WRITE = 0x0010
_PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def quick_fallocate(proc: Process, args: tuple[int, ...]) -> bool:
    """Surely not the mock's: a real fd, and no punch of a pinned memfd possible (not
    a punch, or nothing pinned in this kernel)."""
    if i32(args[0]) in proc.files:
        return False
    return not args[1] & FALLOC_FL_PUNCH_HOLE or not proc.kernel.subsys(PinnedPages).has_pins()


def before_fallocate(c: Call, fd: int, mode: int, offset: int, length: int) -> int:
    """``fallocate`` of real ``fd`` is about to run: if it punches a hole in a pinned
    memfd and will succeed, move the pinned pages in the range first.  Returns the
    bytes moved."""
    pins = c.sv.kernel.subsys(PinnedPages)
    if mode != _PUNCH or offset < 0 or length <= 0 or offset > OFFSET_MAX - length:
        return 0  # the real call fails (EOPNOTSUPP, EINVAL, EFBIG)
    try:
        with c.proc.fdget_real(fd) as real:
            st = os.fstat(real)
            key = (st.st_dev, st.st_ino)
            if not pins.pinned(key):
                return 0
            if fcntl.fcntl(real, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
                return 0  # EBADF
            if fcntl.fcntl(real, _F_GET_SEALS) & (_F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE):
                return 0  # EPERM
    except OSError:
        return 0  # not open (EBADF), or not shmem: nothing pinned there
    return pins.punch_hole(key, offset, length)


def before_madv_remove(c: Call, addr: int, length: int) -> int:
    """``madvise(addr, length, MADV_REMOVE)`` of real memory is about to run: for each
    area it will punch (a shared, writable file mapping), move the pinned pages of
    that file range first.  Returns the bytes moved."""
    pins = c.sv.kernel.subsys(PinnedPages)
    if not pins.has_pins() or addr % PAGE_SIZE or length <= 0:
        return 0
    end = addr + page_align(length)
    if end >= 1 << 64:
        return 0  # EINVAL
    moved = 0
    for lo, hi, pgoff, key, flags in smaps_areas(c.proc.pid, addr, end):
        if "lo" in flags or key[1] == 0:
            break  # EINVAL: locked, or no file
        if "sh" not in flags or "mw" not in flags:
            break  # EACCES
        a, b = max(addr, lo), min(end, hi)
        if pins.pinned(key):
            moved += pins.punch_hole(key, pgoff + (a - lo), b - a)
    return moved


def smaps_areas(
    pid: int, lo: int, hi: int
) -> list[tuple[int, int, int, tuple[int, int], frozenset[str]]]:
    """The areas of ``pid`` overlapping ``[lo, hi)``, in order: ``(start, end, offset in
    the file, (st_dev, st_ino) of the file (ino 0: anonymous), VmFlags)``."""
    out: list[tuple[int, int, int, tuple[int, int], frozenset[str]]] = []
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as f:
            head: tuple[int, int, int, tuple[int, int]] | None = None
            for line in f:
                if line.startswith("VmFlags:"):
                    if head is not None:
                        out.append((*head, frozenset(line.split()[1:])))
                        head = None
                    continue
                fields = line.split(None, 5)
                if len(fields) < 5 or "-" not in fields[0] or ":" not in fields[3]:
                    continue  # a counter line ("Rss:  4 kB")
                a_s, _, b_s = fields[0].partition("-")
                try:
                    a, b = int(a_s, 16), int(b_s, 16)
                    major, _, minor = fields[3].partition(":")
                    dev = os.makedev(int(major, 16), int(minor, 16))
                    off, ino = int(fields[2], 16), int(fields[4])
                except ValueError:
                    continue
                head = (a, b, off, (dev, ino)) if a < hi and lo < b else None
    except OSError:
        return []
    return out
