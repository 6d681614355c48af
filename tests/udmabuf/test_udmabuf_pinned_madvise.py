"""In-process, ``mmap.madvise(MADV_REMOVE)`` of a real map of the memfd behind a udmabuf
punches the memfd only: the dma-buf keeps the pinned pages, as on Linux.

The redirected ``mmap.mmap`` makes a shared map of a shmem file a ``ShmemMmap``
(``userspace/mmap.py``), whose ``madvise(MADV_REMOVE)`` moves the pinned pages out of the
way before the real call.  The program below makes the calls of the ``c_pinprobe`` C
probe's ``MADV_REMOVE`` and failed-``madvise`` steps in Python and prints what it
prints; the lines must be the ones real Linux 7.2 printed
(``tests/real_linux/golden/c_pinprobe.txt``).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from collections.abc import Callable
from pathlib import Path

from udmabuf_testing import PAGE, create, make_memfd

from mockkernel import Kernel
from mockkernel.gup import PinnedPages
from mockkernel.realfd import REAL
from mockkernel.userspace.mmap import ShmemMmap

GOLDEN = Path(__file__).resolve().parent.parent / "real_linux" / "golden" / "c_pinprobe.txt"


def golden_section(title: str) -> list[str]:
    lines = GOLDEN.read_text().splitlines()
    start = lines.index(f"== {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("==")), len(lines))
    return lines[start:end]


def show_page(p: bytes) -> str:
    first = chr(p[0]) if p[0] else "0"
    return first if p.count(p[0]) == len(p) else first + "*"


def show(what: str, m: mmap.mmap | bytes, pages: int) -> str:
    return f"{what}: " + " ".join(show_page(m[i * PAGE : (i + 1) * PAGE]) for i in range(pages))


def show_fd(what: str, fd: int, pages: int) -> str:
    return show(what, os.pread(fd, pages * PAGE, 0), pages)


def step(name: str, fn: Callable[[], object]) -> str:
    try:
        fn()
    except OSError as e:
        return f"{name}: {errno.errorcode[e.errno or 0]}"
    return f"{name}: ok"


def new_memfd(pages: int) -> int:
    fd = make_memfd(pages * PAGE)
    for i in range(pages):
        os.pwrite(fd, bytes([ord("a") + i]) * PAGE, i * PAGE)
    return fd


def fill(fd: int, page: int, c: str) -> None:
    os.pwrite(fd, c.encode() * PAGE, page * PAGE)


def test_madv_remove_keeps_the_pinned_pages_as_real_linux(
    mock_kernel: Kernel, dev: int, fds: list[int]
) -> None:
    memfd = new_memfd(3)
    fds.append(memfd)
    buf = create(dev, memfd, 0, 3 * PAGE)
    fds.append(buf)
    out = []
    with mmap.mmap(buf, 3 * PAGE) as before, mmap.mmap(memfd, 3 * PAGE) as m:
        assert isinstance(m, ShmemMmap)
        out.append(step("madvise remove", lambda: m.madvise(mmap.MADV_REMOVE, PAGE, PAGE)))
        out.append(show_fd("memfd read", memfd, 3))
        out.append(show("memfd map", m, 3))
        out.append(show("dma-buf map made before", before, 3))
        with mmap.mmap(buf, 3 * PAGE) as after:
            out.append(show("dma-buf map made after", after, 3))
            fill(memfd, 1, "X")
            fill(memfd, 2, "Y")
            out.append(show("after memfd writes, dma-buf", before, 3))
            out.append(show("after memfd writes, memfd map", m, 3))
            before[PAGE] = ord("Z")
            before[0] = ord("W")
            out.append(show_fd("after dma-buf writes, memfd", memfd, 3))
            out.append(show("after dma-buf writes, the other dma-buf map", after, 3))
            out.append(step("punch again", lambda: m.madvise(mmap.MADV_REMOVE)))
            out.append(show("after the second punch, dma-buf", after, 3))
            out.append(show_fd("after the second punch, memfd", memfd, 3))
    assert out == golden_section("punch page 1 by MADV_REMOVE")
    (pin,) = mock_kernel.subsys(PinnedPages).live()
    assert pin.moved() == 3 * PAGE


def test_failed_madvise_moves_nothing_as_real_linux(
    mock_kernel: Kernel, dev: int, fds: list[int]
) -> None:
    memfd = new_memfd(2)
    fds.append(memfd)
    buf = create(dev, memfd, 0, 2 * PAGE)
    fds.append(buf)
    rdonly = os.open(f"/proc/self/fd/{memfd}", os.O_RDONLY | os.O_CLOEXEC)
    fds.append(rdonly)
    want = golden_section("failed punches")
    out = []
    with mmap.mmap(buf, 2 * PAGE) as p:
        with (
            mmap.mmap(memfd, 2 * PAGE, flags=mmap.MAP_PRIVATE) as priv,
            mmap.mmap(rdonly, 2 * PAGE, prot=mmap.PROT_READ) as ro,
        ):
            out.append(step("madvise remove on a private map", lambda: priv.madvise(9, 0, PAGE)))
            out.append(
                step("madvise remove on a read-only open's map", lambda: ro.madvise(9, 0, PAGE))
            )
            # (CPython's madvise takes an offset into the map: ro + 1 of the C probe)
            out.append(step("madvise remove unaligned", lambda: ro.madvise(9, 1, PAGE)))
        fill(memfd, 0, "G")
        fill(memfd, 1, "H")
        out.append(show("dma-buf follows the memfd", p, 2))
        with mmap.mmap(memfd, 2 * PAGE, prot=mmap.PROT_READ) as ro2:
            out.append(
                step(
                    "madvise remove on a PROT_READ map of a writable open",
                    lambda: ro2.madvise(mmap.MADV_REMOVE, 0, PAGE),
                )
            )
        fill(memfd, 0, "I")
        fill(memfd, 1, "J")
        out.append(show("dma-buf", p, 2))
    assert out == [line for line in want if not line.startswith("fallocate")]


def test_a_punch_with_a_future_write_seal_moves_nothing(
    mock_kernel: Kernel, dev: int, fds: list[int]
) -> None:
    memfd = new_memfd(1)
    fds.append(memfd)
    buf = create(dev, memfd, 0, PAGE)
    fds.append(buf)
    with mmap.mmap(memfd, PAGE) as m, mmap.mmap(buf, PAGE) as p:
        fcntl.fcntl(memfd, 1033, 0x0010)  # F_ADD_SEALS F_SEAL_FUTURE_WRITE (with a map)
        assert step("madvise", lambda: m.madvise(mmap.MADV_REMOVE)) == "madvise: EPERM"
        (pin,) = mock_kernel.subsys(PinnedPages).live()
        assert pin.moved() == 0 and p[0] == ord("a")


def test_only_shared_maps_of_writable_opens_are_watched(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    """Which real maps are ``ShmemMmap`` is decided without a syscall for the usual map
    (shared, ``PROT_WRITE``), with one ``F_GETFL`` for a shared read-only map."""
    with mmap.mmap(-1, PAGE) as anon, mmap.mmap(-1, PAGE, access=mmap.ACCESS_WRITE) as anon2:
        assert type(anon) is REAL.mmap and type(anon2) is REAL.mmap
    path = tmp_path / "f"
    path.write_bytes(b"x" * PAGE)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), PAGE) as m:
        assert isinstance(m, ShmemMmap)
        m.madvise(mmap.MADV_NORMAL)
    with open(path, "rb") as f:
        with mmap.mmap(f.fileno(), PAGE, prot=mmap.PROT_READ) as ro:
            assert type(ro) is REAL.mmap  # (its MADV_REMOVE is EACCES)
        with mmap.mmap(f.fileno(), PAGE, access=mmap.ACCESS_READ) as ro:
            assert type(ro) is REAL.mmap
        with mmap.mmap(f.fileno(), PAGE, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as pv:
            assert type(pv) is REAL.mmap
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), PAGE, access=mmap.ACCESS_READ) as r:
        assert isinstance(r, ShmemMmap)  # (VM_MAYWRITE: its MADV_REMOVE may punch)
    memfd = os.memfd_create("x")
    try:
        os.ftruncate(memfd, PAGE)
        with mmap.mmap(memfd, PAGE, access=mmap.ACCESS_COPY) as c:
            assert type(c) is REAL.mmap
        with mmap.mmap(memfd, PAGE, access=mmap.ACCESS_WRITE) as w:
            assert isinstance(w, ShmemMmap) and isinstance(w, mmap.mmap)
            w.madvise(mmap.MADV_REMOVE)  # nothing pinned: the real call alone
            w.madvise(mmap.MADV_NORMAL)
    finally:
        os.close(memfd)
