"""Net devices, RX queues, devmem bindings and the ``netdev`` genl family.

``net/core/netdev-genl.c``, ``netdev-genl-gen.c`` (the policies), ``devmem.c`` and
``netdev_rx_queue.c`` of Linux 7.2.  ``BIND_RX`` follows kernel.md §8 step by step:
required attributes, the device (``ENODEV``; no queue management → ``EOPNOTSUPP``),
each queue (``EINVAL``), one DMA device (``EOPNOTSUPP``), ``dma_buf_get``, a
**static** ``dma_buf_attach`` (so a vfio-pci buffer fails with ``EOPNOTSUPP``), the
mapping held for the binding's life, alignment, the id, then each queue's memory
provider (``ERANGE``/``EINVAL``/``EEXIST``/``EBUSY``) and a queue restart; any
failure unbinds everything.  Bindings belong to the netlink socket that made them and
are undone when it is released; the attachment and its mapping stay until the last
outstanding niov (queued fragment or user token) comes back, then the binding is freed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from errno import E2BIG, EBUSY, EEXIST, EINVAL, ENODEV, EOPNOTSUPP, ERANGE
from typing import TYPE_CHECKING, Any

from ..dma_buf import (
    DMA_FROM_DEVICE,
    Attachment,
    Device,
    DmaBuf,
    DmaBufAttachOps,
    SgTable,
    dma_buf_attach,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_get,
    dma_buf_map_attachment,
    dma_buf_map_attachment_unlocked,
    dma_buf_put,
    dma_buf_unmap_attachment,
    dma_buf_unmap_attachment_unlocked,
)
from ..errors import KernelBug
from ..mm import PAGE_SIZE
from ..trace import TracePoint
from ..uapi.linux.genetlink import GENL_UNS_ADMIN_PERM
from ..uapi.linux.netdev import (
    NETDEV_A_DEV_IFINDEX,
    NETDEV_A_DEV_XDP_FEATURES,
    NETDEV_A_DEV_XDP_RX_METADATA_FEATURES,
    NETDEV_A_DEV_XDP_ZC_MAX_SEGS,
    NETDEV_A_DEV_XSK_FEATURES,
    NETDEV_A_DMABUF_FD,
    NETDEV_A_DMABUF_ID,
    NETDEV_A_DMABUF_IFINDEX,
    NETDEV_A_DMABUF_QUEUES,
    NETDEV_A_QUEUE_DMABUF,
    NETDEV_A_QUEUE_ID,
    NETDEV_A_QUEUE_IFINDEX,
    NETDEV_A_QUEUE_NAPI_ID,
    NETDEV_A_QUEUE_TYPE,
    NETDEV_CMD_BIND_RX,
    NETDEV_CMD_BIND_TX,
    NETDEV_CMD_DEV_ADD_NTF,
    NETDEV_CMD_DEV_DEL_NTF,
    NETDEV_CMD_DEV_GET,
    NETDEV_CMD_QUEUE_GET,
    NETDEV_FAMILY_NAME,
    NETDEV_FAMILY_VERSION,
    NETDEV_MCGRP_MGMT,
    NETDEV_MCGRP_PAGE_POOL,
    NETDEV_QUEUE_TYPE_RX,
    NETDEV_QUEUE_TYPE_TX,
    NETDEV_XDP_ACT_XSK_ZEROCOPY,
)
from .genetlink import GenlFamily, GenlInfo, GenlOp, GenlRegistry, genlmsg_multicast
from .net_sysfs import netdev_register_kobject, netdev_unregister_kobject
from .netlink import (
    NetlinkSock,
    NetlinkTable,
    Nla,
    NlaType,
    NlError,
    Policy,
    nla_put_u32,
    nla_put_u64,
)
from .page_pool import PagePools, page_pool_ops

if TYPE_CHECKING:
    from ..context import KernelContext
    from .page_pool import PagePool

__all__ = [
    "DevmemBinding",
    "NetDevice",
    "NetDeviceOps",
    "NetdevState",
    "RxQueue",
]

trace_netdev_register = TracePoint("netdev.register", "name", "ifindex")
trace_netdev_notify = TracePoint("netdev.notify", "cmd", "ifindex", "sockets")
trace_netdev_bind = TracePoint("netdev.bind", "id", "dev", "dmabuf", "niovs")
trace_netdev_unbind = TracePoint("netdev.unbind", "id", "outstanding")
trace_netdev_binding_free = TracePoint("netdev.binding_free", "id", "dmabuf")

_U32_MAX = 0xFFFFFFFF


@dataclass(eq=False)
class RxQueue:
    """``struct netdev_rx_queue``: its memory provider (a devmem binding) and its users."""

    index: int
    napi_id: int = 0
    binding: DevmemBinding | None = None  # mp_params.mp_priv
    xsk: bool = False  # an AF_XDP pool is on the queue
    leased: bool = False  # a virtual or leased queue
    #: the queue's page pool (``mockkernel.net.page_pool``), made again on each restart
    page_pool: PagePool | None = None
    #: the NAPI instance's settings (``napi-set``)
    napi_threaded: int = 0
    napi_defer_hard_irqs: int = 0
    napi_gro_flush_timeout: int = 0
    napi_irq_suspend_timeout: int = 0
    #: what the queue received (``qstats-get``): skbs and their bytes
    stats_packets: int = 0
    stats_bytes: int = 0


class NetDeviceOps:
    """What the driver provides (``net_device_ops`` + ``netdev_queue_mgmt_ops``).

    ``queue_mgmt``: the driver restarts single queues (so it takes the netdev
    instance lock, ``netdev_need_ops_lock``); without it devmem is ``EOPNOTSUPP``.
    """

    queue_mgmt: bool = False
    netmem_tx: bool = False
    #: Beyond upstream: devmem attaches dynamically (peer-to-peer, revocable) instead of
    #: statically, so VFIO dma-bufs bind; an exporter's revoke unmaps the binding
    #: (``devmem_invalidated``) and the driver re-maps it (``DevmemBinding.remap``).
    devmem_revocable: bool = False

    def devmem_invalidated(self, dev: NetDevice, binding: DevmemBinding) -> None:
        """The exporter revoked ``binding``'s buffer (resv held): stop DMA to it now."""

    def queue_dma_dev(self, dev: NetDevice, index: int) -> Device | None:
        """``netdev_queue_get_dma_dev``: the device that DMAs for RX queue ``index``."""
        return None

    def queue_restart(self, dev: NetDevice, index: int) -> None:
        """``netdev_rx_queue_restart``: the queue picks up its (new) memory provider."""


@dataclass(eq=False)
class NetDevice:
    """``struct net_device``: the parts the netdev family and devmem use."""

    name: str
    num_rx_queues: int
    num_tx_queues: int
    ops: NetDeviceOps = field(default_factory=NetDeviceOps)
    ifindex: int = 0
    present: bool = True
    running: bool = True
    tcp_data_split: bool = True  # ethtool -G tcp-data-split on
    hds_thresh: int = 0
    xdp_prog: bool = False
    xdp_features: int = 0
    xdp_zc_max_segs: int = 1
    xdp_rx_metadata_features: int = 0
    xsk_features: int = 0
    driver_data: Any = None
    #: the IPv4 address TCP sockets bind to reach this device (``mockkernel.net.devmem_tcp``)
    ipv4: str | None = None
    #: port → payloads a scripted remote peer sends once a socket listens on ``ipv4:port``
    scripted_peers: dict[int, list[bytes]] = field(default_factory=dict)
    rx: list[RxQueue] = field(default_factory=list)
    #: what rtnetlink reports (``dev->mtu``, ``dev_addr``, ``tx_queue_len``); a loopback
    #: device is ``ARPHRD_LOOPBACK`` with 127.0.0.1/8, the rest ``ARPHRD_ETHER`` with
    #: ``ipv4``/``ipv4_prefixlen`` (a zero ``dev_addr`` gets one at registration)
    mtu: int = 1500
    dev_addr: bytes = b""
    loopback: bool = False
    tx_queue_len: int = 1000
    ipv4_prefixlen: int = 24
    #: the parent device's sysfs directory (a NIC's PCI function); None: virtual
    sysfs_parent: str | None = None

    def __post_init__(self) -> None:
        if not self.rx:
            self.rx = [RxQueue(i) for i in range(self.num_rx_queues)]

    def __repr__(self) -> str:
        return f"<NetDevice {self.name} ifindex={self.ifindex} rxq={self.num_rx_queues}>"


@dataclass(eq=False)
class DevmemBinding:
    """``struct net_devmem_dmabuf_binding``: a mapped dma-buf bound to RX queues."""

    id: int
    dev: NetDevice | None
    dmabuf: DmaBuf
    attach: Attachment
    sgt: SgTable | None  # None: unmapped (a revocable binding after an invalidation)
    direction: int
    owner: NetdevSockPriv
    bound_rxqs: list[int] = field(default_factory=list)
    num_niovs: int = 0
    #: per niov (one page of the buffer): its bus address and its offset in the dma-buf
    niovs: list[tuple[int, int]] = field(default_factory=list)
    #: free niovs (the binding's ``chunk_pool``), lowest offset first
    free: list[int] = field(default_factory=list)
    revocable: bool = False
    map_count: int = 1
    #: ``net_devmem_unbind_dmabuf`` ran (id erased, queues closed, ``percpu_ref_kill``):
    #: the binding is freed once no niov is outstanding (``freed``)
    unbound: bool = False
    freed: bool = False
    #: ``net_devmem_dmabuf_binding_release``: called when the last niov of an unbound
    #: binding comes back (set by :class:`NetdevState`)
    on_release: Callable[[DevmemBinding], None] | None = None

    def remap(self) -> bool:
        """Map a revocable binding again after an invalidation (the niov table is rebuilt
        from the new scatter list); False while the exporter refuses (revoked)."""
        if self.sgt is not None:
            return True
        dmabuf = self.dmabuf
        with dmabuf.resv:
            try:
                sgt = dma_buf_map_attachment(self.attach, self.direction)
            except OSError:
                return False
        table = _niov_table(sgt)
        if table is None or len(table) != len(self.niovs):
            with dmabuf.resv:
                dma_buf_unmap_attachment(self.attach, sgt, self.direction)
            return False
        self.sgt, self.niovs = sgt, table
        self.map_count += 1
        return True

    def invalidate(self) -> None:
        """``invalidate_mappings`` (resv held): the driver quiesces, then the mapping goes."""
        self.dmabuf.resv.assert_held()
        if self.dev is not None:
            self.dev.ops.devmem_invalidated(self.dev, self)
        sgt, self.sgt = self.sgt, None
        if sgt is not None:
            dma_buf_unmap_attachment(self.attach, sgt, self.direction)

    def alloc_niov(self) -> int | None:
        """A free niov for the page pool, or ``None`` when all are out (back-pressure)."""
        return self.free.pop() if self.free else None

    def outstanding(self) -> int:
        """Niovs out of the pool: in a socket's queue or behind a user token."""
        return len(self.niovs) - len(self.free)

    def free_niov(self, index: int) -> None:
        """The last reference to niov ``index`` went (``SO_DEVMEM_DONTNEED``, the skb
        holding it freed, the socket closed).  The last one of an unbound binding frees
        the binding (``__net_devmem_dmabuf_binding_free``)."""
        if not 0 <= index < len(self.niovs) or index in self.free:
            raise KernelBug(f"devmem binding {self.id}: double free of niov {index}")
        self.free.append(index)
        if self.unbound and not self.outstanding() and self.on_release is not None:
            self.on_release(self)

    def __repr__(self) -> str:
        dev = self.dev.name if self.dev else None
        state = " freed" if self.freed else " unbound" if self.unbound else ""
        return f"<DevmemBinding id={self.id} dev={dev} rxqs={self.bound_rxqs}{state}>"


def _niov_table(sgt: SgTable) -> list[tuple[int, int]] | None:
    """(bus address, dma-buf offset) of each page; None if an entry is not page aligned."""
    table: list[tuple[int, int]] = []
    offset = 0
    for sg in sgt:
        if sg.dma_address % PAGE_SIZE or sg.length % PAGE_SIZE:
            return None
        table += [(sg.dma_address + i, offset + i) for i in range(0, sg.length, PAGE_SIZE)]
        offset += sg.length
    return table


class _DevmemImporter(DmaBufAttachOps):
    """The importer ops of a revocable binding: peer-to-peer, with ``invalidate_mappings``."""

    allow_peer2peer = True

    def __init__(self) -> None:
        self.binding: DevmemBinding | None = None
        self.invalidate_mappings = self._invalidate

    def _invalidate(self, attach: Attachment) -> None:
        if self.binding is not None:
            self.binding.invalidate()


@dataclass(eq=False)
class NetdevSockPriv:
    """``struct netdev_nl_sock``: the bindings a netlink socket owns."""

    sock: NetlinkSock
    bindings: list[DevmemBinding] = field(default_factory=list)


# -- policies (netdev-genl-gen.c) -------------------------------------------------------------
_IFINDEX = Nla(NlaType.U32, min=1)
_QTYPE = Nla(NlaType.U32, max=1)
DEV_GET_POLICY = Policy(NETDEV_A_DEV_IFINDEX, {NETDEV_A_DEV_IFINDEX: _IFINDEX})
QUEUE_GET_DO_POLICY = Policy(
    NETDEV_A_QUEUE_TYPE,
    {
        NETDEV_A_QUEUE_ID: Nla(NlaType.U32),
        NETDEV_A_QUEUE_IFINDEX: _IFINDEX,
        NETDEV_A_QUEUE_TYPE: _QTYPE,
    },
)
QUEUE_GET_DUMP_POLICY = Policy(NETDEV_A_QUEUE_IFINDEX, {NETDEV_A_QUEUE_IFINDEX: _IFINDEX})
QUEUE_ID_POLICY = Policy(
    NETDEV_A_QUEUE_TYPE, {NETDEV_A_QUEUE_ID: Nla(NlaType.U32), NETDEV_A_QUEUE_TYPE: _QTYPE}
)
BIND_RX_POLICY = Policy(
    NETDEV_A_DMABUF_FD,
    {
        NETDEV_A_DMABUF_IFINDEX: _IFINDEX,
        NETDEV_A_DMABUF_FD: Nla(NlaType.U32),
        NETDEV_A_DMABUF_QUEUES: Nla(NlaType.NESTED, nested=QUEUE_ID_POLICY),
    },
)
BIND_TX_POLICY = Policy(
    NETDEV_A_DMABUF_FD,
    {NETDEV_A_DMABUF_IFINDEX: _IFINDEX, NETDEV_A_DMABUF_FD: Nla(NlaType.U32)},
)


class NetdevState:
    """The registered net devices, the devmem bindings and the ``netdev`` family."""

    def __init__(self, kernel: KernelContext, genl: GenlRegistry) -> None:
        self.kernel = kernel
        self.devices: dict[int, NetDevice] = {}
        #: the bindings by id (``net_devmem_dmabuf_bindings``): what netlink shows
        self.bindings: dict[int, DevmemBinding] = {}
        #: unbound bindings still holding outstanding niovs, freed with the last one
        self.releasing: list[DevmemBinding] = []
        self._ifindex = itertools.count(1)
        self._next_binding = 1
        self.page_pools = PagePools(self)
        self.family = genl.register(self._family())
        #: called when a binding is made or undone (drivers' data paths may watch)
        self.on_unbind: list[Callable[[DevmemBinding], None]] = []
        #: where notifications go: set by ``NetState`` once the namespace is made
        self.netlink: NetlinkTable | None = None
        #: the netdevice notifier chain (``register_netdevice_notifier``): called with
        #: the device and True after it registers, False after it unregisters
        self.notifiers: list[Callable[[NetDevice, bool], None]] = []
        self.register(NetDevice("lo", 1, 1, mtu=65536, dev_addr=bytes(6), loopback=True))

    # -- devices ------------------------------------------------------------------------------
    def register(self, dev: NetDevice) -> int:
        if any(d.name == dev.name for d in self.devices.values()):
            raise NlError(EEXIST, f"a net device {dev.name!r} exists")
        dev.ifindex = next(self._ifindex)
        if not dev.dev_addr:  # a locally administered unicast address from the ifindex
            dev.dev_addr = bytes([0x02, 0, 0, 0, dev.ifindex >> 8 & 0xFF, dev.ifindex & 0xFF])
        self.devices[dev.ifindex] = dev
        netdev_register_kobject(self.kernel, dev)
        trace_netdev_register(self.kernel.tracer, dev.name, dev.ifindex)
        self._notify(dev, NETDEV_CMD_DEV_ADD_NTF)
        self.page_pools.register(dev)
        for notifier in list(self.notifiers):
            notifier(dev, True)
        return dev.ifindex

    def _notify(self, dev: NetDevice, cmd: int) -> None:
        """``netdev_genl_dev_notify``: ``DEV_ADD_NTF``/``DEV_DEL_NTF`` to the "mgmt" group."""
        netlink = self.netlink
        if netlink is None:  # (lo, registered while the namespace is being made)
            return
        n = genlmsg_multicast(netlink, self.family, 0, cmd, self._dev_fill(dev))
        if n:
            trace_netdev_notify(self.kernel.tracer, cmd, dev.ifindex, n)

    def unregister(self, dev: NetDevice) -> None:
        """Provider uninstall clears ``binding->dev``; the binding lives on with its socket."""
        for q in dev.rx:
            b = q.binding
            if b is not None:
                q.binding = None
                if q.index in b.bound_rxqs:
                    b.bound_rxqs.remove(q.index)
                b.dev = None
        dev.present = False
        self.page_pools.unregister(dev)
        if self.devices.pop(dev.ifindex, None) is not None:
            netdev_unregister_kobject(self.kernel, dev)
            self._notify(dev, NETDEV_CMD_DEV_DEL_NTF)
            for notifier in list(self.notifiers):
                notifier(dev, False)

    def _get(self, ifindex: int) -> NetDevice:
        dev = self.devices.get(ifindex)
        if dev is None:
            raise NlError(ENODEV)
        return dev

    # -- bindings ------------------------------------------------------------------------------
    def bind_dmabuf(
        self,
        dev: NetDevice,
        dma_dev: Device | None,
        direction: int,
        fd: int,
        priv: NetdevSockPriv,
    ) -> DevmemBinding:
        """``net_devmem_bind_dmabuf``: attach (static), map for good, check, allocate the id."""
        if dma_dev is None:
            raise NlError(EOPNOTSUPP, "Device doesn't support DMA")
        dmabuf = dma_buf_get(fd, priv.sock.proc)
        importer = _DevmemImporter() if dev.ops.devmem_revocable else None
        try:
            if importer is not None:
                attach = dma_buf_dynamic_attach(dmabuf, dma_dev, importer, None)
            else:
                attach = dma_buf_attach(dmabuf, dma_dev)
        except OSError as e:
            dma_buf_put(dmabuf)
            raise NlError(e.errno or EINVAL, "Failed to bind dmabuf to device") from None
        try:
            sgt = dma_buf_map_attachment_unlocked(attach, direction)
        except OSError as e:
            dma_buf_detach(dmabuf, attach)
            dma_buf_put(dmabuf)
            raise NlError(e.errno or EINVAL, "Failed to map dmabuf attachment") from None
        niovs = 0
        table: list[tuple[int, int]] = []
        offset = 0
        for sg in sgt:
            if sg.dma_address % PAGE_SIZE or sg.length % PAGE_SIZE:
                err: NlError | None = NlError(EINVAL, "dmabuf not aligned to the niov size")
                break
            niovs += sg.length // PAGE_SIZE
            if niovs <= _U32_MAX:
                table += [(sg.dma_address + i, offset + i) for i in range(0, sg.length, PAGE_SIZE)]
            offset += sg.length
        else:
            err = NlError(E2BIG) if niovs > _U32_MAX else None
        if err is not None:
            dma_buf_unmap_attachment_unlocked(attach, sgt, direction)
            dma_buf_detach(dmabuf, attach)
            dma_buf_put(dmabuf)
            raise err
        bid = self._alloc_id()
        binding = DevmemBinding(
            bid, dev, dmabuf, attach, sgt, direction, priv, num_niovs=niovs, niovs=table
        )
        binding.free = list(range(niovs - 1, -1, -1))
        binding.revocable = importer is not None
        binding.on_release = self._release
        if importer is not None:
            importer.binding = binding
        self.bindings[bid] = binding
        priv.bindings.append(binding)
        trace_netdev_bind(self.kernel.tracer, bid, dev.name, dmabuf.id, niovs)
        return binding

    def _alloc_id(self) -> int:
        """``xa_alloc_cyclic`` from 1 over the 32-bit range."""
        bid = self._next_binding
        while bid in self.bindings:
            bid = bid + 1 if bid < _U32_MAX else 1
        self._next_binding = bid + 1 if bid < _U32_MAX else 1
        return bid

    def open_rxq(self, dev: NetDevice, index: int, binding: DevmemBinding) -> None:
        """``netif_mp_open_rxq``."""
        if not dev.ops.queue_mgmt:
            raise NlError(EOPNOTSUPP)
        if index >= dev.num_rx_queues:
            raise NlError(ERANGE, "rx queue index out of range")
        if not dev.tcp_data_split:
            raise NlError(EINVAL, "tcp-data-split is disabled")
        if dev.hds_thresh:
            raise NlError(EINVAL, "hds-thresh is not zero")
        if dev.xdp_prog:
            raise NlError(
                EEXIST, "unable to custom memory provider to device with XDP program attached"
            )
        rxq = dev.rx[index]
        if rxq.binding is not None:
            raise NlError(EEXIST, "designated queue already memory provider bound")
        if rxq.xsk:
            raise NlError(EBUSY, "designated queue already in use by AF_XDP")
        if rxq.leased:
            raise NlError(EBUSY, "designated queue is virtual or leased")
        rxq.binding = binding
        try:
            dev.ops.queue_restart(dev, index)
        except BaseException:
            rxq.binding = None
            raise
        self.page_pools.restart(dev, rxq)
        binding.bound_rxqs.append(index)

    def unbind(self, binding: DevmemBinding) -> None:
        """``net_devmem_unbind_dmabuf``: the id is erased, the binding leaves its netlink
        socket's list and every queue (each restarts: what arrives next is readable), and
        its reference is dropped (``percpu_ref_kill``).  The final free (unmap, detach,
        ``dma_buf_put``) waits for the last outstanding niov: a socket's queued fragment
        or a user token, each holding a reference through its page pool."""
        if binding.unbound:
            return
        binding.unbound = True
        self.bindings.pop(binding.id, None)
        if binding in binding.owner.bindings:
            binding.owner.bindings.remove(binding)
        dev = binding.dev
        if dev is not None:
            for index in list(binding.bound_rxqs):
                rxq = dev.rx[index]
                if rxq.binding is binding:
                    rxq.binding = None
                    dev.ops.queue_restart(dev, index)
                    self.page_pools.restart(dev, rxq)
        binding.bound_rxqs.clear()
        for cb in list(self.on_unbind):
            cb(binding)
        outstanding = binding.outstanding()
        trace_netdev_unbind(self.kernel.tracer, binding.id, outstanding)
        if outstanding:
            self.releasing.append(binding)
        else:
            self._release(binding)

    def lookup(self, binding_id: int) -> DevmemBinding | None:
        """The binding with this id, bound or still waiting for its niovs (driver use)."""
        found = self.bindings.get(binding_id)
        if found is None:
            found = next((b for b in self.releasing if b.id == binding_id), None)
        return found

    def _release(self, binding: DevmemBinding) -> None:
        """``__net_devmem_dmabuf_binding_free``: the last reference went."""
        if binding.freed:
            return
        if binding.outstanding():
            raise KernelBug(f"devmem binding {binding.id} freed with niovs outstanding")
        binding.freed = True
        if binding in self.releasing:
            self.releasing.remove(binding)
        dmabuf = binding.dmabuf
        sgt, binding.sgt = binding.sgt, None
        if sgt is not None:
            dma_buf_unmap_attachment_unlocked(binding.attach, sgt, binding.direction)
        dma_buf_detach(dmabuf, binding.attach)
        dma_buf_put(dmabuf)
        self.page_pools.released(binding)
        trace_netdev_binding_free(self.kernel.tracer, binding.id, dmabuf.id)

    def _priv_destroy(self, priv: NetdevSockPriv) -> None:
        """``netdev_nl_sock_priv_destroy``: every binding of the socket is undone."""
        for binding in list(priv.bindings):
            self.unbind(binding)

    # -- the family ----------------------------------------------------------------------------
    def _dev_fill(self, dev: NetDevice) -> bytes:
        out = bytearray()
        nla_put_u32(out, NETDEV_A_DEV_IFINDEX, dev.ifindex)
        nla_put_u64(out, NETDEV_A_DEV_XDP_FEATURES, dev.xdp_features)
        nla_put_u64(out, NETDEV_A_DEV_XDP_RX_METADATA_FEATURES, dev.xdp_rx_metadata_features)
        nla_put_u64(out, NETDEV_A_DEV_XSK_FEATURES, dev.xsk_features)
        if dev.xdp_features & NETDEV_XDP_ACT_XSK_ZEROCOPY:
            nla_put_u32(out, NETDEV_A_DEV_XDP_ZC_MAX_SEGS, dev.xdp_zc_max_segs)
        return bytes(out)

    def _queue_fill(self, dev: NetDevice, qid: int, qtype: int) -> bytes:
        n = dev.num_rx_queues if qtype == NETDEV_QUEUE_TYPE_RX else dev.num_tx_queues
        if qid >= n:
            raise NlError(EINVAL)
        out = bytearray()
        nla_put_u32(out, NETDEV_A_QUEUE_ID, qid)
        nla_put_u32(out, NETDEV_A_QUEUE_TYPE, qtype)
        nla_put_u32(out, NETDEV_A_QUEUE_IFINDEX, dev.ifindex)
        if qtype == NETDEV_QUEUE_TYPE_RX:
            rxq = dev.rx[qid]
            if rxq.napi_id:
                nla_put_u32(out, NETDEV_A_QUEUE_NAPI_ID, rxq.napi_id)
            if rxq.binding is not None:
                nla_put_u32(out, NETDEV_A_QUEUE_DMABUF, rxq.binding.id)
        return bytes(out)

    def _dev_get_doit(self, info: GenlInfo) -> bytes:
        info.attrs.require(NETDEV_A_DEV_IFINDEX)
        return self._dev_fill(self._get(info.attrs.get(NETDEV_A_DEV_IFINDEX)))

    def _dev_get_dumpit(self, info: GenlInfo) -> list[bytes]:
        return [self._dev_fill(d) for _, d in sorted(self.devices.items())]

    def _queue_get_doit(self, info: GenlInfo) -> bytes:
        a = info.attrs
        a.require(NETDEV_A_QUEUE_ID, NETDEV_A_QUEUE_TYPE, NETDEV_A_QUEUE_IFINDEX)
        dev = self._get(a.get(NETDEV_A_QUEUE_IFINDEX))
        return self._queue_fill(dev, a.get(NETDEV_A_QUEUE_ID), a.get(NETDEV_A_QUEUE_TYPE))

    def _queue_get_dumpit(self, info: GenlInfo) -> list[bytes]:
        ifindex = info.attrs.get(NETDEV_A_QUEUE_IFINDEX)
        if ifindex is not None:
            devs = [self._get(ifindex)]
        else:
            devs = [d for _, d in sorted(self.devices.items())]
        out = []
        for dev in devs:
            if not dev.running:
                continue
            out += [
                self._queue_fill(dev, i, NETDEV_QUEUE_TYPE_RX) for i in range(dev.num_rx_queues)
            ]
            out += [
                self._queue_fill(dev, i, NETDEV_QUEUE_TYPE_TX) for i in range(dev.num_tx_queues)
            ]
        return out

    def _bind_rx_doit(self, info: GenlInfo) -> bytes:
        a = info.attrs
        a.require(NETDEV_A_DEV_IFINDEX, NETDEV_A_DMABUF_FD, NETDEV_A_DMABUF_QUEUES)
        ifindex: int = a.get(NETDEV_A_DEV_IFINDEX)
        fd: int = a.get(NETDEV_A_DMABUF_FD)
        priv: NetdevSockPriv = info.sk_priv()
        ifattr = a.last[NETDEV_A_DEV_IFINDEX].offset
        dev = self.devices.get(ifindex)
        if dev is None or not dev.present:
            raise NlError(ENODEV)  # netdev_get_by_index_lock failed: no attribute named
        if not dev.ops.queue_mgmt:
            raise NlError(EOPNOTSUPP, bad_attr=ifattr)
        # netdev_nl_read_rxq_bitmap
        rxqs: list[int] = []
        for qattr in a.each(NETDEV_A_DMABUF_QUEUES):
            q = qattr.nested
            assert q is not None
            q.require(NETDEV_A_QUEUE_ID, NETDEV_A_QUEUE_TYPE)
            if q.get(NETDEV_A_QUEUE_TYPE) != NETDEV_QUEUE_TYPE_RX:
                raise NlError(
                    EINVAL,
                    "only rx queues can be bound",
                    bad_attr=q.last[NETDEV_A_QUEUE_TYPE].offset,
                )
            qid: int = q.get(NETDEV_A_QUEUE_ID)
            if qid >= dev.num_rx_queues:
                raise NlError(
                    EINVAL, "rx queue index out of range", bad_attr=q.last[NETDEV_A_QUEUE_ID].offset
                )
            if qid not in rxqs:
                rxqs.append(qid)
        # netdev_nl_get_dma_dev
        dma_dev: Device | None = None
        for qid in sorted(rxqs):
            this = dev.ops.queue_dma_dev(dev, qid)
            if dma_dev is not None and this is not dma_dev:
                raise NlError(EOPNOTSUPP, "Queues have different dma devices")
            dma_dev = this
        if dma_dev is None:
            raise NlError(EOPNOTSUPP, "Device doesn't support DMA")
        binding = self.bind_dmabuf(dev, dma_dev, DMA_FROM_DEVICE, fd, priv)
        try:
            for qid in sorted(rxqs):
                self.open_rxq(dev, qid, binding)
        except BaseException:
            self.unbind(binding)
            raise
        out = bytearray()
        nla_put_u32(out, NETDEV_A_DMABUF_ID, binding.id)
        return bytes(out)

    def _bind_tx_doit(self, info: GenlInfo) -> bytes:
        a = info.attrs
        a.require(NETDEV_A_DEV_IFINDEX, NETDEV_A_DMABUF_FD)
        info.sk_priv()
        dev = self.devices.get(a.get(NETDEV_A_DEV_IFINDEX))
        if dev is None or not dev.present:
            raise NlError(ENODEV)
        if not dev.ops.netmem_tx:
            raise NlError(EOPNOTSUPP, "Driver does not support netmem TX")
        raise NlError(EOPNOTSUPP, "devmem TX is not modelled")

    def _family(self) -> GenlFamily:
        return GenlFamily(
            name=NETDEV_FAMILY_NAME,
            version=NETDEV_FAMILY_VERSION,
            maxattr=0,  # split ops with per-op policies (netdev-genl-gen.c): no family policy
            ops={
                NETDEV_CMD_DEV_GET: GenlOp(
                    NETDEV_CMD_DEV_GET,
                    doit=self._dev_get_doit,
                    dumpit=self._dev_get_dumpit,
                    policy=DEV_GET_POLICY,
                    dump_multi=False,
                ),
                NETDEV_CMD_QUEUE_GET: GenlOp(
                    NETDEV_CMD_QUEUE_GET,
                    doit=self._queue_get_doit,
                    dumpit=self._queue_get_dumpit,
                    policy=QUEUE_GET_DO_POLICY,
                    dump_policy=QUEUE_GET_DUMP_POLICY,
                    dump_multi=False,
                ),
                NETDEV_CMD_BIND_RX: GenlOp(
                    NETDEV_CMD_BIND_RX,
                    doit=self._bind_rx_doit,
                    policy=BIND_RX_POLICY,
                    flags=GENL_UNS_ADMIN_PERM,
                ),
                NETDEV_CMD_BIND_TX: GenlOp(
                    NETDEV_CMD_BIND_TX, doit=self._bind_tx_doit, policy=BIND_TX_POLICY
                ),
                **page_pool_ops(self.page_pools),
            },
            mcgrps=(NETDEV_MCGRP_MGMT, NETDEV_MCGRP_PAGE_POOL),
            sock_priv_init=lambda sock: NetdevSockPriv(sock),
            sock_priv_destroy=self._priv_destroy,
        )
