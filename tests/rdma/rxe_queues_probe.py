"""A probe of rxe's CQ/QP write commands, mapped rings and data path, on the raw ABI.

Recorded on real Linux 7.2 (soft-RoCE ``rxe0``) with
``/work/shared/tools/real-linux/run tests/rdma/rxe_queues_probe.py`` (the guest sees
this checkout read-only); its result is ``golden_rxe_queues.json``, which
``test_rdma_rxe_queues.py::test_the_probe_matches_real_linux`` compares step for step
with the mock.  Each step is an errno name, ``"ok"``, or what the kernel answered.
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent.parent / "plugins"), str(HERE)]

from test_rdma_rxe_queues import (  # noqa: E402
    IB_QP_PKEY_INDEX,
    IB_QP_STATE,
    INIT_MASK,
    RTR_MASK,
    WR_RDMA_WRITE,
    WR_SEND_WITH_IMM,
    Rxe,
    _connect,
    _recv_wqe,
    _send_wqe,
)


def err(f: Callable[..., Any], *a: Any, **k: Any) -> str:
    try:
        f(*a, **k)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno or 0]


def probe() -> dict[str, Any]:
    out: dict[str, Any] = {}

    def err(f, *a, **k):
        try:
            f(*a, **k)
            return "ok"
        except OSError as e:
            return errno.errorcode[e.errno]

    v = Rxe("rxe0")
    pd = v.alloc_pd()
    h, cqe, resp = v.create_cq(10)
    out["cq"] = (cqe, resp.mi.offset, resp.mi.size)
    ring = v.map(resp.mi.offset, resp.mi.size)
    out["cq_ring"] = (ring.log2_elem_size, ring.index_mask)
    out["cq_mmap_again"] = err(
        mmap.mmap, v.fd, resp.mi.size, mmap.MAP_SHARED, offset=resp.mi.offset
    )
    out["cq_mmap_unknown"] = err(mmap.mmap, v.fd, 4096, mmap.MAP_SHARED, offset=1 << 30)
    out["cq0"] = err(v.create_cq, 0)
    out["cq_big"] = err(v.create_cq, 1 << 15)
    out["cq_small_resp"] = err(v.create_cq, 4, 16)
    qa, ra = v.create_qp(pd, h)
    qb, rb = v.create_qp(pd, h)
    out["qp"] = [
        (q.qpn, q.max_send_wr, q.max_recv_wr, q.max_send_sge, q.max_recv_sge, q.max_inline_data)
        for q in (qa, qb)
    ]
    out["qp_mi"] = [(r.sq_mi.offset, r.sq_mi.size, r.rq_mi.offset, r.rq_mi.size) for r in (ra, rb)]
    sq = v.map(ra.sq_mi.offset, ra.sq_mi.size)
    out["sq_ring"] = (sq.log2_elem_size, sq.index_mask)
    rqb = v.map(rb.rq_mi.offset, rb.rq_mi.size)
    out["rq_ring"] = (rqb.log2_elem_size, rqb.index_mask)
    out["qp_ud"] = err(v.create_qp, pd, h, qp_type=4)
    out["qp_big"] = err(v.create_qp, pd, h, wr=1 << 21)
    out["destroy_cq_busy"] = err(v.destroy_cq, h)
    out["post_reset"] = err(v.post_send, qa.qp_handle)
    out["reset_to_rtr"] = err(v.modify_qp, qa.qp_handle, IB_QP_STATE, qp_state=2)
    out["init_no_port"] = err(v.modify_qp, qa.qp_handle, IB_QP_STATE | IB_QP_PKEY_INDEX, qp_state=1)
    out["init_port2"] = err(v.modify_qp, qa.qp_handle, INIT_MASK, qp_state=1, port_num=2)
    out["init"] = err(
        v.modify_qp, qa.qp_handle, INIT_MASK, qp_state=1, port_num=1, qp_access_flags=15
    )
    out["rtr_zero_gid"] = err(
        v.modify_qp,
        qa.qp_handle,
        RTR_MASK,
        qp_state=2,
        dest_qp_num=qb.qpn,
        port_num=1,
        path_mtu=3,
        dgid=0,
    )
    out["rtr_no_grh"] = err(
        v.modify_qp, qa.qp_handle, RTR_MASK, qp_state=2, dest_qp_num=qb.qpn, port_num=1, path_mtu=3
    )
    out["post_init"] = err(v.modify_qp, qa.qp_handle, 0)
    v.modify_qp(qa.qp_handle, IB_QP_STATE, qp_state=0)
    _connect(v, qa.qp_handle, qb.qp_handle, qb.qpn)
    _connect(v, qb.qp_handle, qa.qp_handle, qa.qpn)
    buf_a = mmap.mmap(-1, 8192)
    buf_b = mmap.mmap(-1, 8192)
    addr_a = ctypes.addressof(ctypes.c_char.from_buffer(buf_a))
    addr_b = ctypes.addressof(ctypes.c_char.from_buffer(buf_b))
    acc = 15
    lkey_a, _ = v.reg_user(pd, addr_a, 8192, acc)
    lkey_b, rkey_b = v.reg_user(pd, addr_b, 8192, acc)
    buf_a[0:5] = b"hello"
    sq.produce(_send_wqe(WR_RDMA_WRITE, 1, [(addr_a, 5, lkey_a)], addr_b + 100, rkey_b))
    v.post_send(qa.qp_handle)

    time.sleep(0.5)
    out["write"] = (
        buf_b[100:105].decode(),
        [
            (w.wr_id, w.status, w.opcode, w.byte_len, w.qp_num, w.src_qp, w.wc_flags, w.port_num)
            for w in ring.poll()
        ],
    )
    rqb.produce(_recv_wqe(6, [(addr_b + 4096, 64, lkey_b)]))
    sq.produce(_send_wqe(WR_SEND_WITH_IMM, 5, [(addr_a, 5, lkey_a)], imm=0x12345678))
    v.post_send(qa.qp_handle)
    time.sleep(0.5)
    out["send_ok"] = [
        (
            w.wr_id,
            w.status,
            w.opcode,
            w.byte_len,
            w.qp_num,
            w.src_qp,
            w.wc_flags,
            w.port_num,
            w.ex.imm_data,
        )
        for w in ring.poll()
    ]
    rqb.produce(_recv_wqe(7, [(addr_b + 4096, 4, lkey_b)]))
    sq.produce(_send_wqe(WR_SEND_WITH_IMM, 2, [(addr_a, 5, lkey_a)], imm=0x12345678))
    v.post_send(qa.qp_handle)
    time.sleep(0.5)
    out["send_too_big"] = [
        (w.wr_id, w.status, w.opcode, w.byte_len, w.qp_num, w.src_qp, w.wc_flags, w.port_num)
        for w in ring.poll()
    ]
    sq.produce(_send_wqe(WR_RDMA_WRITE, 3, [(addr_a, 5, lkey_a)], addr_b, rkey_b))
    v.post_send(qa.qp_handle)
    time.sleep(0.5)
    out["after_err"] = [(w.wr_id, w.status, w.opcode) for w in ring.poll()]
    for m in (ring, sq, rqb):
        m.mem.close()
    v.close()
    return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(probe()))
