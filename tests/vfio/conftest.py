"""Fixtures of the vfio-pci tests: a device opened through either access path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vfio_helpers import PATHS, Device, open_device

from mockkernel import Kernel


@pytest.fixture(params=PATHS)
def dev(request: pytest.FixtureRequest, mock_kernel: Kernel) -> Iterator[Device]:
    """The default vfio-pci device, open through the group path or the cdev path."""
    device = open_device(request.param)
    try:
        yield device
    finally:
        device.close()
