"""Hypothesis over the ``VFIO_DEVICE_FEATURE_DMA_BUF`` input space.

Any region and list of ranges gives either a dma-buf fd whose size is the sum of the
lengths, or exactly the errno the upstream validation order dictates (the model below
is kernel.md section 4, steps 4-9, written out independently of the driver).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from vfio_helpers import BDF, PAGE, Device, errname, export

from mockkernel import Kernel
from mockkernel.driver import dma_buf_subsys

U64 = 2**64
TOP = U64 - 1


def model(kernel: Kernel, region: int, ranges: list[tuple[int, int]]) -> int | str:
    assert kernel.pci is not None
    bars = kernel.pci.get(BDF).bars
    if not ranges:
        return "EINVAL"  # nr_ranges == 0
    if region >= 6 or region not in bars:
        return "ENODEV"
    total = 0
    for off, ln in ranges:
        if ln == 0 or off % PAGE or ln % PAGE:
            return "EINVAL"
        total += ln
        if total > TOP:
            return "EINVAL"
    if total >> 63:
        return "EINVAL"
    bar = bars[region]
    if not bar.p2pdma:
        return "EINVAL"
    for off, ln in ranges:
        paddr = bar.bus_address + off
        if paddr > TOP or paddr + ln > TOP:
            return "EOVERFLOW"
        if paddr + ln > bar.bus_address + bar.size:
            return "EINVAL"
    return total


def _edge(limit: int) -> st.SearchStrategy[int]:
    """Values a validator gets wrong: 0, in-bounds pages, bounds, unaligned, near 2**64."""
    pages = st.integers(0, limit // PAGE + 2).map(lambda n: n * PAGE)
    return st.one_of(
        st.just(0),
        pages,
        pages.map(lambda v: v + 1),
        st.integers(0, TOP),
        st.integers(0, 64).map(lambda s: (TOP - (1 << s) + 1) & ~(PAGE - 1)),
        st.integers(52, 63).map(lambda s: 1 << s),
    )


@st.composite
def _valid_range(draw: st.DrawFn, size: int = 1 << 20) -> tuple[int, int]:
    """A page-aligned, non-empty slice inside a BAR of ``size`` bytes."""
    start = draw(st.integers(0, size // PAGE - 1))
    pages = draw(st.integers(1, size // PAGE - start))
    return start * PAGE, pages * PAGE


#: an offset so large that bar_start + offset (+ length) passes 2**64: EOVERFLOW
_overflowing = st.tuples(
    st.integers(U64 - (1 << 48), TOP).map(lambda v: v & ~(PAGE - 1)),
    st.integers(1, 16).map(lambda n: n * PAGE),
)

ranges_strategy = st.lists(
    st.one_of(
        _valid_range(),
        _valid_range(),
        _overflowing,
        st.tuples(_edge(1 << 20), _edge(1 << 20)),
    ),
    min_size=0,
    max_size=6,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(region=st.sampled_from([0] * 12 + [2, 1, 5, 6, 7, 8, 200]), ranges=ranges_strategy)
def test_result_is_a_buffer_of_the_sum_or_the_errno_of_the_order(
    dev: Device, mock_kernel: Kernel, region: int, ranges: list[tuple[int, int]]
) -> None:
    expected = model(mock_kernel, region, ranges)
    event(expected if isinstance(expected, str) else "fd")
    try:
        fd = export(dev.fd, ranges, region=region, nr=len(ranges))
    except OSError as e:
        assert errname(e) == expected
    else:
        try:
            assert os.fstat(fd).st_size == expected
            assert os.lseek(fd, 0, os.SEEK_END) == expected
        finally:
            os.close(fd)
    assert not dma_buf_subsys(mock_kernel).dmabufs  # nothing left behind, success or not
