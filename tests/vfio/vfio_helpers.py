"""Helpers for the vfio-pci tests: the two access paths, feature calls, a test importer.

Everything a test does to the device goes through ``os``/``fcntl``/``mmap`` as a real
program would (the ``mock_kernel`` fixture routes those calls to the kernel);
importers use the kernel API, as a driver would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import struct
from collections.abc import Iterable, Sequence

from mockkernel.driver import (
    DMA_BIDIRECTIONAL,
    Attachment,
    DmaBuf,
    DmaBufAttachOps,
    Kernel,
    SgTable,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_get,
    dma_buf_map_attachment,
    dma_buf_put,
    dma_buf_unmap_attachment,
)
from mockkernel.topology import BarSpec, DeviceSpec, Topology, default_topology
from mockkernel.uapi.linux.iommufd import IOMMU_IOAS_ALLOC
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_DMA_BUF,
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_SET,
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_SET_IOMMU,
    VFIO_TYPE1v2_IOMMU,
)
from mockkernel.uapi.linux.vfio_tph import VFIO_DEVICE_FEATURE_DMA_BUF_TPH

BDF = "0000:01:00.0"  # the default topology's vfio-pci device: group 6, BAR0 1 MiB p2p
GROUP = 6
BAR0_SIZE = 1 << 20
BAR2_SIZE = 1 << 16
PAGE = 4096
CONFIG = 7 << 40
PATHS = ("group", "cdev")


def errname(e: OSError) -> str:
    """The errno's name; 95 is spelled EOPNOTSUPP as the kernel sources do (not ENOTSUP)."""
    if e.errno == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode[e.errno] if e.errno is not None else "?"


def call(fn: object, *args: object, **kwargs: object) -> int | str:
    """``fn(*args, **kwargs)``, or the errno name it raised."""
    try:
        return fn(*args, **kwargs)  # type: ignore[operator,no-any-return]
    except OSError as e:
        return errname(e)


def ioctl_buf(fd: int, cmd: int, data: bytes) -> tuple[int, bytes]:
    buf = bytearray(data)
    ret = fcntl.ioctl(fd, cmd, buf, True)
    return ret, bytes(buf)


def feature(fd: int, flags: int, data: bytes = b"", argsz: int | None = None) -> int:
    buf = bytearray(struct.pack("<II", 8 + len(data) if argsz is None else argsz, flags) + data)
    return fcntl.ioctl(fd, VFIO_DEVICE_FEATURE, buf, True)


def dma_buf_data(
    region: int,
    ranges: Iterable[tuple[int, int]],
    open_flags: int = os.O_RDWR,
    flags: int = 0,
    nr: int | None = None,
) -> bytes:
    rs = list(ranges)
    data = struct.pack("<IIII", region, open_flags, flags, len(rs) if nr is None else nr)
    return data + b"".join(struct.pack("<QQ", o & (2**64 - 1), n & (2**64 - 1)) for o, n in rs)


def export(
    fd: int,
    ranges: Sequence[tuple[int, int]] = ((0, PAGE),),
    region: int = 0,
    open_flags: int = os.O_RDWR,
    **kw: int,
) -> int:
    """``VFIO_DEVICE_FEATURE_DMA_BUF``: the new dma-buf fd."""
    return feature(
        fd,
        VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF,
        dma_buf_data(region, ranges, open_flags, **kw),
    )


def tph_v11(fd: int, dmabuf_fd: int, flags: int, xst: int = 0, st: int = 0, ph: int = 0) -> int:
    data = struct.pack("<iIHBB", dmabuf_fd, flags, xst, st, ph)
    return feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, data)


def tph_v2(fd: int, dmabuf_fd: int, tag: int, ph: int, reserved: int = 0) -> int:
    data = struct.pack("<iHBB", dmabuf_fd, tag, ph, reserved)
    return feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, data)


# -- the two access paths -------------------------------------------------------------------
@dataclasses.dataclass
class Device:
    """An open vfio device and the fds behind it; ``close()`` closes them all."""

    path: str
    fd: int
    others: list[int]
    devid: int = 0
    ioas: int = 0

    def close(self) -> None:
        for fd in [self.fd, *self.others]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fd = -1
        self.others = []


def open_group_path(bdf: str = BDF, group: int = GROUP) -> Device:
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    g = os.open(f"/dev/vfio/{group}", os.O_RDWR)
    fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", container))
    fcntl.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
    fd = fcntl.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bytearray(bdf.encode() + b"\0"), True)
    return Device("group", fd, [g, container])


def cdev_name(bdf: str = BDF) -> str:
    return sorted(os.listdir(f"/sys/bus/pci/devices/{bdf}/vfio-dev"))[0]


def open_cdev_path(bdf: str = BDF, attach: bool = True) -> Device:
    iommufd = os.open("/dev/iommu", os.O_RDWR)
    fd = os.open(f"/dev/vfio/devices/{cdev_name(bdf)}", os.O_RDWR)
    _, out = ioctl_buf(fd, VFIO_DEVICE_BIND_IOMMUFD, struct.pack("<IIiI", 16, 0, iommufd, 0))
    dev = Device("cdev", fd, [iommufd], devid=struct.unpack_from("<I", out, 12)[0])
    if attach:
        _, out = ioctl_buf(iommufd, IOMMU_IOAS_ALLOC, struct.pack("<III", 12, 0, 0))
        dev.ioas = struct.unpack_from("<I", out, 8)[0]
        ioctl_buf(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, struct.pack("<III", 12, 0, dev.ioas))
    return dev


def open_device(path: str, bdf: str = BDF, group: int = GROUP) -> Device:
    return open_group_path(bdf, group) if path == "group" else open_cdev_path(bdf)


# -- importers ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ImporterDev:
    """The importing device (``struct device``): only its name matters."""

    name: str = "0000:02:00.0"


class TestImporter(DmaBufAttachOps):
    """A dynamic peer-to-peer importer that maps at attach and unmaps when invalidated.

    With ``unmap_on_invalidate=False`` it ignores invalidation (a buggy importer), so the
    exporter's revoke finds a mapping left and warns.
    """

    __test__ = False  # not a pytest class
    allow_peer2peer = True

    def __init__(self, kernel: Kernel, unmap_on_invalidate: bool = True) -> None:
        self.kernel = kernel
        self.unmap_on_invalidate = unmap_on_invalidate
        self.invalidations = 0
        self.dmabuf: DmaBuf | None = None
        self.attach: Attachment | None = None
        self.sgt: SgTable | None = None

    def invalidate_mappings(self, attach: Attachment) -> None:
        attach.dmabuf.resv.assert_held()
        self.invalidations += 1
        if self.unmap_on_invalidate and self.sgt is not None:
            dma_buf_unmap_attachment(attach, self.sgt, DMA_BIDIRECTIONAL)
            self.sgt = None

    def import_fd(self, fd: int, map_now: bool = True) -> None:
        """``dma_buf_get`` + ``dma_buf_dynamic_attach`` (+ a mapping); on error nothing is held."""
        dmabuf = dma_buf_get(fd, self.kernel.current)
        try:
            self.attach = dma_buf_dynamic_attach(dmabuf, ImporterDev(), self, None)
        except BaseException:
            dma_buf_put(dmabuf)
            raise
        self.dmabuf = dmabuf
        if map_now:
            self.map()

    def map(self) -> SgTable:
        assert self.attach is not None and self.dmabuf is not None
        with self.dmabuf.resv:
            self.sgt = dma_buf_map_attachment(self.attach, DMA_BIDIRECTIONAL)
        return self.sgt

    def unmap(self) -> None:
        assert self.attach is not None and self.dmabuf is not None
        if self.sgt is not None:
            with self.dmabuf.resv:
                dma_buf_unmap_attachment(self.attach, self.sgt, DMA_BIDIRECTIONAL)
            self.sgt = None

    def release(self) -> None:
        """Unmap, detach, put: what an importer does when its user lets go."""
        if self.dmabuf is None or self.attach is None:
            return
        self.unmap()
        dma_buf_detach(self.dmabuf, self.attach)
        dma_buf_put(self.dmabuf)
        self.dmabuf = None
        self.attach = None


class StaticImporter(TestImporter):
    """Peer-to-peer but without ``invalidate_mappings``: not revocable."""

    __test__ = False
    invalidate_mappings = None  # type: ignore[assignment]


class NoP2PImporter(TestImporter):
    __test__ = False
    allow_peer2peer = False


# -- topologies -----------------------------------------------------------------------------
def vfio_device_spec(bdf: str, group: int, tph_completer: str = "ext") -> DeviceSpec:
    return DeviceSpec(
        bdf=bdf,
        vendor=0x10EE,
        device=0x903F,
        class_code=0x120000,
        iommu_group=group,
        driver="vfio-pci",
        tph_completer=tph_completer,
        bars=(BarSpec(0, 0x100000, mem64=True, prefetch=True, p2pdma=True),),
    )


def topology_with(*extra: DeviceSpec, uapi: str | None = None) -> Topology:
    """The default topology plus ``extra`` devices (and another uAPI profile)."""
    topo = default_topology()
    topo = dataclasses.replace(topo, devices=(*topo.devices, *extra))
    if uapi is not None:
        topo = dataclasses.replace(topo, kernel=dataclasses.replace(topo.kernel, uapi=uapi))
    return topo


#: default topology + a second ext-TPH vfio device (group 9), a TPH-only one (group 10)
#: and one without TPH completer (group 11)
MULTI = topology_with(
    vfio_device_spec("0000:04:00.0", 9, "ext"),
    vfio_device_spec("0000:05:00.0", 10, "tph-only"),
    vfio_device_spec("0000:06:00.0", 11, "none"),
)
