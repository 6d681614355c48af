"""rxe's CQs, QPs, shared queues and data path (``rxe_queue.c``, ``rxe_mmap.c``,
``rxe_cq.c``, ``rxe_qp.c``, ``rxe_req.c``/``rxe_resp.c``/``rxe_comp.c``).

Every queue is an :class:`RxeQueue`: a buffer laid out as ``rxe_queue_buf``
(``log2_elem_size``, ``index_mask``, producer and consumer indices on their own cache
lines, then ``index_mask + 1`` slots of ``1 << log2_elem_size`` bytes).  A user
queue's buffer is ``vmalloc_user`` memory the provider maps: ``CREATE_CQ`` and
``CREATE_QP`` answer an ``mminfo`` (offset, size) per queue, the offset is handed out
once per device (``rxe->mmap_offset``, from one page up) and put on the device's
*pending* list; ``mmap`` of the uverbs file with that offset and the same context maps
it and takes it off the list (a second ``mmap`` of it is ``EINVAL``, as upstream).

The data path, as a provider drives it: ``post_recv`` writes an ``rxe_recv_wqe`` into
the receive queue and moves its producer index (no system call); ``post_send`` writes
``rxe_send_wqe``s into the send queue and rings the doorbell, a ``POST_SEND`` write
command with no work requests.  The doorbell runs the requester here, synchronously:
each WQE from the consumer index to the producer index is executed against the
destination QP (``dest_qp_num`` of ``MODIFY_QP``: on this device when the destination
GID is its own -- soft-RoCE loops back through its own net device --, else one request
packet to the port on the kernel's Ethernet segment that holds the GID, ``roce_xmit``,
whose responder answers ACK or NAK; WRITE and SEND only) -- RDMA WRITE (with immediate),
SEND (with immediate), RDMA READ, compare-and-swap and fetch-and-add -- with the
responder's checks (the rkey's MR, its PD, its access, the range) and the receive WQE's
scatter list; completions (``ib_uverbs_wc``) go to the CQs' rings, the producer index
moved after the entry is written.  An error completes the WQE in error, moves the QP to
ERR and flushes what is left (``IBV_WC_WR_FLUSH_ERR``).  A SEND that finds no receive WQE
is an RNR NAK: with ``rnr_retry`` 7 (retry for ever) the WQE stays posted and is retried
at the next doorbell on the device, else it completes with ``IBV_WC_RNR_RETRY_EXC_ERR``.

Memory of an MR is reached through the address space of the process that registered
it (``current_mm()`` at ``REG_MR``): a supervised program's memory is another
process, and the two ends of a connection may be two programs.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from dataclasses import dataclass, field
from errno import EFAULT, EINVAL
from typing import TYPE_CHECKING

from mockkernel.driver import (
    IB_CQ_NEXT_COMP,
    IB_CQ_SOLICITED,
    IB_EVENT_CQ_ERR,
    IB_EVENT_SRQ_LIMIT_REACHED,
    IB_OPCODE_RC_RDMA_WRITE_ONLY,
    IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE,
    IB_OPCODE_RC_SEND_ONLY,
    IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE,
    IB_QPS_ERR,
    IB_QPS_RESET,
    IB_QPS_RTR,
    IB_QPS_RTS,
    IB_SRQ_LIMIT,
    IB_SRQ_MAX_WR,
    NAK_INV_REQ,
    NAK_REM_ACCESS,
    NAK_REM_OP,
    PAGE_SIZE,
    IbAh,
    IbCq,
    IbMr,
    IbQp,
    IbQpAttr,
    IbSrq,
    IbSrqAttr,
    IbUcontext,
    QueueBuf,
    RocePacket,
    TracePoint,
    Udata,
    UserMemory,
    Vma,
    copy_to_user,
    kerr,
    roce_xmit,
)
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_LOCAL_WRITE,
    IB_UVERBS_ACCESS_REMOTE_ATOMIC,
    IB_UVERBS_ACCESS_REMOTE_READ,
    IB_UVERBS_ACCESS_REMOTE_WRITE,
    IB_UVERBS_QPT_RC,
    IB_UVERBS_QPT_UC,
    IB_UVERBS_QPT_UD,
)
from mockkernel.uapi.rdma.ib_user_verbs import (
    IB_UVERBS_WC_COMP_SWAP,
    IB_UVERBS_WC_FETCH_ADD,
    IB_UVERBS_WC_RDMA_READ,
    IB_UVERBS_WC_RDMA_WRITE,
    IB_UVERBS_WC_SEND,
    IB_UVERBS_WR_ATOMIC_CMP_AND_SWP,
    IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD,
    IB_UVERBS_WR_RDMA_READ,
    IB_UVERBS_WR_RDMA_WRITE,
    IB_UVERBS_WR_RDMA_WRITE_WITH_IMM,
    IB_UVERBS_WR_SEND,
    IB_UVERBS_WR_SEND_WITH_IMM,
    ib_uverbs_wc,
)
from mockkernel.uapi.rdma.rdma_user_rxe import (
    mminfo,
    rxe_create_ah_resp,
    rxe_create_cq_resp,
    rxe_create_qp_resp,
    rxe_create_srq_resp,
    rxe_dma_info,
    rxe_modify_srq_cmd,
    rxe_queue_buf,
    rxe_recv_wqe,
    rxe_send_wqe,
    rxe_send_wr,
    rxe_sge,
)

if TYPE_CHECKING:
    from mockkernel.driver import IbDevice, KernelContext

__all__ = ["RxeCq", "RxeMr", "RxeQp", "RxeQueue", "RxeSrq", "RxeVerbs"]

trace_rxe_cq_arm = TracePoint("rxe.cq_arm", "ibdev", "cq", "notify")
trace_rxe_ud_send = TracePoint("rxe.ud_send", "ibdev", "qpn", "dest_qpn", "length", "delivered")

# enum ib_wc_status (the ones rxe completes with)
IB_WC_SUCCESS = 0
IB_WC_LOC_LEN_ERR = 1
IB_WC_LOC_QP_OP_ERR = 2
IB_WC_LOC_PROT_ERR = 4
IB_WC_WR_FLUSH_ERR = 5
IB_WC_REM_INV_REQ_ERR = 9
IB_WC_REM_ACCESS_ERR = 10
IB_WC_REM_OP_ERR = 11
IB_WC_RETRY_EXC_ERR = 12
IB_WC_RNR_RETRY_EXC_ERR = 13
# ib_uverbs_wc opcodes of the receive side, wc_flags
IB_UVERBS_WC_RECV = 1 << 7
IB_UVERBS_WC_RECV_RDMA_WITH_IMM = IB_UVERBS_WC_RECV + 1
IB_WC_GRH = 1 << 0  # RoCE: every received packet has one
IB_WC_WITH_IMM = 1 << 1
# ibv_send_flags
IB_SEND_SIGNALED = 1 << 1
IB_SEND_SOLICITED = 1 << 2
IB_SEND_INLINE = 1 << 3

_PRODUCER = rxe_queue_buf.producer_index.offset
_CONSUMER = rxe_queue_buf.consumer_index.offset
_DATA = ctypes.sizeof(rxe_queue_buf)
_SGE = ctypes.sizeof(rxe_sge)
_SEND_WQE = ctypes.sizeof(rxe_send_wqe)
_RECV_WQE = ctypes.sizeof(rxe_recv_wqe)
_SEND_SGES = rxe_send_wqe.dma.offset + rxe_dma_info.sge.offset  # inline data too
_RECV_SGES = rxe_recv_wqe.dma.offset + rxe_dma_info.sge.offset
#: ``wr.wr.ud`` of a send WQE: remote_qpn, remote_qkey, pkey_index, reserved, ah_num
_UD = struct.Struct("<IIHHI")
_UD_OFFSET = rxe_send_wqe.wr.offset + rxe_send_wr.wr.offset
GRH_SIZE = 40  # what a UD receive buffer starts with (an IPv6 header on RoCE v2)
#: the bytes of a RoCE v2 packet around a UD payload: UDP, BTH, DETH headers, ICRC
_UDP_BTH_DETH, _IMMDT, _ICRC = 8 + 12 + 8, 4, 4
RXE_MIN_AH_INDEX = 1  # rxe_pool.c: AH numbers from 1 (0: an old provider's AV)
RXE_MAX_AH = (1 << 15) - 1
RXE_MIN_SRQ_INDEX = 0x0002_0001  # rxe_param.h: SRQ numbers
RXE_MIN_SRQ_WR = RXE_MIN_SRQ_SGE = 1
#: sizeof(struct rxe_cqe): a union of the kernel's ib_wc (72 bytes) and ib_uverbs_wc
_CQE_SIZE = 72
_CACHE_LINE = 64
RXE_MAX_INLINE_DATA = 416  # rxe_param.h: RXE_MAX_INLINE_DATA
RXE_MIN_QP_INDEX = 16  # rxe_pool.c: the GSI QP takes the first


def _roundup_pow_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class RxeQueue:
    """``struct rxe_queue``: one ring in a :class:`~mockkernel.driver.QueueBuf`.

    ``num_elem`` is what was asked for; :attr:`max_elem` what fits (slots - 1).
    """

    def __init__(self, kernel: KernelContext, num_elem: int, elem_size: int, name: str) -> None:
        if num_elem < 0:
            raise kerr(EINVAL)
        slot = _roundup_pow_of_two(max(elem_size, _CACHE_LINE))
        self.log2_elem_size = slot.bit_length() - 1
        slots = _roundup_pow_of_two(num_elem + 1)
        self.index_mask = slots - 1
        self.max_elem = slots - 1
        self.buf_size = _DATA + slots * slot
        self.buf = QueueBuf(kernel, self.buf_size, name)
        m = self.buf.map
        m.write_u32(0, self.log2_elem_size)
        m.write_u32(4, self.index_mask)

    # the indices, as the other side may have moved them (masked, as the kernel does)
    @property
    def producer(self) -> int:
        return self.buf.map.read_u32(_PRODUCER) & self.index_mask

    @producer.setter
    def producer(self, value: int) -> None:
        self.buf.map.write_u32(_PRODUCER, value & self.index_mask)

    @property
    def consumer(self) -> int:
        return self.buf.map.read_u32(_CONSUMER) & self.index_mask

    @consumer.setter
    def consumer(self, value: int) -> None:
        self.buf.map.write_u32(_CONSUMER, value & self.index_mask)

    def empty(self) -> bool:
        return self.producer == self.consumer

    def full(self) -> bool:
        return (self.producer + 1) & self.index_mask == self.consumer

    def slot(self, index: int) -> int:
        """The byte offset of slot ``index`` in the buffer."""
        return _DATA + ((index & self.index_mask) << self.log2_elem_size)

    def read(self, index: int, n: int) -> bytes:
        return self.buf.map.read(self.slot(index), min(n, 1 << self.log2_elem_size))

    def reset(self) -> None:
        """``rxe_queue_reset``: empty (the slots zeroed, both indices 0)."""
        m = self.buf.map
        m.fill(_DATA, self.buf_size - _DATA)
        self.producer = 0
        self.consumer = 0

    def release(self) -> None:
        self.buf.release()


@dataclass
class MmapInfo:
    """``struct rxe_mmap_info``: a queue a context may map once, at ``offset``."""

    uctx: IbUcontext
    offset: int
    size: int
    queue: RxeQueue


@dataclass
class RxeMr:
    """rxe's side of an MR: where it was made and whose memory it is."""

    start: int
    mm: UserMemory


@dataclass(eq=False)
class RxeCq:
    queue: RxeQueue
    cq: IbCq
    #: ``IB_CQ_SOLICITED``/``IB_CQ_NEXT_COMP`` armed by ``REQ_NOTIFY_CQ``
    notify: int = 0


@dataclass(eq=False)
class RxeSrq:
    """``struct rxe_srq``: the shared ring, its SGE room, the armed limit."""

    queue: RxeQueue
    max_sge: int
    srq_num: int
    limit: int = 0
    mmaps: list[MmapInfo] = field(default_factory=list)


@dataclass(eq=False)
class RxeQp:
    qp: IbQp
    sq: RxeQueue
    #: its own receive queue; ``None`` on an SRQ (receives come from ``srq``)
    rq: RxeQueue | None
    max_send_sge: int
    max_inline: int
    max_recv_sge: int
    srq: RxeSrq | None = None
    #: the next SEND's PSN-free bookkeeping: which WQE is being retried after an RNR NAK
    rnr_waiting: bool = False
    mmaps: list[MmapInfo] = field(default_factory=list)


class _WcError(Exception):
    """A work request completes in error: the requester's status (and the
    responder's, when it consumed a receive WQE)."""

    def __init__(self, status: int, why: str, resp_status: int | None = None) -> None:
        super().__init__(why)
        self.status = status
        self.why = why
        self.resp_status = resp_status


class _RnrNak(Exception):
    """The responder has no receive WQE."""


def _sge_list(raw: bytes, off: int, num: int) -> list[tuple[int, int, int]]:
    return [struct.unpack_from("<QII", raw, off + _SGE * i) for i in range(num)]


class RxeVerbs:
    """The verbs state of one rxe device: QP numbers, pending mmaps, the data path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.qps: dict[int, RxeQp] = {}
        self.pending: list[MmapInfo] = []
        self.mmap_offset = 0
        self._next_qpn = RXE_MIN_QP_INDEX + 1  # the GSI QP has RXE_MIN_QP_INDEX
        self.ibdev: IbDevice | None = None
        self.max_srq_wr = 0  # (the device's, set by the ops)
        #: address handles by AH number (``rxe->ah_pool``, allocated cyclically)
        self.ahs: dict[int, IbAh] = {}
        self._next_ah = RXE_MIN_AH_INDEX
        self._next_srq = RXE_MIN_SRQ_INDEX

    # -- tracing ------------------------------------------------------------------------
    def _trace(self, event: str, **fields: object) -> None:
        dev = self.ibdev
        if dev is None:
            return
        tracer = dev.kernel.tracer
        if tracer.enabled:
            tracer.emit(event, ibdev=dev.name, **fields)

    # -- mmap (rxe_mmap.c) --------------------------------------------------------------------
    def _mmap_info(self, uctx: IbUcontext, queue: RxeQueue) -> MmapInfo:
        """``rxe_create_mmap_info`` + ``do_mmap_info``: an offset for the queue, pending."""
        with self.lock:
            if self.mmap_offset == 0:
                self.mmap_offset = PAGE_SIZE  # ALIGN(PAGE_SIZE, SHMLBA)
            info = MmapInfo(uctx, self.mmap_offset, queue.buf.mapped_size, queue)
            self.mmap_offset += -(-queue.buf_size // PAGE_SIZE) * PAGE_SIZE  # ALIGN(size, SHMLBA)
            self.pending.append(info)
        return info

    def _drop_mmaps(self, infos: list[MmapInfo]) -> None:
        with self.lock:
            for info in infos:
                if info in self.pending:
                    self.pending.remove(info)

    def mmap(self, uctx: IbUcontext, vma: Vma) -> None:
        """``rxe_mmap``: the pending queue of this context at this offset, once."""
        offset = vma.offset
        with self.lock:
            for info in self.pending:
                if info.uctx is uctx and info.offset == offset:
                    if vma.length > info.size:
                        raise kerr(EINVAL)  # "mmap region is larger than the object!"
                    self.pending.remove(info)
                    break
            else:
                raise kerr(EINVAL)  # "unable to find pending mmap info"
        info.queue.buf.remap(vma)

    # -- CQ (rxe_verbs.c, rxe_cq.c) ----------------------------------------------------------
    def create_cq(self, cq: IbCq, udata: Udata, max_cqe: int) -> None:
        if udata.outlen < ctypes.sizeof(rxe_create_cq_resp):
            raise kerr(EINVAL)
        if cq.cqe <= 0 or cq.cqe > max_cqe:  # rxe_cq_chk_attr
            raise kerr(EINVAL)
        queue = RxeQueue(cq.device.kernel, cq.cqe, _CQE_SIZE, f"rxe-cq{cq.handle}")
        try:
            info = self._mmap_info(cq.uctx, queue)
            _copy_mminfo(udata, 0, info)
        except BaseException:
            self._drop_pending_of(queue)
            queue.release()
            raise
        cq.cqe = queue.max_elem
        cq.priv = RxeCq(queue, cq)

    def destroy_cq(self, cq: IbCq) -> None:
        rcq: RxeCq = cq.priv
        with self.lock:  # not while a doorbell of another file posts to it
            self._drop_pending_of(rcq.queue)
            rcq.queue.release()

    def _drop_pending_of(self, queue: RxeQueue) -> None:
        with self.lock:
            self.pending = [i for i in self.pending if i.queue is not queue]

    # -- AH (rxe_verbs.c, rxe_av.c) ----------------------------------------------------------
    def create_ah(self, ah: IbAh, udata: Udata) -> None:
        """``rxe_create_ah``: the next AH number; a provider that gave room for
        ``rxe_create_ah_resp`` gets it (and puts it in its UD work requests)."""
        with self.lock:
            num = self._next_ah
            while num in self.ahs:
                num = num + 1 if num < RXE_MAX_AH else RXE_MIN_AH_INDEX
            self._next_ah = num + 1 if num < RXE_MAX_AH else RXE_MIN_AH_INDEX
            self.ahs[num] = ah
        ah.priv = num
        if udata.outlen >= ctypes.sizeof(rxe_create_ah_resp):
            try:
                copy_to_user(udata.out_addr, bytes(rxe_create_ah_resp(num, 0)))
            except OSError:
                with self.lock:
                    del self.ahs[num]
                raise kerr(EFAULT) from None

    def destroy_ah(self, ah: IbAh) -> None:
        with self.lock:
            self.ahs.pop(ah.priv, None)

    # -- SRQ (rxe_srq.c) -----------------------------------------------------------------------
    def create_srq(self, srq: IbSrq, udata: Udata, max_srq_wr: int, max_srq_sge: int) -> None:
        """``rxe_create_srq``: ``rxe_srq_chk_init`` (at least one WR and one SGE), a ring
        of ``rxe_recv_wqe`` + SGEs the provider maps; ``rxe_create_srq_resp`` answers
        its ``mminfo`` and SRQ number."""
        if udata.outlen < ctypes.sizeof(rxe_create_srq_resp):
            raise kerr(EINVAL)  # "malformed udata"
        a = srq.attr
        if a.max_wr > max_srq_wr or a.max_wr <= 0 or a.max_sge > max_srq_sge:
            raise kerr(EINVAL)
        a.max_wr = max(a.max_wr, RXE_MIN_SRQ_WR)
        a.max_sge = max(a.max_sge, RXE_MIN_SRQ_SGE)
        queue = RxeQueue(
            srq.device.kernel, a.max_wr, _RECV_WQE + a.max_sge * _SGE, f"rxe-srq{srq.handle}"
        )
        with self.lock:
            num = self._next_srq
            self._next_srq += 1
        try:
            info = self._mmap_info(srq.uctx, queue)
            _copy_mminfo(udata, 0, info)
            copy_to_user(udata.out_addr + rxe_create_srq_resp.srq_num.offset,
                         num.to_bytes(4, "little"))  # fmt: skip
        except BaseException:
            self._drop_pending_of(queue)
            queue.release()
            raise
        a.max_wr = queue.max_elem
        srq.priv = RxeSrq(queue, a.max_sge, num, a.srq_limit, [info])

    def modify_srq(self, srq: IbSrq, attr: IbSrqAttr, mask: int, udata: Udata) -> None:
        """``rxe_modify_srq``: the limit (not above the ring), and the ring resized --
        its posted receives kept, the new ``mminfo`` written where the provider's
        ``rxe_modify_srq_cmd`` says."""
        rsrq: RxeSrq = srq.priv
        if udata.inlen < ctypes.sizeof(rxe_modify_srq_cmd):
            raise kerr(EINVAL)
        cmd = rxe_modify_srq_cmd.from_buffer_copy(udata.read().ljust(8, b"\0"))
        queue = rsrq.queue
        if mask & IB_SRQ_MAX_WR:
            if attr.max_wr > self.max_srq_wr or attr.max_wr <= 0:
                raise kerr(EINVAL)
            if rsrq.limit and attr.max_wr < rsrq.limit:
                raise kerr(EINVAL)
        if mask & IB_SRQ_LIMIT and (attr.srq_limit > self.max_srq_wr
                                    or attr.srq_limit > queue.index_mask):  # fmt: skip
            raise kerr(EINVAL)
        if mask & IB_SRQ_MAX_WR:
            new = RxeQueue(srq.device.kernel, max(attr.max_wr, RXE_MIN_SRQ_WR),
                           _RECV_WQE + rsrq.max_sge * _SGE, f"rxe-srq{srq.handle}")  # fmt: skip
            with self.lock:
                n = 0
                while not queue.empty() and not new.full():  # rxe_queue_resize: copy
                    index = queue.consumer
                    new.buf.map.write(new.slot(n), queue.read(index, 1 << queue.log2_elem_size))
                    queue.consumer = index + 1
                    n += 1
                new.producer = n
                try:
                    info = self._mmap_info(srq.uctx, new)
                    copy_to_user(cmd.mmap_info_addr, bytes(mminfo(info.offset, info.size, 0)))
                except BaseException:
                    self._drop_pending_of(new)
                    new.release()
                    raise
                self._drop_mmaps(rsrq.mmaps)
                rsrq.queue, rsrq.mmaps = new, [info]
                queue.release()
            srq.attr.max_wr = new.max_elem
        if mask & IB_SRQ_LIMIT:
            rsrq.limit = srq.attr.srq_limit = attr.srq_limit

    def query_srq(self, srq: IbSrq) -> IbSrqAttr:
        """``rxe_query_srq``: ``max_wr`` is the ring's index mask."""
        rsrq: RxeSrq = srq.priv
        return IbSrqAttr(rsrq.queue.index_mask, rsrq.max_sge, rsrq.limit)

    def destroy_srq(self, srq: IbSrq) -> None:
        rsrq: RxeSrq = srq.priv
        with self.lock:
            self._drop_mmaps(rsrq.mmaps)
            rsrq.queue.release()

    # -- QP (rxe_qp.c) ------------------------------------------------------------------------
    def create_qp(self, qp: IbQp, udata: Udata, max_wr: int, max_sge: int) -> None:
        if udata.inlen:
            raise kerr(EINVAL)  # "malformed udata"
        if udata.outlen < ctypes.sizeof(rxe_create_qp_resp):
            raise kerr(EINVAL)
        cap = qp.cap
        if (
            cap.max_send_wr > max_wr
            or cap.max_send_sge > max_sge
            or cap.max_recv_wr > max_wr
            or cap.max_recv_sge > max_sge
            or cap.max_inline_data > RXE_MAX_INLINE_DATA
        ):
            raise kerr(EINVAL)  # rxe_qp_chk_cap
        wqe_size = max(cap.max_send_sge * _SGE, cap.max_inline_data)
        sq = RxeQueue(qp.device.kernel, cap.max_send_wr, wqe_size + _SEND_WQE, "rxe-sq")
        rq: RxeQueue | None = None
        infos: list[MmapInfo] = []
        try:
            infos.append(self._mmap_info(qp.uctx, sq))
            if qp.srq is None:  # rxe_qp_init_resp: an RQ only without an SRQ
                rq = RxeQueue(
                    qp.device.kernel, cap.max_recv_wr, _RECV_WQE + cap.max_recv_sge * _SGE, "rxe-rq"
                )
                infos.append(self._mmap_info(qp.uctx, rq))
                _copy_mminfo(udata, rxe_create_qp_resp.rq_mi.offset, infos[1])
            _copy_mminfo(udata, rxe_create_qp_resp.sq_mi.offset, infos[0])
        except BaseException:
            self._drop_mmaps(infos)
            sq.release()
            if rq is not None:
                rq.release()
            raise
        cap.max_send_wr = sq.max_elem
        cap.max_send_sge = wqe_size // _SGE
        cap.max_inline_data = wqe_size
        srq: RxeSrq | None = None
        if rq is not None:
            cap.max_recv_wr = rq.max_elem
        else:
            assert qp.srq is not None
            srq = qp.srq.priv
        with self.lock:
            qpn = self._next_qpn
            while qpn in self.qps:
                qpn += 1
            self._next_qpn = qpn + 1
            qp.qp_num = qpn
            rqp = RxeQp(qp, sq, rq, wqe_size // _SGE, wqe_size,
                        srq.max_sge if srq else cap.max_recv_sge, srq, mmaps=infos)  # fmt: skip
            self.qps[qpn] = rqp
        qp.priv = rqp

    def modify_qp(self, qp: IbQp, attr: IbQpAttr, mask: int) -> None:
        """``rxe_modify_qp``: to RESET empties the queues; to ERR flushes them."""
        rqp: RxeQp = qp.priv
        if attr.qp_state == IB_QPS_RESET and qp.state != IB_QPS_RESET:
            with self.lock:
                rqp.sq.reset()
                if rqp.rq is not None:
                    rqp.rq.reset()
        if attr.qp_state == IB_QPS_ERR and qp.state != IB_QPS_ERR:
            with self.lock:
                qp.attr.qp_state = IB_QPS_ERR
                self._flush(rqp)

    def destroy_qp(self, qp: IbQp) -> None:
        rqp: RxeQp = qp.priv
        with self.lock:  # not while a doorbell of another file uses its rings
            self.qps.pop(qp.qp_num, None)
            self._drop_mmaps(rqp.mmaps)
            rqp.sq.release()
            if rqp.rq is not None:
                rqp.rq.release()

    # -- the data path ------------------------------------------------------------------------
    def post_send(self, qp: IbQp) -> None:
        """``rxe_post_send`` of a user QP: the doorbell; the requester runs now."""
        if qp.state < IB_QPS_RTS:
            raise kerr(EINVAL)  # "qp not ready to send"
        with self.lock:
            if qp.state == IB_QPS_ERR:  # rxe_requester of a QP in error: flush
                self._flush(qp.priv)
                return
            self._run_requester(qp.priv)
            # RNR NAKs of other QPs are retried now: their receivers may have posted
            for other in list(self.qps.values()):
                if other is not qp.priv and other.rnr_waiting:
                    self._run_requester(other)

    def _run_requester(self, rqp: RxeQp) -> None:
        qp = rqp.qp
        sq = rqp.sq
        rqp.rnr_waiting = False
        while qp.state == IB_QPS_RTS and not sq.empty():
            index = sq.consumer
            raw = sq.read(index, 1 << sq.log2_elem_size)
            wqe = rxe_send_wqe.from_buffer_copy(raw[:_SEND_WQE])
            try:
                byte_len = self._execute(rqp, wqe, raw)
            except _RnrNak:
                if qp.attr.rnr_retry == 7:
                    rqp.rnr_waiting = True
                    self._trace("rxe.rnr_nak", qpn=qp.qp_num, wr_id=wqe.wr.wr_id, retry=True)
                    return
                self._complete_send(rqp, wqe, IB_WC_RNR_RETRY_EXC_ERR, 0)
                sq.consumer = index + 1
                self._to_error(rqp)
                return
            except _WcError as e:
                self._trace("rxe.wc_error", qpn=qp.qp_num, wr_id=wqe.wr.wr_id,
                            opcode=wqe.wr.opcode, status=e.status, why=e.why)  # fmt: skip
                self._complete_send(rqp, wqe, e.status, 0)
                sq.consumer = index + 1
                self._to_error(rqp)
                return
            if wqe.wr.send_flags & IB_SEND_SIGNALED or qp.sq_sig_all:
                self._complete_send(rqp, wqe, IB_WC_SUCCESS, byte_len)
            sq.consumer = index + 1

    def _to_error(self, rqp: RxeQp) -> None:
        rqp.qp.attr.qp_state = IB_QPS_ERR
        self._flush(rqp)

    def _flush(self, rqp: RxeQp) -> None:
        """Flush every posted WQE of both queues (``IBV_WC_WR_FLUSH_ERR``)."""
        sq, rq = rqp.sq, rqp.rq
        while not sq.empty():
            index = sq.consumer
            wqe = rxe_send_wqe.from_buffer_copy(sq.read(index, _SEND_WQE))
            self._complete_send(rqp, wqe, IB_WC_WR_FLUSH_ERR, 0)
            sq.consumer = index + 1
        while rq is not None and not rq.empty():  # (an SRQ's receives stay for others)
            index = rq.consumer
            rwqe = rxe_recv_wqe.from_buffer_copy(rq.read(index, _RECV_WQE))
            self._post_cqe(rqp.qp.recv_cq, rwqe.wr_id, IB_WC_WR_FLUSH_ERR, 0, 0, rqp.qp.qp_num)
            rq.consumer = index + 1

    def _ud_send(self, rqp: RxeQp, wqe: rxe_send_wqe, raw: bytes) -> int:
        """A UD SEND: to the QP and Q_Key the work request names, through its AH.
        Unreliable: a packet no QP takes (no such QP, not UD, not ready, another Q_Key,
        no receive posted) is dropped and the sender completes all the same.  The
        receive gets the GRH (an IPv6 header: RoCE v2 over the port's IPv6 GIDs), then
        the payload; its completion names the source QP."""
        qp = rqp.qp
        remote_qpn, remote_qkey, _pkey, _r, ah_num = _UD.unpack_from(raw, _UD_OFFSET)
        ah = self.ahs.get(ah_num)
        if ah is None or ah.pd.device is not qp.device:
            raise _WcError(IB_WC_LOC_QP_OP_ERR, f"no AH {ah_num}")  # rxe_req get_av
        data = self._gather(rqp, wqe, raw)
        qkey = remote_qkey  # as the WR says: rxe does not read the high bit (real 7.2)
        imm = wqe.wr.opcode == IB_UVERBS_WR_SEND_WITH_IMM
        dest = self.qps.get(remote_qpn & 0xFF_FFFF)
        ok = (
            dest is not None
            and dest.qp.qp_type == IB_UVERBS_QPT_UD
            and dest.qp.state in (IB_QPS_RTR, IB_QPS_RTS)
            and dest.qp.attr.qkey == qkey
            and not self._recv_queue(dest).empty()
        )
        trace_rxe_ud_send(qp.device.kernel.tracer, self.name, qp.qp_num, remote_qpn,
                          len(data), ok)  # fmt: skip
        if not ok or dest is None:
            return len(data)
        port = qp.device.port(ah.port_num)
        sgid = port.gids[ah.sgid_index] if ah.sgid_index < len(port.gids) else bytes(16)
        wire = _UDP_BTH_DETH + (_IMMDT if imm else 0) + len(data) + (-len(data) & 3) + _ICRC
        grh = struct.pack(">IHBB", (6 << 28) | (ah.traffic_class << 20) | (ah.flow_label
                          & 0xF_FFFF), wire, 17, ah.hop_limit) + sgid + ah.dgid  # fmt: skip
        rindex, rraw = self._take_recv(dest)
        rwqe = rxe_recv_wqe.from_buffer_copy(rraw[:_RECV_WQE])
        self._consume_recv(dest, rindex)
        try:
            self._scatter(dest, rraw, _RECV_SGES, rwqe.dma.num_sge, dest.max_recv_sge, grh + data)
        except _WcError as e:
            self._post_cqe(dest.qp.recv_cq, rwqe.wr_id, e.status, 0, 0, dest.qp.qp_num)
            return len(data)
        self._post_cqe(dest.qp.recv_cq, rwqe.wr_id, IB_WC_SUCCESS, IB_UVERBS_WC_RECV,
                       GRH_SIZE + len(data), dest.qp.qp_num, src_qp=qp.qp_num,
                       imm=wqe.wr.ex.imm_data if imm else None, port_num=dest.qp.attr.port_num,
                       wc_flags=IB_WC_GRH, solicited=_solicited(wqe))  # fmt: skip
        return len(data)

    def _dest(self, rqp: RxeQp) -> RxeQp:
        qp = rqp.qp
        if qp.qp_type not in (IB_UVERBS_QPT_RC, IB_UVERBS_QPT_UC):
            raise _WcError(IB_WC_LOC_QP_OP_ERR, "UD: only SENDs")
        dest = self.qps.get(qp.attr.dest_qp_num)
        if dest is None or dest.qp.state not in (IB_QPS_RTR, IB_QPS_RTS):
            # no such QP answers on this device: the requester retries, then gives up
            raise _WcError(IB_WC_RETRY_EXC_ERR, f"no QP {qp.attr.dest_qp_num:#x} ready to receive")
        return dest

    def _gather(self, rqp: RxeQp, wqe: rxe_send_wqe, raw: bytes) -> bytes:
        """The payload: inline data, or the local SGEs (``LOCAL`` access of this PD)."""
        length = wqe.dma.length
        if wqe.wr.send_flags & IB_SEND_INLINE:
            if length > rqp.max_inline:
                raise _WcError(IB_WC_LOC_LEN_ERR, f"inline data of {length} bytes")
            return raw[_SEND_SGES : _SEND_SGES + length]
        out = b""
        for addr, n, lkey in self._sges(raw, _SEND_SGES, wqe.dma.num_sge, rqp.max_send_sge):
            if n:
                out += self._mr_read(rqp, lkey, addr, n, 0, local=True)
        return out

    def _mr_lookup(self, rqp: RxeQp, key: int, addr: int, n: int, access: int, local: bool) -> IbMr:
        dev = self.ibdev
        assert dev is not None
        mr = dev.mrs.get(key)
        keyname = "lkey" if local else "rkey"
        if mr is None or mr.destroyed or (mr.lkey if local else mr.rkey) != key:
            raise _WcError(IB_WC_LOC_PROT_ERR if local else IB_WC_REM_ACCESS_ERR,
                           f"no MR with {keyname} {key:#x}")  # fmt: skip
        if mr.pd is not rqp.qp.pd:
            raise _WcError(IB_WC_LOC_PROT_ERR if local else IB_WC_REM_ACCESS_ERR,
                           f"{keyname} {key:#x} is another PD's")  # fmt: skip
        if access and not mr.access & access:
            raise _WcError(IB_WC_LOC_PROT_ERR if local else IB_WC_REM_ACCESS_ERR,
                           f"{keyname} {key:#x} lacks access {access:#x}")  # fmt: skip
        if addr < mr.iova or addr + n > mr.iova + mr.length:
            raise _WcError(IB_WC_LOC_PROT_ERR if local else IB_WC_REM_ACCESS_ERR,
                           f"{keyname} {key:#x}: [{addr:#x}, +{n:#x}) outside the MR")  # fmt: skip
        return mr

    def _mr_read(self, rqp: RxeQp, key: int, addr: int, n: int, access: int, local: bool) -> bytes:
        mr = self._mr_lookup(rqp, key, addr, n, access, local)
        m: RxeMr = mr.priv
        try:
            return m.mm.read(m.start + (addr - mr.iova), n)
        except OSError as e:
            raise _WcError(IB_WC_LOC_PROT_ERR if local else IB_WC_REM_ACCESS_ERR,
                           f"reading the MR's memory: {e}") from None  # fmt: skip

    def _mr_write(
        self, rqp: RxeQp, key: int, addr: int, data: bytes, access: int, local: bool
    ) -> None:
        mr = self._mr_lookup(rqp, key, addr, len(data), access, local)
        m: RxeMr = mr.priv
        try:
            m.mm.write(m.start + (addr - mr.iova), data)
        except OSError as e:
            raise _WcError(IB_WC_LOC_PROT_ERR if local else IB_WC_REM_ACCESS_ERR,
                           f"writing the MR's memory: {e}") from None  # fmt: skip

    @staticmethod
    def _sges(raw: bytes, off: int, num: int, max_sge: int) -> list[tuple[int, int, int]]:
        """The WQE's scatter/gather list; more entries than the queue was made for is
        a malformed WQE (its slot has no room for them)."""
        if num > max_sge or off + num * _SGE > len(raw):
            raise _WcError(IB_WC_LOC_LEN_ERR, f"{num} SGEs (the queue has room for {max_sge})")
        return _sge_list(raw, off, num)

    def _scatter(
        self, dest: RxeQp, raw: bytes, off: int, num: int, max_sge: int, data: bytes
    ) -> None:
        """``data`` into a local scatter list (``LOCAL_WRITE``); ``LOC_LEN_ERR`` if it
        does not fit."""
        sges = self._sges(raw, off, num, max_sge)
        if len(data) > sum(n for _a, n, _k in sges):
            raise _WcError(IB_WC_LOC_LEN_ERR, f"{len(data)} bytes for a smaller scatter list")
        pos = 0
        for addr, n, lkey in sges:
            if pos >= len(data):
                break
            chunk = data[pos : pos + n]
            self._mr_write(dest, lkey, addr, chunk, IB_UVERBS_ACCESS_LOCAL_WRITE, local=True)
            pos += len(chunk)

    @staticmethod
    def _recv_queue(dest: RxeQp) -> RxeQueue:
        """Where ``dest``'s receives come from: its SRQ's ring, or its own."""
        if dest.srq is not None:
            return dest.srq.queue
        assert dest.rq is not None
        return dest.rq

    def _take_recv(self, dest: RxeQp) -> tuple[int, bytes]:
        rq = self._recv_queue(dest)
        if rq.empty():
            raise _RnrNak
        index = rq.consumer
        return index, rq.read(index, 1 << rq.log2_elem_size)

    _WIRE_OPCODE = {
        IB_UVERBS_WR_RDMA_WRITE: IB_OPCODE_RC_RDMA_WRITE_ONLY,
        IB_UVERBS_WR_RDMA_WRITE_WITH_IMM: IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE,
        IB_UVERBS_WR_SEND: IB_OPCODE_RC_SEND_ONLY,
        IB_UVERBS_WR_SEND_WITH_IMM: IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE,
    }
    _NAK_STATUS = {
        NAK_REM_ACCESS: IB_WC_REM_ACCESS_ERR,
        NAK_INV_REQ: IB_WC_REM_INV_REQ_ERR,
        NAK_REM_OP: IB_WC_REM_OP_ERR,
    }

    def _is_remote(self, rqp: RxeQp) -> bool:
        """Is the QP connected to another device's port (its GID not one of ours)?"""
        dev = self.ibdev
        assert dev is not None
        attr = rqp.qp.attr
        return attr.is_global and attr.dgid not in dev.port(attr.port_num or 1).gids

    def _execute_remote(self, rqp: RxeQp, wqe: rxe_send_wqe, raw: bytes) -> int:
        """A WQE whose destination is another device on the segment: one request packet
        out of the net device (``rxe_xmit_packet``), the responder's ACK or NAK back."""
        qp = rqp.qp
        op = wqe.wr.opcode
        wire = self._WIRE_OPCODE.get(op)
        if qp.qp_type not in (IB_UVERBS_QPT_RC, IB_UVERBS_QPT_UC):
            raise _WcError(IB_WC_LOC_QP_OP_ERR, "UD sends are not modelled")
        if wire is None:
            raise _WcError(IB_WC_LOC_QP_OP_ERR, f"opcode {op} to another device is not modelled")
        data = self._gather(rqp, wqe, raw)
        dev = self.ibdev
        assert dev is not None
        attr = qp.attr
        gids = dev.port(attr.port_num or 1).gids
        sgid = gids[attr.sgid_index] if attr.sgid_index < len(gids) else bytes(16)
        writes = op in (IB_UVERBS_WR_RDMA_WRITE, IB_UVERBS_WR_RDMA_WRITE_WITH_IMM)
        rkey = wqe.wr.wr.rdma.rkey if writes else 0
        pkt = RocePacket(wire, sgid, attr.dgid, qp.qp_num, attr.dest_qp_num, rkey,
                         wqe.iova if writes else 0, data)  # fmt: skip
        ack = roce_xmit(dev, pkt)
        if ack is None:
            raise _WcError(IB_WC_RETRY_EXC_ERR, f"no answer from QP {attr.dest_qp_num:#x}")
        if not ack.ok:
            raise _WcError(self._NAK_STATUS.get(ack.syndrome, IB_WC_REM_OP_ERR), ack.reason)
        if writes:
            self._trace("rxe.rdma_write", qpn=qp.qp_num, dest_qpn=attr.dest_qp_num,
                        rkey=rkey, iova=hex(wqe.iova), length=len(data))  # fmt: skip
        return len(data)

    def _consume_recv(self, dest: RxeQp, index: int) -> None:
        """Move past the receive taken; an SRQ whose armed limit is now above what it
        holds disarms and reports ``IB_EVENT_SRQ_LIMIT_REACHED`` (``get_srq_wqe``)."""
        rq = self._recv_queue(dest)
        rq.consumer = index + 1
        srq = dest.srq
        if srq is not None and srq.limit:
            count = (rq.producer - rq.consumer) & rq.index_mask
            if count < srq.limit:
                srq.limit = 0
                ibsrq = dest.qp.srq
                assert ibsrq is not None
                ibsrq.attr.srq_limit = 0
                ibsrq.event_handler(IB_EVENT_SRQ_LIMIT_REACHED)

    def _execute(self, rqp: RxeQp, wqe: rxe_send_wqe, raw: bytes) -> int:
        """One WQE end to end; the byte count of its completion."""
        op = wqe.wr.opcode
        qp = rqp.qp
        if self._is_remote(rqp):
            return self._execute_remote(rqp, wqe, raw)
        if op in (IB_UVERBS_WR_RDMA_WRITE, IB_UVERBS_WR_RDMA_WRITE_WITH_IMM):
            dest = self._dest(rqp)
            data = self._gather(rqp, wqe, raw)
            imm = op == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM
            rindex, rraw = self._take_recv(dest) if imm else (0, b"")
            if data:
                try:
                    self._mr_write(dest, wqe.wr.wr.rdma.rkey, wqe.iova, data,
                                   IB_UVERBS_ACCESS_REMOTE_WRITE, local=False)  # fmt: skip
                except _WcError as e:
                    raise _WcError(IB_WC_REM_ACCESS_ERR, e.why) from None
            self._trace("rxe.rdma_write", qpn=qp.qp_num, dest_qpn=dest.qp.qp_num,
                        rkey=wqe.wr.wr.rdma.rkey, iova=hex(wqe.iova), length=len(data))  # fmt: skip
            if imm:
                rwqe = rxe_recv_wqe.from_buffer_copy(rraw[:_RECV_WQE])
                self._consume_recv(dest, rindex)
                self._post_cqe(dest.qp.recv_cq, rwqe.wr_id, IB_WC_SUCCESS,
                               IB_UVERBS_WC_RECV_RDMA_WITH_IMM, len(data), dest.qp.qp_num,
                               imm=wqe.wr.ex.imm_data, port_num=dest.qp.attr.port_num,
                               wc_flags=IB_WC_GRH, solicited=_solicited(wqe))  # fmt: skip
            return len(data)
        if op in (IB_UVERBS_WR_SEND, IB_UVERBS_WR_SEND_WITH_IMM):
            if qp.qp_type == IB_UVERBS_QPT_UD:
                return self._ud_send(rqp, wqe, raw)
            dest = self._dest(rqp)
            data = self._gather(rqp, wqe, raw)
            rindex, rraw = self._take_recv(dest)
            rwqe = rxe_recv_wqe.from_buffer_copy(rraw[:_RECV_WQE])
            self._consume_recv(dest, rindex)
            try:
                self._scatter(dest, rraw, _RECV_SGES, rwqe.dma.num_sge, dest.max_recv_sge, data)
            except _WcError as e:
                # the responder completes its receive in error (a receive WQE too small:
                # LOC_QP_OP_ERR, as real 7.2 answers) and NAKs: REM_OP_ERR at the sender
                status = IB_WC_LOC_QP_OP_ERR if e.status == IB_WC_LOC_LEN_ERR else e.status
                self._post_cqe(dest.qp.recv_cq, rwqe.wr_id, status, 0, 0, dest.qp.qp_num,
                               solicited=_solicited(wqe))  # fmt: skip
                raise _WcError(IB_WC_REM_OP_ERR, e.why) from None
            imm = op == IB_UVERBS_WR_SEND_WITH_IMM
            self._post_cqe(dest.qp.recv_cq, rwqe.wr_id, IB_WC_SUCCESS, IB_UVERBS_WC_RECV,
                           len(data), dest.qp.qp_num, imm=wqe.wr.ex.imm_data if imm else None,
                           port_num=dest.qp.attr.port_num, wc_flags=IB_WC_GRH,
                           solicited=_solicited(wqe))  # fmt: skip
            self._trace("rxe.send", qpn=qp.qp_num, dest_qpn=dest.qp.qp_num, length=len(data))
            return len(data)
        if op == IB_UVERBS_WR_RDMA_READ:
            dest = self._dest(rqp)
            length = int(wqe.dma.length)
            try:
                data = self._mr_read(dest, wqe.wr.wr.rdma.rkey, wqe.iova, length,
                                     IB_UVERBS_ACCESS_REMOTE_READ, local=False)  # fmt: skip
            except _WcError as e:
                raise _WcError(IB_WC_REM_ACCESS_ERR, e.why) from None
            self._scatter(rqp, raw, _SEND_SGES, wqe.dma.num_sge, rqp.max_send_sge, data)
            return length
        if op in (IB_UVERBS_WR_ATOMIC_CMP_AND_SWP, IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD):
            dest = self._dest(rqp)
            at = wqe.wr.wr.atomic
            if wqe.iova & 7:
                raise _WcError(IB_WC_REM_INV_REQ_ERR, "misaligned atomic")
            try:
                old_raw = self._mr_read(dest, at.rkey, wqe.iova, 8,
                                        IB_UVERBS_ACCESS_REMOTE_ATOMIC, local=False)  # fmt: skip
                old = int.from_bytes(old_raw, "little")
                if op == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
                    new = at.swap if old == at.compare_add else old
                else:
                    new = (old + at.compare_add) & ((1 << 64) - 1)
                self._mr_write(dest, at.rkey, wqe.iova, new.to_bytes(8, "little"),
                               IB_UVERBS_ACCESS_REMOTE_ATOMIC, local=False)  # fmt: skip
            except _WcError as e:
                raise _WcError(IB_WC_REM_ACCESS_ERR, e.why) from None
            self._scatter(rqp, raw, _SEND_SGES, wqe.dma.num_sge, rqp.max_send_sge, old_raw)
            return 8
        raise _WcError(IB_WC_LOC_QP_OP_ERR, f"opcode {op} is not modelled")

    _SEND_WC_OPCODE = {
        IB_UVERBS_WR_RDMA_WRITE: IB_UVERBS_WC_RDMA_WRITE,
        IB_UVERBS_WR_RDMA_WRITE_WITH_IMM: IB_UVERBS_WC_RDMA_WRITE,
        IB_UVERBS_WR_SEND: IB_UVERBS_WC_SEND,
        IB_UVERBS_WR_SEND_WITH_IMM: IB_UVERBS_WC_SEND,
        IB_UVERBS_WR_RDMA_READ: IB_UVERBS_WC_RDMA_READ,
        IB_UVERBS_WR_ATOMIC_CMP_AND_SWP: IB_UVERBS_WC_COMP_SWAP,
        IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD: IB_UVERBS_WC_FETCH_ADD,
    }

    def _complete_send(self, rqp: RxeQp, wqe: rxe_send_wqe, status: int, byte_len: int) -> None:
        """``make_send_cqe``: the opcode and byte count only of a successful one (an
        error or flush completion has them 0, as real 7.2 showed)."""
        opcode = self._SEND_WC_OPCODE.get(wqe.wr.opcode, IB_UVERBS_WC_SEND)
        if status != IB_WC_SUCCESS:
            opcode = byte_len = 0
        with_imm = wqe.wr.opcode in (IB_UVERBS_WR_RDMA_WRITE_WITH_IMM, IB_UVERBS_WR_SEND_WITH_IMM)
        self._post_cqe(rqp.qp.send_cq, wqe.wr.wr_id, status, opcode, byte_len, rqp.qp.qp_num,
                       port_num=0, wc_flags=IB_WC_WITH_IMM if with_imm else 0)  # fmt: skip

    def _post_cqe(
        self,
        cq: IbCq,
        wr_id: int,
        status: int,
        opcode: int,
        byte_len: int,
        qp_num: int,
        src_qp: int = 0,
        imm: int | None = None,
        port_num: int = 1,
        wc_flags: int = 0,
        solicited: bool = False,
    ) -> None:
        """``rxe_cq_post``: one ``ib_uverbs_wc`` at the producer index, then move it; a
        CQ armed for the next completion (or for the next solicited one, and this is)
        is disarmed and reports it (``comp_handler``).  A full CQ takes nothing and
        reports ``IB_EVENT_CQ_ERR``."""
        rcq: RxeCq = cq.priv
        queue = rcq.queue
        if queue.full():
            self._trace("rxe.cq_overflow", cq=cq.handle)
            cq.event_handler(IB_EVENT_CQ_ERR)
            return
        wc = ib_uverbs_wc()
        wc.wr_id = wr_id
        wc.status = status
        wc.opcode = opcode
        wc.byte_len = byte_len
        wc.qp_num = qp_num
        wc.src_qp = src_qp
        wc.wc_flags = wc_flags
        if imm is not None:
            wc.ex.imm_data = imm
            wc.wc_flags |= IB_WC_WITH_IMM
        wc.port_num = port_num if status == IB_WC_SUCCESS else 0
        if status != IB_WC_SUCCESS:  # rxe's do_complete: only a success says what it was
            wc.opcode = wc.byte_len = wc.src_qp = wc.wc_flags = 0
        index = queue.producer
        queue.buf.map.write(queue.slot(index), bytes(wc))
        queue.producer = index + 1
        self._trace("rxe.cqe", cq=cq.handle, wr_id=wr_id, status=status, opcode=opcode,
                    byte_len=byte_len, qpn=qp_num)  # fmt: skip
        if rcq.notify & IB_CQ_NEXT_COMP or (rcq.notify & IB_CQ_SOLICITED and solicited):
            rcq.notify = 0
            cq.comp_handler()

    def req_notify_cq(self, cq: IbCq, flags: int) -> int:
        """``rxe_req_notify_cq``: arm the CQ (the flags add up until the next event)."""
        rcq: RxeCq = cq.priv
        with self.lock:
            rcq.notify |= flags & (IB_CQ_SOLICITED | IB_CQ_NEXT_COMP)
            trace_rxe_cq_arm(cq.device.kernel.tracer, self.name, cq.handle, rcq.notify)
        return 0


def _solicited(wqe: rxe_send_wqe) -> bool:
    """The BTH's solicited-event bit of the packet: the sender's ``IBV_SEND_SOLICITED``."""
    return bool(wqe.wr.send_flags & IB_SEND_SOLICITED)


def _copy_mminfo(udata: Udata, offset: int, info: MmapInfo) -> None:
    """``do_mmap_info``'s ``copy_to_user`` of the ``mminfo`` into the driver response."""
    mi = mminfo(info.offset, info.size, 0)
    try:
        copy_to_user(udata.out_addr + offset, bytes(mi))
    except OSError:
        raise kerr(EFAULT) from None
