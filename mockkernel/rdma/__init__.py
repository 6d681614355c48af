"""The RDMA core (``drivers/infiniband/core``): what an RDMA driver plugin plugs into.

* :mod:`.device` -- :class:`IbDevice` + :class:`IbDeviceOps` and
  :func:`ib_register_device`: ``/dev/infiniband/uverbsN`` and the sysfs rdma-core reads;
* :mod:`.uverbs` -- ``RDMA_VERBS_IOCTL`` (header, attributes, handles, methods) and the
  legacy ``write()`` commands, errno for errno as real Linux 7.2;
* :mod:`.objects` -- the uverbs objects (PD, MR, DMAH, context) and per-file handles;
* :mod:`.qp` -- CQs and QPs (``CREATE_CQ``/``QP``, ``MODIFY_QP``, ``POST_SEND``), the
  QP state machine, and :class:`QueueBuf`: queue memory a driver maps to userspace;
* :mod:`.events` -- completion channels and the async event file: their queues,
  ``read``/``poll``, and how drivers post to them (``cq.comp_handler()``,
  ``qp.event_handler()``, :func:`ib_dispatch_event`);
* :mod:`.ah` -- address handles (``CREATE_AH``/``DESTROY_AH``), what UD sends name;
* :mod:`.srq` -- shared receive queues (``CREATE_SRQ``, ``MODIFY_SRQ``, ...);
* :mod:`.umem` -- MR memory: pinned user pages, dynamic and pinned dma-buf attachments;
* :mod:`.roce` -- the Ethernet segment the RoCE ports of a kernel share: GID
  resolution and request packets from a requester to another device's responder;
* :mod:`.access` -- the responder side of an RDMA WRITE (rkey, range, access checks),
  which the driver's ``mr_write`` completes;
* :mod:`.netlink` and :mod:`.nldev` -- ``NETLINK_RDMA`` and its nldev client: the device
  discovery of rdma-core and iproute2's ``rdma`` tool.

Drivers import all of it from :mod:`mockkernel.driver`.
"""

from __future__ import annotations

from .access import ib_rdma_write
from .ah import IbAh
from .device import (
    IB_LINK_LAYER_ETHERNET,
    IB_LINK_LAYER_INFINIBAND,
    IB_PORT_ACTIVE,
    IB_PORT_DOWN,
    IbDevice,
    IbDeviceAttr,
    IbDeviceOps,
    IbPortAttr,
    ib_core,
    ib_device_by_name,
    ib_register_device,
    ib_unregister_device,
)
from .events import (
    IB_EVENT_CQ_ERR,
    IB_EVENT_DEVICE_FATAL,
    IB_EVENT_PORT_ACTIVE,
    IB_EVENT_PORT_ERR,
    IB_EVENT_QP_FATAL,
    IB_EVENT_QP_LAST_WQE_REACHED,
    IB_EVENT_SQ_DRAINED,
    IB_EVENT_SRQ_LIMIT_REACHED,
    ib_dispatch_event,
)
from .objects import (
    IB_DMAH_CPU_ID_EXISTS,
    IB_DMAH_MEM_TYPE_EXISTS,
    IB_DMAH_PH_EXISTS,
    IbDmah,
    IbMr,
    IbPd,
    IbUcontext,
    UobjType,
)
from .qp import (
    IB_CQ_NEXT_COMP,
    IB_CQ_SOLICITED,
    IB_QPS_ERR,
    IB_QPS_INIT,
    IB_QPS_RESET,
    IB_QPS_RTR,
    IB_QPS_RTS,
    IbCq,
    IbQp,
    IbQpAttr,
    QueueBuf,
    ib_copy_to_udata,
)
from .roce import (
    IB_OPCODE_RC_COMPARE_SWAP,
    IB_OPCODE_RC_FETCH_ADD,
    IB_OPCODE_RC_RDMA_READ_REQUEST,
    IB_OPCODE_RC_RDMA_WRITE_ONLY,
    IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE,
    IB_OPCODE_RC_SEND_ONLY,
    IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE,
    NAK_INV_REQ,
    NAK_REM_ACCESS,
    NAK_REM_OP,
    ROCE_ACK,
    RoceAck,
    RocePacket,
    rdma_gid_reachable,
    rdma_link_local_addr,
    roce_find_gid,
    roce_xmit,
)
from .srq import IB_SRQ_LIMIT, IB_SRQ_MAX_WR, IbSrq, IbSrqAttr
from .umem import (
    DmaSegment,
    IbUmem,
    UmemDmabuf,
    ib_access_writable,
    ib_umem_dmabuf_get,
    ib_umem_dmabuf_get_pinned,
    ib_umem_get,
)
from .uverbs import (
    ACCESS_DESTROY,
    ACCESS_NEW,
    ACCESS_READ,
    AttrBundle,
    AttrSpec,
    MrWriteResult,
    ObjectDef,
    Udata,
    const_in,
    flags_in,
    idr,
    ptr_in,
    ptr_out,
    uverbs_method,
)

__all__ = [
    "ACCESS_DESTROY",
    "ACCESS_NEW",
    "ACCESS_READ",
    "IB_CQ_NEXT_COMP",
    "IB_CQ_SOLICITED",
    "IB_DMAH_CPU_ID_EXISTS",
    "IB_DMAH_MEM_TYPE_EXISTS",
    "IB_DMAH_PH_EXISTS",
    "IB_EVENT_CQ_ERR",
    "IB_EVENT_DEVICE_FATAL",
    "IB_EVENT_PORT_ACTIVE",
    "IB_EVENT_PORT_ERR",
    "IB_EVENT_QP_FATAL",
    "IB_EVENT_QP_LAST_WQE_REACHED",
    "IB_EVENT_SQ_DRAINED",
    "IB_EVENT_SRQ_LIMIT_REACHED",
    "IB_LINK_LAYER_ETHERNET",
    "IB_LINK_LAYER_INFINIBAND",
    "IB_OPCODE_RC_COMPARE_SWAP",
    "IB_OPCODE_RC_FETCH_ADD",
    "IB_OPCODE_RC_RDMA_READ_REQUEST",
    "IB_OPCODE_RC_RDMA_WRITE_ONLY",
    "IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE",
    "IB_OPCODE_RC_SEND_ONLY",
    "IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE",
    "IB_PORT_ACTIVE",
    "IB_PORT_DOWN",
    "IB_QPS_ERR",
    "IB_QPS_INIT",
    "IB_QPS_RESET",
    "IB_QPS_RTR",
    "IB_QPS_RTS",
    "IB_SRQ_LIMIT",
    "IB_SRQ_MAX_WR",
    "NAK_INV_REQ",
    "NAK_REM_ACCESS",
    "NAK_REM_OP",
    "ROCE_ACK",
    "AttrBundle",
    "AttrSpec",
    "DmaSegment",
    "IbAh",
    "IbCq",
    "IbDevice",
    "IbDeviceAttr",
    "IbDeviceOps",
    "IbDmah",
    "IbMr",
    "IbPd",
    "IbPortAttr",
    "IbQp",
    "IbQpAttr",
    "IbSrq",
    "IbSrqAttr",
    "IbUcontext",
    "IbUmem",
    "MrWriteResult",
    "ObjectDef",
    "QueueBuf",
    "RoceAck",
    "RocePacket",
    "Udata",
    "UmemDmabuf",
    "UobjType",
    "const_in",
    "flags_in",
    "ib_access_writable",
    "ib_copy_to_udata",
    "ib_core",
    "ib_device_by_name",
    "ib_dispatch_event",
    "ib_rdma_write",
    "ib_register_device",
    "ib_umem_dmabuf_get",
    "ib_umem_dmabuf_get_pinned",
    "ib_umem_get",
    "ib_unregister_device",
    "idr",
    "ptr_in",
    "ptr_out",
    "rdma_gid_reachable",
    "rdma_link_local_addr",
    "roce_find_gid",
    "roce_xmit",
    "uverbs_method",
]
