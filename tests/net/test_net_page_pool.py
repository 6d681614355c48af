"""The netdev family's page-pool, NAPI and qstats commands over the mock NIC's model: a
NAPI instance and a page pool per RX queue (ids consistent with ``queue-get``), a new
pool on each queue restart (with the devmem binding's id), the "page-pool" group's
notifications, strict policies and their errnos."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable

from mockkernel_nic import MockNic
from nlclient import NLM_F_DUMP, GenlClient, Reply, nest, parse_attrs, split, u32

from mockkernel import Kernel
from mockkernel.testing.net import TcpPeer
from mockkernel.uapi.linux.netdev import (
    NETDEV_A_NAPI_DEFER_HARD_IRQS,
    NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT,
    NETDEV_A_NAPI_ID,
    NETDEV_A_NAPI_IFINDEX,
    NETDEV_A_NAPI_THREADED,
    NETDEV_A_PAGE_POOL_DETACH_TIME,
    NETDEV_A_PAGE_POOL_DMABUF,
    NETDEV_A_PAGE_POOL_ID,
    NETDEV_A_PAGE_POOL_IFINDEX,
    NETDEV_A_PAGE_POOL_INFLIGHT,
    NETDEV_A_PAGE_POOL_NAPI_ID,
    NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST,
    NETDEV_A_PAGE_POOL_STATS_INFO,
    NETDEV_A_QSTATS_IFINDEX,
    NETDEV_A_QSTATS_QUEUE_ID,
    NETDEV_A_QSTATS_RX_BYTES,
    NETDEV_A_QSTATS_RX_PACKETS,
    NETDEV_A_QSTATS_SCOPE,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_IFINDEX,
    NETDEV_A_QUEUE_NAPI_ID,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_NAPI_GET,
    NETDEV_CMD_NAPI_SET,
    NETDEV_CMD_PAGE_POOL_ADD_NTF,
    NETDEV_CMD_PAGE_POOL_DEL_NTF,
    NETDEV_CMD_PAGE_POOL_GET,
    NETDEV_CMD_PAGE_POOL_STATS_GET,
    NETDEV_CMD_QSTATS_GET,
    NETDEV_CMD_QUEUE_GET,
    NETDEV_QUEUE_TYPE_RX,
)

ETH0 = 2
SOL_NETLINK, ADD = 270, 1


def _u(r: Reply, atype: int) -> int:
    raw = r.attrs()[atype][0]
    return int(struct.unpack("=I" if len(raw) == 4 else "=Q", raw)[0])


def _dump(nl: GenlClient, cmd: int, *attrs: bytes) -> list[Reply]:
    replies = nl.request(nl.family("netdev"), cmd, *attrs, flags=NLM_F_DUMP)
    assert replies[-1].error is None
    return replies[:-1]


def test_each_rx_queue_has_a_napi_and_a_page_pool(nl: GenlClient) -> None:
    queues = {
        _u(r, NETDEV_A_QUEUE_ID): _u(r, NETDEV_A_QUEUE_NAPI_ID)
        for r in _dump(nl, NETDEV_CMD_QUEUE_GET, u32(NETDEV_A_QUEUE_IFINDEX, ETH0))
        if _u(r, NETDEV_A_QUEUE_TYPE) == NETDEV_QUEUE_TYPE_RX
    }
    napis = _dump(nl, NETDEV_CMD_NAPI_GET, u32(NETDEV_A_NAPI_IFINDEX, ETH0))
    napi_ids = [_u(r, NETDEV_A_NAPI_ID) for r in napis]
    assert napi_ids == sorted(queues.values(), reverse=True)  # dev->napi_list order
    pools = _dump(nl, NETDEV_CMD_PAGE_POOL_GET)
    assert len(pools) == len(queues)  # lo has none
    assert {_u(r, NETDEV_A_PAGE_POOL_NAPI_ID) for r in pools} == set(queues.values())
    assert all(_u(r, NETDEV_A_PAGE_POOL_IFINDEX) == ETH0 for r in pools)
    assert all(_u(r, NETDEV_A_PAGE_POOL_INFLIGHT) == 0 for r in pools)
    pid = _u(pools[0], NETDEV_A_PAGE_POOL_ID)
    (one,) = nl.request(
        nl.family("netdev"), NETDEV_CMD_PAGE_POOL_GET, u32(NETDEV_A_PAGE_POOL_ID, pid), flags=0
    )
    assert one.payload[4:] == pools[0].payload[4:]
    (stats,) = nl.request(
        nl.family("netdev"),
        NETDEV_CMD_PAGE_POOL_STATS_GET,
        nest(NETDEV_A_PAGE_POOL_STATS_INFO, u32(NETDEV_A_PAGE_POOL_ID, pid)),
        flags=0,
    )
    info = parse_attrs(stats.attrs()[NETDEV_A_PAGE_POOL_STATS_INFO][0])
    assert struct.unpack("=I", info[NETDEV_A_PAGE_POOL_ID][0]) == (pid,)
    assert NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST in stats.attrs()


def test_refusals(nl: GenlClient) -> None:
    fam = nl.family("netdev")
    (r,) = nl.request(fam, NETDEV_CMD_PAGE_POOL_GET, u32(NETDEV_A_PAGE_POOL_ID, 999999))
    assert r.error == -errno.ENOENT
    (r,) = nl.request(fam, NETDEV_CMD_PAGE_POOL_GET, u32(NETDEV_A_PAGE_POOL_ID, 0))
    assert r.error == -errno.ERANGE  # NLA_POLICY_MIN 1
    (r,) = nl.request(fam, NETDEV_CMD_PAGE_POOL_GET)
    assert r.error == -errno.EINVAL and r.tlvs  # missing attribute, named in the ack
    (r,) = nl.request(
        fam,
        NETDEV_CMD_PAGE_POOL_STATS_GET,
        nest(
            NETDEV_A_PAGE_POOL_STATS_INFO,
            u32(NETDEV_A_PAGE_POOL_ID, 1),
            u32(NETDEV_A_PAGE_POOL_IFINDEX, ETH0),
        ),
    )
    assert r.error == -errno.EINVAL
    assert r.tlvs[1] == [b"selecting by ifindex not supported\0"]
    (r,) = nl.request(fam, NETDEV_CMD_NAPI_GET, u32(NETDEV_A_NAPI_ID, 7))
    assert r.error == -errno.ENOENT
    (r,) = nl.request(
        fam, NETDEV_CMD_NAPI_SET, u32(NETDEV_A_NAPI_ID, 8192), u32(NETDEV_A_NAPI_THREADED, 3)
    )
    assert r.error == -errno.ERANGE
    (r,) = nl.request(fam, NETDEV_CMD_QSTATS_GET)  # dump only
    assert r.error == -errno.EOPNOTSUPP


def test_napi_set_is_reported_by_napi_get(nl: GenlClient) -> None:
    fam = nl.family("netdev")
    napi = _u(_dump(nl, NETDEV_CMD_NAPI_GET, u32(NETDEV_A_NAPI_IFINDEX, ETH0))[0], NETDEV_A_NAPI_ID)
    (ack,) = nl.request(
        fam,
        NETDEV_CMD_NAPI_SET,
        u32(NETDEV_A_NAPI_ID, napi),
        u32(NETDEV_A_NAPI_DEFER_HARD_IRQS, 5),
        u32(NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT, 20000),
    )
    assert ack.error == 0
    (got,) = nl.request(fam, NETDEV_CMD_NAPI_GET, u32(NETDEV_A_NAPI_ID, napi), flags=0)
    assert _u(got, NETDEV_A_NAPI_IFINDEX) == ETH0
    assert _u(got, NETDEV_A_NAPI_DEFER_HARD_IRQS) == 5
    assert _u(got, NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT) == 20000


def test_a_binding_makes_a_new_pool_and_tells_the_group(
    mock_kernel: Kernel, nl: GenlClient, bound_udmabuf: Callable[[int, int], int]
) -> None:
    from mockkernel.net import net_state

    offset = net_state(mock_kernel).netdev.family.mcgrp_offset
    before = {_u(r, NETDEV_A_PAGE_POOL_ID) for r in _dump(nl, NETDEV_CMD_PAGE_POOL_GET)}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16) as member:
        member.setsockopt(SOL_NETLINK, ADD, offset + 1)  # "page-pool"
        bound_udmabuf(4, 1)
        member.setblocking(False)
        ntfs = [(r.payload[0], _u(r, NETDEV_A_PAGE_POOL_ID)) for r in split(member.recv(65536))]
        ntfs += [(r.payload[0], _u(r, NETDEV_A_PAGE_POOL_ID)) for r in split(member.recv(65536))]
    (added_cmd, added), (deleted_cmd, deleted) = ntfs
    assert (added_cmd, deleted_cmd) == (NETDEV_CMD_PAGE_POOL_ADD_NTF, NETDEV_CMD_PAGE_POOL_DEL_NTF)
    assert deleted in before and added not in before
    pools = {_u(r, NETDEV_A_PAGE_POOL_ID): r for r in _dump(nl, NETDEV_CMD_PAGE_POOL_GET)}
    assert set(pools) == before - {deleted} | {added}
    assert NETDEV_A_PAGE_POOL_DMABUF in pools[added].attrs()
    assert sum(NETDEV_A_PAGE_POOL_DMABUF in r.attrs() for r in pools.values()) == 1


def test_qstats_count_what_the_queues_received(mock_kernel: Kernel, nl: GenlClient) -> None:
    def totals() -> tuple[int, int]:
        (dev,) = _dump(nl, NETDEV_CMD_QSTATS_GET, u32(NETDEV_A_QSTATS_IFINDEX, ETH0))
        return _u(dev, NETDEV_A_QSTATS_RX_PACKETS), _u(dev, NETDEV_A_QSTATS_RX_BYTES)

    assert totals() == (0, 0)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("192.0.2.1", 5201))
    server.listen(1)
    peer = TcpPeer.connect(mock_kernel, "192.0.2.1", 5201)
    conn, _ = server.accept()
    peer.send(b"x" * 100)
    assert conn.recv(200) == b"x" * 100
    assert totals() == (1, 100)
    per_queue = _dump(nl, NETDEV_CMD_QSTATS_GET, u32(NETDEV_A_QSTATS_SCOPE, 1))
    assert [_u(r, NETDEV_A_QSTATS_QUEUE_ID) for r in per_queue] == list(range(8))
    assert _u(per_queue[0], NETDEV_A_QSTATS_RX_BYTES) == 100  # no binding: queue 0
    peer.close()
    conn.close()
    server.close()
    assert not [fd for fd in mock_kernel.init_process.files if fd != nl.sock.fileno()]


def test_a_pool_with_niovs_out_stays_detached_until_they_return(
    mock_kernel: Kernel, nic: MockNic
) -> None:
    """Unbinding restarts the queue (a new pool); the old one still has a niov behind a
    user token, so it stays listed with ``inflight`` 1 and a ``detach-time``, and goes
    with the token (``SO_DEVMEM_DONTNEED``)."""
    from test_net_devmem_binding_lifetime import ANC, DONTNEED, QUEUE, tokens_of
    from test_net_devmem_rx import bind

    from mockkernel.driver import PAGE_SIZE
    from mockkernel.net.devmem_tcp import MSG_SOCK_DEVMEM
    from mockkernel.testing.net import connect
    from mockkernel.testing.rdma import udmabuf

    fd, memfd = udmabuf(4 * PAGE_SIZE)
    owner = GenlClient()
    bind(owner, fd, queue=QUEUE)
    peer, sock = connect(mock_kernel, nic.netdev, QUEUE)
    peer.send(b"held")
    _data, anc, _f, _ = sock.recvmsg(100, ANC, MSG_SOCK_DEVMEM)
    ((_off, _size, token, _dmabuf_id, _),) = tokens_of(anc)
    with GenlClient() as nl:
        (bound,) = [
            r for r in _dump(nl, NETDEV_CMD_PAGE_POOL_GET) if NETDEV_A_PAGE_POOL_DMABUF in r.attrs()
        ]
        assert _u(bound, NETDEV_A_PAGE_POOL_INFLIGHT) == 1
        old = _u(bound, NETDEV_A_PAGE_POOL_ID)
        owner.close()  # the unbind
        pools = {_u(r, NETDEV_A_PAGE_POOL_ID): r for r in _dump(nl, NETDEV_CMD_PAGE_POOL_GET)}
        assert len(pools) == 9  # 8 queues' pools and the detached one
        detached = pools[old].attrs()
        assert NETDEV_A_PAGE_POOL_DETACH_TIME in detached
        assert NETDEV_A_PAGE_POOL_DMABUF not in detached  # the binding is gone
        assert _u(pools[old], NETDEV_A_PAGE_POOL_INFLIGHT) == 1
        assert sock.setsockopt(*DONTNEED, struct.pack("=II", token, 1)) == 1
        assert old not in {
            _u(r, NETDEV_A_PAGE_POOL_ID) for r in _dump(nl, NETDEV_CMD_PAGE_POOL_GET)
        }
    sock.close()
    os.close(fd)
    os.close(memfd)
