"""Under the supervisor: socket.send_fds/recv_fds of a dma-buf fd give the same mock file
(its fdinfo), a real fd passed alongside stays real, and a message never received does
not leak the file."""

import fcntl
import os
import socket
import struct

memfd = os.memfd_create("py", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 8192)
fcntl.fcntl(memfd, 1033, 2)  # F_ADD_SEALS, F_SEAL_SHRINK
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 8192)))
a, b = socket.socketpair()
socket.send_fds(a, [b"m"], [buf, memfd])
msg, fds, _flags, _addr = socket.recv_fds(b, 16, 4)
got, real = fds
print(msg, os.readlink(f"/proc/self/fd/{got}"), os.fstat(got).st_size)
with open(f"/proc/self/fdinfo/{got}") as f:
    print([line for line in f.read().splitlines() if line.startswith("count")])
print(os.readlink(f"/proc/self/fd/{real}").startswith("/memfd:py"))
socket.send_fds(a, [b"never received"], [buf])  # still queued when the process exits
for fd in (got, real, buf, dev, memfd):
    os.close(fd)
print("done")
