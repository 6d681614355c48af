"""Address handles and UD QPs on rxe (issue 14), through pyverbs (rdma-core 59) supervised.

* ``pyverbs_ud_probe.py`` as real Linux 7.2's rxe answered it (``golden_rxe_ud.json``):
  ``CREATE_AH``'s errnos (no GRH, a bad port, an unreachable GID, an empty source GID
  slot), a UD SEND and its completions (``src_qp``, ``IBV_WC_GRH``, the 40-byte GRH
  before the payload), and what UD drops (another Q_Key, no such QP).
* Two supervised processes: a UD SEND from one lands, GRH first, in the other's receive.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_rdma_ibv_tools import MLX5_RXE
from test_rdma_rxe_pyverbs import _run

from mockkernel import Kernel

pytestmark = pytest.mark.mockkernel(topology=MLX5_RXE)

HERE = Path(__file__).resolve().parent


def test_the_ud_probe_matches_real_linux(mock_kernel: Kernel) -> None:
    golden = json.loads((HERE / "golden_rxe_ud.json").read_text())
    with mock_kernel.tracer.capture() as events:
        r = _run(mock_kernel, HERE / "pyverbs_ud_probe.py")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for step, want in golden.items():
        assert got[step] == want, step
    sends = [e for e in events if e["event"] == "rxe.ud_send"]
    assert [s["delivered"] for s in sends] == [True, False, False, False, True, True]
    assert [e["event"] for e in events].count("rdma.create_ah") == 1


UD_PEERS = r"""
'''Two processes, one rxe0: the server's UD QP posts a receive and tells the client its
QPN; the client makes an AH to the port's GID and SENDs; the server reads GRH + payload.'''
import json, select, subprocess, sys
import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import AH, AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.wr import SGE, RecvWR, SendWR

ROLE = sys.argv[1] if len(sys.argv) > 1 else "server"
QKEY = 0x1234
ctx = d.Context(name="rxe0")
pd = PD(ctx)
cq = CQ(ctx, 8)
qp = QP(pd, QPInitAttr(qp_type=e.IBV_QPT_UD, scq=cq, rcq=cq,
                       cap=QPCap(max_send_wr=4, max_recv_wr=4, max_send_sge=1, max_recv_sge=1)))
attr = QPAttr(port_num=1)
attr.qkey = QKEY
qp.to_init(attr)
qp.to_rtr(QPAttr(port_num=1))
qp.to_rts(QPAttr(port_num=1))
mr = MR(pd, 4096, e.IBV_ACCESS_LOCAL_WRITE)

def poll():
    while True:
        n, wcs = cq.poll()
        if n:
            return wcs[0]
        select.select([], [], [], 0.001)

if ROLE == "server":
    child = subprocess.Popen([sys.executable, __file__, "client"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    qp.post_recv(RecvWR(wr_id=5, num_sge=1, sg=[SGE(mr.buf, 256, mr.lkey)]))
    child.stdin.write(json.dumps({"qpn": qp.qp_num}) + "\n"); child.stdin.flush()
    client = json.loads(child.stdout.readline())
    wc = poll()
    grh = mr.read(40, 0)
    gid = bytes.fromhex(ctx.query_gid(1, 0).gid.replace(":", ""))
    print("server recv", wc.wr_id, int(wc.status), int(wc.opcode), wc.byte_len,
          wc.src_qp == client["qpn"], int(wc.wc_flags), flush=True)
    print("server grh", grh[0] >> 4, grh[6], grh[8:24] == gid, grh[24:40] == gid, flush=True)
    print("server payload", mr.read(wc.byte_len - 40, 40), flush=True)
    print(child.stdout.read().strip(), flush=True)
    print("client exit", child.wait())
    qp.close()
else:
    peer = json.loads(sys.stdin.readline())
    print(json.dumps({"qpn": qp.qp_num}), flush=True)
    ah = AH(pd, attr=AHAttr(gr=GlobalRoute(dgid=ctx.query_gid(1, 0), sgid_index=0),
                            is_global=1, port_num=1))
    mr.write(b"a UD datagram", 13)
    wr = SendWR(wr_id=9, opcode=e.IBV_WR_SEND, num_sge=1, sg=[SGE(mr.buf, 13, mr.lkey)],
                send_flags=e.IBV_SEND_SIGNALED)
    wr.set_wr_ud(ah, peer["qpn"], QKEY)
    qp.post_send(wr)
    wc = poll()
    print("client sent", wc.wr_id, int(wc.status), int(wc.opcode), wc.byte_len)
    qp.close()
    ah.close()
mr.close(); cq.close(); pd.close(); ctx.close()
"""


def test_a_ud_send_between_two_supervised_processes(mock_kernel: Kernel, tmp_path: Path) -> None:
    prog = tmp_path / "ud.py"
    prog.write_text(UD_PEERS)
    r = _run(mock_kernel, prog)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "server recv 5 0 128 53 True 1",  # IBV_WC_RECV, GRH + 13 bytes, IBV_WC_GRH
        "server grh 6 17 True True",  # IPv6, UDP; source and destination: the port's GID
        "server payload b'a UD datagram'",
        "client sent 9 0 0 13",  # IBV_WC_SEND
        "client exit 0",
    ]


def test_the_srq_probe_matches_real_linux(mock_kernel: Kernel) -> None:
    """``pyverbs_srq_probe.py`` (``golden_rxe_srq.json``): ``CREATE_SRQ``'s errnos, the
    sizes rxe makes and reports (``QUERY_SRQ``), a resize and a limit (``MODIFY_SRQ``),
    two QPs taking receives from one SRQ, and ``IBV_EVENT_SRQ_LIMIT_REACHED`` once fewer
    receives than the limit are left (the limit then reads 0)."""
    golden = json.loads((HERE / "golden_rxe_srq.json").read_text())
    with mock_kernel.tracer.capture() as events:
        r = _run(mock_kernel, HERE / "pyverbs_srq_probe.py")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for step, want in golden.items():
        assert got[step] == want, step
    names = [e["event"] for e in events]
    assert names.count("rdma.create_srq") == 1 and names.count("rdma.modify_srq") == 2
    posted = [e["type"] for e in events if e["event"] == "rdma.event" and e["queue"] == "async"]
    assert posted == [15]  # IB_EVENT_SRQ_LIMIT_REACHED


def test_an_srq_in_use_is_busy(mock_kernel: Kernel) -> None:
    """``DESTROY_SRQ`` while a QP takes from it: ``EBUSY``; a QP on a handle that is not
    an SRQ: ``EINVAL``; ``QUERY_SRQ``/``MODIFY_SRQ`` of one: ``EINVAL``."""
    import struct

    from rdma_testing import errname
    from test_rdma_rxe_queues import Rxe

    from mockkernel.uapi.rdma import ib_user_verbs as V

    v = Rxe("rxe0")
    try:
        pd = v.alloc_pd()
        cq, _cqe, _ = v.create_cq(8)
        raw = v.cmd(V.IB_USER_VERBS_CMD_CREATE_SRQ, struct.pack("<QIIII", 7, pd, 8, 1, 0), 40)
        srq, max_wr, max_sge, srqn = struct.unpack_from("<IIII", raw)
        assert (max_wr, max_sge, srqn) == (15, 1, 0)  # srqn: for XRC SRQs only

        def create_qp(is_srq: int, handle: int) -> int:
            body = struct.pack("<QIIIIIIIIIBBBB", 0, pd, cq, cq, handle, 4, 4, 1, 1, 0, 0, 2,
                               is_srq, 0)  # fmt: skip
            return int.from_bytes(v.cmd(V.IB_USER_VERBS_CMD_CREATE_QP, body, 64)[:4], "little")

        with pytest.raises(OSError) as e:
            create_qp(1, pd)  # a PD's handle
        assert errname(e.value) == "EINVAL"
        qp = create_qp(1, srq)
        for cmd, body in (
            (V.IB_USER_VERBS_CMD_QUERY_SRQ, struct.pack("<QII", 0, pd, 0)),
            (V.IB_USER_VERBS_CMD_MODIFY_SRQ, struct.pack("<IIII", pd, 2, 0, 1) + bytes(8)),
        ):
            with pytest.raises(OSError) as e:
                v.cmd(cmd, body[8:] if cmd == V.IB_USER_VERBS_CMD_QUERY_SRQ else body,
                      16 if cmd == V.IB_USER_VERBS_CMD_QUERY_SRQ else 0)  # fmt: skip
            assert errname(e.value) == "EINVAL"
        destroy = struct.pack("<II", srq, 0)
        with pytest.raises(OSError) as e:
            v.cmd(V.IB_USER_VERBS_CMD_DESTROY_SRQ, destroy, 4)
        assert errname(e.value) == "EBUSY"
        v.destroy_qp(qp)
        assert v.cmd(V.IB_USER_VERBS_CMD_DESTROY_SRQ, destroy, 4) == bytes(4)  # no events
    finally:
        v.close()
