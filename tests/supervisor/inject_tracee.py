"""A traced child for the injection tests: a seccomp filter, then commands on stdin.

Run as ``python inject_tracee.py``.  The filter (raw classic BPF) lets every call
through except ``mmap`` of an fd and ``munmap``, which are ``SECCOMP_RET_TRACE``
unless they carry the supervisor's marker -- the shape of the supervisor's filter
for the calls the mmap engine serves.  Each command is one line; each answer one
line (``ok ...`` or ``err ...``).
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading

MARK = int(sys.argv[1], 0)
MMAP_MARK_OFF = int(sys.argv[2], 0)  # seccomp_data offset of mmap's marker word
OTHER_MARK_OFF = int(sys.argv[3], 0)

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.syscall.restype = ctypes.c_long

LD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
ALLOW, TRACE = 0x7FFF0000, 0x7FF00000


STRICT = len(sys.argv) > 4 and sys.argv[4] == "strict"
EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM


def assemble(prog: list[tuple[str | None, int, int, str | None, str | None]]) -> bytes:
    """``(label, code, k, jt, jf)`` instructions; jumps name labels."""
    where = {ins[0]: n for n, ins in enumerate(prog) if ins[0]}
    out = b""
    for n, (_, code, k, jt, jf) in enumerate(prog):
        t = where[jt] - n - 1 if jt else 0
        f = where[jf] - n - 1 if jf else 0
        out += struct.pack("HBBI", code, t, f, k)
    return out


def bpf() -> bytes:
    """TRACE: unmarked mmap of an fd, unmarked munmap; strict: EPERM for unmarked
    openat/fcntl/close (the calls the engine injects); ALLOW the rest."""
    p: list[tuple[str | None, int, int, str | None, str | None]] = [
        (None, LD, 0, None, None),
        (None, JEQ, 9, "mmap", None),
        (None, JEQ, 11, "other", None),
    ]
    if STRICT:
        p += [(None, JEQ, nr, "strict", None) for nr in (257, 72, 3)]
    p += [
        (None, RET, ALLOW, None, None),
        ("mmap", LD, MMAP_MARK_OFF, None, None),
        (None, JEQ, MARK, "allow", None),
        (None, LD, 16 + 3 * 8, None, None),  # flags
        (None, JSET, 0x20, "allow", None),  # MAP_ANONYMOUS
        (None, LD, 16 + 4 * 8, None, None),  # fd
        (None, JEQ, 0xFFFFFFFF, "allow", "trace"),
        ("other", LD, OTHER_MARK_OFF, None, None),
        (None, JEQ, MARK, "allow", "trace"),
        ("strict", LD, OTHER_MARK_OFF, None, None),
        (None, JEQ, MARK, "allow", "eperm"),
        ("trace", RET, TRACE, None, None),
        ("eperm", RET, EPERM, None, None),
        ("allow", RET, ALLOW, None, None),
    ]
    return assemble(p)


def install() -> None:
    code = bpf()
    buf = ctypes.create_string_buffer(code)
    prog = struct.pack("HxxxxxxQ", len(code) // 8, ctypes.addressof(buf))
    pbuf = ctypes.create_string_buffer(prog)
    if libc.prctl(38, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if (
        libc.syscall(
            ctypes.c_long(317),
            ctypes.c_long(1),
            ctypes.c_long(0),
            ctypes.c_void_p(ctypes.addressof(pbuf)),
        )
        != 0
    ):
        raise OSError(ctypes.get_errno(), "seccomp")


def mmap(length: int, prot: int, flags: int, fd: int, off: int, addr: int = 0) -> int:
    r = libc.mmap(addr, length, prot, flags, fd, off)
    if r is None or r == ctypes.c_void_p(-1).value:
        return -ctypes.get_errno()
    return int(r)


def cycles(nthreads: int, n: int, fd: int, length: int, check: bytes) -> str:
    errors: list[str] = []

    def run() -> None:
        for _ in range(n):
            a = mmap(length, 3, 1, fd, 0)
            if a < 0:
                errors.append(f"mmap {a}")
                return
            if ctypes.string_at(a, len(check)) != check:
                errors.append("bad data")
            if libc.munmap(a, length) != 0:
                errors.append(f"munmap {ctypes.get_errno()}")

    ts = [threading.Thread(target=run) for _ in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return "err " + errors[0] if errors else "ok"


def main() -> None:
    install()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        cmd, *a = line.split()
        nints = {"write": 1, "cycles": 4}.get(cmd, len(a))  # then one hex string
        args = [int(x, 0) for x in a[:nints]]
        if cmd == "mmap":
            r = mmap(*args)
            res = f"ok {r}" if r >= 0 else f"err {-r}"
        elif cmd == "munmap":
            r = libc.munmap(args[0], args[1])
            res = "ok" if r == 0 else f"err {ctypes.get_errno()}"
        elif cmd == "read":
            res = "ok " + ctypes.string_at(args[0], args[1]).hex()
        elif cmd == "write":
            data = bytes.fromhex(a[1])
            ctypes.memmove(int(a[0], 0), data, len(data))
            res = "ok"
        elif cmd == "cycles":
            res = cycles(args[0], args[1], args[2], args[3], bytes.fromhex(a[4]))
        elif cmd == "raw":  # a raw syscall: nr and up to 6 args
            r = libc.syscall(*[ctypes.c_long(x) for x in args])
            res = f"ok {r}" if r >= 0 else f"err {ctypes.get_errno()}"
        elif cmd == "fork":  # a child reads (and marks) the mapping; the parent waits
            pid = os.fork()
            if pid == 0:
                data = ctypes.string_at(args[0], args[1])
                ctypes.memmove(args[0], b"forked", 6)
                out.write(f"child {data.hex()}\n")
                out.flush()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            res = f"ok {status}"
        elif cmd == "idle":  # a second thread, blocked for good
            threading.Thread(target=threading.Event().wait, daemon=True).start()
            res = f"ok {threading.active_count()}"
        elif cmd == "exit":
            break
        else:
            res = "err unknown"
        out.write(res + "\n")
        out.flush()


if __name__ == "__main__":
    main()
