"""mmap + munmap of a 4-piece dma-buf in a traced process vs a memfd mapped natively.

    python benchmarks/bench_supervisor_mmap.py [--n N] [--json FILE]

A traced child (a Python program calling libc ``mmap``/``munmap`` through ctypes)
maps a ``UDMABUF_CREATE_LIST`` buffer of 4 slices at different memfd offsets
(``MAP_SHARED``, read-write) and unmaps it, ``--n`` times; the supervisor side is
``mockkernel/supervisor/mmap.py``: the ``mmap`` stops at its seccomp stop
(``SECCOMP_RET_TRACE``), the engine runs the driver's op and lays the 4 pieces with
injected calls (the backing memfd stays open in the child after the first map), and
the ``munmap`` stops too (``TRACE`` here, a user notification under the supervisor)
so that the kernel drops the mapping's record.  The baseline is the same child,
before it is traced, mapping and unmapping a 4-page memfd.  The child times each
iteration with ``perf_counter_ns``; the median and the best are reported.

Target (issue 15): <= 0.5 ms per mmap + munmap of the 4-piece buffer.  A report:
the exit status is 0 even when the target is missed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import struct
import subprocess
import sys
from typing import Any

import mockkernel
from mockkernel.supervisor import ptrace as pt
from mockkernel.supervisor.mmap import TraceeMm, TracerWork, unmap

TARGET_US = 500.0
PAGE = os.sysconf("SC_PAGE_SIZE")
UDMABUF_CREATE_LIST = 0x40087543

CHILD = r"""
import ctypes, os, struct, sys, time
MARK, OFF_MMAP, OFF_OTHER, FD, N = (int(a, 0) for a in sys.argv[1:6])
PAGE = os.sysconf("SC_PAGE_SIZE")
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.syscall.restype = ctypes.c_long
clock = time.perf_counter_ns
def loop(fd, size):
    out = []
    for _ in range(N):
        t0 = clock()
        a = libc.mmap(None, size, 3, 1, fd, 0)
        if a is None or a == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), "mmap")
        libc.munmap(a, size)
        out.append(clock() - t0)
    out.sort()
    return out[len(out) // 2], out[0]
mfd = os.memfd_create("native")
os.ftruncate(mfd, 4 * PAGE)
native = loop(mfd, 4 * PAGE)
LD, JEQ, JSET, RET, ALLOW, TRACE = 0x20, 0x15, 0x45, 0x06, 0x7FFF0000, 0x7FF00000
prog = [(LD, 0, 0, 0), (JEQ, 0, 6, 9), (LD, 0, 0, OFF_MMAP), (JEQ, 8, 0, MARK),
        (LD, 0, 0, 40), (JSET, 6, 0, 0x20), (LD, 0, 0, 48), (JEQ, 4, 3, 0xFFFFFFFF),
        (JEQ, 0, 3, 11), (LD, 0, 0, OFF_OTHER), (JEQ, 1, 0, MARK),
        (RET, 0, 0, TRACE), (RET, 0, 0, ALLOW)]
code = b"".join(struct.pack("HBBI", *i) for i in prog)
buf = ctypes.create_string_buffer(code)
fprog = ctypes.create_string_buffer(struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(buf)))
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.syscall(ctypes.c_long(317), ctypes.c_long(1), ctypes.c_long(0),
                    ctypes.c_void_p(ctypes.addressof(fprog))) == 0
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()  # traced from here on
traced = loop(FD, 4 * PAGE)
sys.stdout.write(f"{native[0]} {native[1]} {traced[0]} {traced[1]}\n")
"""


def _udmabuf(kernel: Any) -> tuple[Any, int]:
    """A 4-slice udmabuf (slices at memfd pages 5, 0, 7, 3): its File and the memfd."""
    mfd = os.memfd_create("bench", os.MFD_ALLOW_SEALING)
    os.ftruncate(mfd, 8 * PAGE)
    fcntl.fcntl(mfd, 1033, 0x2)  # F_ADD_SEALS, F_SEAL_SHRINK
    redir = kernel.install()
    redir.install()
    try:
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        arg = bytearray(struct.pack("=II", 0, 4))
        for page in (5, 0, 7, 3):
            arg += struct.pack("=IIQQ", mfd, 0, page * PAGE, PAGE)
        buf = fcntl.ioctl(dev, UDMABUF_CREATE_LIST, arg)
        file = kernel.current.files[buf].get()
        os.close(buf)
        os.close(dev)
    finally:
        redir.uninstall()
    return file, mfd


def measure(n: int) -> dict[str, Any]:
    """Run the child once; per-iteration medians and bests in us."""
    kernel = mockkernel.boot()
    work = TracerWork()
    try:
        file, mfd = _udmabuf(kernel)
        proc = kernel.spawn("bench")
        fd = proc.install_file(file, False)
        args = [pt.INJECT_MARK, pt.mark_word_offset(9), pt.mark_word_offset(11), fd, n]
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        pt.seize(child.pid)
        mm = TraceeMm(proc, child.pid, work)
        child.stdin.write("go\n")
        child.stdin.flush()
        stops = 0
        while True:
            ev = pt.wait_event(-1)
            assert ev is not None
            if not ev.stopped:
                if ev.tid == child.pid:
                    break
                continue
            if ev.kind is pt.Stop.SECCOMP:
                stops += 1
                regs = pt.getregs(ev.tid)
                if regs.nr == 9:
                    pt.cont(ev.tid, mm.serve_mmap(ev.tid) or 0)
                    continue
                if regs.nr == 11:
                    unmap(proc, regs.rdi, regs.rsi)
            pt.cont(ev.tid, ev.sig if ev.kind is pt.Stop.SIGNAL else 0)
        native_med, native_best, traced_med, traced_best = (
            int(x) / 1000 for x in child.stdout.read().split()
        )
        child.wait()
        mm.exit()
        proc.exit()
        os.close(mfd)
        leaks = kernel.shutdown(check=False)
    finally:
        work.close()
        kernel.shutdown(check=False)
    return {
        "n": n,
        "native_memfd_us": {"median": native_med, "best": native_best},
        "traced_4piece_dmabuf_us": {"median": traced_med, "best": traced_best},
        "ratio_median": traced_med / native_med,
        "target_us": TARGET_US,
        "status": "PASS" if traced_med <= TARGET_US else "FAIL",
        "seccomp_stops": stops,
        "leaks": leaks,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="iterations (default 2000)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    ns = p.parse_args(argv)
    r = measure(ns.n)
    t, nat = r["traced_4piece_dmabuf_us"], r["native_memfd_us"]
    print(f"{'operation':<52} {'median us':>10} {'best us':>9}")
    print(f"{'mmap+munmap memfd, 4 pages, native (untraced)':<52} "
          f"{nat['median']:>10.1f} {nat['best']:>9.1f}")  # fmt: skip
    verdict = f"{r['ratio_median']:.0f}x native, target <= {TARGET_US:g} us: {r['status']}"
    print(f"{'mmap+munmap 4-piece udmabuf dma-buf, traced child':<52} "
          f"{t['median']:>10.1f} {t['best']:>9.1f}   {verdict}")  # fmt: skip
    if r["leaks"]:
        print("leaks:", *r["leaks"], sep="\n  ")
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
