"""RDMA dma-buf MR costs: remote writes through MR -> fabric -> BAR, and MR register/deregister.

    python benchmarks/bench_rdma.py [--repeat N] [--writes N]

On the default topology (``mlx5_0`` importing a dma-buf of the vfio-pci device's BAR0,
with TPH set, tag 0x0112 / PH 1):

* RDMA WRITEs from the test-side peer (``mockkernel.testing.rdma.remote_write``): the
  rkey lookup and checks, the mkey's translation, the TPH hints, the fabric's TLPs and
  the bytes landing in the BAR -- 64 B (one TLP), 4 KiB (16 TLPs at MPS 256) and
  64 KiB, with tracing off and on (a sink that drops the events);
* the same 64 B write after an invalidation (a fault: map + TPH re-query + write);
* MR register + deregister from userspace: ``REG_DMABUF_MR`` and ``MR_DESTROY`` ioctls
  (dynamic, vfio-pci; data-direct, udmabuf) and legacy ``REG_MR``/``DEREG_MR`` writes over
  user memory (pinned).

Best of ``--repeat`` runs, garbage collector off while timing.  A report: exit status 0.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import mmap
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from mockkernel_mlx5 import Mlx5IbOps

import mockkernel
from mockkernel.rdma import UmemDmabuf, ib_device_by_name
from mockkernel.testing.rdma import Mr, Verbs, VfioDevice, remote_write, udmabuf
from mockkernel.uapi.rdma import ib_user_verbs as V

PAGE = 4096
RW = 0x7
SIZE = 0x40000  # 256 KiB of BAR0


def _best(fn: Callable[[], None], n: int, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` runs of ``n`` calls."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t) / n)
    finally:
        gc.enable()
    return best


def _drop(event: dict[str, object]) -> None:
    """A trace sink that keeps nothing: the cost of building the events."""


def write_loop(kernel: mockkernel.Kernel, rkey: int, size: int) -> Callable[[int], None]:
    """``loop(n)``: ``n`` RDMA WRITEs of ``size`` bytes at offset 0 of the MR ``rkey`` of
    ``mlx5_0``, as the remote peer makes them (``benchmarks/run.py`` times this too)."""
    data = bytes(size)

    def loop(n: int) -> None:
        for _ in range(n):
            remote_write(kernel, "mlx5_0", rkey, 0, data)

    return loop


class BarMr(NamedTuple):
    """What :func:`bar_mr` set up: the verbs context, the vfio-pci device, the BAR's
    dma-buf (TPH set), the PD and the dynamic dma-buf MR over it."""

    verbs: Verbs
    dev: VfioDevice
    fd: int
    pd: int
    mr: Mr


@contextmanager
def bar_mr(kernel: mockkernel.Kernel) -> Iterator[BarMr]:
    """``mlx5_0`` importing a dma-buf of ``SIZE`` bytes of the vfio-pci device's BAR0 with
    TPH set (tag 0x0112, PH 1), registered as a ``REMOTE_WRITE`` MR (the redirection
    installed); all of it released on exit."""
    verbs = Verbs("mlx5_0")
    try:
        dev = VfioDevice("0000:01:00.0")
        try:
            fd = dev.export(0, SIZE)
            try:
                dev.set_tph(fd, 3, xst=0x0112, st=0x12, ph=1)
                pd = verbs.alloc_pd()
                mr = verbs.reg_dmabuf_mr(pd, fd, SIZE, access=RW)
                assert remote_write(kernel, "mlx5_0", mr.rkey, 0, b"warm").ok
                try:
                    yield BarMr(verbs, dev, fd, pd, mr)
                finally:
                    verbs.dereg_mr(mr)
            finally:
                os.close(fd)
        finally:
            dev.close()
    finally:
        verbs.close()


def _best_loop(loop: Callable[[int], None], n: int, repeat: int) -> float:
    """Seconds per iteration: the best of ``repeat`` runs of ``loop(n)``."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            loop(n)
            best = min(best, (time.perf_counter() - t) / n)
    finally:
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--writes", type=int, default=2000, help="64 B writes per run")
    ns = ap.parse_args(argv)
    rows: list[tuple[str, float, str]] = []
    kernel = mockkernel.boot()
    try:
        with kernel.install(), bar_mr(kernel) as bm:
            verbs, fd, pd, mr = bm.verbs, bm.fd, bm.pd, bm.mr
            ufd, memfd = udmabuf(16 * PAGE)
            user = mmap.mmap(-1, 16 * PAGE)
            uaddr = ctypes.addressof(ctypes.c_char.from_buffer(user))
            try:
                sizes = ((64, ns.writes), (4096, ns.writes // 4), (65536, ns.writes // 40))
                for size, n in sizes:
                    tlps = len(remote_write(kernel, "mlx5_0", mr.rkey, 0, bytes(size)).tlps)
                    for tracing in (False, True):
                        if tracing:
                            kernel.tracer.add_sink(_drop)
                        try:
                            loop = write_loop(kernel, mr.rkey, size)
                            t = _best_loop(loop, max(n, 10), ns.repeat)
                        finally:
                            if tracing:
                                kernel.tracer.remove_sink(_drop)
                        state = "on " if tracing else "off"
                        label = f"RDMA WRITE {size:>6} B ({tlps:>3} TLPs), tracing {state}"
                        rate = f"{1 / t:>10,.0f} writes/s  {size / t / 1e6:>8.1f} MB/s"
                        rows.append((label, t, rate))

                def fault_write() -> None:
                    with mr_umem.dmabuf.resv:
                        mr_ops.dmabuf_invalidate(mr_umem.attach)
                    remote_write(kernel, "mlx5_0", mr.rkey, 0, b"x" * 64)

                ibdev = ib_device_by_name(kernel, "mlx5_0")
                mr_umem = ibdev.mrs[mr.rkey].umem
                mr_ops = ibdev.ops
                assert isinstance(mr_umem, UmemDmabuf) and isinstance(mr_ops, Mlx5IbOps)
                t = _best(fault_write, max(ns.writes // 10, 10), ns.repeat)
                rows.append(("invalidate + faulting 64 B write (map, TPH re-query)", t, ""))

                def reg_dereg_dynamic() -> None:
                    verbs.dereg_mr(verbs.reg_dmabuf_mr(pd, fd, SIZE, access=RW))

                def reg_dereg_data_direct() -> None:
                    verbs.dereg_mr(
                        verbs.reg_dmabuf_mr(pd, ufd, 16 * PAGE, access=RW, data_direct=True)
                    )

                resp = ctypes.create_string_buffer(12)
                body = struct.pack(
                    "<QQQQII", ctypes.addressof(resp), uaddr, 16 * PAGE, uaddr, pd, RW
                )

                def reg_dereg_user() -> None:
                    verbs.write_cmd(V.IB_USER_VERBS_CMD_REG_MR, body, 3)
                    handle = struct.unpack_from("<I", resp.raw)[0]
                    verbs.write_cmd(V.IB_USER_VERBS_CMD_DEREG_MR, struct.pack("<I", handle))

                n = max(ns.writes // 10, 10)
                for label, fn in (
                    ("REG_DMABUF_MR + MR_DESTROY, dynamic (vfio-pci)", reg_dereg_dynamic),
                    ("REG_DMABUF_MR + MR_DESTROY, data-direct (udmabuf)", reg_dereg_data_direct),
                    ("REG_MR + DEREG_MR (write), 64 KiB user memory", reg_dereg_user),
                ):
                    rows.append((label, _best(fn, n, ns.repeat), ""))
            finally:
                user.close()
                for x in (ufd, memfd):
                    os.close(x)
    finally:
        kernel.shutdown()

    print(f"RDMA dma-buf MR benchmark (python {sys.version.split()[0]}, best of {ns.repeat})")
    print()
    width = max(len(r[0]) for r in rows)
    print(f"  {'operation':<{width}}  {'us/op':>9}")
    for label, t, extra in rows:
        print(f"  {label:<{width}}  {t * 1e6:>9.2f}  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
