"""nldev: the RDMA device interface over ``NETLINK_RDMA`` (``core/nldev.c``).

What rdma-core's libibverbs (``ibdev_nl.c``: device list, the uverbs char device,
copy-on-fork) and iproute2's ``rdma`` tool (``rdma dev``, ``rdma link``, ``rdma sys``)
ask.  Modelled ops:

* ``RDMA_NLDEV_CMD_GET`` -- do (``DEV_INDEX``) and dump: ``fill_dev_info``;
* ``RDMA_NLDEV_CMD_PORT_GET`` -- do (``DEV_INDEX`` + ``PORT_INDEX``; the reply's type
  is ``CMD_GET``, as Linux puts it) and dump (``DEV_INDEX``: every port):
  ``fill_port_info``;
* ``RDMA_NLDEV_CMD_GET_CHARDEV`` -- do: the ``uverbs`` client's char device of a device
  (``DEV_INDEX`` + ``CHARDEV_TYPE`` "uverbs"): ``UVERBS_DRIVER_ID``, ``CHARDEV``
  (``huge_encode_dev``), ``CHARDEV_ABI``, ``CHARDEV_NAME``;
* ``RDMA_NLDEV_CMD_SYS_GET`` -- do: netns mode (shared), privileged QKEY mode (off),
  monitor mode, copy-on-fork (both 1).

Requests are parsed liberally (``NL_VALIDATE_LIBERAL``) against ``nldev_policy``; a
parse failure or a missing attribute is ``EINVAL`` (the parse's extended ack stays),
except ``SYS_GET``, which returns the parse's own errno.  An unknown device index or an
invalid port is ``EINVAL``; a chardev type no client has is ``EOPNOTSUPP``.  The other
ops of Linux's table (``SET``, links, resources, counters, sub-devices, FRMR pools) are
there with their do/dump shape and answer ``EOPNOTSUPP`` (:mod:`.netlink`).

The mock has one network namespace: every device is visible from every socket.
"""

from __future__ import annotations

import os
import struct
from errno import EINVAL, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..net import net_state
from ..net.netlink import (
    AttrSet,
    Msg,
    Nla,
    NlaType,
    NlError,
    Policy,
    nla_put,
    nla_put_string,
    nla_put_u32,
    nla_put_u64,
    parse_attrs,
)
from ..trace import TracePoint
from ..uapi.linux.netlink import NLMSG_HDRLEN
from ..uapi.rdma import rdma_netlink as R
from .device import IB_LINK_LAYER_INFINIBAND, RDMA_NODE_IB_CA, IbDevice, ib_core
from .netlink import RDMA_NL_ADMIN_PERM, RdmaNlCbs

if TYPE_CHECKING:
    from .device import RdmaContext

__all__ = ["NLDEV_POLICY", "huge_encode_dev", "nldev_cb_table"]

#: (``rdma_nl.not_modelled`` of :mod:`.netlink` without its ``side``)
trace_rdma_nl_client_not_modelled = TracePoint("rdma_nl.not_modelled", "client", "op")

#: ``IB_DEVICE_NAME_MAX``, ``IFNAMSIZ`` and the string lengths of ``rdma_netlink.h``
IB_DEVICE_NAME_MAX = 64
IFNAMSIZ = 16
RDMA_NLDEV_ATTR_EMPTY_STRING = 1
RDMA_NLDEV_ATTR_ENTRY_STRLEN = 16
RDMA_NLDEV_ATTR_CHARDEV_TYPE_SIZE = 32
_SOCKADDR_STORAGE = 128

_U8, _U32, _U64, _NEST = Nla(NlaType.U8), Nla(NlaType.U32), Nla(NlaType.U64), Nla(NlaType.NESTED)
_S32, _S64 = Nla(NlaType.S32), Nla(NlaType.S64)


def _nul(length: int = 0) -> Nla:
    return Nla(NlaType.NUL_STRING, len=length)


_EMPTY = _nul(RDMA_NLDEV_ATTR_EMPTY_STRING)

#: ``nldev_policy`` of Linux 7.2 (entries absent here are ``NLA_UNSPEC``)
NLDEV_POLICY = Policy(
    R.RDMA_NLDEV_ATTR_MAX - 1,
    {
        R.RDMA_NLDEV_ATTR_CHARDEV: _U64,
        R.RDMA_NLDEV_ATTR_CHARDEV_ABI: _U64,
        R.RDMA_NLDEV_ATTR_CHARDEV_NAME: _EMPTY,
        R.RDMA_NLDEV_ATTR_CHARDEV_TYPE: _nul(RDMA_NLDEV_ATTR_CHARDEV_TYPE_SIZE),
        R.RDMA_NLDEV_ATTR_DEV_DIM: _U8,
        R.RDMA_NLDEV_ATTR_DEV_INDEX: _U32,
        R.RDMA_NLDEV_ATTR_DEV_NAME: _nul(IB_DEVICE_NAME_MAX),
        R.RDMA_NLDEV_ATTR_DEV_NODE_TYPE: _U8,
        R.RDMA_NLDEV_ATTR_DEV_PROTOCOL: _EMPTY,
        R.RDMA_NLDEV_ATTR_DRIVER: _NEST,
        R.RDMA_NLDEV_ATTR_DRIVER_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_DRIVER_PRINT_TYPE: _U8,
        R.RDMA_NLDEV_ATTR_DRIVER_STRING: _EMPTY,
        R.RDMA_NLDEV_ATTR_DRIVER_S32: _S32,
        R.RDMA_NLDEV_ATTR_DRIVER_S64: _S64,
        R.RDMA_NLDEV_ATTR_DRIVER_U32: _U32,
        R.RDMA_NLDEV_ATTR_DRIVER_U64: _U64,
        R.RDMA_NLDEV_ATTR_FW_VERSION: _EMPTY,
        R.RDMA_NLDEV_ATTR_LID: _U32,
        R.RDMA_NLDEV_ATTR_LINK_TYPE: _nul(IFNAMSIZ),
        R.RDMA_NLDEV_ATTR_LMC: _U8,
        R.RDMA_NLDEV_ATTR_NDEV_INDEX: _U32,
        R.RDMA_NLDEV_ATTR_NDEV_NAME: _nul(IFNAMSIZ),
        R.RDMA_NLDEV_ATTR_NODE_GUID: _U64,
        R.RDMA_NLDEV_ATTR_PORT_INDEX: _U32,
        R.RDMA_NLDEV_ATTR_PORT_PHYS_STATE: _U8,
        R.RDMA_NLDEV_ATTR_PORT_STATE: _U8,
        R.RDMA_NLDEV_ATTR_RES_CM_ID: _NEST,
        R.RDMA_NLDEV_ATTR_RES_CM_IDN: _U32,
        R.RDMA_NLDEV_ATTR_RES_CM_ID_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_CQ: _NEST,
        R.RDMA_NLDEV_ATTR_RES_CQE: _U32,
        R.RDMA_NLDEV_ATTR_RES_CQN: _U32,
        R.RDMA_NLDEV_ATTR_RES_CQ_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_CTX: _NEST,
        R.RDMA_NLDEV_ATTR_RES_CTXN: _U32,
        R.RDMA_NLDEV_ATTR_RES_CTX_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_DST_ADDR: Nla(NlaType.UNSPEC, len=_SOCKADDR_STORAGE),
        R.RDMA_NLDEV_ATTR_RES_IOVA: _U64,
        R.RDMA_NLDEV_ATTR_RES_KERN_NAME: _EMPTY,
        R.RDMA_NLDEV_ATTR_RES_LKEY: _U32,
        R.RDMA_NLDEV_ATTR_RES_LOCAL_DMA_LKEY: _U32,
        R.RDMA_NLDEV_ATTR_RES_LQPN: _U32,
        R.RDMA_NLDEV_ATTR_RES_MR: _NEST,
        R.RDMA_NLDEV_ATTR_RES_MRLEN: _U64,
        R.RDMA_NLDEV_ATTR_RES_MRN: _U32,
        R.RDMA_NLDEV_ATTR_RES_MR_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_PATH_MIG_STATE: _U8,
        R.RDMA_NLDEV_ATTR_RES_PD: _NEST,
        R.RDMA_NLDEV_ATTR_RES_PDN: _U32,
        R.RDMA_NLDEV_ATTR_RES_PD_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_PID: _U32,
        R.RDMA_NLDEV_ATTR_RES_POLL_CTX: _U8,
        R.RDMA_NLDEV_ATTR_RES_PS: _U32,
        R.RDMA_NLDEV_ATTR_RES_QP: _NEST,
        R.RDMA_NLDEV_ATTR_RES_QP_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_RAW: Nla(NlaType.BINARY),
        R.RDMA_NLDEV_ATTR_RES_RKEY: _U32,
        R.RDMA_NLDEV_ATTR_RES_RQPN: _U32,
        R.RDMA_NLDEV_ATTR_RES_RQ_PSN: _U32,
        R.RDMA_NLDEV_ATTR_RES_SQ_PSN: _U32,
        R.RDMA_NLDEV_ATTR_RES_SRC_ADDR: Nla(NlaType.UNSPEC, len=_SOCKADDR_STORAGE),
        R.RDMA_NLDEV_ATTR_RES_STATE: _U8,
        R.RDMA_NLDEV_ATTR_RES_SUMMARY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_CURR: _U64,
        R.RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_NAME: _EMPTY,
        R.RDMA_NLDEV_ATTR_RES_TYPE: _U8,
        R.RDMA_NLDEV_ATTR_RES_SUBTYPE: _EMPTY,
        R.RDMA_NLDEV_ATTR_RES_UNSAFE_GLOBAL_RKEY: _U32,
        R.RDMA_NLDEV_ATTR_RES_USECNT: _U64,
        R.RDMA_NLDEV_ATTR_RES_SRQ: _NEST,
        R.RDMA_NLDEV_ATTR_RES_SRQN: _U32,
        R.RDMA_NLDEV_ATTR_RES_SRQ_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_MIN_RANGE: _U32,
        R.RDMA_NLDEV_ATTR_MAX_RANGE: _U32,
        R.RDMA_NLDEV_ATTR_SM_LID: _U32,
        R.RDMA_NLDEV_ATTR_SUBNET_PREFIX: _U64,
        R.RDMA_NLDEV_ATTR_STAT_AUTO_MODE_MASK: _U32,
        R.RDMA_NLDEV_ATTR_STAT_MODE: _U32,
        R.RDMA_NLDEV_ATTR_STAT_RES: _U32,
        R.RDMA_NLDEV_ATTR_STAT_COUNTER: _NEST,
        R.RDMA_NLDEV_ATTR_STAT_COUNTER_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_STAT_COUNTER_ID: _U32,
        R.RDMA_NLDEV_ATTR_STAT_HWCOUNTERS: _NEST,
        R.RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME: _nul(),
        R.RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_VALUE: _U64,
        R.RDMA_NLDEV_ATTR_SYS_IMAGE_GUID: _U64,
        R.RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID: _U32,
        R.RDMA_NLDEV_NET_NS_FD: _U32,
        R.RDMA_NLDEV_SYS_ATTR_NETNS_MODE: _U8,
        R.RDMA_NLDEV_SYS_ATTR_COPY_ON_FORK: _U8,
        R.RDMA_NLDEV_ATTR_STAT_HWCOUNTER_INDEX: _U32,
        R.RDMA_NLDEV_ATTR_STAT_HWCOUNTER_DYNAMIC: _U8,
        R.RDMA_NLDEV_SYS_ATTR_PRIVILEGED_QKEY_MODE: _U8,
        R.RDMA_NLDEV_ATTR_DRIVER_DETAILS: _U8,
        R.RDMA_NLDEV_ATTR_DEV_TYPE: _U8,
        R.RDMA_NLDEV_ATTR_PARENT_NAME: _nul(),
        R.RDMA_NLDEV_ATTR_NAME_ASSIGN_TYPE: _U8,
        R.RDMA_NLDEV_ATTR_EVENT_TYPE: _U8,
        R.RDMA_NLDEV_ATTR_STAT_OPCOUNTER_ENABLED: _U8,
        R.RDMA_NLDEV_ATTR_FRMR_POOLS: _NEST,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_ENTRY: _NEST,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_KEY: _NEST,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_KEY_ATS: _U8,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_KEY_ACCESS_FLAGS: _U32,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_KEY_VENDOR_KEY: _U64,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_KEY_NUM_DMA_BLOCKS: _U64,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_QUEUE_HANDLES: _U32,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_MAX_IN_USE: _U64,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_IN_USE: _U64,
        R.RDMA_NLDEV_ATTR_FRMR_POOLS_AGING_PERIOD: _U32,
        R.RDMA_NLDEV_ATTR_FRMR_POOL_PINNED_HANDLES: _U32,
    },
)


#: ib clients with char devices in Linux that the mock does not have (``GET_CHARDEV``
#: answers as if their module could not be loaded, with a trace event)
_CLIENTS_NOT_MODELLED = frozenset({"umad", "issm", "rdma_cm"})


def huge_encode_dev(dev: int) -> int:
    """``huge_encode_dev``/``new_encode_dev`` of a ``dev_t`` (what ``CHARDEV`` carries;
    rdma-core decodes it back with ``makedev``)."""
    major, minor = os.major(dev), os.minor(dev)
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def _parse(msg: Msg) -> AttrSet:
    """``__nlmsg_parse(nlh, 0, tb, RDMA_NLDEV_ATTR_MAX - 1, nldev_policy,
    NL_VALIDATE_LIBERAL, extack)``: raises the parse's ``NlError``."""
    attrs = parse_attrs(msg.data[NLMSG_HDRLEN:], NLMSG_HDRLEN, NLDEV_POLICY, strict=False)
    msg.extack_msg = attrs.warning
    return attrs


def _einval(e: NlError) -> NlError:
    """``if (err || ...) return -EINVAL``: the parse's extended ack, Linux's errno."""
    return NlError(EINVAL, e.msg, bad_attr=e.bad_attr, policy=e.policy)


def _devices(kernel: RdmaContext) -> list[IbDevice]:
    """``ib_enum_all_devs``: the registered devices in index order."""
    return sorted(ib_core(kernel).devices.values(), key=lambda d: d.index)


def _get_by_index(kernel: RdmaContext, index: int) -> IbDevice | None:
    """``ib_device_get_by_index`` (one namespace: every device is visible)."""
    for dev in ib_core(kernel).devices.values():
        if dev.index == index and dev.registered:
            return dev
    return None


def _device(kernel: RdmaContext, attrs: AttrSet) -> IbDevice:
    """The device ``DEV_INDEX`` names: ``EINVAL`` when absent or unknown."""
    if R.RDMA_NLDEV_ATTR_DEV_INDEX not in attrs:
        raise NlError(EINVAL)
    dev = _get_by_index(kernel, attrs.get(R.RDMA_NLDEV_ATTR_DEV_INDEX))
    if dev is None:
        raise NlError(EINVAL)
    return dev


# -- fill ---------------------------------------------------------------------------------
def _put_u8(out: bytearray, atype: int, value: int) -> None:
    nla_put(out, atype, struct.pack("=B", value))


def fill_nldev_handle(out: bytearray, dev: IbDevice) -> None:
    nla_put_u32(out, R.RDMA_NLDEV_ATTR_DEV_INDEX, dev.index)
    nla_put_string(out, R.RDMA_NLDEV_ATTR_DEV_NAME, dev.name)


def _protocol(dev: IbDevice) -> str:
    """``RDMA_NLDEV_ATTR_DEV_PROTOCOL`` from the first port's link layer."""
    return "ib" if dev.ports[0].link_layer == IB_LINK_LAYER_INFINIBAND else "roce"


def fill_dev_info(dev: IbDevice) -> bytes:
    """``fill_dev_info``: the attributes of one device, in Linux's order.

    ``CAP_FLAGS`` is the 64-bit ``device_cap_flags``; ``FW_VERSION`` is absent when the
    device has no firmware string; 64-bit values need no pad attribute on x86-64.
    """
    out = bytearray()
    fill_nldev_handle(out, dev)
    nla_put_u32(out, R.RDMA_NLDEV_ATTR_PORT_INDEX, dev.phys_port_cnt)  # rdma_end_port
    nla_put_u64(out, R.RDMA_NLDEV_ATTR_CAP_FLAGS, dev.attrs.device_cap_flags)
    if dev.fw_ver:
        nla_put_string(out, R.RDMA_NLDEV_ATTR_FW_VERSION, dev.fw_ver)
    nla_put_u64(out, R.RDMA_NLDEV_ATTR_NODE_GUID, dev.node_guid)
    sys_guid = dev.attrs.sys_image_guid
    nla_put_u64(
        out, R.RDMA_NLDEV_ATTR_SYS_IMAGE_GUID, dev.node_guid if sys_guid is None else sys_guid
    )
    _put_u8(out, R.RDMA_NLDEV_ATTR_DEV_NODE_TYPE, RDMA_NODE_IB_CA)
    _put_u8(out, R.RDMA_NLDEV_ATTR_DEV_DIM, int(dev.use_cq_dim))
    _put_u8(out, R.RDMA_NLDEV_ATTR_NAME_ASSIGN_TYPE, dev.name_assign_type)
    nla_put_string(out, R.RDMA_NLDEV_ATTR_DEV_PROTOCOL, _protocol(dev))
    return bytes(out)


def fill_port_info(dev: IbDevice, port: int) -> bytes:
    """``fill_port_info``: an InfiniBand port adds its capability mask (``CapabilityMask``
    and ``CapabilityMask2`` in one u64), subnet prefix (of GID 0), LID, SM LID and LMC;
    every port its state and physical state; a port with a net device in the namespace
    (RoCE: rxe's interface) its ifindex and name."""
    attr = dev.port(port)
    out = bytearray()
    fill_nldev_handle(out, dev)
    nla_put_u32(out, R.RDMA_NLDEV_ATTR_PORT_INDEX, port)
    if attr.link_layer == IB_LINK_LAYER_INFINIBAND:
        cap = attr.port_cap_flags | (attr.port_cap_flags2 << 32)
        nla_put_u64(out, R.RDMA_NLDEV_ATTR_CAP_FLAGS, cap)
        prefix = int.from_bytes(attr.gids[0][:8], "big") if attr.gids else 0
        nla_put_u64(out, R.RDMA_NLDEV_ATTR_SUBNET_PREFIX, prefix)
        nla_put_u32(out, R.RDMA_NLDEV_ATTR_LID, attr.lid)
        nla_put_u32(out, R.RDMA_NLDEV_ATTR_SM_LID, attr.sm_lid)
        _put_u8(out, R.RDMA_NLDEV_ATTR_LMC, attr.lmc)
    _put_u8(out, R.RDMA_NLDEV_ATTR_PORT_STATE, attr.state)
    _put_u8(out, R.RDMA_NLDEV_ATTR_PORT_PHYS_STATE, attr.phys_state)
    ifindex = _netdev_ifindex(dev)
    if ifindex is not None:
        nla_put_u32(out, R.RDMA_NLDEV_ATTR_NDEV_INDEX, ifindex)
        assert dev.netdev is not None
        nla_put_string(out, R.RDMA_NLDEV_ATTR_NDEV_NAME, dev.netdev)
    return bytes(out)


def _netdev_ifindex(dev: IbDevice) -> int | None:
    """``ib_device_get_netdev``: the ifindex of the device's net device, if it exists."""
    if dev.netdev is None:
        return None
    for ifindex, nd in net_state(dev.kernel).netdev.devices.items():
        if nd.name == dev.netdev:
            return ifindex
    return None


# -- ops ----------------------------------------------------------------------------------
def nldev_cb_table(kernel: RdmaContext) -> dict[int, RdmaNlCbs]:
    """``nldev_cb_table`` of ``kernel``: every op of Linux 7.2, the modelled ones with
    their handlers."""

    def get_doit(msg: Msg) -> tuple[int, bytes]:
        try:
            attrs = _parse(msg)
        except NlError as e:
            raise _einval(e) from None
        dev = _device(kernel, attrs)
        return R.RDMA_NLDEV_CMD_GET, fill_dev_info(dev)

    def get_dumpit(msg: Msg) -> list[bytes]:
        return [fill_dev_info(dev) for dev in _devices(kernel)]

    def port_get_doit(msg: Msg) -> tuple[int, bytes]:
        try:
            attrs = _parse(msg)
        except NlError as e:
            raise _einval(e) from None
        if R.RDMA_NLDEV_ATTR_PORT_INDEX not in attrs:
            raise NlError(EINVAL)
        dev = _device(kernel, attrs)
        port = attrs.get(R.RDMA_NLDEV_ATTR_PORT_INDEX)
        if not 1 <= port <= dev.phys_port_cnt:  # rdma_is_port_valid
            raise NlError(EINVAL)
        # nldev_port_get_doit puts its reply with RDMA_NLDEV_CMD_GET
        return R.RDMA_NLDEV_CMD_GET, fill_port_info(dev, port)

    def port_get_dumpit(msg: Msg) -> list[bytes]:
        # parsed without an extack: a failure is NLMSG_DONE's bare EINVAL
        try:
            attrs = parse_attrs(msg.data[NLMSG_HDRLEN:], NLMSG_HDRLEN, NLDEV_POLICY, strict=False)
        except NlError:
            raise NlError(EINVAL) from None
        dev = _device(kernel, attrs)
        return [fill_port_info(dev, p) for p in range(1, dev.phys_port_cnt + 1)]

    def get_chardev(msg: Msg) -> tuple[int, bytes]:
        try:
            attrs = _parse(msg)
        except NlError as e:
            raise _einval(e) from None
        if R.RDMA_NLDEV_ATTR_CHARDEV_TYPE not in attrs:
            raise NlError(EINVAL)
        # nla_strscpy into a RDMA_NLDEV_ATTR_CHARDEV_TYPE_SIZE buffer
        client = str(attrs.get(R.RDMA_NLDEV_ATTR_CHARDEV_TYPE))[
            : RDMA_NLDEV_ATTR_CHARDEV_TYPE_SIZE - 1
        ]
        dev: IbDevice | None = None
        port = -1
        if R.RDMA_NLDEV_ATTR_DEV_INDEX in attrs:
            dev = _device(kernel, attrs)
            if R.RDMA_NLDEV_ATTR_PORT_INDEX in attrs:
                port = attrs.get(R.RDMA_NLDEV_ATTR_PORT_INDEX)
                if not 1 <= port <= dev.phys_port_cnt:
                    raise NlError(EINVAL)
        elif R.RDMA_NLDEV_ATTR_PORT_INDEX in attrs:
            raise NlError(EINVAL)
        # ib_get_client_nl_info: only the uverbs client exists, and it has no global
        # (device-less) info; an unknown client (after request_module) is EOPNOTSUPP
        if client in _CLIENTS_NOT_MODELLED:
            trace_rdma_nl_client_not_modelled(kernel.tracer, "nldev", f"chardev {client}")
            raise NlError(EOPNOTSUPP, f"the {client} client is not modelled")
        if client != "uverbs" or dev is None:
            raise NlError(EOPNOTSUPP)
        # ib_uverbs_get_nl_info: per device, never per port
        if port != -1:
            raise NlError(EINVAL)
        out = bytearray()
        if not dev.ops.uverbs_no_driver_id_binding:
            nla_put_u32(out, R.RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID, dev.driver_id)
        nla_put_u64(out, R.RDMA_NLDEV_ATTR_CHARDEV, huge_encode_dev(dev.uverbs_devt))
        nla_put_u64(out, R.RDMA_NLDEV_ATTR_CHARDEV_ABI, dev.ops.uverbs_abi_ver)
        nla_put_string(out, R.RDMA_NLDEV_ATTR_CHARDEV_NAME, dev.uverbs_name)
        return R.RDMA_NLDEV_CMD_GET_CHARDEV, bytes(out)

    def sys_get_doit(msg: Msg) -> tuple[int, bytes]:
        _parse(msg)  # nldev_sys_get_doit returns the parse's own errno
        out = bytearray()
        _put_u8(out, R.RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 1)  # ib_devices_shared_netns
        _put_u8(out, R.RDMA_NLDEV_SYS_ATTR_PRIVILEGED_QKEY_MODE, 0)
        _put_u8(out, R.RDMA_NLDEV_SYS_ATTR_MONITOR_MODE, 1)
        _put_u8(out, R.RDMA_NLDEV_SYS_ATTR_COPY_ON_FORK, 1)
        return R.RDMA_NLDEV_CMD_SYS_GET, bytes(out)

    def op(name: str, doit: bool = False, dump: bool = False, admin: bool = False) -> RdmaNlCbs:
        return RdmaNlCbs(
            name, has_doit=doit, has_dump=dump, flags=RDMA_NL_ADMIN_PERM if admin else 0
        )

    table = {
        R.RDMA_NLDEV_CMD_GET: RdmaNlCbs(
            "RDMA_NLDEV_CMD_GET", has_doit=True, has_dump=True, doit=get_doit, dump=get_dumpit
        ),
        R.RDMA_NLDEV_CMD_GET_CHARDEV: RdmaNlCbs(
            "RDMA_NLDEV_CMD_GET_CHARDEV", has_doit=True, doit=get_chardev
        ),
        R.RDMA_NLDEV_CMD_PORT_GET: RdmaNlCbs(
            "RDMA_NLDEV_CMD_PORT_GET",
            has_doit=True,
            has_dump=True,
            doit=port_get_doit,
            dump=port_get_dumpit,
        ),
        R.RDMA_NLDEV_CMD_SYS_GET: RdmaNlCbs(
            "RDMA_NLDEV_CMD_SYS_GET", has_doit=True, doit=sys_get_doit
        ),
    }
    for cmd, doit, dump, admin in (
        (R.RDMA_NLDEV_CMD_SET, True, False, True),
        (R.RDMA_NLDEV_CMD_NEWLINK, True, False, True),
        (R.RDMA_NLDEV_CMD_DELLINK, True, False, True),
        (R.RDMA_NLDEV_CMD_RES_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_QP_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_CM_ID_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_CQ_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_MR_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_PD_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_CTX_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_RES_SRQ_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_SYS_SET, True, False, True),
        (R.RDMA_NLDEV_CMD_STAT_SET, True, False, True),
        (R.RDMA_NLDEV_CMD_STAT_GET, True, True, False),
        (R.RDMA_NLDEV_CMD_STAT_DEL, True, False, True),
        (R.RDMA_NLDEV_CMD_RES_QP_GET_RAW, True, True, True),
        (R.RDMA_NLDEV_CMD_RES_CQ_GET_RAW, True, True, True),
        (R.RDMA_NLDEV_CMD_RES_MR_GET_RAW, True, True, True),
        (R.RDMA_NLDEV_CMD_RES_SRQ_GET_RAW, True, True, True),
        (R.RDMA_NLDEV_CMD_STAT_GET_STATUS, True, False, False),
        (R.RDMA_NLDEV_CMD_NEWDEV, True, False, True),
        (R.RDMA_NLDEV_CMD_DELDEV, True, False, True),
        (R.RDMA_NLDEV_CMD_FRMR_POOLS_GET, False, True, False),
        (R.RDMA_NLDEV_CMD_FRMR_POOLS_SET, True, False, True),
    ):
        table[cmd] = op(_CMD_NAMES[cmd], doit, dump, admin)
    return table


_CMD_NAMES = MappingProxyType(
    {
        value: name
        for name, value in vars(R).items()
        if name.startswith("RDMA_NLDEV_CMD_") and isinstance(value, int)
    }
)
