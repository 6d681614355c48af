"""A pyverbs program (run supervised by test_rdma_libibverbs_mr.py): a VFIO BAR dma-buf with
TPH as a ``DmaBufMR`` on ``mlx5_0``, a remote write into it, and a device reset.

1. vfio-pci function: cdev + iommufd; ``VFIO_DEVICE_FEATURE_DMA_BUF`` of BAR0
   ``[0x1000, +0x4000)``; ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (13) sets st 0x12,
   xst 0x0112, ph 1 (prints ``tph ok`` or ``tph ERRNO``);
2. pyverbs: ``Context(name="mlx5_0")``, ``PD``, ``DmaBufMR`` of the dma-buf fd;
   the test gets ``mr RKEY`` and writes into the MR;
3. the program reads the bytes back through its own mmap of BAR0 (``bar HEX``), sets a
   new tag (xst 0x0BEE, st 0xEE, ph 3) and resets the device (``VFIO_DEVICE_RESET``:
   the MR's mapping is invalidated); the test writes again (``reset``): the MR re-maps and
   asks the exporter for the tag again; the program reads that back too.

Standard library and pyverbs only; the handshake with the test is two FIFOs
(``$TO_TEST``, ``$FROM_TEST``).
"""

import errno
import fcntl
import mmap
import os
import struct
import sys

import pyverbs.device as d
from pyverbs.mr import DmaBufMR
from pyverbs.pd import PD
from pyverbs.pyverbs_error import PyverbsRDMAError

VFIO = ord(";") << 8
VFIO_DEVICE_RESET = VFIO | 111
VFIO_DEVICE_FEATURE = VFIO | 117
VFIO_DEVICE_BIND_IOMMUFD = VFIO | 118
VFIO_DEVICE_ATTACH_IOMMUFD_PT = VFIO | 119
IOMMU_IOAS_ALLOC = VFIO | 0x81
GET, SET = 1 << 16, 1 << 17
DMA_BUF, DMA_BUF_TPH = 11, 13
BAR_OFFSET, LENGTH = 0x1000, 0x4000


class Test:
    """The other end: ``say(line)`` hands a line over and waits for the test's word."""

    def __init__(self) -> None:
        self.reply = os.open(os.environ["FROM_TEST"], os.O_RDWR)
        self.out = open(os.environ["TO_TEST"], "w")  # noqa: SIM115

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
        os.read(self.reply, 3)


def vfio_device() -> int:
    base = "/sys/bus/pci/devices"
    for bdf in sorted(os.listdir(base)):
        try:
            if os.path.basename(os.readlink(f"{base}/{bdf}/driver")) != "vfio-pci":
                continue
            name = sorted(os.listdir(f"{base}/{bdf}/vfio-dev"))[0]
        except OSError:
            continue
        iommufd = os.open("/dev/iommu", os.O_RDWR)
        dev = os.open(f"/dev/vfio/devices/{name}", os.O_RDWR)
        bind = bytearray(struct.pack("=IIiI", 16, 0, iommufd, 0))
        fcntl.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bind)
        ioas = bytearray(struct.pack("=III", 12, 0, 0))
        fcntl.ioctl(iommufd, IOMMU_IOAS_ALLOC, ioas)
        pt = struct.unpack_from("=I", ioas, 8)[0]
        fcntl.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, bytearray(struct.pack("=III", 12, 0, pt)))
        return dev
    sys.exit("no vfio-pci function")


def feature(dev: int, flags: int, data: bytes) -> int:
    buf = bytearray(struct.pack("=II", 8 + len(data), flags) + data)
    return fcntl.ioctl(dev, VFIO_DEVICE_FEATURE, buf)  # type: ignore[no-any-return]


def set_tph(dev: int, dmabuf: int, xst: int, st: int, ph: int) -> str:
    try:
        feature(dev, SET | DMA_BUF_TPH, struct.pack("=iIHBB", dmabuf, 3, xst, st, ph))
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return "ok"


def main() -> None:
    test = Test()
    dev = vfio_device()
    dmabuf = feature(
        dev, GET | DMA_BUF, struct.pack("=IIIIQQ", 0, os.O_RDWR, 0, 1, BAR_OFFSET, LENGTH)
    )
    print("tph", set_tph(dev, dmabuf, 0x0112, 0x12, 1), flush=True)
    ctx = d.Context(name="mlx5_0")
    pd = PD(ctx)
    try:
        mr = DmaBufMR(pd, LENGTH, 1 | 2, dmabuf=dmabuf, offset=0)  # LOCAL | REMOTE_WRITE
    except PyverbsRDMAError as e:
        print("reg", errno.errorcode[e.error_code], flush=True)
        return
    bar = mmap.mmap(dev, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
    test.say(f"mr {mr.rkey}")
    print("bar", bar[BAR_OFFSET + 0x100 : BAR_OFFSET + 0x110].hex(), flush=True)
    print("tph2", set_tph(dev, dmabuf, 0x0BEE, 0xEE, 3), flush=True)
    fcntl.ioctl(dev, VFIO_DEVICE_RESET, 0)
    test.say("reset")
    print("bar2", bar[BAR_OFFSET + 0x200 : BAR_OFFSET + 0x20B].hex(), flush=True)
    bar.close()
    mr.close()
    pd.close()
    ctx.close()


if __name__ == "__main__":
    main()
