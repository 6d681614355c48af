"""RoCE between the RDMA devices of one kernel: the Ethernet segment their ports share.

The model has one L2 segment per kernel, and every RoCE port (link layer Ethernet) of
every registered device is on it -- as a host's soft-RoCE interface and its ConnectX
port cabled to one switch.  A destination GID *resolves* (``MODIFY_QP`` to RTR with
an address vector, ``ib_resolve_eth_dmac``: :func:`rdma_gid_reachable`) when it is
link-local (its EUI-64 names the MAC) or a port on the segment holds it: the QP's own
port (soft-RoCE loops back through its net device) or another device's.  Anything else
is ``ENETUNREACH`` (there is no router and no other host).

:func:`roce_xmit` carries one request packet -- a whole message: the model does not
split it at the path MTU, has no PSNs and loses nothing -- from a requester to the
device whose port holds the destination GID, and returns what that device's responder
(:attr:`~mockkernel.rdma.IbDeviceOps.roce_rcv`) answers: an ACK or a NAK with its
syndrome, or ``None`` when no one answers (no responder model, no such QP, a QP not
ready to receive: the requester's retries run out, ``IBV_WC_RETRY_EXC_ERR``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..trace import TracePoint
from .device import IB_LINK_LAYER_ETHERNET, ib_core

if TYPE_CHECKING:
    from .device import IbDevice, IbPortAttr, RdmaContext

__all__ = [
    "IB_OPCODE_RC_COMPARE_SWAP",
    "IB_OPCODE_RC_FETCH_ADD",
    "IB_OPCODE_RC_RDMA_READ_REQUEST",
    "IB_OPCODE_RC_RDMA_WRITE_ONLY",
    "IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE",
    "IB_OPCODE_RC_SEND_ONLY",
    "IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE",
    "NAK_INV_REQ",
    "NAK_REM_ACCESS",
    "NAK_REM_OP",
    "ROCE_ACK",
    "RoceAck",
    "RocePacket",
    "rdma_gid_reachable",
    "rdma_link_local_addr",
    "roce_find_gid",
    "roce_xmit",
]

trace_roce_xmit = TracePoint(
    "roce.xmit",
    "src",
    "dst",
    "opcode",
    "src_qpn",
    "dest_qpn",
    "length",
    "syndrome",
    "reason",
    hex_keys=("opcode",),
)

# ib_pack.h: the BTH opcodes of RC requests (a message is one packet here: *_ONLY)
IB_OPCODE_RC_SEND_ONLY = 0x04
IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE = 0x05
IB_OPCODE_RC_RDMA_WRITE_ONLY = 0x0A
IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE = 0x0B
IB_OPCODE_RC_RDMA_READ_REQUEST = 0x0C
IB_OPCODE_RC_COMPARE_SWAP = 0x13
IB_OPCODE_RC_FETCH_ADD = 0x14

# the AETH syndromes a responder answers with
ROCE_ACK = "ACK"
NAK_INV_REQ = "NAK_INV_REQ"  # invalid request (an opcode the QP does not take)
NAK_REM_ACCESS = "NAK_REM_ACCESS"  # remote access error (rkey, PD, access, range)
NAK_REM_OP = "NAK_REM_OP"  # remote operational error


@dataclass(frozen=True)
class RocePacket:
    """One RC request on the wire: GRH (GIDs), BTH (opcode, QPNs), RETH (rkey, VA)."""

    opcode: int
    sgid: bytes
    dgid: bytes
    src_qpn: int
    dest_qpn: int
    rkey: int = 0
    va: int = 0
    payload: bytes = b""


@dataclass(frozen=True)
class RoceAck:
    """The responder's answer: ``syndrome`` (``ROCE_ACK`` or a ``NAK_*``), why, and the
    PCIe TLPs its DMA made (a hardware responder writing device memory)."""

    syndrome: str
    reason: str = ""
    tlps: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        return self.syndrome == ROCE_ACK


def _on_segment(port: IbPortAttr) -> bool:
    return port.link_layer == IB_LINK_LAYER_ETHERNET


def roce_find_gid(kernel: RdmaContext, gid: bytes) -> tuple[IbDevice, int] | None:
    """The device and port number on the segment whose GID table holds ``gid``."""
    for dev in ib_core(kernel).devices.values():
        for num, port in enumerate(dev.ports, 1):
            if _on_segment(port) and gid in port.gids:
                return dev, num
    return None


def rdma_link_local_addr(gid: bytes) -> bool:
    """``rdma_link_local_addr``: ``fe80::/64``."""
    return gid[:8] == b"\xfe\x80" + bytes(6)


def rdma_gid_reachable(dev: IbDevice, port: IbPortAttr, gid: bytes) -> bool:
    """``ib_resolve_eth_dmac``: does ``gid`` resolve from ``port`` of ``dev``?

    The port's own GIDs; a link-local GID always (the MAC is the one in its EUI-64,
    whether or not anything answers there -- real 7.2's rxe accepts one no port has);
    any other GID when a port on the segment holds it (a neighbour; the zero GID and
    global GIDs of no port are ``ENETUNREACH`` on real 7.2).
    """
    if gid in port.gids or rdma_link_local_addr(gid):
        return True
    return _on_segment(port) and roce_find_gid(dev.kernel, gid) is not None


def roce_xmit(src: IbDevice, pkt: RocePacket) -> RoceAck | None:
    """Carry ``pkt`` from ``src`` to the port holding its destination GID; the answer.

    ``None``: no one answered (no port holds the GID, the device has no responder
    model, or its responder dropped the packet).
    """
    found = roce_find_gid(src.kernel, pkt.dgid)
    ack: RoceAck | None = None
    dst = "-"
    reason = "no port on the segment holds the destination GID"
    if found is not None:
        dev, _num = found
        dst = dev.name
        rcv = dev.ops.roce_rcv
        if rcv is None:
            reason = f"{dev.name} has no responder model"
        else:
            ack = rcv(pkt)
            reason = "no answer (no such QP ready to receive)" if ack is None else ack.reason
    trace_roce_xmit(
        src.kernel.tracer,
        src.name,
        dst,
        pkt.opcode,
        pkt.src_qpn,
        pkt.dest_qpn,
        len(pkt.payload),
        "none" if ack is None else ack.syndrome,
        reason,
    )
    return ack
