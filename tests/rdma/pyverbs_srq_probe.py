"""Shared receive queues on ``rxe0``, through pyverbs.

Runs unchanged on real Linux 7.2's soft-RoCE (``/work/shared/tools/real-linux/run``,
rdma-core 59's ``build/python`` on ``PYTHONPATH``; ``golden_rxe_srq.json`` is its output)
and under mockkernel's supervisor (``test_rdma_rxe_ud.py``).  Two RC QPs on one SRQ
receive SENDs from two others; the SRQ's limit event comes on the async fd.
"""

from __future__ import annotations

import errno
import json
import os
import select
import sys

import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.srq import SRQ, SrqAttr, SrqInitAttr
from pyverbs.wr import SGE, RecvWR, SendWR

WAIT_MS = 3000
QUIET_MS = 300


def err(f, *a, **k):  # type: ignore[no-untyped-def]
    try:
        r = f(*a, **k)
        return "ok" if r is None or not isinstance(r, (int, str, list, tuple)) else r
    except Exception as ex:  # pyverbs' errors carry the errno
        code = getattr(ex, "error_code", None) or getattr(ex, "errno", None)
        return errno.errorcode.get(abs(code or 0), str(ex))


def ready(fd: int, ms: int) -> int:
    p = select.poll()
    p.register(fd, select.POLLIN)
    got = p.poll(ms)
    return got[0][1] if got else 0


def main() -> dict[str, object]:
    out: dict[str, object] = {}
    before = set(os.listdir("/proc/self/fd"))
    ctx = d.Context(name="rxe0")
    async_fd = min({int(f) for f in set(os.listdir("/proc/self/fd")) - before} - {ctx.cmd_fd})
    pd = PD(ctx)

    def srq_attrs(s: SRQ) -> list[int]:
        a = s.query()
        return [a.max_wr, a.max_sge, a.srq_limit]

    out["bad_wr0"] = err(SRQ, pd, SrqInitAttr(SrqAttr(max_wr=0, max_sge=1)))
    out["bad_sge"] = err(SRQ, pd, SrqInitAttr(SrqAttr(max_wr=4, max_sge=28)))
    out["bad_wr_big"] = err(SRQ, pd, SrqInitAttr(SrqAttr(max_wr=(1 << 20) + 1, max_sge=1)))
    srq = SRQ(pd, SrqInitAttr(SrqAttr(max_wr=10, max_sge=2, srq_limit=3)))
    out["query_new"] = srq_attrs(srq)
    out["limit_too_big"] = err(srq.modify, SrqAttr(srq_limit=16), e.IBV_SRQ_LIMIT)
    out["resize"] = err(srq.modify, SrqAttr(max_wr=20), e.IBV_SRQ_MAX_WR)
    out["query_resized"] = srq_attrs(srq)
    out["limit"] = err(srq.modify, SrqAttr(srq_limit=4), e.IBV_SRQ_LIMIT)
    out["query_limit"] = srq_attrs(srq)
    cq = CQ(ctx, 32)
    cap = QPCap(max_send_wr=8, max_recv_wr=8, max_send_sge=1, max_recv_sge=1)
    senders = [QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq, cap=cap)) for _ in range(2)]
    takers = [QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq, cap=cap, srq=srq))
              for _ in range(2)]  # fmt: skip
    gid = ctx.query_gid(1, 0)
    for x, y in (*zip(senders, takers, strict=True), *zip(takers, senders, strict=True)):
        attr = QPAttr(port_num=1)
        attr.qp_access_flags = e.IBV_ACCESS_LOCAL_WRITE
        x.to_init(attr)
        attr = QPAttr(port_num=1)
        attr.path_mtu = e.IBV_MTU_1024
        attr.dest_qp_num = y.qp_num
        attr.ah_attr = AHAttr(gr=GlobalRoute(dgid=gid, sgid_index=0), is_global=1, port_num=1)
        attr.max_dest_rd_atomic = 1
        attr.min_rnr_timer = 12
        x.to_rtr(attr)
        attr = QPAttr(port_num=1)
        attr.timeout, attr.retry_cnt, attr.rnr_retry, attr.max_rd_atomic = 14, 7, 7, 1
        x.to_rts(attr)
    mr = MR(pd, 4096, e.IBV_ACCESS_LOCAL_WRITE)
    mr.write(b"0123456789abcdef", 16)
    for i in range(6):
        srq.post_recv(RecvWR(wr_id=100 + i, num_sge=1, sg=[SGE(mr.buf + 1024 + 64 * i, 64,
                                                                 mr.lkey)]))  # fmt: skip

    def poll(n: int) -> list[tuple[int, int, int, str]]:
        got: list[tuple[int, int, int, str]] = []
        for _ in range(WAIT_MS):
            k, wcs = cq.poll()
            for w in wcs[:k]:
                who = "t0" if w.qp_num == takers[0].qp_num else "t1" if w.qp_num == \
                    takers[1].qp_num else "s"  # fmt: skip
                got.append((w.wr_id, int(w.status), w.byte_len, who))
            if len(got) >= n:
                break
            select.select([], [], [], 0.001)
        return sorted(got)

    def send(s: QP, wr_id: int) -> None:
        sge = SGE(mr.buf, 8, mr.lkey)
        wr = SendWR(wr_id=wr_id, opcode=e.IBV_WR_SEND, num_sge=1, sg=[sge],
                    send_flags=e.IBV_SEND_SIGNALED)  # fmt: skip
        s.post_send(wr)

    send(senders[0], 1)
    send(senders[1], 2)
    two = poll(4)  # (which taker gets which receive is a race on real rxe)
    out["two_sends"] = [w[:3] for w in two]
    out["two_sends_takers"] = sorted(w[3] for w in two)
    out["async_before_limit"] = ready(async_fd, 0)
    send(senders[0], 3)  # 3 of 6 left: below the limit of 4
    out["third_send"] = poll(2)
    out["async_poll"] = ready(async_fd, WAIT_MS)
    events = []
    while ready(async_fd, QUIET_MS):
        ev = ctx.get_async_event()
        events.append(int(ev.event_type))
        ev.ack()
    out["async_events"] = events
    out["query_after"] = srq_attrs(srq)
    for x in (*senders, *takers, mr, srq, cq, pd, ctx):
        x.close()
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    print()
