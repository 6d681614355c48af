"""rdma/mlx5_user_ioctl_verbs.h: mlx5 uverbs enums and structs (Linux 7.2 uapi).

The whole header, in header order.  ``MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT``
(the value of ``MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS``) asks for a pinned
"data direct" dma-buf MR instead of the default dynamic one.
"""

import ctypes
from ctypes import c_uint8, c_uint16, c_uint32, c_uint64

__all__ = [
    "MLX5_IB_UAPI_DEVX_CR_EV_CH_FLAGS_OMIT_DATA",
    "MLX5_IB_UAPI_DM_TYPE_ENCAP_SW_ICM",
    "MLX5_IB_UAPI_DM_TYPE_HEADER_MODIFY_PATTERN_SW_ICM",
    "MLX5_IB_UAPI_DM_TYPE_HEADER_MODIFY_SW_ICM",
    "MLX5_IB_UAPI_DM_TYPE_MEMIC",
    "MLX5_IB_UAPI_DM_TYPE_STEERING_SW_ICM",
    "MLX5_IB_UAPI_FLOW_ACTION_FLAGS_REQUIRE_METADATA",
    "MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L2_TO_L2_TUNNEL",
    "MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L2_TO_L3_TUNNEL",
    "MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L2_TUNNEL_TO_L2",
    "MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L3_TUNNEL_TO_L2",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_FDB",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_NIC_RX",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_NIC_TX",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_RX",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_TRANSPORT_RX",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_TRANSPORT_TX",
    "MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_TX",
    "MLX5_IB_UAPI_PP_ALLOC_FLAGS_DEDICATED_INDEX",
    "MLX5_IB_UAPI_QUERY_PORT_ESW_OWNER_VHCA_ID",
    "MLX5_IB_UAPI_QUERY_PORT_VPORT",
    "MLX5_IB_UAPI_QUERY_PORT_VPORT_REG_C0",
    "MLX5_IB_UAPI_QUERY_PORT_VPORT_STEERING_ICM_RX",
    "MLX5_IB_UAPI_QUERY_PORT_VPORT_STEERING_ICM_TX",
    "MLX5_IB_UAPI_QUERY_PORT_VPORT_VHCA_ID",
    "MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT",
    "MLX5_IB_UAPI_UAR_ALLOC_TYPE_BF",
    "MLX5_IB_UAPI_UAR_ALLOC_TYPE_NC",
    "MLX5_IB_UAPI_VAR_ALLOC_FLAG_TLP",
    "mlx5_ib_uapi_devx_async_cmd_hdr",
    "mlx5_ib_uapi_devx_async_event_hdr",
    "mlx5_ib_uapi_query_port",
    "mlx5_ib_uapi_reg",
]

_HEADER = "rdma/mlx5_user_ioctl_verbs.h"

# enum mlx5_ib_uapi_flow_action_flags
MLX5_IB_UAPI_FLOW_ACTION_FLAGS_REQUIRE_METADATA = 1 << 0

# enum mlx5_ib_uapi_flow_table_type
MLX5_IB_UAPI_FLOW_TABLE_TYPE_NIC_RX = 0x0
MLX5_IB_UAPI_FLOW_TABLE_TYPE_NIC_TX = 0x1
MLX5_IB_UAPI_FLOW_TABLE_TYPE_FDB = 0x2
MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_RX = 0x3
MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_TX = 0x4
MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_TRANSPORT_RX = 0x5
MLX5_IB_UAPI_FLOW_TABLE_TYPE_RDMA_TRANSPORT_TX = 0x6

# enum mlx5_ib_uapi_flow_action_packet_reformat_type
MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L2_TUNNEL_TO_L2 = 0x0
MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L2_TO_L2_TUNNEL = 0x1
MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L3_TUNNEL_TO_L2 = 0x2
MLX5_IB_UAPI_FLOW_ACTION_PACKET_REFORMAT_TYPE_L2_TO_L3_TUNNEL = 0x3

# enum mlx5_ib_uapi_reg_dmabuf_flags
MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT = 1 << 0


class mlx5_ib_uapi_devx_async_cmd_hdr(ctypes.Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("out_data", c_uint8 * 0),
    ]


# enum mlx5_ib_uapi_dm_type
MLX5_IB_UAPI_DM_TYPE_MEMIC = 0
MLX5_IB_UAPI_DM_TYPE_STEERING_SW_ICM = 1
MLX5_IB_UAPI_DM_TYPE_HEADER_MODIFY_SW_ICM = 2
MLX5_IB_UAPI_DM_TYPE_HEADER_MODIFY_PATTERN_SW_ICM = 3
MLX5_IB_UAPI_DM_TYPE_ENCAP_SW_ICM = 4

# enum mlx5_ib_uapi_devx_create_event_channel_flags
MLX5_IB_UAPI_DEVX_CR_EV_CH_FLAGS_OMIT_DATA = 1 << 0


class mlx5_ib_uapi_devx_async_event_hdr(ctypes.Structure):
    _fields_ = [
        ("cookie", c_uint64),
        ("out_data", c_uint8 * 0),
    ]


# enum mlx5_ib_uapi_pp_alloc_flags
MLX5_IB_UAPI_PP_ALLOC_FLAGS_DEDICATED_INDEX = 1 << 0

# enum mlx5_ib_uapi_uar_alloc_type
MLX5_IB_UAPI_UAR_ALLOC_TYPE_BF = 0x0
MLX5_IB_UAPI_UAR_ALLOC_TYPE_NC = 0x1

# enum mlx5_ib_uapi_query_port_flags
MLX5_IB_UAPI_QUERY_PORT_VPORT = 1 << 0
MLX5_IB_UAPI_QUERY_PORT_VPORT_VHCA_ID = 1 << 1
MLX5_IB_UAPI_QUERY_PORT_VPORT_STEERING_ICM_RX = 1 << 2
MLX5_IB_UAPI_QUERY_PORT_VPORT_STEERING_ICM_TX = 1 << 3
MLX5_IB_UAPI_QUERY_PORT_VPORT_REG_C0 = 1 << 4
MLX5_IB_UAPI_QUERY_PORT_ESW_OWNER_VHCA_ID = 1 << 5

# enum mlx5_ib_uapi_var_alloc_flags
MLX5_IB_UAPI_VAR_ALLOC_FLAG_TLP = 1 << 0


class mlx5_ib_uapi_reg(ctypes.Structure):
    _fields_ = [
        ("value", c_uint32),
        ("mask", c_uint32),
    ]


class mlx5_ib_uapi_query_port(ctypes.Structure):
    _fields_ = [
        ("flags", c_uint64),
        ("vport", c_uint16),
        ("vport_vhca_id", c_uint16),
        ("esw_owner_vhca_id", c_uint16),
        ("rsvd0", c_uint16),
        ("vport_steering_icm_rx", c_uint64),
        ("vport_steering_icm_tx", c_uint64),
        ("reg_c0", mlx5_ib_uapi_reg),
    ]
