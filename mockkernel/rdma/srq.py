"""Shared receive queues: ``CREATE_SRQ``, ``MODIFY_SRQ``, ``QUERY_SRQ``, ``DESTROY_SRQ``
(``uverbs_cmd.c``).

A basic SRQ holds receive work requests that any QP made on it (``CREATE_QP`` with
``is_srq``) consumes.  The core looks up the PD (a handle that is not one: ``EINVAL``),
keeps the SRQ's events' bookkeeping (``IB_EVENT_SRQ_LIMIT_REACHED`` goes to the
context's first async event file, ``element`` the ``user_handle``) and the use counts
(the PD's; the SRQ's by its QPs: ``EBUSY`` to destroy while one uses it); the driver
makes the queue (rxe: a ring the provider maps, which ``ibv_post_srq_recv`` writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from errno import EBUSY, EINVAL
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..trace import TracePoint
from ..uapi.rdma import ib_user_verbs as V
from ..uapi.rdma.ib_user_ioctl_cmds import UVERBS_OBJECT_SRQ
from .events import UeventObject, ib_uverbs_uobj_event
from .objects import PD_TYPE, RDMA_REMOVE_CLOSE, RDMA_REMOVE_DESTROY, IbPd, UobjType

if TYPE_CHECKING:
    from .device import IbDevice
    from .objects import IbUcontext, Uobject
    from .uverbs import AttrBundle

__all__ = [
    "IB_SRQ_LIMIT",
    "IB_SRQ_MAX_WR",
    "SRQ_TYPE",
    "IbSrq",
    "IbSrqAttr",
    "lookup_srq",
    "w_create_srq",
    "w_destroy_srq",
    "w_modify_srq",
    "w_query_srq",
]

trace_rdma_create_srq = TracePoint("rdma.create_srq", "ibdev", "handle", "max_wr", "max_sge")
trace_rdma_modify_srq = TracePoint("rdma.modify_srq", "ibdev", "handle", "mask", "max_wr", "limit")

# enum ib_srq_attr_mask
IB_SRQ_MAX_WR = 1 << 0
IB_SRQ_LIMIT = 1 << 1

_READ, _DESTROY = 0, 3  # uverbs.ACCESS_READ / ACCESS_DESTROY


@dataclass
class IbSrqAttr:
    """``struct ib_srq_attr``: asked for at create/modify; the driver says what it made."""

    max_wr: int = 0
    max_sge: int = 0
    srq_limit: int = 0


@dataclass(eq=False)
class IbSrq:
    """``struct ib_srq``: its PD, ``usecnt`` (the QPs on it), the driver's ``priv``."""

    device: IbDevice
    uctx: IbUcontext
    pd: IbPd
    attr: IbSrqAttr
    usecnt: int = 0
    priv: Any = None
    handle: int = -1
    uevent: UeventObject = field(default_factory=UeventObject)

    def event_handler(self, event: int) -> None:
        """``srq->event_handler`` (``ib_uverbs_srq_event_handler``): an ``IB_EVENT_*`` of
        this SRQ (``SRQ_LIMIT_REACHED``) to the async event file."""
        ib_uverbs_uobj_event(self.uevent, event)


def _destroy_srq(uobj: Uobject, why: int) -> None:
    srq: IbSrq = uobj.object
    if srq.usecnt and why in (RDMA_REMOVE_DESTROY, RDMA_REMOVE_CLOSE):
        raise kerr(EBUSY)
    op = srq.device.ops.destroy_srq
    if op is not None:
        op(srq)
    srq.pd.usecnt -= 1
    if srq.uevent.event_file is not None:
        srq.uevent.event_file.drop(srq.uevent)


SRQ_TYPE = UobjType(UVERBS_OBJECT_SRQ, "srq", _destroy_srq)


def lookup_srq(bundle: AttrBundle, handle: int) -> IbSrq:
    """``uobj_get_obj_read(srq, ...)``: ``EINVAL`` for a handle that is not an SRQ."""
    try:
        srq: IbSrq = bundle.lookup(SRQ_TYPE, handle, _READ).object
    except OSError:
        raise kerr(EINVAL) from None
    return srq


def w_create_srq(bundle: AttrBundle) -> None:
    """``ib_uverbs_create_srq`` -> ``ib_create_srq_user`` -> the driver's ``create_srq``."""
    cmd = V.ib_uverbs_create_srq.from_buffer_copy(bundle.request(32))
    dev = bundle.device
    uobj = bundle.write_uobj = bundle.uobj_alloc(SRQ_TYPE)
    try:
        pd: IbPd = bundle.lookup(PD_TYPE, cmd.pd_handle, _READ).object
    except OSError:
        raise kerr(EINVAL) from None
    assert bundle.context is not None
    srq = IbSrq(dev, bundle.context, pd, IbSrqAttr(cmd.max_wr, cmd.max_sge, cmd.srq_limit),
                handle=uobj.id)  # fmt: skip
    srq.uevent.user_handle = cmd.user_handle
    srq.uevent.event_file = bundle.ufile.default_async_file
    op = dev.ops.create_srq
    assert op is not None
    op(srq, bundle.driver_udata)
    pd.usecnt += 1
    uobj.object = srq
    uobj.hw_valid = True
    a = srq.attr
    bundle.response(bytes(V.ib_uverbs_create_srq_resp(uobj.id, a.max_wr, a.max_sge, 0)))
    trace_rdma_create_srq(bundle.kernel.tracer, dev.name, uobj.id, a.max_wr, a.max_sge)


def w_modify_srq(bundle: AttrBundle) -> None:
    """``ib_uverbs_modify_srq``: resize (``IB_SRQ_MAX_WR``) and/or arm the limit
    (``IB_SRQ_LIMIT``), as the driver can."""
    cmd = V.ib_uverbs_modify_srq.from_buffer_copy(bundle.request(16))
    srq = lookup_srq(bundle, cmd.srq_handle)
    op = srq.device.ops.modify_srq
    assert op is not None
    op(srq, IbSrqAttr(cmd.max_wr, 0, cmd.srq_limit), cmd.attr_mask, bundle.driver_udata)
    trace_rdma_modify_srq(bundle.kernel.tracer, srq.device.name, srq.handle, cmd.attr_mask,
                          srq.attr.max_wr, srq.attr.srq_limit)  # fmt: skip


def w_query_srq(bundle: AttrBundle) -> None:
    """``ib_uverbs_query_srq``: what the driver says of the SRQ now."""
    cmd = V.ib_uverbs_query_srq.from_buffer_copy(bundle.request(16))
    srq = lookup_srq(bundle, cmd.srq_handle)
    op = srq.device.ops.query_srq
    assert op is not None
    a = op(srq)
    bundle.response(bytes(V.ib_uverbs_query_srq_resp(a.max_wr, a.max_sge, a.srq_limit, 0)))


def w_destroy_srq(bundle: AttrBundle) -> None:
    """``ib_uverbs_destroy_srq``: ``EBUSY`` while a QP uses it; answers the events read."""
    cmd = V.ib_uverbs_destroy_srq.from_buffer_copy(bundle.request(16))
    uobj = bundle.lookup(SRQ_TYPE, cmd.srq_handle, _DESTROY)
    bundle.ufile.destroy_uobject(uobj, RDMA_REMOVE_DESTROY)
    srq: IbSrq = uobj.object
    bundle.response(bytes(V.ib_uverbs_destroy_srq_resp(srq.uevent.events_reported)))
