"""Fixtures of the netlink / netdev tests: ``nl`` is a generic netlink client on the
installed kernel (``mock_kernel``: shut down with the leak check after the test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nlclient import GenlClient

from mockkernel import Kernel


@pytest.fixture
def nl(mock_kernel: Kernel) -> Iterator[GenlClient]:
    client = GenlClient()
    client.sock.setblocking(False)
    yield client
    client.close()
