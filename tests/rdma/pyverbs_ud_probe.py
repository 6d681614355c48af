"""Address handles and UD QPs on ``rxe0``, through pyverbs.

Runs unchanged on real Linux 7.2's soft-RoCE (``/work/shared/tools/real-linux/run``,
rdma-core 59's ``build/python`` on ``PYTHONPATH``; ``golden_rxe_ud.json`` is its output)
and under mockkernel's supervisor (``test_rdma_rxe_ud.py``).  Two UD QPs of one process:
``a`` SENDs to ``b`` through an AH of the port's own GID; what ``b`` receives starts with
the 40-byte GRH.
"""

from __future__ import annotations

import errno
import json
import select
import sys

import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AH, GID, AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, RecvWR, SendWR

QKEY = 0x11111111
WAIT_MS = 3000
QUIET_MS = 300


def err(f, *a, **k):  # type: ignore[no-untyped-def]
    try:
        f(*a, **k)
        return "ok"
    except Exception as ex:  # pyverbs raises PyverbsRDMAError with the errno
        code = getattr(ex, "error_code", None) or getattr(ex, "errno", None)
        return errno.errorcode.get(abs(code or 0), str(ex))


def main() -> dict[str, object]:
    out: dict[str, object] = {}
    ctx = d.Context(name="rxe0")
    pd = PD(ctx)
    cq = CQ(ctx, 16)
    cap = QPCap(max_send_wr=8, max_recv_wr=8, max_send_sge=1, max_recv_sge=1)
    qps = [QP(pd, QPInitAttr(qp_type=e.IBV_QPT_UD, scq=cq, rcq=cq, cap=cap)) for _ in range(2)]
    a, b = qps
    for q in qps:
        attr = QPAttr(port_num=1)
        attr.qkey = QKEY
        q.to_init(attr)
        q.to_rtr(QPAttr(port_num=1))
        attr = QPAttr(port_num=1)
        attr.sq_psn = 0
        q.to_rts(attr)
    gid = ctx.query_gid(1, 0)
    route = GlobalRoute(dgid=gid, sgid_index=0, hop_limit=64)
    ah = AH(pd, attr=AHAttr(gr=route, is_global=1, port_num=1))
    out["ah_no_grh"] = err(AH, pd, attr=AHAttr(is_global=0, port_num=1))
    out["ah_port2"] = err(AH, pd, attr=AHAttr(gr=route, is_global=1, port_num=2))
    far = GlobalRoute(dgid=GID("2001:0db8:0000:0000:0000:0000:0000:0001"), sgid_index=0)
    out["ah_unreachable"] = err(AH, pd, attr=AHAttr(gr=far, is_global=1, port_num=1))
    bad_sgid = GlobalRoute(dgid=gid, sgid_index=7)
    out["ah_bad_sgid"] = err(AH, pd, attr=AHAttr(gr=bad_sgid, is_global=1, port_num=1))
    mr = MR(pd, 4096, e.IBV_ACCESS_LOCAL_WRITE)

    def poll(n: int, ms: int) -> list[tuple[int, ...]]:
        got: list[tuple[int, ...]] = []
        for _ in range(ms):
            k, wcs = cq.poll()
            got += [(w.wr_id, int(w.status), int(w.opcode), w.byte_len, w.src_qp,
                     int(w.wc_flags), w.pkey_index, w.qp_num) for w in wcs[:k]]  # fmt: skip
            if len(got) >= n:
                break
            select.select([], [], [], 0.001)
        return got

    def send(wr_id: int, qpn: int, qkey: int, length: int = 16, recv: int = 40 + 64) -> None:
        b.post_recv(RecvWR(wr_id=100 + wr_id, num_sge=1, sg=[SGE(mr.buf + 1024, recv, mr.lkey)]))
        wr = SendWR(wr_id=wr_id, opcode=e.IBV_WR_SEND, num_sge=1,
                    sg=[SGE(mr.buf, length, mr.lkey)], send_flags=e.IBV_SEND_SIGNALED)  # fmt: skip
        wr.set_wr_ud(ah, qpn, qkey)
        a.post_send(wr)

    mr.write(b"sixteen bytes ud", 16)
    send(1, b.qp_num, QKEY)
    wcs = poll(2, WAIT_MS)
    out["ud_wcs"] = sorted(
        [(w[0], w[1], w[2], w[3], w[4] if w[0] > 100 else 0, w[5], w[6],
          "b" if w[7] == b.qp_num else "a") for w in wcs])  # fmt: skip
    out["src_qp_is_a"] = [w[4] == a.qp_num for w in wcs if w[0] > 100]
    grh = mr.read(40, 1024)
    out["grh_version_nexthdr_hop"] = [grh[0] >> 4, grh[6], grh[7]]
    out["grh_payload_len"] = int.from_bytes(grh[4:6], "big")
    out["grh_sgid_dgid"] = [grh[8:24] == grh[24:40], grh[24:40].hex() == gid.gid.replace(":", "")]
    out["payload"] = mr.read(16, 1024 + 40).decode()
    # a wrong Q_Key: the receiver drops it, the sender completes
    send(2, b.qp_num, QKEY + 1)
    out["wrong_qkey"] = [(w[0], w[1]) for w in poll(2, QUIET_MS)]
    # the Q_Key's high bit is not special to rxe: another Q_Key, dropped
    send(3, b.qp_num, 0x80000000)
    out["own_qkey"] = sorted((w[0], w[1]) for w in poll(3, WAIT_MS))
    # no such QP: dropped, the sender completes
    send(4, 0xFFFF00, QKEY)
    out["no_qp"] = [(w[0], w[1]) for w in poll(1, QUIET_MS)]
    # a receive too small for GRH + payload
    send(5, b.qp_num, QKEY, recv=40)
    out["small_recv"] = sorted((w[0], w[1]) for w in poll(2, WAIT_MS))
    # both QPs still work
    send(6, b.qp_num, QKEY)
    out["after"] = sorted((w[0], w[1]) for w in poll(2, WAIT_MS))
    for x in (ah, *qps, mr, cq, pd, ctx):
        x.close()
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    print()
