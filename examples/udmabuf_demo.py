"""Share a memfd as a dma-buf through /dev/udmabuf: runs unchanged on real Linux.

    python3 examples/udmabuf_demo.py                  # real Linux with /dev/udmabuf
    mockkernel run examples/udmabuf_demo.py           # the same program, mock kernel

Only the standard library: os, fcntl, mmap, struct.
"""

import fcntl
import mmap
import os
import struct

F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002
UDMABUF_CREATE = 0x40187542  # _IOW('u', 0x42, struct udmabuf_create)
UDMABUF_FLAGS_CLOEXEC = 0x01
DMA_BUF_SET_NAME_B = 0x40086201
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_END = 1, 2, 4
SIZE = 4 * mmap.PAGESIZE


def main() -> None:
    memfd = os.memfd_create("demo", os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, SIZE)
    fcntl.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)
    os.pwrite(memfd, b"hello from the memfd", 0)

    dev = os.open("/dev/udmabuf", os.O_RDWR)
    # struct udmabuf_create { u32 memfd; u32 flags; u64 offset; u64 size; }
    create = bytearray(struct.pack("=IIQQ", memfd, UDMABUF_FLAGS_CLOEXEC, 0, SIZE))
    dmabuf = fcntl.ioctl(dev, UDMABUF_CREATE, create)
    print(f"udmabuf: dma-buf fd {dmabuf}, size {os.fstat(dmabuf).st_size}")

    fcntl.ioctl(dmabuf, DMA_BUF_SET_NAME_B, b"demo-buffer\0")
    with open(f"/proc/self/fdinfo/{dmabuf}") as f:
        info = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    print(f"fdinfo: exp_name={info['exp_name']} name={info.get('name')} size={info['size']}")

    m = mmap.mmap(dmabuf, SIZE)
    fcntl.ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, struct.pack("=Q", DMA_BUF_SYNC_READ))
    print(f"mmap of the dma-buf reads: {m[:20]!r}")
    m[0:5] = b"HELLO"
    end_write = struct.pack("=Q", DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END)
    fcntl.ioctl(dmabuf, DMA_BUF_IOCTL_SYNC, end_write)
    print(f"after writing through the dma-buf, the memfd reads: {os.pread(memfd, 20, 0)!r}")

    m.close()
    os.close(dmabuf)
    os.close(dev)
    os.close(memfd)
    print("done")


if __name__ == "__main__":
    main()
