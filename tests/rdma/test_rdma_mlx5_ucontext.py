"""mlx5's user context on the raw ABI: ``mlx5_ib_alloc_ucontext`` and ``mlx5_ib_mmap``.

The request is ``mlx5_ib_alloc_ucontext_req_v2`` (or the 8-byte v0), checked in the
kernel's order; the response ``mlx5_ib_alloc_ucontext_resp``, cut to the caller's
buffer.  ``mmap`` of the uverbs fd: the command in bits 8-15 of the page offset.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockkernel_mlx5.ucontext import INTERNAL_TIMER_H, UarTable
from rdma_testing import errname

from mockkernel import Kernel
from mockkernel.testing.rdma import Verbs, attr, idr, in8
from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C
from mockkernel.uapi.rdma.mlx5_abi import (
    MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_CORE_CLOCK_OFFSET,
    MLX5_IB_ALLOC_UCTX_DEVX,
    MLX5_LIB_CAP_4K_UAR,
    MLX5_LIB_CAP_DYN_UAR,
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

PAGE = mmap.PAGESIZE
RESP = ctypes.sizeof(mlx5_ib_alloc_ucontext_resp)
CORE_CLOCK = 5 << 8  # MLX5_IB_MMAP_CORE_CLOCK << MLX5_IB_MMAP_CMD_SHIFT, in pages
NC_PAGE = 3 << 8


def req(**fields: int) -> bytes:
    r = mlx5_ib_alloc_ucontext_req_v2()
    r.total_num_bfregs = 16
    r.num_low_latency_bfregs = 4
    r.max_cqe_version = 1
    r.lib_caps = MLX5_LIB_CAP_4K_UAR | MLX5_LIB_CAP_DYN_UAR
    for k, v in fields.items():
        setattr(r, k, v)
    return bytes(r)


@pytest.fixture
def raw(mock_kernel: Kernel) -> Iterator[Verbs]:
    v = Verbs("mlx5_0", context=False)
    try:
        yield v
    finally:
        v.close()


def get_context(v: Verbs, data: bytes, outlen: int = RESP) -> mlx5_ib_alloc_ucontext_resp:
    inbuf = ctypes.create_string_buffer(data, max(len(data), 1))
    out_addr, out = v.out(max(outlen, 1))
    attrs = [attr(C.UVERBS_ATTR_UHW_OUT, out_addr, outlen)]
    if data:
        attrs.insert(0, attr(C.UVERBS_ATTR_UHW_IN, ctypes.addressof(inbuf), len(data)))
    v.ioctl(C.UVERBS_OBJECT_DEVICE, C.UVERBS_METHOD_GET_CONTEXT, attrs)
    return mlx5_ib_alloc_ucontext_resp.from_buffer_copy(out.raw[:outlen].ljust(RESP, b"\0"))


def test_rdma_core_59s_request_gets_dynamic_uars(raw: Verbs) -> None:
    resp = get_context(raw, req())
    assert resp.tot_bfregs == 0 and resp.num_dyn_bfregs == 0  # lib_uar_dyn
    assert resp.cqe_version == 1
    assert resp.response_length == RESP
    assert resp.num_ports == 1
    assert resp.qp_tab_size == 1 << 17 and resp.max_send_wqebb == 1 << 15
    assert resp.comp_mask & MLX5_IB_ALLOC_UCONTEXT_RESP_MASK_CORE_CLOCK_OFFSET
    assert resp.hca_core_clock_offset == INTERNAL_TIMER_H % PAGE
    assert resp.log_uar_size == 12 and resp.num_uars_per_page == 1


@pytest.mark.parametrize(
    ("data", "err"),
    [
        (b"", "EINVAL"),  # neither the v0 request (8 bytes) nor v2 (at least 16)
        (bytes(12), "EINVAL"),
        (req(flags=2), "EOPNOTSUPP"),  # flags other than DEVX
        (req(comp_mask=1), "EOPNOTSUPP"),
        (req(reserved2=1), "EOPNOTSUPP"),
        (req(num_low_latency_bfregs=16), "EINVAL"),  # more than total - 1
        (req(flags=MLX5_IB_ALLOC_UCTX_DEVX), "EINVAL"),  # no DEVX (log_max_uctx 0)
    ],
)
def test_bad_requests(raw: Verbs, data: bytes, err: str) -> None:
    with pytest.raises(OSError) as e:
        get_context(raw, data)
    assert errname(e.value) == err
    get_context(raw, req())  # the failed attempt left no context behind


def test_the_response_is_cut_to_the_callers_buffer(raw: Verbs) -> None:
    resp = get_context(raw, req(), outlen=44)
    assert resp.response_length == 44  # min(outlen, sizeof(resp))
    assert resp.qp_tab_size == 1 << 17
    assert resp.cqe_version == 0  # at byte 44: past the buffer, not written


def test_the_core_clock_page_is_bar0s_timer_page(raw: Verbs, mock_kernel: Kernel) -> None:
    get_context(raw, req())
    with pytest.raises(OSError) as e:  # writable: EPERM
        mmap.mmap(raw.fd, PAGE, mmap.MAP_SHARED, offset=CORE_CLOCK * PAGE)
    assert errname(e.value) == "EPERM"
    with pytest.raises(OSError) as e:  # not one page: EINVAL
        mmap.mmap(raw.fd, 2 * PAGE, mmap.MAP_SHARED, mmap.PROT_READ, offset=CORE_CLOCK * PAGE)
    assert errname(e.value) == "EINVAL"
    m = mmap.mmap(raw.fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ, offset=CORE_CLOCK * PAGE)
    off = INTERNAL_TIMER_H % PAGE
    first = int.from_bytes(m[off : off + 8], "big")
    assert first > 0
    bar = mock_kernel.pci.get("0000:02:00.0").bars[0]
    assert bar.map.read(INTERNAL_TIMER_H, 8) == m[off : off + 8]  # the same memory
    m.close()


def test_static_uars_map_bar0_pages_and_dynamic_contexts_have_none(mock_kernel: Kernel) -> None:
    with Verbs("mlx5_0", context=False) as v:
        resp = get_context(
            v, req(lib_caps=MLX5_LIB_CAP_4K_UAR, total_num_bfregs=4, num_low_latency_bfregs=1)
        )
        assert resp.tot_bfregs == 4  # two UAR pages
        pages = [
            mmap.mmap(v.fd, PAGE, mmap.MAP_SHARED, offset=(NC_PAGE | i) * PAGE) for i in range(2)
        ]
        with pytest.raises(OSError) as e:
            mmap.mmap(v.fd, PAGE, mmap.MAP_SHARED, offset=(NC_PAGE | 2) * PAGE)
        assert errname(e.value) == "EINVAL"
        bar = mock_kernel.pci.get("0000:02:00.0").bars[0]
        pages[1][0:4] = b"\x01\x02\x03\x04"  # a doorbell write lands in the BAR
        first = UarTable.FIRST_USER_UAR
        assert bar.map.read((first + 1) * PAGE, 4) == b"\x01\x02\x03\x04"
        for p in pages:
            p.close()
    with Verbs("mlx5_0") as v2:  # dynamic: no static UAR to map
        with pytest.raises(OSError) as e:
            mmap.mmap(v2.fd, PAGE, mmap.MAP_SHARED, offset=NC_PAGE * PAGE)
        assert errname(e.value) == "EINVAL"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cmd=st.integers(0, 255), index=st.integers(0, 255), pages=st.integers(1, 3))
def test_any_mmap_offset_answers_an_errno_or_maps(mock_kernel: Kernel, cmd: int, index: int,
                                                  pages: int) -> None:  # fmt: skip
    with Verbs("mlx5_0") as v:
        try:
            m = mmap.mmap(v.fd, pages * PAGE, mmap.MAP_SHARED, mmap.PROT_READ,
                          offset=((cmd << 8) | index) * PAGE)  # fmt: skip
        except OSError as e:
            assert errname(e) in {"EINVAL", "EPERM", "EOPNOTSUPP", "ENOSYS"}
        else:
            assert (cmd, pages) == (5, 1)  # only the core clock maps on a dynamic context
            m.close()


def uar_alloc(v: Verbs, alloc_type: int) -> tuple[int, int, int, int]:
    """``MLX5_IB_METHOD_UAR_OBJ_ALLOC``: (handle, page id, mmap length, mmap offset)."""
    page_addr, page = v.out(4)
    len_addr, length = v.out(4)
    off_addr, off = v.out(8)
    out = v.ioctl(MLX5_IB_OBJECT_UAR, MLX5_IB_METHOD_UAR_OBJ_ALLOC, [
        idr(MLX5_IB_ATTR_UAR_OBJ_ALLOC_HANDLE, 0),
        in8(MLX5_IB_ATTR_UAR_OBJ_ALLOC_TYPE, alloc_type),
        attr(MLX5_IB_ATTR_UAR_OBJ_ALLOC_PAGE_ID, page_addr, 4),
        attr(MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_LENGTH, len_addr, 4),
        attr(MLX5_IB_ATTR_UAR_OBJ_ALLOC_MMAP_OFFSET, off_addr, 8),
    ])  # fmt: skip
    as_int = int.from_bytes
    return (out[0][4], as_int(page.raw, "little"), as_int(length.raw, "little"),
            as_int(off.raw, "little"))  # fmt: skip


def test_dynamic_nc_uar_object_maps_a_bar0_page(mock_kernel: Kernel) -> None:
    """What rdma-core 59 does at open for its singleton NC UAR (``mlx5_alloc_dyn_uar``)."""
    with Verbs("mlx5_0") as v:
        with pytest.raises(OSError) as e:  # blue flame needs write combining
            uar_alloc(v, 0)
        assert errname(e.value) == "EOPNOTSUPP"
        with pytest.raises(OSError) as e:
            uar_alloc(v, 2)
        assert errname(e.value) == "EOPNOTSUPP"
        handle, page_id, length, offset = uar_alloc(v, 1)
        assert (page_id, length, offset) == (UarTable.FIRST_USER_UAR, PAGE, 9 << 8 << 12)
        with pytest.raises(OSError) as e:  # one page, shared
            mmap.mmap(v.fd, 2 * PAGE, mmap.MAP_SHARED, offset=offset)
        assert errname(e.value) == "EINVAL"
        m = mmap.mmap(v.fd, PAGE, mmap.MAP_SHARED, offset=offset)
        m[0x800:0x808] = b"doorbel!"  # MLX5_BF_OFFSET: a doorbell record
        bar = mock_kernel.pci.get("0000:02:00.0").bars[0]
        assert bar.map.read(page_id * PAGE + 0x800, 8) == b"doorbel!"
        m.close()
        v.ioctl(MLX5_IB_OBJECT_UAR, MLX5_IB_METHOD_UAR_OBJ_DESTROY,
                [idr(MLX5_IB_ATTR_UAR_OBJ_DESTROY_HANDLE, handle)])  # fmt: skip
        with pytest.raises(OSError) as e:  # the entry is gone
            mmap.mmap(v.fd, PAGE, mmap.MAP_SHARED, offset=offset)
        assert errname(e.value) == "EINVAL"
        assert uar_alloc(v, 1)[1] == page_id  # the UAR was given back
