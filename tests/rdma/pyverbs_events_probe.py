"""Completion channels, ``REQ_NOTIFY_CQ`` and async events on ``rxe0``, through pyverbs.

Runs unchanged on real Linux 7.2's soft-RoCE (``/work/shared/tools/real-linux/run``
with rdma-core 59's ``build/python`` on ``PYTHONPATH`` -- ``golden_rxe_events.json``
is its output) and under mockkernel's supervisor
(``test_rdma_rxe_events.py::test_the_events_probe_matches_real_linux``).  One process,
two RC QPs on the device's own GID: SENDs from ``a`` land in ``b``'s receives, whose
CQ is attached to a completion channel.  Each step prints what it saw: ``poll()`` bits
of the channel and async fds, event reads, errno names.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import sys

import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AHAttr, GlobalRoute
from pyverbs.cq import CQ, CompChannel
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, RecvWR, SendWR

ACC = e.IBV_ACCESS_LOCAL_WRITE | e.IBV_ACCESS_REMOTE_WRITE
#: real rxe completes from a tasklet: wait this long for what must come
WAIT_MS = 3000
#: and this long to be sure that nothing comes
QUIET_MS = 300


def ready(fd: int, ms: int) -> int:
    """``poll()`` of one fd for reading: the revents (0: nothing within ``ms``)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    got = p.poll(ms)
    return got[0][1] if got else 0


def ack_raw(raw: bytes) -> int:
    """Acknowledge an event read with ``os.read`` (``ibv_get_cq_event`` not used): its
    ``cq_handle`` is the library's ``struct ibv_cq *``.  Returns that handle."""
    handle = int.from_bytes(raw[:8], "little")
    ctypes.CDLL("libibverbs.so.1").ibv_ack_cq_events(ctypes.c_void_p(handle), 1)
    return handle


def errname(f, *a):  # type: ignore[no-untyped-def]
    try:
        r = f(*a)
        return "ok" if r is None else r
    except OSError as ex:
        return errno.errorcode[ex.errno or 0]


def main() -> dict[str, object]:
    out: dict[str, object] = {}
    before = set(os.listdir("/proc/self/fd"))
    ctx = d.Context(name="rxe0")
    new = {int(f) for f in set(os.listdir("/proc/self/fd")) - before} - {ctx.cmd_fd}
    async_fd = min(new)  # GET_CONTEXT's async event fd (the listing's own fd is gone)
    pd = PD(ctx)
    ch = CompChannel(ctx)
    out["channel_poll_new"] = ready(ch.fd, 0)
    out["async_poll_new"] = ready(async_fd, 0)
    rcq = CQ(ctx, 16, None, ch, 0)
    scq = CQ(ctx, 16, None, ch, 0)
    cap = QPCap(max_send_wr=16, max_recv_wr=16, max_send_sge=1, max_recv_sge=1)
    a = QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=scq, rcq=scq, cap=cap))
    b = QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=scq, rcq=rcq, cap=cap))
    mr = MR(pd, 4096, ACC)
    gid = ctx.query_gid(1, 0)
    for x, y in ((a, b), (b, a)):
        attr = QPAttr(port_num=1)
        attr.qp_access_flags = ACC
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

    def drain(cq: CQ, n: int) -> list[tuple[int, int, int]]:
        got: list[tuple[int, int, int]] = []
        for _ in range(WAIT_MS):
            k, wcs = cq.poll()
            got += [(w.wr_id, int(w.status), int(w.opcode)) for w in wcs[:k]]
            if len(got) >= n:
                break
            select.select([], [], [], 0.001)
        return got

    def send(wr_id: int, flags: int = e.IBV_SEND_SIGNALED, length: int = 8) -> None:
        b.post_recv(RecvWR(wr_id=100 + wr_id, num_sge=1, sg=[SGE(mr.buf + 2048, 64, mr.lkey)]))
        wr = SendWR(wr_id=wr_id, opcode=e.IBV_WR_SEND, num_sge=1,
                    sg=[SGE(mr.buf, length, mr.lkey)], send_flags=flags)  # fmt: skip
        a.post_send(wr)

    # 1. not armed: a completion makes no event
    send(1)
    out["unarmed_wc"] = drain(rcq, 1) + drain(scq, 1)
    out["unarmed_poll"] = ready(ch.fd, QUIET_MS)
    # 2. armed: the next completion makes one event; the read takes it
    rcq.req_notify()
    out["armed_poll_before"] = ready(ch.fd, 0)
    send(2)
    out["armed_poll"] = ready(ch.fd, WAIT_MS)
    ch.get_cq_event(rcq)
    out["after_read_poll"] = ready(ch.fd, 0)
    rcq.ack_events(1)
    out["armed_wc"] = drain(rcq, 1) + drain(scq, 1)
    # 3. one arm, one event: the second completion is not reported
    send(3)
    out["disarmed_poll"] = ready(ch.fd, QUIET_MS)
    drain(rcq, 1)
    drain(scq, 1)
    # 4. a read too small for the event: EINVAL, the event stays
    rcq.req_notify()
    send(4)
    ready(ch.fd, WAIT_MS)
    out["short_read"] = errname(os.read, ch.fd, 4)
    raw = os.read(ch.fd, 64)
    out["read_len"] = len(raw)
    ack_raw(raw)
    drain(rcq, 1)
    drain(scq, 1)
    # 5. O_NONBLOCK on an empty channel
    flags = fcntl.fcntl(ch.fd, fcntl.F_GETFL)
    fcntl.fcntl(ch.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    out["nonblock_empty"] = errname(os.read, ch.fd, 8)
    fcntl.fcntl(ch.fd, fcntl.F_SETFL, flags)
    # 6. solicited only: an unsolicited SEND makes no event, a solicited one does
    rcq.req_notify(True)
    send(6)
    out["solicited_quiet"] = ready(ch.fd, QUIET_MS)
    drain(rcq, 1)
    drain(scq, 1)
    send(7, e.IBV_SEND_SIGNALED | e.IBV_SEND_SOLICITED)
    out["solicited_poll"] = ready(ch.fd, WAIT_MS)
    ch.get_cq_event(rcq)
    rcq.ack_events(1)
    drain(rcq, 1)
    drain(scq, 1)
    # 7. both CQs armed: a signalled SEND makes one event on each
    rcq.req_notify()
    scq.req_notify()
    send(8)
    handles = []
    while ready(ch.fd, WAIT_MS if len(handles) < 2 else QUIET_MS):
        handles.append(ack_raw(os.read(ch.fd, 8)))
    out["two_cqs_events"] = [len(handles), len(set(handles))]
    drain(rcq, 1)
    drain(scq, 1)
    # 8. async events: none so far; a SEND too big for the receive kills both QPs
    out["async_poll_idle"] = ready(async_fd, 0)
    send(9, length=256)
    out["error_wc"] = drain(rcq, 1) + drain(scq, 1)
    events = []
    while ready(async_fd, QUIET_MS * 2):
        ev = ctx.get_async_event()
        events.append(int(ev.event_type))
        ev.ack()
    out["async_after_error"] = events
    # done: tear down in order (no event left unacknowledged)
    for x in (a, b, mr, rcq, scq, ch, pd, ctx):
        x.close()
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    print()
