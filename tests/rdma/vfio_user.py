"""The VFIO side of the pyverbs programs in this directory, as a userspace program does
it with the raw uAPI (standard library only): the first vfio-pci function's cdev bound
to an iommufd and attached to its IOAS, device features, the TPH of a dma-buf.  Imported
by ``pyverbs_vfio_tph.py`` and ``pyverbs_rxe_to_vfio_bar.py`` (run beside it)."""

import errno
import fcntl
import os
import struct
import sys

VFIO = ord(";") << 8
VFIO_DEVICE_RESET = VFIO | 111
VFIO_DEVICE_FEATURE = VFIO | 117
VFIO_DEVICE_BIND_IOMMUFD = VFIO | 118
VFIO_DEVICE_ATTACH_IOMMUFD_PT = VFIO | 119
IOMMU_IOAS_ALLOC = VFIO | 0x81
GET, SET = 1 << 16, 1 << 17
DMA_BUF, DMA_BUF_TPH = 11, 13


def vfio_device() -> int:
    """The first vfio-pci function's device fd, bound to a new iommufd's IOAS."""
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
    """``VFIO_DEVICE_FEATURE`` with ``flags`` (GET/SET | feature) and its data."""
    buf = bytearray(struct.pack("=II", 8 + len(data), flags) + data)
    return fcntl.ioctl(dev, VFIO_DEVICE_FEATURE, buf)  # type: ignore[no-any-return]


def set_tph(dev: int, dmabuf: int, xst: int, st: int, ph: int) -> str:
    """``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` on ``dmabuf``: "ok" or the errno's name."""
    try:
        feature(dev, SET | DMA_BUF_TPH, struct.pack("=iIHBB", dmabuf, 3, xst, st, ph))
    except OSError as err:
        return errno.errorcode[err.errno or 0]
    return "ok"
