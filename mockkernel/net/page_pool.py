"""Page pools, NAPI instances and queue statistics of the net devices, and the ``netdev``
commands that show them (``net/core/page_pool_user.c``, ``netdev-genl.c``).

The model is what a driver with queue management sets up: one NAPI instance per RX
queue (its id is what ``queue-get`` reports as ``napi-id``) and one page pool per RX
queue, made when the device registers and made again on every queue restart (a devmem
bind or unbind: the new pool reports the binding's ``dmabuf`` id).  A pool replaced
while pages (niovs) of it are still out stays listed, detached (``detach-time``), until
they come back; when its device goes it moves to ``lo`` (no ``ifindex`` reported), as
``page_pool_unreg_netdev`` does.  Every pool change goes to the "page-pool" multicast
group (``PAGE_POOL_ADD_NTF``/``DEL_NTF``/``CHANGE_NTF``).  The statistics count what
the mock's receive path did: the page-pool allocation counters stay zero (no page
recycling is modelled), the queue counters are the packets and bytes each RX queue took.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from errno import EINVAL, ENODEV, ENOENT, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..mm import PAGE_SIZE
from ..trace import TracePoint
from ..uapi.linux.genetlink import GENL_ADMIN_PERM
from ..uapi.linux.netdev import (
    NETDEV_A_NAPI_DEFER_HARD_IRQS,
    NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT,
    NETDEV_A_NAPI_ID,
    NETDEV_A_NAPI_IFINDEX,
    NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT,
    NETDEV_A_NAPI_THREADED,
    NETDEV_A_PAGE_POOL_DETACH_TIME,
    NETDEV_A_PAGE_POOL_DMABUF,
    NETDEV_A_PAGE_POOL_ID,
    NETDEV_A_PAGE_POOL_IFINDEX,
    NETDEV_A_PAGE_POOL_INFLIGHT,
    NETDEV_A_PAGE_POOL_INFLIGHT_MEM,
    NETDEV_A_PAGE_POOL_NAPI_ID,
    NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST,
    NETDEV_A_PAGE_POOL_STATS_INFO,
    NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT,
    NETDEV_A_QSTATS_IFINDEX,
    NETDEV_A_QSTATS_QUEUE_ID,
    NETDEV_A_QSTATS_QUEUE_TYPE,
    NETDEV_A_QSTATS_RX_BYTES,
    NETDEV_A_QSTATS_RX_PACKETS,
    NETDEV_A_QSTATS_SCOPE,
    NETDEV_CMD_NAPI_GET,
    NETDEV_CMD_NAPI_SET,
    NETDEV_CMD_PAGE_POOL_ADD_NTF,
    NETDEV_CMD_PAGE_POOL_CHANGE_NTF,
    NETDEV_CMD_PAGE_POOL_DEL_NTF,
    NETDEV_CMD_PAGE_POOL_GET,
    NETDEV_CMD_PAGE_POOL_STATS_GET,
    NETDEV_CMD_QSTATS_GET,
    NETDEV_QSTATS_SCOPE_QUEUE,
    NETDEV_QUEUE_TYPE_RX,
)
from ..uapi.linux.netlink import NETLINK_GENERIC
from .genetlink import GenlInfo, GenlOp, genlmsg_multicast
from .netlink import (
    Nla,
    NlaType,
    NlError,
    Policy,
    nla_put_nested,
    nla_put_u32,
    nla_put_uint,
)

if TYPE_CHECKING:
    from .netdev import DevmemBinding, NetDevice, NetdevState, RxQueue

__all__ = ["PagePool", "PagePools", "page_pool_ops"]

trace_page_pool_create = TracePoint("page_pool.create", "id", "dev", "queue", "sockets")
trace_page_pool_destroy = TracePoint("page_pool.destroy", "id", "dev", "queue", "sockets")
trace_page_pool_detach = TracePoint("page_pool.detach", "id", "dev", "queue", "sockets")
#: which event a page-pool notification is (any other one: ``page_pool.detach``)
_TRACE_POOL_NTF = MappingProxyType(
    {
        NETDEV_CMD_PAGE_POOL_ADD_NTF: trace_page_pool_create,
        NETDEV_CMD_PAGE_POOL_DEL_NTF: trace_page_pool_destroy,
    }
)
trace_napi_set = TracePoint("napi.set", "id", "threaded")

_S32_MAX = 0x7FFFFFFF
_MCGRP_PAGE_POOL = 1  # index of "page-pool" in the family's groups


@dataclass(eq=False)
class PagePool:
    """``struct page_pool``'s user-visible part: id, device, NAPI, memory provider."""

    id: int
    dev: NetDevice | None  # None: the device went (reported under lo, no ifindex)
    queue: int
    napi_id: int
    binding: DevmemBinding | None
    detach_time: int = 0  # boot-time seconds of page_pool_destroy (0: in use)

    def inflight(self) -> int:
        """Pages (niovs) of this pool still out: a devmem binding's outstanding niovs
        are counted on the pool of the queue the flows are steered to (its lowest)."""
        b = self.binding
        if b is None or b.freed:
            return 0
        return b.outstanding() if self.queue == min(b.bound_rxqs or [self.queue]) else 0


@dataclass
class PagePools:
    """The kernel's page pools (``page_pools`` xarray) and the netdev commands over
    them, NAPI and queue statistics."""

    netdev: NetdevState
    pools: dict[int, PagePool] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- the model ---------------------------------------------------------------------------
    def _notify(self, pool: PagePool, cmd: int) -> None:
        """``netdev_nl_page_pool_event``: to the "page-pool" group; one trace event."""
        netlink = self.netdev.netlink
        sent = 0
        family = self.netdev.family
        if netlink is not None and netlink.has_listeners(
            NETLINK_GENERIC, family.mcgrp_offset + _MCGRP_PAGE_POOL
        ):
            fill = self._fill(pool)
            sent = genlmsg_multicast(netlink, self.netdev.family, _MCGRP_PAGE_POOL, cmd, fill)
        kernel = self.netdev.kernel
        if kernel.tracer.enabled:  # (the device name is work: none while off)
            tp = _TRACE_POOL_NTF.get(cmd, trace_page_pool_detach)
            dev = pool.dev.name if pool.dev is not None else "lo"
            tp(kernel.tracer, pool.id, dev, pool.queue, sent)

    def create(self, dev: NetDevice, rxq: RxQueue) -> PagePool:
        """``page_pool_create`` for an RX queue (``page_pool_list``: ADD_NTF)."""
        pool = PagePool(next(self._ids), dev, rxq.index, rxq.napi_id, rxq.binding)
        self.pools[pool.id] = pool
        rxq.page_pool = pool
        self._notify(pool, NETDEV_CMD_PAGE_POOL_ADD_NTF)
        return pool

    def destroy(self, pool: PagePool) -> None:
        """``page_pool_destroy``: gone at once without pages out (DEL_NTF), else detached
        (CHANGE_NTF) until the last one comes back (:meth:`released`)."""
        if pool.inflight():
            pool.detach_time = int(time.clock_gettime(time.CLOCK_BOOTTIME))
            self._notify(pool, NETDEV_CMD_PAGE_POOL_CHANGE_NTF)
            return
        self._notify(pool, NETDEV_CMD_PAGE_POOL_DEL_NTF)
        self.pools.pop(pool.id, None)

    def released(self, binding: DevmemBinding) -> None:
        """The binding's last niov came back: its detached pools go (``page_pool_release``)."""
        for pool in [p for p in self.pools.values() if p.binding is binding and p.detach_time]:
            self._notify(pool, NETDEV_CMD_PAGE_POOL_DEL_NTF)
            del self.pools[pool.id]

    def restart(self, dev: NetDevice, rxq: RxQueue) -> None:
        """``netdev_rx_queue_restart``: the queue's new memory gets a new pool."""
        old = rxq.page_pool
        self.create(dev, rxq)
        if old is not None:
            self.destroy(old)

    def register(self, dev: NetDevice) -> None:
        """The driver opens the device: a pool per RX queue (queue-managed drivers only)."""
        if dev.ops.queue_mgmt:
            for rxq in dev.rx:
                self.create(dev, rxq)

    def unregister(self, dev: NetDevice) -> None:
        """``page_pool_unreg_netdev``: the device's pools go; one with pages out stays,
        listed under ``lo``."""
        for rxq in dev.rx:
            pool, rxq.page_pool = rxq.page_pool, None
            if pool is not None:
                self.destroy(pool)
        for pool in self.pools.values():
            if pool.dev is dev:
                pool.dev = None

    # -- netlink -----------------------------------------------------------------------------
    def _info(self, pool: PagePool) -> bytearray:
        out = bytearray()
        nla_put_uint(out, NETDEV_A_PAGE_POOL_ID, pool.id)
        if pool.dev is not None:  # a pool of lo (or orphaned to it) reports no ifindex
            nla_put_u32(out, NETDEV_A_PAGE_POOL_IFINDEX, pool.dev.ifindex)
        return out

    def _fill(self, pool: PagePool) -> bytes:
        """``page_pool_nl_fill``."""
        out = self._info(pool)
        if pool.napi_id and pool.dev is not None:
            nla_put_uint(out, NETDEV_A_PAGE_POOL_NAPI_ID, pool.napi_id)
        inflight = pool.inflight()
        nla_put_uint(out, NETDEV_A_PAGE_POOL_INFLIGHT, inflight)
        nla_put_uint(out, NETDEV_A_PAGE_POOL_INFLIGHT_MEM, inflight * PAGE_SIZE)
        if pool.detach_time:
            nla_put_uint(out, NETDEV_A_PAGE_POOL_DETACH_TIME, pool.detach_time)
        if pool.binding is not None and not pool.binding.unbound:
            nla_put_u32(out, NETDEV_A_PAGE_POOL_DMABUF, pool.binding.id)
        return bytes(out)

    def _stats_fill(self, pool: PagePool) -> bytes:
        """``page_pool_nl_stats_fill``: the pool's info nest, then the counters."""
        out = bytearray()
        nla_put_nested(out, NETDEV_A_PAGE_POOL_STATS_INFO, bytes(self._info(pool)))
        for atype in range(
            NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST,
            NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT + 1,
        ):
            nla_put_uint(out, atype, 0)
        return bytes(out)

    def _listed(self) -> list[PagePool]:
        """``for_each_netdev_dump`` then each device's ``page_pools`` (newest first);
        orphaned pools are lo's."""
        out: list[PagePool] = []
        for ifindex, _dev in sorted(self.netdev.devices.items()):
            mine = [p for p in self.pools.values() if (p.dev.ifindex if p.dev else 1) == ifindex]
            out += sorted(mine, key=lambda p: -p.id)
        return out

    def _lookup(self, pool_id: int) -> PagePool:
        pool = self.pools.get(pool_id)
        if pool is None:
            raise NlError(ENOENT)
        return pool

    def _pp_get_doit(self, info: GenlInfo) -> bytes:
        info.attrs.require(NETDEV_A_PAGE_POOL_ID)
        return self._fill(self._lookup(info.attrs.get(NETDEV_A_PAGE_POOL_ID)))

    def _pp_get_dumpit(self, info: GenlInfo) -> list[bytes]:
        return [self._fill(p) for p in self._listed()]

    def _pp_stats_doit(self, info: GenlInfo) -> bytes:
        """``netdev_nl_page_pool_stats_get_doit``: by id only."""
        info.attrs.require(NETDEV_A_PAGE_POOL_STATS_INFO)
        nest = info.attrs.last[NETDEV_A_PAGE_POOL_STATS_INFO].nested
        assert nest is not None
        nest.require(NETDEV_A_PAGE_POOL_ID)
        if NETDEV_A_PAGE_POOL_IFINDEX in nest:
            raise NlError(
                EINVAL,
                "selecting by ifindex not supported",
                bad_attr=nest.last[NETDEV_A_PAGE_POOL_IFINDEX].offset,
            )
        return self._stats_fill(self._lookup(nest.get(NETDEV_A_PAGE_POOL_ID)))

    def _pp_stats_dumpit(self, info: GenlInfo) -> list[bytes]:
        return [self._stats_fill(p) for p in self._listed()]

    def _napis(self, dev: NetDevice) -> list[RxQueue]:
        """``dev->napi_list``: the RX queues' NAPI instances, highest id first."""
        return sorted((q for q in dev.rx if q.napi_id), key=lambda q: -q.napi_id)

    @staticmethod
    def _napi_fill(dev: NetDevice, q: RxQueue) -> bytes:
        """``netdev_nl_napi_fill_one`` (no IRQ and no NAPI thread are modelled)."""
        out = bytearray()
        nla_put_u32(out, NETDEV_A_NAPI_ID, q.napi_id)
        nla_put_u32(out, NETDEV_A_NAPI_IFINDEX, dev.ifindex)
        nla_put_uint(out, NETDEV_A_NAPI_THREADED, q.napi_threaded)
        nla_put_u32(out, NETDEV_A_NAPI_DEFER_HARD_IRQS, q.napi_defer_hard_irqs)
        nla_put_uint(out, NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT, q.napi_irq_suspend_timeout)
        nla_put_uint(out, NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT, q.napi_gro_flush_timeout)
        return bytes(out)

    def _napi_by_id(self, info: GenlInfo) -> tuple[NetDevice, RxQueue]:
        info.attrs.require(NETDEV_A_NAPI_ID)
        napi_id = info.attrs.get(NETDEV_A_NAPI_ID)
        for dev in self.netdev.devices.values():
            for q in dev.rx:
                if q.napi_id and q.napi_id == napi_id and dev.running:
                    return dev, q
        raise NlError(ENOENT, bad_attr=info.attrs.last[NETDEV_A_NAPI_ID].offset)

    def _napi_get_doit(self, info: GenlInfo) -> bytes:
        return self._napi_fill(*self._napi_by_id(info))

    def _napi_get_dumpit(self, info: GenlInfo) -> list[bytes]:
        ifindex = info.attrs.get(NETDEV_A_NAPI_IFINDEX)
        if ifindex is not None:
            dev = self.netdev.devices.get(ifindex)
            if dev is None:
                raise NlError(ENODEV)
            devs = [dev]
        else:
            devs = [d for _, d in sorted(self.netdev.devices.items())]
        return [self._napi_fill(d, q) for d in devs if d.running for q in self._napis(d)]

    def _napi_set_doit(self, info: GenlInfo) -> None:
        """``netdev_nl_napi_set_doit``: the settings are kept and reported (they change
        no timing here: interrupts and polling are not modelled)."""
        _dev, q = self._napi_by_id(info)
        a = info.attrs
        if NETDEV_A_NAPI_THREADED in a:
            q.napi_threaded = a.get(NETDEV_A_NAPI_THREADED)
        if NETDEV_A_NAPI_DEFER_HARD_IRQS in a:
            q.napi_defer_hard_irqs = a.get(NETDEV_A_NAPI_DEFER_HARD_IRQS)
        if NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT in a:
            q.napi_gro_flush_timeout = a.get(NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT)
        if NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT in a:
            q.napi_irq_suspend_timeout = a.get(NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT)
        kernel = self.netdev.kernel
        trace_napi_set(kernel.tracer, q.napi_id, q.napi_threaded)

    def _qstats_dumpit(self, info: GenlInfo) -> list[bytes]:
        """``netdev_nl_qstats_get_dumpit``: devices with queue stats (queue-managed
        drivers), summed per device or per queue (``scope``)."""
        a = info.attrs
        per_queue = bool((a.get(NETDEV_A_QSTATS_SCOPE) or 0) & NETDEV_QSTATS_SCOPE_QUEUE)
        ifindex = a.get(NETDEV_A_QSTATS_IFINDEX)
        if ifindex is not None:
            # one device: missing is ENODEV, without queue stats EOPNOTSUPP (the
            # attribute named in NLMSG_DONE's extended ack)
            offset = a.last[NETDEV_A_QSTATS_IFINDEX].offset
            dev = self.netdev.devices.get(ifindex)
            if dev is None:
                raise NlError(ENODEV, bad_attr=offset)
            if not dev.ops.queue_mgmt:
                raise NlError(EOPNOTSUPP, bad_attr=offset)
            devs = [dev]
        else:
            devs = [d for _, d in sorted(self.netdev.devices.items())]
        out: list[bytes] = []
        for dev in devs:
            if not dev.ops.queue_mgmt or not dev.running:
                continue
            if per_queue:
                for q in dev.rx:
                    one = bytearray()
                    nla_put_u32(one, NETDEV_A_QSTATS_IFINDEX, dev.ifindex)
                    nla_put_u32(one, NETDEV_A_QSTATS_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX)
                    nla_put_u32(one, NETDEV_A_QSTATS_QUEUE_ID, q.index)
                    nla_put_uint(one, NETDEV_A_QSTATS_RX_PACKETS, q.stats_packets)
                    nla_put_uint(one, NETDEV_A_QSTATS_RX_BYTES, q.stats_bytes)
                    out.append(bytes(one))
            else:
                one = bytearray()
                nla_put_u32(one, NETDEV_A_QSTATS_IFINDEX, dev.ifindex)
                nla_put_uint(one, NETDEV_A_QSTATS_RX_PACKETS, sum(q.stats_packets for q in dev.rx))
                nla_put_uint(one, NETDEV_A_QSTATS_RX_BYTES, sum(q.stats_bytes for q in dev.rx))
                out.append(bytes(one))
        return out


# -- policies (netdev-genl-gen.c) -------------------------------------------------------------
_IFINDEX = Nla(NlaType.U32, min=1)
_PP_ID = Nla(NlaType.UINT, min=1)
PAGE_POOL_GET_POLICY = Policy(NETDEV_A_PAGE_POOL_ID, {NETDEV_A_PAGE_POOL_ID: _PP_ID})
PAGE_POOL_INFO_POLICY = Policy(
    NETDEV_A_PAGE_POOL_IFINDEX,
    {NETDEV_A_PAGE_POOL_ID: _PP_ID, NETDEV_A_PAGE_POOL_IFINDEX: Nla(NlaType.U32, 1, _S32_MAX)},
)
PAGE_POOL_STATS_GET_POLICY = Policy(
    NETDEV_A_PAGE_POOL_STATS_INFO,
    {NETDEV_A_PAGE_POOL_STATS_INFO: Nla(NlaType.NESTED, nested=PAGE_POOL_INFO_POLICY)},
)
NAPI_GET_DO_POLICY = Policy(NETDEV_A_NAPI_ID, {NETDEV_A_NAPI_ID: Nla(NlaType.U32)})
NAPI_GET_DUMP_POLICY = Policy(NETDEV_A_NAPI_IFINDEX, {NETDEV_A_NAPI_IFINDEX: _IFINDEX})
NAPI_SET_POLICY = Policy(
    NETDEV_A_NAPI_THREADED,
    {
        NETDEV_A_NAPI_ID: Nla(NlaType.U32),
        NETDEV_A_NAPI_DEFER_HARD_IRQS: Nla(NlaType.U32, max=_S32_MAX),
        NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT: Nla(NlaType.UINT),
        NETDEV_A_NAPI_IRQ_SUSPEND_TIMEOUT: Nla(NlaType.UINT),
        NETDEV_A_NAPI_THREADED: Nla(NlaType.U32, max=2),
    },
)
QSTATS_GET_POLICY = Policy(
    NETDEV_A_QSTATS_SCOPE,
    {
        NETDEV_A_QSTATS_IFINDEX: _IFINDEX,
        NETDEV_A_QSTATS_SCOPE: Nla(NlaType.UINT, mask=NETDEV_QSTATS_SCOPE_QUEUE),
    },
)


def page_pool_ops(pp: PagePools) -> dict[int, GenlOp]:
    """The family's page-pool, NAPI and qstats commands (``netdev_nl_ops``)."""
    return {
        NETDEV_CMD_PAGE_POOL_GET: GenlOp(
            NETDEV_CMD_PAGE_POOL_GET,
            doit=pp._pp_get_doit,
            dumpit=pp._pp_get_dumpit,
            policy=PAGE_POOL_GET_POLICY,
            dump_multi=False,
        ),
        NETDEV_CMD_PAGE_POOL_STATS_GET: GenlOp(
            NETDEV_CMD_PAGE_POOL_STATS_GET,
            doit=pp._pp_stats_doit,
            dumpit=pp._pp_stats_dumpit,
            policy=PAGE_POOL_STATS_GET_POLICY,
            dump_multi=False,
        ),
        NETDEV_CMD_NAPI_GET: GenlOp(
            NETDEV_CMD_NAPI_GET,
            doit=pp._napi_get_doit,
            dumpit=pp._napi_get_dumpit,
            policy=NAPI_GET_DO_POLICY,
            dump_policy=NAPI_GET_DUMP_POLICY,
            dump_multi=False,
        ),
        NETDEV_CMD_QSTATS_GET: GenlOp(
            NETDEV_CMD_QSTATS_GET,
            dumpit=pp._qstats_dumpit,
            dump_policy=QSTATS_GET_POLICY,
            dump_multi=False,
        ),
        NETDEV_CMD_NAPI_SET: GenlOp(
            NETDEV_CMD_NAPI_SET,
            doit=pp._napi_set_doit,
            policy=NAPI_SET_POLICY,
            flags=GENL_ADMIN_PERM,
        ),
    }
