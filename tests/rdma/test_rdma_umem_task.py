"""``ib_umem_get`` on another process's address space (a supervised program's), against an
independent oracle: the host kernel's own user-access checks.

A child process lays out an arena of pages -- read-write, read-only, ``PROT_NONE``,
unmapped, shared -- and Hypothesis draws ranges and access flags over it.  With the
child's memory current (``use_mm(RemoteMemory(pid))``, as the supervisor serves it),
``ib_umem_get`` must fail with ``EFAULT`` exactly when some page of the range cannot be
read with ``process_vm_readv`` or, for a writable MR, written back with
``process_vm_writev``; and a DMA into a registered MR must land in the child.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel.rdma.umem import ib_umem_get
from mockkernel.uaccess import RemoteMemory, use_mm
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_LOCAL_WRITE,
    IB_UVERBS_ACCESS_REMOTE_READ,
    IB_UVERBS_ACCESS_REMOTE_WRITE,
)

PAGE = 4096


class _Maps:
    """A kernel's ``KernelMaps``: what the pins of a task's shared pages record."""

    def __init__(self) -> None:
        self.live: dict[int, int] = {}

    def add(self, start: int, end: int) -> None:
        self.live[start] = end

    def remove(self, start: int) -> None:
        self.live.pop(start, None)


class _Kernel:
    """The device's kernel: its current task has no mock mappings; a task's shared pages
    are pinned by mapping their file in this process, recorded in ``maps``."""

    def __init__(self) -> None:
        self.maps = _Maps()
        self.current = SimpleNamespace(mappings={})

    def subsys(self, cls: type) -> _Maps:
        return self.maps


class _Device:
    """The device pinning (only its kernel is asked for)."""

    def __init__(self) -> None:
        self.kernel = _Kernel()


DEVICE: Any = _Device()
#: the arena, page by page
LAYOUT = ["rw", "rw", "ro", "rw", "none", "rw", "hole", "rw", "shared", "shared", "ro", "rw"]
CHILD = f"""
import mmap, sys, ctypes
PAGE = {PAGE}
layout = {LAYOUT!r}
arena = mmap.mmap(-1, len(layout) * PAGE)
base = ctypes.addressof(ctypes.c_char.from_buffer(arena))
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
for i, kind in enumerate(layout):
    addr = base + i * PAGE
    ctypes.memset(addr, 0x40 + i, PAGE)
    if kind == "ro":
        assert libc.mprotect(ctypes.c_void_p(addr), PAGE, 1) == 0
    elif kind == "none":
        assert libc.mprotect(ctypes.c_void_p(addr), PAGE, 0) == 0
    elif kind == "hole":
        assert libc.munmap(ctypes.c_void_p(addr), PAGE) == 0
    elif kind == "shared":  # MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED
        assert libc.mmap(addr, PAGE, 3, 0x01 | 0x20 | 0x10, -1, 0) == addr
print(base, flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def child() -> Iterator[tuple[RemoteMemory, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        base = int(proc.stdout.readline())
        mm = RemoteMemory(proc.pid)
        yield mm, base
        mm.close()
    finally:
        proc.kill()
        proc.wait()


def _accessible(mm: RemoteMemory, lo: int, hi: int, writable: bool) -> bool:
    """The oracle: every page of ``[lo, hi)`` readable (and writable) by the host's
    ``process_vm_readv``/``_writev`` -- writing back what was read changes nothing."""
    for page in range(lo & ~(PAGE - 1), hi, PAGE):
        try:
            data = mm.read(page, 1)
            if writable:
                mm.write(page, data)
        except OSError:
            return False
    return True


ACCESS = st.sampled_from(
    [
        IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE,
        IB_UVERBS_ACCESS_REMOTE_READ,
        0,
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(-PAGE, (len(LAYOUT) + 1) * PAGE),
    length=st.integers(0, 4 * PAGE),
    access=ACCESS,
)
def test_ib_umem_get_of_a_task_agrees_with_the_hosts_access_checks(
    child: tuple[RemoteMemory, int], start: int, length: int, access: int
) -> None:
    mm, base = child
    addr = base + start
    writable = bool(access & IB_UVERBS_ACCESS_LOCAL_WRITE)
    with use_mm(mm):
        try:
            umem = ib_umem_get(DEVICE, addr, length, access)
        except OSError as e:
            got = e.errno
        else:
            got = 0
    if (addr + length + PAGE - 1) // PAGE == addr // PAGE:  # ib_umem_num_pages() == 0
        assert got == errno.EINVAL
        return
    want = 0 if _accessible(mm, addr, addr + length, writable) else errno.EFAULT
    assert got == want
    if got == 0:
        # shared pages are pinned (mapped into this process through map_files): a DMA
        # into them lands in the child's pages all the same, as the checks below show
        assert umem.mm is mm and all(
            addr - PAGE < s < addr + length + PAGE for s, _, _ in umem.pins
        )
        if writable:
            payload = (bytes(range(256)) * 3)[: min(length, 600)]
            off = length - len(payload)
            umem.write(off, payload)
            assert mm.read(addr + off, len(payload)) == payload
            assert umem.read(off, len(payload)) == payload
        # each pin is kernel memory of this process while it lives (KernelMaps)
        assert {pin for _, pin, _ in umem.pins} == set(DEVICE.kernel.maps.live)
        umem.release()
        assert DEVICE.kernel.maps.live == {}


def test_an_exited_address_space_takes_nothing(child: tuple[RemoteMemory, int]) -> None:
    """After the task's exit (or exec) its umem lands no write, and none registers."""
    mm, base = child
    other = RemoteMemory(mm.pid)
    with use_mm(other):
        umem = ib_umem_get(DEVICE, base, PAGE, IB_UVERBS_ACCESS_LOCAL_WRITE)
    before = mm.read(base, 4)
    other.close()  # what the supervisor does at exit/exec
    umem.write(0, b"gone")
    assert mm.read(base, 4) == before
    with pytest.raises(OSError) as exc:
        umem.read(0, 4)
    assert exc.value.errno == errno.EFAULT
    with use_mm(other), pytest.raises(OSError) as exc:
        ib_umem_get(DEVICE, base, PAGE, 0)
    assert exc.value.errno == errno.EFAULT
