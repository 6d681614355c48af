"""Register a VFIO device's BAR as an RDMA memory region, with a PCIe steering tag.

A plain Linux program (standard library only, raw ioctls, the bytes rdma-core sends):

1. find a PCI function bound to vfio-pci and open it through its cdev + iommufd;
2. ``VFIO_DEVICE_FEATURE_DMA_BUF`` (11): a dma-buf of 16 KiB of its BAR0;
3. ``VFIO_DEVICE_FEATURE_DMA_BUF_TPH`` (13, the TPH series' uAPI, not merged upstream):
   a steering tag and processing hint for whoever DMAs into the buffer;
4. find an RDMA device in ``/sys/class/infiniband_verbs`` and open its uverbs node;
5. ``UVERBS_METHOD_GET_CONTEXT``, ``IB_USER_VERBS_CMD_ALLOC_PD`` (a ``write()``) and
   ``UVERBS_METHOD_REG_DMABUF_MR`` (an ``RDMA_VERBS_IOCTL``): the MR, whose rkey a peer
   would use to RDMA WRITE straight into the device's BAR -- with the steering tag on
   the PCIe TLPs;
6. ``UVERBS_METHOD_QUERY_MR``, then everything is released.

Run it as root on a machine with such devices, or against mockkernel::

    mockkernel run examples/rdma_dmabuf_mr.py
    mockkernel run --uapi linux-7.2 examples/rdma_dmabuf_mr.py   # no TPH feature: ENOTTY

``register()`` does steps 1-5 and returns what it opened, for a caller that wants to
drive the MR (``tests/rdma/test_rdma_e2e.py`` plays the remote peer with it).
"""

import ctypes
import errno
import fcntl
import os
import struct
import sys

# -- linux/vfio.h, linux/iommufd.h -----------------------------------------------------------
VFIO_DEVICE_FEATURE = (ord(";") << 8) | 117
VFIO_DEVICE_BIND_IOMMUFD = (ord(";") << 8) | 118
VFIO_DEVICE_ATTACH_IOMMUFD_PT = (ord(";") << 8) | 119
IOMMU_IOAS_ALLOC = (ord(";") << 8) | 0x81
VFIO_DEVICE_FEATURE_GET = 1 << 16
VFIO_DEVICE_FEATURE_SET = 1 << 17
VFIO_DEVICE_FEATURE_DMA_BUF = 11
VFIO_DEVICE_FEATURE_DMA_BUF_TPH = 13  # proposed (TPH series v7-v11)
VFIO_DMA_BUF_TPH_ST = 1 << 0
VFIO_DMA_BUF_TPH_ST_EXT = 1 << 1

# -- rdma/rdma_user_ioctl_cmds.h, ib_user_ioctl_cmds.h, ib_user_verbs.h ---------------------------
RDMA_VERBS_IOCTL = (3 << 30) | (24 << 16) | (0x1B << 8) | 1  # _IOWR(0x1b, 1, 24 bytes)
UVERBS_OBJECT_DEVICE, UVERBS_OBJECT_MR = 0, 7
UVERBS_METHOD_GET_CONTEXT = 3
UVERBS_ATTR_UHW_IN, UVERBS_ATTR_UHW_OUT = 0x1000, 0x1001  # UVERBS_ID_DRIVER_NS | 0, 1
MLX5_UCONTEXT_RESP_SIZE = 72  # sizeof(struct mlx5_ib_alloc_ucontext_resp)
UVERBS_METHOD_QUERY_MR, UVERBS_METHOD_REG_DMABUF_MR = 3, 4
IB_USER_VERBS_CMD_ALLOC_PD = 3
IB_ACCESS_LOCAL_WRITE, IB_ACCESS_REMOTE_WRITE, IB_ACCESS_REMOTE_READ = 1, 2, 4
DRIVER_IDS = (("mlx5_", 1), ("rxe", 14), ("siw", 18))  # enum rdma_driver_id

BAR_OFFSET = 0x1000
LENGTH = 0x4000
STEERING_TAG_EXT, STEERING_TAG, PH = 0x0112, 0x12, 1  # PH 1: requester


def find_vfio_device():
    base = "/sys/bus/pci/devices"
    for bdf in sorted(os.listdir(base)):
        try:
            driver = os.path.basename(os.readlink(f"{base}/{bdf}/driver"))
            names = os.listdir(f"{base}/{bdf}/vfio-dev")
        except OSError:
            continue
        if driver == "vfio-pci" and names:
            return bdf, sorted(names)[0]
    return None, None


def find_rdma_device():
    base = "/sys/class/infiniband_verbs"
    for name in sorted(os.listdir(base)):
        if not name.startswith("uverbs"):
            continue
        with open(f"{base}/{name}/ibdev") as f:
            ibdev = f.read().strip()
        for prefix, driver_id in DRIVER_IDS:
            if ibdev.startswith(prefix):
                return name, ibdev, driver_id
    return None, None, None


def open_vfio(cdev):
    iommufd = os.open("/dev/iommu", os.O_RDWR | os.O_CLOEXEC)
    device = os.open(cdev, os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(
        device, VFIO_DEVICE_BIND_IOMMUFD, bytearray(struct.pack("=IIiI", 16, 0, iommufd, 0))
    )
    ioas = bytearray(struct.pack("=III", 12, 0, 0))
    fcntl.ioctl(iommufd, IOMMU_IOAS_ALLOC, ioas)
    pt_id = struct.unpack_from("=I", ioas, 8)[0]
    fcntl.ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, bytearray(struct.pack("=III", 12, 0, pt_id)))
    return iommufd, device


def feature(device, flags, data):
    return fcntl.ioctl(
        device, VFIO_DEVICE_FEATURE, bytearray(struct.pack("=II", 8 + len(data), flags) + data)
    )


def verbs(fd, driver_id, obj, method, attrs):
    """RDMA_VERBS_IOCTL: ib_uverbs_ioctl_hdr + ib_uverbs_attr[]; the attributes as left."""
    buf = bytearray(
        struct.pack("=HHHHQII", 24 + 16 * len(attrs), obj, method, len(attrs), 0, driver_id, 0)
    )
    for attr_id, length, data in attrs:
        buf += struct.pack("=HHHHQ", attr_id, length, 0, 0, data)
    fcntl.ioctl(fd, RDMA_VERBS_IOCTL, buf)
    return [struct.unpack_from("=HHHHQ", buf, 24 + 16 * i) for i in range(len(attrs))]


class Registration:
    """What register() opened (close() releases it all, in reverse)."""

    def __init__(self):
        self.fds = []
        self.bdf = self.ibdev = None
        self.driver_id = 0
        self.device = self.dmabuf = self.uverbs = -1
        self.tph = False
        self.mr_handle = self.lkey = self.rkey = 0

    def close(self):
        for fd in reversed(self.fds):
            os.close(fd)
        self.fds.clear()


def register():
    reg = Registration()
    try:
        bdf, vfio_name = find_vfio_device()
        uverbs_name, ibdev, driver_id = find_rdma_device()
        if bdf is None or uverbs_name is None:
            raise OSError(errno.ENODEV, "no vfio-pci function or no RDMA device")
        reg.bdf, reg.ibdev, reg.driver_id = bdf, ibdev, driver_id
        iommufd, reg.device = open_vfio(f"/dev/vfio/devices/{vfio_name}")
        reg.fds += [iommufd, reg.device]

        # 2. the dma-buf: region 0 (BAR0), one range
        data = struct.pack("=IIII", 0, os.O_RDWR | os.O_CLOEXEC, 0, 1)
        data += struct.pack("=QQ", BAR_OFFSET, LENGTH)
        reg.dmabuf = feature(
            reg.device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF, data
        )
        reg.fds.append(reg.dmabuf)

        # 3. TPH for importers: both namespaces (8-bit ST and 16-bit extended ST)
        tph = struct.pack(
            "=iIHBB",
            reg.dmabuf,
            VFIO_DMA_BUF_TPH_ST | VFIO_DMA_BUF_TPH_ST_EXT,
            STEERING_TAG_EXT,
            STEERING_TAG,
            PH,
        )
        try:
            feature(reg.device, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_BUF_TPH, tph)
            reg.tph = True
        except OSError as e:
            if e.errno not in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
                raise

        # 4.-5. the RDMA side, as libibverbs does it
        reg.uverbs = os.open(f"/dev/infiniband/{uverbs_name}", os.O_RDWR | os.O_CLOEXEC)
        reg.fds.append(reg.uverbs)
        # mlx5 wants its driver data (mlx5_ib_alloc_ucontext_req_v2: 16 bfregs, 4 of them
        # low latency, CQE version 1, 4K and dynamic UARs), and answers its own response
        uhw = []
        if driver_id == 1:
            req = struct.pack("=IIIIBBHIQ", 16, 4, 0, 0, 1, 0, 0, 0, 3)
            uhw_in = ctypes.create_string_buffer(req, len(req))
            uhw_out = ctypes.create_string_buffer(MLX5_UCONTEXT_RESP_SIZE)
            uhw = [
                (UVERBS_ATTR_UHW_IN, len(req), ctypes.addressof(uhw_in)),
                (UVERBS_ATTR_UHW_OUT, MLX5_UCONTEXT_RESP_SIZE, ctypes.addressof(uhw_out)),
            ]
        verbs(reg.uverbs, driver_id, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_GET_CONTEXT, uhw)
        pd_resp = ctypes.create_string_buffer(4)
        cmd = struct.pack("=IHHQ", IB_USER_VERBS_CMD_ALLOC_PD, 4, 1, ctypes.addressof(pd_resp))
        os.write(reg.uverbs, cmd)
        pd = struct.unpack("=I", pd_resp.raw)[0]
        lkey, rkey = ctypes.create_string_buffer(4), ctypes.create_string_buffer(4)
        access = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_READ
        after = verbs(
            reg.uverbs,
            driver_id,
            UVERBS_OBJECT_MR,
            UVERBS_METHOD_REG_DMABUF_MR,
            [
                (0, 0, 0),  # HANDLE (new): the kernel writes the handle here
                (1, 0, pd),  # PD_HANDLE
                (2, 8, 0),  # OFFSET into the dma-buf
                (3, 8, LENGTH),  # LENGTH
                (4, 8, 0),  # IOVA
                (5, 4, reg.dmabuf),  # FD: a 4-byte inline u32
                (6, 4, access),  # ACCESS_FLAGS
                (7, 4, ctypes.addressof(lkey)),  # RESP_LKEY
                (8, 4, ctypes.addressof(rkey)),  # RESP_RKEY
            ],
        )
        reg.mr_handle = after[0][4]
        reg.lkey = struct.unpack("=I", lkey.raw)[0]
        reg.rkey = struct.unpack("=I", rkey.raw)[0]
        return reg
    except BaseException:
        reg.close()
        raise


def query_mr(reg):
    out = [ctypes.create_string_buffer(n) for n in (4, 4, 8, 8)]
    verbs(
        reg.uverbs,
        reg.driver_id,
        UVERBS_OBJECT_MR,
        UVERBS_METHOD_QUERY_MR,
        [(0, 0, reg.mr_handle)] + [(i + 1, len(b), ctypes.addressof(b)) for i, b in enumerate(out)],
    )
    return [int.from_bytes(b.raw, "little") for b in out]


def main():
    try:
        reg = register()
    except OSError as e:
        print(f"could not register the MR: {errno.errorcode.get(e.errno, e.errno)} ({e.strerror})")
        return 1
    try:
        print(f"vfio device {reg.bdf}: dma-buf of BAR0 [{BAR_OFFSET:#x}, +{LENGTH:#x})")
        if reg.tph:
            print(f"TPH set: st {STEERING_TAG:#x}, st_ext {STEERING_TAG_EXT:#06x}, ph {PH}")
        else:
            print("TPH not set: this kernel has no VFIO_DEVICE_FEATURE_DMA_BUF_TPH")
        print(f"RDMA device {reg.ibdev}: MR handle {reg.mr_handle}", end="")
        print(f", lkey {reg.lkey:#x}, rkey {reg.rkey:#x}")
        lkey, rkey, length, iova = query_mr(reg)
        same = (lkey, rkey) == (reg.lkey, reg.rkey)
        print(f"QUERY_MR: length {length:#x}, iova {iova:#x}, keys match: {same}")
        print("a peer can now RDMA WRITE into the device's BAR with this rkey")
    finally:
        reg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
