"""The uverbs core on soft-RoCE: discovery, the methods the goldens do not reach, object
lifetimes and destruction order, the legacy commands' remaining paths, rxe's MRs."""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import stat
import struct

import pytest
from rdma_testing import (
    LOCAL_WRITE,
    PAGE,
    REMOTE_WRITE,
    RW,
    RXE_TOPOLOGY,
    ZERO_BASED,
    anon,
    call,
)

from mockkernel import Kernel
from mockkernel.rdma import ib_device_by_name
from mockkernel.testing.rdma import Verbs, attr, in8, remote_write
from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C
from mockkernel.uapi.rdma import ib_user_verbs as V

pytestmark = pytest.mark.mockkernel(topology=RXE_TOPOLOGY)


def test_discovery_layout(mock_kernel: Kernel) -> None:
    assert os.listdir("/sys/class/infiniband") == ["rxe0"]
    assert os.path.realpath("/sys/class/infiniband/rxe0") == "/sys/devices/virtual/infiniband/rxe0"
    assert os.path.realpath("/sys/class/infiniband_verbs/uverbs0") == (
        "/sys/devices/virtual/infiniband_verbs/uverbs0"
    )
    with open("/sys/class/infiniband/rxe0/parent") as f:
        assert f.read() == "enp0s2\n"
    st = os.stat("/dev/infiniband/uverbs0")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (231, 192)
    with open("/sys/class/infiniband_verbs/uverbs0/dev") as f:
        assert f.read() == "231:192\n"
    with open("/sys/class/infiniband/rxe0/ports/1/gids/0") as f:
        gid = f.read().strip()
    assert gid.startswith("fe80:0000:0000:0000:") and len(gid) == 39
    with open("/sys/class/infiniband/rxe0/node_guid") as f:
        guid = f.read().strip().replace(":", "")
    assert gid.replace(":", "")[16:] == guid  # the link-local GID is fe80::<node GUID>


def test_ib_device_api(mock_kernel: Kernel) -> None:
    dev = ib_device_by_name(mock_kernel, "rxe0")
    assert dev.driver_id == 14 and dev.index == 0 and dev.num_comp_vectors == 2
    with pytest.raises(KeyError):
        ib_device_by_name(mock_kernel, "mlx5_0")


def test_query_context_info_handles_gids(rxe: Verbs) -> None:
    ncv, ncv_buf = rxe.out(4)
    core, core_buf = rxe.out(8)
    after = rxe.ioctl(
        C.UVERBS_OBJECT_DEVICE,
        C.UVERBS_METHOD_QUERY_CONTEXT,
        [
            attr(C.UVERBS_ATTR_QUERY_CONTEXT_NUM_COMP_VECTORS, ncv, 4),
            attr(C.UVERBS_ATTR_QUERY_CONTEXT_CORE_SUPPORT, core, 8),
        ],
    )
    assert [a[2] for a in after] == [2, 2]
    assert ncv_buf.raw == struct.pack("<I", 2) and core_buf.raw == struct.pack("<Q", 1)
    pds = [rxe.alloc_pd() for _ in range(3)]
    total, total_buf = rxe.out(4)
    lst, lst_buf = rxe.out(16)
    rxe.ioctl(
        C.UVERBS_OBJECT_DEVICE,
        C.UVERBS_METHOD_INFO_HANDLES,
        [
            in8(C.UVERBS_ATTR_INFO_OBJECT_ID, C.UVERBS_OBJECT_PD),
            attr(C.UVERBS_ATTR_INFO_TOTAL_HANDLES, total, 4),
            attr(C.UVERBS_ATTR_INFO_HANDLES_LIST, lst, 16),
        ],
    )
    assert struct.unpack("<I", total_buf.raw)[0] == 3
    assert list(struct.unpack("<4I", lst_buf.raw))[:3] == pds
    entry, entry_buf = rxe.out(32)
    after = rxe.ioctl(
        C.UVERBS_OBJECT_DEVICE,
        C.UVERBS_METHOD_QUERY_GID_ENTRY,
        [
            in8(C.UVERBS_ATTR_QUERY_GID_ENTRY_PORT, 1),
            in8(C.UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX, 0),
            attr(C.UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS, 0, 4),
            attr(C.UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY, entry, 32),
        ],
    )
    assert entry_buf.raw[:2] == b"\xfe\x80"
    assert struct.unpack_from("<IIII", entry_buf.raw, 16)[:3] == (0, 1, 2)  # index, port, v2
    with pytest.raises(OSError) as e:
        rxe.ioctl(
            C.UVERBS_OBJECT_DEVICE,
            C.UVERBS_METHOD_QUERY_PORT_SPEED,
            [in8(C.UVERBS_ATTR_QUERY_PORT_SPEED_PORT_NUM, 1), attr(1, rxe.out(8)[0], 8)],
        )
    assert e.value.errno == 95


def test_async_event_alloc_by_ioctl(mock_kernel: Kernel, rxe: Verbs) -> None:
    """rdma-core's second step after GET_CONTEXT by ioctl: ``UVERBS_METHOD_ASYNC_EVENT_ALLOC``."""
    after = rxe.ioctl(
        C.UVERBS_OBJECT_ASYNC_EVENT,
        C.UVERBS_METHOD_ASYNC_EVENT_ALLOC,
        [attr(C.UVERBS_ATTR_ASYNC_EVENT_ALLOC_FD_HANDLE)],
    )
    fd = after[0][4]
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[infinibandevent]"
        assert fcntl.fcntl(fd, fcntl.F_GETFD) == fcntl.FD_CLOEXEC
        os.set_blocking(fd, False)  # (a blocking read sleeps until an event comes)
        assert call(os.read, fd, 16) == "EAGAIN"
    finally:
        os.close(fd)


def test_handles_shared_counter_and_reuse(rxe: Verbs) -> None:
    m, a = anon(1)
    try:
        p0, p1 = rxe.alloc_pd(), rxe.alloc_pd()
        mr = rxe.reg_mr(p0, PAGE, a, LOCAL_WRITE, addr=a)
        assert (p0, p1, mr.handle) == (0, 1, 2)
        rxe.dealloc_pd(p1)
        assert rxe.alloc_pd() == 1  # the lowest free handle, whatever type had it
        rxe.dereg_mr(mr)
        assert rxe.alloc_pd() == 2
    finally:
        m.close()


def test_close_destroys_mrs_before_their_pds(mock_kernel: Kernel) -> None:
    """Newest first, and an object still in use (EBUSY) is retried after the others."""
    shared = mmap.mmap(-1, PAGE)
    a = ctypes.addressof(ctypes.c_char.from_buffer(shared))
    v = Verbs("rxe0")
    p0 = v.alloc_pd()
    mr = v.reg_mr(p0, PAGE, a, LOCAL_WRITE, addr=a)
    p1 = v.alloc_pd()
    # REREG_MR moves the MR to the newer PD: newest-first alone would hit a busy PD
    body = struct.pack("<QIIQQQII", 0, mr.handle, 2, 0, 0, 0, p1, 0)
    resp_addr, _ = v.out(8)
    body = struct.pack("<Q", resp_addr) + body[8:]
    v.write_cmd(V.IB_USER_VERBS_CMD_REREG_MR, body, 2)
    assert call(v.dealloc_pd, p1) == "EBUSY"
    with mock_kernel.tracer.capture() as events:
        v.close()
    order = [(e["type"], e["handle"]) for e in events if e["event"] == "rdma.destroy"]
    assert order == [("mr", mr.handle), ("pd", p0), ("pd", p1)]
    assert all(e["why"] == "close" for e in events if e["event"] == "rdma.destroy")
    shared.close()


def test_dup_keeps_the_file_and_objects(mock_kernel: Kernel) -> None:
    v = Verbs("rxe0")
    pd = v.alloc_pd()
    dup = os.dup(v.fd)
    v.close()
    v.fd = dup
    v.dealloc_pd(pd)  # still there, through the other fd
    v.close()


def test_rereg_mr_paths(rxe: Verbs) -> None:
    m, a = anon(1)
    try:
        pd = rxe.alloc_pd()
        mr = rxe.reg_mr(pd, PAGE, a, LOCAL_WRITE, addr=a)
        resp, _ = rxe.out(8)

        def rereg(flags: int, pd_handle: int = 0, access: int = 0, handle: int = mr.handle) -> int:
            body = struct.pack("<QIIQQQII", resp, handle, flags, 0, 0, 0, pd_handle, access)
            return rxe.write_cmd(V.IB_USER_VERBS_CMD_REREG_MR, body, 2)

        assert call(rereg, 0) == "EINVAL"  # no flag
        assert call(rereg, 8) == "EINVAL"  # unknown flag
        assert call(rereg, 1) == "EINVAL"  # translation without an address
        assert (
            call(rereg, 4, access=ZERO_BASED | LOCAL_WRITE) == "EOPNOTSUPP"
        )  # rxe: not ZERO_BASED
        assert call(rereg, 4, access=REMOTE_WRITE) == "EINVAL"  # no LOCAL_WRITE
        assert call(rereg, 4, handle=77) == "ENOENT"
        assert rereg(4, access=RW) == 56
        assert rxe.query_mr(mr)[2:] == (PAGE, a)
        rxe.dereg_mr(mr)
    finally:
        m.close()


def test_remote_write_into_rxe_user_mr_and_pins(mock_kernel: Kernel, rxe: Verbs) -> None:
    """rxe is software: the bytes land in the pinned pages, even after the program unmapped
    them; the pins go with the MR (the memfd can be sealed again)."""
    memfd = os.memfd_create("mr", os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(memfd, 2 * PAGE)
        m = mmap.mmap(memfd, 2 * PAGE)
        a = ctypes.addressof(ctypes.c_char.from_buffer(m))
        pd = rxe.alloc_pd()
        mr = rxe.reg_mr(pd, 2 * PAGE, 0x10000, RW, addr=a)
        res = remote_write(mock_kernel, "rxe0", mr.rkey, 100, b"through the wire")
        assert res.ok and res.tlps == () and m[100:116] == b"through the wire"
        m.close()  # the program's mapping goes; the MR's pin stays
        res = remote_write(mock_kernel, "rxe0", mr.rkey, PAGE + 1, b"late")
        assert res.ok and os.pread(memfd, 4, PAGE + 1) == b"late"
        assert call(fcntl.fcntl, memfd, 1033, 8) == "EBUSY"  # F_SEAL_WRITE: pinned
        assert not remote_write(mock_kernel, "rxe0", mr.rkey, 2 * PAGE - 1, b"xx").ok
        assert not remote_write(mock_kernel, "rxe0", mr.rkey ^ 0x80, 0, b"x").ok
        rxe.dereg_mr(mr)
        assert remote_write(mock_kernel, "rxe0", mr.rkey, 0, b"x").status == (
            "IBV_WC_REM_ACCESS_ERR"
        )
        fcntl.fcntl(memfd, 1033, 8)
    finally:
        os.close(memfd)


def test_remote_write_needs_remote_write_access(mock_kernel: Kernel, rxe: Verbs) -> None:
    m, a = anon(1)
    try:
        pd = rxe.alloc_pd()
        mr = rxe.reg_mr(pd, PAGE, a, LOCAL_WRITE, addr=a)
        res = remote_write(mock_kernel, "rxe0", mr.rkey, 0, b"x")
        assert (res.status, res.reason) == (
            "IBV_WC_REM_ACCESS_ERR",
            "the MR has no REMOTE_WRITE access",
        )
        with pytest.raises(KeyError):
            remote_write(mock_kernel, "nope0", mr.rkey, 0, b"x")
        rxe.dereg_mr(mr)
    finally:
        m.close()


def test_write_command_bits_and_ex_udata(rxe: Verbs) -> None:
    """``EX_QUERY_DEVICE``: the rxe answer through an ``INVOKE_WRITE`` too."""
    out, buf = rxe.out(304)
    after = rxe.ioctl(
        C.UVERBS_OBJECT_DEVICE,
        C.UVERBS_METHOD_INVOKE_WRITE,
        [
            attr(C.UVERBS_ATTR_CORE_IN, 0, 8),
            attr(C.UVERBS_ATTR_CORE_OUT, out, 304),
            in8(C.UVERBS_ATTR_WRITE_CMD, V.IB_USER_VERBS_CMD_FLAG_EXTENDED | 1),
        ],
    )
    assert [a[2] for a in after] == [0, 2, 0]
    resp = V.ib_uverbs_ex_query_device_resp.from_buffer_copy(buf.raw)
    assert resp.response_length == 304 and resp.base.vendor_id == 0xFFFFFF
    assert resp.odp_caps.general_caps == V.IB_UVERBS_ODP_SUPPORT
    assert resp.device_cap_flags_ex >> 38 == 0b111  # FLUSH_GLOBAL/PERSISTENT, ATOMIC_WRITE
    assert (
        call(
            rxe.ioctl,
            C.UVERBS_OBJECT_DEVICE,
            C.UVERBS_METHOD_INVOKE_WRITE,
            [in8(C.UVERBS_ATTR_WRITE_CMD, 0x100)],
        )
        == "EINVAL"
    )


def test_dmah_absent_on_rxe_and_reg_mr_dmah_attr(rxe: Verbs) -> None:
    assert call(rxe.dmah_alloc, ph=0) == "EPROTONOSUPPORT"
    m, a = anon(1)
    try:
        pd = rxe.alloc_pd()
        assert call(rxe.reg_mr, pd, PAGE, a, LOCAL_WRITE, addr=a, dmah=0) == "EINVAL"
    finally:
        m.close()


def test_response_into_a_read_only_page_is_efault(rxe: Verbs) -> None:
    """ALLOC_PD's response pointer naming a read-only page: ``EFAULT`` (copy_to_user
    honours page protections), and the PD is not left behind -- the write()
    path aborts the new object when the handler fails."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t] + [ctypes.c_int] * 3 + [ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    page = libc.mmap(None, 4096, 1, 0x22, -1, 0)  # PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS
    assert page not in (None, ctypes.c_void_p(-1).value)
    try:
        body = struct.pack("<Q", page)
        assert call(rxe.write_cmd, V.IB_USER_VERBS_CMD_ALLOC_PD, body, 1) == "EFAULT"
        assert ctypes.string_at(page, 4) == bytes(4)
    finally:
        libc.munmap(page, 4096)
    assert rxe.alloc_pd() == 0  # the failed PD's handle was not kept
