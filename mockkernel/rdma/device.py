"""RDMA devices (``struct ib_device``) and their registration (``core/device.c``).

A driver plugin describes its device with an :class:`IbDevice` -- name, ``driver_id``
(``enum rdma_driver_id``), node GUID, ports (:class:`IbPortAttr`), device attributes
(:class:`IbDeviceAttr`) and its ops table (:class:`IbDeviceOps`) -- and calls
:func:`ib_register_device`.  The core then makes what rdma-core's discovery reads::

    /dev/infiniband/uverbsN                               char 231:192+N, 0666
    /sys/class/infiniband/<name> -> ../../devices/.../infiniband/<name>
        fw_ver node_desc node_guid node_type sys_image_guid uevent subsystem power
        parent (rxe) | device -> the PCI function, plus the driver's own attributes
        ports/<p>/{state,phys_state,link_layer,lid,sm_lid,sm_sl,cap_mask,rate,
                   lid_mask_count,gids/,pkeys/,gid_attrs/,counters/,hw_counters/}
    /sys/class/infiniband_verbs/abi_version                "6"
    /sys/class/infiniband_verbs/uverbsN -> ../../devices/.../infiniband_verbs/uverbsN
        abi_version (the driver's) dev ibdev uevent subsystem power [device]

Per kernel, :func:`ib_core` holds the registered devices (``IbCore.devices``).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from errno import EEXIST, EINVAL
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ..context import Subsystem
from ..errors import kerr
from ..process import TaskContext
from ..realfd import REAL, Placeholders
from ..sysfs import device_sysfs_dir
from ..trace import TracePoint
from ..uapi.rdma.ib_user_verbs import IB_USER_VERBS_ABI_VERSION
from ..vfs import Vfs

if TYPE_CHECKING:
    from ..dma_buf import Device
    from ..mm import Vma
    from ..pci import PciDev
    from ..topology import Topology
    from .ah import IbAh
    from .events import EventFile
    from .objects import IbDmah, IbMr, IbPd, IbUcontext, UverbsFile
    from .qp import IbCq, IbQp, IbQpAttr
    from .roce import RoceAck, RocePacket
    from .srq import IbSrq, IbSrqAttr
    from .uverbs import AttrBundle, MrWriteResult, Udata

__all__ = [
    "IB_LINK_LAYER_ETHERNET",
    "IB_LINK_LAYER_INFINIBAND",
    "IB_PORT_ACTIVE",
    "IB_PORT_DOWN",
    "IB_UVERBS_BASE_MINOR",
    "IB_UVERBS_MAJOR",
    "IbCore",
    "IbDevice",
    "IbDeviceAttr",
    "IbDeviceOps",
    "IbPortAttr",
    "RdmaContext",
    "ib_core",
    "ib_device_by_name",
    "ib_register_device",
    "ib_unregister_device",
]

trace_rdma_register = TracePoint("rdma.register", "ibdev", "driver_id", "uverbs", "parent")
trace_rdma_unregister = TracePoint("rdma.unregister", "ibdev")

IB_UVERBS_MAJOR = 231
IB_UVERBS_BASE_MINOR = 192
IB_UVERBS_MAX_DEVICES = 1 << 20

# enum ib_port_state / ib_port_phys_state / rdma_link_layer / rdma_node_type
IB_PORT_DOWN = 1
IB_PORT_INIT = 2
IB_PORT_ARMED = 3
IB_PORT_ACTIVE = 4
IB_PORT_PHYS_STATE_POLLING = 2
IB_PORT_PHYS_STATE_LINK_UP = 5
IB_LINK_LAYER_INFINIBAND = 1
IB_LINK_LAYER_ETHERNET = 2
RDMA_NODE_IB_CA = 1

_PORT_STATES = MappingProxyType(
    {0: "NOP", 1: "DOWN", 2: "INIT", 3: "ARMED", 4: "ACTIVE", 5: "ACTIVE_DEFER"}
)
_PHYS_STATES = MappingProxyType(
    {
        1: "Sleep",
        2: "Polling",
        3: "Disabled",
        4: "PortConfigurationTraining",
        5: "LinkUp",
        6: "LinkErrorRecovery",
        7: "Phy Test",
    }
)
_WIDTHS = MappingProxyType({1: 1, 2: 4, 4: 8, 8: 12, 16: 2})
_SPEEDS = MappingProxyType(
    {  # active_speed -> (Gb/s per lane as text, name)
        1: ("2.5", " SDR"),
        2: ("5", " DDR"),
        4: ("10", " QDR"),
        8: ("10", " FDR10"),
        16: ("14", " FDR"),
        32: ("25", " EDR"),
        64: ("50", " HDR"),
        128: ("100", " NDR"),
    }
)


@dataclass
class IbPortAttr:
    """``struct ib_port_attr`` of one port, as ``QUERY_PORT`` and sysfs report it.

    Defaults are an active RoCE port (what rxe reports on real Linux 7.2).
    """

    state: int = IB_PORT_ACTIVE
    max_mtu: int = 5  # IB_MTU_4096
    active_mtu: int = 3  # IB_MTU_1024
    gid_tbl_len: int = 1024
    port_cap_flags: int = 0x0001_0000  # IB_PORT_CM_SUP
    max_msg_sz: int = 0x8000_0000
    bad_pkey_cntr: int = 0
    qkey_viol_cntr: int = 0
    pkey_tbl_len: int = 1
    lid: int = 0
    sm_lid: int = 0
    lmc: int = 0
    max_vl_num: int = 1
    sm_sl: int = 0
    subnet_timeout: int = 0
    init_type_reply: int = 0
    active_width: int = 1  # IB_WIDTH_1X
    active_speed: int = 1  # IB_SPEED_SDR
    phys_state: int = IB_PORT_PHYS_STATE_LINK_UP
    link_layer: int = IB_LINK_LAYER_ETHERNET
    grh_required: bool = True  # RoCE: IB_UVERBS_QPF_GRH_REQUIRED
    port_cap_flags2: int = 0
    #: GIDs of the port (16 bytes each); RoCE: the link-local GID from the MAC
    gids: tuple[bytes, ...] = ()

    def rate(self) -> str:
        """The ``rate`` sysfs attribute, e.g. ``"2.5 Gb/sec (1X SDR)"``."""
        lanes = _WIDTHS.get(self.active_width, 1)
        per_lane, name = _SPEEDS.get(self.active_speed, ("2.5", " SDR"))
        total = float(per_lane) * lanes
        text = f"{total:g}"
        return f"{text} Gb/sec ({lanes}X{name})"


@dataclass
class IbDeviceAttr:
    """``struct ib_device_attr``: what ``QUERY_DEVICE``/``EX_QUERY_DEVICE`` report.

    ``device_cap_flags`` is the 64-bit ``IB_UVERBS_DEVICE_*`` set (``QUERY_DEVICE``
    reports its low 32 bits); ``on_demand_paging`` is ``IBK_ON_DEMAND_PAGING``.
    """

    fw_ver: int = 0
    sys_image_guid: int | None = None  # None: the node GUID
    max_mr_size: int = (1 << 64) - 1
    page_size_cap: int = 0xFFFF_F000
    vendor_id: int = 0
    vendor_part_id: int = 0
    hw_ver: int = 0
    max_qp: int = 0
    max_qp_wr: int = 0
    device_cap_flags: int = 0
    max_send_sge: int = 0
    max_recv_sge: int = 0
    max_sge_rd: int = 0
    max_cq: int = 0
    max_cqe: int = 0
    max_mr: int = 0
    max_pd: int = 0
    max_qp_rd_atom: int = 0
    max_ee_rd_atom: int = 0
    max_res_rd_atom: int = 0
    max_qp_init_rd_atom: int = 0
    max_ee_init_rd_atom: int = 0
    atomic_cap: int = 0
    max_ee: int = 0
    max_rdd: int = 0
    max_mw: int = 0
    max_raw_ipv6_qp: int = 0
    max_raw_ethy_qp: int = 0
    max_mcast_grp: int = 0
    max_mcast_qp_attach: int = 0
    max_total_mcast_qp_attach: int = 0
    max_ah: int = 0
    max_srq: int = 0
    max_srq_wr: int = 0
    max_srq_sge: int = 0
    max_pkeys: int = 0
    local_ca_ack_delay: int = 0
    on_demand_paging: bool = False
    odp_general_caps: int = 0
    odp_rc_caps: int = 0
    odp_uc_caps: int = 0
    odp_ud_caps: int = 0
    odp_xrc_caps: int = 0
    timestamp_mask: int = 0
    hca_core_clock: int = 0
    max_dm_size: int = 0


class IbDeviceOps:
    """The driver's ops table (``struct ib_device_ops``).  Subclass and define methods.

    Every member is optional unless said otherwise; a missing one gives the errno
    Linux gives (``EOPNOTSUPP``), or removes the method from the device's uAPI as
    ``UAPI_DEF_METHOD_NEEDS_FN`` does (``EPROTONOSUPPORT``).  All are called with the
    calling process current, without locks, unless said otherwise; raise ``OSError``
    (``kerr``) to fail.

    * ``alloc_ucontext(uctx, udata)`` / ``dealloc_ucontext(uctx)``: a context is made /
      goes; ``udata`` (a :class:`~mockkernel.rdma.Udata`) carries the provider's request
      and takes the driver's response (``mlx5_ib_alloc_ucontext_resp``).
    * ``alloc_pd(pd)`` / ``dealloc_pd(pd)``.
    * ``reg_user_mr(pd, start, length, iova, access, dmah) -> IbMr``: an MR over user
      memory (``REG_MR``; the write command and the ioctl).  Needed for ``REG_MR``.
      Pin the pages with :func:`~mockkernel.rdma.ib_umem_get` (passing ``pd.device``:
      a mock mapping of the caller, dma-buf or BAR, is then ``EFAULT`` as on Linux).
    * ``reg_user_mr_dmabuf(pd, offset, length, iova, fd, access, dmah, bundle) -> IbMr``:
      an MR over a dma-buf; ``bundle`` (an :class:`~mockkernel.rdma.AttrBundle`) holds the
      driver-namespace attributes (:attr:`driver_attrs`).  Without it ``REG_DMABUF_MR``
      and ``REG_MR`` with an fd answer ``EOPNOTSUPP``.
    * ``dereg_mr(mr)``: required.  Release what ``reg_*`` took (umem, keys, ST indexes).
    * ``alloc_dmah(dmah, bundle)`` / ``dealloc_dmah(dmah)``: both or neither; without
      them the whole ``UVERBS_OBJECT_DMAH`` is absent.
    * ``advise_mr(pd, advice, flags, sges, bundle)``: ``ADVISE_MR``; ``sges`` is a list
      of ``(addr, length, lkey)``.  Without it the method is absent.
    * ``rereg_user_mr(mr, flags, pd, access)``: the legacy ``REREG_MR`` command.
    * ``mr_write(mr, offset, data) -> MrWriteResult``: the device model of an incoming
      RDMA WRITE landing ``data`` at byte ``offset`` of ``mr`` (after the core checked
      the rkey, the range and ``REMOTE_WRITE``): translate (fault, map), DMA (through
      ``kernel.fabric`` for a PCI device), or complete in error.
    * ``create_cq(cq, udata)`` / ``destroy_cq(cq)``: a CQ (set ``cq.cqe`` to its real
      size; the driver response goes to ``udata``).  Both or neither: without them
      ``CREATE_CQ`` is ``EOPNOTSUPP`` and there is no CQ object.
    * ``create_qp(qp, udata)`` / ``destroy_qp(qp)``: a QP (set ``qp.qp_num`` and the
      ``qp.cap`` it really has); ``modify_qp(qp, attr, mask, udata)`` after the core's
      state-machine checks (``qp.attr`` becomes ``attr`` when it returns);
      ``post_send(qp)``: the doorbell of the user-mapped send queue (``POST_SEND``
      with no work requests in the command).
    * ``req_notify_cq(cq, flags) -> int``: arm ``cq`` (``IB_CQ_NEXT_COMP`` or
      ``IB_CQ_SOLICITED``) for one completion event: the driver calls
      ``cq.comp_handler()`` for the next (solicited) completion it posts.  Without it
      ``REQ_NOTIFY_CQ`` is ``EOPNOTSUPP`` (a provider that arms in userspace, mlx5).
    * ``create_ah(ah, udata)`` / ``destroy_ah(ah)``: an address handle (after the
      core's checks of the port, GRH and GIDs); both or neither: without them
      ``CREATE_AH`` is ``EOPNOTSUPP`` and there is no AH object.
    * ``create_srq(srq, udata)`` / ``destroy_srq(srq)`` (both or neither: else no SRQ
      object), ``modify_srq(srq, attr, mask, udata)`` (``IB_SRQ_MAX_WR``,
      ``IB_SRQ_LIMIT``), ``query_srq(srq) -> IbSrqAttr``: a shared receive queue (set
      ``srq.attr`` to what was made); QPs made on it have ``qp.srq``.
    * ``mmap(uctx, vma)``: ``mmap`` of the uverbs file with a context: fill ``vma``
      with what ``vma.offset`` names (a :class:`~mockkernel.rdma.QueueBuf`'s
      :meth:`~mockkernel.rdma.QueueBuf.remap`), or raise.  Without it ``mmap`` is
      ``ENODEV``.
    """

    #: the driver's uverbs ABI version (``/sys/class/infiniband_verbs/uverbsN/abi_version``)
    uverbs_abi_ver: int = 1
    #: the uverbs char device info (nldev ``GET_CHARDEV``) leaves out the driver id, so
    #: rdma-core matches the provider by PCI id / name instead (old providers)
    uverbs_no_driver_id_binding: bool = False
    #: driver-namespace attributes added to core methods:
    #: ``{(object_id, method_id): [AttrSpec, ...]}`` (``ADD_UVERBS_ATTRIBUTES_SIMPLE``)
    driver_attrs: Mapping[tuple[int, int], Sequence[Any]] = {}
    #: the driver's own objects (``ObjectDef``s of its namespace, as ``MLX5_IB_OBJECT_UAR``)
    driver_objects: Sequence[Any] = ()

    alloc_ucontext: Callable[[IbUcontext, Udata], None] | None = None
    dealloc_ucontext: Callable[[IbUcontext], None] | None = None
    alloc_pd: Callable[[IbPd], None] | None = None
    dealloc_pd: Callable[[IbPd], None] | None = None
    reg_user_mr: Callable[[IbPd, int, int, int, int, IbDmah | None], IbMr] | None = None
    reg_user_mr_dmabuf: (
        Callable[[IbPd, int, int, int, int, int, IbDmah | None, AttrBundle], IbMr] | None
    ) = None
    dereg_mr: Callable[[IbMr], None] | None = None
    alloc_dmah: Callable[[IbDmah, AttrBundle], None] | None = None
    dealloc_dmah: Callable[[IbDmah], None] | None = None
    advise_mr: Callable[[IbPd, int, int, list[tuple[int, int, int]], AttrBundle], None] | None = (
        None
    )
    rereg_user_mr: Callable[[IbMr, int, IbPd | None, int], None] | None = None
    mr_write: Callable[[IbMr, int, bytes], MrWriteResult] | None = None
    create_cq: Callable[[IbCq, Udata], None] | None = None
    destroy_cq: Callable[[IbCq], None] | None = None
    create_qp: Callable[[IbQp, Udata], None] | None = None
    modify_qp: Callable[[IbQp, IbQpAttr, int, Udata], None] | None = None
    destroy_qp: Callable[[IbQp], None] | None = None
    post_send: Callable[[IbQp], None] | None = None
    req_notify_cq: Callable[[IbCq, int], int] | None = None
    create_ah: Callable[[IbAh, Udata], None] | None = None
    destroy_ah: Callable[[IbAh], None] | None = None
    create_srq: Callable[[IbSrq, Udata], None] | None = None
    modify_srq: Callable[[IbSrq, IbSrqAttr, int, Udata], None] | None = None
    query_srq: Callable[[IbSrq], IbSrqAttr] | None = None
    destroy_srq: Callable[[IbSrq], None] | None = None
    mmap: Callable[[IbUcontext, Vma], None] | None = None
    #: the responder of a RoCE port: one request packet from the segment, its answer
    #: (``None``: dropped) -- :mod:`.roce`
    roce_rcv: Callable[[RocePacket], RoceAck | None] | None = None


@dataclass(eq=False)
class IbDevice:
    """One registered RDMA device (``struct ib_device``).

    ``dma_device`` is what the device attaches to dma-bufs as (``ib_dev->dma_device``:
    its PCI function, so bufinfo lists the BDF); ``parent`` the PCI function whose
    sysfs directory holds the device (``None`` for a virtual device such as rxe,
    which names its ``netdev`` in a ``parent`` attribute instead).
    """

    name: str
    driver_id: int
    ops: IbDeviceOps
    node_guid: int
    attrs: IbDeviceAttr = field(default_factory=IbDeviceAttr)
    ports: Sequence[IbPortAttr] = (IbPortAttr(),)
    num_comp_vectors: int = 1
    node_desc: str = ""
    fw_ver: str = "0.0.0"
    parent: PciDev | None = None
    netdev: str | None = None
    dma_device: Device | None = None
    #: extra sysfs attributes of ``/sys/class/infiniband/<name>`` (``hca_type``, ...)
    sysfs_attrs: Mapping[str, str] = field(default_factory=dict)
    #: ``use_cq_dim`` (nldev ``DEV_DIM``) and ``name_assign_type`` (``RDMA_NAME_ASSIGN_*``:
    #: 1 for a name the user chose, as ``rdma link add NAME``)
    use_cq_dim: bool = False
    name_assign_type: int = 0
    #: set by registration
    kernel: RdmaContext = field(init=False, repr=False)
    index: int = field(init=False, default=-1)
    #: MRs by rkey (the HCA's key table)
    mrs: dict[int, IbMr] = field(init=False, default_factory=dict, repr=False)
    #: open uverbs files of this device
    files: weakref.WeakSet[UverbsFile] = field(init=False, default_factory=weakref.WeakSet)
    #: the async event files open on it (``ib_register_event_handler``): where
    #: :func:`~mockkernel.rdma.ib_dispatch_event` posts device and port events
    event_handlers: set[EventFile] = field(init=False, default_factory=set, repr=False)
    uapi: Any = field(init=False, default=None, repr=False)
    registered: bool = field(init=False, default=False)

    @property
    def phys_port_cnt(self) -> int:
        return len(self.ports)

    def port(self, port_num: int) -> IbPortAttr:
        """``ib_query_port``: ``EINVAL`` unless ``rdma_is_port_valid``."""
        if not 1 <= port_num <= len(self.ports):
            raise kerr(EINVAL)
        return self.ports[port_num - 1]

    @property
    def uverbs_name(self) -> str:
        return f"uverbs{self.index}"

    @property
    def uverbs_devt(self) -> int:
        """The ``dev_t`` of ``/dev/infiniband/uverbsN``."""
        return os.makedev(IB_UVERBS_MAJOR, IB_UVERBS_BASE_MINOR + self.index)

    def __repr__(self) -> str:
        return f"<IbDevice {self.name} driver_id={self.driver_id} uverbs{self.index}>"


class RdmaContext(TaskContext, Protocol):
    """The kernel context as the RDMA core sees it: tasks, plus the topology (the
    number of CPUs a DMA handle may name)."""

    @property
    def topology(self) -> Topology:
        """The machine booted (deeply frozen)."""


class IbCore(Subsystem):
    """The RDMA subsystem of one kernel: registered devices and uverbs minors."""

    name = "rdma"

    def __init__(self, kernel: RdmaContext) -> None:
        super().__init__(kernel)
        self.kernel: RdmaContext = kernel
        self.devices: dict[str, IbDevice] = {}
        self.minors: set[int] = set()
        self.ready = False


def ib_core(kernel: RdmaContext) -> IbCore:
    """The RDMA subsystem of ``kernel`` (made on first use)."""
    return kernel.subsys(IbCore)


def ib_device_by_name(kernel: RdmaContext, name: str) -> IbDevice:
    """The registered device called ``name`` (``ib_device_get_by_name``); ``KeyError``."""
    return ib_core(kernel).devices[name]


# -- sysfs ------------------------------------------------------------------------------------
def _guid(value: int) -> str:
    return ":".join(f"{(value >> s) & 0xFFFF:04x}" for s in (48, 32, 16, 0))


def _const(text: str) -> Callable[[], str]:
    return lambda: text


def _no_gid() -> str:
    """A GID attribute of an empty table entry (or of a GID without a net device)."""
    raise kerr(EINVAL)


def _setup_core(kernel: RdmaContext, core: IbCore) -> None:
    """What loading ib_core + ib_uverbs makes: the classes, ``/dev/infiniband``, the
    ``[infinibandevent]`` placeholder (an empty pipe: ``poll`` sees no events)."""
    vfs = kernel.subsys(Vfs)
    vfs.mkdir("/sys/class/infiniband", owned=True)
    vfs.mkdir("/sys/class/infiniband_verbs", owned=True)
    vfs.attr("/sys/class/infiniband_verbs/abi_version", _const(f"{IB_USER_VERBS_ABI_VERSION}\n"))
    vfs.mkdir("/dev/infiniband", owned=True)
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        kernel.subsys(Placeholders).add("[infinibandevent]", r, w)
    except ValueError:
        REAL.close(r)
        REAL.close(w)
    from .netlink import rdma_nl_init

    rdma_nl_init(kernel)  # NETLINK_RDMA and nldev
    core.ready = True


def _device_dirs(dev: IbDevice) -> tuple[str, str]:
    """(ibdev dir, uverbs dir) under ``/sys/devices``."""
    if dev.parent is not None:
        base = device_sysfs_dir(dev.parent)
        return f"{base}/infiniband/{dev.name}", f"{base}/infiniband_verbs/{dev.uverbs_name}"
    return (
        f"/sys/devices/virtual/infiniband/{dev.name}",
        f"/sys/devices/virtual/infiniband_verbs/{dev.uverbs_name}",
    )


def _rel(target: str, link_dir: str) -> str:
    return os.path.relpath(target, link_dir)


def _populate_sysfs(kernel: RdmaContext, dev: IbDevice) -> None:
    vfs = kernel.subsys(Vfs)
    ibdir, uvdir = _device_dirs(dev)
    if dev.parent is None:
        vfs.mkdir("/sys/devices/virtual/infiniband", owned=True)
        vfs.mkdir("/sys/devices/virtual/infiniband_verbs", owned=True)
    # the directories' contents are made when first looked into (boot stays cheap)
    vfs.mkdir(ibdir, populate=lambda: _fill_ib_dir(kernel, dev, ibdir))
    vfs.symlink(_rel(ibdir, "/sys/class/infiniband"), f"/sys/class/infiniband/{dev.name}")
    minor = IB_UVERBS_BASE_MINOR + dev.index
    vfs.mkdir(uvdir, populate=lambda: _fill_uverbs_dir(kernel, dev, uvdir, minor))
    vfs.symlink(
        _rel(uvdir, "/sys/class/infiniband_verbs"),
        f"/sys/class/infiniband_verbs/{dev.uverbs_name}",
    )


def _fill_ib_dir(kernel: RdmaContext, dev: IbDevice, ibdir: str) -> None:
    vfs = kernel.subsys(Vfs)
    vfs.mkdir(f"{ibdir}/power")
    sys_guid = dev.attrs.sys_image_guid
    attrs = {
        "fw_ver": f"{dev.fw_ver}\n",
        "node_desc": f"{dev.node_desc}\n",
        "node_guid": f"{_guid(dev.node_guid)}\n",
        "node_type": f"{RDMA_NODE_IB_CA}: CA\n",
        "sys_image_guid": f"{_guid(dev.node_guid if sys_guid is None else sys_guid)}\n",
        "uevent": f"NAME={dev.name}\n",
        **dict(dev.sysfs_attrs),
    }
    if dev.netdev is not None:
        attrs["parent"] = f"{dev.netdev}\n"
    for name, text in attrs.items():
        vfs.attr(f"{ibdir}/{name}", _const(text))
    vfs.symlink(_rel("/sys/class/infiniband", ibdir), f"{ibdir}/subsystem")
    if dev.parent is not None:
        pdir = device_sysfs_dir(dev.parent)
        vfs.symlink(_rel(pdir, ibdir), f"{ibdir}/device")
    for p, port in enumerate(dev.ports, start=1):
        pd = f"{ibdir}/ports/{p}"
        vfs.mkdir(pd)
        port_attrs = {
            "state": f"{port.state}: {_PORT_STATES.get(port.state, 'UNKNOWN')}\n",
            "phys_state": f"{port.phys_state}: {_PHYS_STATES.get(port.phys_state, '<unknown>')}\n",
            "link_layer": (
                "Ethernet\n" if port.link_layer == IB_LINK_LAYER_ETHERNET else "InfiniBand\n"
            ),
            "lid": f"0x{port.lid:x}\n",
            "sm_lid": f"0x{port.sm_lid:x}\n",
            "sm_sl": f"{port.sm_sl}\n",
            "lid_mask_count": f"{port.lmc}\n",
            "cap_mask": f"0x{port.port_cap_flags:08x}\n",
            "rate": f"{port.rate()}\n",
        }
        for name, text in port_attrs.items():
            vfs.attr(f"{pd}/{name}", _const(text))
        for sub in ("counters", "hw_counters", "gid_attrs/ndevs", "gid_attrs/types", "pkeys"):
            vfs.mkdir(f"{pd}/{sub}")
        vfs.mkdir(f"{pd}/gids")
        # every entry of the GID table has its files; an empty one reads as the zero
        # GID, and its attributes fail (rdma_get_gid_attr: EINVAL)
        for i in range(max(port.gid_tbl_len, len(port.gids))):
            gid = port.gids[i] if i < len(port.gids) else bytes(16)
            text = ":".join(gid[j : j + 2].hex() for j in range(0, 16, 2))
            vfs.attr(f"{pd}/gids/{i}", _const(text + "\n"))
            used = i < len(port.gids)
            vfs.attr(f"{pd}/gid_attrs/types/{i}", _const("RoCE v2\n") if used else _no_gid)
            if used and dev.netdev is not None:
                vfs.attr(f"{pd}/gid_attrs/ndevs/{i}", _const(f"{dev.netdev}\n"))
            else:
                vfs.attr(f"{pd}/gid_attrs/ndevs/{i}", _no_gid)
        for i in range(port.pkey_tbl_len):
            vfs.attr(f"{pd}/pkeys/{i}", _const("0xffff\n"))


def _fill_uverbs_dir(kernel: RdmaContext, dev: IbDevice, uvdir: str, minor: int) -> None:
    vfs = kernel.subsys(Vfs)
    vfs.mkdir(f"{uvdir}/power")
    uv_attrs = {
        "abi_version": f"{dev.ops.uverbs_abi_ver}\n",
        "dev": f"{IB_UVERBS_MAJOR}:{minor}\n",
        "ibdev": f"{dev.name}\n",
        "uevent": (
            f"MAJOR={IB_UVERBS_MAJOR}\nMINOR={minor}\nDEVNAME=infiniband/{dev.uverbs_name}\n"
        ),
    }
    for name, text in uv_attrs.items():
        vfs.attr(f"{uvdir}/{name}", _const(text))
    vfs.symlink(_rel("/sys/class/infiniband_verbs", uvdir), f"{uvdir}/subsystem")
    if dev.parent is not None:
        pdir = device_sysfs_dir(dev.parent)
        vfs.symlink(_rel(pdir, uvdir), f"{uvdir}/device")


def _remove_sysfs(kernel: RdmaContext, dev: IbDevice) -> None:
    vfs = kernel.subsys(Vfs)
    ibdir, uvdir = _device_dirs(dev)
    for path in (
        f"/sys/class/infiniband/{dev.name}",
        f"/sys/class/infiniband_verbs/{dev.uverbs_name}",
        ibdir,
        uvdir,
    ):
        vfs.unlink(path)


# -- registration -----------------------------------------------------------------------------
def ib_register_device(kernel: RdmaContext, dev: IbDevice) -> None:
    """``ib_register_device`` + the uverbs client's ``add_one``: make ``dev`` usable.

    ``EEXIST`` for a name in use; ``ValueError`` for an ops table without ``dereg_mr``
    or with only one of ``alloc_dmah``/``dealloc_dmah``.
    """
    from .uverbs import UverbsFops, build_uapi

    ops = dev.ops
    if ops.dereg_mr is None:
        raise ValueError(f"{dev.name}: an ib_device_ops without dereg_mr")
    if (ops.alloc_dmah is None) != (ops.dealloc_dmah is None):
        raise ValueError(f"{dev.name}: alloc_dmah and dealloc_dmah come together")
    core = ib_core(kernel)
    if dev.name in core.devices:
        raise kerr(EEXIST)
    if not core.ready:
        _setup_core(kernel, core)
    index = 0
    while index in core.minors:
        index += 1
    dev.kernel = kernel
    dev.index = index
    dev.uapi = build_uapi(dev)
    core.minors.add(index)
    core.devices[dev.name] = dev
    rdev = os.makedev(IB_UVERBS_MAJOR, IB_UVERBS_BASE_MINOR + index)
    kernel.subsys(Vfs).register_chrdev(
        f"/dev/infiniband/{dev.uverbs_name}", UverbsFops(dev), rdev, 0o666
    )
    _populate_sysfs(kernel, dev)
    dev.registered = True
    parent = dev.parent.bdf if dev.parent is not None else dev.netdev
    trace_rdma_register(kernel.tracer, dev.name, dev.driver_id, dev.uverbs_name, parent)


def ib_unregister_device(dev: IbDevice) -> None:
    """``ib_unregister_device``: gone from ``/dev`` and sysfs.

    Files still open on the device (a driver unbound from sysfs while a program uses
    it) are disassociated, as ``ib_uverbs_remove_one`` does for a driver with
    ``disassociate_ucontext`` (mlx5): their objects are destroyed now and every later
    command is ``EIO``; the program closes them when it likes.  [I] A driver without it
    (rxe) would make the unregistration wait for the files to close; here it
    disassociates too.
    """
    if not dev.registered:
        return
    kernel = dev.kernel
    core = ib_core(kernel)
    for ufile in list(dev.files):
        if not ufile.closed:
            ufile.disassociate()
    kernel.subsys(Vfs).unlink(f"/dev/infiniband/{dev.uverbs_name}")
    _remove_sysfs(kernel, dev)
    core.devices.pop(dev.name, None)
    core.minors.discard(dev.index)
    dev.registered = False
    trace_rdma_unregister(kernel.tracer, dev.name)
