"""Address handles: ``CREATE_AH`` and ``DESTROY_AH`` (``uverbs_cmd.c``, ``verbs.c``).

An AH names a destination for UD sends: port, GRH (destination GID, source GID index,
hop limit, traffic class, flow label).  The core checks what ``rdma_create_user_ah``
checks -- the port, a GRH on a RoCE port (``EINVAL``), the source GID index
(``rdma_get_gid_attr``: an empty slot ``ENODATA``, past the table ``EINVAL``), that the
destination resolves (``ib_resolve_eth_dmac``: only the port's own GIDs do, the model
has no network, else ``ENETUNREACH``) -- then the driver's ``create_ah`` makes it and
answers its driver data (rxe: the AH's index, which UD work requests carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from errno import EINVAL, ENETUNREACH, ENODATA
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..trace import TracePoint
from ..uapi.rdma import ib_user_verbs as V
from ..uapi.rdma.ib_user_ioctl_cmds import UVERBS_OBJECT_AH
from .objects import PD_TYPE, RDMA_REMOVE_DESTROY, IbPd, UobjType

if TYPE_CHECKING:
    from .device import IbDevice
    from .objects import Uobject
    from .uverbs import AttrBundle

__all__ = ["AH_TYPE", "IbAh", "w_create_ah", "w_destroy_ah"]

trace_rdma_create_ah = TracePoint("rdma.create_ah", "ibdev", "handle", "port", "sgid_index")

_READ, _DESTROY = 0, 3  # uverbs.ACCESS_READ / ACCESS_DESTROY


@dataclass(eq=False)
class IbAh:
    """``struct ib_ah`` with its ``rdma_ah_attr``: the driver keeps ``priv``."""

    device: IbDevice
    pd: IbPd
    port_num: int
    dgid: bytes
    sgid_index: int
    hop_limit: int
    traffic_class: int
    flow_label: int
    sl: int = 0
    user_handle: int = 0
    priv: Any = None
    handle: int = -1


def _destroy_ah(uobj: Uobject, why: int) -> None:
    ah: IbAh = uobj.object
    op = ah.device.ops.destroy_ah
    if op is not None:
        op(ah)
    ah.pd.usecnt -= 1


AH_TYPE = UobjType(UVERBS_OBJECT_AH, "ah", _destroy_ah)


def w_create_ah(bundle: AttrBundle) -> None:
    """``ib_uverbs_create_ah`` -> ``rdma_create_user_ah`` -> the driver's ``create_ah``."""
    cmd = V.ib_uverbs_create_ah.from_buffer_copy(bundle.request(56))
    dev = bundle.device
    uobj = bundle.write_uobj = bundle.uobj_alloc(AH_TYPE)
    a = cmd.attr
    if not 1 <= a.port_num <= dev.phys_port_cnt:
        raise kerr(EINVAL)
    try:
        pd: IbPd = bundle.lookup(PD_TYPE, cmd.pd_handle, _READ).object
    except OSError:
        raise kerr(EINVAL) from None  # uobj_get_obj_read: NULL
    port = dev.port(a.port_num)
    if port.grh_required and not a.is_global:
        raise kerr(EINVAL)  # rdma_check_ah_attr: RoCE needs a GRH
    g = a.grh
    if a.is_global:
        if g.sgid_index >= len(port.gids):  # rdma_fill_sgid_attr -> rdma_get_gid_attr
            raise kerr(ENODATA) if g.sgid_index < port.gid_tbl_len else kerr(EINVAL)
        if port.grh_required and bytes(g.dgid) not in port.gids:
            raise kerr(ENETUNREACH)  # ib_resolve_eth_dmac: no route (no network here)
    ah = IbAh(dev, pd, a.port_num, bytes(g.dgid), g.sgid_index, g.hop_limit, g.traffic_class,
              g.flow_label, a.sl, cmd.user_handle, handle=uobj.id)  # fmt: skip
    op = dev.ops.create_ah
    assert op is not None
    op(ah, bundle.driver_udata)
    pd.usecnt += 1
    uobj.object = ah
    uobj.hw_valid = True
    bundle.response(bytes(V.ib_uverbs_create_ah_resp(uobj.id)))
    trace_rdma_create_ah(bundle.kernel.tracer, dev.name, uobj.id, a.port_num, g.sgid_index)


def w_destroy_ah(bundle: AttrBundle) -> None:
    """``ib_uverbs_destroy_ah``."""
    cmd = V.ib_uverbs_destroy_ah.from_buffer_copy(bundle.request(4))
    uobj = bundle.lookup(AH_TYPE, cmd.ah_handle, _DESTROY)
    bundle.ufile.destroy_uobject(uobj, RDMA_REMOVE_DESTROY)
