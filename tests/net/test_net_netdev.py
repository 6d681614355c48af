"""The ``netdev`` family on the mock NIC: DEV_GET, QUEUE_GET, BIND_RX (kernel.md §8), BIND_TX."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest
from mockkernel_nic import MockNic
from nlclient import NLM_F_DUMP, GenlClient, Reply, nest, u32

from mockkernel import Kernel
from mockkernel.driver import dma_buf_subsys
from mockkernel.testing.rdma import VfioDevice, udmabuf
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_DEV_IFINDEX,
    NETDEV_A_DMABUF_FD,
    NETDEV_A_DMABUF_ID,
    NETDEV_A_DMABUF_IFINDEX,
    NETDEV_A_DMABUF_QUEUES,
    NETDEV_A_QUEUE_DMABUF,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_IFINDEX,
    NETDEV_A_QUEUE_NAPI_ID,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_BIND_RX,
    NETDEV_CMD_BIND_TX,
    NETDEV_CMD_DEV_GET,
    NETDEV_CMD_QUEUE_GET,
    NETDEV_QUEUE_TYPE_RX,
    NETDEV_QUEUE_TYPE_TX,
)
from mockkernel.uapi.linux.netlink import NLMSGERR_ATTR_MISS_TYPE, NLMSGERR_ATTR_MSG

ETH0 = 2  # lo is 1
SIZE = 1 << 20
VFIO_BDF = "0000:01:00.0"


@pytest.fixture
def ubuf(mock_kernel: Kernel) -> Iterator[int]:
    fd, memfd = udmabuf(SIZE)
    os.close(memfd)
    yield fd
    os.close(fd)


def q(qid: int, qtype: int = NETDEV_QUEUE_TYPE_RX) -> bytes:
    return nest(
        NETDEV_A_DMABUF_QUEUES, u32(NETDEV_A_QUEUE_ID, qid), u32(NETDEV_A_QUEUE_TYPE, qtype)
    )


def bind_rx(nl: GenlClient, fd: int, *queues: bytes, ifindex: int = ETH0) -> Reply:
    fid = nl.family("netdev")
    return nl.request(
        fid,
        NETDEV_CMD_BIND_RX,
        u32(NETDEV_A_DMABUF_IFINDEX, ifindex),
        u32(NETDEV_A_DMABUF_FD, fd),
        *queues,
    )[0]


def queue_get(nl: GenlClient, qid: int, qtype: int = NETDEV_QUEUE_TYPE_RX) -> Reply:
    return nl.request(
        nl.family("netdev"),
        NETDEV_CMD_QUEUE_GET,
        u32(NETDEV_A_QUEUE_ID, qid),
        u32(NETDEV_A_QUEUE_IFINDEX, ETH0),
        u32(NETDEV_A_QUEUE_TYPE, qtype),
    )[0]


# -- DEV_GET / QUEUE_GET -----------------------------------------------------------------------
def test_dev_get(nl: GenlClient, nic: MockNic) -> None:
    assert nic.netdev.ifindex == ETH0 and nic.netdev.name == "eth0"
    r = nl.request(nl.family("netdev"), NETDEV_CMD_DEV_GET, u32(NETDEV_A_DEV_IFINDEX, ETH0))[0]
    assert r.error is None and r.u32(NETDEV_A_DEV_IFINDEX) == ETH0
    r = nl.request(nl.family("netdev"), NETDEV_CMD_DEV_GET, u32(NETDEV_A_DEV_IFINDEX, 99))[0]
    assert r.error == -errno.ENODEV
    dump = nl.request(nl.family("netdev"), NETDEV_CMD_DEV_GET, flags=NLM_F_DUMP)
    assert [d.u32(NETDEV_A_DEV_IFINDEX) for d in dump[:-1]] == [1, ETH0]


def test_queue_get(nl: GenlClient, nic: MockNic) -> None:
    r = queue_get(nl, 3)
    assert r.u32(NETDEV_A_QUEUE_ID) == 3 and r.u32(NETDEV_A_QUEUE_TYPE) == NETDEV_QUEUE_TYPE_RX
    assert r.u32(NETDEV_A_QUEUE_NAPI_ID) == nic.netdev.rx[3].napi_id
    assert NETDEV_A_QUEUE_DMABUF not in r.attrs()
    assert queue_get(nl, 0, NETDEV_QUEUE_TYPE_TX).error is None
    assert queue_get(nl, 8).error == -errno.EINVAL
    assert queue_get(nl, 0, 2).error == -errno.ERANGE  # NLA_POLICY_MAX(NLA_U32, 1)
    r = nl.request(nl.family("netdev"), NETDEV_CMD_QUEUE_GET, u32(NETDEV_A_QUEUE_ID, 0))[0]
    assert r.error == -errno.EINVAL and NLMSGERR_ATTR_MISS_TYPE in r.tlvs
    dump = nl.request(
        nl.family("netdev"),
        NETDEV_CMD_QUEUE_GET,
        u32(NETDEV_A_QUEUE_IFINDEX, ETH0),
        flags=NLM_F_DUMP,
    )
    assert len(dump) == 8 + 8 + 1


# -- BIND_RX -----------------------------------------------------------------------------------
def test_bind_udmabuf_then_close_unbinds(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic, ubuf: int
) -> None:
    r = bind_rx(nl, ubuf, q(2), q(3))
    assert r.error is None
    bid = r.u32(NETDEV_A_DMABUF_ID)
    assert bid == 1
    assert queue_get(nl, 2).u32(NETDEV_A_QUEUE_DMABUF) == bid
    assert nic.restarts == {2: 1, 3: 1}
    assert len(dma_buf_subsys(mock_kernel).attachments) == 1
    with GenlClient() as other:  # bound queues are visible from another socket
        other.sock.setblocking(False)
        assert queue_get(other, 3).u32(NETDEV_A_QUEUE_DMABUF) == bid
        assert bind_rx(other, ubuf, q(3)).error == -errno.EEXIST
        assert len(dma_buf_subsys(mock_kernel).attachments) == 1  # the failed binding is undone
        nl.close()  # the owner goes: its bindings go with it
        assert NETDEV_A_QUEUE_DMABUF not in queue_get(other, 2).attrs()
        assert nic.restarts == {2: 2, 3: 2}
        assert not dma_buf_subsys(mock_kernel).attachments
        r = bind_rx(other, ubuf, q(3))
        # cyclic ids: the failed EEXIST binding took 2 (the id comes before the queues)
        assert r.u32(NETDEV_A_DMABUF_ID) == 3


def test_os_close_of_the_socket_fd_unbinds(mock_kernel: Kernel, nic: MockNic, ubuf: int) -> None:
    c = GenlClient()
    assert bind_rx(c, ubuf, q(0)).error is None
    os.close(c.sock.fileno())
    c.sock.detach()
    assert nic.netdev.rx[0].binding is None and not dma_buf_subsys(mock_kernel).attachments


def test_bind_vfio_dmabuf_is_eopnotsupp_upstream(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic
) -> None:
    with VfioDevice(VFIO_BDF) as dev:
        fd = dev.export(0, 0x10000)
        try:
            r = bind_rx(nl, fd, q(0))
        finally:
            os.close(fd)
    assert r.error == -errno.EOPNOTSUPP
    assert r.tlvs[NLMSGERR_ATTR_MSG] == [b"Failed to bind dmabuf to device\0"]
    assert nic.netdev.rx[0].binding is None and not dma_buf_subsys(mock_kernel).attachments
    assert nic.restarts == {}


@pytest.mark.parametrize(
    ("attrs", "err"),
    [
        ((u32(NETDEV_A_DMABUF_FD, 0), q(0)), errno.EINVAL),  # no IFINDEX
        ((u32(NETDEV_A_DMABUF_IFINDEX, ETH0), q(0)), errno.EINVAL),  # no FD
        ((u32(NETDEV_A_DMABUF_IFINDEX, ETH0), u32(NETDEV_A_DMABUF_FD, 0)), errno.EINVAL),
    ],
)
def test_bind_missing_attributes(nl: GenlClient, attrs: tuple[bytes, ...], err: int) -> None:
    r = nl.request(nl.family("netdev"), NETDEV_CMD_BIND_RX, *attrs)[0]
    assert r.error == -err and NLMSGERR_ATTR_MISS_TYPE in r.tlvs


def test_bind_validation_order(nl: GenlClient, nic: MockNic, ubuf: int) -> None:
    # 2 before 3: an unknown device wins over a bad queue; lo has no queue management
    assert bind_rx(nl, ubuf, q(99), ifindex=42).error == -errno.ENODEV
    assert bind_rx(nl, ubuf, q(0), ifindex=1).error == -errno.EOPNOTSUPP
    # 3: queue type, missing fields, index
    assert bind_rx(nl, ubuf, q(0, NETDEV_QUEUE_TYPE_TX)).error == -errno.EINVAL
    no_type = nest(NETDEV_A_DMABUF_QUEUES, u32(NETDEV_A_QUEUE_ID, 0))
    r = bind_rx(nl, ubuf, no_type)
    assert r.error == -errno.EINVAL and NLMSGERR_ATTR_MISS_TYPE in r.tlvs
    assert bind_rx(nl, ubuf, q(8)).error == -errno.EINVAL
    # 3 before 5: a bad queue wins over a bad fd
    assert bind_rx(nl, 9999, q(8)).error == -errno.EINVAL
    # 5: dma_buf_get
    assert bind_rx(nl, 9999, q(0)).error == -errno.EBADF
    real = os.open("/dev/null", os.O_RDONLY)
    try:
        assert bind_rx(nl, real, q(0)).error == -errno.EINVAL
    finally:
        os.close(real)
    assert all(rxq.binding is None for rxq in nic.netdev.rx)


@pytest.mark.parametrize(
    ("setup", "err"),
    [
        (lambda n: setattr(n.netdev, "tcp_data_split", False), errno.EINVAL),
        (lambda n: setattr(n.netdev, "hds_thresh", 256), errno.EINVAL),
        (lambda n: setattr(n.netdev, "xdp_prog", True), errno.EEXIST),
        (lambda n: setattr(n.netdev.rx[1], "xsk", True), errno.EBUSY),
        (lambda n: setattr(n.netdev.rx[1], "leased", True), errno.EBUSY),
    ],
)
def test_open_rxq_failures_unbind_everything(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic, ubuf: int, setup: object, err: int
) -> None:
    setup(nic)  # type: ignore[operator]
    r = bind_rx(nl, ubuf, q(0), q(1))
    assert r.error == -err
    assert all(rxq.binding is None for rxq in nic.netdev.rx)
    assert not dma_buf_subsys(mock_kernel).attachments
    assert queue_get(nl, 0).error is None and NETDEV_A_QUEUE_DMABUF not in queue_get(nl, 0).attrs()


def test_bind_rx_id_is_not_an_input(nl: GenlClient, ubuf: int) -> None:
    r = bind_rx(nl, ubuf, q(0), u32(NETDEV_A_DMABUF_ID, 1))  # beyond the op's maxattr
    assert r.error == -errno.EINVAL


def test_bind_tx(nl: GenlClient, ubuf: int) -> None:
    fid = nl.family("netdev")
    r = nl.request(fid, NETDEV_CMD_BIND_TX, u32(NETDEV_A_DMABUF_IFINDEX, ETH0))[0]
    assert r.error == -errno.EINVAL
    r = nl.request(
        fid, NETDEV_CMD_BIND_TX, u32(NETDEV_A_DMABUF_IFINDEX, 42), u32(NETDEV_A_DMABUF_FD, ubuf)
    )[0]
    assert r.error == -errno.ENODEV
    r = nl.request(
        fid, NETDEV_CMD_BIND_TX, u32(NETDEV_A_DMABUF_IFINDEX, ETH0), u32(NETDEV_A_DMABUF_FD, ubuf)
    )[0]
    assert r.error == -errno.EOPNOTSUPP


def test_nic_remove_while_bound_clears_the_device(
    mock_kernel: Kernel, nl: GenlClient, nic: MockNic, ubuf: int
) -> None:
    from mockkernel.net import net_state

    assert bind_rx(nl, ubuf, q(0)).error is None
    (binding,) = net_state(mock_kernel).netdev.bindings.values()
    net_state(mock_kernel).netdev.unregister(nic.netdev)
    assert binding.dev is None
    nl.close()  # the binding is still freed with its socket
    assert not dma_buf_subsys(mock_kernel).attachments


def test_binding_holds_the_dmabuf(mock_kernel: Kernel, nl: GenlClient, nic: MockNic) -> None:
    fd, memfd = udmabuf(SIZE)
    os.close(memfd)
    assert bind_rx(nl, fd, q(0)).error is None
    os.close(fd)
    assert len(dma_buf_subsys(mock_kernel).dmabufs) == 1  # the binding's reference keeps it
    nl.close()
    assert not dma_buf_subsys(mock_kernel).dmabufs
