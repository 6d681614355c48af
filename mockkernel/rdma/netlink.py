"""``NETLINK_RDMA``: the RDMA core's netlink protocol and its clients (``core/netlink.c``).

A message's type is ``RDMA_NL_GET_TYPE(client, op)``; each client registers a table of
:class:`RdmaNlCbs` indexed by ``op`` (``rdma_nl_register``).  ``rdma_nl_rcv_msg``
checks, in the kernel's order:

1. the client and op are in range (``is_nl_msg_valid``: ``RDMA_NL_NUM_CLIENTS``, the
   client's op count) -- else ``EINVAL``;
2. the client has a table and the op a ``doit`` or a ``dump`` (``get_cb_table``) --
   else ``EINVAL``;
3. ``RDMA_NL_ADMIN_PERM`` -- the mock's programs hold ``CAP_NET_ADMIN``;
4. ``NLM_F_DUMP`` (either of its bits, as ``flags & NLM_F_DUMP`` tests) starts the dump,
   ``EINVAL`` for an op without one; otherwise the ``doit``.

Ops that exist in Linux 7.2 but are not modelled are in the tables with their real
do/dump shape, so the checks above answer as Linux does; reaching one answers
``EOPNOTSUPP`` with the trace event ``rdma_nl.not_modelled`` (a dump: in its
``NLMSG_DONE``).  The local-services (``RDMA_NL_LS``) and iWARP port-mapper
(``RDMA_NL_IWCM``) clients are such tables; only :mod:`.nldev` is modelled.  Joining
one of the protocol's multicast groups is ``EOPNOTSUPP`` too (nothing is sent there).

The protocol exists once the RDMA core is loaded (:func:`rdma_nl_init`, called when
the first RDMA device registers); before that ``socket(AF_NETLINK, ...,
NETLINK_RDMA)`` is ``EPROTONOSUPPORT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from errno import EINVAL, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..kernel import Subsystem
from ..net import net_state
from ..net.netlink import Msg, NlError, nlmsg_put
from ..trace import TracePoint
from ..uapi.linux.netlink import NETLINK_RDMA, NLM_F_DUMP, NLM_F_MULTI
from ..uapi.rdma.rdma_netlink import (
    RDMA_NL_GET_CLIENT,
    RDMA_NL_GET_OP,
    RDMA_NL_GROUP_IWPM,
    RDMA_NL_GROUP_LS,
    RDMA_NL_GROUP_NOTIFY,
    RDMA_NL_IWCM,
    RDMA_NL_LS,
    RDMA_NL_NLDEV,
    RDMA_NL_NUM_CLIENTS,
    RDMA_NLDEV_NUM_OPS,
)

if TYPE_CHECKING:
    from .device import RdmaContext

__all__ = ["RDMA_NL_ADMIN_PERM", "RdmaNetlink", "RdmaNlCbs", "rdma_nl_init"]

trace_rdma_nl_not_modelled = TracePoint("rdma_nl.not_modelled", "client", "op", "side")

#: ``enum rdma_nl_flags``: the op needs ``CAP_NET_ADMIN``
RDMA_NL_ADMIN_PERM = 1 << 0
#: op counts of the clients (``RDMA_NL_IWPM_NUM_OPS``, ``RDMA_NL_LS_NUM_OPS``)
_IWPM_NUM_OPS = 9
_LS_NUM_OPS = 3
_MAX_NUM_OPS = MappingProxyType(
    {
        RDMA_NL_IWCM: _IWPM_NUM_OPS,
        RDMA_NL_LS: _LS_NUM_OPS,
        RDMA_NL_NLDEV: RDMA_NLDEV_NUM_OPS,
    }
)

#: a ``doit``: the reply's op and attributes, or ``None`` for no reply
DoIt = Callable[[Msg], tuple[int, bytes] | None]
#: a ``dump``: the attributes of each message (of the request's type)
DumpIt = Callable[[Msg], list[bytes]]


@dataclass(frozen=True)
class RdmaNlCbs:
    """``struct rdma_nl_cbs``: one op of a client.

    ``has_doit``/``has_dump`` give the op's shape in Linux; ``doit``/``dump`` are the
    mock's handlers (``None`` where that side is not modelled: ``EOPNOTSUPP``).
    """

    name: str
    has_doit: bool = False
    has_dump: bool = False
    doit: DoIt | None = None
    dump: DumpIt | None = None
    flags: int = 0


def _unmodelled(*names: str) -> dict[int, RdmaNlCbs]:
    """A client whose ops (all do-only, as LS's) exist in Linux but are not modelled."""
    return {op: RdmaNlCbs(name, has_doit=True) for op, name in enumerate(names)}


class RdmaNetlink(Subsystem):
    """The ``NETLINK_RDMA`` input of one kernel and its clients' tables (``rdma_nl_types``)."""

    name = "rdma_nl"

    def __init__(self, kernel: RdmaContext) -> None:
        super().__init__(kernel)
        self._kernel = kernel
        #: ``rdma_nl_types`` once made (see :attr:`types`)
        self._types: dict[int, dict[int, RdmaNlCbs]] | None = None
        table = net_state(kernel).netlink
        table.register_protocol(NETLINK_RDMA, self.rcv_msg)
        table.unmodelled_groups[NETLINK_RDMA] = {
            RDMA_NL_GROUP_IWPM: "iWARP port mapper messages",
            RDMA_NL_GROUP_LS: "local service (SA) requests",
            RDMA_NL_GROUP_NOTIFY: "RDMA monitor events",
        }

    @property
    def types(self) -> dict[int, dict[int, RdmaNlCbs]]:
        """``rdma_nl_types``: each client's ops table by client index.  ib_core's own
        clients' tables are made at the first use rather than at ib_core's load: their
        few dozen ops are most of what loading it costs, and a kernel that never gets an
        RDMA netlink message (most boots) never needs them.  Nothing else differs: the
        tables hold no state, and the protocol and its groups exist from the load."""
        types = self._types
        if types is None:
            types = self._types = {}
            # ib_core's own clients besides nldev: local services (sa_query.c); iw_cm's
            # port mapper table, which a request would load (request_module) on Linux
            types[RDMA_NL_LS] = _unmodelled(
                "LS_OP_RESOLVE", "LS_OP_SET_TIMEOUT", "LS_OP_IP_RESOLVE"
            )
            types[RDMA_NL_IWCM] = {
                op: RdmaNlCbs(f"IWPM op {op}", has_dump=True) for op in range(_IWPM_NUM_OPS)
            }
            from .nldev import nldev_cb_table

            types[RDMA_NL_NLDEV] = nldev_cb_table(self._kernel)
        return types

    def register(self, index: int, cb_table: dict[int, RdmaNlCbs]) -> None:
        """``rdma_nl_register``: ``index``'s ops from now on."""
        self.types[index] = cb_table

    def rcv_msg(self, msg: Msg) -> bool:
        """``rdma_nl_rcv_msg``; True when a dump was queued (no ack: ``NLMSG_DONE`` ends it)."""
        index = RDMA_NL_GET_CLIENT(msg.type)
        op = RDMA_NL_GET_OP(msg.type)
        # is_nl_msg_valid, get_cb_table
        if index >= RDMA_NL_NUM_CLIENTS or op >= _MAX_NUM_OPS.get(index, 0):
            raise NlError(EINVAL)
        cbs = self.types.get(index, {}).get(op)
        if cbs is None or not (cbs.has_doit or cbs.has_dump):
            raise NlError(EINVAL)
        # RDMA_NL_ADMIN_PERM: the mock's programs run with CAP_NET_ADMIN
        sock = msg.sock
        if index == RDMA_NL_LS or (not msg.flags & NLM_F_DUMP and index != RDMA_NL_IWCM):
            if not cbs.has_doit:
                raise NlError(EINVAL)
            if cbs.doit is None:
                raise self._not_modelled(index, cbs, "doit")
            reply = cbs.doit(msg)
            if reply is not None:
                reply_op, payload = reply
                mtype = (index << 10) + reply_op
                sock.queue(nlmsg_put(mtype, 0, msg.seq, msg.portid, payload))
            return False
        if not cbs.has_dump:
            raise NlError(EINVAL)
        # netlink_dump_start has started the dump: an error of the dump callback (an
        # unmodelled one's too) is NLMSG_DONE's errno
        done_err: NlError | None = None
        blobs: list[bytes] = []
        try:
            if cbs.dump is None:
                raise self._not_modelled(index, cbs, "dump")
            blobs = cbs.dump(msg)
        except NlError as e:
            done_err = e
        sock.queue_dump(
            [nlmsg_put(msg.type, NLM_F_MULTI, msg.seq, msg.portid, b) for b in blobs],
            msg.seq,
            done_err,
        )
        return True

    def _not_modelled(self, index: int, cbs: RdmaNlCbs, side: str) -> NlError:
        trace_rdma_nl_not_modelled(self.kernel.tracer, index, cbs.name, side)
        return NlError(EOPNOTSUPP, f"{cbs.name} is not modelled")


def rdma_nl_init(kernel: RdmaContext) -> RdmaNetlink:
    """``rdma_nl_init`` + ``nldev_init`` (ib_core loading): the protocol of ``kernel``."""
    return kernel.subsys(RdmaNetlink)
