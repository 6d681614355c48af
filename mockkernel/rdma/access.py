"""The responder side of an RDMA WRITE: what the HCA checks before its DMA engine runs.

An incoming RDMA WRITE names an rkey, a remote address (here: a byte offset into the
MR) and the bytes.  The HCA looks the key up, checks the range and ``REMOTE_WRITE``,
and a failure is a Remote Access Error NAK -- the requester's completion says
``IBV_WC_REM_ACCESS_ERR`` and nothing is written.  Otherwise the driver's device model
(``IbDeviceOps.mr_write``) translates (faulting and mapping as the MR's state says) and
DMAs, or completes in error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..trace import TracePoint
from ..uapi.rdma.ib_user_ioctl_verbs import IB_UVERBS_ACCESS_REMOTE_WRITE
from .uverbs import MrWriteResult

if TYPE_CHECKING:
    from .device import IbDevice

__all__ = ["REM_ACCESS_ERR", "REM_OP_ERR", "SUCCESS", "ib_rdma_write"]

trace_rdma_remote_write = TracePoint(
    "rdma.remote_write", "ibdev", "rkey", "offset", "length", "status", "reason", "tlps"
)

SUCCESS = "IBV_WC_SUCCESS"
REM_ACCESS_ERR = "IBV_WC_REM_ACCESS_ERR"
REM_OP_ERR = "IBV_WC_REM_OP_ERR"


def ib_rdma_write(dev: IbDevice, rkey: int, offset: int, data: bytes) -> MrWriteResult:
    """An RDMA WRITE of ``data`` at byte ``offset`` of the MR ``rkey`` of ``dev``.

    Never raises for an MR in a bad state: the result's ``status`` says how it ended.
    """
    mr = dev.mrs.get(rkey)
    if mr is None or mr.rkey != rkey or mr.destroyed:
        res = MrWriteResult(REM_ACCESS_ERR, "no MR with this rkey")
    elif not mr.access & IB_UVERBS_ACCESS_REMOTE_WRITE:
        res = MrWriteResult(REM_ACCESS_ERR, "the MR has no REMOTE_WRITE access")
    elif offset < 0 or offset + len(data) > mr.length:
        res = MrWriteResult(REM_ACCESS_ERR, "outside the MR")
    elif dev.ops.mr_write is None:
        res = MrWriteResult(REM_OP_ERR, f"{dev.name} has no device model for RDMA WRITE")
    else:
        res = dev.ops.mr_write(mr, offset, bytes(data))
    tracer = dev.kernel.tracer
    if tracer.enabled:  # (a device's data path: no call while off)
        trace_rdma_remote_write(
            tracer, dev.name, rkey, offset, len(data), res.status, res.reason, len(res.tlps)
        )
    return res
