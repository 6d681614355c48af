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

import pyverbs.device as d
from pyverbs.mr import DmaBufMR
from pyverbs.pd import PD
from pyverbs.pyverbs_error import PyverbsRDMAError
from vfio_user import DMA_BUF, GET, VFIO_DEVICE_RESET, feature, set_tph, vfio_device

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
