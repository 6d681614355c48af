"""Two kernels booted in one Python process keep apart what each holds of the host process.

The real fds a kernel holds for itself (``realfd.HeldFds``) and the real mappings it keeps
(``mm.KernelMaps``: ``KernelMap``s and ``ib_umem`` pins) are that kernel's registers, not
tables of the Python process: a second kernel neither sees the first one's numbers nor
hides (in its ``/proc/self/maps``) or refuses (in ``ib_umem_get``) the first one's memory,
and one kernel's shutdown leaves the other's untouched.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

import mockkernel
from mockkernel.kernel import Kernel
from mockkernel.mm import KernelMaps, kernel_map_ranges
from mockkernel.rdma.device import ib_core
from mockkernel.rdma.umem import ib_umem_get
from mockkernel.realfd import Placeholders, held, held_fds, hide, kernel_close
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import IB_UVERBS_ACCESS_LOCAL_WRITE

MLX5 = "0000:02:00.0"  # the default topology's mlx5 function


@pytest.fixture
def two() -> Iterator[tuple[Kernel, Kernel]]:
    a, b = mockkernel.boot(), mockkernel.boot()
    try:
        yield a, b
    finally:
        b.shutdown()
        a.shutdown()


def _maps_of(kernel: Kernel) -> str:
    proc = kernel.init_process
    fd = proc.sys_open("/proc/self/maps", os.O_RDONLY)
    try:
        out = b""
        while chunk := proc.sys_read(fd, 1 << 16):
            out += chunk
        return out.decode()
    finally:
        proc.sys_close(fd)


def _covered(text: str, addr: int) -> bool:
    for line in text.splitlines():
        lo, _, hi = line.split()[0].partition("-")
        if int(lo, 16) <= addr < int(hi, 16):
            return True
    return False


def test_held_fds_are_each_kernels_own(two: tuple[Kernel, Kernel]) -> None:
    a, b = two
    before = held_fds(a)
    n = b.subsys(Placeholders).get("probe")  # a real fd kernel b holds
    mine = hide(b, os.memfd_create("two-kernels", os.MFD_CLOEXEC))
    try:
        assert held(b, n) and held(b, mine)
        assert not held(a, n) and not held(a, mine)
        assert held_fds(a) == before
        assert held_fds(a).isdisjoint(held_fds(b))
    finally:
        kernel_close(b, mine)
    assert not held(b, mine)


def test_a_kernels_shutdown_leaves_the_others_fds(two: tuple[Kernel, Kernel]) -> None:
    a, _b = two
    c = mockkernel.boot()
    n = a.subsys(Placeholders).get("probe")
    c.subsys(Placeholders).get("probe")
    c.shutdown()
    assert held(a, n)
    os.fstat(n)  # still open: c closed only its own


def test_kernel_maps_are_each_kernels_own(two: tuple[Kernel, Kernel]) -> None:
    a, b = two
    assert b.pci is not None
    bar = b.pci.get(MLX5).bars[0]
    kmap = bar.map  # BAR memory: a KernelMap of kernel b
    addr = bar.map._addr  # (the mapping's address: what maps list)
    assert addr is not None and len(kmap) == bar.size
    assert any(lo <= addr < hi for lo, hi in kernel_map_ranges(b))
    assert not any(lo <= addr < hi for lo, hi in kernel_map_ranges(a))
    assert a.subsys(KernelMaps) is not b.subsys(KernelMaps)
    # b's maps hide its own memory; a's show it as the memfd mapping it is
    assert not _covered(_maps_of(b), addr)
    assert _covered(_maps_of(a), addr)


def test_ib_umem_get_refuses_only_its_own_kernels_memory(two: tuple[Kernel, Kernel]) -> None:
    a, b = two
    assert b.pci is not None
    bar = b.pci.get(MLX5).bars[0]
    addr = bar.map._addr  # (kernel b's memory)
    assert addr is not None
    dev_a = next(iter(ib_core(a).devices.values()))
    dev_b = next(iter(ib_core(b).devices.values()))
    with pytest.raises(OSError) as e:
        ib_umem_get(dev_b, addr, 4096, IB_UVERBS_ACCESS_LOCAL_WRITE)
    assert e.value.errno == errno.EFAULT  # b's own memory is not a program's
    umem = ib_umem_get(dev_a, addr, 4096, IB_UVERBS_ACCESS_LOCAL_WRITE)
    try:
        pins = [pin for _start, pin, _size in umem.pins]
        assert pins  # a shared page: a pinned, a mapping recorded in a's register only
        assert all(any(lo <= p < hi for lo, hi in kernel_map_ranges(a)) for p in pins)
        assert not any(any(lo <= p < hi for lo, hi in kernel_map_ranges(b)) for p in pins)
    finally:
        umem.release()
    assert not any(any(lo <= p < hi for lo, hi in kernel_map_ranges(a)) for p in pins)
