"""``--check-leaks`` (``kernel.leaks()``) covers the whole supervised tree: what a
grandchild left behind in a driver -- here a dma-buf attachment a buggy importer never
detached -- is reported once the run is over, named by the process that opened it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import mockkernel
from mockkernel.dma_buf.core import dma_buf_attach, dma_buf_get
from mockkernel.fs import File, FileOperations


@dataclass(frozen=True)
class _Dev:
    name: str


class Attacher(FileOperations):
    """A buggy importer: its ioctl attaches to the dma-buf fd it is given and keeps the
    attachment (and the buffer reference) for ever."""

    name = "attacher"

    def __init__(self) -> None:
        self.kept: list[object] = []

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        dmabuf = dma_buf_get(arg, file.kernel.current)
        self.kept.append(dma_buf_attach(dmabuf, _Dev("leaky-importer")))
        return 0


GRANDCHILD = """
import fcntl, os, struct
if os.fork() == 0:
    if os.fork() == 0:
        memfd = os.memfd_create("m", os.MFD_ALLOW_SEALING)
        os.ftruncate(memfd, 4096)
        fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        arg = bytearray(struct.pack("IIQQ", memfd, 0, 0, 4096))
        buf = fcntl.ioctl(dev, 0x40187542, arg, True)
        att = os.open("/dev/attacher", os.O_RDWR)
        fcntl.ioctl(att, 0x4242, buf)
        print(os.getpid(), flush=True)
        os._exit(0)
    os.wait()
    os._exit(0)
os.wait()
"""


def test_a_grandchilds_leaked_attachment_is_reported() -> None:
    k = mockkernel.boot()
    attacher = Attacher()
    k.misc_register("attacher", attacher)
    try:
        r = k.run([sys.executable, "-c", GRANDCHILD], capture_output=True, text=True,
                  timeout=60)  # fmt: skip
        leaks = k.leaks()
    finally:
        k.shutdown(check=False)
    assert r.returncode == 0, r.stderr
    grandchild = int(r.stdout)
    assert any("attach" in leak and "leaky-importer" in leak for leak in leaks), leaks
    assert any(f"opened by pid {grandchild}" in leak for leak in leaks), leaks
