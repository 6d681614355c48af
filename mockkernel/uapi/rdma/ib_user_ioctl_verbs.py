"""rdma/ib_user_ioctl_verbs.h: enums and structs of the uverbs ioctl methods (Linux 7.2 uapi).

The whole header, in header order: access flags (``IB_UVERBS_ACCESS_*``; the
bits from ``IB_UVERBS_ACCESS_OPTIONAL_FIRST`` to ``_LAST`` are "optional" and
are dropped, not rejected, by devices that do not support them), the driver ids
that must match ``ib_uverbs_ioctl_hdr.driver_id`` (``RDMA_DRIVER_MLX5`` = 1,
``RDMA_DRIVER_RXE`` = 14), port/QP/WQ enums and the structs some attributes
carry (``ib_uverbs_query_port_resp_ex`` for ``UVERBS_METHOD_QUERY_PORT``,
``ib_uverbs_gid_entry``, ``ib_uverbs_buffer_desc``).

The 7.2 header has no names for the DMAH TPH memory types (``VM``/``PM``):
the kernel's enum is internal; see ``rdma_core`` for rdma-core's
``IBV_TPH_MEM_TYPE_*``.
"""

import ctypes
from ctypes import c_int32, c_uint8, c_uint16, c_uint32, c_uint64

from mockkernel.uapi.rdma.ib_user_verbs import ib_uverbs_query_port_resp

__all__ = [
    "IB_UVERBS_ACCESS_FLUSH_GLOBAL",
    "IB_UVERBS_ACCESS_FLUSH_PERSISTENT",
    "IB_UVERBS_ACCESS_HUGETLB",
    "IB_UVERBS_ACCESS_LOCAL_WRITE",
    "IB_UVERBS_ACCESS_MW_BIND",
    "IB_UVERBS_ACCESS_ON_DEMAND",
    "IB_UVERBS_ACCESS_OPTIONAL_FIRST",
    "IB_UVERBS_ACCESS_OPTIONAL_LAST",
    "IB_UVERBS_ACCESS_OPTIONAL_RANGE",
    "IB_UVERBS_ACCESS_RELAXED_ORDERING",
    "IB_UVERBS_ACCESS_REMOTE_ATOMIC",
    "IB_UVERBS_ACCESS_REMOTE_READ",
    "IB_UVERBS_ACCESS_REMOTE_WRITE",
    "IB_UVERBS_ACCESS_ZERO_BASED",
    "IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH",
    "IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT",
    "IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE",
    "IB_UVERBS_ADVISE_MR_FLAG_FLUSH",
    "IB_UVERBS_BUFFER_TYPE_DMABUF",
    "IB_UVERBS_BUFFER_TYPE_VA",
    "IB_UVERBS_CORE_SUPPORT_OPTIONAL_MR_ACCESS",
    "IB_UVERBS_CORE_SUPPORT_ROBUST_UDATA",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_DECRYPT",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_ENCRYPT",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_ESN_NEW_WINDOW",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_FULL_OFFLOAD",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_INLINE_CRYPTO",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_TRANSPORT",
    "IB_UVERBS_FLOW_ACTION_ESP_FLAGS_TUNNEL",
    "IB_UVERBS_FLOW_ACTION_ESP_KEYMAT_AES_GCM",
    "IB_UVERBS_FLOW_ACTION_ESP_REPLAY_BMP",
    "IB_UVERBS_FLOW_ACTION_ESP_REPLAY_NONE",
    "IB_UVERBS_FLOW_ACTION_IV_ALGO_SEQ",
    "IB_UVERBS_GID_TYPE_IB",
    "IB_UVERBS_GID_TYPE_ROCE_V1",
    "IB_UVERBS_GID_TYPE_ROCE_V2",
    "IB_UVERBS_PCF_AUTO_MIGR_SUP",
    "IB_UVERBS_PCF_BOOT_MGMT_SUP",
    "IB_UVERBS_PCF_CAP_MASK_NOTICE_SUP",
    "IB_UVERBS_PCF_CLIENT_REG_SUP",
    "IB_UVERBS_PCF_CM_SUP",
    "IB_UVERBS_PCF_DEVICE_MGMT_SUP",
    "IB_UVERBS_PCF_DR_NOTICE_SUP",
    "IB_UVERBS_PCF_EXTENDED_SPEEDS_SUP",
    "IB_UVERBS_PCF_HIERARCHY_INFO_SUP",
    "IB_UVERBS_PCF_IP_BASED_GIDS",
    "IB_UVERBS_PCF_LED_INFO_SUP",
    "IB_UVERBS_PCF_LINK_LATENCY_SUP",
    "IB_UVERBS_PCF_LINK_SPEED_WIDTH_TABLE_SUP",
    "IB_UVERBS_PCF_MCAST_FDB_TOP_SUP",
    "IB_UVERBS_PCF_MCAST_PKEY_TRAP_SUPPRESSION_SUP",
    "IB_UVERBS_PCF_MKEY_NVRAM",
    "IB_UVERBS_PCF_NOTICE_SUP",
    "IB_UVERBS_PCF_OPT_IPD_SUP",
    "IB_UVERBS_PCF_PKEY_NVRAM",
    "IB_UVERBS_PCF_PKEY_SW_EXT_PORT_TRAP_SUP",
    "IB_UVERBS_PCF_REINIT_SUP",
    "IB_UVERBS_PCF_SL_MAP_SUP",
    "IB_UVERBS_PCF_SM",
    "IB_UVERBS_PCF_SM_DISABLED",
    "IB_UVERBS_PCF_SNMP_TUNNEL_SUP",
    "IB_UVERBS_PCF_SYS_IMAGE_GUID_SUP",
    "IB_UVERBS_PCF_TRAP_SUP",
    "IB_UVERBS_PCF_VENDOR_CLASS_SUP",
    "IB_UVERBS_PCF_VENDOR_SPECIFIC_MADS_TABLE_SUP",
    "IB_UVERBS_QPF_GRH_REQUIRED",
    "IB_UVERBS_QPT_DRIVER",
    "IB_UVERBS_QPT_RAW_PACKET",
    "IB_UVERBS_QPT_RC",
    "IB_UVERBS_QPT_UC",
    "IB_UVERBS_QPT_UD",
    "IB_UVERBS_QPT_XRC_INI",
    "IB_UVERBS_QPT_XRC_TGT",
    "IB_UVERBS_QP_CREATE_BLOCK_MULTICAST_LOOPBACK",
    "IB_UVERBS_QP_CREATE_CVLAN_STRIPPING",
    "IB_UVERBS_QP_CREATE_PCI_WRITE_END_PADDING",
    "IB_UVERBS_QP_CREATE_SCATTER_FCS",
    "IB_UVERBS_QP_CREATE_SQ_SIG_ALL",
    "IB_UVERBS_READ_COUNTERS_PREFER_CACHED",
    "IB_UVERBS_SRQT_BASIC",
    "IB_UVERBS_SRQT_TM",
    "IB_UVERBS_SRQT_XRC",
    "IB_UVERBS_WQT_RQ",
    "IB_UVERBS_WQ_FLAGS_CVLAN_STRIPPING",
    "IB_UVERBS_WQ_FLAGS_DELAY_DROP",
    "IB_UVERBS_WQ_FLAGS_PCI_WRITE_END_PADDING",
    "IB_UVERBS_WQ_FLAGS_SCATTER_FCS",
    "RDMA_DRIVER_BNXT_RE",
    "RDMA_DRIVER_CXGB3",
    "RDMA_DRIVER_CXGB4",
    "RDMA_DRIVER_EFA",
    "RDMA_DRIVER_ERDMA",
    "RDMA_DRIVER_HFI1",
    "RDMA_DRIVER_HNS",
    "RDMA_DRIVER_I40IW",
    "RDMA_DRIVER_IONIC",
    "RDMA_DRIVER_IRDMA",
    "RDMA_DRIVER_MANA",
    "RDMA_DRIVER_MLX4",
    "RDMA_DRIVER_MLX5",
    "RDMA_DRIVER_MTHCA",
    "RDMA_DRIVER_NES",
    "RDMA_DRIVER_OCRDMA",
    "RDMA_DRIVER_QEDR",
    "RDMA_DRIVER_QIB",
    "RDMA_DRIVER_RXE",
    "RDMA_DRIVER_SIW",
    "RDMA_DRIVER_UNKNOWN",
    "RDMA_DRIVER_USNIC",
    "RDMA_DRIVER_VMW_PVRDMA",
    "ib_uverbs_buffer_desc",
    "ib_uverbs_flow_action_esp",
    "ib_uverbs_flow_action_esp_encap",
    "ib_uverbs_flow_action_esp_keymat_aes_gcm",
    "ib_uverbs_flow_action_esp_replay_bmp",
    "ib_uverbs_gid_entry",
    "ib_uverbs_qp_cap",
    "ib_uverbs_query_port_resp_ex",
]

_HEADER = "rdma/ib_user_ioctl_verbs.h"

# RDMA_UAPI_PTR(_type, _name) is ``__aligned_u64 _name`` here (rdma-core's
# infiniband/verbs_api.h redefines it as a union with the pointer): a c_uint64.

IB_UVERBS_ACCESS_OPTIONAL_FIRST = 1 << 20
IB_UVERBS_ACCESS_OPTIONAL_LAST = 1 << 29

# enum ib_uverbs_core_support
IB_UVERBS_CORE_SUPPORT_OPTIONAL_MR_ACCESS = 1 << 0
IB_UVERBS_CORE_SUPPORT_ROBUST_UDATA = 1 << 1

# enum ib_uverbs_access_flags
IB_UVERBS_ACCESS_LOCAL_WRITE = 1 << 0
IB_UVERBS_ACCESS_REMOTE_WRITE = 1 << 1
IB_UVERBS_ACCESS_REMOTE_READ = 1 << 2
IB_UVERBS_ACCESS_REMOTE_ATOMIC = 1 << 3
IB_UVERBS_ACCESS_MW_BIND = 1 << 4
IB_UVERBS_ACCESS_ZERO_BASED = 1 << 5
IB_UVERBS_ACCESS_ON_DEMAND = 1 << 6
IB_UVERBS_ACCESS_HUGETLB = 1 << 7
IB_UVERBS_ACCESS_FLUSH_GLOBAL = 1 << 8
IB_UVERBS_ACCESS_FLUSH_PERSISTENT = 1 << 9
IB_UVERBS_ACCESS_RELAXED_ORDERING = IB_UVERBS_ACCESS_OPTIONAL_FIRST
IB_UVERBS_ACCESS_OPTIONAL_RANGE = ((IB_UVERBS_ACCESS_OPTIONAL_LAST << 1) - 1) & ~(
    IB_UVERBS_ACCESS_OPTIONAL_FIRST - 1
)

# enum ib_uverbs_srq_type
IB_UVERBS_SRQT_BASIC = 0
IB_UVERBS_SRQT_XRC = 1
IB_UVERBS_SRQT_TM = 2

# enum ib_uverbs_wq_type
IB_UVERBS_WQT_RQ = 0

# enum ib_uverbs_wq_flags
IB_UVERBS_WQ_FLAGS_CVLAN_STRIPPING = 1 << 0
IB_UVERBS_WQ_FLAGS_SCATTER_FCS = 1 << 1
IB_UVERBS_WQ_FLAGS_DELAY_DROP = 1 << 2
IB_UVERBS_WQ_FLAGS_PCI_WRITE_END_PADDING = 1 << 3

# enum ib_uverbs_qp_type
IB_UVERBS_QPT_RC = 2
IB_UVERBS_QPT_UC = 3
IB_UVERBS_QPT_UD = 4
IB_UVERBS_QPT_RAW_PACKET = 8
IB_UVERBS_QPT_XRC_INI = 9
IB_UVERBS_QPT_XRC_TGT = 10
IB_UVERBS_QPT_DRIVER = 0xFF

# enum ib_uverbs_qp_create_flags
IB_UVERBS_QP_CREATE_BLOCK_MULTICAST_LOOPBACK = 1 << 1
IB_UVERBS_QP_CREATE_SCATTER_FCS = 1 << 8
IB_UVERBS_QP_CREATE_CVLAN_STRIPPING = 1 << 9
IB_UVERBS_QP_CREATE_PCI_WRITE_END_PADDING = 1 << 11
IB_UVERBS_QP_CREATE_SQ_SIG_ALL = 1 << 12

# enum ib_uverbs_query_port_cap_flags
IB_UVERBS_PCF_SM = 1 << 1
IB_UVERBS_PCF_NOTICE_SUP = 1 << 2
IB_UVERBS_PCF_TRAP_SUP = 1 << 3
IB_UVERBS_PCF_OPT_IPD_SUP = 1 << 4
IB_UVERBS_PCF_AUTO_MIGR_SUP = 1 << 5
IB_UVERBS_PCF_SL_MAP_SUP = 1 << 6
IB_UVERBS_PCF_MKEY_NVRAM = 1 << 7
IB_UVERBS_PCF_PKEY_NVRAM = 1 << 8
IB_UVERBS_PCF_LED_INFO_SUP = 1 << 9
IB_UVERBS_PCF_SM_DISABLED = 1 << 10
IB_UVERBS_PCF_SYS_IMAGE_GUID_SUP = 1 << 11
IB_UVERBS_PCF_PKEY_SW_EXT_PORT_TRAP_SUP = 1 << 12
IB_UVERBS_PCF_EXTENDED_SPEEDS_SUP = 1 << 14
IB_UVERBS_PCF_CM_SUP = 1 << 16
IB_UVERBS_PCF_SNMP_TUNNEL_SUP = 1 << 17
IB_UVERBS_PCF_REINIT_SUP = 1 << 18
IB_UVERBS_PCF_DEVICE_MGMT_SUP = 1 << 19
IB_UVERBS_PCF_VENDOR_CLASS_SUP = 1 << 20
IB_UVERBS_PCF_DR_NOTICE_SUP = 1 << 21
IB_UVERBS_PCF_CAP_MASK_NOTICE_SUP = 1 << 22
IB_UVERBS_PCF_BOOT_MGMT_SUP = 1 << 23
IB_UVERBS_PCF_LINK_LATENCY_SUP = 1 << 24
IB_UVERBS_PCF_CLIENT_REG_SUP = 1 << 25
IB_UVERBS_PCF_LINK_SPEED_WIDTH_TABLE_SUP = 1 << 27
IB_UVERBS_PCF_VENDOR_SPECIFIC_MADS_TABLE_SUP = 1 << 28
IB_UVERBS_PCF_MCAST_PKEY_TRAP_SUPPRESSION_SUP = 1 << 29
IB_UVERBS_PCF_MCAST_FDB_TOP_SUP = 1 << 30
IB_UVERBS_PCF_HIERARCHY_INFO_SUP = 1 << 31
IB_UVERBS_PCF_IP_BASED_GIDS = 1 << 26

# enum ib_uverbs_query_port_flags
IB_UVERBS_QPF_GRH_REQUIRED = 1 << 0

# enum ib_uverbs_flow_action_esp_keymat
IB_UVERBS_FLOW_ACTION_ESP_KEYMAT_AES_GCM = 0

# enum ib_uverbs_flow_action_esp_keymat_aes_gcm_iv_algo
IB_UVERBS_FLOW_ACTION_IV_ALGO_SEQ = 0


class ib_uverbs_flow_action_esp_keymat_aes_gcm(ctypes.Structure):
    _fields_ = [
        ("iv", c_uint64),
        ("iv_algo", c_uint32),
        ("salt", c_uint32),
        ("icv_len", c_uint32),
        ("key_len", c_uint32),
        ("aes_key", c_uint32 * (256 // 32)),
    ]


# enum ib_uverbs_flow_action_esp_replay
IB_UVERBS_FLOW_ACTION_ESP_REPLAY_NONE = 0
IB_UVERBS_FLOW_ACTION_ESP_REPLAY_BMP = 1


class ib_uverbs_flow_action_esp_replay_bmp(ctypes.Structure):
    _fields_ = [
        ("size", c_uint32),
    ]


# enum ib_uverbs_flow_action_esp_flags
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_INLINE_CRYPTO = 0 << 0
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_FULL_OFFLOAD = 1 << 0
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_TUNNEL = 0 << 1
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_TRANSPORT = 1 << 1
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_DECRYPT = 0 << 2
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_ENCRYPT = 1 << 2
IB_UVERBS_FLOW_ACTION_ESP_FLAGS_ESN_NEW_WINDOW = 1 << 3


class ib_uverbs_flow_action_esp_encap(ctypes.Structure):
    _fields_ = [
        ("val_ptr", c_uint64),
        ("next_ptr", c_uint64),
        ("len", c_uint16),
        ("type", c_uint16),
    ]


class ib_uverbs_flow_action_esp(ctypes.Structure):
    _fields_ = [
        ("spi", c_uint32),
        ("seq", c_uint32),
        ("tfc_pad", c_uint32),
        ("flags", c_uint32),
        ("hard_limit_pkts", c_uint64),
    ]


# enum ib_uverbs_read_counters_flags
IB_UVERBS_READ_COUNTERS_PREFER_CACHED = 1 << 0

# enum ib_uverbs_advise_mr_advice
IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH = 0
IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE = 1
IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT = 2

# enum ib_uverbs_advise_mr_flag
IB_UVERBS_ADVISE_MR_FLAG_FLUSH = 1 << 0


class ib_uverbs_query_port_resp_ex(ctypes.Structure):
    _fields_ = [
        ("legacy_resp", ib_uverbs_query_port_resp),
        ("port_cap_flags2", c_uint16),
        ("reserved", c_uint8 * 2),
        ("active_speed_ex", c_uint32),
    ]


class ib_uverbs_qp_cap(ctypes.Structure):
    _fields_ = [
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
    ]


# enum rdma_driver_id
RDMA_DRIVER_UNKNOWN = 0
RDMA_DRIVER_MLX5 = 1
RDMA_DRIVER_MLX4 = 2
RDMA_DRIVER_CXGB3 = 3
RDMA_DRIVER_CXGB4 = 4
RDMA_DRIVER_MTHCA = 5
RDMA_DRIVER_BNXT_RE = 6
RDMA_DRIVER_OCRDMA = 7
RDMA_DRIVER_NES = 8
RDMA_DRIVER_I40IW = 9
RDMA_DRIVER_IRDMA = RDMA_DRIVER_I40IW
RDMA_DRIVER_VMW_PVRDMA = RDMA_DRIVER_I40IW + 1
RDMA_DRIVER_QEDR = RDMA_DRIVER_I40IW + 2
RDMA_DRIVER_HNS = RDMA_DRIVER_I40IW + 3
RDMA_DRIVER_USNIC = RDMA_DRIVER_I40IW + 4
RDMA_DRIVER_RXE = RDMA_DRIVER_I40IW + 5
RDMA_DRIVER_HFI1 = RDMA_DRIVER_I40IW + 6
RDMA_DRIVER_QIB = RDMA_DRIVER_I40IW + 7
RDMA_DRIVER_EFA = RDMA_DRIVER_I40IW + 8
RDMA_DRIVER_SIW = RDMA_DRIVER_I40IW + 9
RDMA_DRIVER_ERDMA = RDMA_DRIVER_I40IW + 10
RDMA_DRIVER_MANA = RDMA_DRIVER_I40IW + 11
RDMA_DRIVER_IONIC = RDMA_DRIVER_I40IW + 12

# enum ib_uverbs_gid_type
IB_UVERBS_GID_TYPE_IB = 0
IB_UVERBS_GID_TYPE_ROCE_V1 = 1
IB_UVERBS_GID_TYPE_ROCE_V2 = 2


class ib_uverbs_gid_entry(ctypes.Structure):
    _fields_ = [
        ("gid", c_uint64 * 2),
        ("gid_index", c_uint32),
        ("port_num", c_uint32),
        ("gid_type", c_uint32),
        ("netdev_ifindex", c_uint32),
    ]


# enum ib_uverbs_buffer_type
IB_UVERBS_BUFFER_TYPE_DMABUF = 0
IB_UVERBS_BUFFER_TYPE_VA = 1


class ib_uverbs_buffer_desc(ctypes.Structure):
    _fields_ = [
        ("type", c_uint32),
        ("fd", c_int32),
        ("flags", c_uint32),
        ("optional_flags", c_uint32),
        ("addr", c_uint64),
        ("length", c_uint64),
    ]
