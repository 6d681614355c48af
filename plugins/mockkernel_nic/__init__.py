"""mock_nic: an Ethernet NIC with per-queue restart, the devmem TCP importer.

Binds the PCI functions whose topology entry says ``driver = "mock_nic"`` (the default
topology's E810 at 0000:03:00.0) and registers one net device per function with RX
and TX queues.  Its queue management ops let ``netdev`` ``BIND_RX`` install a devmem
memory provider on an RX queue; the function itself is the queues' DMA device.

RX data path (driver level): :meth:`MockNic.receive` writes payload into the bound
dma-buf through the PCIe fabric (``pci_fabric(kernel).memory_write``), one niov (page) per
fragment, with the steering tag and PH the exporter gave (``dma_buf_get_pci_tph`` at
the NIC's width, queried when the binding is installed on the queue; any error: no
TPH); running out of niovs is back-pressure; :meth:`MockNic.dontneed` returns them.

Upstream mode: the core attaches the dma-buf statically and
holds the mapping for the binding's life, so binding a vfio-pci dma-buf fails with
``EOPNOTSUPP`` (the exporter refuses non-peer-to-peer importers), a udmabuf works.

Topology options (``[devices.options]``): ``ifname`` (default ``eth<n>``),
``rx_queues``/``tx_queues`` (default 8), ``tcp_data_split`` (default true),
``hds_thresh`` (default 0), ``devmem`` (``"upstream"``, the default, or
``"revocable"``), ``ipv4`` (the address TCP sockets bind to reach the NIC, default
``192.0.2.<n+1>``), ``peer_port``/``peer_data`` (a scripted remote peer: once a
socket listens on ``ipv4:peer_port`` it connects, sends ``peer_data`` (UTF-8) and
closes; see :mod:`mockkernel.net.devmem_tcp`), ``linear_payload`` (default 0: how many
payload bytes of each segment received on a devmem queue stay in the skb's linear head,
:attr:`MockNic.linear_payload`, settable at run time too).

Revocable mode (beyond upstream: the importer a NIC driver would need for VFIO
buffers): the binding attaches dynamically, peer-to-peer, with ``invalidate_mappings``;
a revoke quiesces the bound queues and unmaps; payload for a revoked buffer is dropped
(:attr:`MockNic.drops`); the next payload after the exporter un-revokes re-maps the
buffer, re-queries TPH and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mockkernel
from mockkernel.driver import (
    PAGE_SIZE,
    PCI_TPH_REQ_EXT_TPH,
    PCI_TPH_REQ_TPH_ONLY,
    PCI_TPH_ST_DS_MODE,
    Device,
    DevmemBinding,
    DriverRegistry,
    Kernel,
    NetDevice,
    NetDeviceOps,
    PciDev,
    Tlp,
    TracePoint,
    device_sysfs_dir,
    dma_set_mask_and_coherent,
    net_devmem_lookup_dmabuf,
    pci_disable_device,
    pci_enable_device,
    pci_fabric,
    pci_find_device_by_name,
    pci_get_drvdata,
    pci_set_drvdata,
    pcie_disable_tph,
    pcie_enable_tph,
    pcie_tph_enabled_req_type,
    register_netdev,
    unregister_netdev,
)

__all__ = ["Frag", "MockNic", "MockNicDriver", "NicOps", "mockkernel_register", "nic_dev"]

trace_mock_nic_probe = TracePoint("mock_nic.probe", "bdf", "ifname")
trace_mock_nic_quiesce = TracePoint("mock_nic.quiesce", "dev", "binding")
trace_mock_nic_queue_restart = TracePoint("mock_nic.queue_restart", "dev", "queue", "binding")


def _opt(options: Any, key: str, default: Any) -> Any:
    value = options.get(key, default) if options else default
    if type(value) is not type(default):
        raise ValueError(f"mock_nic option {key!r} must be a {type(default).__name__}")
    return value


class NicOps(NetDeviceOps):
    """``net_device_ops`` + ``netdev_queue_mgmt_ops`` of the mock NIC."""

    queue_mgmt = True

    def __init__(self, nic: MockNic, revocable: bool) -> None:
        self.nic = nic
        self.devmem_revocable = revocable

    def devmem_invalidated(self, dev: NetDevice, binding: DevmemBinding) -> None:
        """Revoke: the queues of ``binding`` stop DMA before the mapping goes."""
        for index in binding.bound_rxqs:
            self.nic.quiesced.add(index)
            self.nic.tph[index] = None
        trace_mock_nic_quiesce(self.nic.kernel.tracer, dev.name, binding.id)

    def queue_dma_dev(self, dev: NetDevice, index: int) -> Device | None:
        return self.nic.pdev

    def queue_restart(self, dev: NetDevice, index: int) -> None:
        self.nic.restarts[index] = self.nic.restarts.get(index, 0) + 1
        binding = dev.rx[index].binding
        self.nic.tph[index] = None if binding is None else self.nic.query_tph(binding)
        bid = None if binding is None else binding.id
        trace_mock_nic_queue_restart(self.nic.kernel.tracer, dev.name, index, bid)


@dataclass(frozen=True)
class Frag:
    """One devmem fragment of received payload: where it landed and the TLPs that took it."""

    binding: int  # the binding id (``dmabuf_id`` of ``struct dmabuf_cmsg``)
    niov: int
    offset: int  # in the dma-buf (``frag_offset``)
    size: int
    tlps: tuple[Tlp, ...]


@dataclass(eq=False)
class MockNic:
    """One probed function and its net device."""

    kernel: Kernel
    pdev: PciDev
    netdev: NetDevice = field(init=False)
    restarts: dict[int, int] = field(default_factory=dict)
    #: per RX queue with a binding: the (steering tag, PH) its payload writes carry, or None
    tph: dict[int, tuple[int, int] | None] = field(default_factory=dict)
    #: why the last TPH query gave no TPH
    tph_reason: str = ""
    #: RX queues stopped by a revoke (revocable mode), until their binding maps again
    quiesced: set[int] = field(default_factory=set)
    #: payloads dropped because the queue's buffer was revoked
    drops: int = 0
    #: payload bytes of each received segment that header split leaves in the skb's
    #: linear head on a devmem queue (delivered as ``SCM_DEVMEM_LINEAR``); 0: full split
    linear_payload: int = 0

    def __repr__(self) -> str:
        return f"<MockNic {self.pdev.bdf} {self.netdev.name}>"

    def query_tph(self, binding: DevmemBinding) -> tuple[int, int] | None:
        """On each mapping: the exporter's tag at the NIC's width; any error: no TPH.

        The query is the booted profile's ``tph_op``: ``dma_buf_get_pci_tph(extended)``
        under the reservation lock (v8+), ``dma_buf_get_tph(st_width)`` unlocked (v1/v2),
        none without one (``linux-7.2``).
        """
        uapi = self.kernel.uapi
        op = uapi.tph_op
        if op is None:
            self.tph_reason = f"no TPH hook in the dma-buf core (uapi {uapi.name})"
            return None
        req = pcie_tph_enabled_req_type(self.pdev)
        if req not in (PCI_TPH_REQ_TPH_ONLY, PCI_TPH_REQ_EXT_TPH):
            self.tph_reason = "TPH requester disabled on the function"
            return None
        extended = req == PCI_TPH_REQ_EXT_TPH
        try:
            if op.resv_held:
                with binding.dmabuf.resv:
                    tag, ph = uapi.importer_get_tph(binding.dmabuf, extended)
            else:
                tag, ph = uapi.importer_get_tph(binding.dmabuf, extended)
        except OSError as e:
            self.tph_reason = f"exporter: errno {e.errno}"
            return None
        return tag, ph

    def receive(self, queue: int, payload: bytes) -> list[Frag]:
        """DMA ``payload`` into RX ``queue``'s devmem buffer, one niov (page) at a time.
        Only the binding on the queue is written: an unbound binding waiting for its
        niovs (revoked or not) never receives again.

        Returns the fragments written; when the binding runs out of free niovs the rest
        is not accepted (back-pressure: fewer bytes in the fragments than offered).
        """
        binding = self.netdev.rx[queue].binding
        if binding is None:
            raise ValueError(f"{self.netdev.name} RX queue {queue} has no devmem binding")
        if binding.sgt is None:  # revoked: re-map when the exporter allows it again
            if not binding.remap():
                self.drops += 1
                return []
            for index in binding.bound_rxqs:
                self.quiesced.discard(index)
                self.tph[index] = self.query_tph(binding)
        tph = self.tph.get(queue)
        ph, tag = (None, 0) if tph is None else (tph[1], tph[0])
        fabric = pci_fabric(self.kernel)
        out: list[Frag] = []
        pos = 0
        while pos < len(payload):
            niov = binding.alloc_niov()
            if niov is None:
                break
            addr, offset = binding.niovs[niov]
            chunk = payload[pos : pos + PAGE_SIZE]
            res = fabric.memory_write(self.pdev, addr, chunk, ph=ph, steering_tag=tag)
            out.append(Frag(binding.id, niov, offset, len(chunk), res.tlps))
            pos += len(chunk)
        return out

    def dontneed(self, frags: list[Frag]) -> None:
        """The fragments' niovs go back to their binding (``SO_DEVMEM_DONTNEED``), also
        to one already unbound and waiting for them (the last one frees it)."""
        for f in frags:
            binding = net_devmem_lookup_dmabuf(self.kernel, f.binding)
            if binding is not None:
                binding.free_niov(f.niov)


class MockNicDriver:
    """The PCI driver ``mock_nic`` of one kernel."""

    name = "mock_nic"

    def __init__(self) -> None:
        self.devices: dict[str, MockNic] = {}
        self._count = 0

    def probe(self, kernel: Kernel, pdev: PciDev) -> None:
        options = pdev.options
        ifname = _opt(options, "ifname", f"eth{self._count}")
        ipv4 = _opt(options, "ipv4", f"192.0.2.{self._count + 1}")
        peer_port = _opt(options, "peer_port", 0)
        peer_data = _opt(options, "peer_data", "")
        self._count += 1
        nic = MockNic(kernel, pdev)
        rx = _opt(options, "rx_queues", 8)
        tx = _opt(options, "tx_queues", 8)
        if not 1 <= rx <= 256 or not 1 <= tx <= 256:
            raise ValueError("mock_nic: rx_queues and tx_queues must be in 1..256")
        mode = _opt(options, "devmem", "upstream")
        if mode not in ("upstream", "revocable"):
            raise ValueError("mock_nic option 'devmem' must be 'upstream' or 'revocable'")
        ops = NicOps(nic, revocable=mode == "revocable")
        nic.netdev = NetDevice(ifname, rx, tx, ops=ops, driver_data=nic)
        nic.netdev.tcp_data_split = _opt(options, "tcp_data_split", True)
        nic.netdev.hds_thresh = _opt(options, "hds_thresh", 0)
        nic.netdev.ipv4 = ipv4
        nic.netdev.sysfs_parent = device_sysfs_dir(pdev)
        nic.linear_payload = _opt(options, "linear_payload", 0)
        if nic.linear_payload < 0:
            raise ValueError("mock_nic option 'linear_payload' must be >= 0")
        if peer_port:
            nic.netdev.scripted_peers[peer_port] = [peer_data.encode()]
        for q in nic.netdev.rx:
            q.napi_id = 8192 + 64 * pdev.busnr + q.index
        try:
            pcie_enable_tph(pdev, PCI_TPH_ST_DS_MODE)
        except OSError:
            nic.tph_reason = "no TPH requester capability"
        pci_enable_device(pdev)  # pci_enable_device_mem
        dma_set_mask_and_coherent(pdev, 64)
        try:
            register_netdev(kernel, nic.netdev)
        except BaseException:
            pci_disable_device(pdev)
            raise
        self.devices[pdev.bdf] = nic
        pci_set_drvdata(pdev, nic)
        trace_mock_nic_probe(kernel.tracer, pdev.bdf, ifname)

    def remove(self, kernel: Kernel, pdev: PciDev) -> None:
        nic = self.devices.pop(pdev.bdf, None)
        if nic is not None:
            pci_set_drvdata(pdev, None)
            unregister_netdev(kernel, nic.netdev)
            pcie_disable_tph(pdev)
            pci_disable_device(pdev)


def nic_dev(kernel: Kernel, bdf: str = "0000:03:00.0") -> MockNic:
    """The :class:`MockNic` bound to ``bdf`` (tests, tools)."""
    pdev = pci_find_device_by_name(kernel, bdf)
    nic = None if pdev is None else pci_get_drvdata(pdev)
    if not isinstance(nic, MockNic):
        raise KeyError(f"{bdf} is not bound to mock_nic")
    return nic


@mockkernel.hookimpl
def mockkernel_register(registry: DriverRegistry) -> None:
    registry.add_pci_driver(MockNicDriver())
