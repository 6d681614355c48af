"""``VFIO_DEVICE_FEATURE_DMA_BUF`` (11): the GET flow errno for errno, the buffer, the importers.

The order is kernel.md section 4; the points it leaves open were settled on Linux 7.2
(tests/real_linux ``vfio_dmabuf`` golden, which the mock matches step for step).
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import mmap
import os
import struct
from typing import Any

import pytest
from mockkernel_vfio_pci.dmabuf import VfioPciDmaBuf
from vfio_helpers import (
    BAR0_SIZE,
    BDF,
    GROUP,
    PAGE,
    Device,
    NoP2PImporter,
    StaticImporter,
    TestImporter,
    call,
    dma_buf_data,
    export,
    feature,
    open_group_path,
)

from mockkernel import Kernel
from mockkernel.driver import DmaBuf, dma_buf_attach, dma_buf_get, dma_buf_put, dma_buf_subsys
from mockkernel.topology import default_topology
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_DMA_BUF,
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET,
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_SET_IOMMU,
    VFIO_TYPE1v2_IOMMU,
)

GET11 = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF
U64 = 2**64


def _dmabuf(kernel: Kernel, fd: int) -> DmaBuf:
    buf: DmaBuf = kernel.init_process.files[fd].private_data
    return buf


def _priv(kernel: Kernel, fd: int) -> VfioPciDmaBuf:
    priv: VfioPciDmaBuf = _dmabuf(kernel, fd).priv
    return priv


def _try(dev: Device, *a: object, **kw: object) -> int | str:
    """Export and close at once: the size of the buffer, or the errno."""
    try:
        fd = export(dev.fd, *a, **kw)  # type: ignore[arg-type]
    except OSError as e:
        from vfio_helpers import errname

        return errname(e)
    size = os.fstat(fd).st_size
    os.close(fd)
    return size


# -- the GET flow --------------------------------------------------------------------------
def test_feature_flags(dev: Device) -> None:
    assert feature(dev.fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_DMA_BUF) == 0
    assert feature(dev.fd, VFIO_DEVICE_FEATURE_PROBE | GET11, b"", 8) == 0  # argsz unchecked
    data = dma_buf_data(0, [(0, PAGE)])
    for flags in (
        VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF,
        VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF,
    ):
        assert call(feature, dev.fd, flags, data) == "EINVAL"
    for argsz in (8, 23):  # the 16-byte header does not fit
        assert call(feature, dev.fd, GET11, data, argsz) == "EINVAL"


def test_header_checks_in_order(dev: Device) -> None:
    assert _try(dev, [], nr=0) == "EINVAL"  # 4. nr_ranges == 0
    assert _try(dev, flags=1) == "EINVAL"  # 4. flags != 0 ...
    assert _try(dev, region=100, flags=1) == "EINVAL"  # ... before the region
    for region in (1, 3, 4, 5, 6, 7, 8, 9, 100, 0xFFFFFFFF):  # 5. absent BAR, ROM and up
        assert _try(dev, [(1, 1)], region=region) == "ENODEV"  # before the range checks
    assert _try(dev, nr=0x10000000) == "ENOMEM"  # 6. the array is one kmalloc
    assert _try(dev, nr=0xFFFFFFFF) == "ENOMEM"
    assert _try(dev, nr=262145) == "ENOMEM"  # > KMALLOC_MAX_SIZE (4 MiB) of ranges


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        ([(0, PAGE)], PAGE),
        ([(0, BAR0_SIZE)], BAR0_SIZE),
        ([(BAR0_SIZE - PAGE, PAGE)], PAGE),
        ([(1, PAGE)], "EINVAL"),  # 7. unaligned offset
        ([(0, PAGE + 1)], "EINVAL"),  # 7. unaligned length
        ([(0, 0)], "EINVAL"),  # 7. empty
        ([(0, PAGE), (PAGE, 0)], "EINVAL"),  # 7. in any range
        ([(0, 2**63)], "EINVAL"),  # 7. total bit 63 (DMA_IOVA_USE_SWIOTLB)
        ([(0, 2**62), (0, 2**62)], "EINVAL"),  # 7. the sum has bit 63
        ([(0, 2**63), (0, 2**63)], "EINVAL"),  # 7. size_t overflow of the sum
        ([(BAR0_SIZE, PAGE)], "EINVAL"),  # 9. offset at the BAR end
        ([(BAR0_SIZE - PAGE, 2 * PAGE)], "EINVAL"),  # 9. crossing it
        ([(0, BAR0_SIZE + PAGE)], "EINVAL"),
        ([(1 << 40, PAGE)], "EINVAL"),
        ([(0, PAGE), (BAR0_SIZE, PAGE)], "EINVAL"),  # a bad range after a good one
        ([(U64 - PAGE, PAGE)], "EOVERFLOW"),  # 9. bar_start + offset overflows
        ([(U64 - 2 * PAGE, PAGE)], "EOVERFLOW"),
        ([(0, BAR0_SIZE), (0, BAR0_SIZE)], 2 * BAR0_SIZE),  # not compared with the BAR
        ([(0, 2 * PAGE), (PAGE, 2 * PAGE), (0, 2 * PAGE)], 6 * PAGE),  # overlapping
        ([(PAGE, PAGE), (0, PAGE)], 2 * PAGE),  # unordered
    ],
)
def test_ranges(dev: Device, ranges: list[tuple[int, int]], expected: int | str) -> None:
    assert _try(dev, ranges) == expected


def test_bar_without_p2p_provider(dev: Device) -> None:
    """BAR2 of the default device is not p2p-capable: pcim_p2pdma_provider() is NULL."""
    assert _try(dev, [(0, PAGE)], region=2) == "EINVAL"
    assert _try(dev, [(1, PAGE)], region=2) == "EINVAL"  # alignment is checked first anyway


def test_argsz_is_not_checked_against_nr_ranges(dev: Device) -> None:
    data = dma_buf_data(0, [(0, PAGE), (PAGE, PAGE)])
    fd = feature(dev.fd, GET11, data, 8 + 16 + 16)  # argsz covers one range: both are read
    assert os.fstat(fd).st_size == 2 * PAGE
    os.close(fd)
    # nr_ranges counts more ranges than the buffer holds: read past it (zeros: EINVAL)
    data = dma_buf_data(0, [(0, PAGE)], nr=2)
    assert call(lambda: feature(dev.fd, GET11, data + bytes(16))) == "EINVAL"


def test_bad_pointer(dev: Device) -> None:
    from mockkernel.uapi.linux.vfio import VFIO_DEVICE_FEATURE

    assert call(fcntl.ioctl, dev.fd, VFIO_DEVICE_FEATURE, 4096) == "EFAULT"


def test_open_flags(dev: Device) -> None:
    def describe(open_flags: int) -> tuple[bool, int]:
        fd = export(dev.fd, open_flags=open_flags)
        try:
            return (not os.get_inheritable(fd), fcntl.fcntl(fd, fcntl.F_GETFL))
        finally:
            os.close(fd)

    assert describe(0) == (False, os.O_RDONLY)
    assert describe(os.O_RDWR | os.O_CLOEXEC) == (True, os.O_RDWR)
    assert describe(os.O_WRONLY | os.O_APPEND | os.O_TRUNC) == (False, os.O_WRONLY)
    assert describe(0xFFFFFFFF) == (True, 3 | os.O_NONBLOCK)  # not validated


def test_export_returns_the_lowest_free_fd(dev: Device) -> None:
    fd = export(dev.fd)
    try:
        probe = os.open("/dev/null", os.O_RDONLY)
        os.close(probe)
        assert probe == fd + 1 or probe < fd
        assert os.readlink(f"/proc/self/fd/{fd}").endswith(("dmabuf", "dmabuf:"))
    finally:
        os.close(fd)


# -- the buffer as a file ---------------------------------------------------------------------
def test_no_mmap_op(dev: Device, mock_kernel: Kernel) -> None:
    rdwr = export(dev.fd, open_flags=os.O_RDWR)
    rdonly = export(dev.fd, open_flags=os.O_RDONLY)
    try:
        assert call(lambda: mmap.mmap(rdwr, PAGE)) == "EINVAL"  # no mmap op in 7.2
        assert call(lambda: mmap.mmap(rdonly, PAGE)) == "EACCES"  # shared + write on O_RDONLY
        assert call(lambda: mmap.mmap(rdonly, PAGE, prot=mmap.PROT_READ)) == "EINVAL"
        assert os.lseek(rdwr, 0, os.SEEK_END) == PAGE
        assert call(os.read, rdwr, 4) == "EINVAL"
        assert _dmabuf(mock_kernel, rdwr).exp_name == "vfio_pci_core"
    finally:
        os.close(rdwr)
        os.close(rdonly)


# -- exporter ops: attach and map ------------------------------------------------------------
def test_attach_outcomes(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    try:
        assert call(StaticImporter(mock_kernel).import_fd, fd) == "EOPNOTSUPP"  # not revocable
        assert call(NoP2PImporter(mock_kernel).import_fd, fd) == "EOPNOTSUPP"
        dmabuf = dma_buf_get(fd, mock_kernel.current)
        try:
            from vfio_helpers import ImporterDev

            assert call(dma_buf_attach, dmabuf, ImporterDev()) == "EOPNOTSUPP"  # static
        finally:
            dma_buf_put(dmabuf)
        imp = TestImporter(mock_kernel)
        imp.import_fd(fd)
        imp.release()
    finally:
        os.close(fd)


def test_map_gives_bar_bus_addresses(dev: Device, mock_kernel: Kernel) -> None:
    assert mock_kernel.pci is not None
    bar = mock_kernel.pci.get("0000:01:00.0").bars[0]
    fd = export(dev.fd, [(3 * PAGE, PAGE), (0, 2 * PAGE)])
    imp = TestImporter(mock_kernel)
    try:
        imp.import_fd(fd)
        assert imp.sgt is not None
        entries = [(e.dma_address, e.length, e.mem_offset) for e in imp.sgt]
        assert entries == [
            (bar.bus_address + 3 * PAGE, PAGE, 3 * PAGE),
            (bar.bus_address, 2 * PAGE, 0),
        ]
        # a "DMA" through the scatter list lands in the BAR: userspace reads it back
        first = imp.sgt.entries[0]
        assert first.mem is bar.map
        first.mem.write(first.mem_offset, b"p2p write")
        assert os.pread(dev.fd, 9, 3 * PAGE) == b"p2p write"
        assert _priv(mock_kernel, fd).nr_mapped == 1
        imp.unmap()
        assert _priv(mock_kernel, fd).nr_mapped == 0
    finally:
        imp.release()
        os.close(fd)


def test_born_revoked(dev: Device, mock_kernel: Kernel) -> None:
    import struct

    cmd = struct.unpack("<H", os.pread(dev.fd, 2, (7 << 40) + 4))[0]
    os.pwrite(dev.fd, struct.pack("<H", cmd & ~2), (7 << 40) + 4)
    fd = export(dev.fd)  # succeeds: the buffer is born revoked
    try:
        assert _priv(mock_kernel, fd).revoked
        assert call(TestImporter(mock_kernel).import_fd, fd) == "ENODEV"
        os.pwrite(dev.fd, struct.pack("<H", cmd), (7 << 40) + 4)
        assert not _priv(mock_kernel, fd).revoked
        imp = TestImporter(mock_kernel)
        imp.import_fd(fd)
        imp.release()
    finally:
        os.close(fd)


# -- lifetimes: dup, close orders -----------------------------------------------------------
@pytest.mark.parametrize("close_original_first", [True, False])
def test_dup_closed_in_either_order(
    dev: Device, mock_kernel: Kernel, close_original_first: bool
) -> None:
    fd = export(dev.fd)
    dup = os.dup(fd)
    dmabuf = _dmabuf(mock_kernel, fd)
    assert _dmabuf(mock_kernel, dup) is dmabuf
    first, second = (fd, dup) if close_original_first else (dup, fd)
    os.close(first)
    assert dmabuf.id in dma_buf_subsys(mock_kernel).dmabufs
    imp = TestImporter(mock_kernel)
    imp.import_fd(second)  # the surviving fd still names the live buffer
    imp.release()
    os.close(second)
    assert dmabuf.id not in dma_buf_subsys(mock_kernel).dmabufs  # released with the last fd


def test_dmabuf_closed_before_device(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd)
    dmabuf = _dmabuf(mock_kernel, fd)
    os.close(fd)
    assert dmabuf.id not in dma_buf_subsys(mock_kernel).dmabufs
    vdev = _priv_vdev(mock_kernel)
    assert not vdev.dmabufs  # unlinked by release
    assert os.pread(dev.fd, 4, 0) is not None  # the device still works


def _priv_vdev(kernel: Kernel):  # type: ignore[no-untyped-def]
    drv = kernel.bound["0000:01:00.0"]
    return drv.devices["0000:01:00.0"]  # type: ignore[attr-defined]


def test_device_closed_before_dmabuf(dev: Device, mock_kernel: Kernel) -> None:
    fd = export(dev.fd, [(0, 2 * PAGE)])
    imp = TestImporter(mock_kernel)
    imp.import_fd(fd)
    dev.close()  # the last device fd: every buffer revoked for good
    try:
        assert imp.invalidations == 1 and imp.sgt is None
        priv = _priv(mock_kernel, fd)
        assert priv.revoked and priv.vdev is None
        assert os.fstat(fd).st_size == 2 * PAGE  # the fd stays valid
        assert call(imp.map) == "ENODEV"  # map: revoked
        assert call(TestImporter(mock_kernel).import_fd, fd) == "ENODEV"  # attach: revoked
    finally:
        imp.release()
        os.close(fd)


def test_reopened_device_does_not_revive_old_buffers(mock_kernel: Kernel) -> None:
    from vfio_helpers import open_group_path

    dev = open_group_path()
    fd = export(dev.fd)
    dev.close()
    dev = open_group_path()
    try:
        assert _priv(mock_kernel, fd).revoked  # still revoked: it belongs to no device
        fd2 = export(dev.fd)
        assert not _priv(mock_kernel, fd2).revoked
        os.close(fd2)
    finally:
        dev.close()
        os.close(fd)


# -- errnos only a raw pointer or an fd limit reaches (a simulated process) ------------------
NO_DMABUF_OPS = dataclasses.replace(
    default_topology(),
    devices=tuple(
        dataclasses.replace(d, options={"dma_buf": False}) if d.bdf == BDF else d
        for d in default_topology().devices
    ),
)


@pytest.mark.mockkernel(topology=NO_DMABUF_OPS)
@pytest.mark.usefixtures("mock_kernel")
def test_step1_no_get_dmabuf_phys() -> None:
    dev = open_group_path()
    try:
        for flags in (VFIO_DEVICE_FEATURE_PROBE, VFIO_DEVICE_FEATURE_SET, GET11):
            assert call(feature, dev.fd, flags | VFIO_DEVICE_FEATURE_DMA_BUF) == "EOPNOTSUPP"
    finally:
        dev.close()


def _virtual_device(kernel: Kernel) -> tuple[Any, int]:
    """A simulated process with the device open through the group path: (process, fd)."""
    proc = kernel.spawn("vfio-user")
    with kernel.running(proc):
        c = proc.sys_open("/dev/vfio/vfio", os.O_RDWR)
        g = proc.sys_open(f"/dev/vfio/{GROUP}", os.O_RDWR)
        fd_arg = ctypes.c_int(c)
        proc.sys_ioctl(g, VFIO_GROUP_SET_CONTAINER, ctypes.addressof(fd_arg))
        proc.sys_ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
        name = ctypes.create_string_buffer(BDF.encode())
        d = proc.sys_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, ctypes.addressof(name))
    return proc, d


def test_step6_ranges_at_a_bad_address(mock_kernel_factory: Any) -> None:
    kernel = mock_kernel_factory()
    proc, d = _virtual_device(kernel)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    base = libc.mmap(None, 2 * PAGE, 3, 0x22, -1, 0)  # RW, MAP_PRIVATE | MAP_ANONYMOUS
    libc.munmap(base + PAGE, PAGE)  # the ranges would continue on this page
    try:
        req = struct.pack("<II", 8 + 16 + 16, GET11) + dma_buf_data(0, [], nr=1)
        at = base + PAGE - len(req)
        ctypes.memmove(at, req, len(req))
        with kernel.running(proc):
            assert call(proc.sys_ioctl, d, VFIO_DEVICE_FEATURE, at) == "EFAULT"
            assert call(proc.sys_ioctl, d, VFIO_DEVICE_FEATURE, base + PAGE - 4) == "EFAULT"
    finally:
        libc.munmap(base, PAGE)
    proc.exit()


def test_step13_no_free_fd(mock_kernel_factory: Any) -> None:
    topo = dataclasses.replace(
        default_topology(),
        kernel=dataclasses.replace(default_topology().kernel, rlimit_nofile=5),
    )
    kernel = mock_kernel_factory(topo)
    proc, d = _virtual_device(kernel)  # fds 0, 1, 2
    req = ctypes.create_string_buffer(
        struct.pack("<II", 8 + 16 + 16, GET11) + dma_buf_data(0, [(0, PAGE)])
    )
    with kernel.running(proc):
        fds = [proc.sys_ioctl(d, VFIO_DEVICE_FEATURE, ctypes.addressof(req)) for _ in range(2)]
        assert fds == [3, 4]
        assert call(proc.sys_ioctl, d, VFIO_DEVICE_FEATURE, ctypes.addressof(req)) == "EMFILE"
    # the failed one was put (and unlinked by release)
    assert len(dma_buf_subsys(kernel).dmabufs) == 2
    vdev = kernel.bound[BDF].devices[BDF]
    assert len(vdev.dmabufs) == 2
    proc.exit()
