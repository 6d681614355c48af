"""vfio-pci dma-buf costs: export by number of ranges, revoke/un-revoke by number of buffers.

    python benchmarks/bench_vfio.py [--repeat N]

Two scaling checks, printed as totals and as cost per unit, with the ratio of the
per-unit cost at the largest size to the one at the middle size (about 1 means linear):

* ``VFIO_DEVICE_FEATURE_DMA_BUF`` with 1, 1 000 and 100 000 ranges (one ioctl from
  userspace: copy, validation, the phys vector, the export, the fd); per range;
* revoking (``PCI_COMMAND.MEMORY`` cleared through the config region) and un-revoking
  (set again) 10, 100 and 1 000 dma-bufs that each have a dynamic importer attached and
  mapped (the importer unmaps in ``invalidate_mappings``); per buffer.

Best of ``--repeat`` runs, garbage collector off while timing.  A report: exit status 0.
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import os
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import mockkernel
from mockkernel.driver import (
    DMA_BIDIRECTIONAL,
    Attachment,
    DmaBuf,
    DmaBufAttachOps,
    SgTable,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_get,
    dma_buf_map_attachment,
    dma_buf_put,
    dma_buf_unmap_attachment,
)
from mockkernel.uapi.linux.iommufd import IOMMU_IOAS_ALLOC
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_DMA_BUF,
    VFIO_DEVICE_FEATURE_GET,
)

PAGE = 4096
BAR_PAGES = 256  # BAR0 of the default topology's vfio-pci device: 1 MiB
CONFIG_COMMAND = (7 << 40) + 4


class _Dev:
    name = "bench-importer"


class BenchImporter(DmaBufAttachOps):
    """A dynamic p2p importer: maps at attach, unmaps when invalidated."""

    allow_peer2peer = True

    def __init__(self) -> None:
        self.dmabuf: DmaBuf | None = None
        self.attach: Attachment | None = None
        self.sgt: SgTable | None = None

    def invalidate_mappings(self, attach: Attachment) -> None:
        if self.sgt is not None:
            dma_buf_unmap_attachment(attach, self.sgt, DMA_BIDIRECTIONAL)
            self.sgt = None

    def start(self, kernel: mockkernel.Kernel, fd: int) -> None:
        self.dmabuf = dma_buf_get(fd, kernel.current)
        self.attach = dma_buf_dynamic_attach(self.dmabuf, _Dev(), self)
        self.map()

    def map(self) -> None:
        assert self.dmabuf is not None and self.attach is not None
        with self.dmabuf.resv:
            self.sgt = dma_buf_map_attachment(self.attach, DMA_BIDIRECTIONAL)

    def stop(self) -> None:
        assert self.dmabuf is not None and self.attach is not None
        if self.sgt is not None:
            with self.dmabuf.resv:
                dma_buf_unmap_attachment(self.attach, self.sgt, DMA_BIDIRECTIONAL)
            self.sgt = None
        dma_buf_detach(self.dmabuf, self.attach)
        dma_buf_put(self.dmabuf)


def _time(fn: Callable[[], Any]) -> float:
    gc.disable()
    try:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    finally:
        gc.enable()


def _open_device() -> tuple[int, int]:
    """The cdev path: /dev/iommu, bind, an IOAS, attach.  Returns (device fd, iommufd)."""
    iommufd = os.open("/dev/iommu", os.O_RDWR)
    name = sorted(os.listdir("/sys/bus/pci/devices/0000:01:00.0/vfio-dev"))[0]
    dev = os.open(f"/dev/vfio/devices/{name}", os.O_RDWR)
    fcntl.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bytearray(struct.pack("<IIiI", 16, 0, iommufd, 0)))
    alloc = bytearray(struct.pack("<III", 12, 0, 0))
    fcntl.ioctl(iommufd, IOMMU_IOAS_ALLOC, alloc, True)
    ioas = struct.unpack_from("<I", alloc, 8)[0]
    fcntl.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, bytearray(struct.pack("<III", 12, 0, ioas)))
    return dev, iommufd


def _request(nr: int) -> bytearray:
    head = struct.pack(
        "<IIIIII",
        8 + 16 + 16 * nr,
        VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF,
        0,
        os.O_RDWR,
        0,
        nr,
    )
    body = b"".join(struct.pack("<QQ", (i % BAR_PAGES) * PAGE, PAGE) for i in range(nr))
    return bytearray(head + body)


def bench_export(dev: int, repeat: int) -> list[tuple[int, float]]:
    out = []
    for nr in (1, 1_000, 100_000):
        req = _request(nr)
        best = float("inf")
        for _ in range(repeat):
            fds: list[int] = []

            def once(fds: list[int] = fds, req: bytearray = req) -> None:
                fds.append(fcntl.ioctl(dev, VFIO_DEVICE_FEATURE, req, True))

            best = min(best, _time(once))
            assert os.fstat(fds[0]).st_size == nr * PAGE
            os.close(fds[0])
        out.append((nr, best))
    return out


def _set_memory(dev: int, on: bool) -> None:
    cmd = struct.unpack("<H", os.pread(dev, 2, CONFIG_COMMAND))[0]
    os.pwrite(dev, struct.pack("<H", (cmd | 2) if on else (cmd & ~2)), CONFIG_COMMAND)


def bench_revoke(
    kernel: mockkernel.Kernel, dev: int, repeat: int
) -> list[tuple[int, float, float]]:
    out = []
    req = _request(1)
    for count in (10, 100, 1_000):
        importers = []
        for _ in range(count):
            fd = fcntl.ioctl(dev, VFIO_DEVICE_FEATURE, req, True)
            imp = BenchImporter()
            imp.start(kernel, fd)
            os.close(fd)  # the importer's reference keeps the buffer
            importers.append(imp)
        revoke = unrevoke = float("inf")
        for _ in range(repeat):
            revoke = min(revoke, _time(lambda: _set_memory(dev, False)))
            assert all(imp.sgt is None for imp in importers)
            unrevoke = min(unrevoke, _time(lambda: _set_memory(dev, True)))
            for imp in importers:  # importers re-map lazily after an un-revoke
                imp.map()
        for imp in importers:
            imp.stop()
        out.append((count, revoke, unrevoke))
    return out


def _linear(per_unit: list[float]) -> str:
    ratio = per_unit[-1] / per_unit[-2] if per_unit[-2] else float("nan")
    verdict = "linear" if ratio < 1.5 else "SUPERLINEAR"
    return f"per-unit cost at the largest size / at the middle size = {ratio:.2f} ({verdict})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ns = ap.parse_args(argv)
    kernel = mockkernel.boot()
    try:
        with kernel.install():
            dev, iommufd = _open_device()
            try:
                exports = bench_export(dev, ns.repeat)
                revokes = bench_revoke(kernel, dev, ns.repeat)
            finally:
                os.close(dev)
                os.close(iommufd)
    finally:
        kernel.shutdown()

    print(f"vfio-pci dma-buf benchmark (python {sys.version.split()[0]}, best of {ns.repeat})")
    print()
    print("VFIO_DEVICE_FEATURE_DMA_BUF export")
    print(f"  {'ranges':>8}  {'total ms':>10}  {'us/range':>10}")
    per_range = []
    for nr, t in exports:
        per_range.append(t / nr * 1e6)
        print(f"  {nr:>8}  {t * 1e3:>10.3f}  {per_range[-1]:>10.3f}")
    print(f"  {_linear(per_range)}")
    print()
    print("revoke / un-revoke (PCI_COMMAND.MEMORY off / on), one mapped importer per buffer")
    head = ("buffers", "revoke ms", "us/buffer", "unrevoke ms", "us/buffer")
    print("  {:>8}  {:>10}  {:>10}  {:>12}  {:>10}".format(*head))
    per_rev, per_unrev = [], []
    for count, rev, unrev in revokes:
        per_rev.append(rev / count * 1e6)
        per_unrev.append(unrev / count * 1e6)
        print(
            f"  {count:>8}  {rev * 1e3:>10.3f}  {per_rev[-1]:>10.3f}  {unrev * 1e3:>12.3f}  "
            f"{per_unrev[-1]:>10.3f}"
        )
    print(f"  revoke: {_linear(per_rev)}")
    print(f"  un-revoke: {_linear(per_unrev)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
