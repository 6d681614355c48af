"""Under the supervisor: /proc/self/maps shows a dma-buf mapping as real Linux does."""

import fcntl
import mmap
import os
import struct

memfd = os.memfd_create("py", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 8192)
fcntl.fcntl(memfd, 1033, 2)
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 8192)))
m = mmap.mmap(buf, 8192)
with open("/proc/self/maps") as f:
    print(
        [
            ln.split(None, 5)[1:]
            for ln in f.read().splitlines()
            if "dmabuf" in ln or "mockkernel" in ln
        ]
    )
m.close()
