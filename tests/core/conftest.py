"""Fixtures of the syscall-layer tests.

The kernels themselves come from the project's pytest plugin (``mock_kernel``: booted
and installed for the test, shut down with the leak check afterwards;
``mock_kernel_factory``: further kernels, installed or not).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from core_helpers import ProbeOps, close_probe_device, register_probe_device

from mockkernel.kernel import Kernel
from mockkernel.uaccess import _mem


@pytest.fixture(autouse=True, scope="session")
def _uaccess_warm() -> None:
    """uaccess opens /proc/self/mem once per process, on first use: do it before any test
    compares fd listings, so that fd is not mistaken for a leak."""
    _mem()


@pytest.fixture
def probe(mock_kernel: Kernel) -> Iterator[ProbeOps]:
    """``/dev/mkprobe`` on the installed kernel: a device that records what it is handed."""
    ops = register_probe_device(mock_kernel)
    yield ops
    close_probe_device(ops)


@pytest.fixture
def kernel(mock_kernel_factory: object) -> Kernel:
    """A booted kernel that is *not* installed (for virtual processes and direct calls)."""
    factory = mock_kernel_factory
    assert callable(factory)
    k: Kernel = factory()
    return k
