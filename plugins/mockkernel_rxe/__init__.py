"""rxe: soft-RoCE (``drivers/infiniband/sw/rxe``), an RDMA device with no PCI function.

One device per ``[[rdma.rxe]]`` of the topology (none by default), registered at boot
like ``rdma link add rxe0 type rxe netdev <netdev>`` (an interface no other driver
provides is made as a plain Ethernet net device first, so ``rdma link`` and
``if_nametoindex`` see it): ``rxe0``, driver id
``RDMA_DRIVER_RXE``, ABI version 2, the device and port attributes real Linux 7.2's rxe
reports, the node GUID made from the interface's MAC address (a stable address
derived from the interface name here).

What it has, as upstream rxe: PDs, MRs over user memory (pinned; ``ON_DEMAND`` MRs
are not pinned), ``REREG_MR`` of the PD and access flags, ``ADVISE_MR`` prefetch;
CQs (armed for completion events with ``REQ_NOTIFY_CQ``), RC/UC/UD QPs and shared
receive queues whose rings the provider maps (``mmap`` of the uverbs file), address
handles, and the data path over them (:mod:`.verbs`).
What it lacks, as upstream rxe: dma-buf MRs (``REG_DMABUF_MR`` and ``REG_MR`` with an
fd answer ``EOPNOTSUPP``), DMA handles (``UVERBS_OBJECT_DMAH`` does not exist).  MWs
and resizing CQs are not modelled.

A software device: an RDMA WRITE into one of its MRs is a CPU copy into the pinned
pages (no PCIe transaction).  Bundled, loaded through the ``mockkernel`` entry-point
group; it uses only :mod:`mockkernel.driver` and :mod:`mockkernel.uapi`.
"""

from __future__ import annotations

import random
from errno import EFAULT, EINVAL, EOPNOTSUPP

import mockkernel
from mockkernel.driver import (
    DriverRegistry,
    IbAh,
    IbCq,
    IbDevice,
    IbDeviceAttr,
    IbDeviceOps,
    IbMr,
    IbPd,
    IbPortAttr,
    IbQp,
    IbQpAttr,
    IbSrq,
    IbSrqAttr,
    IbUcontext,
    IbUmem,
    Kernel,
    MrWriteResult,
    NetDevice,
    Udata,
    Vma,
    current_mm,
    dev_get_by_name,
    ib_register_device,
    ib_umem_get,
    ib_unregister_device,
    kerr,
    num_online_cpus,
    register_netdev,
    unregister_netdev,
)
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_ON_DEMAND,
    IB_UVERBS_ACCESS_OPTIONAL_RANGE,
    IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
    IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
    IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
    RDMA_DRIVER_RXE,
)
from mockkernel.uapi.rdma.ib_user_verbs import (
    IB_UVERBS_ODP_SUPPORT,
    IB_UVERBS_ODP_SUPPORT_ATOMIC,
    IB_UVERBS_ODP_SUPPORT_READ,
    IB_UVERBS_ODP_SUPPORT_RECV,
    IB_UVERBS_ODP_SUPPORT_SEND,
    IB_UVERBS_ODP_SUPPORT_SRQ_RECV,
    IB_UVERBS_ODP_SUPPORT_WRITE,
)

from .verbs import RxeMr, RxeVerbs

__all__ = ["RXE_ACCESS_SUPPORTED_MR", "RxeOps", "make_rxe", "mockkernel_register"]

RXE_UVERBS_ABI_VERSION = 2
#: rxe_reg_user_mr: "access = %#x not supported (%#x)" -- real 7.2 printed 0x3ff0035f
RXE_ACCESS_SUPPORTED_MR = IB_UVERBS_ACCESS_OPTIONAL_RANGE | 0x35F
#: IB_UVERBS_DEVICE_* of rxe: the low word real 7.2's QUERY_DEVICE showed (0x1223c76),
#: FLUSH_GLOBAL, FLUSH_PERSISTENT and ATOMIC_WRITE
RXE_DEVICE_CAP_FLAGS = 0x0122_3C76 | (1 << 38) | (1 << 39) | (1 << 40)
_DEFAULT_MAX = 1 << 20  # DEFAULT_MAX_VALUE of rxe_param.h
_IB_MR_REREG_PD = 2
_IB_MR_REREG_ACCESS = 4


def _mac(netdev: str) -> bytes:
    """A locally administered unicast MAC address, stable for an interface name."""
    import hashlib  # (here: its import is a twentieth of a first boot)

    digest = hashlib.sha256(netdev.encode()).digest()
    return bytes([0x52, 0x54, 0x00]) + digest[:3]


def _eui64(mac: bytes) -> bytes:
    """``addrconf_addr_eui48``: the EUI-64 of a MAC (universal/local bit flipped)."""
    return bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])


def _device_attr() -> IbDeviceAttr:
    """``rxe_init_device_param`` (rxe_param.h); the fields real 7.2 showed are exact."""
    return IbDeviceAttr(
        fw_ver=0,
        max_mr_size=(1 << 64) - 1,
        page_size_cap=0xFFFF_F000,
        vendor_id=0xFFFFFF,
        vendor_part_id=0,
        hw_ver=0,
        max_qp=_DEFAULT_MAX - 16,
        max_qp_wr=_DEFAULT_MAX,
        device_cap_flags=RXE_DEVICE_CAP_FLAGS,
        max_send_sge=32,
        max_recv_sge=32,
        max_sge_rd=32,
        max_cq=_DEFAULT_MAX,
        max_cqe=(1 << 15) - 1,
        max_mr=0x7FFFF,
        max_pd=_DEFAULT_MAX,
        max_qp_rd_atom=128,
        max_res_rd_atom=0x3F000,
        max_qp_init_rd_atom=128,
        atomic_cap=1,  # IB_ATOMIC_HCA
        max_mw=0x7FFFF,
        max_mcast_grp=8192,
        max_mcast_qp_attach=56,
        max_total_mcast_qp_attach=0x70000,
        max_ah=(1 << 15) - 1,
        max_srq=0xDFFFF,
        max_srq_wr=_DEFAULT_MAX,
        max_srq_sge=27,
        max_pkeys=64,
        local_ca_ack_delay=15,
        on_demand_paging=True,
        odp_general_caps=IB_UVERBS_ODP_SUPPORT,
        odp_rc_caps=IB_UVERBS_ODP_SUPPORT_SEND
        | IB_UVERBS_ODP_SUPPORT_RECV
        | IB_UVERBS_ODP_SUPPORT_WRITE
        | IB_UVERBS_ODP_SUPPORT_READ
        | IB_UVERBS_ODP_SUPPORT_ATOMIC
        | IB_UVERBS_ODP_SUPPORT_SRQ_RECV,
    )


class RxeOps(IbDeviceOps):
    """``rxe_dev_ops``: no ``reg_user_mr_dmabuf``, no DMAH."""

    uverbs_abi_ver = RXE_UVERBS_ABI_VERSION

    def __init__(self, name: str) -> None:
        self._index = 0
        self._keys = random.Random(name)  # rxe_get_next_key: a random key byte
        self.verbs = RxeVerbs(name)
        self.attrs = _device_attr()

    # -- CQs, QPs, their queues and the data path (verbs.py) ---------------------------------
    def create_cq(self, cq: IbCq, udata: Udata) -> None:
        """``rxe_create_cq``: a ring of at least ``cqe`` entries the provider maps."""
        self.verbs.ibdev = cq.device
        self.verbs.create_cq(cq, udata, self.attrs.max_cqe)

    def destroy_cq(self, cq: IbCq) -> None:
        self.verbs.destroy_cq(cq)

    def create_qp(self, qp: IbQp, udata: Udata) -> None:
        """``rxe_create_qp``: send and receive rings the provider maps (RC, UC, UD)."""
        self.verbs.ibdev = qp.device
        a = self.attrs
        self.verbs.create_qp(qp, udata, a.max_qp_wr, min(a.max_send_sge, a.max_recv_sge))

    def modify_qp(self, qp: IbQp, attr: IbQpAttr, mask: int, udata: Udata) -> None:
        self.verbs.modify_qp(qp, attr, mask)

    def destroy_qp(self, qp: IbQp) -> None:
        self.verbs.destroy_qp(qp)

    def post_send(self, qp: IbQp) -> None:
        self.verbs.post_send(qp)

    def create_ah(self, ah: IbAh, udata: Udata) -> None:
        """``rxe_create_ah``: an AH number the provider puts in UD work requests."""
        self.verbs.ibdev = ah.device
        self.verbs.create_ah(ah, udata)

    def destroy_ah(self, ah: IbAh) -> None:
        self.verbs.destroy_ah(ah)

    def create_srq(self, srq: IbSrq, udata: Udata) -> None:
        """``rxe_create_srq``: a shared ring the provider maps (``ibv_post_srq_recv``)."""
        self.verbs.ibdev = srq.device
        self.verbs.max_srq_wr = self.attrs.max_srq_wr
        self.verbs.create_srq(srq, udata, self.attrs.max_srq_wr, self.attrs.max_srq_sge)

    def modify_srq(self, srq: IbSrq, attr: IbSrqAttr, mask: int, udata: Udata) -> None:
        self.verbs.modify_srq(srq, attr, mask, udata)

    def query_srq(self, srq: IbSrq) -> IbSrqAttr:
        return self.verbs.query_srq(srq)

    def destroy_srq(self, srq: IbSrq) -> None:
        self.verbs.destroy_srq(srq)

    def req_notify_cq(self, cq: IbCq, flags: int) -> int:
        return self.verbs.req_notify_cq(cq, flags)

    def mmap(self, uctx: IbUcontext, vma: Vma) -> None:
        self.verbs.mmap(uctx, vma)

    def alloc_pd(self, pd: IbPd) -> None:
        pass

    def dealloc_pd(self, pd: IbPd) -> None:
        pass

    def reg_user_mr(
        self, pd: IbPd, start: int, length: int, iova: int, access: int, dmah: object
    ) -> IbMr:
        """``rxe_reg_user_mr``: unsupported access bits are ``EOPNOTSUPP``; the pages are
        pinned (``EINVAL``/``EFAULT`` from ``ib_umem_get``) unless ``ON_DEMAND``."""
        if access & ~RXE_ACCESS_SUPPORTED_MR:
            raise kerr(EOPNOTSUPP)
        self._index += 1
        key = (self._index << 8) | self._keys.randrange(256)
        umem = (
            None
            if access & IB_UVERBS_ACCESS_ON_DEMAND
            else ib_umem_get(start, length, access, pd.device)
        )
        return IbMr(lkey=key, rkey=key, umem=umem, priv=RxeMr(start, current_mm()))

    def dereg_mr(self, mr: IbMr) -> None:
        if isinstance(mr.umem, IbUmem):
            mr.umem.release()

    def rereg_user_mr(self, mr: IbMr, flags: int, pd: IbPd | None, access: int) -> None:
        """``rxe_rereg_user_mr``: only the PD and the access flags may change."""
        if flags & ~(_IB_MR_REREG_PD | _IB_MR_REREG_ACCESS):
            raise kerr(EOPNOTSUPP)
        if flags & _IB_MR_REREG_ACCESS and access & ~RXE_ACCESS_SUPPORTED_MR:
            raise kerr(EOPNOTSUPP)

    def advise_mr(
        self, pd: IbPd, advice: int, flags: int, sges: list[tuple[int, int, int]], bundle: object
    ) -> None:
        """``rxe_ib_advise_mr``: prefetch only, and only into ``ON_DEMAND`` MRs of this PD."""
        if advice not in (
            IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
            IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
            IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
        ):
            raise kerr(EOPNOTSUPP)
        for _addr, _length, lkey in sges:
            mr = pd.device.mrs.get(lkey)
            if mr is None or mr.pd is not pd or not mr.access & IB_UVERBS_ACCESS_ON_DEMAND:
                raise kerr(EINVAL)

    def mr_write(self, mr: IbMr, offset: int, data: bytes) -> MrWriteResult:
        """The responder copies into the MR's pages (a CPU copy: rxe is software)."""
        if isinstance(mr.umem, IbUmem):
            mr.umem.write(offset, data)
        else:  # ON_DEMAND: a fault at the address the MR was made over, in the address
            # space it was made in (not whichever task is current when the packet lands)
            start, mm = mr.priv.start, mr.priv.mm
            try:
                if mm.exited:
                    raise OSError(EFAULT, "the address space is gone")
                mm.write(start + offset, data)
            except OSError as e:
                return MrWriteResult(
                    "IBV_WC_REM_ACCESS_ERR", "ODP fault failed", errno=e.errno or 0
                )
        return MrWriteResult("IBV_WC_SUCCESS")


def make_rxe(kernel: Kernel, name: str, netdev: str) -> IbDevice:
    """The ``ib_device`` of ``rdma link add <name> type rxe netdev <netdev>``."""
    mac = _mac(netdev)
    eui = _eui64(mac)
    gid = bytes([0xFE, 0x80]) + bytes(6) + eui  # the link-local GID (RoCE v2)
    ops = RxeOps(name)
    return IbDevice(
        name=name,
        driver_id=RDMA_DRIVER_RXE,
        ops=ops,
        node_guid=int.from_bytes(eui, "big"),
        attrs=ops.attrs,
        ports=(IbPortAttr(gids=(gid,)),),
        num_comp_vectors=num_online_cpus(kernel),
        node_desc="rxe",
        fw_ver="",  # no get_dev_fw_str: sysfs fw_ver is empty, nldev has no FW_VERSION
        netdev=netdev,
        name_assign_type=1,  # RDMA_NAME_ASSIGN_TYPE_USER: named by `rdma link add NAME`
    )


class _Rxe:
    def __init__(self) -> None:
        self.devices: list[IbDevice] = []
        #: the interfaces the topology named that no other driver provides: plain
        #: Ethernet net devices made here, as the machine's NIC would have made them
        self.netdevs: list[NetDevice] = []

    def init(self, kernel: Kernel) -> None:
        rdma = kernel.topology.rdma
        for i, spec in enumerate(rdma.rxe):
            if dev_get_by_name(kernel, spec.netdev) is None:
                ndev = NetDevice(spec.netdev, num_rx_queues=1, num_tx_queues=1)
                register_netdev(kernel, ndev)
                self.netdevs.append(ndev)
            dev = make_rxe(kernel, rdma.rxe_name(i), spec.netdev)
            ib_register_device(kernel, dev)
            self.devices.append(dev)

    def exit(self, kernel: Kernel) -> None:
        for dev in reversed(self.devices):
            ib_unregister_device(dev)
        self.devices.clear()
        for ndev in reversed(self.netdevs):
            unregister_netdev(kernel, ndev)
        self.netdevs.clear()


@mockkernel.hookimpl
def mockkernel_register(registry: DriverRegistry) -> None:
    rxe = _Rxe()
    registry.add_module("rdma_rxe", rxe.init, rxe.exit)
