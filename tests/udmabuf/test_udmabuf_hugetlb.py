"""udmabuf over a hugetlb memfd (``MFD_HUGETLB``): the upstream selftest's test-6/test-7.

With no huge page free, creating the buffer fails ``ENOMEM`` as on Linux 7.2 (the golden
``c_udmabuf_selftest.txt`` has the same answer from the real kernel).  With huge pages,
Linux creates and maps the buffer; the mock creates it but refuses a userspace ``mmap``
of a hugetlb slice with ``ENODEV`` and a ``udmabuf.mmap_unmodelled`` event (a real
mapping of a hugetlb file takes whole, aligned huge pages; docs/supervisor.md).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os

import pytest
from udmabuf_testing import F_ADD_SEALS, F_SEAL_SHRINK, PAGE, create, create_list

from mockkernel import Kernel

HPAGE = 2 << 20


def free_huge_pages() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def hugetlb_memfd(fds: list[int], hpages: int) -> int:
    fd = os.memfd_create("udmabuf-test", os.MFD_ALLOW_SEALING | os.MFD_HUGETLB)
    fds.append(fd)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)
    os.ftruncate(fd, hpages * HPAGE)
    return fd


@pytest.mark.skipif(free_huge_pages() != 0, reason="huge pages are free on this machine")
def test_no_free_huge_page_is_enomem(dev: int, fds: list[int]) -> None:
    memfd = hugetlb_memfd(fds, 4)
    with pytest.raises(OSError) as e:
        fds.append(create(dev, memfd, 0, 4 * PAGE))
    assert e.value.errno == errno.ENOMEM
    items = [(memfd, i * HPAGE, 4 * PAGE) for i in range(4)]
    with pytest.raises(OSError) as e:
        fds.append(create_list(dev, items))
    assert e.value.errno == errno.ENOMEM


@pytest.mark.skipif(free_huge_pages() < 4, reason="needs 4 free 2 MiB huge pages")
def test_mmap_of_a_hugetlb_slice_is_enodev(mock_kernel: Kernel, dev: int, fds: list[int]) -> None:
    memfd = hugetlb_memfd(fds, 4)
    items = [(memfd, i * HPAGE, 4 * PAGE) for i in range(4)]
    buf = create_list(dev, items)
    fds.append(buf)
    with mock_kernel.tracer.capture() as events, pytest.raises(OSError) as e:
        mmap.mmap(buf, 16 * PAGE, mmap.MAP_SHARED)
    assert e.value.errno == errno.ENODEV
    assert [ev["reason"] for ev in events if ev["event"] == "udmabuf.mmap_unmodelled"] == [
        "hugetlb memfd"
    ]
