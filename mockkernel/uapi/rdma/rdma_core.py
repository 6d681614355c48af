"""infiniband/verbs.h (rdma-core 65): the userspace names a verbs program uses for DMAH and MRs.

Not a kernel header: these are libibverbs' own names, which an rdma-core style
program passes to ``ibv_alloc_dmah``/``ibv_reg_mr_ex``/``ibv_reg_dmabuf_mr`` and
which the library translates into ``RDMA_VERBS_IOCTL`` attributes:

* ``ibv_dmah_init_attr``: ``comp_mask`` says which of ``cpu_id`` (→
  ``UVERBS_ATTR_ALLOC_DMAH_CPU_ID``), ``ph`` (→ ``UVERBS_ATTR_ALLOC_DMAH_PH``)
  and ``tph_mem_type`` (→ ``UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE``, an
  ``IBV_TPH_MEM_TYPE_*``) are set.  The 7.2 kernel uapi has no names for the
  memory types; the kernel's internal ``enum tph_mem_type`` has the same values.
* ``ibv_mr_init_attr``: ``ibv_reg_mr_ex``'s input; ``IBV_REG_MR_MASK_DMAH``
  with ``dmah`` → ``UVERBS_ATTR_REG_MR_DMA_HANDLE``, ``IBV_REG_MR_MASK_FD`` +
  ``FD_OFFSET`` → ``UVERBS_ATTR_REG_MR_FD``/``FD_OFFSET``.  Its pointers are
  process addresses (``c_void_p``), meaningful only to the library.
* ``IBV_ACCESS_*``: the same bits as the kernel's ``IB_UVERBS_ACCESS_*``.
"""

import ctypes
from ctypes import c_int, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p

__all__ = [
    "IBV_ACCESS_FLUSH_GLOBAL",
    "IBV_ACCESS_FLUSH_PERSISTENT",
    "IBV_ACCESS_HUGETLB",
    "IBV_ACCESS_LOCAL_WRITE",
    "IBV_ACCESS_MW_BIND",
    "IBV_ACCESS_ON_DEMAND",
    "IBV_ACCESS_OPTIONAL_FIRST",
    "IBV_ACCESS_OPTIONAL_RANGE",
    "IBV_ACCESS_RELAXED_ORDERING",
    "IBV_ACCESS_REMOTE_ATOMIC",
    "IBV_ACCESS_REMOTE_READ",
    "IBV_ACCESS_REMOTE_WRITE",
    "IBV_ACCESS_ZERO_BASED",
    "IBV_DMAH_INIT_ATTR_MASK_CPU_ID",
    "IBV_DMAH_INIT_ATTR_MASK_PH",
    "IBV_DMAH_INIT_ATTR_MASK_TPH_MEM_TYPE",
    "IBV_REG_MR_MASK_ADDR",
    "IBV_REG_MR_MASK_BUF",
    "IBV_REG_MR_MASK_DMAH",
    "IBV_REG_MR_MASK_FD",
    "IBV_REG_MR_MASK_FD_OFFSET",
    "IBV_REG_MR_MASK_IOVA",
    "IBV_TPH_MEM_TYPE_PM",
    "IBV_TPH_MEM_TYPE_VM",
    "ibv_dmah_init_attr",
    "ibv_mr_init_attr",
]

_HEADER = "infiniband/verbs.h"

# infiniband/verbs_api.h
IBV_ACCESS_OPTIONAL_FIRST = 1 << 20  # IB_UVERBS_ACCESS_OPTIONAL_FIRST
IBV_ACCESS_OPTIONAL_RANGE = 0x3FF00000  # IB_UVERBS_ACCESS_OPTIONAL_RANGE

# enum ibv_access_flags
IBV_ACCESS_LOCAL_WRITE = 1
IBV_ACCESS_REMOTE_WRITE = 1 << 1
IBV_ACCESS_REMOTE_READ = 1 << 2
IBV_ACCESS_REMOTE_ATOMIC = 1 << 3
IBV_ACCESS_MW_BIND = 1 << 4
IBV_ACCESS_ZERO_BASED = 1 << 5
IBV_ACCESS_ON_DEMAND = 1 << 6
IBV_ACCESS_HUGETLB = 1 << 7
IBV_ACCESS_FLUSH_GLOBAL = 1 << 8
IBV_ACCESS_FLUSH_PERSISTENT = 1 << 9
IBV_ACCESS_RELAXED_ORDERING = IBV_ACCESS_OPTIONAL_FIRST

# enum ibv_mr_init_attr_mask
IBV_REG_MR_MASK_IOVA = 1 << 0
IBV_REG_MR_MASK_ADDR = 1 << 1
IBV_REG_MR_MASK_FD = 1 << 2
IBV_REG_MR_MASK_FD_OFFSET = 1 << 3
IBV_REG_MR_MASK_DMAH = 1 << 4
IBV_REG_MR_MASK_BUF = 1 << 5


class ibv_mr_init_attr(ctypes.Structure):
    """``ibv_reg_mr_ex`` input (library struct: pointers are process addresses)."""

    _fields_ = [
        ("length", c_size_t),
        ("access", c_int),
        ("comp_mask", c_uint64),  # Use enum ibv_mr_init_attr_mask
        ("iova", c_uint64),
        ("addr", c_void_p),
        ("fd", c_int),
        ("fd_offset", c_uint64),
        ("dmah", c_void_p),  # struct ibv_dmah *
        ("buf", c_void_p),  # struct ibv_buf *: handle from ibv_alloc_buf(), addr must be set
    ]


# enum ibv_tph_mem_type
IBV_TPH_MEM_TYPE_VM = 0  # volatile memory
IBV_TPH_MEM_TYPE_PM = 1  # persistent memory

# enum ibv_dmah_init_attr_mask
IBV_DMAH_INIT_ATTR_MASK_CPU_ID = 1 << 0
IBV_DMAH_INIT_ATTR_MASK_PH = 1 << 1
IBV_DMAH_INIT_ATTR_MASK_TPH_MEM_TYPE = 1 << 2


class ibv_dmah_init_attr(ctypes.Structure):
    """``ibv_alloc_dmah`` input: ``comp_mask`` (``IBV_DMAH_INIT_ATTR_MASK_*``) says what is set."""

    _fields_ = [
        ("comp_mask", c_uint32),
        ("cpu_id", c_uint32),
        ("ph", c_uint8),
        ("tph_mem_type", c_uint8),  # From enum ibv_tph_mem_type
    ]
