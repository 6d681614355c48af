"""Fixtures of the dma-buf core tests.

``kernel``: a booted kernel, not installed (the tests call the driver API directly);
at teardown it is shut down and must have leaked nothing.  A test that provokes a
kernel warning shuts the kernel down itself and checks what it reports.
``mock_kernel`` (the project's pytest plugin) is the installed variant, for the file
ops reached through ``fcntl.ioctl``/``mmap``/``os``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockkernel import Kernel, boot
from mockkernel.uaccess import _mem


@pytest.fixture(autouse=True, scope="session")
def _uaccess_warm() -> None:
    """uaccess opens /proc/self/mem on first use: before any test compares fd numbers."""
    _mem()


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = boot()
    try:
        yield k
    finally:
        leaks = k.shutdown(check=False)
        assert leaks == [], "\n".join(leaks)
