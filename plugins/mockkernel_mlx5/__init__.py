"""mlx5: ConnectX functions (``mlx5_core`` + ``mlx5_ib``) as RDMA devices.

The PCI driver ``"mlx5_core"``: each topology function with ``driver = "mlx5_core"``
is probed in topology order and becomes ``mlx5_<n>`` (driver id ``RDMA_DRIVER_MLX5``,
``/dev/infiniband/uverbsN``, sysfs with a ``device`` link to the function).  At probe
the steering-tag library (:mod:`.st`) enables TPH in device-specific mode when the
function has a TPH requester; at remove it is disabled again.

What the RDMA device does is in :mod:`.ib`: PDs, MRs over user memory, dynamic and
data-direct dma-buf MRs, DMA handles, TPH on the mkeys, and the device model of an
incoming RDMA WRITE (DMA through ``pci_fabric(kernel)`` with the mkey's PH and ST);
user CQs and QPs (``mlx5-abi.h`` driver data) and the RoCE responder that carries an
RDMA WRITE from the kernel's Ethernet segment into an mkey are in :mod:`.qp`.

Topology options (``[devices.options]``), all optional:

``odp`` (default ``true``)
    On-demand paging support; without it ``ON_DEMAND`` MRs and dynamic dma-buf MRs are
    ``EOPNOTSUPP``, as on a device without ODP.
``data_direct`` (default ``true``)
    A data-direct function is present: ``MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT``
    MRs are possible (else ``EINVAL``).
``mkey_pcie_tph`` (default ``true``)
    The ``mkey_pcie_tph`` capability: without it there is no ST support at all.
``ib_name``
    The ibdev name (default ``mlx5_<n>``, n in probe order).

Bundled, loaded through the ``mockkernel`` entry-point group; it uses only
:mod:`mockkernel.driver` and :mod:`mockkernel.uapi`.
"""

from __future__ import annotations

from typing import Any

import mockkernel
from mockkernel.driver import (
    IB_LINK_LAYER_ETHERNET,
    PAGE_SIZE,
    DriverRegistry,
    IbDevice,
    IbDeviceAttr,
    IbPortAttr,
    Kernel,
    PciDev,
    TracePoint,
    dma_set_mask_and_coherent,
    ib_register_device,
    ib_unregister_device,
    num_online_cpus,
    pci_disable_device,
    pci_enable_device,
    pci_set_drvdata,
    pcie_disable_tph,
)
from mockkernel.uapi.rdma.ib_user_ioctl_verbs import RDMA_DRIVER_MLX5
from mockkernel.uapi.rdma.ib_user_verbs import (
    IB_UVERBS_ODP_SUPPORT,
    IB_UVERBS_ODP_SUPPORT_READ,
    IB_UVERBS_ODP_SUPPORT_RECV,
    IB_UVERBS_ODP_SUPPORT_SEND,
    IB_UVERBS_ODP_SUPPORT_SRQ_RECV,
    IB_UVERBS_ODP_SUPPORT_WRITE,
)

from .ib import MLX5_IB_NO_PH, Mlx5IbOps, Mlx5Mr
from .st import Mlx5St
from .ucontext import UarTable

__all__ = ["MLX5_IB_NO_PH", "Mlx5Core", "Mlx5Dev", "Mlx5IbOps", "Mlx5Mr", "Mlx5St"]

trace_mlx5_probe = TracePoint("mlx5.probe", "bdf", "ibdev", "st", "req_type")

# IB_UVERBS_DEVICE_*: BAD_PKEY_CNTR, BAD_QKEY_CNTR, CHANGE_PHY_PORT, PORT_ACTIVE_EVENT,
# SYS_IMAGE_GUID, RC_RNR_NAK_GEN, MEM_WINDOW, UD_IP_CSUM, XRC, MEM_MGT_EXTENSIONS,
# MEM_WINDOW_TYPE_2B, RC_IP_CSUM, RAW_IP_CSUM, MANAGED_FLOW_STEERING, RAW_SCATTER_FCS,
# PCI_WRITE_END_PADDING
_MLX5_DEVICE_CAP_FLAGS = (
    (1 << 1)
    | (1 << 2)
    | (1 << 5)
    | (1 << 10)
    | (1 << 11)
    | (1 << 12)
    | (1 << 17)
    | (1 << 18)
    | (1 << 20)
    | (1 << 21)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26)
    | (1 << 29)
    | (1 << 34)
    | (1 << 36)
)


def _opt(options: Any, key: str, default: Any) -> Any:
    value = options.get(key, default) if options else default
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ValueError(f"mlx5 option {key!r} must be a boolean, not {value!r}")
    return value


def _device_attr(pdev: PciDev, odp: bool) -> IbDeviceAttr:
    """``mlx5_ib_query_device`` of a ConnectX-7 (firmware 28.39.1002)."""
    odp_caps = (
        IB_UVERBS_ODP_SUPPORT_SEND
        | IB_UVERBS_ODP_SUPPORT_RECV
        | IB_UVERBS_ODP_SUPPORT_WRITE
        | IB_UVERBS_ODP_SUPPORT_READ
        | IB_UVERBS_ODP_SUPPORT_SRQ_RECV
    )
    return IbDeviceAttr(
        fw_ver=(28 << 32) | (39 << 16) | 1002,
        max_mr_size=(1 << 64) - 1,
        page_size_cap=0xFFFF_F000,
        vendor_id=0x02C9,
        vendor_part_id=pdev.device,
        hw_ver=pdev.revision,
        max_qp=1 << 17,
        max_qp_wr=1 << 15,
        device_cap_flags=_MLX5_DEVICE_CAP_FLAGS,
        max_send_sge=30,
        max_recv_sge=32,
        max_sge_rd=30,
        max_cq=1 << 24,
        max_cqe=(1 << 22) - 1,
        max_mr=1 << 24,
        max_pd=1 << 24,
        max_qp_rd_atom=16,
        max_res_rd_atom=1 << 21,
        max_qp_init_rd_atom=16,
        atomic_cap=1,
        max_mw=1 << 24,
        max_mcast_grp=1 << 21,
        max_mcast_qp_attach=240,
        max_total_mcast_qp_attach=503316480,
        max_ah=0x7FFFFFFF,
        max_srq=1 << 23,
        max_srq_wr=1 << 15,
        max_srq_sge=31,
        max_pkeys=1,
        local_ca_ack_delay=16,
        on_demand_paging=odp,
        odp_general_caps=IB_UVERBS_ODP_SUPPORT if odp else 0,
        odp_rc_caps=odp_caps if odp else 0,
        odp_ud_caps=IB_UVERBS_ODP_SUPPORT_SEND if odp else 0,
        timestamp_mask=(1 << 63) - 1,
        hca_core_clock=1_000_000,
        max_dm_size=128 * 1024,
    )


class Mlx5Dev:
    """One probed function: ``struct mlx5_core_dev`` + ``struct mlx5_ib_dev``."""

    def __init__(self, kernel: Kernel, pdev: PciDev, name: str) -> None:
        options = pdev.options
        self.kernel = kernel
        self.pdev = pdev
        self.odp: bool = _opt(options, "odp", True)
        self.data_direct: bool = _opt(options, "data_direct", True)
        mkey_pcie_tph: bool = _opt(options, "mkey_pcie_tph", True)
        self.st = Mlx5St.create(pdev, mkey_pcie_tph)
        self.ops = Mlx5IbOps(self)
        #: the UAR pages of BAR 0 handed to user contexts
        self.uars = UarTable(pdev.bars[0].size // PAGE_SIZE if 0 in pdev.bars else 0)
        mac = bytes([0x0C, 0x42, 0xA1, pdev.busnr, pdev.devfn, 0x00])
        eui = bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])
        gid = bytes([0xFE, 0x80]) + bytes(6) + eui
        port = IbPortAttr(
            active_mtu=5,
            active_width=2,  # 4X
            active_speed=64,  # HDR: 200 Gb/s
            link_layer=IB_LINK_LAYER_ETHERNET,
            gid_tbl_len=255,
            port_cap_flags=0x0401_0000,
            max_msg_sz=0x4000_0000,
            gids=(gid,),
        )
        self.ibdev = IbDevice(
            name=name,
            driver_id=RDMA_DRIVER_MLX5,
            ops=self.ops,
            node_guid=int.from_bytes(eui, "big"),
            attrs=_device_attr(pdev, self.odp),
            ports=(port,),
            num_comp_vectors=num_online_cpus(kernel),
            node_desc=f"{name} HCA",
            fw_ver="28.39.1002",
            parent=pdev,
            dma_device=pdev,
            use_cq_dim=True,  # mlx5_ib_stage_caps_init
            sysfs_attrs={
                "hca_type": f"MT{pdev.device}\n",
                "hw_rev": f"0x{pdev.revision:x}\n",
                "board_id": "MT_0000000838\n",
            },
        )

    def __repr__(self) -> str:
        return f"<Mlx5Dev {self.pdev.bdf} {self.ibdev.name} st={self.st!r}>"


class Mlx5Core:
    """The PCI driver ``mlx5_core`` of one kernel."""

    name = "mlx5_core"

    def __init__(self) -> None:
        self.devices: dict[str, Mlx5Dev] = {}

    def probe(self, kernel: Kernel, pdev: PciDev) -> None:
        # ib_device_set_name("mlx5_%d"): the lowest index no registered device has
        used = {m.ibdev.name for m in self.devices.values()}
        index = next(i for i in range(len(used) + 1) if f"mlx5_{i}" not in used)
        name = _opt(pdev.options, "ib_name", f"mlx5_{index}")
        pci_enable_device(pdev)  # mlx5_pci_enable_device
        try:
            dma_set_mask_and_coherent(pdev, 64)  # set_dma_caps
            mdev = Mlx5Dev(kernel, pdev, name)
        except BaseException:
            pci_disable_device(pdev)
            raise
        try:
            ib_register_device(kernel, mdev.ibdev)
        except BaseException:
            pcie_disable_tph(pdev)
            pci_disable_device(pdev)
            raise
        self.devices[pdev.bdf] = mdev
        pci_set_drvdata(pdev, mdev)
        st = mdev.st
        st_shown = None if st is None else ("direct" if st.direct_mode else st.size)
        trace_mlx5_probe(kernel.tracer, pdev.bdf, name, st_shown, pdev.tph_req_type)

    def remove(self, kernel: Kernel, pdev: PciDev) -> None:
        mdev = self.devices.pop(pdev.bdf, None)
        if mdev is None:
            return
        pci_set_drvdata(pdev, None)
        ib_unregister_device(mdev.ibdev)
        pcie_disable_tph(pdev)
        pci_disable_device(pdev)


def mlx5_dev(kernel: Kernel, ibdev_name: str) -> Mlx5Dev:
    """The :class:`Mlx5Dev` behind the registered device ``ibdev_name`` (tests, tools)."""
    from mockkernel.driver import ib_device_by_name

    ops = ib_device_by_name(kernel, ibdev_name).ops
    if not isinstance(ops, Mlx5IbOps):
        raise KeyError(f"{ibdev_name} is not an mlx5 device")
    return ops.mdev


@mockkernel.hookimpl
def mockkernel_register(registry: DriverRegistry) -> None:
    registry.add_pci_driver(Mlx5Core())


__all__ += ["mlx5_dev"]
