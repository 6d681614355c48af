"""An RDMA WRITE from rxe0 into a VFIO BAR dma-buf MR with TPH on mlx5_0, through
libibverbs on both ends (issue 14, the last step of the data path).

Real Linux 7.2's rxe has no ``reg_user_mr_dmabuf`` (``REG_DMABUF_MR`` on rxe0 is
``EOPNOTSUPP``, ``golden/uverbs_objects.jsonl``), so the responder that holds the
dma-buf MR is mlx5_0; the requester is rxe0, on the same Ethernet segment
(``mockkernel.rdma.roce``).  Two supervised processes (pyverbs 59): the server
exports the BAR, sets TPH, registers it, creates an RC QP on mlx5_0 (the
``mlx5_ib_create_cq``/``mlx5_ib_create_qp`` driver data of libmlx5) and brings it to RTR;
its child creates an RC QP on rxe0, connects it to the server's QP, and posts
``IBV_WR_RDMA_WRITE``s.  The mlx5 responder writes through the mkey: the TLPs come from
the ConnectX function, to the BAR, with the steering tag the exporter handed out; after
a device reset the write faults, re-maps and carries the re-queried tag.

Also here: the raw ABI of mlx5's CQ/QP driver data (byte for byte, without rdma-core).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import importlib.machinery
import mmap
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockkernel_mlx5 import mlx5_dev
from test_rdma_libibverbs_mr import (
    B59,
    BUILT,
    DEBIAN_LIBIBVERBS,
    HERE,
    MLX5_RID,
    MLX5_RXE,
    NOT_BUILT,
    REPO,
    VFIO_BAR0,
    _cpu_tag,
    _env,
    cbuild,
)

from mockkernel import Kernel
from mockkernel.driver import (
    IB_OPCODE_RC_RDMA_WRITE_ONLY,
    IB_OPCODE_RC_SEND_ONLY,
    RocePacket,
    ib_device_by_name,
    rdma_gid_reachable,
    roce_xmit,
)
from mockkernel.testing.rdma import Verbs
from mockkernel.topology import load_topology
from mockkernel.uapi.rdma import ib_user_verbs as V
from mockkernel.uapi.rdma.mlx5_abi import (
    MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX,
    MLX5_QP_FLAG_UAR_PAGE_INDEX,
    mlx5_ib_create_cq,
    mlx5_ib_create_qp,
    mlx5_ib_create_qp_resp,
)

pytestmark = pytest.mark.mockkernel(topology=MLX5_RXE)


def _pyverbs_env() -> dict[str, str]:
    if not BUILT:
        pytest.skip(NOT_BUILT)
    pkg = B59 / "python" / "pyverbs"
    if not any(pkg.glob(f"device{importlib.machinery.EXTENSION_SUFFIXES[0]}")):
        pytest.skip(f"no pyverbs built for this interpreter under {pkg}")
    return {**os.environ, "PYTHONPATH": str(B59 / "python"), "LD_LIBRARY_PATH": str(B59 / "lib")}


def _on(uapi: str) -> Any:
    return pytest.param(uapi, marks=pytest.mark.mockkernel(topology=MLX5_RXE, uapi=uapi), id=uapi)


@pytest.mark.parametrize("uapi", [_on("tph-v11"), _on("linux-7.2")])
def test_rxe_qp_rdma_writes_into_a_vfio_bar_dmabuf_mr_on_mlx5(
    mock_kernel: Kernel, uapi: str
) -> None:
    env = _pyverbs_env()
    prog = HERE / "pyverbs_rxe_to_vfio_bar.py"
    with mock_kernel.tracer.capture() as events:
        r = mock_kernel.run([sys.executable, str(prog)], capture_output=True, text=True,
                            env=env, timeout=180)  # fmt: skip
    assert r.returncode == 0, r.stderr
    tph = "ok" if uapi == "tph-v11" else "ENOTTY"
    lines = r.stdout.splitlines()
    # completions on the requester: (wr_id, status, opcode, byte_len); the write past
    # the MR is a remote access error (IBV_WC_REM_ACCESS_ERR 10), opcode/len 0 in error
    assert lines == [
        f"tph {tph}",
        "client [[256, 0, 1, 16]]",
        f"bar {bytes(range(16)).hex()}",
        f"tph2 {tph}",
        "client [[512, 0, 1, 11]]",
        f"bar2 {b'after reset'.hex()}",
        "client [[16380, 10, 0, 0]]",
        "client exit 0",
    ], r.stderr
    # the packets: rxe0's QP to mlx5_0's, answered ACK, ACK, then a remote access NAK
    xmit = [e for e in events if e["event"] == "roce.xmit"]
    assert [(x["src"], x["dst"], x["syndrome"], x["length"]) for x in xmit] == [
        ("rxe0", "mlx5_0", "ACK", 16),
        ("rxe0", "mlx5_0", "ACK", 11),
        ("rxe0", "mlx5_0", "NAK_REM_ACCESS", 12),
    ]
    assert xmit[2]["reason"] == "outside the MR"
    # mlx5's CQ_CREATE/QP_CREATE ioctls are not modelled: the library fell back to the
    # write commands (with libmlx5's driver data), and each fallback was traced
    fallback = {(e["object"], e["method"]) for e in events if e["event"] == "rdma.unsupported"
                and e["ibdev"] == "mlx5_0"}  # fmt: skip
    assert {("0x3", "0x0"), ("0x4", "0x0")} <= fallback
    cqs = [e for e in events if e["event"] == "mlx5.create_cq"]
    assert [(c["entries"], c["cqe_size"], c["uar"]) for c in cqs] == [(32, 64, 16)]
    qps = [e for e in events if e["event"] == "mlx5.create_qp"]
    assert len(qps) == 1 and qps[0]["qpn"] == xmit[0]["dest_qpn"]
    # the DMA: TLPs from the ConnectX function to the BAR, the exporter's tag on them
    tlps = [e for e in events if e["event"] == "pcie.tlp"]
    assert {(t["requester"], t["target"]) for t in tlps} == {("0000:02:00.0", VFIO_BAR0)}
    assert MLX5_RID == 0x0200
    if uapi == "tph-v11":
        assert [(t["th"], t["ph"], t["st"], t["st_ext"]) for t in tlps] == [
            (True, 1, 0x12, 0x01),
            (True, 3, 0xEE, 0x0B),
        ]
    else:  # upstream 7.2: no exporter hook, no TPH on the TLPs
        assert [t["th"] for t in tlps] == [False, False]
    # the reset invalidated the mapping; the next write faulted and re-asked for the tag
    names = [e["event"] for e in events]
    assert names.index("mlx5.mr_invalidate") < names.index("mlx5.mr_fault")
    sources = [(e["source"], e["tag"]) for e in events if e["event"] == "mlx5.mr_tph"]
    if uapi == "tph-v11":
        assert sources == [("dmabuf", 0x0112), ("dmabuf", 0x0BEE)]
    else:
        assert sources == [("none", None)] * 2


# -- the C twin: examples/c/rdma_rxe_write_bar.c (rdma-core 59, a DMAH on the responder) ------
C_TWIN = REPO / "examples" / "c" / "rdma_rxe_write_bar.c"
assert cbuild  # (the fixture, imported)


@pytest.mark.parametrize("uapi", [_on("tph-v11"), _on("linux-7.2")])
def test_c_twin_writes_from_rxe_into_the_bar_with_the_dmahs_tag_across_a_reset(
    mock_kernel: Kernel, cbuild: Callable[..., str], uapi: str
) -> None:
    """The same path from C: the responder's MR is ``ibv_reg_mr_ex(FD | DMAH)`` with
    ``ibv_alloc_dmah`` (a CPU, PH 2), the requester a forked child on rxe0.  The DMAH
    wins over the exporter's tag, before and after the reset (the re-map chooses again).
    On ``linux-7.2`` the exporter's TPH ioctl is ``ENOTTY``; DMAH (upstream since 6.17)
    and everything else are the same."""
    exe = cbuild(C_TWIN)
    cpu = min(os.sched_getaffinity(0))
    with mock_kernel.tracer.capture() as events:
        r = mock_kernel.run([exe, str(cpu), "2"], capture_output=True, text=True, env=_env(),
                            timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == [
        "vfio device 0000:01:00.0: dma-buf of BAR0 [0x1000, +0x4000)",
        "exporter TPH: " + ("st 0x12, st_ext 0x0112, ph 1" if uapi == "tph-v11" else "ENOTTY"),
        f"MR on mlx5_0 with a DMAH (cpu {cpu}, ph 2), QP 0x100",
    ]
    assert lines[3].startswith("connected to rxe0 QP 0x")
    assert lines[4:] == [
        "write of 16 bytes at 0x100: success",
        "BAR0[0x1100]: " + " ".join(f"{0x10 + i:02x}" for i in range(16)),
        "device reset",
        "write of 8 bytes at 0x200: success",
        "BAR0[0x1200]: " + " ".join(f"{0x20 + i:02x}" for i in range(8)),
        "released",
    ]
    tag = _cpu_tag(mock_kernel, cpu)
    tlps = [e for e in events if e["event"] == "pcie.tlp"]
    assert [(t["requester"], t["target"], t["th"], t["ph"], t["st_ext"] << 8 | t["st"])
            for t in tlps] == [("0000:02:00.0", VFIO_BAR0, True, 2, tag)] * 2  # fmt: skip
    names = [e["event"] for e in events]
    assert names.index("mlx5.mr_invalidate") < names.index("mlx5.mr_fault")
    assert [(e["source"], e["tag"]) for e in events if e["event"] == "mlx5.mr_tph"] == [
        ("dmah", tag)
    ] * 2
    assert [x["syndrome"] for x in events if x["event"] == "roce.xmit"] == ["ACK", "ACK"]


@pytest.mark.parametrize("lib", ["59", "44"])
def test_both_rdma_cores_providers_carry_the_write_into_the_bar(
    mock_kernel: Kernel, cbuild: Callable[..., str], lib: str
) -> None:
    """``tests/rdma/c/rxe_to_mlx5_dmabuf.c`` (one process, both ends, no DMAH) with
    rdma-core 59's libibverbs and with Debian 12's (rdma-core 44: its own libmlx5 sends
    the CQ/QP driver data, its rxe provider the WQE): the exporter's tag on the TLPs."""
    if lib == "44" and not DEBIAN_LIBIBVERBS.exists():
        pytest.skip("Debian's libibverbs (rdma-core 44) is not installed (ibverbs-providers)")
    exe = cbuild(HERE / "c" / "rxe_to_mlx5_dmabuf.c", rpath=lib == "59")
    env = _env() if lib == "59" else {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    with mock_kernel.tracer.capture() as events:
        r = mock_kernel.run([exe], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "exporter TPH: ok",
        "completion: success",
        "BAR0[0x1100]: through rdma-cor",
    ]
    tlps = [e for e in events if e["event"] == "pcie.tlp"]
    assert [(t["requester"], t["target"], t["ph"], t["st_ext"] << 8 | t["st"]) for t in tlps] == [
        ("0000:02:00.0", VFIO_BAR0, 1, 0x0112)
    ]
    # the providers mapped the uverbs fds under the supervisor: libmlx5 its UAR (doorbell)
    # pages, rxe its queues (issue 15: mmap of any layout, uverbs doorbell pages included)
    assert {e["ibdev"] for e in events if e["event"] == "rdma.mmap"} == {"mlx5_0", "rxe0"}


# -- the raw ABI: CREATE_CQ / CREATE_QP with mlx5's driver data -------------------------------
CQ_REQ = ctypes.sizeof(mlx5_ib_create_cq)


class _Buf:
    """Page-aligned anonymous memory of this process (the provider's buffers)."""

    def __init__(self, size: int) -> None:
        self.map = mmap.mmap(-1, size)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.map))

    def close(self) -> None:
        self.map.close()


def _write(fd: int, cmd: int, req: bytes, core_out: int, drv_out: int) -> tuple[bytes, bytes]:
    """A legacy write command with driver data: ``ib_uverbs_cmd_hdr`` + the core request
    (whose first u64 is the response address) + the driver's; both responses back."""
    resp = ctypes.create_string_buffer(core_out + drv_out)
    words = (8 + len(req)) // 4
    hdr = struct.pack("<IHH", cmd, words, (core_out + drv_out) // 4)
    body = ctypes.addressof(resp).to_bytes(8, "little") + req[8:]
    os.write(fd, hdr + body)
    return resp.raw[:core_out], resp.raw[core_out:]


def _create_cq(v: Verbs, buf: _Buf, db: _Buf, cqe: int = 16, **kw: int) -> tuple[int, int, int]:
    """``CREATE_CQ`` as libmlx5 sends it (its NC UAR's page, 16); ``kw`` changes fields.
    Returns (handle, cqe, cqn)."""
    drv = mlx5_ib_create_cq(buf_addr=buf.addr, db_addr=db.addr, cqe_size=kw.pop("cqe_size", 64))
    drv.flags = MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX
    drv.uar_page_index = 16
    for k, val in kw.items():
        setattr(drv, k, val)
    core = V.ib_uverbs_create_cq(0, 0x1234, cqe, 0, -1, 0)
    out, drv_out = _write(v.fd, V.IB_USER_VERBS_CMD_CREATE_CQ, bytes(core) + bytes(drv), 8, 8)
    handle, real_cqe = int.from_bytes(out[:4], "little"), int.from_bytes(out[4:8], "little")
    return handle, real_cqe, int.from_bytes(drv_out[:4], "little")


def test_mlx5_create_cq_takes_the_providers_buffer_and_answers_a_cqn(
    mock_kernel: Kernel,
) -> None:
    v = Verbs("mlx5_0")
    buf, db = _Buf(64 * 64), _Buf(4096)
    try:
        _handle, cqe, cqn = _create_cq(v, buf, db, 16)
        assert cqe == 31  # roundup_pow_of_two(16 + 1) - 1
        assert cqn >= 1
        assert _create_cq(v, buf, db, 16)[2] != cqn
        # the request's checks, as cq.c makes them
        for kw, err in (
            ({"cqe_size": 32}, errno.EINVAL),
            ({"reserved0": 1}, errno.EINVAL),
            ({"flags": 1 << 7}, errno.EINVAL),
            ({"cqe_comp_en": 1}, errno.EOPNOTSUPP),
            ({"buf_addr": 16}, errno.EFAULT),
            ({"db_addr": 16}, errno.EFAULT),
        ):
            with pytest.raises(OSError) as ei:
                _create_cq(v, buf, db, 16, **kw)
            assert ei.value.errno == err, kw
        with pytest.raises(OSError) as ei:
            _create_cq(v, buf, db, 1 << 22)  # roundup(2^22 + 1) is past log_max_cq_sz
        assert ei.value.errno == errno.EINVAL
        # no driver data: shorter than up to `flags`
        core = V.ib_uverbs_create_cq(0, 0, 4, 0, -1, 0)
        with pytest.raises(OSError) as ei:
            _write(v.fd, V.IB_USER_VERBS_CMD_CREATE_CQ, bytes(core), 8, 8)
        assert ei.value.errno == errno.EINVAL
    finally:
        v.close()
        buf.close()
        db.close()


def _qp_request(buf: _Buf, db: _Buf) -> mlx5_ib_create_qp:
    """libmlx5's ``mlx5_ib_create_qp`` for 16 send WQEs, 16 receive WQEs of 16 bytes and
    its NC UAR (page 16, dynamic UARs)."""
    return mlx5_ib_create_qp(buf_addr=buf.addr, db_addr=db.addr, sq_wqe_count=16,
                             rq_wqe_count=16, rq_wqe_shift=4,
                             flags=MLX5_QP_FLAG_UAR_PAGE_INDEX, bfreg_index=16)  # fmt: skip


def _qp_core(pd: int, cq: int) -> V.ib_uverbs_create_qp:
    core = V.ib_uverbs_create_qp()
    core.user_handle = 1
    core.pd_handle, core.send_cq_handle, core.recv_cq_handle = pd, cq, cq
    core.max_send_wr = core.max_recv_wr = 8
    core.max_send_sge = core.max_recv_sge = 1
    core.qp_type = 2  # IB_QPT_RC
    return core


@pytest.mark.parametrize(
    ("fields", "err"),
    [
        ({}, 0),
        ({"sq_wqe_count": 3}, errno.EINVAL),  # not a power of two
        ({"sq_wqe_count": 1 << 16}, errno.EINVAL),  # past log_max_qp_sz
        ({"rq_wqe_shift": 33}, errno.EINVAL),  # past BITS_PER_BYTE * sizeof(rq_wqe_shift)
        ({"rq_wqe_shift": 3}, 0),  # 8-byte receive WQEs: set_rq_size lets them be
        ({"rq_wqe_shift": 3, "flags": 1 << 10 | 1}, errno.EINVAL),  # no room for a signature
        ({"flags": 1 << 10 | 1}, 0),  # MLX5_QP_FLAG_SIGNATURE: 16-byte WQEs hold it
        ({"flags": 1 << 4}, errno.EINVAL),  # MLX5_QP_FLAG_TYPE_DCT needs a driver QP
        ({"flags": 0}, errno.EINVAL),  # no UAR named: alloc_bfreg of a dynamic-UAR context
        ({"buf_addr": 16}, errno.EFAULT),
        ({"buf_addr": 0}, 0),  # no buffer address: nothing pinned
        ({"db_addr": 16}, errno.EFAULT),
    ],
)
def test_mlx5_create_qp_checks_the_driver_data(
    mock_kernel: Kernel, fields: dict[str, int], err: int
) -> None:
    v = Verbs("mlx5_0")
    bufs = [_Buf(64 * 64 + 16 * 64), _Buf(4096), _Buf(64 * 64), _Buf(4096)]
    try:
        pd = v.alloc_pd()
        cq, _, _ = _create_cq(v, bufs[2], bufs[3])
        drv = _qp_request(bufs[0], bufs[1])
        for name, value in fields.items():
            setattr(drv, name, value)
        core = _qp_core(pd, cq)
        resp_size = ctypes.sizeof(mlx5_ib_create_qp_resp)
        req = bytes(core) + bytes(drv)
        if err:
            with pytest.raises(OSError) as ei:
                _write(v.fd, V.IB_USER_VERBS_CMD_CREATE_QP, req, 32, resp_size)
            assert ei.value.errno == err
            return
        out, drv_out = _write(v.fd, V.IB_USER_VERBS_CMD_CREATE_QP, req, 32, resp_size)
        assert int.from_bytes(out[4:8], "little") >= 0x100  # the QP number
        assert mlx5_ib_create_qp_resp.from_buffer_copy(drv_out).bfreg_index == 0
        # POST_SEND: mlx5 rings its doorbells in the UAR page, it has no such command
        with pytest.raises(OSError) as ei:
            v.write_cmd(V.IB_USER_VERBS_CMD_POST_SEND, bytes(24))
        assert ei.value.errno == errno.EOPNOTSUPP
    finally:
        v.close()
        for b in bufs:
            b.close()


def test_mlx5_responder_drops_a_write_for_no_qp_and_nobody_holds_the_zero_gid(
    mock_kernel: Kernel,
) -> None:
    """The RoCE segment without rdma-core: a write for a QP mlx5_0 does not have is
    dropped (no answer: the requester's retries run out), and so is one to a GID no
    port holds; a GID on the segment resolves, the zero GID does not."""
    rxe = ib_device_by_name(mock_kernel, "rxe0")
    mlx5 = ib_device_by_name(mock_kernel, "mlx5_0")
    dgid = mlx5.ports[0].gids[0]
    pkt = RocePacket(IB_OPCODE_RC_RDMA_WRITE_ONLY, rxe.ports[0].gids[0], dgid, 17, 0x100,
                     0x1234, 0, b"x")  # fmt: skip
    with mock_kernel.tracer.capture() as events:
        assert roce_xmit(rxe, pkt) is None
        assert roce_xmit(rxe, dataclasses.replace(pkt, dgid=bytes(16))) is None
    assert [(e["dst"], e["syndrome"]) for e in events] == [("mlx5_0", "none"), ("-", "none")]
    assert rdma_gid_reachable(rxe, rxe.ports[0], dgid)
    assert rdma_gid_reachable(mlx5, mlx5.ports[0], rxe.ports[0].gids[0])
    assert not rdma_gid_reachable(rxe, rxe.ports[0], bytes(16))


# enum ib_qp_attr_mask
_STATE, _ACCESS, _PKEY, _PORT, _AV, _MTU = 1, 1 << 3, 1 << 4, 1 << 5, 1 << 7, 1 << 8
_TIMEOUT, _RETRY, _RNR, _RQ_PSN, _RD_ATOMIC = 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 13
_RNR_TIMER, _SQ_PSN, _DEST_RD_ATOMIC, _DEST_QPN = 1 << 15, 1 << 16, 1 << 17, 1 << 20


def _modify(v: Verbs, qp: int, mask: int, **fields: Any) -> None:
    """``IB_USER_VERBS_CMD_MODIFY_QP`` (legacy, no driver data: what libmlx5 sends)."""
    cmd = V.ib_uverbs_modify_qp(qp_handle=qp, attr_mask=mask, port_num=1)
    dgid = fields.pop("dgid", None)
    if dgid is not None:
        cmd.dest.dgid[:] = list(dgid)
        cmd.dest.is_global = 1
        cmd.dest.port_num = 1
        cmd.dest.hop_limit = 1
    for k, val in fields.items():
        setattr(cmd, k, val)
    v.write_cmd(V.IB_USER_VERBS_CMD_MODIFY_QP, bytes(cmd))


def test_mlx5_responder_checks_the_qp_state_access_pd_and_range(mock_kernel: Kernel) -> None:
    """An mlx5 RC QP made through the raw ABI and a user MR; rxe0's packets to it: none
    answered before RTR, then an ACK (the bytes land), a NAK for a SEND (no receive
    queue processing), another PD's rkey, a range past the MR, and -- after RTS drops
    ``REMOTE_WRITE`` from the QP's access -- any write."""
    rxe = ib_device_by_name(mock_kernel, "rxe0")
    rgid = rxe.ports[0].gids[0]
    mgid = ib_device_by_name(mock_kernel, "mlx5_0").ports[0].gids[0]
    v = Verbs("mlx5_0")
    bufs = [_Buf(64 * 64 + 16 * 64), _Buf(4096), _Buf(64 * 64), _Buf(4096), _Buf(4096)]
    try:
        pd, other_pd = v.alloc_pd(), v.alloc_pd()
        cq, _, _ = _create_cq(v, bufs[2], bufs[3])
        req = bytes(_qp_core(pd, cq)) + bytes(_qp_request(bufs[0], bufs[1]))
        out, _ = _write(v.fd, V.IB_USER_VERBS_CMD_CREATE_QP, req, 32, 40)
        qp, qpn = int.from_bytes(out[:4], "little"), int.from_bytes(out[4:8], "little")
        acc = 1 | 2  # LOCAL_WRITE | REMOTE_WRITE
        mr = v.reg_mr(pd, 4096, 0, acc, addr=bufs[4].addr)
        other = v.reg_mr(other_pd, 4096, 0, acc, addr=bufs[4].addr)

        def send(opcode: int, rkey: int, va: int, data: bytes) -> Any:
            pkt = RocePacket(opcode, rgid, mgid, 17, qpn, rkey, va, data)
            return roce_xmit(rxe, pkt)

        _modify(v, qp, _STATE | _PKEY | _PORT | _ACCESS, qp_state=1, qp_access_flags=acc)
        assert send(IB_OPCODE_RC_RDMA_WRITE_ONLY, mr.rkey, 0x10, b"hi") is None  # INIT
        with pytest.raises(OSError) as ei:  # a GID no port on the segment holds
            _modify(v, qp, _STATE | _AV | _MTU | _DEST_QPN | _RQ_PSN | _DEST_RD_ATOMIC
                    | _RNR_TIMER, qp_state=2, dgid=bytes(16), path_mtu=3,
                    dest_qp_num=17)  # fmt: skip
        assert ei.value.errno == errno.ENETUNREACH
        _modify(v, qp, _STATE | _AV | _MTU | _DEST_QPN | _RQ_PSN | _DEST_RD_ATOMIC | _RNR_TIMER,
                qp_state=2, dgid=rgid, path_mtu=3, dest_qp_num=17)  # fmt: skip
        ack = send(IB_OPCODE_RC_RDMA_WRITE_ONLY, mr.rkey, 0x10, b"hi")
        assert ack is not None and ack.syndrome == "ACK" and ack.tlps == ()  # host memory
        assert bufs[4].map[0x10:0x12] == b"hi"
        naks = [
            send(IB_OPCODE_RC_SEND_ONLY, 0, 0, b"a SEND"),
            send(IB_OPCODE_RC_RDMA_WRITE_ONLY, other.rkey, 0, b"x"),
            send(IB_OPCODE_RC_RDMA_WRITE_ONLY, mr.rkey, 4095, b"xy"),
            send(IB_OPCODE_RC_RDMA_WRITE_ONLY, mr.rkey ^ 0xFF00, 0, b"x"),
        ]
        assert [(n.syndrome, n.reason) for n in naks] == [
            ("NAK_REM_OP", "mlx5: opcode 0x4 at the responder is not modelled"),
            ("NAK_REM_ACCESS", f"rkey {other.rkey:#x} is another PD's"),
            ("NAK_REM_ACCESS", "outside the MR"),
            ("NAK_REM_ACCESS", "no MR with this rkey"),
        ]
        _modify(v, qp, _STATE | _TIMEOUT | _RETRY | _RNR | _SQ_PSN | _RD_ATOMIC | _ACCESS,
                qp_state=3, timeout=14, retry_cnt=7, rnr_retry=7, qp_access_flags=1)  # fmt: skip
        ack = send(IB_OPCODE_RC_RDMA_WRITE_ONLY, mr.rkey, 0x10, b"no")
        assert ack is not None and ack.reason == f"QP {qpn:#x} has no REMOTE_WRITE access"
        assert bufs[4].map[0x10:0x12] == b"hi"
    finally:
        v.close()
        for b in bufs:
            b.close()


_SLOW_FIXTURE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=60, deadline=None, suppress_health_check=_SLOW_FIXTURE)
@given(
    sq=st.sampled_from([0, 1, 3, 16, 1 << 15, 1 << 16, 0xFFFFFFFF]),
    rq=st.sampled_from([0, 1, 16, 64]),
    shift=st.sampled_from([0, 4, 5, 6, 31, 33, 0xFFFFFFFF]),
    flags=st.integers(0, (1 << 12) - 1),
    bad=st.sampled_from(["", "buf", "db"]),
    extra=st.binary(max_size=16),
)
def test_mlx5_create_qp_any_driver_data_is_a_qp_or_an_errno(
    mock_kernel: Kernel, sq: int, rq: int, shift: int, flags: int, bad: str, extra: bytes
) -> None:
    """Any ``mlx5_ib_create_qp`` (and trailing bytes): a QP, or ``EINVAL``/``EFAULT``;
    never anything else, and nothing is left pinned once the file is closed."""
    v = Verbs("mlx5_0")
    bufs = [_Buf(1 << 20), _Buf(4096), _Buf(64 * 64), _Buf(4096)]
    try:
        pd = v.alloc_pd()
        cq, _, _ = _create_cq(v, bufs[2], bufs[3])
        drv = _qp_request(bufs[0], bufs[1])
        drv.sq_wqe_count, drv.rq_wqe_count, drv.rq_wqe_shift, drv.flags = sq, rq, shift, flags
        if bad:
            setattr(drv, f"{bad}_addr", 1 << 47)
        req = bytes(_qp_core(pd, cq)) + bytes(drv) + extra
        try:
            out, _ = _write(v.fd, V.IB_USER_VERBS_CMD_CREATE_QP, req[: len(req) // 4 * 4], 32, 40)
        except OSError as e:
            assert e.errno in (errno.EINVAL, errno.EFAULT), e
        else:
            assert int.from_bytes(out[4:8], "little") >= 0x100
            assert sq & (sq - 1) == 0 and flags & ~(1 | 2 | 8 | 1 << 10) == 0
            assert bad != "db" and (bad != "buf" or (sq, rq) == (0, 0))  # nothing to pin
    finally:
        v.close()
        for b in bufs:
            b.close()
    assert not mlx5_dev(mock_kernel, "mlx5_0").ops.verbs.qps


GID_PROBE = """
import pyverbs.device as d
import pyverbs.libibverbs_enums as e
from pyverbs.addr import GID, AHAttr, GlobalRoute
from pyverbs.cq import CQ
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr
from pyverbs.pyverbs_error import PyverbsRDMAError
from pyverbs.wr import SGE, SendWR
ctx = d.Context(name="rxe0")
pd = PD(ctx); cq = CQ(ctx, 16); mr = MR(pd, 4096, 1)
for g in ("fe80:0000:0000:0000:5054:00ff:fe12:3456", "0000:0000:0000:0000:0000:0000:0000:0000",
          "2001:0db8:0000:0000:0000:0000:0000:0001"):
    cap = QPCap(max_send_wr=4, max_recv_wr=4, max_send_sge=1, max_recv_sge=1)
    qp = QP(pd, QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq, cap=cap))
    a = QPAttr(port_num=1); a.qp_access_flags = 2; qp.to_init(a)
    a = QPAttr(port_num=1); a.path_mtu = e.IBV_MTU_1024; a.dest_qp_num = 0x99
    a.ah_attr = AHAttr(gr=GlobalRoute(dgid=GID(g), sgid_index=0), is_global=1, port_num=1)
    a.max_dest_rd_atomic = 1; a.min_rnr_timer = 12
    try:
        qp.to_rtr(a)
    except PyverbsRDMAError as err:
        print(g, "err", err.error_code)
        qp.close()
        continue
    print(g, "ok")
    a = QPAttr(port_num=1)
    a.timeout, a.retry_cnt, a.rnr_retry, a.max_rd_atomic = 1, 1, 1, 1
    qp.to_rts(a)
    wr = SendWR(wr_id=5, opcode=e.IBV_WR_RDMA_WRITE, num_sge=1, sg=[SGE(mr.buf, 8, mr.lkey)],
                send_flags=e.IBV_SEND_SIGNALED)
    wr.set_wr_rdma(0x1234, 0)
    qp.post_send(wr)
    n, wcs = 0, []
    while n == 0:
        n, wcs = cq.poll()
    print("write", wcs[0].status)
    qp.close()
"""
#: what real Linux 7.2's rxe answered, line for line (tools/real-linux, rdma-core 59 in the
#: guest): a link-local GID no port holds resolves (its EUI-64 names the MAC) and a write
#: there runs out of retries (IBV_WC_RETRY_EXC_ERR 12); the zero GID and a global GID of
#: no neighbour are ENETUNREACH (101)
GUEST_GID_ANSWERS = [
    "fe80:0000:0000:0000:5054:00ff:fe12:3456 ok",
    "write 12",
    "0000:0000:0000:0000:0000:0000:0000:0000 err 101",
    "2001:0db8:0000:0000:0000:0000:0000:0001 err 101",
]


def test_rxe_resolves_gids_as_real_linux_and_a_write_to_nobody_runs_out_of_retries(
    mock_kernel: Kernel, tmp_path: Path
) -> None:
    env = _pyverbs_env()
    prog = tmp_path / "gids.py"
    prog.write_text(GID_PROBE)
    with mock_kernel.tracer.capture() as events:
        r = mock_kernel.run([sys.executable, str(prog)], capture_output=True, text=True,
                            env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == GUEST_GID_ANSWERS
    (x,) = [e for e in events if e["event"] == "roce.xmit"]
    assert (x["dst"], x["syndrome"]) == ("-", "none")


def test_the_example_topology_is_the_machine_these_tests_run_on() -> None:
    """``examples/mlx5_rxe.toml`` (what docs/rdma.md runs the C twin with) is the
    default topology plus ``[[rdma.rxe]] netdev = "enp0s2"``."""
    assert load_topology(REPO / "examples" / "mlx5_rxe.toml") == MLX5_RXE
