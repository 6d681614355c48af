"""Fixtures of the netlink / netdev tests: ``nl`` is a generic netlink client on the
installed kernel (``mock_kernel``: shut down with the leak check after the test); ``nic``
is the mock NIC of the default topology."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

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


@pytest.fixture
def bound_udmabuf(nl: GenlClient) -> Iterator[Callable[[int, int], int]]:
    """``bound_udmabuf(pages, queue)``: a udmabuf of ``pages`` pages bound to the NIC's RX
    ``queue`` over ``nl``; returns its memfd (to read what landed).  At teardown ``nl`` is
    closed first (the unbind), then the dma-buf and the memfd."""
    from test_net_devmem_rx import bind

    from mockkernel.driver import PAGE_SIZE
    from mockkernel.testing.rdma import udmabuf

    made: list[int] = []

    def make(pages: int, queue: int = 1) -> int:
        fd, memfd = udmabuf(pages * PAGE_SIZE)
        made.extend((fd, memfd))
        bind(nl, fd, queue=queue)
        return memfd

    yield make
    nl.close()
    for fd in made:
        os.close(fd)
