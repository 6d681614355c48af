"""Under the supervisor: multiprocessing children (fork, spawn, forkserver) reach the kernel."""

import multiprocessing as mp
import os


def work(i):
    fd = os.open("/dev/udmabuf", os.O_RDWR)
    link = os.readlink(f"/proc/self/fd/{fd}")
    os.close(fd)
    return (i, link)


if __name__ == "__main__":
    for method in ("fork", "spawn", "forkserver"):
        with mp.get_context(method).Pool(2) as p:
            print(method, p.map(work, range(3)))
