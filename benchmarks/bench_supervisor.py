"""The supervisor's costs, in one run: what a supervised program pays per syscall.

    python benchmarks/bench_supervisor.py [--repeat N] [--json FILE] [--cpu N] [--quick]

``--quick`` (the test suite's smoke run): a tenth of the calls and two start-ups, so
every row is measured once; the numbers are then only indicative.

Every supervised row is measured twice in one run, interleaved: unpinned (the default
of ``Kernel.run`` and ``mockkernel run``) and pinned to one CPU (``--cpu N``, default
the last CPU this process may use; ``Kernel.run(cpu=)``): pinned, a round trip is a
switch on that CPU, not a wake-up of an idle one, which on some hosts is most of its
cost (see docs/supervisor.md, Limits).

Rows (each the best of ``--repeat`` runs; a C row is the median of 20-call
batches inside one run of ``benchmarks/c/sup_bench.c``, built here with ``cc``):

* a mock ioctl (``DMA_BUF_IOCTL_SYNC`` on a udmabuf dma-buf) from C under the
  supervisor, vs the same ioctl from Python in-process, vs a real ``ioctl(FIONREAD)``
  on a pipe (target: <= 20 us per mock syscall under the supervisor);
* a real syscall on a real fd under the supervisor: ``FIONREAD`` on a pipe (trapped:
  ioctl may be the mock's, the answer is CONTINUE), ``read`` of ``/dev/zero`` at an fd
  >= 3 and of fd 0 (trapped too: fds 0-2 may be mock files, ``echo 1 > /sys/...``),
  ``getpid`` (not trapped) (target: not intercepted, or <= 10 us);
* a ``sendmsg``+``recvmsg`` pair on an AF_UNIX socketpair, plain and supervised (both
  trapped: answered on the fast path), and with room for an fd in the receive (peeked);
* ``python3 -c pass`` start-up under the supervisor vs plain (target: <= 2x), runs
  interleaved, the median of 7 and the least (on a shared, loaded host the spread is
  its load);
* mmap+munmap of a 4-piece dma-buf (four memfds, ``UDMABUF_CREATE_LIST``) under the
  supervisor vs a 4-page memfd mapped natively (target: <= 0.5 ms);
* mock ioctls from 4 threads vs 1 (calls per second of the whole program);
* ``cat`` of a mock sysfs file run plain (of ``/dev/null``), under one kernel
  (``kernel.run``), and under a fresh kernel per run (``boot(lazy=True)`` + ``run`` +
  ``shutdown``: what a test pays with a kernel of its own -- the supervisor starts with
  every run, the deferred boot runs while the child starts), interleaved; the median
  and the least of each.
A report: the exit status is 0 even when a target is missed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mockkernel
from mockkernel.kernel import Kernel

HERE = Path(__file__).parent
N = 5000


def build(out: Path) -> str:
    cc = shutil.which("cc")
    if cc is None:
        sys.exit("bench_supervisor: no C compiler (cc)")
    exe = out / "sup_bench"
    subprocess.run([cc, "-O2", "-pthread", "-o", str(exe), str(HERE / "c" / "sup_bench.c")],
                   check=True)  # fmt: skip
    return str(exe)


def c_row(
    kernel: Kernel | None, exe: str, mode: str, n: int, threads: int = 1, cpu: int | None = None
) -> tuple[float, float]:
    """(median us/op, calls/s of all threads) of one C run, supervised (on CPU ``cpu``,
    or unpinned) or plain."""
    argv = [exe, mode, str(n), str(threads)]
    if kernel is None:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    else:
        out = kernel.run(argv, capture_output=True, text=True, check=True, cpu=cpu).stdout
    us, rate = out.split()
    return float(us), float(rate)


def inprocess_ioctl(kernel: Kernel, n: int) -> float:
    """us per ``fcntl.ioctl(DMA_BUF_IOCTL_SYNC)`` from Python under the redirection."""
    with kernel.install():
        memfd = os.memfd_create("b", os.MFD_ALLOW_SEALING)
        os.ftruncate(memfd, 4096)
        fcntl.fcntl(memfd, 1033, 2)
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096)))
        arg = struct.pack("=Q", 1)  # DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ
        ioctl = fcntl.ioctl
        t = time.perf_counter_ns()
        for _ in range(n):
            ioctl(buf, 0x40086200, arg)
        us = (time.perf_counter_ns() - t) / n / 1000
        for fd in (buf, dev, memfd):
            os.close(fd)
    return us


def startup(kernel: Kernel, cpu: int | None, runs: int = 7) -> dict[str, float]:
    """Wall ms of ``python3 -c pass``, plain and supervised runs interleaved (a load burst
    of the shared host hits both): the median and the least of each."""
    times: dict[str, list[float]] = {"plain": [], "supervised": []}
    for _ in range(runs):
        for key in times:
            t = time.perf_counter()
            if key == "plain":
                subprocess.run([sys.executable, "-c", "pass"], check=True)
            else:
                kernel.run([sys.executable, "-c", "pass"], check=True, cpu=cpu)
            times[key].append((time.perf_counter() - t) * 1000)
    out = {f"startup.{k}": statistics.median(v) for k, v in times.items()}
    out |= {f"startup_min.{k}": min(v) for k, v in times.items()}
    return out


#: a short program that reads a mock file (so a deferred boot is needed)
_CAT = ["cat", "/sys/bus/pci/devices/0000:01:00.0/vendor"]


def per_kernel_runs(kernel: Kernel, cpu: int | None = None, runs: int = 15) -> dict[str, float]:
    """Wall ms of a ``cat`` of a mock file: plain (``/dev/null``), under ``kernel`` and
    under a fresh kernel per run (booted lazily, shut down after: a per-test kernel),
    interleaved."""
    quiet: dict[str, Any] = {"check": True, "stdout": subprocess.DEVNULL}
    times: dict[str, list[float]] = {"plain": [], "kernel": [], "fresh": []}
    for _ in range(runs):
        for key in times:
            t = time.perf_counter()
            if key == "plain":
                subprocess.run(["cat", "/dev/null"], **quiet)
            elif key == "kernel":
                kernel.run(_CAT, cpu=cpu, **quiet)
            else:
                fresh = mockkernel.boot(lazy=True)
                try:
                    fresh.run(_CAT, cpu=cpu, **quiet)
                finally:
                    fresh.shutdown()
            times[key].append((time.perf_counter() - t) * 1000)
    out = {f"cat.{k}": statistics.median(v) for k, v in times.items()}
    out |= {f"cat_min.{k}": min(v) for k, v in times.items()}
    return out


def measure(repeat: int, cpu: int, quick: bool = False) -> dict[str | None, dict[str, float]]:
    """The rows, by where the supervised trees ran: None (unpinned) and ``cpu``; each
    repeat measures both, one after the other (a load burst of the shared host hits
    both), and each row keeps its best."""
    n, s = (N // 10, 10) if quick else (N, 1)  # (calls per C row; the divisor of the rest)
    k = mockkernel.boot()
    res: dict[str | None, dict[str, float]] = {None: {}, str(cpu): {}}

    def best(r: dict[str, float], key: str, value: float, low: bool = True) -> None:
        old = r.get(key)
        r[key] = value if old is None else (min(old, value) if low else max(old, value))

    with tempfile.TemporaryDirectory() as d:
        exe = build(Path(d))
        for _ in range(repeat):
            for where in (None, cpu):
                r = res[None if where is None else str(where)]

                def sup(mode: str, n: int, threads: int = 1) -> tuple[float, float]:
                    return c_row(k, exe, mode, n, threads, cpu=where)  # noqa: B023

                best(r, "mock_ioctl.supervised", sup("mock-ioctl", n)[0])
                best(r, "mock_ioctl.inprocess", inprocess_ioctl(k, n))
                best(r, "real_ioctl.plain", c_row(None, exe, "real-ioctl", n)[0])
                best(r, "real_ioctl.supervised", sup("real-ioctl", n)[0])
                best(r, "real_read.supervised", sup("real-read", n)[0])
                best(r, "stdio_read.plain", c_row(None, exe, "stdio-read", n)[0])
                best(r, "stdio_read.supervised", sup("stdio-read", n)[0])
                best(r, "getpid.supervised", sup("getpid", n)[0])
                best(r, "mmap4.supervised", sup("mock-mmap4", 400 // s)[0])
                best(r, "mmap4.plain", c_row(None, exe, "real-mmap4", 2000 // s)[0])
                best(r, "threads1.rate", sup("mock-ioctl", 2000 // s, 1)[1], low=False)
                best(r, "threads4.rate", sup("mock-ioctl", 2000 // s, 4)[1], low=False)
                best(r, "msg.plain", c_row(None, exe, "real-msg", n)[0])
                best(r, "msg.supervised", sup("real-msg", n)[0])
                best(r, "cmsg.plain", c_row(None, exe, "real-cmsg", n)[0])
                best(r, "cmsg.supervised", sup("real-cmsg", n)[0])
                for key, value in startup(k, where, 2 if quick else 7).items():
                    best(r, key, value)
                for key, value in per_kernel_runs(k, where, 2 if quick else 15).items():
                    best(r, key, value)
    k.shutdown()
    return res


def report(r: dict[str, float]) -> list[tuple[str, str, str]]:
    ok = lambda cond: "ok" if cond else "MISSED"  # noqa: E731
    rio, rrd = r["real_ioctl.supervised"], r["real_read.supervised"]
    ratio = r["startup.supervised"] / r["startup.plain"]
    return [
        ("mock ioctl, C, supervised", f"{r['mock_ioctl.supervised']:.1f} us",
         f"<= 20 us: {ok(r['mock_ioctl.supervised'] <= 20)}"),
        ("mock ioctl, Python, in-process", f"{r['mock_ioctl.inprocess']:.2f} us", "(info)"),
        ("real ioctl(FIONREAD), C, plain", f"{r['real_ioctl.plain']:.2f} us", "(info)"),
        ("real ioctl(FIONREAD), C, supervised (trapped, CONTINUE)",
         f"{rio:.1f} us", f"<= 10 us: {ok(rio <= 10)}"),
        ("real read(fd >= 3), C, supervised (trapped, CONTINUE)",
         f"{rrd:.1f} us", f"<= 10 us: {ok(rrd <= 10)}"),
        ("real read(fd 0), C, plain / supervised (trapped, CONTINUE)",
         f"{r['stdio_read.plain']:.2f} / {r['stdio_read.supervised']:.2f} us", "(info)"),
        ("getpid, C, supervised (not trapped)", f"{r['getpid.supervised']:.2f} us", "(info)"),
        ("sendmsg+recvmsg, AF_UNIX, plain / supervised (fast CONTINUE)",
         f"{r['msg.plain']:.2f} / {r['msg.supervised']:.1f} us", "(info)"),
        ("the same, recvmsg with room for an fd (peeked)",
         f"{r['cmsg.plain']:.2f} / {r['cmsg.supervised']:.1f} us", "(info)"),
        ("python3 -c pass, plain / supervised",
         f"{r['startup.plain']:.0f} / {r['startup.supervised']:.0f} ms ({ratio:.2f}x)",
         f"<= 2x: {ok(ratio <= 2)}"),
        ("python3 -c pass, least of the runs, plain / supervised",
         f"{r['startup_min.plain']:.0f} / {r['startup_min.supervised']:.0f} ms "
         f"({r['startup_min.supervised'] / r['startup_min.plain']:.2f}x)", "(info)"),
        ("mmap+munmap, 4-piece dma-buf supervised / 4-page memfd plain",
         f"{r['mmap4.supervised']:.0f} / {r['mmap4.plain']:.1f} us",
         f"<= 500 us: {ok(r['mmap4.supervised'] <= 500)}"),
        ("cat of a mock file, plain / one kernel / a fresh kernel per run",
         f"{r['cat.plain']:.2f} / {r['cat.kernel']:.2f} / {r['cat.fresh']:.2f} ms",
         "(info)"),
        ("the same, least of the runs",
         f"{r['cat_min.plain']:.2f} / {r['cat_min.kernel']:.2f} / "
         f"{r['cat_min.fresh']:.2f} ms", "(info)"),
        ("mock ioctls/s, 1 thread / 4 threads",
         f"{r['threads1.rate']:.0f} / {r['threads4.rate']:.0f}",
         f"{r['threads4.rate'] / r['threads1.rate']:.2f}x (info)"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer calls")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument(
        "--cpu", type=int, metavar="N", default=max(os.sched_getaffinity(0)),
        help="the CPU of the pinned rows (default: the last one this process may use)",
    )  # fmt: skip
    ns = ap.parse_args(argv)
    os.environ.pop("MOCKKERNEL_SUPERVISOR_CPU", None)  # (the unpinned rows are unpinned)
    res = measure(ns.repeat, ns.cpu, ns.quick)
    free, pinned = report(res[None]), report(res[str(ns.cpu)])
    head = ("", "unpinned", "", f"on CPU {ns.cpu}", "")
    rows = [head] + [
        (a, v, t, pv, pt) for (a, v, t), (_a, pv, pt) in zip(free, pinned, strict=True)
    ]
    w = [max(len(row[i]) for row in rows) for i in range(5)]
    for label, value, target, pvalue, ptarget in rows:
        print(f"{label:<{w[0]}}  {value:>{w[1]}}  {target:<{w[2]}}  {pvalue:>{w[3]}}  {ptarget}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    if ns.json:
        out: dict[str, Any] = {"results": res, "rows": rows}
        Path(ns.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
