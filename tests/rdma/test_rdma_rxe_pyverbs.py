"""pyverbs (rdma-core 59), unchanged and supervised, on rxe0 and mlx5_0 (issue 14).

* Both providers open a context with their driver data and allocate a PD: mlx5's
  ``mlx5_ib_alloc_ucontext_req_v2``/``resp`` (its DEVX request refused with ``EINVAL``
  and retried without, as on a function without DEVX; its core-clock page mapped);
  rxe's empty one.
* rxe: CQ and RC QPs (the ``CQ_CREATE``/``QP_CREATE`` ioctls are not modelled, so the
  library falls back to the write commands -- traced as ``rdma.unsupported``), the
  provider maps the rings, ``RESET -> INIT -> RTR -> RTS``, an RDMA WRITE through the
  mapped send queue and the ``POST_SEND`` doorbell, the completion polled from the
  mapped CQ.
* Two supervised processes under one kernel, each with its own context, QP and ODP
  MR, swap (qpn, rkey, address) over a pipe and RDMA WRITE into each other's memory;
  then a SEND with immediate lands in the other's posted receive.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from test_rdma_ibv_tools import B59, MLX5_RXE

from mockkernel import Kernel

pytestmark = pytest.mark.mockkernel(topology=MLX5_RXE)


def _run(kernel: Kernel, prog: Path) -> Any:
    pkg = B59 / "python" / "pyverbs"
    if not any(pkg.glob(f"device{importlib.machinery.EXTENSION_SUFFIXES[0]}")):
        pytest.skip(f"no pyverbs built for this interpreter under {pkg}")
    env = {**os.environ, "PYTHONPATH": str(B59 / "python"), "LD_LIBRARY_PATH": str(B59 / "lib")}
    return kernel.run([sys.executable, str(prog)], capture_output=True, text=True, env=env,
                      timeout=180)  # fmt: skip


CONTEXTS = """
import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, SendWR
for name in ("mlx5_0", "rxe0"):
    ctx = d.Context(name=name)
    PD(ctx).close()
    ctx.close()
    print("context", name)
ctx = d.Context(name="rxe0")
pd = PD(ctx)
cq = CQ(ctx, 16)
cap = QPCap(max_send_wr=8, max_recv_wr=8, max_send_sge=1, max_recv_sge=1)
qps = [QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq, cap=cap)) for _ in range(2)]
print("qpn", *[q.qp_num for q in qps])
acc = e.IBV_ACCESS_LOCAL_WRITE | e.IBV_ACCESS_REMOTE_WRITE
mrs = [MR(pd, 4096, acc | e.IBV_ACCESS_ON_DEMAND) for _ in range(2)]
for a, b in ((qps[0], qps[1]), (qps[1], qps[0])):
    attr = QPAttr(port_num=1)
    attr.qp_access_flags = acc
    a.to_init(attr)
    attr = QPAttr(port_num=1)
    attr.path_mtu = e.IBV_MTU_1024
    attr.dest_qp_num = b.qp_num
    attr.ah_attr = AHAttr(gr=GlobalRoute(dgid=ctx.query_gid(1, 0), sgid_index=0), is_global=1,
                          port_num=1)
    attr.max_dest_rd_atomic = 1
    attr.min_rnr_timer = 12
    a.to_rtr(attr)
    attr = QPAttr(port_num=1)
    attr.timeout, attr.retry_cnt, attr.rnr_retry, attr.max_rd_atomic = 14, 7, 7, 1
    a.to_rts(attr)
mrs[0].write(b"hello from qp0", 14)
wr = SendWR(wr_id=42, opcode=e.IBV_WR_RDMA_WRITE, num_sge=1,
            sg=[SGE(mrs[0].buf, 14, mrs[0].lkey)], send_flags=e.IBV_SEND_SIGNALED)
wr.set_wr_rdma(mrs[1].rkey, mrs[1].buf)
qps[0].post_send(wr)
n, wcs = cq.poll()
print("poll", n, *[(w.wr_id, int(w.status), int(w.opcode), w.byte_len) for w in wcs[:n]])
print("landed", mrs[1].read(14, 0))
for x in (*qps, *mrs, cq, pd, ctx):
    x.close()
"""


def test_pyverbs_contexts_and_an_rdma_write_between_two_qps(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    prog = tmp_path / "contexts.py"
    prog.write_text(CONTEXTS)
    with mock_kernel.tracer.capture() as events:
        r = _run(mock_kernel, prog)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no provider complained
    lines = r.stdout.splitlines()
    assert lines[:2] == ["context mlx5_0", "context rxe0"]
    assert "qpn 17 18" in lines
    assert "poll 1 (42, 0, 1, 14)" in lines  # IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE
    assert "landed b'hello from qp0'" in lines
    names = [e["event"] for e in events]
    # mlx5: the driver data was answered, and the core-clock page mapped
    uctx = [e for e in events if e["event"] == "mlx5.alloc_ucontext"]
    assert uctx and uctx[-1]["cqe_version"] == 1 and uctx[-1]["tot_bfregs"] == 0
    mmaps = [e for e in events if e["event"] == "rdma.mmap"]
    # mlx5: the core-clock page (command 5) and the NC UAR the provider allocated
    uars = [e for e in events if e["event"] == "mlx5.uar_alloc"]
    assert len(uars) == 1
    assert {m["offset"] for m in mmaps if m["ibdev"] == "mlx5_0"} == {
        "0x500000", uars[0]["mmap_offset"]}  # fmt: skip
    # rxe: one CQ ring and two rings per QP, each mapped once
    assert len([m for m in mmaps if m["ibdev"] == "rxe0"]) == 5
    assert names.count("rdma.create_qp") == 2
    states = [e["state"] for e in events if e["event"] == "rdma.modify_qp"]
    assert states == ["RESET->INIT", "INIT->RTR", "RTR->RTS"] * 2
    writes = [e for e in events if e["event"] == "rxe.rdma_write"]
    assert [(w["qpn"], w["dest_qpn"], w["length"]) for w in writes] == [(17, 18, 14)]
    # the CQ/QP ioctl methods are not modelled: the library fell back, and it shows
    fallback = {(e["object"], e["method"]) for e in events if e["event"] == "rdma.unsupported"
                and e["ibdev"] == "rxe0"}  # fmt: skip
    assert ("0x3", "0x0") in fallback and ("0x4", "0x0") in fallback  # CQ_CREATE, QP_CREATE


PEER = r"""
'''Two processes, one rxe0: each makes an RC QP and an MR, they swap (qpn, rkey, addr)
over a pipe, connect, and RDMA WRITE into each other's MR; then a SEND with immediate.'''
import json, subprocess, sys, time
import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, RecvWR, SendWR

ROLE = sys.argv[1] if len(sys.argv) > 1 else "server"
ACC = e.IBV_ACCESS_LOCAL_WRITE | e.IBV_ACCESS_REMOTE_WRITE
ctx = d.Context(name="rxe0")
pd = PD(ctx)
cq = CQ(ctx, 16)
qp = QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq,
                       cap=QPCap(max_send_wr=8, max_recv_wr=8, max_send_sge=1, max_recv_sge=1)))
mr = MR(pd, 4096, ACC | e.IBV_ACCESS_ON_DEMAND)
me = {"qpn": qp.qp_num, "rkey": mr.rkey, "addr": mr.buf}

def connect(peer):
    attr = QPAttr(port_num=1)
    attr.qp_access_flags = ACC
    qp.to_init(attr)
    attr = QPAttr(port_num=1)
    attr.path_mtu = e.IBV_MTU_1024
    attr.dest_qp_num = peer["qpn"]
    route = GlobalRoute(dgid=ctx.query_gid(1, 0), sgid_index=0)
    attr.ah_attr = AHAttr(gr=route, is_global=1, port_num=1)
    attr.max_dest_rd_atomic = 1
    attr.min_rnr_timer = 12
    qp.to_rtr(attr)
    attr = QPAttr(port_num=1)
    attr.timeout, attr.retry_cnt, attr.rnr_retry, attr.max_rd_atomic = 14, 7, 7, 1
    qp.to_rts(attr)

def write_to(peer, data):
    mr.write(data, len(data))
    wr = SendWR(wr_id=1, opcode=e.IBV_WR_RDMA_WRITE, num_sge=1,
                sg=[SGE(mr.buf, len(data), mr.lkey)], send_flags=e.IBV_SEND_SIGNALED)
    wr.set_wr_rdma(peer["rkey"], peer["addr"] + 2048)
    qp.post_send(wr)
    return poll(1)

def poll(n):
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        k, wcs = cq.poll()
        got += [(w.wr_id, int(w.status), int(w.opcode), w.byte_len) for w in wcs[:k]]
    return got

def wait_for(data):
    deadline = time.time() + 30
    while mr.read(len(data), 2048) != data and time.time() < deadline:
        time.sleep(0.01)
    return mr.read(len(data), 2048)

if ROLE == "server":
    child = subprocess.Popen([sys.executable, __file__, "client"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    peer = json.loads(child.stdout.readline())
    connect(peer)
    qp.post_recv(RecvWR(wr_id=7, num_sge=1, sg=[SGE(mr.buf + 1024, 64, mr.lkey)]))
    child.stdin.write(json.dumps(me) + "\n"); child.stdin.flush()
    print("server got", wait_for(b"written by the client"), flush=True)
    print("server write", write_to(peer, b"written by the server"), flush=True)
    print("server recv", poll(1), mr.read(12, 1024), flush=True)
    print(child.stdout.read().strip(), flush=True)
    print("client exit", child.wait())
else:
    print(json.dumps(me), flush=True)
    peer = json.loads(sys.stdin.readline())
    connect(peer)
    print("client write", write_to(peer, b"written by the client"))
    print("client got", wait_for(b"written by the server"))
    mr.write(b"a SEND, imm!", 12)
    wr = SendWR(wr_id=9, opcode=e.IBV_WR_SEND_WITH_IMM, num_sge=1,
                sg=[SGE(mr.buf, 12, mr.lkey)], send_flags=e.IBV_SEND_SIGNALED)
    wr.imm_data = 0x01020304
    qp.post_send(wr)
    print("client send", poll(1))
qp.close(); mr.close(); cq.close(); pd.close(); ctx.close()
"""


def test_two_supervised_processes_rdma_write_into_each_others_mrs(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    prog = tmp_path / "peer.py"
    prog.write_text(PEER)
    with mock_kernel.tracer.capture() as events:
        r = _run(mock_kernel, prog)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "server got b'written by the client'" in lines
    assert "client got b'written by the server'" in lines
    assert "client write [(1, 0, 1, 21)]" in lines
    assert "server write [(1, 0, 1, 21)]" in lines
    # the SEND with immediate: the sender's completion, and the server's receive
    assert "client send [(9, 0, 0, 12)]" in lines
    assert "server recv [(7, 0, 128, 12)] b'a SEND, imm!'" in lines
    assert "client exit 0" in lines
    writes = [e for e in events if e["event"] == "rxe.rdma_write"]
    assert len(writes) == 2
    assert {w["qpn"] for w in writes} == {w["dest_qpn"] for w in writes}  # each to the other
    recv = [e for e in events if e["event"] == "rxe.cqe" and e["opcode"] == 128]
    assert len(recv) == 1
