"""mlx5_ib's user context: ``alloc_ucontext``'s driver data and ``mmap`` of its pages.

``GET_CONTEXT`` carries ``mlx5_ib_alloc_ucontext_req_v2`` and answers
``mlx5_ib_alloc_ucontext_resp`` (``main.c``'s ``mlx5_ib_alloc_ucontext``): the checks
in the kernel's order, then the device's limits.  rdma-core 59 asks for dynamic UARs
(``MLX5_LIB_CAP_DYN_UAR``), so no blue-flame registers are handed out at open
(``tot_bfregs`` 0) and its doorbell pages come from ``MLX5_IB_OBJECT_UAR``
(``MLX5_IB_METHOD_UAR_OBJ_ALLOC``: a non-cached UAR, a page of BAR 0, and the
``mmap`` offset of its entry; write-combining ones are ``EOPNOTSUPP``: no WC here).
It asks for a DEVX context too: this function models no DEVX (``log_max_uctx`` 0), so
that is ``EINVAL`` and the provider retries without it, as on such a device.

A context that does not ask for dynamic UARs (an older provider, or the raw ABI) gets
static ones: one 4K UAR page of BAR 0 per two blue-flame registers asked for, mapped
by ``MLX5_IB_MMAP_REGULAR_PAGE``/``NC_PAGE`` with their index.

``mmap`` of the uverbs file decodes the offset as ``mlx5_ib_mmap`` does (command in
bits 8-15 of the page offset): the core-clock page is the page of BAR 0's init
segment holding ``internal_timer_h`` (read-only, one page), so the program reads the
free-running counter where the hardware has it.  Legacy UAR pages of a dynamic-UAR
context, and offsets naming no entry, are ``EINVAL``.
"""

from __future__ import annotations

import errno
import mmap as _mmap
import time
from typing import TYPE_CHECKING

from mockkernel.driver import (
    ACCESS_DESTROY,
    ACCESS_NEW,
    PAGE_SIZE,
    AttrBundle,
    IbUcontext,
    ObjectDef,
    TracePoint,
    Udata,
    UobjType,
    Vma,
    const_in,
    ib_copy_to_udata,
    idr,
    kerr,
    ptr_out,
    uverbs_method,
)
from mockkernel.uapi.rdma.mlx5_abi import (
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_CORE_CLOCK_OFFSET,
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_DUMP_FILL_MKEY,
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_ECE,
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_MKEY_UPDATE_TAG,
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_REAL_TIME_TS,
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_SQD2RTS,
    MLX5_IB_ALLOC_UCTX_DEVX,
    MLX5_LIB_CAP_4K_UAR,
    MLX5_LIB_CAP_DYN_UAR,
    MLX5_USER_CMDS_SUPP_UHW_CREATE_AH,
    MLX5_USER_CMDS_SUPP_UHW_QUERY_DEVICE,
    mlx5_ib_alloc_ucontext_req_v2,
    mlx5_ib_alloc_ucontext_resp,
)
from mockkernel.uapi.rdma.mlx5_user_ioctl_cmds import (
    MLX5_IB_ATTR_UAR_OBJ_ALLOC_HANDLE,
    MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_LENGTH,
    MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_OFFSET,
    MLX5_IB_ATTR_UAR_OBJ_ALLOC_PAGE_ID,
    MLX5_IB_ATTR_UAR_OBJ_ALLOC_TYPE,
    MLX5_IB_ATTR_UAR_OBJ_DESTROY_HANDLE,
    MLX5_IB_METHOD_UAR_OBJ_ALLOC,
    MLX5_IB_METHOD_UAR_OBJ_DESTROY,
    MLX5_IB_OBJECT_UAR,
)
from mockkernel.uapi.rdma.mlx5_user_ioctl_verbs import (
    MLX5_IB_UAPI_UAR_ALLOC_TYPE_BF,
    MLX5_IB_UAPI_UAR_ALLOC_TYPE_NC,
)

if TYPE_CHECKING:
    from . import Mlx5Dev

__all__ = [
    "Mlx5Ucontext",
    "UarTable",
    "mlx5_alloc_ucontext",
    "mlx5_dealloc_ucontext",
    "mlx5_ib_mmap",
]

trace_mlx5_alloc_ucontext = TracePoint(
    "mlx5.alloc_ucontext", "ibdev", "cqe_version", "lib_caps", "tot_bfregs", "response_length"
)
trace_mlx5_uar_alloc = TracePoint(
    "mlx5.uar_alloc", "ibdev", "page_id", "mmap_offset", hex_keys=("mmap_offset",)
)

_REQ_V0 = 8  # sizeof(struct mlx5_ib_alloc_ucontext_req)
_MIN_REQ_V2 = 16  # offsetof(struct mlx5_ib_alloc_ucontext_req_v2, max_cqe_version)
_REQ_V2 = 32
MLX5_NON_FP_BFREGS_PER_UAR = 2
MLX5_ADAPTER_PAGE_SHIFT = 12
#: the device's capabilities (a ConnectX-7): log_max_qp, log_bf_reg_size, ...
LOG_MAX_QP = 17
LOG_BF_REG_SIZE = 9
LOG_MAX_QP_SZ = 15
LOG_MAX_SRQ_SZ = 15
MAX_WQE_SZ_SQ = 1024
MAX_WQE_SZ_RQ = 512
CQE_VERSION = 1
NUM_OF_UARS_PER_PAGE = 1
MLX5_MAX_BFREGS = 512  # MLX5_MAX_UARS * MLX5_NON_FP_BFREGS_PER_UAR
MLX5_INLINE_MODE_NONE = 0
#: the dump-and-fill mkey (``mlx5_cmd_dump_fill_mkey``) firmware reports
DUMP_FILL_MKEY = 0x00000100
#: offsetof(struct mlx5_init_seg, internal_timer_h): the core clock's page of BAR 0
INTERNAL_TIMER_H = 0x1000

# mlx5_ib_mmap_cmd (drivers/infiniband/hw/mlx5/mlx5_ib.h)
MLX5_IB_MMAP_REGULAR_PAGE = 0
MLX5_IB_MMAP_GET_CONTIGUOUS_PAGES = 1
MLX5_IB_MMAP_WC_PAGE = 2
MLX5_IB_MMAP_NC_PAGE = 3
MLX5_IB_MMAP_CORE_CLOCK = 5
MLX5_IB_MMAP_ALLOC_WC = 6
MLX5_IB_MMAP_CLOCK_INFO = 7
MLX5_IB_MMAP_CMD_SHIFT = 8
MLX5_IB_MMAP_CMD_MASK = 0xFF
MLX5_IB_MMAP_OFFSET_START = 9
MLX5_IB_MMAP_OFFSET_END = 255


class Mlx5Ucontext:
    """``struct mlx5_ib_ucontext``: what the context was made with, and the UARs
    (``bfregi->sys_pages``: firmware UAR indexes, pages of BAR 0) it owns."""

    def __init__(self, lib_uar_4k: bool, lib_uar_dyn: bool, cqe_version: int) -> None:
        self.lib_uar_4k = lib_uar_4k
        self.lib_uar_dyn = lib_uar_dyn
        self.cqe_version = cqe_version
        self.sys_pages: list[int] = []
        #: the context's mmap entries (``rdma_user_mmap_entry``) by ``cmd << 16 | index``
        self.entries: dict[int, UarEntry] = {}

    def insert_entry(self, entry: UarEntry) -> int:
        """``rdma_user_mmap_entry_insert_range``: the lowest free page offset from
        ``MLX5_IB_MMAP_OFFSET_START << 16``."""
        pgoff = MLX5_IB_MMAP_OFFSET_START << 16
        while pgoff in self.entries:
            pgoff += 1
        if pgoff > (MLX5_IB_MMAP_OFFSET_END << 16) + 0xFFFF:
            raise kerr(errno.ENOMEM)
        self.entries[pgoff] = entry
        entry.start_pgoff = pgoff
        return pgoff


class UarEntry:
    """``struct mlx5_user_mmap_entry`` of a UAR object: one BAR 0 page."""

    def __init__(self, mdev: Mlx5Dev, mctx: Mlx5Ucontext, page_idx: int) -> None:
        self.mdev = mdev
        self.mctx = mctx
        self.page_idx = page_idx
        self.start_pgoff = -1

    @property
    def mmap_offset(self) -> int:
        """``mlx5_entry_to_mmap_offset``: the ``mmap`` offset userspace uses."""
        cmd = (self.start_pgoff >> 16) & 0xFFFF
        index = self.start_pgoff & 0xFFFF
        return (((index >> 8) << 16) | (cmd << MLX5_IB_MMAP_CMD_SHIFT) | (index & 0xFF)) * (
            PAGE_SIZE
        )


class UarTable:
    """The function's UAR pages (``mlx5_cmd_uar_alloc``): index N is page N of BAR 0.
    The first :data:`FIRST_USER_UAR` belong to the kernel (its own doorbells)."""

    FIRST_USER_UAR = 16

    def __init__(self, bar_pages: int) -> None:
        self.limit = bar_pages
        self.used: set[int] = set()

    def alloc(self) -> int:
        index = self.FIRST_USER_UAR
        while index in self.used:
            index += 1
        if index >= self.limit:
            raise kerr(errno.ENOMEM)
        self.used.add(index)
        return index

    def free(self, index: int) -> None:
        self.used.discard(index)


def mlx5_alloc_ucontext(mdev: Mlx5Dev, uctx: IbUcontext, udata: Udata) -> None:
    """``mlx5_ib_alloc_ucontext``: check the request, answer the response."""
    if udata.inlen != _REQ_V0 and udata.inlen < _MIN_REQ_V2:
        raise kerr(errno.EINVAL)
    raw = udata.read()[:_REQ_V2]
    req = mlx5_ib_alloc_ucontext_req_v2.from_buffer_copy(raw.ljust(_REQ_V2, b"\0"))
    if req.flags & ~MLX5_IB_ALLOC_UCTX_DEVX:
        raise kerr(errno.EOPNOTSUPP)
    if req.comp_mask or req.reserved0 or req.reserved1 or req.reserved2:
        raise kerr(errno.EOPNOTSUPP)
    total = -(-req.total_num_bfregs // MLX5_NON_FP_BFREGS_PER_UAR) * MLX5_NON_FP_BFREGS_PER_UAR
    if req.num_low_latency_bfregs > total - 1:
        raise kerr(errno.EINVAL)
    if req.flags & MLX5_IB_ALLOC_UCTX_DEVX:
        raise kerr(errno.EINVAL)  # mlx5_ib_devx_create: this function has no log_max_uctx
    lib_uar_4k = bool(req.lib_caps & MLX5_LIB_CAP_4K_UAR)
    lib_uar_dyn = bool(req.lib_caps & MLX5_LIB_CAP_DYN_UAR)
    mctx = Mlx5Ucontext(lib_uar_4k, lib_uar_dyn, min(req.max_cqe_version, CQE_VERSION))
    if not lib_uar_dyn:
        # calc_total_bfregs + allocate_uars: one 4K UAR per two bfregs, none dynamic
        if total > MLX5_MAX_BFREGS:
            raise kerr(errno.ENOMEM)
        try:
            for _ in range(max(total, MLX5_NON_FP_BFREGS_PER_UAR) // MLX5_NON_FP_BFREGS_PER_UAR):
                mctx.sys_pages.append(mdev.uars.alloc())
        except OSError:
            for index in mctx.sys_pages:
                mdev.uars.free(index)
            raise
    resp = mlx5_ib_alloc_ucontext_resp()
    resp.comp_mask = MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_DUMP_FILL_MKEY
    resp.dump_fill_mkey = DUMP_FILL_MKEY
    resp.qp_tab_size = 1 << LOG_MAX_QP
    resp.bf_reg_size = 0  # no write-combining (mlx5_wc_support_get): no blue flame
    resp.cache_line_size = 64
    resp.max_sq_desc_sz = MAX_WQE_SZ_SQ
    resp.max_rq_desc_sz = MAX_WQE_SZ_RQ
    resp.max_send_wqebb = 1 << LOG_MAX_QP_SZ
    resp.max_recv_wr = 1 << LOG_MAX_QP_SZ
    resp.max_srq_recv_wr = 1 << LOG_MAX_SRQ_SZ
    resp.cqe_version = mctx.cqe_version
    resp.log_uar_size = MLX5_ADAPTER_PAGE_SHIFT  # uar_4k
    resp.num_uars_per_page = NUM_OF_UARS_PER_PAGE
    resp.tot_bfregs = 0 if lib_uar_dyn else len(mctx.sys_pages) * MLX5_NON_FP_BFREGS_PER_UAR
    resp.num_ports = mdev.ibdev.phys_port_cnt
    resp.cmds_supp_uhw = MLX5_USER_CMDS_SUPP_UHW_QUERY_DEVICE | MLX5_USER_CMDS_SUPP_UHW_CREATE_AH
    resp.eth_min_inline = MLX5_INLINE_MODE_NONE + 1  # RoCE: mlx5_query_min_inline, plus one
    resp.clock_info_versions = 0  # no PTP clock-info page is modelled
    resp.comp_mask |= (
        MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_CORE_CLOCK_OFFSET
        | MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_ECE
        | MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_REAL_TIME_TS
        | MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_SQD2RTS
        | MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_MKEY_UPDATE_TAG
    )
    resp.hca_core_clock_offset = INTERNAL_TIMER_H % PAGE_SIZE
    resp.num_dyn_bfregs = 0
    resp.response_length = min(udata.outlen, len(bytes(resp)))
    try:
        ib_copy_to_udata(udata, bytes(resp)[: resp.response_length])
    except OSError:
        for index in mctx.sys_pages:
            mdev.uars.free(index)
        raise
    uctx.priv = mctx
    trace_mlx5_alloc_ucontext(mdev.kernel.tracer, mdev.ibdev.name, resp.cqe_version,
                              req.lib_caps, resp.tot_bfregs, resp.response_length)  # fmt: skip


def mlx5_dealloc_ucontext(mdev: Mlx5Dev, uctx: IbUcontext) -> None:
    """``mlx5_ib_dealloc_ucontext``: ``deallocate_uars``."""
    mctx: Mlx5Ucontext | None = uctx.priv
    if mctx is not None:
        for index in mctx.sys_pages:
            mdev.uars.free(index)
        mctx.sys_pages.clear()


# -- MLX5_IB_OBJECT_UAR: dynamic UARs (uar_obj_alloc in main.c) ---------------------------------
def _uar_obj_alloc(bundle: AttrBundle) -> None:
    """``MLX5_IB_METHOD_UAR_OBJ_ALLOC``: a UAR page and its ``mmap`` offset.  A
    write-combining (blue-flame) UAR needs WC support, which this model has not
    (``EOPNOTSUPP``); a non-cached one is a page of BAR 0."""
    uctx = bundle.get_ucontext()
    mctx: Mlx5Ucontext = uctx.priv
    mdev: Mlx5Dev = bundle.device.ops.mdev  # type: ignore[attr-defined]
    uobj = bundle.get_uobject(MLX5_IB_ATTR_UAR_OBJ_ALLOC_HANDLE)
    alloc_type = bundle.get_const(MLX5_IB_ATTR_UAR_OBJ_ALLOC_TYPE, 0xFFFFFFFF)
    if alloc_type not in (MLX5_IB_UAPI_UAR_ALLOC_TYPE_BF, MLX5_IB_UAPI_UAR_ALLOC_TYPE_NC):
        raise kerr(errno.EOPNOTSUPP)
    if alloc_type == MLX5_IB_UAPI_UAR_ALLOC_TYPE_BF:
        raise kerr(errno.EOPNOTSUPP)  # !mlx5_wc_support_get
    page = mdev.uars.alloc()
    entry = UarEntry(mdev, mctx, page)
    try:
        mctx.insert_entry(entry)
    except OSError:
        mdev.uars.free(page)
        raise
    uobj.object = entry
    bundle.finalize_uobj_create(MLX5_IB_ATTR_UAR_OBJ_ALLOC_HANDLE)
    bundle.copy_to(MLX5_IB_ATTR_UAR_OBJ_ALLOC_PAGE_ID, page.to_bytes(4, "little"))
    bundle.copy_to(MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_LENGTH, PAGE_SIZE.to_bytes(4, "little"))
    bundle.copy_to(MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_OFFSET,
                   entry.mmap_offset.to_bytes(8, "little"))  # fmt: skip
    trace_mlx5_uar_alloc(mdev.kernel.tracer, mdev.ibdev.name, page, entry.mmap_offset)


def _uar_obj_destroy(bundle: AttrBundle) -> None:
    """Destroyed by the core before this runs (``DECLARE_UVERBS_NAMED_METHOD_DESTROY``)."""


def _destroy_uar(uobj: object, why: int) -> None:
    """``mmap_obj_cleanup``: the entry goes and its UAR is given back (upstream waits
    for the last mapping of it; here the page is free at once)."""
    entry: UarEntry = uobj.object  # type: ignore[attr-defined]
    entry.mctx.entries.pop(entry.start_pgoff, None)
    entry.mdev.uars.free(entry.page_idx)


UAR_TYPE = UobjType(MLX5_IB_OBJECT_UAR, "mlx5_uar", _destroy_uar)

#: the driver's objects in its namespace (``mlx5_ib_uapi_defs``): the UAR object
MLX5_DRIVER_OBJECTS = (
    ObjectDef(
        MLX5_IB_OBJECT_UAR,
        UAR_TYPE,
        (
            uverbs_method(
                MLX5_IB_METHOD_UAR_OBJ_ALLOC,
                _uar_obj_alloc,
                idr(MLX5_IB_ATTR_UAR_OBJ_ALLOC_HANDLE, UAR_TYPE, ACCESS_NEW, True),
                const_in(MLX5_IB_ATTR_UAR_OBJ_ALLOC_TYPE, True),
                ptr_out(MLX5_IB_ATTR_UAR_OBJ_ALLOC_PAGE_ID, 4, True),
                ptr_out(MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_LENGTH, 4, True),
                ptr_out(MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_OFFSET, 8, True),
            ),
            uverbs_method(
                MLX5_IB_METHOD_UAR_OBJ_DESTROY,
                _uar_obj_destroy,
                idr(MLX5_IB_ATTR_UAR_OBJ_DESTROY_HANDLE, UAR_TYPE, ACCESS_DESTROY, True),
            ),
        ),
    ),
)


def _core_clock_page(mdev: Mlx5Dev) -> tuple[int, int]:
    """(memfd, offset) of BAR 0's page with ``internal_timer_h``; the counter (1 GHz,
    ``hca_core_clock`` kHz) is written as the device would show it now (big-endian)."""
    bar = mdev.pdev.bars[0]
    now = time.monotonic_ns()
    bar.map.write(INTERNAL_TIMER_H, (now >> 32).to_bytes(4, "big") +
                  (now & 0xFFFFFFFF).to_bytes(4, "big"))  # fmt: skip
    return bar.memfd, INTERNAL_TIMER_H & ~(PAGE_SIZE - 1)


def mlx5_ib_mmap(mdev: Mlx5Dev, uctx: IbUcontext, vma: Vma) -> None:
    """``mlx5_ib_mmap``: decode the command of the page offset and map its page."""
    command = (vma.pgoff >> MLX5_IB_MMAP_CMD_SHIFT) & MLX5_IB_MMAP_CMD_MASK
    mctx: Mlx5Ucontext = uctx.priv
    if command in (MLX5_IB_MMAP_WC_PAGE, MLX5_IB_MMAP_ALLOC_WC):
        raise kerr(errno.EPERM)  # mlx5_wc_support_get: no write-combining on this model
    if command in (MLX5_IB_MMAP_NC_PAGE, MLX5_IB_MMAP_REGULAR_PAGE):
        # uar_mmap: a dynamic-UAR context has no static UARs; one page, a valid index
        index = vma.pgoff & ((1 << MLX5_IB_MMAP_CMD_SHIFT) - 1)
        if mctx.lib_uar_dyn or vma.length != PAGE_SIZE or index >= len(mctx.sys_pages):
            raise kerr(errno.EINVAL)
        vma.remap(mdev.pdev.bars[0].memfd, mctx.sys_pages[index] * PAGE_SIZE, PAGE_SIZE)
        return
    if command == MLX5_IB_MMAP_GET_CONTIGUOUS_PAGES:
        raise kerr(errno.ENOSYS)
    if command == MLX5_IB_MMAP_CORE_CLOCK:
        if vma.length != PAGE_SIZE:
            raise kerr(errno.EINVAL)
        if vma.prot & _mmap.PROT_WRITE:
            raise kerr(errno.EPERM)
        fd, offset = _core_clock_page(mdev)
        vma.remap(fd, offset, PAGE_SIZE)
        return
    if command == MLX5_IB_MMAP_CLOCK_INFO:  # mlx5_ib_mmap_clock_info_page
        if vma.length != PAGE_SIZE or not vma.flags & _mmap.MAP_SHARED:
            raise kerr(errno.EINVAL)
        raise kerr(errno.EOPNOTSUPP)  # index not V1, or no clock_info page
    # mlx5_ib_mmap_offset: the entry at (command << 16 | extended index)
    index = (vma.pgoff & 0xFF) | ((vma.pgoff >> 16) & 0xFF) << 8
    entry = mctx.entries.get(command << 16 | index)
    if entry is None:
        raise kerr(errno.EINVAL)
    if vma.length != PAGE_SIZE or not vma.flags & _mmap.MAP_SHARED:
        raise kerr(errno.EINVAL)  # rdma_user_mmap_io
    vma.remap(mdev.pdev.bars[0].memfd, entry.page_idx * PAGE_SIZE, PAGE_SIZE)
