"""Test-side RDMA helpers: the network peer, a small verbs client, dma-buf makers.

* :func:`remote_write` -- stands in for the remote side of a connection: an RDMA WRITE
  of ``data`` to ``(rkey, offset)`` of a device.  The responder faults, maps and DMAs
  through the PCIe fabric (``kernel.fabric.memory_write``, with the PH and steering tag
  of the MR's mkey), or completes in error -- exactly as the MR's state dictates.  It
  never raises for an MR in a bad state: the returned :class:`MrWriteResult` says how
  it ended (``status``, ``reason``, ``tlps``).
* :class:`Verbs` -- what rdma-core does for a dma-buf MR program, in raw
  ``RDMA_VERBS_IOCTL``/``write()`` calls through ``os``/``fcntl`` (so under an
  installed kernel it reaches the mock, and the calls are the real ABI).
* :func:`udmabuf` and :class:`VfioDevice` -- dma-bufs from the two bundled exporters,
  the way a program gets them (``/dev/udmabuf``; the vfio cdev + iommufd, then
  ``VFIO_DEVICE_FEATURE_DMA_BUF`` and the TPH feature of the booted uAPI profile).

Everything here except :func:`remote_write` is plain userspace: use it with the
kernel installed (the ``mock_kernel`` fixture, or ``with kernel.install():``).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..rdma.access import ib_rdma_write
from ..rdma.device import ib_device_by_name
from ..rdma.uverbs import MrWriteResult
from ..uapi.rdma import ib_user_ioctl_cmds as C
from ..uapi.rdma import ib_user_verbs as V
from ..uapi.rdma.ib_user_ioctl_verbs import RDMA_DRIVER_MLX5
from ..uapi.rdma.mlx5_abi import (
    MLX5_LIB_CAP_4K_UAR,
    MLX5_LIB_CAP_DYN_UAR,
    mlx5_ib_alloc_ucontext_req_v2,
    mlx5_ib_alloc_ucontext_resp,
)
from ..uapi.rdma.mlx5_user_ioctl_cmds import MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS
from ..uapi.rdma.mlx5_user_ioctl_verbs import MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT
from ..uapi.rdma.rdma_user_ioctl_cmds import RDMA_VERBS_IOCTL
from .conformance import DmaResult

if TYPE_CHECKING:
    from ..kernel import Kernel

__all__ = [
    "Attr",
    "Mr",
    "MrWriteResult",
    "UverbsImporter",
    "Verbs",
    "VfioDevice",
    "remote_write",
    "udmabuf",
]

_HDR = struct.Struct("<HHHHQII")
_ATTR = struct.Struct("<HHHHQ")
_MASK64 = (1 << 64) - 1
PAGE = 4096


def remote_write(
    kernel: Kernel, ibdev_name: str, rkey: int, offset: int, data: bytes
) -> MrWriteResult:
    """An RDMA WRITE from the network: ``data`` at byte ``offset`` of the MR ``rkey``.

    ``KeyError`` only if there is no device ``ibdev_name``; everything about the MR
    (unknown key, no ``REMOTE_WRITE``, out of range, revoked memory) is in the result.
    """
    return ib_rdma_write(ib_device_by_name(kernel, ibdev_name), rkey, offset, data)


# -- a verbs client ---------------------------------------------------------------------------
Attr = tuple[int, int, int, int, int]  # attr_id, len, flags, attr_data.reserved, data


def attr(aid: int, data: int = 0, length: int = 0, flags: int = 0, reserved: int = 0) -> Attr:
    return (aid, length, flags, reserved, data & _MASK64)


def in8(aid: int, value: int) -> Attr:
    """An inline 8-byte input (``UVERBS_ATTR_TYPE(u64)``, ``CONST_IN``)."""
    return attr(aid, value, 8)


def in4(aid: int, value: int) -> Attr:
    return attr(aid, value & 0xFFFFFFFF, 4)


def idr(aid: int, handle: int) -> Attr:
    return attr(aid, handle, 0)


@dataclass(frozen=True)
class Mr:
    handle: int
    lkey: int
    rkey: int


class Verbs:
    """One open of ``/dev/infiniband/uverbsN``, used as rdma-core uses it.

    ``Verbs("mlx5_0")`` finds the node through sysfs (``ibdev``), as libibverbs does.
    """

    def __init__(self, ibdev: str, context: bool = True) -> None:
        self.ibdev = ibdev
        self.uverbs = self._find(ibdev)
        self.fd = os.open(f"/dev/infiniband/{self.uverbs}", os.O_RDWR | os.O_CLOEXEC)
        self.driver_id = _DRIVER_IDS.get(ibdev.rstrip("0123456789").rstrip("_"), 0)
        self._keep: list[object] = []
        #: the driver's response to GET_CONTEXT (mlx5: ``mlx5_ib_alloc_ucontext_resp``)
        self.context_resp = b""
        if context:
            try:
                self.get_context()
            except BaseException:
                self.close()
                raise

    @staticmethod
    def _find(ibdev: str) -> str:
        base = "/sys/class/infiniband_verbs"
        for name in sorted(os.listdir(base)):
            if not name.startswith("uverbs"):
                continue
            with open(f"{base}/{name}/ibdev") as f:
                if f.read().strip() == ibdev:
                    return name
        raise FileNotFoundError(f"no uverbs device for {ibdev}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Verbs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- framing ---------------------------------------------------------------------
    def out(self, n: int) -> tuple[int, ctypes.Array[ctypes.c_char]]:
        buf = ctypes.create_string_buffer(n)
        self._keep.append(buf)
        return ctypes.addressof(buf), buf

    def ioctl(
        self, obj: int, method: int, attrs: Sequence[Attr], driver_id: int | None = None
    ) -> list[Attr]:
        """``RDMA_VERBS_IOCTL``; returns the attribute array as the kernel left it."""
        did = self.driver_id if driver_id is None else driver_id
        buf = bytearray(_HDR.pack(24 + 16 * len(attrs), obj, method, len(attrs), 0, did, 0))
        for a in attrs:
            buf += _ATTR.pack(*a)
        try:
            fcntl.ioctl(self.fd, RDMA_VERBS_IOCTL, buf)
        finally:
            keep, self._keep = self._keep, []
            del keep
        return [_ATTR.unpack_from(buf, 24 + 16 * i) for i in range(len(attrs))]

    def write_cmd(self, command: int, body: bytes, out_words: int = 0) -> int:
        hdr = struct.pack("<IHH", command, (8 + len(body)) // 4, out_words)
        return os.write(self.fd, hdr + body)

    # -- verbs -----------------------------------------------------------------------
    def get_context(self) -> None:
        """``ibv_open_device``'s ``GET_CONTEXT``, with the driver data the provider sends:
        mlx5's ``mlx5_ib_alloc_ucontext_req_v2`` as rdma-core 59 fills it (16 bfregs, 4
        low-latency, CQE version 1, 4K and dynamic UARs, no DEVX); rxe sends none."""
        attrs: list[Attr] = []
        resp_buf = None
        if self.driver_id == RDMA_DRIVER_MLX5:
            req = mlx5_ib_alloc_ucontext_req_v2()
            req.total_num_bfregs = 16
            req.num_low_latency_bfregs = 4
            req.max_cqe_version = 1
            req.lib_caps = MLX5_LIB_CAP_4K_UAR | MLX5_LIB_CAP_DYN_UAR
            req_buf = ctypes.create_string_buffer(bytes(req), ctypes.sizeof(req))
            self._keep.append(req_buf)
            resp_addr, resp_buf = self.out(ctypes.sizeof(mlx5_ib_alloc_ucontext_resp))
            attrs = [
                attr(C.UVERBS_ATTR_UHW_IN, ctypes.addressof(req_buf), ctypes.sizeof(req)),
                attr(C.UVERBS_ATTR_UHW_OUT, resp_addr, len(resp_buf.raw)),
            ]
        self.ioctl(C.UVERBS_OBJECT_DEVICE, C.UVERBS_METHOD_GET_CONTEXT, attrs)
        if resp_buf is not None:
            self.context_resp = resp_buf.raw

    def alloc_pd(self) -> int:
        """``ibv_alloc_pd``: ``IB_USER_VERBS_CMD_ALLOC_PD`` by ``write()``."""
        addr, buf = self.out(4)
        self.write_cmd(V.IB_USER_VERBS_CMD_ALLOC_PD, struct.pack("<Q", addr), 1)
        return int.from_bytes(buf.raw[:4], "little")

    def dealloc_pd(self, pd: int) -> None:
        self.write_cmd(V.IB_USER_VERBS_CMD_DEALLOC_PD, struct.pack("<I", pd))

    def reg_dmabuf_mr(
        self,
        pd: int,
        dmabuf_fd: int,
        length: int,
        offset: int = 0,
        iova: int = 0,
        access: int = 0,
        data_direct: bool = False,
    ) -> Mr:
        """``ibv_reg_dmabuf_mr`` (``mlx5dv_reg_dmabuf_mr`` with ``data_direct``)."""
        lkey_addr, lkey = self.out(4)
        rkey_addr, rkey = self.out(4)
        attrs = [
            idr(C.UVERBS_ATTR_REG_DMABUF_MR_HANDLE, 0),
            idr(C.UVERBS_ATTR_REG_DMABUF_MR_PD_HANDLE, pd),
            in8(C.UVERBS_ATTR_REG_DMABUF_MR_OFFSET, offset),
            in8(C.UVERBS_ATTR_REG_DMABUF_MR_LENGTH, length),
            in8(C.UVERBS_ATTR_REG_DMABUF_MR_IOVA, iova),
            in4(C.UVERBS_ATTR_REG_DMABUF_MR_FD, dmabuf_fd),
            in4(C.UVERBS_ATTR_REG_DMABUF_MR_ACCESS_FLAGS, access),
            attr(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_LKEY, lkey_addr, 4),
            attr(C.UVERBS_ATTR_REG_DMABUF_MR_RESP_RKEY, rkey_addr, 4),
        ]
        if data_direct:
            attrs.append(
                in4(
                    MLX5_IB_ATTR_REG_DMABUF_MR_ACCESS_FLAGS,
                    MLX5_IB_UAPI_REG_DMABUF_ACCESS_DATA_DIRECT,
                )
            )
        after = self.ioctl(C.UVERBS_OBJECT_MR, C.UVERBS_METHOD_REG_DMABUF_MR, attrs)
        return Mr(after[0][4], _u32(lkey), _u32(rkey))

    def reg_mr(
        self,
        pd: int,
        length: int,
        iova: int,
        access: int,
        addr: int | None = None,
        fd: int | None = None,
        fd_offset: int | None = None,
        dmah: int | None = None,
    ) -> Mr:
        """``ibv_reg_mr_ex``: ``UVERBS_METHOD_REG_MR`` (user memory, or a dma-buf fd)."""
        lkey_addr, lkey = self.out(4)
        rkey_addr, rkey = self.out(4)
        attrs = [
            idr(C.UVERBS_ATTR_REG_MR_HANDLE, 0),
            idr(C.UVERBS_ATTR_REG_MR_PD_HANDLE, pd),
            in8(C.UVERBS_ATTR_REG_MR_IOVA, iova),
            in8(C.UVERBS_ATTR_REG_MR_LENGTH, length),
            in4(C.UVERBS_ATTR_REG_MR_ACCESS_FLAGS, access),
            attr(C.UVERBS_ATTR_REG_MR_RESP_LKEY, lkey_addr, 4),
            attr(C.UVERBS_ATTR_REG_MR_RESP_RKEY, rkey_addr, 4),
        ]
        if addr is not None:
            attrs.append(in8(C.UVERBS_ATTR_REG_MR_ADDR, addr))
        if fd is not None:
            attrs.append(attr(C.UVERBS_ATTR_REG_MR_FD, fd, 0))
        if fd_offset is not None:
            attrs.append(in8(C.UVERBS_ATTR_REG_MR_FD_OFFSET, fd_offset))
        if dmah is not None:
            attrs.append(idr(C.UVERBS_ATTR_REG_MR_DMA_HANDLE, dmah))
        after = self.ioctl(C.UVERBS_OBJECT_MR, C.UVERBS_METHOD_REG_MR, attrs)
        return Mr(after[0][4], _u32(lkey), _u32(rkey))

    def dereg_mr(self, mr: Mr | int) -> None:
        handle = mr.handle if isinstance(mr, Mr) else mr
        self.ioctl(
            C.UVERBS_OBJECT_MR,
            C.UVERBS_METHOD_MR_DESTROY,
            [idr(C.UVERBS_ATTR_DESTROY_MR_HANDLE, handle)],
        )

    def query_mr(self, mr: Mr | int) -> tuple[int, int, int, int]:
        """(lkey, rkey, length, iova)."""
        handle = mr.handle if isinstance(mr, Mr) else mr
        bufs = [self.out(n) for n in (4, 4, 8, 8)]
        self.ioctl(
            C.UVERBS_OBJECT_MR,
            C.UVERBS_METHOD_QUERY_MR,
            [
                idr(C.UVERBS_ATTR_QUERY_MR_HANDLE, handle),
                attr(C.UVERBS_ATTR_QUERY_MR_RESP_LKEY, bufs[0][0], 4),
                attr(C.UVERBS_ATTR_QUERY_MR_RESP_RKEY, bufs[1][0], 4),
                attr(C.UVERBS_ATTR_QUERY_MR_RESP_LENGTH, bufs[2][0], 8),
                attr(C.UVERBS_ATTR_QUERY_MR_RESP_IOVA, bufs[3][0], 8),
            ],
        )
        lk, rk, ln, io = (int.from_bytes(b.raw, "little") for _a, b in bufs)
        return lk, rk, ln, io

    def dmah_alloc(
        self, cpu_id: int | None = None, mem_type: int | None = None, ph: int | None = None
    ) -> int:
        """``ibv_alloc_dmah``: ``UVERBS_METHOD_DMAH_ALLOC`` (the memory type is an enum:
        its value travels in ``attr_data.enum_data.elem_id``)."""
        attrs = [idr(C.UVERBS_ATTR_ALLOC_DMAH_HANDLE, 0)]
        if cpu_id is not None:
            attrs.append(in4(C.UVERBS_ATTR_ALLOC_DMAH_CPU_ID, cpu_id))
        if mem_type is not None:
            attrs.append(attr(C.UVERBS_ATTR_ALLOC_DMAH_TPH_MEM_TYPE, reserved=mem_type))
        if ph is not None:
            attrs.append(attr(C.UVERBS_ATTR_ALLOC_DMAH_PH, ph, 1))
        after = self.ioctl(C.UVERBS_OBJECT_DMAH, C.UVERBS_METHOD_DMAH_ALLOC, attrs)
        return after[0][4]

    def dmah_free(self, dmah: int) -> None:
        self.ioctl(
            C.UVERBS_OBJECT_DMAH,
            C.UVERBS_METHOD_DMAH_FREE,
            [idr(C.UVERBS_ATTR_FREE_DMA_HANDLE, dmah)],
        )


#: enum rdma_driver_id by ibdev name prefix (the ioctl header must carry the device's)
_DRIVER_IDS = MappingProxyType({"mlx5": 1, "rxe": 14, "siw": 18})


def _u32(buf: ctypes.Array[ctypes.c_char]) -> int:
    return int.from_bytes(buf.raw[:4], "little")


# -- dma-buf makers ------------------------------------------------------------------------------
def udmabuf(size: int, data: bytes = b"") -> tuple[int, int]:
    """A udmabuf of ``size`` bytes over a fresh sealed memfd: ``(dmabuf_fd, memfd)``."""
    from . import sealed_memfd

    memfd = sealed_memfd(size, data)
    dev = os.open("/dev/udmabuf", os.O_RDWR | os.O_CLOEXEC)
    try:
        arg = bytearray(struct.pack("<IIQQ", memfd, 0, 0, size))
        fd = fcntl.ioctl(dev, 0x40187542, arg)  # UDMABUF_CREATE
    except BaseException:
        os.close(memfd)
        raise
    finally:
        os.close(dev)
    return fd, memfd


_VFIO = ord(";")
VFIO_DEVICE_FEATURE = _VFIO << 8 | 117
VFIO_DEVICE_RESET = _VFIO << 8 | 111
VFIO_DEVICE_BIND_IOMMUFD = _VFIO << 8 | 118
VFIO_DEVICE_ATTACH_IOMMUFD_PT = _VFIO << 8 | 119
IOMMU_IOAS_ALLOC = _VFIO << 8 | 0x81
_GET, _SET = 1 << 16, 1 << 17
_DMA_BUF, _DMA_BUF_TPH = 11, 13
VFIO_DMA_BUF_TPH_ST = 1
VFIO_DMA_BUF_TPH_ST_EXT = 2
VFIO_DMABUF_FLAG_TPH = 1
_CONFIG_REGION = 7 << 40  # VFIO_PCI_CONFIG_REGION_INDEX << VFIO_PCI_OFFSET_SHIFT


class VfioDevice:
    """A vfio-pci function opened through its cdev and bound to iommufd, as programs do.

    ``tph_feature`` is the ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` number the program was
    built with (13 in v2-v11; another for a profile that renumbers it).
    """

    def __init__(self, bdf: str, tph_feature: int = _DMA_BUF_TPH) -> None:
        self.bdf = bdf
        self.tph_feature = tph_feature
        name = sorted(os.listdir(f"/sys/bus/pci/devices/{bdf}/vfio-dev"))[0]
        self.iommufd = os.open("/dev/iommu", os.O_RDWR | os.O_CLOEXEC)
        try:
            self.fd = os.open(f"/dev/vfio/devices/{name}", os.O_RDWR | os.O_CLOEXEC)
        except BaseException:
            os.close(self.iommufd)
            raise
        try:
            fcntl.ioctl(
                self.fd,
                VFIO_DEVICE_BIND_IOMMUFD,
                bytearray(struct.pack("<IIiI", 16, 0, self.iommufd, 0)),
            )
            ioas = bytearray(struct.pack("<III", 12, 0, 0))
            fcntl.ioctl(self.iommufd, IOMMU_IOAS_ALLOC, ioas)
            pt = struct.unpack_from("<I", ioas, 8)[0]
            fcntl.ioctl(
                self.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, bytearray(struct.pack("<III", 12, 0, pt))
            )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for fd in (self.fd, self.iommufd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.iommufd = -1

    def __enter__(self) -> VfioDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def feature(self, flags: int, data: bytes) -> int:
        buf = bytearray(struct.pack("<II", 8 + len(data), flags) + data)
        ret: int = fcntl.ioctl(self.fd, VFIO_DEVICE_FEATURE, buf, True)
        return ret

    def export(
        self,
        offset: int,
        length: int,
        region: int = 0,
        tph_v1: tuple[int, int] | None = None,
    ) -> int:
        """``VFIO_DEVICE_FEATURE_DMA_BUF`` of one BAR range: the dma-buf fd.  ``tph_v1``
        (``tph-v1`` profile only): ``(steering_tag, ph)`` as the trailing entry."""
        flags = VFIO_DMABUF_FLAG_TPH if tph_v1 is not None else 0
        data = struct.pack("<IIII", region, os.O_RDWR | os.O_CLOEXEC, flags, 1)
        data += struct.pack("<QQ", offset, length)
        if tph_v1 is not None:
            data += struct.pack("<HBBI", tph_v1[0], tph_v1[1], 0, 0) + bytes(8)
        return self.feature(_GET | _DMA_BUF, data)

    def set_tph(self, dmabuf_fd: int, flags: int, xst: int = 0, st: int = 0, ph: int = 0) -> None:
        """``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` SET, the v7-v11 struct (``tph-v11``)."""
        data = struct.pack("<iIHBB", dmabuf_fd, flags, xst, st, ph)
        self.feature(_SET | self.tph_feature, data)

    def set_tph_v2(self, dmabuf_fd: int, tag: int, ph: int) -> None:
        """``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` SET, the v2 struct (``tph-v2``)."""
        self.feature(_SET | self.tph_feature, struct.pack("<iHBB", dmabuf_fd, tag, ph, 0))

    def reset(self) -> None:
        """``VFIO_DEVICE_RESET``: the dma-bufs are revoked, then un-revoked."""
        fcntl.ioctl(self.fd, VFIO_DEVICE_RESET, 0)

    def memory(self, on: bool) -> None:
        """Set or clear ``PCI_COMMAND_MEMORY`` through the config region (revokes / un-revokes)."""
        cmd = struct.unpack("<H", os.pread(self.fd, 2, _CONFIG_REGION + 4))[0]
        cmd = cmd | 2 if on else cmd & ~2
        os.pwrite(self.fd, struct.pack("<H", cmd), _CONFIG_REGION + 4)


class UverbsImporter:
    """An RDMA device's dma-buf MRs as an :class:`~mockkernel.testing.conformance.ImporterHarness`.

    Imports with ``REG_DMABUF_MR`` through ``/dev/infiniband/uverbsN`` (``data_direct``:
    mlx5's pinned mode), DMAs with :func:`remote_write`.
    """

    def __init__(self, ibdev: str = "mlx5_0", data_direct: bool = False) -> None:
        mode = "data-direct (pinned)" if data_direct else "dynamic"
        self.name = f"{ibdev} {mode} dma-buf MR"
        self.ibdev = ibdev
        self.data_direct = data_direct
        self.revocable = not data_direct
        self.verbs: Verbs | None = None
        self.pd = 0
        self.kernel: Kernel | None = None

    def setup(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.verbs = Verbs(self.ibdev)
        self.pd = self.verbs.alloc_pd()

    def import_fd(self, fd: int, length: int) -> Mr:
        assert self.verbs is not None
        return self.verbs.reg_dmabuf_mr(
            self.pd, fd, length, access=0x7, data_direct=self.data_direct
        )

    def dma_write(self, handle: Mr, offset: int, data: bytes) -> DmaResult:
        assert self.kernel is not None
        res = remote_write(self.kernel, self.ibdev, handle.rkey, offset, data)
        return DmaResult(res.ok, res.tlps)

    def release(self, handle: Mr) -> None:
        assert self.verbs is not None
        self.verbs.dereg_mr(handle)

    def teardown(self) -> None:
        if self.verbs is not None:
            self.verbs.close()
            self.verbs = None
