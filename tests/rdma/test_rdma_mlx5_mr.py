"""mlx5 dma-buf MRs: the checks (core and driver), dynamic vs data-direct, invalidation and
re-map, TPH selection and its re-query, the uAPI profiles, and what never leaks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from rdma_testing import (
    LOCAL_WRITE,
    MLX5_BDF,
    MW_BIND,
    ON_DEMAND,
    PAGE,
    REMOTE_WRITE,
    RW,
    VFIO_BDF,
    ZERO_BASED,
    call,
    mlx5_tph,
    mlx5_variant,
)

from mockkernel import Kernel
from mockkernel.driver import dma_buf_subsys
from mockkernel.rdma import ib_device_by_name
from mockkernel.testing.rdma import (
    VFIO_DMA_BUF_TPH_ST,
    VFIO_DMA_BUF_TPH_ST_EXT,
    Verbs,
    VfioDevice,
    attr,
    idr,
    in4,
    in8,
    remote_write,
    udmabuf,
)
from mockkernel.uapi.rdma import ib_user_ioctl_cmds as C

BOTH = VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT
SIZE = 4 * PAGE


@pytest.fixture
def vbuf(vfio: VfioDevice) -> Iterator[int]:
    """A 16 KiB dma-buf of BAR0 at offset 0x1000 with TPH (xst 0x0112, st 0x12, ph 1)."""
    fd = vfio.export(PAGE, SIZE)
    vfio.set_tph(fd, BOTH, xst=0x0112, st=0x12, ph=1)
    yield fd
    os.close(fd)


def _bar(kernel: Kernel) -> bytes:
    assert kernel.pci is not None
    return kernel.pci.get(VFIO_BDF).bars[0].map.read(PAGE, SIZE)


def _mr_priv(kernel: Kernel, rkey: int) -> object:
    return ib_device_by_name(kernel, "mlx5_0").mrs[rkey].priv


def _attachments(kernel: Kernel) -> int:
    return len(dma_buf_subsys(kernel).attachments)


# -- registration checks -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "err"),
    [
        ({"offset": 0, "iova": 8}, "EINVAL"),  # (offset ^ iova) & ~PAGE_MASK
        ({"access": LOCAL_WRITE | MW_BIND}, "EINVAL"),  # not a dma-buf MR access flag
        ({"access": LOCAL_WRITE | ZERO_BASED}, "EINVAL"),
        ({"access": LOCAL_WRITE | ON_DEMAND}, "EINVAL"),
        ({"access": REMOTE_WRITE}, "EINVAL"),  # remote write needs local write
        ({"access": LOCAL_WRITE | (1 << 29)}, "EINVAL"),  # optional bits: not for dma-buf
        ({"length": SIZE + PAGE}, "EINVAL"),  # past the buffer
        ({"length": 0}, "EINVAL"),  # no page
        ({"offset": (1 << 64) - PAGE, "iova": 0, "length": 2 * PAGE}, "EINVAL"),  # overflow
    ],
)
def test_reg_dmabuf_mr_checks(verbs: Verbs, vbuf: int, kw: dict[str, int], err: str) -> None:
    pd = verbs.alloc_pd()
    args = {"length": SIZE, "access": RW} | kw
    assert call(verbs.reg_dmabuf_mr, pd, vbuf, **args) == err


def test_reg_dmabuf_mr_fd_checks(mock_kernel: Kernel, verbs: Verbs) -> None:
    pd = verbs.alloc_pd()
    closed = os.open("/dev/null", os.O_RDONLY)
    os.close(closed)
    assert call(verbs.reg_dmabuf_mr, pd, closed, PAGE) == "EBADF"
    assert call(verbs.reg_dmabuf_mr, pd, -1, PAGE) == "EBADF"
    memfd = os.memfd_create("not-a-dmabuf")
    try:
        os.ftruncate(memfd, PAGE)
        assert call(verbs.reg_dmabuf_mr, pd, memfd, PAGE) == "EINVAL"
    finally:
        os.close(memfd)
    assert call(verbs.reg_dmabuf_mr, 99, closed, PAGE) == "ENOENT"  # the PD first
    assert dma_buf_subsys(mock_kernel).attachments == {}


def test_revoked_buffer_fails_with_enodev(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice
) -> None:
    fd = vfio.export(0, PAGE)
    try:
        vfio.memory(False)
        pd = verbs.alloc_pd()
        assert call(verbs.reg_dmabuf_mr, pd, fd, PAGE, access=RW) == "ENODEV"
        born = vfio.export(0, PAGE)  # born revoked
        assert call(verbs.reg_dmabuf_mr, pd, born, PAGE, access=RW) == "ENODEV"
        os.close(born)
        vfio.memory(True)
        verbs.dereg_mr(verbs.reg_dmabuf_mr(pd, fd, PAGE, access=RW))
    finally:
        os.close(fd)
    assert dma_buf_subsys(mock_kernel).attachments == {}


def test_data_direct(mock_kernel: Kernel, verbs: Verbs, vbuf: int) -> None:
    pd = verbs.alloc_pd()
    # vfio-pci only takes revocable importers: the pinned data-direct mode is refused
    assert call(verbs.reg_dmabuf_mr, pd, vbuf, SIZE, access=RW, data_direct=True) == "EOPNOTSUPP"
    ufd, memfd = udmabuf(2 * PAGE)
    try:
        mr = verbs.reg_dmabuf_mr(pd, ufd, 2 * PAGE, access=RW, data_direct=True)
        (attach,) = dma_buf_subsys(mock_kernel).attachments.values()
        assert attach.pinned == 1 and attach.mapped == 1 and attach.dev.name == MLX5_BDF
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, PAGE - 2, b"pinned")
        assert res.ok and os.pread(memfd, 6, PAGE - 2) == b"pinned"
        assert [t.target for t in res.tlps] == ["ram", "ram"]  # split at the 4 KiB boundary
        assert call(verbs.reg_dmabuf_mr, pd, ufd, PAGE, iova=8, offset=8, data_direct=True) == (
            "EOPNOTSUPP"  # KSM needs a page-aligned iova
        )
        verbs.dereg_mr(mr)
        assert dma_buf_subsys(mock_kernel).attachments == {}
    finally:
        os.close(ufd)
        os.close(memfd)


def test_mlx5_driver_attribute(verbs: Verbs, vbuf: int) -> None:
    """``MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS`` is known on mlx5 (mandatory is fine);
    a flag it does not know is EINVAL."""
    pd = verbs.alloc_pd()

    def reg(extra: tuple[int, int, int, int, int]) -> object:
        lk, _ = verbs.out(4)
        rk, _ = verbs.out(4)
        return verbs.ioctl(
            C.UVERBS_OBJECT_MR,
            C.UVERBS_METHOD_REG_DMABUF_MR,
            [
                idr(0, 0),
                idr(1, pd),
                in8(2, 0),
                in8(3, PAGE),
                in8(4, 0),
                in4(5, vbuf),
                in4(6, RW),
                attr(7, lk, 4),
                attr(8, rk, 4),
                extra,
            ],
        )

    assert call(reg, attr(0x1000, 2, 4)) == "EINVAL"
    assert call(reg, attr(0x1000, 1, 4, flags=1)) == "EOPNOTSUPP"  # data direct on vfio
    after = reg(attr(0x1000, 0, 4, flags=1))
    assert isinstance(after, list)
    verbs.dereg_mr(after[0][4])
    assert call(reg, attr(0x1001, 0, 4, flags=1)) == "EPROTONOSUPPORT"


@pytest.mark.mockkernel(topology=mlx5_variant(options={"odp": False}))
def test_no_odp_no_dynamic_mr(verbs: Verbs, vbuf: int) -> None:
    pd = verbs.alloc_pd()
    assert call(verbs.reg_dmabuf_mr, pd, vbuf, SIZE, access=RW) == "EOPNOTSUPP"


@pytest.mark.mockkernel(topology=mlx5_variant(options={"data_direct": False}))
def test_no_data_direct_function(verbs: Verbs) -> None:
    pd = verbs.alloc_pd()
    ufd, memfd = udmabuf(PAGE)
    try:
        assert call(verbs.reg_dmabuf_mr, pd, ufd, PAGE, access=RW, data_direct=True) == "EINVAL"
    finally:
        os.close(ufd)
        os.close(memfd)


def test_reg_mr_with_fd_rules(verbs: Verbs, vbuf: int) -> None:
    pd = verbs.alloc_pd()
    assert call(verbs.reg_mr, pd, PAGE, 0, RW, fd=vbuf) == "EINVAL"  # no FD_OFFSET
    assert call(verbs.reg_mr, pd, PAGE, 0, RW, fd=vbuf, fd_offset=0, addr=0x1000) == "EINVAL"
    assert call(verbs.reg_mr, pd, PAGE, 8, RW, fd=vbuf, fd_offset=0) == "EINVAL"
    assert call(verbs.reg_mr, pd, PAGE, 0, RW | MW_BIND, fd=vbuf, fd_offset=0) == "EINVAL"
    mr = verbs.reg_mr(pd, PAGE, 0x7000, RW, fd=vbuf, fd_offset=PAGE)
    assert verbs.query_mr(mr) == (mr.lkey, mr.rkey, PAGE, 0x7000)
    verbs.dereg_mr(mr)


def test_failed_output_copy_destroys_the_mr(mock_kernel: Kernel, verbs: Verbs, vbuf: int) -> None:
    pd = verbs.alloc_pd()
    rk, _ = verbs.out(4)
    attrs = [idr(0, 0), idr(1, pd), in8(2, 0), in8(3, PAGE), in8(4, 0), in4(5, vbuf)]
    attrs += [in4(6, RW), attr(7, 16, 4), attr(8, rk, 4)]
    assert call(verbs.ioctl, C.UVERBS_OBJECT_MR, C.UVERBS_METHOD_REG_DMABUF_MR, attrs) == "EFAULT"
    assert dma_buf_subsys(mock_kernel).attachments == {}
    assert ib_device_by_name(mock_kernel, "mlx5_0").mrs == {}
    verbs.dealloc_pd(pd)


# -- invalidation and re-map ------------------------------------------------------------------
def test_reset_invalidates_then_the_next_access_remaps(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice, vbuf: int
) -> None:
    pd = verbs.alloc_pd()
    mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    (attach,) = dma_buf_subsys(mock_kernel).attachments.values()
    assert attach.dynamic and attach.peer2peer and attach.mapped == 1
    m = _mr_priv(mock_kernel, mr.rkey)
    assert m.translation_valid  # type: ignore[attr-defined]
    with mock_kernel.tracer.capture() as events:
        vfio.reset()
    names = [e["event"] for e in events]
    assert names.index("mlx5.mr_invalidate") < names.index("vfio_pci.dma_buf_revoke")
    assert attach.mapped == 0 and not m.translation_valid  # type: ignore[attr-defined]
    assert not any(e["event"] == "kernel.warn" for e in events)  # vfio did not wait forever
    res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"after reset")
    assert res.ok and attach.mapped == 1 and _bar(mock_kernel)[:11] == b"after reset"
    assert m.faults == 1 and m.invalidations == 1  # type: ignore[attr-defined]
    verbs.dereg_mr(mr)


def test_write_in_the_revoke_window_completes_in_error(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice, vbuf: int
) -> None:
    pd = verbs.alloc_pd()
    mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    seen = []

    def peer(event: dict[str, object]) -> None:  # the wire keeps delivering during the reset
        if event["event"] == "vfio_pci.dma_buf_revoke":
            seen.append(remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"in the window"))

    mock_kernel.tracer.add_sink(peer)
    try:
        vfio.reset()
    finally:
        mock_kernel.tracer.remove_sink(peer)
    (res,) = seen
    assert (res.status, res.reason, res.tlps) == ("IBV_WC_REM_ACCESS_ERR", "page fault: ENODEV", ())
    assert b"window" not in _bar(mock_kernel)
    assert remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"later").ok
    verbs.dereg_mr(mr)


def test_memory_disabled_no_dma_until_enabled(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice, vbuf: int
) -> None:
    pd = verbs.alloc_pd()
    mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    vfio.memory(False)
    for _ in range(2):
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 64, b"nope")
        assert (res.ok, res.errno) == (False, 19)
    vfio.memory(True)
    assert remote_write(mock_kernel, "mlx5_0", mr.rkey, 64, b"yes!").ok
    assert _bar(mock_kernel)[64:68] == b"yes!"
    verbs.dereg_mr(mr)


def test_device_close_revokes_for_good(mock_kernel: Kernel, verbs: Verbs) -> None:
    with VfioDevice(VFIO_BDF) as dev:
        fd = dev.export(0, PAGE)
        pd = verbs.alloc_pd()
        mr = verbs.reg_dmabuf_mr(pd, fd, PAGE, access=RW)
    res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
    assert res.errno == 19
    verbs.dereg_mr(mr)
    os.close(fd)


# -- TPH ----------------------------------------------------------------------------------------
def _tph_events(events: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [
        (e["source"], e["ph"], e["tag"], e["reason"]) for e in events if e["event"] == "mlx5.mr_tph"
    ]


def test_extended_requester_uses_the_extended_tag(
    mock_kernel: Kernel, verbs: Verbs, vbuf: int
) -> None:
    pd = verbs.alloc_pd()
    with mock_kernel.tracer.capture() as events:
        mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, bytes(300))
    assert _tph_events(events) == [("dmabuf", 1, 0x0112, "")]
    assert [(t.th, t.ph, t.st, t.st_ext) for t in res.tlps] == [(True, 1, 0x12, 0x01)] * 2
    assert [t.length for t in res.tlps] == [256, 44]
    verbs.dereg_mr(mr)


def test_tag_requeried_after_each_invalidation(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice, vbuf: int
) -> None:
    """A SET after registration changes nothing until the next invalidation; the re-map
    asks the exporter again and reprograms the ST entry (the v11 lifecycle rule)."""
    from mockkernel_mlx5 import mlx5_dev

    st = mlx5_dev(mock_kernel, "mlx5_0").st
    assert st is not None
    pd = verbs.alloc_pd()
    mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    vfio.set_tph(vbuf, BOTH, xst=0x0BEE, st=0xEE, ph=3)
    res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
    assert (res.ph, res.steering_tag) == (1, 0x0112)
    vfio.reset()
    res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
    assert (res.ph, res.steering_tag) == (3, 0x0BEE)
    assert st.entries == {1: [0x0BEE, 1]}  # the old tag's index was released
    vfio.set_tph(vbuf, 0)  # both namespaces invalidated
    vfio.reset()
    with mock_kernel.tracer.capture() as events:
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
    assert (res.ph, res.steering_tag) == (None, None) and not res.tlps[0].th
    assert _tph_events(events) == [("none", None, None, "exporter: EOPNOTSUPP")]
    assert st.entries == {}
    verbs.dereg_mr(mr)


def test_st_index_shared_by_tag_and_released_with_the_mrs(
    mock_kernel: Kernel, verbs: Verbs, vbuf: int
) -> None:
    from mockkernel_mlx5 import mlx5_dev

    st = mlx5_dev(mock_kernel, "mlx5_0").st
    assert st is not None
    pd = verbs.alloc_pd()
    a = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    verbs.reg_dmabuf_mr(pd, vbuf, PAGE, access=RW)
    assert st.entries == {1: [0x0112, 2]}
    verbs.dereg_mr(a)
    assert st.entries == {1: [0x0112, 1]}
    verbs.close()  # the last one goes with the file
    assert st.entries == {}


def test_only_the_8bit_tag_set_on_an_extended_requester(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice
) -> None:
    fd = vfio.export(0, PAGE)
    try:
        vfio.set_tph(fd, VFIO_DMA_BUF_TPH_ST, st=0x12, ph=2)
        pd = verbs.alloc_pd()
        with mock_kernel.tracer.capture() as events:
            mr = verbs.reg_dmabuf_mr(pd, fd, PAGE, access=RW)
        assert _tph_events(events) == [("none", None, None, "exporter: EOPNOTSUPP")]
        assert remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x").ph is None
        verbs.dereg_mr(mr)
    finally:
        os.close(fd)


@pytest.mark.mockkernel(topology=mlx5_tph(ext=False))
def test_tph_only_requester_uses_the_8bit_tag(mock_kernel: Kernel, verbs: Verbs, vbuf: int) -> None:
    pd = verbs.alloc_pd()
    mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
    (tlp,) = res.tlps
    assert (res.ph, res.steering_tag, tlp.st, tlp.st_ext) == (1, 0x12, 0x12, 0)
    verbs.dereg_mr(mr)


@pytest.mark.mockkernel(topology=mlx5_tph(modes=("ns",)))
def test_no_ds_mode_no_tph(mock_kernel: Kernel, verbs: Verbs, vbuf: int) -> None:
    pd = verbs.alloc_pd()
    with mock_kernel.tracer.capture() as events:
        mr = verbs.reg_dmabuf_mr(pd, vbuf, SIZE, access=RW)
    assert _tph_events(events) == [("none", None, None, "TPH requester disabled on the function")]
    verbs.dereg_mr(mr)


@pytest.mark.mockkernel(uapi="tph-v2")
def test_profile_tph_v2(mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice) -> None:
    fd = vfio.export(0, PAGE)
    try:
        vfio.set_tph_v2(fd, 0x0345, 2)
        pd = verbs.alloc_pd()
        mr = verbs.reg_dmabuf_mr(pd, fd, PAGE, access=RW)
        res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 0, b"x")
        assert (res.ph, res.steering_tag) == (2, 0x0345)  # get_tph(st_width=16)
        verbs.dereg_mr(mr)
    finally:
        os.close(fd)


@pytest.mark.mockkernel(uapi="tph-v1", topology=mlx5_tph(ext=False))
def test_profile_tph_v1_tag_too_wide_for_8bit(
    mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice
) -> None:
    wide = vfio.export(0, PAGE, tph_v1=(0x0345, 2))
    narrow = vfio.export(PAGE, PAGE, tph_v1=(0x45, 3))
    try:
        pd = verbs.alloc_pd()
        with mock_kernel.tracer.capture() as events:
            a = verbs.reg_dmabuf_mr(pd, wide, PAGE, access=RW)
            b = verbs.reg_dmabuf_mr(pd, narrow, PAGE, access=RW)
        assert _tph_events(events) == [
            ("none", None, None, "exporter: EINVAL"),  # get_tph: tag >= 1 << 8
            ("dmabuf", 3, 0x45, ""),
        ]
        verbs.dereg_mr(a)
        verbs.dereg_mr(b)
    finally:
        os.close(wide)
        os.close(narrow)


@pytest.mark.mockkernel(uapi="linux-7.2")
def test_profile_linux_72_has_no_tph(mock_kernel: Kernel, verbs: Verbs, vfio: VfioDevice) -> None:
    fd = vfio.export(0, PAGE)
    try:
        pd = verbs.alloc_pd()
        with mock_kernel.tracer.capture() as events:
            mr = verbs.reg_dmabuf_mr(pd, fd, PAGE, access=RW)
        (ev,) = _tph_events(events)
        assert ev[0] == "none" and "linux-7.2" in str(ev[3])
        verbs.dereg_mr(mr)
    finally:
        os.close(fd)


def test_udmabuf_has_no_tph_op(mock_kernel: Kernel, verbs: Verbs) -> None:
    ufd, memfd = udmabuf(PAGE, b"\0" * PAGE)
    try:
        pd = verbs.alloc_pd()
        with mock_kernel.tracer.capture() as events:
            mr = verbs.reg_dmabuf_mr(pd, ufd, PAGE, access=RW)
            res = remote_write(mock_kernel, "mlx5_0", mr.rkey, 10, b"ram")
        assert _tph_events(events) == [("none", None, None, "exporter: EOPNOTSUPP")]
        assert res.ok and os.pread(memfd, 3, 10) == b"ram" and res.tlps[0].target == "ram"
        verbs.dereg_mr(mr)
    finally:
        os.close(ufd)
        os.close(memfd)


def test_kernel_memory_is_not_user_memory(mock_kernel: Kernel, verbs: Verbs) -> None:
    """A BAR's kernel mapping lives in this process but is not the program's: EFAULT."""
    assert mock_kernel.pci is not None
    pd = verbs.alloc_pd()
    kaddr = mock_kernel.pci.get(VFIO_BDF).bars[0].map._addr
    assert kaddr is not None
    assert call(verbs.reg_mr, pd, PAGE, kaddr, LOCAL_WRITE, addr=kaddr) == "EFAULT"


def test_mlx5_sysfs_and_remove(mock_kernel: Kernel) -> None:
    assert os.path.realpath("/sys/class/infiniband_verbs/uverbs0/device") == (
        f"/sys/devices/pci0000:00/0000:00:01.0/{MLX5_BDF}"
    )
    with open("/sys/class/infiniband/mlx5_0/hca_type") as f:
        assert f.read() == "MT4129\n"
    assert mock_kernel.pci is not None
    assert mock_kernel.pci.get(MLX5_BDF).tph_enabled  # pcie_enable_tph(DS) at probe
