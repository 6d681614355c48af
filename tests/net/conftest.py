"""Fixtures of the netlink / netdev tests: ``nl`` is a generic netlink client on the
installed kernel (``mock_kernel``: shut down with the leak check after the test); ``nic``
is the mock NIC of the default topology."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mockkernel_nic import MockNic, nic_dev
from nlclient import GenlClient

from mockkernel import Kernel


@pytest.fixture
def nl(mock_kernel: Kernel) -> Iterator[GenlClient]:
    client = GenlClient()
    client.sock.setblocking(False)
    yield client
    client.close()


@pytest.fixture
def nic(mock_kernel: Kernel) -> MockNic:
    return nic_dev(mock_kernel)
