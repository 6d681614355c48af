"""A Python program written for real Linux (standard library only), as an outsider would:
subprocess with pass_fds, multiprocessing with spawn and forkserver, threads and a
selectors loop, mixing a udmabuf dma-buf with pipes and memfds.  Prints lines that do not
depend on fd numbers or pids; the golden is its output on real Linux 7.2."""

import fcntl
import multiprocessing as mp
import os
import selectors
import struct
import subprocess
import sys
import threading

UDMABUF_CREATE = 0x40187542  # _IOW('u', 0x42, struct udmabuf_create)
DMA_BUF_SET_NAME = 0x40086201  # _IOW('b', 1, u64)
DMA_BUF_IOCTL_SYNC = 0x40086200  # _IOW('b', 0, struct dma_buf_sync)
SYNC_START_RW, SYNC_END_RW = 0x3, 0x7
PAGE = 4096


def dmabuf(pages: int) -> tuple[int, int]:
    memfd = os.memfd_create("outsider", os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, pages * PAGE)
    fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    dev = os.open("/dev/udmabuf", os.O_RDWR | os.O_CLOEXEC)
    try:
        arg = bytearray(struct.pack("=IIQQ", memfd, 1, 0, pages * PAGE))
        fd = fcntl.ioctl(dev, UDMABUF_CREATE, arg, True)  # (mutable: returns the fd)
    finally:
        os.close(dev)
    return memfd, fd


def fdinfo(fd: int, key: str, pid: str = "self") -> str:
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == key:
                return v.strip()
    return "-"


def child_task(fd: int) -> str:
    """In a spawn/forkserver child: a fresh dma-buf of its own, and the size it sees."""
    memfd, buf = dmabuf(3)
    size = fdinfo(buf, "size")
    os.close(buf)
    os.close(memfd)
    return size


def main() -> None:
    memfd, buf = dmabuf(2)
    fcntl.ioctl(buf, DMA_BUF_SET_NAME, b"parent\0")

    # subprocess: the dma-buf passed with pass_fds, the child renames it
    code = (
        "import fcntl,sys; fd=int(sys.argv[1]);"
        "print(open(f'/proc/self/fdinfo/{fd}').read().count('exp_name:\\tudmabuf'));"
        "fcntl.ioctl(fd, 0x40086201, b'child\\0')"
    )
    r = subprocess.run([sys.executable, "-c", code, str(buf)], pass_fds=[buf],
                       capture_output=True, text=True, check=False)  # fmt: skip
    print("subprocess:", r.returncode, r.stdout.strip(), "name now", fdinfo(buf, "name"))
    r = subprocess.run([sys.executable, "-c", code, str(buf)], capture_output=True, text=True,
                       check=False)  # fmt: skip
    print("subprocess without pass_fds:", r.returncode, "FileNotFoundError" in r.stderr)

    # multiprocessing: spawn and forkserver children make their own buffers
    for method in ("spawn", "forkserver"):
        with mp.get_context(method).Pool(2) as pool:
            print(method, sorted(pool.map(child_task, [0, 1])))
    print("count after pools:", fdinfo(buf, "count"))

    # threads: syncs on the shared buffer while a selectors loop waits on a pipe
    rd, wr = os.pipe()
    done = []

    def syncer() -> None:
        for _ in range(50):
            fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, struct.pack("=Q", SYNC_START_RW))
            fcntl.ioctl(buf, DMA_BUF_IOCTL_SYNC, struct.pack("=Q", SYNC_END_RW))
        done.append(1)
        os.write(wr, b"x")

    sel = selectors.DefaultSelector()
    sel.register(rd, selectors.EVENT_READ, "pipe")
    sel.register(buf, selectors.EVENT_READ, "dmabuf")
    ready = sorted(key.data for key, _ in sel.select(0))
    print("selector before:", ready)
    threads = [threading.Thread(target=syncer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ready = sorted(key.data for key, _ in sel.select(0))
    print("selector after:", ready, "threads done", len(done))
    sel.unregister(buf)
    os.close(buf)
    print("after close:", sorted(key.data for key, _ in sel.select(0)))
    sel.close()
    os.close(rd)
    os.close(wr)
    os.close(memfd)


if __name__ == "__main__":
    main()
