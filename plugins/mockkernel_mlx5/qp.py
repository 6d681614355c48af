"""mlx5_ib's CQs and QPs of user contexts (``cq.c``, ``qp.c``), and the responder of its
RoCE port.

The provider (rdma-core's ``libmlx5``) allocates a CQ's or QP's buffer and doorbell
record in its own memory and hands their addresses over in the driver data of the
``CREATE_CQ`` / ``CREATE_QP`` write commands (``mlx5_ib_create_cq``,
``mlx5_ib_create_qp`` of ``mlx5-abi.h``); the kernel checks the request, pins the
buffer and the doorbell page (``ib_umem_get``, ``mlx5_ib_db_map_user``) and answers
the firmware's CQ or QP number (``mlx5_ib_create_cq_resp``, ``mlx5_ib_create_qp_resp``).
``MODIFY_QP`` takes the legacy command (the provider sends driver data only for ECE,
rate limits and out-of-order placement, which this function does not offer).

What the hardware does with those queues is modelled only where no CPU is involved:
an **incoming RDMA WRITE** (:meth:`Mlx5Verbs.roce_rcv`) -- the QP in RTR or RTS, its
``REMOTE_WRITE`` access, the rkey's MR of the QP's PD, then the mkey's translation and
DMA (:meth:`~.ib.Mlx5IbOps.mr_write`: a dma-buf MR faults, maps and writes through the
PCIe fabric with the mkey's PH and steering tag).  The send side (WQEs the provider
writes into the buffer and the doorbell it rings in the UAR page) and receive-queue
processing (SEND) are not modelled: a SEND, READ or atomic arriving at an mlx5 QP is
answered with a remote operational error, and nothing posts CQEs into the CQ buffer.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mockkernel.driver import (
    IB_OPCODE_RC_RDMA_WRITE_ONLY,
    IB_QPS_RTR,
    IB_QPS_RTS,
    NAK_REM_ACCESS,
    NAK_REM_OP,
    PAGE_SIZE,
    ROCE_ACK,
    IbCq,
    IbQp,
    IbQpAttr,
    IbUmem,
    RoceAck,
    RocePacket,
    TracePoint,
    Udata,
    ib_copy_to_udata,
    ib_rdma_write,
    ib_umem_get,
    kerr,
)
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_LOCAL_WRITE,
    IB_UVERBS_ACCESS_REMOTE_WRITE,
    IB_UVERBS_QPT_RC,
    IB_UVERBS_QPT_UC,
)
from mockkernel.uapi.rdma.mlx5_abi import (
    MLX5_IB_CREATE_CQ_FLAGS_CQE_128B_PAD,
    MLX5_IB_CREATE_CQ_FLAGS_REAL_TIME_TS,
    MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX,
    MLX5_QP_FLAG_BFREG_INDEX,
    MLX5_QP_FLAG_SCATTER_CQE,
    MLX5_QP_FLAG_SIGNATURE,
    MLX5_QP_FLAG_UAR_PAGE_INDEX,
    mlx5_ib_create_cq,
    mlx5_ib_create_qp,
    mlx5_ib_create_qp_resp,
)

if TYPE_CHECKING:
    from . import Mlx5Dev
    from .ucontext import Mlx5Ucontext

__all__ = ["Mlx5Cq", "Mlx5Qp", "Mlx5Verbs"]

trace_mlx5_create_cq = TracePoint("mlx5.create_cq", "ibdev", "cqn", "entries", "cqe_size", "uar")
trace_mlx5_create_qp = TracePoint(
    "mlx5.create_qp", "ibdev", "qpn", "sq_wqe_count", "rq_wqe_count", "rq_wqe_shift", "uar"
)

LOG_MAX_CQ_SZ = 22  # MLX5_CAP_GEN(log_max_cq_sz) of this ConnectX-7 (max_cqe 2^22 - 1)
LOG_MAX_QP_SZ = 15  # MLX5_CAP_GEN(log_max_qp_sz) (max_qp_wr 2^15)
MLX5_SEND_WQE_SHIFT = 6  # a send WQE basic block is 64 bytes
_DATA_SEG = 16  # sizeof(struct mlx5_wqe_data_seg)
#: MLX5_QP_FLAG_* a user RC/UC/UD QP may carry here (DCI/DCT need QPT_DRIVER, tunnel
#: offloads and self-loopback RAW_PACKET, credit mode a capability this model lacks)
_QP_FLAGS = (
    MLX5_QP_FLAG_SIGNATURE
    | MLX5_QP_FLAG_SCATTER_CQE
    | MLX5_QP_FLAG_BFREG_INDEX
    | MLX5_QP_FLAG_UAR_PAGE_INDEX
)
_CQ_FLAGS = (
    MLX5_IB_CREATE_CQ_FLAGS_CQE_128B_PAD
    | MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX
    | MLX5_IB_CREATE_CQ_FLAGS_REAL_TIME_TS
)
_CQ_MIN_INLEN = mlx5_ib_create_cq.flags.offset
_QP_MIN_INLEN = mlx5_ib_create_qp.ece_options.offset  # an rdma-core without ECE
_IB_QP_PATH_MTU = 1 << 8  # enum ib_qp_attr_mask
_MODIFY_MIN_INLEN = 16  # offsetofend(struct mlx5_ib_modify_qp, ece_options)


def _roundup_pow_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(eq=False)
class Mlx5Cq:
    """``struct mlx5_ib_cq`` of a user CQ: its number, pinned buffer and doorbell."""

    cqn: int
    cqe_size: int
    uar: int
    buf: IbUmem
    db: IbUmem


@dataclass(eq=False)
class Mlx5Qp:
    """``struct mlx5_ib_qp`` of a user QP: its number, pinned buffer and doorbell."""

    qp: IbQp
    uar: int
    buf: IbUmem | None
    db: IbUmem


class Mlx5Verbs:
    """The CQ and QP numbers of one function, its user QPs, and its RoCE responder."""

    def __init__(self, mdev: Mlx5Dev) -> None:
        self.mdev = mdev
        self.lock = threading.Lock()
        self.qps: dict[int, Mlx5Qp] = {}
        self._cqn = 0
        self._qpn = 0x100  # firmware hands out QP numbers; the low ones are its own

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _request(udata: Udata, struct: type[ctypes.Structure], inlen: int) -> bytes:
        try:
            raw = udata.read()
        except OSError:
            raise kerr(_errno.EFAULT) from None
        return raw[:inlen].ljust(ctypes.sizeof(struct), b"\0")

    def _db_map_user(self, virt: int) -> IbUmem:
        """``mlx5_ib_db_map_user``: pin the page holding the doorbell record."""
        return ib_umem_get(self.mdev.ibdev, virt & ~(PAGE_SIZE - 1), PAGE_SIZE, 0)

    # -- CQ (cq.c) -----------------------------------------------------------------------
    def create_cq(self, cq: IbCq, udata: Udata) -> None:
        """``mlx5_ib_create_cq`` + ``create_cq_user``."""
        entries = cq.cqe
        if entries < 0 or entries > 1 << LOG_MAX_CQ_SZ:
            raise kerr(_errno.EINVAL)
        entries = _roundup_pow_of_two(entries + 1)
        if entries > 1 << LOG_MAX_CQ_SZ:
            raise kerr(_errno.EINVAL)
        inlen = min(udata.inlen, ctypes.sizeof(mlx5_ib_create_cq))
        if inlen < _CQ_MIN_INLEN:
            raise kerr(_errno.EINVAL)
        ucmd = mlx5_ib_create_cq.from_buffer_copy(self._request(udata, mlx5_ib_create_cq, inlen))
        if ucmd.flags & ~_CQ_FLAGS:
            raise kerr(_errno.EINVAL)
        if ucmd.cqe_size not in (64, 128) or ucmd.reserved0 or ucmd.reserved1:
            raise kerr(_errno.EINVAL)
        buf = ib_umem_get(
            self.mdev.ibdev, ucmd.buf_addr, entries * ucmd.cqe_size, IB_UVERBS_ACCESS_LOCAL_WRITE
        )
        try:
            db = self._db_map_user(ucmd.db_addr)
        except BaseException:
            buf.release()
            raise
        try:
            mctx: Mlx5Ucontext = cq.uctx.priv
            if ucmd.cqe_comp_en:
                raise kerr(_errno.EOPNOTSUPP)  # no CQE compression on this model
            if ucmd.flags & MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX:
                uar = ucmd.uar_page_index
            elif mctx.lib_uar_dyn or not mctx.sys_pages:
                raise kerr(_errno.EINVAL)
            else:
                uar = mctx.sys_pages[0]
            if ucmd.flags & (
                MLX5_IB_CREATE_CQ_FLAGS_CQE_128B_PAD | MLX5_IB_CREATE_CQ_FLAGS_REAL_TIME_TS
            ):
                raise kerr(_errno.EOPNOTSUPP)  # no cqe_128_always, no real-time clock
            with self.lock:
                self._cqn += 1
                cqn = self._cqn
            ib_copy_to_udata(udata, cqn.to_bytes(4, "little"))  # resp.cqn
        except BaseException:
            db.release()
            buf.release()
            raise
        cq.cqe = entries - 1
        cq.priv = Mlx5Cq(cqn, ucmd.cqe_size, uar, buf, db)
        trace_mlx5_create_cq(self.mdev.kernel.tracer, self.mdev.ibdev.name, cqn, entries,
                             ucmd.cqe_size, uar)  # fmt: skip

    def destroy_cq(self, cq: IbCq) -> None:
        mcq: Mlx5Cq = cq.priv
        mcq.db.release()
        mcq.buf.release()

    # -- QP (qp.c) -----------------------------------------------------------------------
    def _uar_index(self, mctx: Mlx5Ucontext, ucmd: mlx5_ib_create_qp) -> int:
        """``create_user_qp``'s UAR: a bfreg of the context, or a UAR page named by the
        provider (not checked: upstream's "TBD"), or ``alloc_bfreg`` (dynamic: none)."""
        if ucmd.flags & MLX5_QP_FLAG_BFREG_INDEX:
            page = int(ucmd.bfreg_index) // 2  # MLX5_NON_FP_BFREGS_PER_UAR
            if mctx.lib_uar_dyn or page >= len(mctx.sys_pages):
                raise kerr(_errno.EINVAL)
            return mctx.sys_pages[page]
        if ucmd.flags & MLX5_QP_FLAG_UAR_PAGE_INDEX:
            return int(ucmd.bfreg_index)
        if mctx.lib_uar_dyn or not mctx.sys_pages:
            raise kerr(_errno.EINVAL)
        return mctx.sys_pages[0]

    def create_qp(self, qp: IbQp, udata: Udata) -> None:
        """``mlx5_ib_create_qp`` of a user RC/UC/UD QP: the request's checks in
        ``process_udata_size``/``process_vendor_flags``/``set_rq_size``/
        ``_create_user_qp`` (the UAR, ``set_user_buf_size``) order, then the buffer and
        the doorbell pinned."""
        if udata.inlen < _QP_MIN_INLEN:
            raise kerr(_errno.EINVAL)
        size = ctypes.sizeof(mlx5_ib_create_qp)
        try:
            raw = udata.read()
        except OSError:
            raise kerr(_errno.EFAULT) from None
        if any(raw[size:]):
            raise kerr(_errno.EINVAL)  # check_ucmd_data: past what the kernel knows, zeroes
        ucmd = mlx5_ib_create_qp.from_buffer_copy(raw[:size].ljust(size, b"\0"))
        if ucmd.flags & ~_QP_FLAGS:
            raise kerr(_errno.EINVAL)
        mctx: Mlx5Ucontext = qp.uctx.priv
        # set_rq_size (no SRQ: the QP has a receive queue): the provider's geometry; a
        # signature-enabled receive WQE needs room for its signature segment
        if qp.cap.max_recv_wr > 1 << LOG_MAX_QP_SZ or ucmd.rq_wqe_shift > 32:
            raise kerr(_errno.EINVAL)
        wq_sig = 1 if ucmd.flags & MLX5_QP_FLAG_SIGNATURE else 0
        if (1 << ucmd.rq_wqe_shift) // _DATA_SEG < wq_sig:
            raise kerr(_errno.EINVAL)
        uar = self._uar_index(mctx, ucmd)
        sq = ucmd.sq_wqe_count  # set_user_buf_size
        if sq & (sq - 1) or sq > 1 << LOG_MAX_QP_SZ:
            raise kerr(_errno.EINVAL)
        buf_size = (ucmd.rq_wqe_count << ucmd.rq_wqe_shift) + (sq << MLX5_SEND_WQE_SHIFT)
        pin = ucmd.buf_addr and buf_size  # no buffer address: nothing is pinned
        buf = ib_umem_get(self.mdev.ibdev, ucmd.buf_addr, buf_size, 0) if pin else None
        try:
            db = self._db_map_user(ucmd.db_addr)
        except BaseException:
            if buf is not None:
                buf.release()
            raise
        try:
            with self.lock:
                qpn = self._qpn
                while qpn in self.qps:
                    qpn += 1
                self._qpn = qpn + 1
                mqp = Mlx5Qp(qp, uar, buf, db)
                self.qps[qpn] = mqp
            resp = mlx5_ib_create_qp_resp()  # bfreg_index: adjust_bfregn(INVALID) is 0
            ib_copy_to_udata(udata, bytes(resp))
        except BaseException:
            with self.lock:
                self.qps.pop(qpn, None)
            db.release()
            if buf is not None:
                buf.release()
            raise
        qp.qp_num = qpn
        qp.priv = mqp
        trace_mlx5_create_qp(self.mdev.kernel.tracer, self.mdev.ibdev.name, qpn, sq,
                             ucmd.rq_wqe_count, ucmd.rq_wqe_shift, uar)  # fmt: skip

    def modify_qp(self, qp: IbQp, attr: IbQpAttr, mask: int, udata: Udata) -> None:
        """``mlx5_ib_modify_qp``: driver data only with ECE/out-of-order (none offered)."""
        if udata.inlen:
            if udata.inlen < _MODIFY_MIN_INLEN:
                raise kerr(_errno.EINVAL)
            raise kerr(_errno.EOPNOTSUPP)  # a comp_mask or ECE this function lacks
        if mask & _IB_QP_PATH_MTU and not 1 <= attr.path_mtu <= 5:  # IB_MTU_256..IB_MTU_4096
            raise kerr(_errno.EINVAL)

    def destroy_qp(self, qp: IbQp) -> None:
        mqp: Mlx5Qp = qp.priv
        with self.lock:
            self.qps.pop(qp.qp_num, None)
        mqp.db.release()
        if mqp.buf is not None:
            mqp.buf.release()

    # -- the RoCE responder ----------------------------------------------------------------
    def roce_rcv(self, pkt: RocePacket) -> RoceAck | None:
        """A request from the segment for one of this function's QPs.

        A QP that does not exist or is not in RTR/RTS drops it (no answer).  An RDMA
        WRITE is checked as the HCA checks it and written through the rkey's mkey; any
        other request needs the receive queue or a response path, not modelled.
        """
        with self.lock:
            mqp = self.qps.get(pkt.dest_qpn)
        if mqp is None:
            return None
        qp = mqp.qp
        if qp.state not in (IB_QPS_RTR, IB_QPS_RTS) or qp.qp_type not in (
            IB_UVERBS_QPT_RC,
            IB_UVERBS_QPT_UC,
        ):
            return None
        if pkt.opcode != IB_OPCODE_RC_RDMA_WRITE_ONLY:
            return RoceAck(
                NAK_REM_OP, f"mlx5: opcode {pkt.opcode:#x} at the responder is not modelled"
            )
        if not qp.attr.qp_access_flags & IB_UVERBS_ACCESS_REMOTE_WRITE:
            return RoceAck(NAK_REM_ACCESS, f"QP {qp.qp_num:#x} has no REMOTE_WRITE access")
        dev = self.mdev.ibdev
        mr = dev.mrs.get(pkt.rkey)
        if mr is not None and mr.pd is not qp.pd:
            return RoceAck(NAK_REM_ACCESS, f"rkey {pkt.rkey:#x} is another PD's")
        res = ib_rdma_write(dev, pkt.rkey, pkt.va - (mr.iova if mr is not None else 0), pkt.payload)
        return RoceAck(ROCE_ACK if res.ok else NAK_REM_ACCESS, res.reason, res.tlps)
