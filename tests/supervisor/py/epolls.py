"""Under the supervisor: select.epoll of a dma-buf fd reports the dma-buf's own ->poll,
whatever the test made it say, with the data registered."""

import fcntl
import os
import select
import struct

memfd = os.memfd_create("py", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 4096)
fcntl.fcntl(memfd, 1033, 2)  # F_ADD_SEALS, F_SEAL_SHRINK
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096)))
ep = select.epoll()
ep.register(buf, select.EPOLLIN | select.EPOLLOUT)
print("epoll", ep.poll(0.1))
ep.unregister(buf)
print("after unregister", ep.poll(0))
ep.close()
for fd in (buf, dev, memfd):
    os.close(fd)
