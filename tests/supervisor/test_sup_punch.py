"""``supervisor/punch.py``: which areas a ``MADV_REMOVE`` would punch, read from smaps.

(The whole path -- the trapped ``fallocate``/``madvise``, the pins moved, the mappings
laid again in every process -- is checked by the ``pinprobe`` C probe against real
Linux: ``test_sup_real_linux.py``.)
"""

from __future__ import annotations

import ctypes
import mmap
import os

from mockkernel.mm import PAGE_SIZE as PAGE
from mockkernel.supervisor.punch import smaps_areas


def _addr(m: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


def test_smaps_areas_name_the_file_offset_and_flags() -> None:
    fd = os.memfd_create("punch-test", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, 4 * PAGE)
        st = os.fstat(fd)
        shared = mmap.mmap(fd, 2 * PAGE, offset=PAGE)
        private = mmap.mmap(fd, PAGE, flags=mmap.MAP_PRIVATE)
        anon = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            a = _addr(shared)
            (area,) = smaps_areas(os.getpid(), a + PAGE, a + 2 * PAGE)
            assert area[:4] == (a, a + 2 * PAGE, PAGE, (st.st_dev, st.st_ino))
            assert {"sh", "mw"} <= area[4]
            (area,) = smaps_areas(os.getpid(), _addr(private), _addr(private) + PAGE)
            assert area[3] == (st.st_dev, st.st_ino) and "sh" not in area[4]
            (area,) = smaps_areas(os.getpid(), _addr(anon), _addr(anon) + PAGE)
            assert area[3][1] == 0  # private anonymous: no file (shared: a shmem one)
            assert smaps_areas(os.getpid(), 0, PAGE) == []
            assert smaps_areas(-1, 0, 1 << 47) == []  # no such process
        finally:
            for m in (shared, private, anon):
                m.close()
    finally:
        os.close(fd)
