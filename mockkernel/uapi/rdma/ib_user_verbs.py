"""rdma/ib_user_verbs.h: the legacy ``write()`` uverbs commands (Linux 7.2 uapi).

The whole header, in header order.  A legacy command is one ``write()`` to
``/dev/infiniband/uverbsN``: an ``ib_uverbs_cmd_hdr`` (``command``, and
``in_words``/``out_words`` in 32-bit words, header included in ``in_words``;
``in_words * 4`` must equal the write's byte count), then the command struct,
whose first field is usually the ``response`` pointer the kernel writes
``out_words * 4`` bytes to.  Extended commands set
``IB_USER_VERBS_CMD_FLAG_EXTENDED`` in ``command`` and put an
``ib_uverbs_ex_cmd_hdr`` after the header (sizes in 8-byte words there).  The
same structs are the ``UVERBS_ATTR_CORE_IN``/``OUT`` payloads of
``UVERBS_METHOD_INVOKE_WRITE``.

``__be*`` fields are ``c_uint*`` holding the big-endian bytes as read natively
(``node_guid``, ``imm_data``, flow filter addresses and ports).  Flexible array
members (``driver_data[]``, ``driver_data[0]``) are zero-length arrays, so
``ctypes.sizeof`` is the C ``sizeof``; anonymous unions are ``_anonymous_``
members, so ``spec.type`` reads as in C.
"""

import ctypes
from ctypes import c_int32, c_uint8, c_uint16, c_uint32, c_uint64

__all__ = [
    "IB_DEVICE_NAME_MAX",
    "IB_FLUSH_GLOBAL",
    "IB_FLUSH_MR",
    "IB_FLUSH_PERSISTENT",
    "IB_FLUSH_RANGE",
    "IB_USER_VERBS_ABI_VERSION",
    "IB_USER_VERBS_CMD_ALLOC_MW",
    "IB_USER_VERBS_CMD_ALLOC_PD",
    "IB_USER_VERBS_CMD_ATTACH_MCAST",
    "IB_USER_VERBS_CMD_BIND_MW",
    "IB_USER_VERBS_CMD_CLOSE_XRCD",
    "IB_USER_VERBS_CMD_COMMAND_MASK",
    "IB_USER_VERBS_CMD_CREATE_AH",
    "IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL",
    "IB_USER_VERBS_CMD_CREATE_CQ",
    "IB_USER_VERBS_CMD_CREATE_QP",
    "IB_USER_VERBS_CMD_CREATE_SRQ",
    "IB_USER_VERBS_CMD_CREATE_XSRQ",
    "IB_USER_VERBS_CMD_DEALLOC_MW",
    "IB_USER_VERBS_CMD_DEALLOC_PD",
    "IB_USER_VERBS_CMD_DEREG_MR",
    "IB_USER_VERBS_CMD_DESTROY_AH",
    "IB_USER_VERBS_CMD_DESTROY_CQ",
    "IB_USER_VERBS_CMD_DESTROY_QP",
    "IB_USER_VERBS_CMD_DESTROY_SRQ",
    "IB_USER_VERBS_CMD_DETACH_MCAST",
    "IB_USER_VERBS_CMD_FLAG_EXTENDED",
    "IB_USER_VERBS_CMD_GET_CONTEXT",
    "IB_USER_VERBS_CMD_MODIFY_AH",
    "IB_USER_VERBS_CMD_MODIFY_QP",
    "IB_USER_VERBS_CMD_MODIFY_SRQ",
    "IB_USER_VERBS_CMD_OPEN_QP",
    "IB_USER_VERBS_CMD_OPEN_XRCD",
    "IB_USER_VERBS_CMD_PEEK_CQ",
    "IB_USER_VERBS_CMD_POLL_CQ",
    "IB_USER_VERBS_CMD_POST_RECV",
    "IB_USER_VERBS_CMD_POST_SEND",
    "IB_USER_VERBS_CMD_POST_SRQ_RECV",
    "IB_USER_VERBS_CMD_QUERY_AH",
    "IB_USER_VERBS_CMD_QUERY_DEVICE",
    "IB_USER_VERBS_CMD_QUERY_MR",
    "IB_USER_VERBS_CMD_QUERY_PORT",
    "IB_USER_VERBS_CMD_QUERY_QP",
    "IB_USER_VERBS_CMD_QUERY_SRQ",
    "IB_USER_VERBS_CMD_REG_MR",
    "IB_USER_VERBS_CMD_REG_SMR",
    "IB_USER_VERBS_CMD_REQ_NOTIFY_CQ",
    "IB_USER_VERBS_CMD_REREG_MR",
    "IB_USER_VERBS_CMD_RESIZE_CQ",
    "IB_USER_VERBS_CMD_THRESHOLD",
    "IB_USER_VERBS_EX_CMD_CREATE_CQ",
    "IB_USER_VERBS_EX_CMD_CREATE_FLOW",
    "IB_USER_VERBS_EX_CMD_CREATE_QP",
    "IB_USER_VERBS_EX_CMD_CREATE_RWQ_IND_TBL",
    "IB_USER_VERBS_EX_CMD_CREATE_WQ",
    "IB_USER_VERBS_EX_CMD_DESTROY_FLOW",
    "IB_USER_VERBS_EX_CMD_DESTROY_RWQ_IND_TBL",
    "IB_USER_VERBS_EX_CMD_DESTROY_WQ",
    "IB_USER_VERBS_EX_CMD_MODIFY_CQ",
    "IB_USER_VERBS_EX_CMD_MODIFY_QP",
    "IB_USER_VERBS_EX_CMD_MODIFY_WQ",
    "IB_USER_VERBS_EX_CMD_QUERY_DEVICE",
    "IB_USER_VERBS_MAX_LOG_IND_TBL_SIZE",
    "IB_UVERBS_CQ_FLAGS_IGNORE_OVERRUN",
    "IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION",
    "IB_UVERBS_CREATE_QP_MASK_IND_TABLE",
    "IB_UVERBS_CREATE_QP_SUP_COMP_MASK",
    "IB_UVERBS_DEVICE_ATOMIC_WRITE",
    "IB_UVERBS_DEVICE_AUTO_PATH_MIG",
    "IB_UVERBS_DEVICE_BAD_PKEY_CNTR",
    "IB_UVERBS_DEVICE_BAD_QKEY_CNTR",
    "IB_UVERBS_DEVICE_CC_DMA_BOUNCE",
    "IB_UVERBS_DEVICE_CHANGE_PHY_PORT",
    "IB_UVERBS_DEVICE_CURR_QP_STATE_MOD",
    "IB_UVERBS_DEVICE_FLUSH_GLOBAL",
    "IB_UVERBS_DEVICE_FLUSH_PERSISTENT",
    "IB_UVERBS_DEVICE_MANAGED_FLOW_STEERING",
    "IB_UVERBS_DEVICE_MEM_MGT_EXTENSIONS",
    "IB_UVERBS_DEVICE_MEM_WINDOW",
    "IB_UVERBS_DEVICE_MEM_WINDOW_TYPE_2A",
    "IB_UVERBS_DEVICE_MEM_WINDOW_TYPE_2B",
    "IB_UVERBS_DEVICE_N_NOTIFY_CQ",
    "IB_UVERBS_DEVICE_PCI_WRITE_END_PADDING",
    "IB_UVERBS_DEVICE_PORT_ACTIVE_EVENT",
    "IB_UVERBS_DEVICE_RAW_IP_CSUM",
    "IB_UVERBS_DEVICE_RAW_MULTI",
    "IB_UVERBS_DEVICE_RAW_SCATTER_FCS",
    "IB_UVERBS_DEVICE_RC_IP_CSUM",
    "IB_UVERBS_DEVICE_RC_RNR_NAK_GEN",
    "IB_UVERBS_DEVICE_RESIZE_MAX_WR",
    "IB_UVERBS_DEVICE_SHUTDOWN_PORT",
    "IB_UVERBS_DEVICE_SRQ_RESIZE",
    "IB_UVERBS_DEVICE_SYS_IMAGE_GUID",
    "IB_UVERBS_DEVICE_UD_AV_PORT_ENFORCE",
    "IB_UVERBS_DEVICE_UD_IP_CSUM",
    "IB_UVERBS_DEVICE_XRC",
    "IB_UVERBS_ODP_SUPPORT",
    "IB_UVERBS_ODP_SUPPORT_ATOMIC",
    "IB_UVERBS_ODP_SUPPORT_ATOMIC_WRITE",
    "IB_UVERBS_ODP_SUPPORT_FLUSH",
    "IB_UVERBS_ODP_SUPPORT_IMPLICIT",
    "IB_UVERBS_ODP_SUPPORT_READ",
    "IB_UVERBS_ODP_SUPPORT_RECV",
    "IB_UVERBS_ODP_SUPPORT_SEND",
    "IB_UVERBS_ODP_SUPPORT_SRQ_RECV",
    "IB_UVERBS_ODP_SUPPORT_WRITE",
    "IB_UVERBS_RAW_PACKET_CAP_CVLAN_STRIPPING",
    "IB_UVERBS_RAW_PACKET_CAP_DELAY_DROP",
    "IB_UVERBS_RAW_PACKET_CAP_IP_CSUM",
    "IB_UVERBS_RAW_PACKET_CAP_SCATTER_FCS",
    "IB_UVERBS_WC_ATOMIC_WRITE",
    "IB_UVERBS_WC_BIND_MW",
    "IB_UVERBS_WC_COMP_SWAP",
    "IB_UVERBS_WC_FETCH_ADD",
    "IB_UVERBS_WC_FLUSH",
    "IB_UVERBS_WC_LOCAL_INV",
    "IB_UVERBS_WC_RDMA_READ",
    "IB_UVERBS_WC_RDMA_WRITE",
    "IB_UVERBS_WC_SEND",
    "IB_UVERBS_WC_TSO",
    "IB_UVERBS_WR_ATOMIC_CMP_AND_SWP",
    "IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD",
    "IB_UVERBS_WR_ATOMIC_WRITE",
    "IB_UVERBS_WR_BIND_MW",
    "IB_UVERBS_WR_FLUSH",
    "IB_UVERBS_WR_LOCAL_INV",
    "IB_UVERBS_WR_MASKED_ATOMIC_CMP_AND_SWP",
    "IB_UVERBS_WR_MASKED_ATOMIC_FETCH_AND_ADD",
    "IB_UVERBS_WR_RDMA_READ",
    "IB_UVERBS_WR_RDMA_READ_WITH_INV",
    "IB_UVERBS_WR_RDMA_WRITE",
    "IB_UVERBS_WR_RDMA_WRITE_WITH_IMM",
    "IB_UVERBS_WR_SEND",
    "IB_UVERBS_WR_SEND_WITH_IMM",
    "IB_UVERBS_WR_SEND_WITH_INV",
    "IB_UVERBS_WR_TSO",
    "ib_uverbs_ah_attr",
    "ib_uverbs_alloc_mw",
    "ib_uverbs_alloc_mw_resp",
    "ib_uverbs_alloc_pd",
    "ib_uverbs_alloc_pd_resp",
    "ib_uverbs_async_event_desc",
    "ib_uverbs_attach_mcast",
    "ib_uverbs_close_xrcd",
    "ib_uverbs_cmd_hdr",
    "ib_uverbs_comp_event_desc",
    "ib_uverbs_cq_moderation",
    "ib_uverbs_cq_moderation_caps",
    "ib_uverbs_create_ah",
    "ib_uverbs_create_ah_resp",
    "ib_uverbs_create_comp_channel",
    "ib_uverbs_create_comp_channel_resp",
    "ib_uverbs_create_cq",
    "ib_uverbs_create_cq_resp",
    "ib_uverbs_create_flow",
    "ib_uverbs_create_flow_resp",
    "ib_uverbs_create_qp",
    "ib_uverbs_create_qp_resp",
    "ib_uverbs_create_srq",
    "ib_uverbs_create_srq_resp",
    "ib_uverbs_create_xsrq",
    "ib_uverbs_dealloc_mw",
    "ib_uverbs_dealloc_pd",
    "ib_uverbs_dereg_mr",
    "ib_uverbs_destroy_ah",
    "ib_uverbs_destroy_cq",
    "ib_uverbs_destroy_cq_resp",
    "ib_uverbs_destroy_flow",
    "ib_uverbs_destroy_qp",
    "ib_uverbs_destroy_qp_resp",
    "ib_uverbs_destroy_srq",
    "ib_uverbs_destroy_srq_resp",
    "ib_uverbs_detach_mcast",
    "ib_uverbs_ex_cmd_hdr",
    "ib_uverbs_ex_create_cq",
    "ib_uverbs_ex_create_cq_resp",
    "ib_uverbs_ex_create_qp",
    "ib_uverbs_ex_create_qp_resp",
    "ib_uverbs_ex_create_rwq_ind_table",
    "ib_uverbs_ex_create_rwq_ind_table_resp",
    "ib_uverbs_ex_create_wq",
    "ib_uverbs_ex_create_wq_resp",
    "ib_uverbs_ex_destroy_rwq_ind_table",
    "ib_uverbs_ex_destroy_wq",
    "ib_uverbs_ex_destroy_wq_resp",
    "ib_uverbs_ex_modify_cq",
    "ib_uverbs_ex_modify_qp",
    "ib_uverbs_ex_modify_qp_resp",
    "ib_uverbs_ex_modify_wq",
    "ib_uverbs_ex_query_device",
    "ib_uverbs_ex_query_device_resp",
    "ib_uverbs_flow_attr",
    "ib_uverbs_flow_eth_filter",
    "ib_uverbs_flow_gre_filter",
    "ib_uverbs_flow_ipv4_filter",
    "ib_uverbs_flow_ipv6_filter",
    "ib_uverbs_flow_mpls_filter",
    "ib_uverbs_flow_spec_action_count",
    "ib_uverbs_flow_spec_action_drop",
    "ib_uverbs_flow_spec_action_handle",
    "ib_uverbs_flow_spec_action_tag",
    "ib_uverbs_flow_spec_esp",
    "ib_uverbs_flow_spec_esp_filter",
    "ib_uverbs_flow_spec_eth",
    "ib_uverbs_flow_spec_gre",
    "ib_uverbs_flow_spec_hdr",
    "ib_uverbs_flow_spec_ipv4",
    "ib_uverbs_flow_spec_ipv6",
    "ib_uverbs_flow_spec_mpls",
    "ib_uverbs_flow_spec_tcp_udp",
    "ib_uverbs_flow_spec_tunnel",
    "ib_uverbs_flow_tcp_udp_filter",
    "ib_uverbs_flow_tunnel_filter",
    "ib_uverbs_get_context",
    "ib_uverbs_get_context_resp",
    "ib_uverbs_global_route",
    "ib_uverbs_modify_qp",
    "ib_uverbs_modify_srq",
    "ib_uverbs_odp_caps",
    "ib_uverbs_open_qp",
    "ib_uverbs_open_xrcd",
    "ib_uverbs_open_xrcd_resp",
    "ib_uverbs_poll_cq",
    "ib_uverbs_poll_cq_resp",
    "ib_uverbs_post_recv",
    "ib_uverbs_post_recv_resp",
    "ib_uverbs_post_send",
    "ib_uverbs_post_send_resp",
    "ib_uverbs_post_srq_recv",
    "ib_uverbs_post_srq_recv_resp",
    "ib_uverbs_qp_attr",
    "ib_uverbs_qp_dest",
    "ib_uverbs_query_device",
    "ib_uverbs_query_device_resp",
    "ib_uverbs_query_port",
    "ib_uverbs_query_port_resp",
    "ib_uverbs_query_qp",
    "ib_uverbs_query_qp_resp",
    "ib_uverbs_query_srq",
    "ib_uverbs_query_srq_resp",
    "ib_uverbs_recv_wr",
    "ib_uverbs_reg_mr",
    "ib_uverbs_reg_mr_resp",
    "ib_uverbs_req_notify_cq",
    "ib_uverbs_rereg_mr",
    "ib_uverbs_rereg_mr_resp",
    "ib_uverbs_resize_cq",
    "ib_uverbs_resize_cq_resp",
    "ib_uverbs_rss_caps",
    "ib_uverbs_send_wr",
    "ib_uverbs_sge",
    "ib_uverbs_tm_caps",
    "ib_uverbs_wc",
]

_HEADER = "rdma/ib_user_verbs.h"

IB_USER_VERBS_ABI_VERSION = 6
IB_USER_VERBS_CMD_THRESHOLD = 50

# enum ib_uverbs_write_cmds
IB_USER_VERBS_CMD_GET_CONTEXT = 0
IB_USER_VERBS_CMD_QUERY_DEVICE = 1
IB_USER_VERBS_CMD_QUERY_PORT = 2
IB_USER_VERBS_CMD_ALLOC_PD = 3
IB_USER_VERBS_CMD_DEALLOC_PD = 4
IB_USER_VERBS_CMD_CREATE_AH = 5
IB_USER_VERBS_CMD_MODIFY_AH = 6
IB_USER_VERBS_CMD_QUERY_AH = 7
IB_USER_VERBS_CMD_DESTROY_AH = 8
IB_USER_VERBS_CMD_REG_MR = 9
IB_USER_VERBS_CMD_REG_SMR = 10
IB_USER_VERBS_CMD_REREG_MR = 11
IB_USER_VERBS_CMD_QUERY_MR = 12
IB_USER_VERBS_CMD_DEREG_MR = 13
IB_USER_VERBS_CMD_ALLOC_MW = 14
IB_USER_VERBS_CMD_BIND_MW = 15
IB_USER_VERBS_CMD_DEALLOC_MW = 16
IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL = 17
IB_USER_VERBS_CMD_CREATE_CQ = 18
IB_USER_VERBS_CMD_RESIZE_CQ = 19
IB_USER_VERBS_CMD_DESTROY_CQ = 20
IB_USER_VERBS_CMD_POLL_CQ = 21
IB_USER_VERBS_CMD_PEEK_CQ = 22
IB_USER_VERBS_CMD_REQ_NOTIFY_CQ = 23
IB_USER_VERBS_CMD_CREATE_QP = 24
IB_USER_VERBS_CMD_QUERY_QP = 25
IB_USER_VERBS_CMD_MODIFY_QP = 26
IB_USER_VERBS_CMD_DESTROY_QP = 27
IB_USER_VERBS_CMD_POST_SEND = 28
IB_USER_VERBS_CMD_POST_RECV = 29
IB_USER_VERBS_CMD_ATTACH_MCAST = 30
IB_USER_VERBS_CMD_DETACH_MCAST = 31
IB_USER_VERBS_CMD_CREATE_SRQ = 32
IB_USER_VERBS_CMD_MODIFY_SRQ = 33
IB_USER_VERBS_CMD_QUERY_SRQ = 34
IB_USER_VERBS_CMD_DESTROY_SRQ = 35
IB_USER_VERBS_CMD_POST_SRQ_RECV = 36
IB_USER_VERBS_CMD_OPEN_XRCD = 37
IB_USER_VERBS_CMD_CLOSE_XRCD = 38
IB_USER_VERBS_CMD_CREATE_XSRQ = 39
IB_USER_VERBS_CMD_OPEN_QP = 40

# enum
IB_USER_VERBS_EX_CMD_QUERY_DEVICE = IB_USER_VERBS_CMD_QUERY_DEVICE
IB_USER_VERBS_EX_CMD_CREATE_CQ = IB_USER_VERBS_CMD_CREATE_CQ
IB_USER_VERBS_EX_CMD_CREATE_QP = IB_USER_VERBS_CMD_CREATE_QP
IB_USER_VERBS_EX_CMD_MODIFY_QP = IB_USER_VERBS_CMD_MODIFY_QP
IB_USER_VERBS_EX_CMD_CREATE_FLOW = IB_USER_VERBS_CMD_THRESHOLD
IB_USER_VERBS_EX_CMD_DESTROY_FLOW = IB_USER_VERBS_CMD_THRESHOLD + 1
IB_USER_VERBS_EX_CMD_CREATE_WQ = IB_USER_VERBS_CMD_THRESHOLD + 2
IB_USER_VERBS_EX_CMD_MODIFY_WQ = IB_USER_VERBS_CMD_THRESHOLD + 3
IB_USER_VERBS_EX_CMD_DESTROY_WQ = IB_USER_VERBS_CMD_THRESHOLD + 4
IB_USER_VERBS_EX_CMD_CREATE_RWQ_IND_TBL = IB_USER_VERBS_CMD_THRESHOLD + 5
IB_USER_VERBS_EX_CMD_DESTROY_RWQ_IND_TBL = IB_USER_VERBS_CMD_THRESHOLD + 6
IB_USER_VERBS_EX_CMD_MODIFY_CQ = IB_USER_VERBS_CMD_THRESHOLD + 7

# enum ib_placement_type
IB_FLUSH_GLOBAL = 1 << 0
IB_FLUSH_PERSISTENT = 1 << 1

# enum ib_selectivity_level
IB_FLUSH_RANGE = 0
IB_FLUSH_MR = 1


class ib_uverbs_async_event_desc(ctypes.Structure):
    _fields_ = [
        ("element", c_uint64),
        ("event_type", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_comp_event_desc(ctypes.Structure):
    _fields_ = [
        ("cq_handle", c_uint64),
    ]


class ib_uverbs_cq_moderation_caps(ctypes.Structure):
    _fields_ = [
        ("max_cq_moderation_count", c_uint16),
        ("max_cq_moderation_period", c_uint16),
        ("reserved", c_uint32),
    ]


IB_USER_VERBS_CMD_COMMAND_MASK = 0xFF
IB_USER_VERBS_CMD_FLAG_EXTENDED = 0x80000000


class ib_uverbs_cmd_hdr(ctypes.Structure):
    _fields_ = [
        ("command", c_uint32),
        ("in_words", c_uint16),
        ("out_words", c_uint16),
    ]


class ib_uverbs_ex_cmd_hdr(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("provider_in_words", c_uint16),
        ("provider_out_words", c_uint16),
        ("cmd_hdr_reserved", c_uint32),
    ]


class ib_uverbs_get_context(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_get_context_resp(ctypes.Structure):
    _fields_ = [
        ("async_fd", c_uint32),
        ("num_comp_vectors", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_query_device(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_query_device_resp(ctypes.Structure):
    _fields_ = [
        ("fw_ver", c_uint64),
        ("node_guid", c_uint64),  # __be64 (big-endian)
        ("sys_image_guid", c_uint64),  # __be64 (big-endian)
        ("max_mr_size", c_uint64),
        ("page_size_cap", c_uint64),
        ("vendor_id", c_uint32),
        ("vendor_part_id", c_uint32),
        ("hw_ver", c_uint32),
        ("max_qp", c_uint32),
        ("max_qp_wr", c_uint32),
        ("device_cap_flags", c_uint32),
        ("max_sge", c_uint32),
        ("max_sge_rd", c_uint32),
        ("max_cq", c_uint32),
        ("max_cqe", c_uint32),
        ("max_mr", c_uint32),
        ("max_pd", c_uint32),
        ("max_qp_rd_atom", c_uint32),
        ("max_ee_rd_atom", c_uint32),
        ("max_res_rd_atom", c_uint32),
        ("max_qp_init_rd_atom", c_uint32),
        ("max_ee_init_rd_atom", c_uint32),
        ("atomic_cap", c_uint32),
        ("max_ee", c_uint32),
        ("max_rdd", c_uint32),
        ("max_mw", c_uint32),
        ("max_raw_ipv6_qp", c_uint32),
        ("max_raw_ethy_qp", c_uint32),
        ("max_mcast_grp", c_uint32),
        ("max_mcast_qp_attach", c_uint32),
        ("max_total_mcast_qp_attach", c_uint32),
        ("max_ah", c_uint32),
        ("max_fmr", c_uint32),
        ("max_map_per_fmr", c_uint32),
        ("max_srq", c_uint32),
        ("max_srq_wr", c_uint32),
        ("max_srq_sge", c_uint32),
        ("max_pkeys", c_uint16),
        ("local_ca_ack_delay", c_uint8),
        ("phys_port_cnt", c_uint8),
        ("reserved", c_uint8 * 4),
    ]


class ib_uverbs_ex_query_device(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("reserved", c_uint32),
    ]


# enum ib_uverbs_odp_general_cap_bits
IB_UVERBS_ODP_SUPPORT = 1 << 0
IB_UVERBS_ODP_SUPPORT_IMPLICIT = 1 << 1

# enum ib_uverbs_odp_transport_cap_bits
IB_UVERBS_ODP_SUPPORT_SEND = 1 << 0
IB_UVERBS_ODP_SUPPORT_RECV = 1 << 1
IB_UVERBS_ODP_SUPPORT_WRITE = 1 << 2
IB_UVERBS_ODP_SUPPORT_READ = 1 << 3
IB_UVERBS_ODP_SUPPORT_ATOMIC = 1 << 4
IB_UVERBS_ODP_SUPPORT_SRQ_RECV = 1 << 5
IB_UVERBS_ODP_SUPPORT_FLUSH = 1 << 6
IB_UVERBS_ODP_SUPPORT_ATOMIC_WRITE = 1 << 7


class _ib_uverbs_odp_caps_per_transport_caps(ctypes.Structure):
    _fields_ = [
        ("rc_odp_caps", c_uint32),
        ("uc_odp_caps", c_uint32),
        ("ud_odp_caps", c_uint32),
    ]


class ib_uverbs_odp_caps(ctypes.Structure):
    _fields_ = [
        ("general_caps", c_uint64),
        ("per_transport_caps", _ib_uverbs_odp_caps_per_transport_caps),
        ("reserved", c_uint32),
    ]


class ib_uverbs_rss_caps(ctypes.Structure):
    _fields_ = [
        ("supported_qpts", c_uint32),
        ("max_rwq_indirection_tables", c_uint32),
        ("max_rwq_indirection_table_size", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_tm_caps(ctypes.Structure):
    _fields_ = [
        ("max_rndv_hdr_size", c_uint32),
        ("max_num_tags", c_uint32),
        ("flags", c_uint32),
        ("max_ops", c_uint32),
        ("max_sge", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_ex_query_device_resp(ctypes.Structure):
    _fields_ = [
        ("base", ib_uverbs_query_device_resp),
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
        ("odp_caps", ib_uverbs_odp_caps),
        ("timestamp_mask", c_uint64),
        ("hca_core_clock", c_uint64),
        ("device_cap_flags_ex", c_uint64),
        ("rss_caps", ib_uverbs_rss_caps),
        ("max_wq_type_rq", c_uint32),
        ("raw_packet_caps", c_uint32),
        ("tm_caps", ib_uverbs_tm_caps),
        ("cq_moderation_caps", ib_uverbs_cq_moderation_caps),
        ("max_dm_size", c_uint64),
        ("xrc_odp_caps", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_query_port(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("port_num", c_uint8),
        ("reserved", c_uint8 * 7),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_query_port_resp(ctypes.Structure):
    _fields_ = [
        ("port_cap_flags", c_uint32),
        ("max_msg_sz", c_uint32),
        ("bad_pkey_cntr", c_uint32),
        ("qkey_viol_cntr", c_uint32),
        ("gid_tbl_len", c_uint32),
        ("pkey_tbl_len", c_uint16),
        ("lid", c_uint16),
        ("sm_lid", c_uint16),
        ("state", c_uint8),
        ("max_mtu", c_uint8),
        ("active_mtu", c_uint8),
        ("lmc", c_uint8),
        ("max_vl_num", c_uint8),
        ("sm_sl", c_uint8),
        ("subnet_timeout", c_uint8),
        ("init_type_reply", c_uint8),
        ("active_width", c_uint8),
        ("active_speed", c_uint8),
        ("phys_state", c_uint8),
        ("link_layer", c_uint8),
        ("flags", c_uint8),
        ("reserved", c_uint8),
    ]


class ib_uverbs_alloc_pd(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_alloc_pd_resp(ctypes.Structure):
    _fields_ = [
        ("pd_handle", c_uint32),
        ("driver_data", c_uint32 * 0),
    ]


class ib_uverbs_dealloc_pd(ctypes.Structure):
    _fields_ = [
        ("pd_handle", c_uint32),
    ]


class ib_uverbs_open_xrcd(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("fd", c_uint32),
        ("oflags", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_open_xrcd_resp(ctypes.Structure):
    _fields_ = [
        ("xrcd_handle", c_uint32),
        ("driver_data", c_uint32 * 0),
    ]


class ib_uverbs_close_xrcd(ctypes.Structure):
    _fields_ = [
        ("xrcd_handle", c_uint32),
    ]


class ib_uverbs_reg_mr(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("start", c_uint64),
        ("length", c_uint64),
        ("hca_va", c_uint64),
        ("pd_handle", c_uint32),
        ("access_flags", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_reg_mr_resp(ctypes.Structure):
    _fields_ = [
        ("mr_handle", c_uint32),
        ("lkey", c_uint32),
        ("rkey", c_uint32),
        ("driver_data", c_uint32 * 0),
    ]


class ib_uverbs_rereg_mr(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("mr_handle", c_uint32),
        ("flags", c_uint32),
        ("start", c_uint64),
        ("length", c_uint64),
        ("hca_va", c_uint64),
        ("pd_handle", c_uint32),
        ("access_flags", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_rereg_mr_resp(ctypes.Structure):
    _fields_ = [
        ("lkey", c_uint32),
        ("rkey", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_dereg_mr(ctypes.Structure):
    _fields_ = [
        ("mr_handle", c_uint32),
    ]


class ib_uverbs_alloc_mw(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("pd_handle", c_uint32),
        ("mw_type", c_uint8),
        ("reserved", c_uint8 * 3),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_alloc_mw_resp(ctypes.Structure):
    _fields_ = [
        ("mw_handle", c_uint32),
        ("rkey", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_dealloc_mw(ctypes.Structure):
    _fields_ = [
        ("mw_handle", c_uint32),
    ]


class ib_uverbs_create_comp_channel(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
    ]


class ib_uverbs_create_comp_channel_resp(ctypes.Structure):
    _fields_ = [
        ("fd", c_uint32),
    ]


class ib_uverbs_create_cq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("user_handle", c_uint64),
        ("cqe", c_uint32),
        ("comp_vector", c_uint32),
        ("comp_channel", c_int32),
        ("reserved", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


# enum ib_uverbs_ex_create_cq_flags
IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION = 1 << 0
IB_UVERBS_CQ_FLAGS_IGNORE_OVERRUN = 1 << 1


class ib_uverbs_ex_create_cq(ctypes.Structure):
    _fields_ = [
        ("user_handle", c_uint64),
        ("cqe", c_uint32),
        ("comp_vector", c_uint32),
        ("comp_channel", c_int32),
        ("comp_mask", c_uint32),
        ("flags", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_create_cq_resp(ctypes.Structure):
    _fields_ = [
        ("cq_handle", c_uint32),
        ("cqe", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_ex_create_cq_resp(ctypes.Structure):
    _fields_ = [
        ("base", ib_uverbs_create_cq_resp),
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
    ]


class ib_uverbs_resize_cq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("cq_handle", c_uint32),
        ("cqe", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_resize_cq_resp(ctypes.Structure):
    _fields_ = [
        ("cqe", c_uint32),
        ("reserved", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_poll_cq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("cq_handle", c_uint32),
        ("ne", c_uint32),
    ]


# enum ib_uverbs_wc_opcode
IB_UVERBS_WC_SEND = 0
IB_UVERBS_WC_RDMA_WRITE = 1
IB_UVERBS_WC_RDMA_READ = 2
IB_UVERBS_WC_COMP_SWAP = 3
IB_UVERBS_WC_FETCH_ADD = 4
IB_UVERBS_WC_BIND_MW = 5
IB_UVERBS_WC_LOCAL_INV = 6
IB_UVERBS_WC_TSO = 7
IB_UVERBS_WC_FLUSH = 8
IB_UVERBS_WC_ATOMIC_WRITE = 9


class _ib_uverbs_wc_ex(ctypes.Union):
    _fields_ = [
        ("imm_data", c_uint32),  # __be32 (big-endian)
        ("invalidate_rkey", c_uint32),
    ]


class ib_uverbs_wc(ctypes.Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("status", c_uint32),
        ("opcode", c_uint32),
        ("vendor_err", c_uint32),
        ("byte_len", c_uint32),
        ("ex", _ib_uverbs_wc_ex),
        ("qp_num", c_uint32),
        ("src_qp", c_uint32),
        ("wc_flags", c_uint32),
        ("pkey_index", c_uint16),
        ("slid", c_uint16),
        ("sl", c_uint8),
        ("dlid_path_bits", c_uint8),
        ("port_num", c_uint8),
        ("reserved", c_uint8),
    ]


class ib_uverbs_poll_cq_resp(ctypes.Structure):
    _fields_ = [
        ("count", c_uint32),
        ("reserved", c_uint32),
        ("wc", ib_uverbs_wc * 0),
    ]


class ib_uverbs_req_notify_cq(ctypes.Structure):
    _fields_ = [
        ("cq_handle", c_uint32),
        ("solicited_only", c_uint32),
    ]


class ib_uverbs_destroy_cq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("cq_handle", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_destroy_cq_resp(ctypes.Structure):
    _fields_ = [
        ("comp_events_reported", c_uint32),
        ("async_events_reported", c_uint32),
    ]


class ib_uverbs_global_route(ctypes.Structure):
    _fields_ = [
        ("dgid", c_uint8 * 16),
        ("flow_label", c_uint32),
        ("sgid_index", c_uint8),
        ("hop_limit", c_uint8),
        ("traffic_class", c_uint8),
        ("reserved", c_uint8),
    ]


class ib_uverbs_ah_attr(ctypes.Structure):
    _fields_ = [
        ("grh", ib_uverbs_global_route),
        ("dlid", c_uint16),
        ("sl", c_uint8),
        ("src_path_bits", c_uint8),
        ("static_rate", c_uint8),
        ("is_global", c_uint8),
        ("port_num", c_uint8),
        ("reserved", c_uint8),
    ]


class ib_uverbs_qp_attr(ctypes.Structure):
    _fields_ = [
        ("qp_attr_mask", c_uint32),
        ("qp_state", c_uint32),
        ("cur_qp_state", c_uint32),
        ("path_mtu", c_uint32),
        ("path_mig_state", c_uint32),
        ("qkey", c_uint32),
        ("rq_psn", c_uint32),
        ("sq_psn", c_uint32),
        ("dest_qp_num", c_uint32),
        ("qp_access_flags", c_uint32),
        ("ah_attr", ib_uverbs_ah_attr),
        ("alt_ah_attr", ib_uverbs_ah_attr),
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
        ("pkey_index", c_uint16),
        ("alt_pkey_index", c_uint16),
        ("en_sqd_async_notify", c_uint8),
        ("sq_draining", c_uint8),
        ("max_rd_atomic", c_uint8),
        ("max_dest_rd_atomic", c_uint8),
        ("min_rnr_timer", c_uint8),
        ("port_num", c_uint8),
        ("timeout", c_uint8),
        ("retry_cnt", c_uint8),
        ("rnr_retry", c_uint8),
        ("alt_port_num", c_uint8),
        ("alt_timeout", c_uint8),
        ("reserved", c_uint8 * 5),
    ]


class ib_uverbs_create_qp(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("user_handle", c_uint64),
        ("pd_handle", c_uint32),
        ("send_cq_handle", c_uint32),
        ("recv_cq_handle", c_uint32),
        ("srq_handle", c_uint32),
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
        ("sq_sig_all", c_uint8),
        ("qp_type", c_uint8),
        ("is_srq", c_uint8),
        ("reserved", c_uint8),
        ("driver_data", c_uint64 * 0),
    ]


# enum ib_uverbs_create_qp_mask
IB_UVERBS_CREATE_QP_MASK_IND_TABLE = 1 << 0

# enum
IB_UVERBS_CREATE_QP_SUP_COMP_MASK = IB_UVERBS_CREATE_QP_MASK_IND_TABLE


class ib_uverbs_ex_create_qp(ctypes.Structure):
    _fields_ = [
        ("user_handle", c_uint64),
        ("pd_handle", c_uint32),
        ("send_cq_handle", c_uint32),
        ("recv_cq_handle", c_uint32),
        ("srq_handle", c_uint32),
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
        ("sq_sig_all", c_uint8),
        ("qp_type", c_uint8),
        ("is_srq", c_uint8),
        ("reserved", c_uint8),
        ("comp_mask", c_uint32),
        ("create_flags", c_uint32),
        ("rwq_ind_tbl_handle", c_uint32),
        ("source_qpn", c_uint32),
    ]


class ib_uverbs_open_qp(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("user_handle", c_uint64),
        ("pd_handle", c_uint32),
        ("qpn", c_uint32),
        ("qp_type", c_uint8),
        ("reserved", c_uint8 * 7),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_create_qp_resp(ctypes.Structure):
    _fields_ = [
        ("qp_handle", c_uint32),
        ("qpn", c_uint32),
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
        ("reserved", c_uint32),
        ("driver_data", c_uint32 * 0),
    ]


class ib_uverbs_ex_create_qp_resp(ctypes.Structure):
    _fields_ = [
        ("base", ib_uverbs_create_qp_resp),
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
    ]


class ib_uverbs_qp_dest(ctypes.Structure):
    _fields_ = [
        ("dgid", c_uint8 * 16),
        ("flow_label", c_uint32),
        ("dlid", c_uint16),
        ("reserved", c_uint16),
        ("sgid_index", c_uint8),
        ("hop_limit", c_uint8),
        ("traffic_class", c_uint8),
        ("sl", c_uint8),
        ("src_path_bits", c_uint8),
        ("static_rate", c_uint8),
        ("is_global", c_uint8),
        ("port_num", c_uint8),
    ]


class ib_uverbs_query_qp(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("qp_handle", c_uint32),
        ("attr_mask", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_query_qp_resp(ctypes.Structure):
    _fields_ = [
        ("dest", ib_uverbs_qp_dest),
        ("alt_dest", ib_uverbs_qp_dest),
        ("max_send_wr", c_uint32),
        ("max_recv_wr", c_uint32),
        ("max_send_sge", c_uint32),
        ("max_recv_sge", c_uint32),
        ("max_inline_data", c_uint32),
        ("qkey", c_uint32),
        ("rq_psn", c_uint32),
        ("sq_psn", c_uint32),
        ("dest_qp_num", c_uint32),
        ("qp_access_flags", c_uint32),
        ("pkey_index", c_uint16),
        ("alt_pkey_index", c_uint16),
        ("qp_state", c_uint8),
        ("cur_qp_state", c_uint8),
        ("path_mtu", c_uint8),
        ("path_mig_state", c_uint8),
        ("sq_draining", c_uint8),
        ("max_rd_atomic", c_uint8),
        ("max_dest_rd_atomic", c_uint8),
        ("min_rnr_timer", c_uint8),
        ("port_num", c_uint8),
        ("timeout", c_uint8),
        ("retry_cnt", c_uint8),
        ("rnr_retry", c_uint8),
        ("alt_port_num", c_uint8),
        ("alt_timeout", c_uint8),
        ("sq_sig_all", c_uint8),
        ("reserved", c_uint8 * 5),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_modify_qp(ctypes.Structure):
    _fields_ = [
        ("dest", ib_uverbs_qp_dest),
        ("alt_dest", ib_uverbs_qp_dest),
        ("qp_handle", c_uint32),
        ("attr_mask", c_uint32),
        ("qkey", c_uint32),
        ("rq_psn", c_uint32),
        ("sq_psn", c_uint32),
        ("dest_qp_num", c_uint32),
        ("qp_access_flags", c_uint32),
        ("pkey_index", c_uint16),
        ("alt_pkey_index", c_uint16),
        ("qp_state", c_uint8),
        ("cur_qp_state", c_uint8),
        ("path_mtu", c_uint8),
        ("path_mig_state", c_uint8),
        ("en_sqd_async_notify", c_uint8),
        ("max_rd_atomic", c_uint8),
        ("max_dest_rd_atomic", c_uint8),
        ("min_rnr_timer", c_uint8),
        ("port_num", c_uint8),
        ("timeout", c_uint8),
        ("retry_cnt", c_uint8),
        ("rnr_retry", c_uint8),
        ("alt_port_num", c_uint8),
        ("alt_timeout", c_uint8),
        ("reserved", c_uint8 * 2),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_ex_modify_qp(ctypes.Structure):
    _fields_ = [
        ("base", ib_uverbs_modify_qp),
        ("rate_limit", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_ex_modify_qp_resp(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
    ]


class ib_uverbs_destroy_qp(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("qp_handle", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_destroy_qp_resp(ctypes.Structure):
    _fields_ = [
        ("events_reported", c_uint32),
    ]


class ib_uverbs_sge(ctypes.Structure):
    _fields_ = [
        ("addr", c_uint64),
        ("length", c_uint32),
        ("lkey", c_uint32),
    ]


# enum ib_uverbs_wr_opcode
IB_UVERBS_WR_RDMA_WRITE = 0
IB_UVERBS_WR_RDMA_WRITE_WITH_IMM = 1
IB_UVERBS_WR_SEND = 2
IB_UVERBS_WR_SEND_WITH_IMM = 3
IB_UVERBS_WR_RDMA_READ = 4
IB_UVERBS_WR_ATOMIC_CMP_AND_SWP = 5
IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD = 6
IB_UVERBS_WR_LOCAL_INV = 7
IB_UVERBS_WR_BIND_MW = 8
IB_UVERBS_WR_SEND_WITH_INV = 9
IB_UVERBS_WR_TSO = 10
IB_UVERBS_WR_RDMA_READ_WITH_INV = 11
IB_UVERBS_WR_MASKED_ATOMIC_CMP_AND_SWP = 12
IB_UVERBS_WR_MASKED_ATOMIC_FETCH_AND_ADD = 13
IB_UVERBS_WR_FLUSH = 14
IB_UVERBS_WR_ATOMIC_WRITE = 15


class _ib_uverbs_send_wr_ex(ctypes.Union):
    _fields_ = [
        ("imm_data", c_uint32),  # __be32 (big-endian)
        ("invalidate_rkey", c_uint32),
    ]


class _ib_uverbs_send_wr_rdma(ctypes.Structure):
    _fields_ = [
        ("remote_addr", c_uint64),
        ("rkey", c_uint32),
        ("reserved", c_uint32),
    ]


class _ib_uverbs_send_wr_atomic(ctypes.Structure):
    _fields_ = [
        ("remote_addr", c_uint64),
        ("compare_add", c_uint64),
        ("swap", c_uint64),
        ("rkey", c_uint32),
        ("reserved", c_uint32),
    ]


class _ib_uverbs_send_wr_ud(ctypes.Structure):
    _fields_ = [
        ("ah", c_uint32),
        ("remote_qpn", c_uint32),
        ("remote_qkey", c_uint32),
        ("reserved", c_uint32),
    ]


class _ib_uverbs_send_wr_wr(ctypes.Union):
    _fields_ = [
        ("rdma", _ib_uverbs_send_wr_rdma),
        ("atomic", _ib_uverbs_send_wr_atomic),
        ("ud", _ib_uverbs_send_wr_ud),
    ]


class ib_uverbs_send_wr(ctypes.Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("num_sge", c_uint32),
        ("opcode", c_uint32),
        ("send_flags", c_uint32),
        ("ex", _ib_uverbs_send_wr_ex),
        ("wr", _ib_uverbs_send_wr_wr),
    ]


class ib_uverbs_post_send(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("qp_handle", c_uint32),
        ("wr_count", c_uint32),
        ("sge_count", c_uint32),
        ("wqe_size", c_uint32),
        ("send_wr", ib_uverbs_send_wr * 0),
    ]


class ib_uverbs_post_send_resp(ctypes.Structure):
    _fields_ = [
        ("bad_wr", c_uint32),
    ]


class ib_uverbs_recv_wr(ctypes.Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("num_sge", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_post_recv(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("qp_handle", c_uint32),
        ("wr_count", c_uint32),
        ("sge_count", c_uint32),
        ("wqe_size", c_uint32),
        ("recv_wr", ib_uverbs_recv_wr * 0),
    ]


class ib_uverbs_post_recv_resp(ctypes.Structure):
    _fields_ = [
        ("bad_wr", c_uint32),
    ]


class ib_uverbs_post_srq_recv(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("srq_handle", c_uint32),
        ("wr_count", c_uint32),
        ("sge_count", c_uint32),
        ("wqe_size", c_uint32),
        ("recv", ib_uverbs_recv_wr * 0),
    ]


class ib_uverbs_post_srq_recv_resp(ctypes.Structure):
    _fields_ = [
        ("bad_wr", c_uint32),
    ]


class ib_uverbs_create_ah(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("user_handle", c_uint64),
        ("pd_handle", c_uint32),
        ("reserved", c_uint32),
        ("attr", ib_uverbs_ah_attr),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_create_ah_resp(ctypes.Structure):
    _fields_ = [
        ("ah_handle", c_uint32),
        ("driver_data", c_uint32 * 0),
    ]


class ib_uverbs_destroy_ah(ctypes.Structure):
    _fields_ = [
        ("ah_handle", c_uint32),
    ]


class ib_uverbs_attach_mcast(ctypes.Structure):
    _fields_ = [
        ("gid", c_uint8 * 16),
        ("qp_handle", c_uint32),
        ("mlid", c_uint16),
        ("reserved", c_uint16),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_detach_mcast(ctypes.Structure):
    _fields_ = [
        ("gid", c_uint8 * 16),
        ("qp_handle", c_uint32),
        ("mlid", c_uint16),
        ("reserved", c_uint16),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_flow_spec_hdr(ctypes.Structure):
    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint16),
        ("reserved", c_uint16),
        ("flow_spec_data", c_uint64 * 0),
    ]


class _ib_uverbs_flow_spec_hdr_s(ctypes.Structure):
    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint16),
        ("reserved", c_uint16),
    ]


class _ib_uverbs_flow_spec_hdr_u(ctypes.Union):
    """The anonymous union every flow spec starts with (one Python type for all).

    ``union { struct ib_uverbs_flow_spec_hdr hdr; struct { type; size; reserved; }; }``
    """

    _anonymous_ = ("_s",)
    _fields_ = [
        ("hdr", ib_uverbs_flow_spec_hdr),
        ("_s", _ib_uverbs_flow_spec_hdr_s),
    ]


class ib_uverbs_flow_eth_filter(ctypes.Structure):
    _fields_ = [
        ("dst_mac", c_uint8 * 6),
        ("src_mac", c_uint8 * 6),
        ("ether_type", c_uint16),  # __be16 (big-endian)
        ("vlan_tag", c_uint16),  # __be16 (big-endian)
    ]


class ib_uverbs_flow_spec_eth(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_eth_filter),
        ("mask", ib_uverbs_flow_eth_filter),
    ]


class ib_uverbs_flow_ipv4_filter(ctypes.Structure):
    _fields_ = [
        ("src_ip", c_uint32),  # __be32 (big-endian)
        ("dst_ip", c_uint32),  # __be32 (big-endian)
        ("proto", c_uint8),
        ("tos", c_uint8),
        ("ttl", c_uint8),
        ("flags", c_uint8),
    ]


class ib_uverbs_flow_spec_ipv4(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_ipv4_filter),
        ("mask", ib_uverbs_flow_ipv4_filter),
    ]


class ib_uverbs_flow_tcp_udp_filter(ctypes.Structure):
    _fields_ = [
        ("dst_port", c_uint16),  # __be16 (big-endian)
        ("src_port", c_uint16),  # __be16 (big-endian)
    ]


class ib_uverbs_flow_spec_tcp_udp(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_tcp_udp_filter),
        ("mask", ib_uverbs_flow_tcp_udp_filter),
    ]


class ib_uverbs_flow_ipv6_filter(ctypes.Structure):
    _fields_ = [
        ("src_ip", c_uint8 * 16),
        ("dst_ip", c_uint8 * 16),
        ("flow_label", c_uint32),  # __be32 (big-endian)
        ("next_hdr", c_uint8),
        ("traffic_class", c_uint8),
        ("hop_limit", c_uint8),
        ("reserved", c_uint8),
    ]


class ib_uverbs_flow_spec_ipv6(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_ipv6_filter),
        ("mask", ib_uverbs_flow_ipv6_filter),
    ]


class ib_uverbs_flow_spec_action_tag(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("tag_id", c_uint32),
        ("reserved1", c_uint32),
    ]


class ib_uverbs_flow_spec_action_drop(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
    ]


class ib_uverbs_flow_spec_action_handle(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("handle", c_uint32),
        ("reserved1", c_uint32),
    ]


class ib_uverbs_flow_spec_action_count(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("handle", c_uint32),
        ("reserved1", c_uint32),
    ]


class ib_uverbs_flow_tunnel_filter(ctypes.Structure):
    _fields_ = [
        ("tunnel_id", c_uint32),  # __be32 (big-endian)
    ]


class ib_uverbs_flow_spec_tunnel(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_tunnel_filter),
        ("mask", ib_uverbs_flow_tunnel_filter),
    ]


class ib_uverbs_flow_spec_esp_filter(ctypes.Structure):
    _fields_ = [
        ("spi", c_uint32),
        ("seq", c_uint32),
    ]


class ib_uverbs_flow_spec_esp(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_spec_esp_filter),
        ("mask", ib_uverbs_flow_spec_esp_filter),
    ]


class ib_uverbs_flow_gre_filter(ctypes.Structure):
    _fields_ = [
        ("c_ks_res0_ver", c_uint16),  # __be16 (big-endian)
        ("protocol", c_uint16),  # __be16 (big-endian)
        ("key", c_uint32),  # __be32 (big-endian)
    ]


class ib_uverbs_flow_spec_gre(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_gre_filter),
        ("mask", ib_uverbs_flow_gre_filter),
    ]


class ib_uverbs_flow_mpls_filter(ctypes.Structure):
    _fields_ = [
        ("label", c_uint32),  # __be32 (big-endian)
    ]


class ib_uverbs_flow_spec_mpls(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _ib_uverbs_flow_spec_hdr_u),  # union { hdr; struct {type; size; reserved;}; }
        ("val", ib_uverbs_flow_mpls_filter),
        ("mask", ib_uverbs_flow_mpls_filter),
    ]


class ib_uverbs_flow_attr(ctypes.Structure):
    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint16),
        ("priority", c_uint16),
        ("num_of_specs", c_uint8),
        ("reserved", c_uint8 * 2),
        ("port", c_uint8),
        ("flags", c_uint32),
        ("flow_specs", ib_uverbs_flow_spec_hdr * 0),
    ]


class ib_uverbs_create_flow(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("qp_handle", c_uint32),
        ("flow_attr", ib_uverbs_flow_attr),
    ]


class ib_uverbs_create_flow_resp(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("flow_handle", c_uint32),
    ]


class ib_uverbs_destroy_flow(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("flow_handle", c_uint32),
    ]


class ib_uverbs_create_srq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("user_handle", c_uint64),
        ("pd_handle", c_uint32),
        ("max_wr", c_uint32),
        ("max_sge", c_uint32),
        ("srq_limit", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_create_xsrq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("user_handle", c_uint64),
        ("srq_type", c_uint32),
        ("pd_handle", c_uint32),
        ("max_wr", c_uint32),
        ("max_sge", c_uint32),
        ("srq_limit", c_uint32),
        ("max_num_tags", c_uint32),
        ("xrcd_handle", c_uint32),
        ("cq_handle", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_create_srq_resp(ctypes.Structure):
    _fields_ = [
        ("srq_handle", c_uint32),
        ("max_wr", c_uint32),
        ("max_sge", c_uint32),
        ("srqn", c_uint32),
        ("driver_data", c_uint32 * 0),
    ]


class ib_uverbs_modify_srq(ctypes.Structure):
    _fields_ = [
        ("srq_handle", c_uint32),
        ("attr_mask", c_uint32),
        ("max_wr", c_uint32),
        ("srq_limit", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_query_srq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("srq_handle", c_uint32),
        ("reserved", c_uint32),
        ("driver_data", c_uint64 * 0),
    ]


class ib_uverbs_query_srq_resp(ctypes.Structure):
    _fields_ = [
        ("max_wr", c_uint32),
        ("max_sge", c_uint32),
        ("srq_limit", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_destroy_srq(ctypes.Structure):
    _fields_ = [
        ("response", c_uint64),
        ("srq_handle", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_destroy_srq_resp(ctypes.Structure):
    _fields_ = [
        ("events_reported", c_uint32),
    ]


class ib_uverbs_ex_create_wq(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("wq_type", c_uint32),
        ("user_handle", c_uint64),
        ("pd_handle", c_uint32),
        ("cq_handle", c_uint32),
        ("max_wr", c_uint32),
        ("max_sge", c_uint32),
        ("create_flags", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_ex_create_wq_resp(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
        ("wq_handle", c_uint32),
        ("max_wr", c_uint32),
        ("max_sge", c_uint32),
        ("wqn", c_uint32),
    ]


class ib_uverbs_ex_destroy_wq(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("wq_handle", c_uint32),
    ]


class ib_uverbs_ex_destroy_wq_resp(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
        ("events_reported", c_uint32),
        ("reserved", c_uint32),
    ]


class ib_uverbs_ex_modify_wq(ctypes.Structure):
    _fields_ = [
        ("attr_mask", c_uint32),
        ("wq_handle", c_uint32),
        ("wq_state", c_uint32),
        ("curr_wq_state", c_uint32),
        ("flags", c_uint32),
        ("flags_mask", c_uint32),
    ]


IB_USER_VERBS_MAX_LOG_IND_TBL_SIZE = 0x0D


class ib_uverbs_ex_create_rwq_ind_table(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("log_ind_tbl_size", c_uint32),
        ("wq_handles", c_uint32 * 0),
    ]


class ib_uverbs_ex_create_rwq_ind_table_resp(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("response_length", c_uint32),
        ("ind_tbl_handle", c_uint32),
        ("ind_tbl_num", c_uint32),
    ]


class ib_uverbs_ex_destroy_rwq_ind_table(ctypes.Structure):
    _fields_ = [
        ("comp_mask", c_uint32),
        ("ind_tbl_handle", c_uint32),
    ]


class ib_uverbs_cq_moderation(ctypes.Structure):
    _fields_ = [
        ("cq_count", c_uint16),
        ("cq_period", c_uint16),
    ]


class ib_uverbs_ex_modify_cq(ctypes.Structure):
    _fields_ = [
        ("cq_handle", c_uint32),
        ("attr_mask", c_uint32),
        ("attr", ib_uverbs_cq_moderation),
        ("reserved", c_uint32),
    ]


IB_DEVICE_NAME_MAX = 64

# enum ib_uverbs_device_cap_flags
IB_UVERBS_DEVICE_RESIZE_MAX_WR = 1 << 0
IB_UVERBS_DEVICE_BAD_PKEY_CNTR = 1 << 1
IB_UVERBS_DEVICE_BAD_QKEY_CNTR = 1 << 2
IB_UVERBS_DEVICE_RAW_MULTI = 1 << 3
IB_UVERBS_DEVICE_AUTO_PATH_MIG = 1 << 4
IB_UVERBS_DEVICE_CHANGE_PHY_PORT = 1 << 5
IB_UVERBS_DEVICE_UD_AV_PORT_ENFORCE = 1 << 6
IB_UVERBS_DEVICE_CURR_QP_STATE_MOD = 1 << 7
IB_UVERBS_DEVICE_SHUTDOWN_PORT = 1 << 8
IB_UVERBS_DEVICE_PORT_ACTIVE_EVENT = 1 << 10
IB_UVERBS_DEVICE_SYS_IMAGE_GUID = 1 << 11
IB_UVERBS_DEVICE_RC_RNR_NAK_GEN = 1 << 12
IB_UVERBS_DEVICE_SRQ_RESIZE = 1 << 13
IB_UVERBS_DEVICE_N_NOTIFY_CQ = 1 << 14
IB_UVERBS_DEVICE_MEM_WINDOW = 1 << 17
IB_UVERBS_DEVICE_UD_IP_CSUM = 1 << 18
IB_UVERBS_DEVICE_XRC = 1 << 20
IB_UVERBS_DEVICE_MEM_MGT_EXTENSIONS = 1 << 21
IB_UVERBS_DEVICE_MEM_WINDOW_TYPE_2A = 1 << 23
IB_UVERBS_DEVICE_MEM_WINDOW_TYPE_2B = 1 << 24
IB_UVERBS_DEVICE_RC_IP_CSUM = 1 << 25
IB_UVERBS_DEVICE_RAW_IP_CSUM = 1 << 26
IB_UVERBS_DEVICE_MANAGED_FLOW_STEERING = 1 << 29
IB_UVERBS_DEVICE_RAW_SCATTER_FCS = 1 << 34
IB_UVERBS_DEVICE_PCI_WRITE_END_PADDING = 1 << 36
IB_UVERBS_DEVICE_FLUSH_GLOBAL = 1 << 38
IB_UVERBS_DEVICE_FLUSH_PERSISTENT = 1 << 39
IB_UVERBS_DEVICE_ATOMIC_WRITE = 1 << 40
IB_UVERBS_DEVICE_CC_DMA_BOUNCE = 1 << 41

# enum ib_uverbs_raw_packet_caps
IB_UVERBS_RAW_PACKET_CAP_CVLAN_STRIPPING = 1 << 0
IB_UVERBS_RAW_PACKET_CAP_SCATTER_FCS = 1 << 1
IB_UVERBS_RAW_PACKET_CAP_IP_CSUM = 1 << 2
IB_UVERBS_RAW_PACKET_CAP_DELAY_DROP = 1 << 3
