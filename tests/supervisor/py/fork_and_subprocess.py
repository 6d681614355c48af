"""Run under ``mockkernel run -- python3 THIS``: os.fork and subprocess share one kernel.

Standard library only (no mockkernel): the interpreter is an ordinary supervised program.
"""

import fcntl
import os
import struct
import subprocess
import sys

UDMABUF_CREATE = 0x40187542
DMA_BUF_SET_NAME_B = 0x40086201


def fdinfo(fd: int, pid: str = "self") -> dict[str, str]:
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


memfd = os.memfd_create("py", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 4096)
fcntl.fcntl(memfd, 1033, 2)  # F_ADD_SEALS, F_SEAL_SHRINK
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, UDMABUF_CREATE, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096)))
os.set_inheritable(buf, True)
print("count:", fdinfo(buf)["count"].strip())
sys.stdout.flush()

pid = os.fork()
if pid == 0:
    fcntl.ioctl(buf, DMA_BUF_SET_NAME_B, b"set-by-fork-child\0")
    print("fork child count:", fdinfo(buf)["count"].strip())
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
print("parent sees name:", fdinfo(buf)["name"].strip())

code = f"""
import fcntl
lines = open("/proc/self/fdinfo/{buf}").read().splitlines()
print("subprocess sees name:", [v for v in lines if v.startswith("name:")][0].split()[1])
fcntl.ioctl({buf}, {DMA_BUF_SET_NAME_B}, b"set-by-subprocess\\0")
"""
subprocess.run([sys.executable, "-c", code], pass_fds=[buf], check=True)
print("parent sees name:", fdinfo(buf)["name"].strip())
print("after the subprocess, count:", fdinfo(buf)["count"].strip())
for fd in (buf, dev, memfd):
    os.close(fd)
print("done")
