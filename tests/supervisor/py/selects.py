"""Under the supervisor: select, pselect (via select.select) and poll of a dma-buf fd
report the dma-buf's own ->poll, whatever the test made it say."""

import fcntl
import os
import select
import struct

memfd = os.memfd_create("py", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 4096)
fcntl.fcntl(memfd, 1033, 2)  # F_ADD_SEALS, F_SEAL_SHRINK
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096)))
r, w = os.pipe()
os.write(w, b"x")
rl, wl, xl = select.select([buf, r], [buf, w], [buf], 0)
print("select", [fd == buf for fd in rl], [fd == buf for fd in wl], xl)
p = select.poll()
p.register(buf, select.POLLIN | select.POLLOUT)
print("poll", p.poll(0) and p.poll(0)[0][1])
for fd in (buf, dev, memfd, r, w):
    os.close(fd)
