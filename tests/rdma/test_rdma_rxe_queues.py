"""rxe's CQs, QPs, their mapped queues and the data path, on the raw ABI (issue 14).

What the rdma-core rxe provider does, byte for byte: ``CREATE_CQ``/``CREATE_QP`` write
commands whose driver response is ``rxe_create_cq_resp``/``rxe_create_qp_resp``
(``mminfo`` offset and size), ``mmap`` of the uverbs fd at those offsets, the
``rxe_queue_buf`` header (``log2_elem_size``, ``index_mask``, producer and consumer
indices), ``MODIFY_QP`` RESET -> INIT -> RTR -> RTS, WQEs written into the mapped
queues and ``POST_SEND`` as the doorbell, completions read from the CQ ring.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdma_testing import RXE_TOPOLOGY, errname

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs
from mockkernel.uapi.rdma import ib_user_verbs as V
from mockkernel.uapi.rdma.rdma_user_rxe import (
    rxe_create_cq_resp,
    rxe_create_qp_resp,
    rxe_queue_buf,
    rxe_recv_wqe,
    rxe_send_wqe,
)

pytestmark = pytest.mark.mockkernel(topology=RXE_TOPOLOGY)

LOCAL_WRITE, REMOTE_WRITE, REMOTE_READ, REMOTE_ATOMIC, ON_DEMAND = 1, 2, 4, 8, 64
IBV_QPT_RC, IBV_QPT_UD = 2, 4
IB_QP_STATE, IB_QP_ACCESS_FLAGS, IB_QP_PKEY_INDEX, IB_QP_PORT = 1, 8, 16, 32
IB_QP_AV, IB_QP_PATH_MTU, IB_QP_TIMEOUT, IB_QP_RETRY_CNT = 128, 256, 512, 1024
IB_QP_RNR_RETRY, IB_QP_RQ_PSN, IB_QP_MAX_QP_RD_ATOMIC = 2048, 4096, 8192
IB_QP_MIN_RNR_TIMER, IB_QP_SQ_PSN, IB_QP_MAX_DEST_RD_ATOMIC = 32768, 65536, 131072
IB_QP_DEST_QPN = 1 << 20
INIT_MASK = IB_QP_STATE | IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_ACCESS_FLAGS
RTR_MASK = (
    IB_QP_STATE
    | IB_QP_AV
    | IB_QP_PATH_MTU
    | IB_QP_DEST_QPN
    | IB_QP_RQ_PSN
    | IB_QP_MAX_DEST_RD_ATOMIC
    | IB_QP_MIN_RNR_TIMER
)
RTS_MASK = (
    IB_QP_STATE
    | IB_QP_TIMEOUT
    | IB_QP_RETRY_CNT
    | IB_QP_RNR_RETRY
    | IB_QP_SQ_PSN
    | IB_QP_MAX_QP_RD_ATOMIC
)
WR_RDMA_WRITE, WR_SEND, WR_SEND_WITH_IMM, WR_RDMA_READ, WR_FETCH_ADD = 0, 2, 3, 4, 6
SIGNALED = 2
PRODUCER = rxe_queue_buf.producer_index.offset
CONSUMER = rxe_queue_buf.consumer_index.offset
DATA = ctypes.sizeof(rxe_queue_buf)


@dataclass
class Ring:
    """A mapped rxe queue, read and written as the provider does."""

    mem: mmap.mmap

    @property
    def log2_elem_size(self) -> int:
        return int.from_bytes(self.mem[0:4], "little")

    @property
    def index_mask(self) -> int:
        return int.from_bytes(self.mem[4:8], "little")

    def index(self, off: int) -> int:
        return int.from_bytes(self.mem[off : off + 4], "little")

    def set_index(self, off: int, value: int) -> None:
        self.mem[off : off + 4] = (value & self.index_mask).to_bytes(4, "little")

    def slot(self, i: int) -> int:
        return DATA + ((i & self.index_mask) << self.log2_elem_size)

    def produce(self, data: bytes) -> None:
        p = self.index(PRODUCER)
        self.mem[self.slot(p) : self.slot(p) + len(data)] = data
        self.set_index(PRODUCER, p + 1)

    def poll(self) -> list[V.ib_uverbs_wc]:
        out = []
        while self.index(CONSUMER) != self.index(PRODUCER):
            c = self.index(CONSUMER)
            out.append(V.ib_uverbs_wc.from_buffer_copy(self.mem[self.slot(c) : self.slot(c) + 48]))
            self.set_index(CONSUMER, c + 1)
        return out


class Rxe(Verbs):
    """``rxe0`` opened with a context, plus the write commands of CQs and QPs."""

    def cmd(self, command: int, body: bytes, resp_len: int = 0) -> bytes:
        addr, buf = self.out(max(resp_len, 8))
        data = struct.pack("<Q", addr) + body if resp_len else body
        os.write(self.fd, struct.pack("<IHH", command, (8 + len(data)) // 4, resp_len // 4) + data)
        return buf.raw[:resp_len]

    def create_cq(self, cqe: int, resp_len: int = 24) -> tuple[int, int, rxe_create_cq_resp]:
        body = struct.pack("<QIIiI", 0, cqe, 0, -1, 0)
        raw = self.cmd(V.IB_USER_VERBS_CMD_CREATE_CQ, body, resp_len)
        handle, real_cqe = struct.unpack_from("<II", raw)
        return handle, real_cqe, rxe_create_cq_resp.from_buffer_copy(raw[8:].ljust(16, b"\0"))

    def create_qp(
        self, pd: int, cq: int, wr: int = 16, sge: int = 2, qp_type: int = IBV_QPT_RC
    ) -> tuple[V.ib_uverbs_create_qp_resp, rxe_create_qp_resp]:
        body = struct.pack("<QIIIIIIIIIBBBB", 0, pd, cq, cq, 0, wr, wr, sge, sge, 0, 0,
                           qp_type, 0, 0)  # fmt: skip
        raw = self.cmd(V.IB_USER_VERBS_CMD_CREATE_QP, body, 64)
        return (V.ib_uverbs_create_qp_resp.from_buffer_copy(raw[:32]),
                rxe_create_qp_resp.from_buffer_copy(raw[32:]))  # fmt: skip

    def modify_qp(self, handle: int, mask: int, **fields: int) -> None:
        m = V.ib_uverbs_modify_qp()
        m.qp_handle = handle
        m.attr_mask = mask
        gid = fields.pop("dgid", None)
        if gid is not None:  # 1: the port's GID 0 (soft-RoCE loops back); 0: the zero GID
            m.dest.is_global = 1
            m.dest.port_num = 1
        if gid:
            with open("/sys/class/infiniband/rxe0/ports/1/gids/0") as f:
                m.dest.dgid[:] = list(bytes.fromhex(f.read().strip().replace(":", "")))
        for k, v in fields.items():
            setattr(m, k, v)
        self.cmd(V.IB_USER_VERBS_CMD_MODIFY_QP, bytes(m))

    def post_send(self, qp: int) -> None:
        self.cmd(V.IB_USER_VERBS_CMD_POST_SEND, struct.pack("<IIII", qp, 0, 0, 128), 4)

    def destroy_qp(self, qp: int) -> None:
        self.cmd(V.IB_USER_VERBS_CMD_DESTROY_QP, struct.pack("<II", qp, 0), 4)

    def destroy_cq(self, cq: int) -> None:
        self.cmd(V.IB_USER_VERBS_CMD_DESTROY_CQ, struct.pack("<II", cq, 0), 8)

    def map(self, offset: int, size: int) -> Ring:
        return Ring(mmap.mmap(self.fd, size, mmap.MAP_SHARED, offset=offset))

    def reg_user(self, pd: int, addr: int, length: int, access: int) -> tuple[int, int]:
        """``ibv_reg_mr``: the legacy ``REG_MR`` write command."""
        raw = self.cmd(V.IB_USER_VERBS_CMD_REG_MR,
                       struct.pack("<QQQII", addr, length, addr, pd, access), 12)  # fmt: skip
        _h, lkey, rkey = struct.unpack("<III", raw)
        return lkey, rkey


@pytest.fixture
def dev(mock_kernel: Kernel) -> Iterator[Rxe]:
    v = Rxe("rxe0")
    try:
        yield v
    finally:
        v.close()


def test_create_cq_answers_mminfo_and_the_ring_maps(dev: Rxe) -> None:
    handle, cqe, resp = dev.create_cq(10)
    assert cqe == 15  # 10 + 1 slots, rounded up to 16, one kept empty
    assert resp.mi.offset == mmap.PAGESIZE and resp.mi.size % mmap.PAGESIZE == 0
    ring = dev.map(resp.mi.offset, resp.mi.size)
    assert ring.index_mask == 15
    assert 1 << ring.log2_elem_size >= ctypes.sizeof(V.ib_uverbs_wc)
    assert ring.index(PRODUCER) == ring.index(CONSUMER) == 0
    # the offset maps once (rxe_mmap takes it off the pending list)
    with pytest.raises(OSError) as e:
        mmap.mmap(dev.fd, resp.mi.size, mmap.MAP_SHARED, offset=resp.mi.offset)
    assert errname(e.value) == "EINVAL"
    ring.mem.close()
    dev.destroy_cq(handle)


@pytest.mark.parametrize(
    ("cqe", "resp_len", "err"), [(0, 24, "EINVAL"), (1 << 15, 24, "EINVAL"), (4, 16, "EINVAL")]
)
def test_create_cq_errors(dev: Rxe, cqe: int, resp_len: int, err: str) -> None:
    """cqe outside [1, max_cqe], or no room for ``rxe_create_cq_resp``."""
    with pytest.raises(OSError) as e:
        dev.create_cq(cqe, resp_len)
    assert errname(e.value) == err


def test_mmap_needs_a_context_and_a_pending_offset(mock_kernel: Kernel) -> None:
    with Rxe("rxe0", context=False) as v:
        with pytest.raises(OSError) as e:
            mmap.mmap(v.fd, 4096, mmap.MAP_SHARED, offset=4096)
        assert errname(e.value) == "EINVAL"
        v.get_context()
        with pytest.raises(OSError) as e:
            mmap.mmap(v.fd, 4096, mmap.MAP_SHARED, offset=4096)
        assert errname(e.value) == "EINVAL"


def test_a_cq_in_use_is_busy(dev: Rxe) -> None:
    pd = dev.alloc_pd()
    cq, _cqe, _ = dev.create_cq(4)
    qp, _ = dev.create_qp(pd, cq)
    with pytest.raises(OSError) as e:
        dev.destroy_cq(cq)
    assert e.value.errno == errno.EBUSY
    dev.destroy_qp(qp.qp_handle)
    dev.destroy_cq(cq)
    dev.dealloc_pd(pd)


def _connect(dev: Rxe, a: int, b: int, bqpn: int) -> None:
    rights = LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ | REMOTE_ATOMIC
    dev.modify_qp(a, INIT_MASK, qp_state=1, port_num=1, qp_access_flags=rights)
    dev.modify_qp(a, RTR_MASK, qp_state=2, path_mtu=3, dest_qp_num=bqpn, dgid=1,
                  max_dest_rd_atomic=1, min_rnr_timer=12, port_num=1)  # fmt: skip
    dev.modify_qp(a, RTS_MASK, qp_state=3, timeout=14, retry_cnt=7, rnr_retry=7,
                  max_rd_atomic=1)  # fmt: skip


def test_qp_state_machine_checks_the_attribute_masks(dev: Rxe) -> None:
    pd = dev.alloc_pd()
    cq, _, _ = dev.create_cq(4)
    qp, resp = dev.create_qp(pd, cq)
    assert qp.qpn == 17  # the GSI QP took the pool's first index
    assert resp.sq_mi.offset != resp.rq_mi.offset
    h = qp.qp_handle
    # RESET -> RTR is not a transition; INIT without the port is missing an attribute
    for mask, state in ((IB_QP_STATE, 2), (IB_QP_STATE | IB_QP_PKEY_INDEX, 1)):
        with pytest.raises(OSError) as e:
            dev.modify_qp(h, mask, qp_state=state, port_num=1)
        assert errname(e.value) == "EINVAL"
    with pytest.raises(OSError) as e:  # port 2 does not exist
        dev.modify_qp(h, INIT_MASK, qp_state=1, port_num=2)
    assert errname(e.value) == "EINVAL"
    dev.modify_qp(h, INIT_MASK, qp_state=1, port_num=1)
    with pytest.raises(OSError) as e:  # RoCE: the address vector needs a GRH
        dev.modify_qp(h, RTR_MASK, qp_state=2, dest_qp_num=qp.qpn, port_num=1)
    assert errname(e.value) == "EINVAL"
    with pytest.raises(OSError) as e:  # not ready to send: the doorbell is EINVAL
        dev.post_send(h)
    assert errname(e.value) == "EINVAL"
    dev.destroy_qp(h)
    dev.destroy_cq(cq)
    dev.dealloc_pd(pd)


def _send_wqe(op: int, wr_id: int, sges: list[tuple[int, int, int]], remote: int = 0,
              rkey: int = 0, flags: int = SIGNALED, imm: int = 0,
              add: int = 0) -> bytes:  # fmt: skip
    w = rxe_send_wqe()
    w.wr.wr_id = wr_id
    w.wr.opcode = op
    w.wr.send_flags = flags
    w.wr.ex.imm_data = imm
    if op == WR_FETCH_ADD:
        w.wr.wr.atomic.remote_addr = remote
        w.wr.wr.atomic.compare_add = add
        w.wr.wr.atomic.rkey = rkey
    else:
        w.wr.wr.rdma.remote_addr = remote
        w.wr.wr.rdma.rkey = rkey
    w.iova = remote
    w.dma.length = w.dma.resid = sum(n for _a, n, _k in sges)
    w.dma.num_sge = len(sges)
    return bytes(w) + b"".join(struct.pack("<QII", *s) for s in sges)


def _recv_wqe(wr_id: int, sges: list[tuple[int, int, int]]) -> bytes:
    w = rxe_recv_wqe()
    w.wr_id = wr_id
    w.dma.length = w.dma.resid = sum(n for _a, n, _k in sges)
    w.dma.num_sge = len(sges)
    return bytes(w) + b"".join(struct.pack("<QII", *s) for s in sges)


@pytest.mark.parametrize("odp", [False, True])
def test_two_qps_rdma_write_send_read_and_atomics(dev: Rxe, odp: bool) -> None:
    """Two connected RC QPs on rxe0: the data moves through the mapped rings."""
    pd = dev.alloc_pd()
    cq, cqe, cresp = dev.create_cq(16)
    cq_ring = dev.map(cresp.mi.offset, cresp.mi.size)
    qa, ra = dev.create_qp(pd, cq)
    qb, rb = dev.create_qp(pd, cq)
    sq_a = dev.map(ra.sq_mi.offset, ra.sq_mi.size)
    rq_b = dev.map(rb.rq_mi.offset, rb.rq_mi.size)
    _connect(dev, qa.qp_handle, qb.qp_handle, qb.qpn)
    _connect(dev, qb.qp_handle, qa.qp_handle, qa.qpn)
    buf_a = mmap.mmap(-1, 8192)
    buf_b = mmap.mmap(-1, 8192)
    addr_a = ctypes.addressof(ctypes.c_char.from_buffer(buf_a))
    addr_b = ctypes.addressof(ctypes.c_char.from_buffer(buf_b))
    access = LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ | REMOTE_ATOMIC | (ON_DEMAND if odp else 0)
    lkey_a, _ = dev.reg_user(pd, addr_a, 8192, access)
    lkey_b, rkey_b = dev.reg_user(pd, addr_b, 8192, access)

    # RDMA WRITE: a's bytes land in b's MR
    buf_a[0:5] = b"hello"
    sq_a.produce(_send_wqe(WR_RDMA_WRITE, 1, [(addr_a, 5, lkey_a)], addr_b + 100, rkey_b))
    dev.post_send(qa.qp_handle)
    assert buf_b[100:105] == b"hello"
    wcs = cq_ring.poll()
    assert [(w.wr_id, w.status, w.opcode, w.byte_len, w.qp_num) for w in wcs] == [
        (1, 0, V.IB_UVERBS_WC_RDMA_WRITE, 5, qa.qpn)
    ]
    assert sq_a.index(CONSUMER) == 1

    # SEND with immediate: b's posted receive takes it, both complete
    rq_b.produce(_recv_wqe(7, [(addr_b + 4096, 64, lkey_b)]))
    buf_a[8:14] = b"world!"
    sq_a.produce(_send_wqe(WR_SEND_WITH_IMM, 2, [(addr_a + 8, 6, lkey_a)], imm=0x12345678))
    dev.post_send(qa.qp_handle)
    assert buf_b[4096:4102] == b"world!"
    got = {(w.wr_id, w.status, w.opcode, w.byte_len, w.wc_flags) for w in cq_ring.poll()}
    assert got == {(2, 0, V.IB_UVERBS_WC_SEND, 6, 2), (7, 0, 128, 6, 3)}  # WITH_IMM, +GRH

    # RDMA READ back and fetch-and-add
    buf_b[200:208] = (41).to_bytes(8, "little")
    sq_a.produce(_send_wqe(WR_RDMA_READ, 3, [(addr_a + 300, 5, lkey_a)], addr_b + 100, rkey_b))
    sq_a.produce(_send_wqe(WR_FETCH_ADD, 4, [(addr_a + 400, 8, lkey_a)], addr_b + 200, rkey_b,
                           add=1))  # fmt: skip
    dev.post_send(qa.qp_handle)
    assert buf_a[300:305] == b"hello"
    assert int.from_bytes(buf_a[400:408], "little") == 41
    assert int.from_bytes(buf_b[200:208], "little") == 42
    assert [(w.wr_id, w.status) for w in cq_ring.poll()] == [(3, 0), (4, 0)]

    # a bad rkey: remote access error, the QP goes to ERR and flushes the rest
    sq_a.produce(_send_wqe(WR_RDMA_WRITE, 5, [(addr_a, 5, lkey_a)], addr_b, rkey_b ^ 0xFF))
    sq_a.produce(_send_wqe(WR_RDMA_WRITE, 6, [(addr_a, 5, lkey_a)], addr_b, rkey_b))
    dev.post_send(qa.qp_handle)
    assert [(w.wr_id, w.status) for w in cq_ring.poll()] == [(5, 10), (6, 5)]
    assert buf_b[0:5] == bytes(5)
    # a QP in ERR takes the doorbell (its state is past RTS) and flushes what it finds
    sq_a.produce(_send_wqe(WR_RDMA_WRITE, 8, [(addr_a, 5, lkey_a)], addr_b, rkey_b))
    dev.post_send(qa.qp_handle)
    assert [(w.wr_id, w.status) for w in cq_ring.poll()] == [(8, 5)]
    assert buf_b[0:5] == bytes(5)

    for ring in (cq_ring, sq_a, rq_b):
        ring.mem.close()
    del addr_a, addr_b
    dev.destroy_qp(qa.qp_handle)
    dev.destroy_qp(qb.qp_handle)
    dev.destroy_cq(cq)
    assert cqe == 31


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sq=st.lists(st.binary(min_size=0, max_size=256), min_size=1, max_size=4),
    rq=st.lists(st.binary(min_size=0, max_size=72), max_size=3),
    fields=st.lists(
        st.tuples(st.sampled_from([12, 16, 184, 196]), st.integers(0, 2**32 - 1)), max_size=4
    ),
)
def test_whatever_userspace_writes_into_the_rings_completes(
    mock_kernel: Kernel, sq: list[bytes], rq: list[bytes], fields: list[tuple[int, int]]
) -> None:
    """The rings are the program's memory: any bytes in a WQE (opcode, flags, SGE count,
    lengths, keys) end in a completion with a status, never in a kernel error."""
    with Rxe("rxe0") as dev:
        pd = dev.alloc_pd()
        cq, _, cresp = dev.create_cq(64)
        cq_ring = dev.map(cresp.mi.offset, cresp.mi.size)
        qa, ra = dev.create_qp(pd, cq)
        qb, rb = dev.create_qp(pd, cq)
        sq_a = dev.map(ra.sq_mi.offset, ra.sq_mi.size)
        rq_b = dev.map(rb.rq_mi.offset, rb.rq_mi.size)
        _connect(dev, qa.qp_handle, qb.qp_handle, qb.qpn)
        _connect(dev, qb.qp_handle, qa.qp_handle, qa.qpn)
        for data in rq:
            rq_b.produce(data)
        for data in sq:
            wqe = bytearray(data.ljust(ctypes.sizeof(rxe_send_wqe), b"\0"))
            for off, value in fields:  # opcode, send_flags, dma.length, dma.num_sge
                struct.pack_into("<I", wqe, off, value)
            sq_a.produce(bytes(wqe))
        dev.post_send(qa.qp_handle)
        wcs = cq_ring.poll()
        assert all(0 <= w.status <= 21 for w in wcs)
        for ring in (cq_ring, sq_a, rq_b):
            ring.mem.close()


def test_the_probe_matches_real_linux(mock_kernel: Kernel) -> None:
    """``rxe_queues_probe.py``, recorded on real Linux 7.2's rxe (``golden_rxe_queues.json``):
    response sizes, mmap offsets and sizes, ring geometry, QP numbers and capacities,
    the errnos of the state machine and of bad CQs, completions (status, opcode, flags,
    port) of a WRITE, a SEND with immediate, a SEND too big for its receive, a flush."""
    import json
    from pathlib import Path

    from rxe_queues_probe import probe

    golden = json.loads((Path(__file__).parent / "golden_rxe_queues.json").read_text())
    got = json.loads(json.dumps(probe()))
    assert list(got) == list(golden)
    for step, want in golden.items():
        assert got[step] == want, step


def test_a_send_without_a_receive_waits_for_the_next_doorbell(dev: Rxe) -> None:
    """RNR NAK with ``rnr_retry`` 7 (for ever): the SEND stays posted until a receive is
    there and some doorbell on the device runs the requester again."""
    pd = dev.alloc_pd()
    cq, _, cresp = dev.create_cq(16)
    cq_ring = dev.map(cresp.mi.offset, cresp.mi.size)
    qa, ra = dev.create_qp(pd, cq)
    qb, rb = dev.create_qp(pd, cq)
    sq_a = dev.map(ra.sq_mi.offset, ra.sq_mi.size)
    sq_b = dev.map(rb.sq_mi.offset, rb.sq_mi.size)
    rq_b = dev.map(rb.rq_mi.offset, rb.rq_mi.size)
    _connect(dev, qa.qp_handle, qb.qp_handle, qb.qpn)
    _connect(dev, qb.qp_handle, qa.qp_handle, qa.qpn)
    buf = mmap.mmap(-1, 8192)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    lkey, _ = dev.reg_user(pd, addr, 8192, LOCAL_WRITE | ON_DEMAND)
    buf[0:3] = b"abc"
    sq_a.produce(_send_wqe(WR_SEND, 1, [(addr, 3, lkey)]))
    dev.post_send(qa.qp_handle)
    assert cq_ring.poll() == [] and sq_a.index(CONSUMER) == 0  # not yet
    rq_b.produce(_recv_wqe(2, [(addr + 4096, 16, lkey)]))
    dev.post_send(qb.qp_handle)  # b's (empty) doorbell lets the requester retry
    assert sorted((w.wr_id, w.status) for w in cq_ring.poll()) == [(1, 0), (2, 0)]
    assert buf[4096:4099] == b"abc"
    for ring in (cq_ring, sq_a, sq_b, rq_b):
        ring.mem.close()
