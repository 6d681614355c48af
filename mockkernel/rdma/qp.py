"""Completion queues and queue pairs: the uverbs objects and their write commands.

``uverbs_cmd.c``'s ``CREATE_CQ``, ``DESTROY_CQ``, ``CREATE_QP``, ``MODIFY_QP``,
``DESTROY_QP`` and ``POST_SEND`` (the doorbell a provider with user-mapped queues
rings), with ``verbs.c``'s QP state machine (``ib_modify_qp_is_ok``) for the RC, UC
and UD transitions ``RESET -> INIT -> RTR -> RTS`` (and to ``RESET``/``ERR`` from
anywhere).  The ioctl methods of ``UVERBS_OBJECT_CQ``/``QP`` are not in the uAPI, so
rdma-core falls back to these commands, as it does on a kernel without them.

The driver makes the hardware objects (:class:`~mockkernel.rdma.IbDeviceOps`
``create_cq``, ``create_qp``, ``modify_qp``, ``post_send``, ...) and answers the
driver part of each command through its :class:`Udata`; queue memory a driver shares
with userspace is a :class:`QueueBuf` (``vmalloc_user``), mapped through the uverbs
file's ``mmap`` (the driver's ``mmap`` op).

The handlers take the :class:`~mockkernel.rdma.uverbs.AttrBundle` and use only its
methods, so :mod:`.uverbs` imports this module, not the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from errno import EBADF, EBUSY, EFAULT, EINVAL, ENETUNREACH, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..file import fget
from ..mm import KernelMap, Vma, page_align
from ..realfd import hide, kernel_close
from ..trace import TracePoint
from ..uaccess import copy_to_user
from ..uapi.rdma import ib_user_verbs as V
from ..uapi.rdma.ib_user_ioctl_cmds import UVERBS_OBJECT_CQ, UVERBS_OBJECT_QP
from ..uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_QPT_RC,
    IB_UVERBS_QPT_UC,
    IB_UVERBS_QPT_UD,
)
from .events import (
    EVENT_FOPS,
    EventFile,
    UeventObject,
    ib_uverbs_comp_handler,
    ib_uverbs_uobj_event,
)
from .objects import PD_TYPE, RDMA_REMOVE_CLOSE, RDMA_REMOVE_DESTROY, IbPd, IbUcontext, UobjType
from .roce import rdma_gid_reachable
from .srq import IbSrq, lookup_srq

if TYPE_CHECKING:
    from ..context import KernelContext
    from .device import IbDevice
    from .objects import Uobject
    from .uverbs import AttrBundle, Udata

__all__ = [
    "CQ_TYPE",
    "IB_CQ_NEXT_COMP",
    "IB_CQ_SOLICITED",
    "IB_QPS_ERR",
    "IB_QPS_INIT",
    "IB_QPS_RESET",
    "IB_QPS_RTR",
    "IB_QPS_RTS",
    "QP_TYPE",
    "IbCq",
    "IbQp",
    "IbQpAttr",
    "QueueBuf",
    "ib_copy_to_udata",
]

trace_rdma_req_notify_cq = TracePoint("rdma.req_notify_cq", "ibdev", "handle", "solicited_only")
trace_rdma_mmap = TracePoint(
    "rdma.mmap", "ibdev", "offset", "length", "pieces", hex_keys=("offset",)
)

# enum ib_cq_notify_flags
IB_CQ_SOLICITED = 1
IB_CQ_NEXT_COMP = 2
IB_CQ_SOLICITED_MASK = IB_CQ_SOLICITED | IB_CQ_NEXT_COMP
IB_CQ_REPORT_MISSED_EVENTS = 4

# enum ib_qp_state
IB_QPS_RESET, IB_QPS_INIT, IB_QPS_RTR, IB_QPS_RTS, IB_QPS_SQD, IB_QPS_SQE, IB_QPS_ERR = range(7)
QP_STATE_NAMES = ("RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR")

# enum ib_qp_attr_mask
IB_QP_STATE = 1 << 0
IB_QP_CUR_STATE = 1 << 1
IB_QP_EN_SQD_ASYNC_NOTIFY = 1 << 2
IB_QP_ACCESS_FLAGS = 1 << 3
IB_QP_PKEY_INDEX = 1 << 4
IB_QP_PORT = 1 << 5
IB_QP_QKEY = 1 << 6
IB_QP_AV = 1 << 7
IB_QP_PATH_MTU = 1 << 8
IB_QP_TIMEOUT = 1 << 9
IB_QP_RETRY_CNT = 1 << 10
IB_QP_RNR_RETRY = 1 << 11
IB_QP_RQ_PSN = 1 << 12
IB_QP_MAX_QP_RD_ATOMIC = 1 << 13
IB_QP_ALT_PATH = 1 << 14
IB_QP_MIN_RNR_TIMER = 1 << 15
IB_QP_SQ_PSN = 1 << 16
IB_QP_MAX_DEST_RD_ATOMIC = 1 << 17
IB_QP_PATH_MIG_STATE = 1 << 18
IB_QP_CAP = 1 << 19
IB_QP_DEST_QPN = 1 << 20
#: IB_USER_LEGACY_LAST_QP_ATTR_MASK: what the legacy MODIFY_QP command may carry
_LEGACY_QP_ATTR_MASK = (IB_QP_DEST_QPN << 1) - 1

#: the ``access`` of a handle lookup (``uverbs.ACCESS_READ`` / ``ACCESS_DESTROY``)
_READ, _DESTROY = 0, 3
_RC, _UC, _UD = IB_UVERBS_QPT_RC, IB_UVERBS_QPT_UC, IB_UVERBS_QPT_UD

#: ``qp_state_table`` of ``verbs.c`` (the transitions modelled): ``(cur, next) ->
#: {qp_type: (required, optional)}``; to RESET and to ERR are always allowed.
_QP_TABLE: Mapping[tuple[int, int], Mapping[int, tuple[int, int]]] = MappingProxyType(
    {
        (IB_QPS_RESET, IB_QPS_INIT): MappingProxyType(
            {
                _UD: (IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_QKEY, 0),
                _UC: (IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_ACCESS_FLAGS, 0),
                _RC: (IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_ACCESS_FLAGS, 0),
            }
        ),
        (IB_QPS_INIT, IB_QPS_INIT): MappingProxyType(
            {
                _UD: (0, IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_QKEY),
                _UC: (0, IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_ACCESS_FLAGS),
                _RC: (0, IB_QP_PKEY_INDEX | IB_QP_PORT | IB_QP_ACCESS_FLAGS),
            }
        ),
        (IB_QPS_INIT, IB_QPS_RTR): MappingProxyType(
            {
                _UD: (0, IB_QP_PKEY_INDEX | IB_QP_QKEY),
                _UC: (
                    IB_QP_AV | IB_QP_PATH_MTU | IB_QP_DEST_QPN | IB_QP_RQ_PSN,
                    IB_QP_ALT_PATH | IB_QP_ACCESS_FLAGS | IB_QP_PKEY_INDEX,
                ),
                _RC: (
                    IB_QP_AV
                    | IB_QP_PATH_MTU
                    | IB_QP_DEST_QPN
                    | IB_QP_RQ_PSN
                    | IB_QP_MAX_DEST_RD_ATOMIC
                    | IB_QP_MIN_RNR_TIMER,
                    IB_QP_ALT_PATH | IB_QP_ACCESS_FLAGS | IB_QP_PKEY_INDEX,
                ),
            }
        ),
        (IB_QPS_RTR, IB_QPS_RTS): MappingProxyType(
            {
                _UD: (IB_QP_SQ_PSN, IB_QP_CUR_STATE | IB_QP_QKEY),
                _UC: (
                    IB_QP_SQ_PSN,
                    IB_QP_CUR_STATE | IB_QP_ALT_PATH | IB_QP_ACCESS_FLAGS | IB_QP_PATH_MIG_STATE,
                ),
                _RC: (
                    IB_QP_TIMEOUT
                    | IB_QP_RETRY_CNT
                    | IB_QP_RNR_RETRY
                    | IB_QP_SQ_PSN
                    | IB_QP_MAX_QP_RD_ATOMIC,
                    IB_QP_CUR_STATE
                    | IB_QP_ALT_PATH
                    | IB_QP_ACCESS_FLAGS
                    | IB_QP_MIN_RNR_TIMER
                    | IB_QP_PATH_MIG_STATE,
                ),
            }
        ),
        (IB_QPS_RTS, IB_QPS_RTS): MappingProxyType(
            {
                _UD: (0, IB_QP_CUR_STATE | IB_QP_QKEY),
                _UC: (
                    0,
                    IB_QP_CUR_STATE | IB_QP_ACCESS_FLAGS | IB_QP_ALT_PATH | IB_QP_PATH_MIG_STATE,
                ),
                _RC: (
                    0,
                    IB_QP_CUR_STATE
                    | IB_QP_ACCESS_FLAGS
                    | IB_QP_ALT_PATH
                    | IB_QP_PATH_MIG_STATE
                    | IB_QP_MIN_RNR_TIMER,
                ),
            }
        ),
    }
)


def ib_modify_qp_is_ok(cur: int, nxt: int, qp_type: int, mask: int) -> bool:
    """``ib_modify_qp_is_ok``: is ``cur -> nxt`` with the attributes ``mask`` valid?"""
    if not (0 <= cur <= IB_QPS_ERR and 0 <= nxt <= IB_QPS_ERR):
        return False
    if mask & IB_QP_CUR_STATE and cur not in (IB_QPS_RTS, IB_QPS_SQD, IB_QPS_SQE):
        return False
    if nxt in (IB_QPS_RESET, IB_QPS_ERR):
        return not mask & ~(IB_QP_STATE | IB_QP_CUR_STATE)
    entry = _QP_TABLE.get((cur, nxt))
    if entry is None or qp_type not in entry:
        return False
    req, opt = entry[qp_type]
    if (mask & req) != req:
        return False
    return not mask & ~(req | opt | IB_QP_STATE)


def ib_copy_to_udata(udata: Udata, data: bytes) -> None:
    """``ib_copy_to_udata``: the driver's response, at most ``udata.outlen`` bytes."""
    n = min(len(data), udata.outlen)
    if n:
        try:
            copy_to_user(udata.out_addr, data[:n])
        except OSError:
            raise kerr(EFAULT) from None


# -- queue memory -----------------------------------------------------------------------------
class QueueBuf:
    """``vmalloc_user``: zeroed kernel memory a driver shares with userspace by ``mmap``.

    A sealed-size memfd the kernel holds (hidden), and the kernel's own mapping of it
    (:attr:`map`, a :class:`~mockkernel.mm.KernelMap`): what the driver reads and
    writes is what the program's mapping shows.  :meth:`remap` lays it into a ``Vma``.
    """

    def __init__(self, kernel: KernelContext, size: int, name: str = "rdma-queue") -> None:
        if size <= 0:
            raise kerr(EINVAL)
        self.kernel = kernel
        self.size = size
        self.mapped_size = page_align(size)
        fd = hide(kernel, os.memfd_create(f"mockkernel:{name}", os.MFD_CLOEXEC))
        try:
            os.ftruncate(fd, self.mapped_size)
            self.map = KernelMap(kernel, fd, self.mapped_size)
        except BaseException:
            kernel_close(kernel, fd)
            raise
        self.fd = fd

    def remap(self, vma: Vma) -> None:
        """``remap_vmalloc_range``: the whole buffer; ``EINVAL`` if ``vma`` is larger."""
        if vma.length > self.mapped_size:
            raise kerr(EINVAL)
        vma.remap(self.fd, 0, page_align(vma.length))

    def release(self) -> None:
        if self.fd >= 0:
            self.map.close()
            kernel_close(self.kernel, self.fd)
            self.fd = -1

    def __repr__(self) -> str:
        return f"<QueueBuf {self.size} bytes fd={self.fd}>"


# -- objects -----------------------------------------------------------------------------------
@dataclass(eq=False)
class IbCq:
    """``struct ib_cq``: ``cqe`` is what userspace asked for until the driver sets the
    real size; ``usecnt`` counts the QPs that use it; ``channel`` is its completion
    channel (``CREATE_COMP_CHANNEL``), ``uevent`` its events' bookkeeping.

    A driver reports a completion on an armed CQ with :meth:`comp_handler` and an
    error of the CQ (an overrun) with :meth:`event_handler`."""

    device: IbDevice
    uctx: IbUcontext
    cqe: int
    comp_vector: int = 0
    user_handle: int = 0
    usecnt: int = 0
    priv: Any = None
    handle: int = -1
    channel: EventFile | None = None
    uevent: UeventObject = field(default_factory=UeventObject)

    def comp_handler(self) -> None:
        """``cq->comp_handler``: a completion event to the CQ's channel, if any."""
        ib_uverbs_comp_handler(self.channel, self.uevent)

    def event_handler(self, event: int) -> None:
        """``cq->event_handler`` (``ib_uverbs_cq_event_handler``): an ``IB_EVENT_*`` of
        this CQ to the async event file, ``element`` its ``user_handle``."""
        ib_uverbs_uobj_event(self.uevent, event)


@dataclass
class IbQpCap:
    """``struct ib_qp_cap``: asked for at create, the driver writes back what it made."""

    max_send_wr: int = 0
    max_recv_wr: int = 0
    max_send_sge: int = 0
    max_recv_sge: int = 0
    max_inline_data: int = 0


@dataclass
class IbQpAttr:
    """``struct ib_qp_attr``: what ``MODIFY_QP`` set (the fields the model keeps)."""

    qp_state: int = IB_QPS_RESET
    qp_access_flags: int = 0
    pkey_index: int = 0
    port_num: int = 0
    qkey: int = 0
    path_mtu: int = 0
    dest_qp_num: int = 0
    rq_psn: int = 0
    sq_psn: int = 0
    max_rd_atomic: int = 0
    max_dest_rd_atomic: int = 0
    min_rnr_timer: int = 0
    timeout: int = 0
    retry_cnt: int = 0
    rnr_retry: int = 0
    dgid: bytes = bytes(16)
    sgid_index: int = 0
    hop_limit: int = 0
    is_global: bool = False


@dataclass(eq=False)
class IbQp:
    """``struct ib_qp``: its PD and CQs (each holds a use count), type, number, state."""

    device: IbDevice
    uctx: IbUcontext
    pd: IbPd
    send_cq: IbCq
    recv_cq: IbCq
    qp_type: int
    sq_sig_all: bool
    cap: IbQpCap
    user_handle: int = 0
    qp_num: int = 0
    attr: IbQpAttr = field(default_factory=IbQpAttr)
    priv: Any = None
    handle: int = -1
    uevent: UeventObject = field(default_factory=UeventObject)
    #: the shared receive queue its receives come from (``is_srq``), if any
    srq: IbSrq | None = None

    @property
    def state(self) -> int:
        return self.attr.qp_state

    def event_handler(self, event: int) -> None:
        """``qp->event_handler`` (``ib_uverbs_qp_event_handler``): an ``IB_EVENT_*`` of
        this QP to the async event file, ``element`` its ``user_handle``."""
        ib_uverbs_uobj_event(self.uevent, event)


def ib_uverbs_release_uevent(uevent: UeventObject) -> None:
    """``ib_uverbs_release_uevent``: the object's unread async events go."""
    if uevent.event_file is not None:
        uevent.event_file.drop(uevent)


def ib_uverbs_release_ucq(cq: IbCq) -> None:
    """``ib_uverbs_release_ucq``: the CQ's unread completion events go, and its
    reference to the channel; then its async events."""
    channel = cq.channel
    if channel is not None:
        cq.channel = None
        channel.drop(cq.uevent)
        assert channel.file is not None
        channel.file.put()
    ib_uverbs_release_uevent(cq.uevent)


def _destroy_cq(uobj: Uobject, why: int) -> None:
    cq: IbCq = uobj.object
    if cq.usecnt and why in (RDMA_REMOVE_DESTROY, RDMA_REMOVE_CLOSE):
        raise kerr(EBUSY)
    op = cq.device.ops.destroy_cq
    if op is not None:
        op(cq)
    ib_uverbs_release_ucq(cq)


def _destroy_qp(uobj: Uobject, why: int) -> None:
    qp: IbQp = uobj.object
    op = qp.device.ops.destroy_qp
    if op is not None:
        op(qp)
    if qp.srq is not None:
        qp.srq.usecnt -= 1
    ib_uverbs_release_uevent(qp.uevent)
    qp.pd.usecnt -= 1
    qp.send_cq.usecnt -= 1
    qp.recv_cq.usecnt -= 1


CQ_TYPE = UobjType(UVERBS_OBJECT_CQ, "cq", _destroy_cq)
QP_TYPE = UobjType(UVERBS_OBJECT_QP, "qp", _destroy_qp)


def _trace(bundle: AttrBundle, event: str, **fields: object) -> None:
    tracer = bundle.kernel.tracer
    if tracer.enabled:
        tracer.emit(event, ibdev=bundle.device.name, **fields)


# -- the write commands ------------------------------------------------------------------------
def ib_uverbs_lookup_comp_file(bundle: AttrBundle, fd: int) -> EventFile:
    """``ib_uverbs_lookup_comp_file``: the completion channel at ``fd`` of the caller,
    with a reference; ``EBADF`` if ``fd`` is not open, not a completion channel, or
    one of another uverbs file (``lookup_get_fd_uobject``)."""
    file = fget(bundle.kernel, fd)
    if file is None:
        raise kerr(EBADF)
    ev = file.private_data
    if file.f_op is not EVENT_FOPS or not ev.comp or ev.ufile is not bundle.ufile:
        file.put()
        raise kerr(EBADF)
    return ev  # type: ignore[no-any-return]


def w_create_cq(bundle: AttrBundle) -> None:
    """``ib_uverbs_create_cq``: a CQ of at least ``cqe`` entries, on a completion
    channel if ``comp_channel`` names one."""
    cmd = V.ib_uverbs_create_cq.from_buffer_copy(bundle.request(32))
    dev = bundle.device
    if cmd.comp_vector >= dev.num_comp_vectors:
        raise kerr(EINVAL)
    uobj = bundle.write_uobj = bundle.uobj_alloc(CQ_TYPE)
    channel = (
        ib_uverbs_lookup_comp_file(bundle, cmd.comp_channel) if cmd.comp_channel >= 0 else None
    )
    assert bundle.context is not None
    cq = IbCq(dev, bundle.context, cmd.cqe, cmd.comp_vector, cmd.user_handle, handle=uobj.id,
              channel=channel)  # fmt: skip
    cq.uevent.user_handle = cmd.user_handle
    cq.uevent.event_file = bundle.ufile.default_async_file
    op = dev.ops.create_cq
    assert op is not None
    try:
        op(cq, bundle.driver_udata)
    except BaseException:
        ib_uverbs_release_ucq(cq)
        raise
    uobj.object = cq
    uobj.hw_valid = True
    bundle.response(bytes(V.ib_uverbs_create_cq_resp(uobj.id, cq.cqe)))
    _trace(bundle, "rdma.create_cq", handle=uobj.id, cqe=cq.cqe)


def w_destroy_cq(bundle: AttrBundle) -> None:
    cmd = V.ib_uverbs_destroy_cq.from_buffer_copy(bundle.request(16))
    uobj = bundle.lookup(CQ_TYPE, cmd.cq_handle, _DESTROY)
    bundle.ufile.destroy_uobject(uobj, RDMA_REMOVE_DESTROY)
    cq: IbCq = uobj.object
    ue = cq.uevent
    bundle.response(bytes(V.ib_uverbs_destroy_cq_resp(ue.comp_events_reported, ue.events_reported)))


def w_req_notify_cq(bundle: AttrBundle) -> None:
    """``ib_uverbs_req_notify_cq``: arm the CQ (``IB_CQ_SOLICITED`` or
    ``IB_CQ_NEXT_COMP``); ``EINVAL`` for a handle that is not a CQ of this file."""
    cmd = V.ib_uverbs_req_notify_cq.from_buffer_copy(bundle.request(8))
    try:
        cq: IbCq = bundle.lookup(CQ_TYPE, cmd.cq_handle, _READ).object
    except OSError:
        raise kerr(EINVAL) from None  # uobj_get_obj_read: NULL
    op = cq.device.ops.req_notify_cq
    assert op is not None
    op(cq, IB_CQ_SOLICITED if cmd.solicited_only else IB_CQ_NEXT_COMP)
    trace_rdma_req_notify_cq(bundle.kernel.tracer, cq.device.name, cq.handle,
                             bool(cmd.solicited_only))  # fmt: skip


def w_create_qp(bundle: AttrBundle) -> None:
    """``ib_uverbs_create_qp`` -> ``create_qp``: RC, UC or UD over a PD and two CQs."""
    cmd = V.ib_uverbs_create_qp.from_buffer_copy(bundle.request(56))
    dev = bundle.device
    uobj = bundle.write_uobj = bundle.uobj_alloc(QP_TYPE)
    if cmd.qp_type not in (_RC, _UC, _UD):
        # RAW_PACKET needs CAP_NET_RAW and a driver that has it; XRC needs XRCDs
        raise kerr(EOPNOTSUPP if cmd.qp_type in (8, 9, 10) else EINVAL)
    srq = lookup_srq(bundle, cmd.srq_handle) if cmd.is_srq else None
    pd: IbPd = bundle.lookup(PD_TYPE, cmd.pd_handle, _READ).object
    send_cq: IbCq = bundle.lookup(CQ_TYPE, cmd.send_cq_handle, _READ).object
    recv_cq: IbCq = (
        send_cq
        if cmd.recv_cq_handle == cmd.send_cq_handle
        else bundle.lookup(CQ_TYPE, cmd.recv_cq_handle, _READ).object
    )
    assert bundle.context is not None
    cap = IbQpCap(cmd.max_send_wr, cmd.max_recv_wr, cmd.max_send_sge, cmd.max_recv_sge,
                  cmd.max_inline_data)  # fmt: skip
    qp = IbQp(dev, bundle.context, pd, send_cq, recv_cq, cmd.qp_type, bool(cmd.sq_sig_all),
              cap, cmd.user_handle, handle=uobj.id, srq=srq)  # fmt: skip
    qp.uevent.user_handle = cmd.user_handle
    qp.uevent.event_file = bundle.ufile.default_async_file
    op = dev.ops.create_qp
    assert op is not None
    op(qp, bundle.driver_udata)
    pd.usecnt += 1
    send_cq.usecnt += 1
    recv_cq.usecnt += 1
    if srq is not None:
        srq.usecnt += 1
    uobj.object = qp
    uobj.hw_valid = True
    resp = V.ib_uverbs_create_qp_resp()
    resp.qp_handle = uobj.id
    resp.qpn = qp.qp_num
    resp.max_send_wr = cap.max_send_wr
    resp.max_recv_wr = cap.max_recv_wr
    resp.max_send_sge = cap.max_send_sge
    resp.max_recv_sge = cap.max_recv_sge
    resp.max_inline_data = cap.max_inline_data
    bundle.response(bytes(resp))
    _trace(bundle, "rdma.create_qp", handle=uobj.id, qpn=qp.qp_num, qp_type=qp.qp_type,
           max_send_wr=cap.max_send_wr, max_recv_wr=cap.max_recv_wr)  # fmt: skip


def w_modify_qp(bundle: AttrBundle) -> None:
    """``ib_uverbs_modify_qp`` -> ``modify_qp``: the state machine, then the driver."""
    cmd = V.ib_uverbs_modify_qp.from_buffer_copy(bundle.request(112))
    mask = cmd.attr_mask
    if mask & ~_LEGACY_QP_ATTR_MASK:
        raise kerr(EOPNOTSUPP)
    qp: IbQp = bundle.lookup(QP_TYPE, cmd.qp_handle, _READ).object
    dev = qp.device
    if mask & IB_QP_PORT and not 1 <= cmd.port_num <= dev.phys_port_cnt:
        raise kerr(EINVAL)
    if mask & IB_QP_AV:
        if (
            not 1
            <= (cmd.port_num if mask & IB_QP_PORT else qp.attr.port_num)
            <= (dev.phys_port_cnt)
        ):
            raise kerr(EINVAL)
        port = dev.port(cmd.port_num if mask & IB_QP_PORT else qp.attr.port_num)
        if port.grh_required and not cmd.dest.is_global:
            raise kerr(EINVAL)  # RoCE: an address vector needs a GRH (ib_resolve_eth_dmac)
        if port.grh_required and not rdma_gid_reachable(dev, port, bytes(cmd.dest.dgid)):
            # rdma_addr_find_l2_eth_by_grh: no route to the GID -- link-local GIDs and
            # those of ports on the kernel's one Ethernet segment resolve (real 7.2: the
            # zero GID and a global GID of no neighbour do not)
            raise kerr(ENETUNREACH)
    cur = cmd.cur_qp_state if mask & IB_QP_CUR_STATE else qp.state
    nxt = cmd.qp_state if mask & IB_QP_STATE else cur
    if not ib_modify_qp_is_ok(cur, nxt, qp.qp_type, mask):
        raise kerr(EINVAL)
    new = IbQpAttr(**vars(qp.attr))
    new.qp_state = nxt
    for bit, name in (
        (IB_QP_ACCESS_FLAGS, "qp_access_flags"),
        (IB_QP_PKEY_INDEX, "pkey_index"),
        (IB_QP_PORT, "port_num"),
        (IB_QP_QKEY, "qkey"),
        (IB_QP_PATH_MTU, "path_mtu"),
        (IB_QP_DEST_QPN, "dest_qp_num"),
        (IB_QP_RQ_PSN, "rq_psn"),
        (IB_QP_SQ_PSN, "sq_psn"),
        (IB_QP_MAX_QP_RD_ATOMIC, "max_rd_atomic"),
        (IB_QP_MAX_DEST_RD_ATOMIC, "max_dest_rd_atomic"),
        (IB_QP_MIN_RNR_TIMER, "min_rnr_timer"),
        (IB_QP_TIMEOUT, "timeout"),
        (IB_QP_RETRY_CNT, "retry_cnt"),
        (IB_QP_RNR_RETRY, "rnr_retry"),
    ):
        if mask & bit:
            setattr(new, name, getattr(cmd, name))
    if mask & IB_QP_AV:
        new.dgid = bytes(cmd.dest.dgid)
        new.sgid_index = cmd.dest.sgid_index
        new.hop_limit = cmd.dest.hop_limit
        new.is_global = bool(cmd.dest.is_global)
    op = dev.ops.modify_qp
    assert op is not None
    op(qp, new, mask, bundle.driver_udata)
    qp.attr = new
    _trace(bundle, "rdma.modify_qp", qpn=qp.qp_num, state=QP_STATE_NAMES[cur] + "->" +
           QP_STATE_NAMES[nxt], mask=hex(mask))  # fmt: skip


def w_destroy_qp(bundle: AttrBundle) -> None:
    cmd = V.ib_uverbs_destroy_qp.from_buffer_copy(bundle.request(16))
    uobj = bundle.lookup(QP_TYPE, cmd.qp_handle, _DESTROY)
    bundle.ufile.destroy_uobject(uobj, RDMA_REMOVE_DESTROY)
    qp: IbQp = uobj.object
    bundle.response(bytes(V.ib_uverbs_destroy_qp_resp(qp.uevent.events_reported)))


_SEND_WR_SIZE = 56  # sizeof(struct ib_uverbs_send_wr)


def w_post_send(bundle: AttrBundle) -> None:
    """``ib_uverbs_post_send``: work requests in the command, or none -- the doorbell
    of a provider that wrote them into its mapped send queue (rxe)."""
    cmd = V.ib_uverbs_post_send.from_buffer_copy(bundle.request(24))
    if cmd.wqe_size < _SEND_WR_SIZE:
        raise kerr(EINVAL)
    qp: IbQp = bundle.lookup(QP_TYPE, cmd.qp_handle, _READ).object
    if cmd.wr_count:
        # kernel-posted work requests (a provider without mapped queues) are not modelled
        raise kerr(EOPNOTSUPP)
    op = qp.device.ops.post_send
    assert op is not None
    op(qp)
    bundle.response(bytes(V.ib_uverbs_post_send_resp()))


def uverbs_mmap(uctx: IbUcontext, vma: Vma) -> None:
    """``ib_uverbs_mmap``: the driver's ``mmap`` op maps what the offset names."""
    dev = uctx.device
    op = dev.ops.mmap
    assert op is not None
    op(uctx, vma)
    trace_rdma_mmap(dev.kernel.tracer, dev.name, vma.offset, vma.length, len(vma.segments))
