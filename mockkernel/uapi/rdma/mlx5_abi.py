"""rdma/mlx5-abi.h: mlx5's driver data of the uverbs write commands (Linux 7.2 uapi).

The parts of the header the model uses: ``GET_CONTEXT``'s request
(:class:`mlx5_ib_alloc_ucontext_req_v2`) and response
(:class:`mlx5_ib_alloc_ucontext_resp`), ``CREATE_CQ``'s (:class:`mlx5_ib_create_cq`,
:class:`mlx5_ib_create_cq_resp`) and ``CREATE_QP``'s (:class:`mlx5_ib_create_qp`,
:class:`mlx5_ib_create_qp_resp`), and their flag enums.
"""

import ctypes
from ctypes import c_uint8, c_uint16, c_uint32, c_uint64

__all__ = [
    "MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_CORE_CLOCK_OFFSET",
    "MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_DUMP_FILL_MKEY",
    "MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_ECE",
    "MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_MKEY_UPDATE_TAG",
    "MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_REAL_TIME_TS",
    "MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_SQD2RTS",
    "MLX5_IB_ALLOC_UCTX_DEVX",
    "MLX5_IB_CREATE_CQ_FLAGS_CQE_128B_PAD",
    "MLX5_IB_CREATE_CQ_FLAGS_REAL_TIME_TS",
    "MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX",
    "MLX5_LIB_CAP_4K_UAR",
    "MLX5_LIB_CAP_DYN_UAR",
    "MLX5_QP_FLAG_ALLOW_SCATTER_CQE",
    "MLX5_QP_FLAG_BFREG_INDEX",
    "MLX5_QP_FLAG_DCI_STREAM",
    "MLX5_QP_FLAG_PACKET_BASED_CREDIT_MODE",
    "MLX5_QP_FLAG_SCATTER_CQE",
    "MLX5_QP_FLAG_SIGNATURE",
    "MLX5_QP_FLAG_TIR_ALLOW_SELF_LB_MC",
    "MLX5_QP_FLAG_TIR_ALLOW_SELF_LB_UC",
    "MLX5_QP_FLAG_TUNNEL_OFFLOADS",
    "MLX5_QP_FLAG_TYPE_DCI",
    "MLX5_QP_FLAG_TYPE_DCT",
    "MLX5_QP_FLAG_UAR_PAGE_INDEX",
    "MLX5_USER_CMDS_SUPP_UHW_CREATE_AH",
    "MLX5_USER_CMDS_SUPP_UHW_QUERY_DEVICE",
    "mlx5_ib_alloc_ucontext_req_v2",
    "mlx5_ib_alloc_ucontext_resp",
    "mlx5_ib_create_cq",
    "mlx5_ib_create_cq_resp",
    "mlx5_ib_create_qp",
    "mlx5_ib_create_qp_dci_streams",
    "mlx5_ib_create_qp_resp",
]

_HEADER = "rdma/mlx5-abi.h"

# enum mlx5_lib_caps
MLX5_LIB_CAP_4K_UAR = 1 << 0
MLX5_LIB_CAP_DYN_UAR = 1 << 1

# enum mlx5_ib_alloc_uctx_v2_flags
MLX5_IB_ALLOC_UCTX_DEVX = 1 << 0


class mlx5_ib_alloc_ucontext_req_v2(ctypes.Structure):
    _fields_ = [
        ("total_num_bfregs", c_uint32),
        ("num_low_latency_bfregs", c_uint32),
        ("flags", c_uint32),
        ("comp_mask", c_uint32),
        ("max_cqe_version", c_uint8),
        ("reserved0", c_uint8),
        ("reserved1", c_uint16),
        ("reserved2", c_uint32),
        ("lib_caps", c_uint64),
    ]


# enum mlx5_ib_alloc_ucontext_resp_mask
MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_CORE_CLOCK_OFFSET = 1 << 0
MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_DUMP_FILL_MKEY = 1 << 1
MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_ECE = 1 << 2
MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_SQD2RTS = 1 << 3
MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_REAL_TIME_TS = 1 << 4
MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_MKEY_UPDATE_TAG = 1 << 5

# enum mlx5_user_cmds_supp_uhw
MLX5_USER_CMDS_SUPP_UHW_QUERY_DEVICE = 1 << 0
MLX5_USER_CMDS_SUPP_UHW_CREATE_AH = 1 << 1


class mlx5_ib_alloc_ucontext_resp(ctypes.Structure):
    _fields_ = [
        ("qp_tab_size", c_uint32),
        ("bf_reg_size", c_uint32),
        ("tot_bfregs", c_uint32),
        ("cache_line_size", c_uint32),
        ("max_sq_desc_sz", c_uint16),
        ("max_rq_desc_sz", c_uint16),
        ("max_send_wqebb", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_srq_recv_wr", c_uint32),
        ("num_ports", c_uint16),
        ("flow_action_flags", c_uint16),
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
        ("cqe_version", c_uint8),
        ("cmds_supp_uhw", c_uint8),
        ("eth_min_inline", c_uint8),
        ("clock_info_versions", c_uint8),
        ("hca_core_clock_offset", c_uint64),
        ("log_uar_size", c_uint32),
        ("num_uars_per_page", c_uint32),
        ("num_dyn_bfregs", c_uint32),
        ("dump_fill_mkey", c_uint32),
    ]


# enum mlx5_ib_create_cq_flags
MLX5_IB_CREATE_CQ_FLAGS_CQE_128B_PAD = 1 << 0
MLX5_IB_CREATE_CQ_FLAGS_UAR_PAGE_INDEX = 1 << 1
MLX5_IB_CREATE_CQ_FLAGS_REAL_TIME_TS = 1 << 2


class mlx5_ib_create_cq(ctypes.Structure):
    _fields_ = [
        ("buf_addr", c_uint64),
        ("db_addr", c_uint64),
        ("cqe_size", c_uint32),
        ("cqe_comp_en", c_uint8),
        ("cqe_comp_res_format", c_uint8),
        ("flags", c_uint16),
        ("uar_page_index", c_uint16),
        ("reserved0", c_uint16),
        ("reserved1", c_uint32),
    ]


class mlx5_ib_create_cq_resp(ctypes.Structure):
    _fields_ = [("cqn", c_uint32), ("reserved", c_uint32)]


# enum mlx5_ib_create_qp flags (MLX5_QP_FLAG_*)
MLX5_QP_FLAG_SIGNATURE = 1 << 0
MLX5_QP_FLAG_SCATTER_CQE = 1 << 1
MLX5_QP_FLAG_TUNNEL_OFFLOADS = 1 << 2
MLX5_QP_FLAG_BFREG_INDEX = 1 << 3
MLX5_QP_FLAG_TYPE_DCT = 1 << 4
MLX5_QP_FLAG_TYPE_DCI = 1 << 5
MLX5_QP_FLAG_TIR_ALLOW_SELF_LB_UC = 1 << 6
MLX5_QP_FLAG_TIR_ALLOW_SELF_LB_MC = 1 << 7
MLX5_QP_FLAG_ALLOW_SCATTER_CQE = 1 << 8
MLX5_QP_FLAG_PACKET_BASED_CREDIT_MODE = 1 << 9
MLX5_QP_FLAG_UAR_PAGE_INDEX = 1 << 10
MLX5_QP_FLAG_DCI_STREAM = 1 << 11


class mlx5_ib_create_qp_dci_streams(ctypes.Structure):
    _fields_ = [("log_num_concurent", c_uint8), ("log_num_errored", c_uint8)]


class mlx5_ib_create_qp(ctypes.Structure):
    _fields_ = [
        ("buf_addr", c_uint64),
        ("db_addr", c_uint64),
        ("sq_wqe_count", c_uint32),
        ("rq_wqe_count", c_uint32),
        ("rq_wqe_shift", c_uint32),
        ("flags", c_uint32),
        ("uidx", c_uint32),
        ("bfreg_index", c_uint32),
        ("sq_buf_addr", c_uint64),  # union { sq_buf_addr; access_key; }
        ("ece_options", c_uint32),
        ("dci_streams", mlx5_ib_create_qp_dci_streams),
        ("reserved", c_uint16),
    ]


class mlx5_ib_create_qp_resp(ctypes.Structure):
    _fields_ = [
        ("bfreg_index", c_uint32),
        ("ece_options", c_uint32),
        ("comp_mask", c_uint32),
        ("tirn", c_uint32),
        ("tisn", c_uint32),
        ("rqn", c_uint32),
        ("sqn", c_uint32),
        ("reserved1", c_uint32),
        ("tir_icm_addr", c_uint64),
    ]
