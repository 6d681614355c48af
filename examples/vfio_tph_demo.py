"""Export a slice of a VFIO device's BAR as a dma-buf and attach TPH steering hints to it.

A plain Linux program (standard library only) for the VFIO cdev path:

1. find a PCI function bound to vfio-pci in sysfs and its ``vfio-dev/vfioN`` name;
2. open ``/dev/iommu`` and ``/dev/vfio/devices/vfioN``; ``VFIO_DEVICE_BIND_IOMMUFD``;
3. ``IOMMU_IOAS_ALLOC`` and ``VFIO_DEVICE_ATTACH_IOMMUFD_PT``;
4. ``VFIO_DEVICE_FEATURE_DMA_BUF`` (11) on the first BAR that can export: a dma-buf fd;
5. ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (13, the TPH series v7-v11 uAPI, not merged
   upstream) to give importers a steering tag and processing hint for the buffer.

Run it as root on a kernel with iommufd and the vfio cdev, or against mockkernel::

    mockkernel run examples/vfio_tph_demo.py            # default uAPI profile tph-v11
    mockkernel run --uapi linux-7.2 examples/vfio_tph_demo.py

A kernel without the TPH feature answers ENOTTY, which the demo reports and survives.
"""

import ctypes
import errno
import fcntl
import os
import sys

# -- linux/vfio.h and linux/iommufd.h (_IO(';', nr): the size travels in argsz) ------------
VFIO_TYPE = ord(";")


def _IO(nr):
    return (VFIO_TYPE << 8) | nr


VFIO_DEVICE_GET_INFO = _IO(100 + 7)
VFIO_DEVICE_GET_REGION_INFO = _IO(100 + 8)
VFIO_DEVICE_FEATURE = _IO(100 + 17)
VFIO_DEVICE_BIND_IOMMUFD = _IO(100 + 18)
VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(100 + 19)
IOMMU_IOAS_ALLOC = _IO(0x81)

VFIO_DEVICE_FEATURE_GET = 1 << 16
VFIO_DEVICE_FEATURE_SET = 1 << 17
VFIO_DEVICE_FEATURE_PROBE = 1 << 18
VFIO_DEVICE_FEATURE_DMA_BUF = 11
VFIO_DEVICE_FEATURE_DMA_BUF_TPH = 13  # proposed (TPH series v7-v11)
VFIO_DMA_BUF_TPH_ST = 1 << 0
VFIO_DMA_BUF_TPH_ST_EXT = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2
VFIO_PCI_NUM_BARS = 6
PAGE = 4096


class vfio_device_bind_iommufd(ctypes.Structure):
    _fields_ = [
        ("argsz", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("iommufd", ctypes.c_int32),
        ("out_devid", ctypes.c_uint32),
    ]


class vfio_device_attach_iommufd_pt(ctypes.Structure):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("pt_id", ctypes.c_uint32)]


class iommu_ioas_alloc(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("out_ioas_id", ctypes.c_uint32),
    ]


class vfio_device_info(ctypes.Structure):
    _fields_ = [
        ("argsz", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("num_regions", ctypes.c_uint32),
        ("num_irqs", ctypes.c_uint32),
    ]


class vfio_region_info(ctypes.Structure):
    _fields_ = [
        ("argsz", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("index", ctypes.c_uint32),
        ("cap_offset", ctypes.c_uint32),
        ("size", ctypes.c_uint64),
        ("offset", ctypes.c_uint64),
    ]


class vfio_region_dma_range(ctypes.Structure):
    _fields_ = [("offset", ctypes.c_uint64), ("length", ctypes.c_uint64)]


class dma_buf_request(ctypes.Structure):
    """struct vfio_device_feature + struct vfio_device_feature_dma_buf + one range."""

    _fields_ = [
        ("argsz", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("region_index", ctypes.c_uint32),
        ("open_flags", ctypes.c_uint32),
        ("dma_buf_flags", ctypes.c_uint32),
        ("nr_ranges", ctypes.c_uint32),
        ("range", vfio_region_dma_range),
    ]


class dma_buf_tph_request(ctypes.Structure):
    """struct vfio_device_feature + the proposed struct vfio_device_feature_dma_buf_tph."""

    _fields_ = [
        ("argsz", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("dmabuf_fd", ctypes.c_int32),
        ("tph_flags", ctypes.c_uint32),
        ("steering_tag_ext", ctypes.c_uint16),
        ("steering_tag", ctypes.c_uint8),
        ("ph", ctypes.c_uint8),
    ]


def ioctl(fd, request, struct_obj):
    """An ioctl on a ctypes struct, updated in place; returns the ioctl's result."""
    return fcntl.ioctl(fd, request, struct_obj, True)


def find_vfio_device():
    """(bdf, vfioN) of the first PCI function bound to vfio-pci that has a cdev."""
    base = "/sys/bus/pci/devices"
    for bdf in sorted(os.listdir(base)):
        try:
            driver = os.path.basename(os.readlink(f"{base}/{bdf}/driver"))
        except OSError:
            continue
        if driver != "vfio-pci":
            continue
        try:
            names = os.listdir(f"{base}/{bdf}/vfio-dev")
        except OSError:
            continue
        if names:
            return bdf, sorted(names)[0]
    return None, None


def main():
    bdf, vfio_name = find_vfio_device()
    if bdf is None:
        print("no PCI function bound to vfio-pci with a vfio-dev cdev")
        return 1
    group = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{bdf}/iommu_group"))
    print(f"device {bdf}: {vfio_name}, IOMMU group {group}")

    cdev = f"/dev/vfio/devices/{vfio_name}"
    if not os.path.exists("/dev/iommu") or not os.path.exists(cdev):
        print(
            "this kernel has no /dev/iommu or no vfio cdev: the cdev path needs "
            "CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV"
        )
        return 1
    iommufd = os.open("/dev/iommu", os.O_RDWR | os.O_CLOEXEC)
    device = os.open(cdev, os.O_RDWR | os.O_CLOEXEC)
    dmabuf = -1
    try:
        bind = vfio_device_bind_iommufd(ctypes.sizeof(vfio_device_bind_iommufd), 0, iommufd)
        ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, bind)
        print(f"bound to iommufd: devid {bind.out_devid}")

        alloc = iommu_ioas_alloc(ctypes.sizeof(iommu_ioas_alloc), 0)
        ioctl(iommufd, IOMMU_IOAS_ALLOC, alloc)
        attach = vfio_device_attach_iommufd_pt(
            ctypes.sizeof(vfio_device_attach_iommufd_pt), 0, alloc.out_ioas_id
        )
        ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach)
        print(f"attached to IOAS {attach.pt_id}")

        info = vfio_device_info(ctypes.sizeof(vfio_device_info))
        ioctl(device, VFIO_DEVICE_GET_INFO, info)
        print(
            f"device info: flags {info.flags:#x}, {info.num_regions} regions, {info.num_irqs} irqs"
        )

        # export the second page of the first BAR that can be exported (p2p-capable)
        for index in range(VFIO_PCI_NUM_BARS):
            region = vfio_region_info(ctypes.sizeof(vfio_region_info), 0, index)
            ioctl(device, VFIO_DEVICE_GET_REGION_INFO, region)
            if not region.flags & VFIO_REGION_INFO_FLAG_MMAP or region.size < 2 * PAGE:
                continue
            req = dma_buf_request(
                ctypes.sizeof(dma_buf_request),
                VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF,
                index,
                os.O_RDWR | os.O_CLOEXEC,
                0,
                1,
                vfio_region_dma_range(PAGE, PAGE),
            )
            try:
                dmabuf = ioctl(device, VFIO_DEVICE_FEATURE, req)
            except OSError as e:
                print(
                    f"BAR{index} ({region.size:#x} bytes): no dma-buf ({errno.errorcode[e.errno]})"
                )
                continue
            size = os.lseek(dmabuf, 0, os.SEEK_END)
            print(
                f"BAR{index} ({region.size:#x} bytes): dma-buf fd {dmabuf} of {size} bytes "
                f"at BAR offset {PAGE:#x}"
            )
            break
        if dmabuf < 0:
            print("no BAR could be exported as a dma-buf")
            return 1

        tph = dma_buf_tph_request(
            ctypes.sizeof(dma_buf_tph_request),
            VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH,
            dmabuf,
            VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT,
            0x0112,  # extended (16-bit) steering tag
            0x12,  # 8-bit steering tag
            1,  # processing hint: requester
        )
        try:
            ioctl(device, VFIO_DEVICE_FEATURE, tph)
        except OSError as e:
            print(
                f"TPH not set: {errno.errorcode[e.errno]} "
                "(this kernel has no VFIO_DEVICE_FEATURE_DMA_BUF_TPH)"
            )
        else:
            print(
                f"TPH set on dma-buf fd {dmabuf}: st {tph.steering_tag:#x}, "
                f"st_ext {tph.steering_tag_ext:#x}, ph {tph.ph}"
            )
        print("the dma-buf can now be passed to an importer (e.g. an RDMA NIC)")
        return 0
    finally:
        if dmabuf >= 0:
            os.close(dmabuf)
        os.close(device)
        os.close(iommufd)


if __name__ == "__main__":
    sys.exit(main())
