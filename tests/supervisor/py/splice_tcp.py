"""splice(2), tee(2) and vmsplice(2) between pipes, TCP sockets and device files.

Recorded on real Linux 7.2 with the loopback address (golden:
tests/real_linux/golden/splice_tcp.txt): ``run --sh 'ip link set lo up; python3
splice_tcp.py'``; the mockkernel tests run it on the mock NIC's address, supervised and
in-process.  The second half splices between a pipe and the files the mock models
(a udmabuf dma-buf, ``/dev/udmabuf``, a PCI device's sysfs ``config``, a
``/proc/self/fdinfo`` file, a vfio-pci device fd): each line is what Linux answers."""

import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from typing import Any

F_NONBLOCK = os.SPLICE_F_NONBLOCK
libc = ctypes.CDLL(None, use_errno=True)
NR_TEE, NR_VMSPLICE = 276, 278


def e(f: Any, *a: Any, **kw: Any) -> Any:
    try:
        return f(*a, **kw)
    except OSError as x:
        return errno.errorcode[x.errno or 0]


def raw(nr: int, *args: Any) -> Any:
    """A raw syscall: its result, or the errno's name."""
    ret = libc.syscall(nr, *args)
    return errno.errorcode[ctypes.get_errno()] if ret < 0 else ret


def tee(fd_in: int, fd_out: int, n: int, flags: int = 0) -> Any:
    return raw(NR_TEE, fd_in, fd_out, ctypes.c_size_t(n), ctypes.c_uint(flags))


def vmsplice(fd: int, data: bytes, flags: int = 0) -> Any:
    buf = ctypes.create_string_buffer(data, len(data))
    iov = (ctypes.c_uint64 * 2)(ctypes.addressof(buf), len(data))
    return raw(NR_VMSPLICE, fd, iov, ctypes.c_ulong(1), ctypes.c_uint(flags))


def drain(fd: int) -> bytes:
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, fl)


def tcp_pair(addr: str) -> tuple[socket.socket, socket.socket]:
    srv = socket.socket()
    srv.bind((addr, 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    srv.close()
    return c, conn


def tcp(addr: str) -> list[tuple[Any, ...]]:
    c, conn = tcp_pair(addr)
    cs = c.fileno()
    r, w = os.pipe()
    out: list[tuple[Any, ...]] = []
    os.write(w, b"hello")
    out.append(("pipe->sock", e(os.splice, r, cs, 5)))
    os.write(w, b"0123456789")
    out.append(("pipe->sock off_out", e(os.splice, r, cs, 5, offset_dst=0)))
    out.append(("pipe->sock off_in", e(os.splice, r, cs, 5, offset_src=0)))
    out.append(("pipe->sock len 0", e(os.splice, r, cs, 0)))
    out.append(("pipe->sock short", e(os.splice, r, cs, 5)))
    out.append(("pipe->sock the rest", e(os.splice, r, cs, 100)))
    out.append(("pipe->sock empty NONBLOCK", e(os.splice, r, cs, 5, flags=F_NONBLOCK)))
    os.set_blocking(r, False)
    out.append(("pipe->sock empty O_NONBLOCK pipe", e(os.splice, r, cs, 5)))
    os.set_blocking(r, True)
    out.append(("pipe->sock bad flags", e(os.splice, r, cs, 5, flags=0x10)))
    out.append(("pipe->sock len 0 bad flags", e(os.splice, r, cs, 0, flags=0x10)))
    out.append(("write end as in", e(os.splice, w, cs, 5)))
    out.append(("read end as out", e(os.splice, cs, r, 5)))
    out.append(("closed in fd", e(os.splice, 999, cs, 5)))
    out.append(("closed in fd len 0", e(os.splice, 999, cs, 0)))
    out.append(("peer received", conn.recv(100)))

    conn.sendall(b"abcdefgh")
    time.sleep(0.05)
    out.append(("sock->pipe", e(os.splice, cs, w, 4), os.read(r, 100)))
    out.append(("sock->pipe off_in", e(os.splice, cs, w, 4, offset_src=0)))
    out.append(("sock->pipe off_out", e(os.splice, cs, w, 4, offset_dst=0)))
    out.append(("sock->pipe rest NONBLOCK", e(os.splice, cs, w, 100, flags=F_NONBLOCK)))
    out.append(("  piped", os.read(r, 100)))
    c.setblocking(False)
    out.append(("sock->pipe empty O_NONBLOCK sock", e(os.splice, cs, w, 5)))
    c.setblocking(True)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("=qq", 0, 200000))
    t0 = time.monotonic()
    got = e(os.splice, cs, w, 5, flags=F_NONBLOCK)
    waited = "waited" if time.monotonic() - t0 > 0.15 else "at once"
    out.append(("sock->pipe empty NONBLOCK, SO_RCVTIMEO", got, waited))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("=qq", 0, 0))

    # a blocking splice sleeps until the peer sends (another thread runs meanwhile)
    ticks = []

    def later() -> None:
        for _ in range(3):
            ticks.append(1)
            time.sleep(0.05)
        conn.sendall(b"late")

    t = threading.Thread(target=later)
    t.start()
    got = e(os.splice, cs, w, 100)
    t.join()
    out.append(("sock->pipe blocking", got, os.read(r, 100), len(ticks)))

    def write_later() -> None:
        time.sleep(0.1)
        os.write(w, b"piped")

    t = threading.Thread(target=write_later)
    t.start()
    got = e(os.splice, r, cs, 100)
    t.join()
    out.append(("pipe->sock blocking", got, conn.recv(100)))
    r2, w2 = os.pipe()
    os.close(w2)
    out.append(("pipe->sock no writer", e(os.splice, r2, cs, 5)))
    os.close(r2)
    r2, w2 = os.pipe()
    os.close(r2)
    out.append(("sock->pipe no reader", e(os.splice, cs, w2, 5)))
    os.close(w2)

    # a signal whose handler raises ends the blocking splice
    class Alarm(Exception):
        pass

    def on_alarm(signum: int, frame: Any) -> None:
        raise Alarm()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        os.splice(cs, w, 100)
        res = "returned"
    except Alarm:
        res = "interrupted"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    out.append(("sock->pipe signal", res))

    # a full pipe: the socket's bytes stay queued
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: one page
    os.write(w, b"x" * 4096)
    conn.sendall(b"queued")
    time.sleep(0.05)
    out.append(("sock->pipe full pipe NONBLOCK", e(os.splice, cs, w, 10, flags=F_NONBLOCK)))
    os.read(r, 4096)
    out.append(("sock->pipe after drain", e(os.splice, cs, w, 10), os.read(r, 100)))

    fd, path = tempfile.mkstemp()
    os.write(fd, b"filedata")
    os.lseek(fd, 0, 0)
    out.append(("file->sock", e(os.splice, fd, cs, 4)))
    out.append(("sock->file", e(os.splice, cs, fd, 4)))
    c2, conn2 = tcp_pair(addr)
    out.append(("sock->sock", e(os.splice, cs, c2.fileno(), 4)))
    out.append(("tee sock->pipe", tee(cs, w, 4)))
    out.append(("tee pipe->sock", tee(r, cs, 4)))
    out.append(("tee len 0", tee(cs, w, 0)))
    out.append(("tee bad flags len 0", tee(cs, w, 0, 0x10)))
    out.append(("vmsplice sock", vmsplice(cs, b"abc")))
    out.append(("vmsplice sock empty", vmsplice(cs, b"")))
    c2.close()
    conn2.close()
    os.close(fd)
    os.unlink(path)

    # the peer goes: what is queued, then the end of the stream
    conn.sendall(b"bye")
    conn.close()
    time.sleep(0.05)
    out.append(("sock->pipe peer closed", e(os.splice, cs, w, 100), drain(r)))
    out.append(("sock->pipe after close", e(os.splice, cs, w, 100)))
    c.close()
    os.close(r)
    os.close(w)
    return out


# -- device files -------------------------------------------------------------------------
UDMABUF_CREATE = 0x40187542
F_ADD_SEALS, F_SEAL_SHRINK = 1033, 0x2
VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_GROUP_GET_DEVICE_FD = 0x3B68, 0x3B66, 0x3B6A


def vfio_device() -> tuple[str, int] | None:
    base = "/sys/bus/pci/devices"
    for bdf in sorted(os.listdir(base)):
        try:
            drv = os.path.basename(os.readlink(f"{base}/{bdf}/driver"))
            group = int(os.path.basename(os.readlink(f"{base}/{bdf}/iommu_group")))
        except OSError:
            continue
        if drv == "vfio-pci":
            return bdf, group
    return None


def kinds() -> list[tuple[str, int]]:
    """One open fd of each kind (closed by the caller)."""
    fds = []
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    fds.append(("/dev/udmabuf", dev))
    mfd = os.memfd_create("splice", os.MFD_ALLOW_SEALING)
    os.ftruncate(mfd, 4096)
    fcntl.fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)
    arg = bytearray(struct.pack("=IIQQ", mfd, 0, 0, 4096))
    dbuf = fcntl.ioctl(dev, UDMABUF_CREATE, arg, True)
    os.close(mfd)
    fds.append(("dma-buf", dbuf))
    found = vfio_device()
    assert found is not None, "no vfio-pci device"
    bdf, group = found
    fds.append(("sysfs config", os.open(f"/sys/bus/pci/devices/{bdf}/config", os.O_RDWR)))
    fds.append(("fdinfo", os.open(f"/proc/self/fdinfo/{dbuf}", os.O_RDONLY)))
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    grp = os.open(f"/dev/vfio/{group}", os.O_RDWR)
    fcntl.ioctl(grp, VFIO_GROUP_SET_CONTAINER, struct.pack("=i", container))
    fcntl.ioctl(container, VFIO_SET_IOMMU, 3)
    fds.append(
        (
            "vfio device",
            fcntl.ioctl(grp, VFIO_GROUP_GET_DEVICE_FD, bytearray(bdf.encode() + b"\0"), True),
        )
    )
    fds.append(("vfio group", grp))
    fds.append(("vfio container", container))
    return fds


def devices() -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    fds = kinds()
    r, w = os.pipe()
    for name, fd in fds:
        out.append((name, "->pipe", e(os.splice, fd, w, 16, flags=F_NONBLOCK), len(drain(r))))
        if name == "sysfs config":
            out.append((name, "position", os.lseek(fd, 0, os.SEEK_CUR)))
        os.write(w, b"\0\0\0\0")
        # (at offset 0: the vendor ID, which a write does not change)
        res = e(os.splice, r, fd, 4, offset_dst=0, flags=F_NONBLOCK)
        out.append((name, "<-pipe at 0", res, len(drain(r))))
        if name != "sysfs config":  # (at its position: BAR0)
            os.write(w, b"\0\0\0\0")
            res = e(os.splice, r, fd, 4, flags=F_NONBLOCK)
            out.append((name, "<-pipe", res, len(drain(r))))
        out.append((name, "off_in ->pipe", e(os.splice, fd, w, 4, offset_src=0)))
        out.append((name, "tee ->pipe", tee(fd, w, 4, F_NONBLOCK)))
        os.write(w, b"\0\0\0\0")
        out.append((name, "tee <-pipe", tee(r, fd, 4, F_NONBLOCK)))
        drain(r)
        out.append((name, "vmsplice", vmsplice(fd, b"abcd", F_NONBLOCK)))
    for _name, fd in reversed(fds):
        os.close(fd)
    os.close(r)
    os.close(w)
    return out


def main() -> None:
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    for line in tcp(addr):
        print(*line)
    for line in devices():
        print(*line)


if __name__ == "__main__":
    main()
