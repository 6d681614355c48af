"""Fixtures of the RDMA tests.

Kernels come from the project's pytest plugin: ``mock_kernel`` (booted, installed,
shut down with the leak check) on the default topology -- ``mlx5_0`` on the ConnectX-7
``0000:02:00.0`` and the vfio-pci accelerator ``0000:01:00.0`` -- unless a module says
``pytestmark = pytest.mark.mockkernel(topology=RXE_TOPOLOGY)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rdma_testing import VFIO_BDF

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs, VfioDevice
from mockkernel.uaccess import _mem


@pytest.fixture(autouse=True, scope="session")
def _uaccess_warm() -> None:
    """uaccess opens /proc/self/mem on first use: do it before tests count fds."""
    _mem()


@pytest.fixture(autouse=True)
def _affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    """DMAH_ALLOC checks the CPU against ``os.sched_getaffinity(0)``: make the default
    machine's 4 CPUs allowed whatever this host has (tests of the check override it)."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})


@pytest.fixture
def verbs(mock_kernel: Kernel) -> Iterator[Verbs]:
    """``mlx5_0`` opened, with a context."""
    v = Verbs("mlx5_0")
    try:
        yield v
    finally:
        v.close()


@pytest.fixture
def rxe(mock_kernel: Kernel) -> Iterator[Verbs]:
    """``rxe0`` opened, with a context (modules using it boot ``RXE_TOPOLOGY``)."""
    v = Verbs("rxe0")
    try:
        yield v
    finally:
        v.close()


@pytest.fixture
def vfio(mock_kernel: Kernel) -> Iterator[VfioDevice]:
    """The default vfio-pci function, open through its cdev and bound to iommufd."""
    dev = VfioDevice(VFIO_BDF)
    try:
        yield dev
    finally:
        dev.close()
