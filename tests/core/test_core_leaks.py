"""``Kernel.shutdown``: whatever a test leaves behind is reported, one line per object, and the
real fds behind it are closed all the same (the fd listing after shutdown equals the one before
boot)."""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable, Iterator

import pytest
from core_helpers import DEV, PAGE, make_udmabuf, real_fds

import mockkernel
from mockkernel.dma_buf import dma_buf_get
from mockkernel.driver import dma_buf_subsys
from mockkernel.errors import LeakError
from mockkernel.kernel import Kernel


@pytest.fixture
def booted() -> Iterator[Callable[[], Kernel]]:
    """Boot kernels by hand (the leak check is what is tested); always shut down at the end."""
    made: list[tuple[Kernel, object]] = []

    def boot() -> Kernel:
        k = mockkernel.boot()
        redir = k.install()
        redir.install()
        made.append((k, redir))
        return k

    yield boot
    for k, redir in made:
        redir.uninstall()  # type: ignore[attr-defined]
        k.shutdown(check=False)


def leak_lines(kernel: Kernel) -> list[str]:
    with pytest.raises(LeakError) as e:
        kernel.shutdown()
    leaks = e.value.leaks
    text = str(e.value)
    assert text.startswith(f"mockkernel: {len(leaks)} object(s) still alive at shutdown:")
    assert all(f"  - {line}" in text for line in leaks)
    return leaks


def uninstall(kernel: Kernel) -> None:
    from mockkernel.userspace.redirect import Redirection

    assert Redirection.active is not None and Redirection.active.kernel is kernel
    Redirection.active.uninstall()


def test_an_fd_left_open(booted: Callable[[], Kernel]) -> None:
    before = real_fds()
    k = booted()
    fd = os.open(DEV, os.O_RDWR)
    uninstall(k)
    leaks = leak_lines(k)
    assert len(leaks) == 1
    assert re.fullmatch(
        rf"fd {fd} of pid {os.getpid()} \(init\) still open: <File #\d+ /dev/udmabuf count=1>",
        leaks[0],
    )
    assert real_fds() == before
    assert k.shutdown() == [], "a second shutdown finds nothing more"


def test_a_dma_buf_referenced_by_a_driver(booted: Callable[[], Kernel]) -> None:
    before = real_fds()
    k = booted()
    memfd, buf = make_udmabuf()
    dmabuf = dma_buf_get(buf, k.init_process)  # a driver's reference, never put
    os.close(buf)
    os.close(memfd)
    uninstall(k)
    leaks = leak_lines(k)
    assert len(leaks) == 2
    assert leaks[0] == (
        "file still referenced (not by an fd: a mapping or a driver): "
        f"<File #{dmabuf.file.id} anon_inode:dmabuf count=1>"
    )
    assert leaks[1] == f"dma-buf still alive: <DmaBuf #{dmabuf.id} udmabuf size=8192>"
    # released anyway: the kernel's own dup of the memfd and its mapping are gone
    assert dmabuf.file.released and not dma_buf_subsys(k).dmabufs and not k.live_files
    assert real_fds() == before


def test_a_lock_left_held(booted: Callable[[], Kernel]) -> None:
    before = real_fds()
    k = booted()
    memfd, buf = make_udmabuf()
    dmabuf = k.init_process.files[buf].private_data
    dmabuf.resv.lock()
    os.close(buf)
    os.close(memfd)
    uninstall(k)
    leaks = leak_lines(k)
    assert leaks == [f"lock still held: dma_buf#{dmabuf.id}.resv"]
    assert real_fds() == before
    dmabuf.resv.unlock()


def test_a_mapping_left_at_shutdown(booted: Callable[[], Kernel]) -> None:
    before = real_fds()
    k = booted()
    memfd, buf = make_udmabuf(data=b"kept")
    m = mmap.mmap(buf, PAGE)
    file = k.init_process.files[buf]
    os.close(buf)
    os.close(memfd)
    uninstall(k)
    leaks = leak_lines(k)
    assert any(line.startswith("dma-buf still alive: <DmaBuf #") for line in leaks)
    # CPython's own dup of the fd is still open, and the mapping's reference is on top
    assert any(re.search(r"still open: <File #\d+ anon_inode:dmabuf count=2>", x) for x in leaks)
    assert file.released
    assert m[:4] == b"kept", "the memory stays mapped for the program"
    m.close()  # after shutdown: no error, nothing dropped twice
    assert file.f_count == 0
    assert real_fds() == before


def test_several_leaks_each_listed(booted: Callable[[], Kernel]) -> None:
    before = real_fds()
    k = booted()
    dev = os.open(DEV, os.O_RDWR)
    memfd, buf = make_udmabuf()
    os.close(memfd)
    dmabuf = k.init_process.files[buf].private_data
    dmabuf.resv.lock()
    uninstall(k)
    found = k.shutdown(check=False)  # returns the list instead of raising
    assert len(found) == 4
    assert found[0].startswith(f"fd {dev} of pid ") and "/dev/udmabuf" in found[0]
    assert found[1].startswith(f"fd {buf} of pid ") and "anon_inode:dmabuf" in found[1]
    assert found[2] == f"dma-buf still alive: {dmabuf!r}"
    assert found[3] == f"lock still held: dma_buf#{dmabuf.id}.resv"
    assert real_fds() == before
    dmabuf.resv.unlock()


def test_a_clean_shutdown_closes_every_real_fd_it_made(booted: Callable[[], Kernel]) -> None:
    before = real_fds()
    k = booted()
    for _ in range(3):
        memfd, buf = make_udmabuf()
        m = mmap.mmap(buf, PAGE)
        m.close()
        os.close(buf)
        os.close(memfd)
    uninstall(k)
    assert k.shutdown() == []
    assert real_fds() == before
