"""Two pyverbs processes under one kernel: an RDMA WRITE from rxe0 into a VFIO BAR
dma-buf MR with TPH on mlx5_0 (run supervised by test_rdma_rxe_to_mlx5.py).

The *server* (the responder, this process): a vfio-pci function's BAR0
``[0x1000, +0x4000)`` as a dma-buf (``VFIO_DEVICE_FEATURE_DMA_BUF``), TPH set on it
(``VFIO_DEVICE_FEATURE_DMA_BUF_TPH``: st 0x12, xst 0x0112, ph 1), a ``DmaBufMR`` of it on
``mlx5_0``, a CQ and an RC QP there, brought to RTR.  The *client* (the requester, a
child process it starts): an RC QP on ``rxe0`` brought to RTS.  They swap
(qpn, GID; rkey, address) as JSON lines over the child's stdin/stdout; the client
posts ``IBV_WR_RDMA_WRITE``s through libibverbs, the server reads the bytes back
through its own mapping of BAR0.  Between two writes the server sets a new tag (xst
0x0BEE, st 0xEE, ph 3) and resets the device (``VFIO_DEVICE_RESET``: the MR's mapping
is invalidated; the next write faults, re-maps and carries the re-queried tag).  Last,
a write past the MR completes with ``IBV_WC_REM_ACCESS_ERR``.

Standard library and pyverbs only.  Lines printed: ``tph``, ``client``
(completions of a write), ``bar``, ``tph2``, ``bar2``, ``client exit``.
"""

import fcntl
import json
import mmap
import os
import struct
import subprocess
import sys
import time

import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import GID, AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR, DmaBufMR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, SendWR
from vfio_user import DMA_BUF, GET, VFIO_DEVICE_RESET, feature, set_tph, vfio_device

BAR_OFFSET, LENGTH = 0x1000, 0x4000
ACC = e.IBV_ACCESS_LOCAL_WRITE | e.IBV_ACCESS_REMOTE_WRITE


def rc_qp(ctx: d.Context, pd: PD, cq: CQ) -> QP:
    cap = QPCap(max_send_wr=8, max_recv_wr=8, max_send_sge=1, max_recv_sge=1)
    return QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq, cap=cap))


def connect(qp: QP, peer: dict, rts: bool) -> None:
    """RESET -> INIT -> RTR (-> RTS): the peer's QP number and GID (RoCE: a GRH)."""
    attr = QPAttr(port_num=1)
    attr.qp_access_flags = ACC
    qp.to_init(attr)
    attr = QPAttr(port_num=1)
    attr.path_mtu = e.IBV_MTU_1024
    attr.dest_qp_num = peer["qpn"]
    attr.ah_attr = AHAttr(gr=GlobalRoute(dgid=GID(peer["gid"]), sgid_index=0), is_global=1,
                          port_num=1)  # fmt: skip
    attr.max_dest_rd_atomic = 1
    attr.min_rnr_timer = 12
    qp.to_rtr(attr)
    if rts:
        attr = QPAttr(port_num=1)
        attr.timeout, attr.retry_cnt, attr.rnr_retry, attr.max_rd_atomic = 14, 7, 7, 1
        qp.to_rts(attr)


def client() -> None:
    """The requester on rxe0: a QP, an MR of its own memory, RDMA WRITEs on command."""
    ctx = d.Context(name="rxe0")
    pd = PD(ctx)
    cq = CQ(ctx, 16)
    qp = rc_qp(ctx, pd, cq)
    mr = MR(pd, 4096, ACC)
    print(json.dumps({"qpn": qp.qp_num, "gid": str(ctx.query_gid(1, 0))}), flush=True)
    peer = json.loads(sys.stdin.readline())
    connect(qp, peer, rts=True)
    for line in sys.stdin:
        offset, data = json.loads(line)
        if data is None:
            break
        raw = bytes.fromhex(data)
        mr.write(raw, len(raw))
        wr = SendWR(
            wr_id=offset,
            opcode=e.IBV_WR_RDMA_WRITE,
            num_sge=1,
            sg=[SGE(mr.buf, len(raw), mr.lkey)],
            send_flags=e.IBV_SEND_SIGNALED,
        )
        wr.set_wr_rdma(peer["rkey"], peer["addr"] + offset)
        qp.post_send(wr)
        got = []
        deadline = time.time() + 30
        while not got and time.time() < deadline:
            n, wcs = cq.poll()
            got += [(w.wr_id, int(w.status), int(w.opcode), w.byte_len) for w in wcs[:n]]
        print(json.dumps(got), flush=True)
    for x in (qp, mr, cq, pd, ctx):
        x.close()


def server() -> None:
    """The responder on mlx5_0: the BAR dma-buf MR and an RC QP in RTR."""
    dev = vfio_device()
    dmabuf = feature(
        dev, GET | DMA_BUF, struct.pack("=IIIIQQ", 0, os.O_RDWR, 0, 1, BAR_OFFSET, LENGTH)
    )
    print("tph", set_tph(dev, dmabuf, 0x0112, 0x12, 1), flush=True)
    ctx = d.Context(name="mlx5_0")
    pd = PD(ctx)
    mr = DmaBufMR(pd, LENGTH, ACC, dmabuf=dmabuf, offset=0)
    cq = CQ(ctx, 16)
    qp = rc_qp(ctx, pd, cq)
    bar = mmap.mmap(dev, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
    child = subprocess.Popen([sys.executable, __file__, "client"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    peer = json.loads(child.stdout.readline())
    connect(qp, peer, rts=False)
    me = {"qpn": qp.qp_num, "gid": str(ctx.query_gid(1, 0)), "rkey": mr.rkey, "addr": 0}
    child.stdin.write(json.dumps(me) + "\n")

    def write(offset: int, data: bytes) -> None:
        child.stdin.write(json.dumps([offset, data.hex()]) + "\n")
        child.stdin.flush()
        print("client", child.stdout.readline().strip(), flush=True)

    write(0x100, bytes(range(16)))
    print("bar", bar[BAR_OFFSET + 0x100 : BAR_OFFSET + 0x110].hex(), flush=True)
    print("tph2", set_tph(dev, dmabuf, 0x0BEE, 0xEE, 3), flush=True)
    fcntl.ioctl(dev, VFIO_DEVICE_RESET, 0)
    write(0x200, b"after reset")
    print("bar2", bar[BAR_OFFSET + 0x200 : BAR_OFFSET + 0x20B].hex(), flush=True)
    write(LENGTH - 4, b"past the end")
    child.stdin.write(json.dumps([0, None]) + "\n")
    child.stdin.close()
    print("client exit", child.wait(), flush=True)
    bar.close()
    for x in (qp, cq, mr, pd, ctx):
        x.close()


if __name__ == "__main__":
    client() if sys.argv[1:] == ["client"] else server()
