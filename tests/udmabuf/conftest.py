"""Fixtures of the udmabuf tests.

``dev``: ``/dev/udmabuf`` opened on the installed kernel (``mock_kernel``, from the
project's pytest plugin: shut down with the leak check after the test).  ``fds``: a
list the test appends every fd it opens to; all are closed afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from mockkernel import Kernel
from mockkernel.uaccess import _mem


@pytest.fixture(autouse=True, scope="session")
def _uaccess_warm() -> None:
    """uaccess opens /proc/self/mem on first use: before any test compares fd numbers."""
    _mem()


@pytest.fixture
def fds(mock_kernel: Kernel) -> Iterator[list[int]]:
    opened: list[int] = []
    yield opened
    for fd in reversed(opened):
        with contextlib.suppress(OSError):
            os.close(fd)


@pytest.fixture
def dev(fds: list[int]) -> int:
    fd = os.open("/dev/udmabuf", os.O_RDWR)
    fds.append(fd)
    return fd
