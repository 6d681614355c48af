"""rdma/rdma_user_rxe.h: soft-RoCE's driver ABI (Linux 7.2 uapi).

What rxe and its rdma-core provider share: the driver part of ``CREATE_CQ`` and
``CREATE_QP`` responses (:class:`mminfo` -- an ``mmap`` offset and size on the uverbs
fd), and the queues themselves.  Every work and completion queue is one buffer laid
out as :class:`rxe_queue_buf`: a header with ``log2_elem_size`` and ``index_mask``,
the producer index and the consumer index on their own cache lines, then the slots
(``1 << log2_elem_size`` bytes each).  Send queues hold :class:`rxe_send_wqe`, receive
queues :class:`rxe_recv_wqe` (each followed by its scatter/gather list of
:class:`rxe_sge`), completion queues ``ib_uverbs_wc``.

The parts of the header the model uses, in header order (the UD address vector,
memory-window and flush members of the ``rxe_send_wr`` union are kept as raw bytes).
"""

import ctypes
from ctypes import c_uint8, c_uint32, c_uint64

__all__ = [
    "RXE_NETWORK_TYPE_IPV4",
    "RXE_NETWORK_TYPE_IPV6",
    "mminfo",
    "rxe_create_ah_resp",
    "rxe_create_cq_resp",
    "rxe_create_qp_resp",
    "rxe_create_srq_resp",
    "rxe_dma_info",
    "rxe_modify_srq_cmd",
    "rxe_queue_buf",
    "rxe_recv_wqe",
    "rxe_send_wqe",
    "rxe_send_wr",
    "rxe_sge",
]

_HEADER = "rdma/rdma_user_rxe.h"

RXE_NETWORK_TYPE_IPV4 = 1
RXE_NETWORK_TYPE_IPV6 = 2


class _rxe_send_wr_rdma(ctypes.Structure):
    _fields_ = [
        ("remote_addr", c_uint64),
        ("rkey", c_uint32),
        ("reserved", c_uint32),
    ]


class _rxe_send_wr_atomic(ctypes.Structure):
    _fields_ = [
        ("remote_addr", c_uint64),
        ("compare_add", c_uint64),
        ("swap", c_uint64),
        ("rkey", c_uint32),
        ("reserved", c_uint32),
    ]


class _rxe_send_wr_wr(ctypes.Union):
    _fields_ = [
        ("rdma", _rxe_send_wr_rdma),
        ("atomic", _rxe_send_wr_atomic),
        ("_raw", c_uint64 * 15),  # the ud member (with its rxe_av) is the largest
    ]


class _rxe_send_wr_ex(ctypes.Union):
    _fields_ = [
        ("imm_data", c_uint32),  # big-endian
        ("invalidate_rkey", c_uint32),
    ]


class rxe_send_wr(ctypes.Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("reserved", c_uint32),
        ("opcode", c_uint32),
        ("send_flags", c_uint32),
        ("ex", _rxe_send_wr_ex),
        ("wr", _rxe_send_wr_wr),
    ]


class rxe_sge(ctypes.Structure):
    _fields_ = [
        ("addr", c_uint64),
        ("length", c_uint32),
        ("lkey", c_uint32),
    ]


class mminfo(ctypes.Structure):
    _fields_ = [
        ("offset", c_uint64),
        ("size", c_uint32),
        ("pad", c_uint32),
    ]


class rxe_dma_info(ctypes.Structure):
    _fields_ = [
        ("length", c_uint32),
        ("resid", c_uint32),
        ("cur_sge", c_uint32),
        ("num_sge", c_uint32),
        ("sge_offset", c_uint32),
        ("reserved", c_uint32),
        ("sge", rxe_sge * 0),  # or inline_data / atomic_wr
    ]


class rxe_send_wqe(ctypes.Structure):
    _fields_ = [
        ("wr", rxe_send_wr),
        ("status", c_uint32),
        ("state", c_uint32),
        ("iova", c_uint64),
        ("mask", c_uint32),
        ("first_psn", c_uint32),
        ("last_psn", c_uint32),
        ("ack_length", c_uint32),
        ("ssn", c_uint32),
        ("has_rd_atomic", c_uint32),
        ("dma", rxe_dma_info),
    ]


class rxe_recv_wqe(ctypes.Structure):
    _fields_ = [
        ("wr_id", c_uint64),
        ("reserved", c_uint32),
        ("padding", c_uint32),
        ("dma", rxe_dma_info),
    ]


class rxe_create_ah_resp(ctypes.Structure):
    _fields_ = [
        ("ah_num", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class rxe_create_cq_resp(ctypes.Structure):
    _fields_ = [
        ("mi", mminfo),
    ]


class rxe_create_qp_resp(ctypes.Structure):
    _fields_ = [
        ("rq_mi", mminfo),
        ("sq_mi", mminfo),
    ]


class rxe_queue_buf(ctypes.Structure):
    _fields_ = [
        ("log2_elem_size", c_uint32),
        ("index_mask", c_uint32),
        ("pad_1", c_uint32 * 30),
        ("producer_index", c_uint32),
        ("pad_2", c_uint32 * 31),
        ("consumer_index", c_uint32),
        ("pad_3", c_uint32 * 31),
        ("data", c_uint8 * 0),
    ]


class rxe_create_srq_resp(ctypes.Structure):
    _fields_ = [
        ("mi", mminfo),
        ("srq_num", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class rxe_modify_srq_cmd(ctypes.Structure):
    _fields_ = [
        ("mmap_info_addr", ctypes.c_uint64),
    ]
