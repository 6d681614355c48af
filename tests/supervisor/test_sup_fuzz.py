"""Stateful fuzzing of supervised programs: Hypothesis writes a program, the supervisor runs it.

The in-process fuzzer (``tests/test_fuzz_syscalls.py``) drives one kernel from the test's
own interpreter.  This one drives the *supervised* front-end: Hypothesis draws a sequence
of operations -- open ``/dev/udmabuf``, memfd + ``UDMABUF_CREATE``, dma-buf ioctls with
valid and garbage arguments (bad pointers through ctypes: NULL, a low address, a
``PROT_NONE`` page, a non-canonical address), ``dup``/``dup2``/``fcntl``/``close``,
``read``/``write``/``lseek``, ``mmap``/``munmap``/``mprotect``/``madvise``, ``poll``,
``fork`` (the child runs a few operations, then ``_exit``), ``fork`` + ``execv`` of a
tiny script keeping some fds, ``SCM_RIGHTS`` to self and to a forked child, netlink
sockets -- and renders it as ONE Python program run by ``kernel.run`` (one run costs
~20-50 ms, so many operations share it).  The program keeps its own table of fds and
mappings; an operation names a slot, resolved when it runs (so a sequence never goes
stale when an earlier operation failed).

Each operation prints one line (its result or errno name) and never raises; an errno
outside the operation's allowed set, or any exception that is not ``OSError``, prints a
``BAD`` line.  The test then checks: the program (and every child) exited 0 with no
traceback, no ``BAD`` line, the kernel recorded no warning, and ``kernel.leaks() == []``.

Profiles: the normal suite runs a few examples (a few seconds).  A campaign::

    FUZZ_EXAMPLES=300 FUZZ_STEPS=40 FUZZ_REPORT=/tmp/supfuzz.json \\
        python -m pytest -q -p no:randomly tests/supervisor/test_sup_fuzz.py

(``FUZZ_SEED`` fixes the seed; ``FUZZ_REPORT`` keeps running totals: programs, operations,
errnos seen).  Its numbers are in docs/reliability.md.
"""

from __future__ import annotations

import collections
import json
import os
import sys
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import mockkernel

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
STEPS = int(os.environ.get("FUZZ_STEPS", "25"))
SEED = os.environ.get("FUZZ_SEED")
REPORT = os.environ.get("FUZZ_REPORT")
#: seconds one program may run (a hang is a failure: every operation is non-blocking)
TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "60"))

#: the program's runtime: a slot table and one checked wrapper per operation
PRELUDE = r'''
import ctypes, errno, fcntl, mmap, os, select, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
PAGE = mmap.PAGESIZE
fds = []
maps = []
memfds = []
HOLE = libc.mmap(None, PAGE, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
scratch = ctypes.create_string_buffer(256)
PTRS = [0, 0x10, HOLE, 0xFFFF800000000000, ctypes.addressof(scratch)]
ANY = {"EBADF", "EINVAL", "ENOTTY", "EFAULT", "ENODEV", "EPERM", "EACCES", "ENXIO",
       "EOPNOTSUPP", "ESPIPE", "EAGAIN", "E2BIG", "ENOMEM", "EBUSY", "ENOSPC", "EEXIST",
       "ENOENT", "EISDIR", "ENOTSOCK", "EMSGSIZE", "ECONNREFUSED", "EPROTONOSUPPORT",
       "EOVERFLOW", "ENOTCONN", "EDESTADDRREQ", "EAFNOSUPPORT", "EPROTOTYPE", "ERANGE",
       "ENODATA", "EBADFD"}  # ENODATA: a 0-byte netlink write (Linux 7.2 too); EBADFD:
# UDMABUF_CREATE of a memfd slot a dup2 put another file at (golden/udmabuf.jsonl)
tag = "P"

def slot(i):
    return fds[i % len(fds)] if fds else 1000 + i

def T(name, allowed, fn, *args):
    try:
        r = fn(*args)
        print(tag, name, "ok", r if isinstance(r, int) else "", flush=True)
    except OSError as e:
        n = errno.errorcode.get(e.errno, str(e.errno))
        print(tag, name, n, flush=True)
        if n not in allowed:
            print("BAD", tag, name, n, repr(e), flush=True)
    except ValueError as e:  # Python's own argument checks (mmap of a bad length)
        print(tag, name, "ValueError", flush=True)
        if "ValueError" not in allowed:
            print("BAD", tag, name, repr(e), flush=True)
    except BaseException as e:
        print("BAD", tag, name, repr(e), flush=True)

def cerr(r):
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r

def add(fd):
    fds.append(fd)
    return fd

def o_udmabuf(flags):
    return add(os.open("/dev/udmabuf", os.O_RDWR | flags))

def o_memfd(pages, seal):
    fd = os.memfd_create("f", os.MFD_ALLOW_SEALING if seal >= 0 else 0)
    memfds.append(fd)
    os.ftruncate(fd, pages * PAGE)
    if seal >= 0:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | (seal and fcntl.F_SEAL_WRITE))
    return fd

def o_create(dev, mi, flags, off, size):
    m = memfds[mi % len(memfds)] if memfds else 999
    arg = struct.pack("IIQQ", m, flags, off, size)
    buf = ctypes.create_string_buffer(arg, len(arg))
    return add(cerr(libc.ioctl(slot(dev), 0x40187542, buf)))

def o_ioctl(s, req, data, ptr):
    if ptr < 0:
        buf = ctypes.create_string_buffer(data, max(len(data), 64))
        return cerr(libc.ioctl(slot(s), req, buf))
    return cerr(libc.ioctl(slot(s), req, PTRS[ptr % len(PTRS)]))

def o_dup(s):
    return add(os.dup(slot(s)))

def o_dup2(s, n, inh):
    return add(os.dup2(slot(s), 3 + n % 40, inheritable=bool(inh)))

def o_fcntl(s, cmd, arg):
    r = fcntl.fcntl(slot(s), cmd, arg)
    if cmd in (fcntl.F_DUPFD, fcntl.F_DUPFD_CLOEXEC):
        add(r)
    return r

def o_close(s):
    if not fds:
        return os.close(999)
    fd = fds.pop(s % len(fds))
    return os.close(fd)

def o_read(s, n, ptr):
    import stat
    fd = slot(s)
    try:
        sock = stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        sock = False
    if sock:  # a netlink socket with nothing queued would block: Linux's answer too
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(0):
            return -1
    if ptr < 0:
        return len(os.read(slot(s), n))
    return cerr(libc.read(slot(s), PTRS[ptr % len(PTRS)], n))

def o_write(s, data, ptr):
    if ptr < 0:
        return os.write(slot(s), data)
    return cerr(libc.write(slot(s), PTRS[ptr % len(PTRS)], len(data)))

def o_lseek(s, off, whence):
    return os.lseek(slot(s), off, whence)

def o_mmap(s, pages, prot, off):
    a = libc.mmap(None, pages * PAGE, prot, mmap.MAP_SHARED, slot(s), off * PAGE)
    if a == ctypes.c_void_p(-1).value:
        cerr(-1)
    maps.append([a, pages * PAGE, prot])
    return len(maps)

def o_munmap(i):
    if maps:
        a, n, _ = maps.pop(i % len(maps))
        return cerr(libc.munmap(a, n))

def o_touch(i, write):
    """Read (and write) the mapping as its protection allows: a fault is a fault on Linux too."""
    if maps:
        a, n, prot = maps[i % len(maps)]
        if write and prot & mmap.PROT_WRITE:
            ctypes.memset(a, 0x5A, 1)
        if prot & mmap.PROT_READ:
            return ctypes.string_at(a + n - 1, 1)[0]

def o_mprotect(i, prot):
    if maps:
        m = maps[i % len(maps)]
        cerr(libc.mprotect(m[0], m[1], prot))
        m[2] = prot

def o_madvise(i, adv):
    if maps:
        a, n, _ = maps[i % len(maps)]
        return cerr(libc.madvise(a, n, adv))

def o_poll(picks, events):
    p = select.poll()
    for s in picks:
        p.register(slot(s), events)
    return len(p.poll(0))

def o_netlink(proto, data):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    fds.append(s.detach())
    os.write(fds[-1], data)
    return fds[-1]

def o_scm_self(picks):
    a, b = socket.socketpair()
    with a, b:
        socket.send_fds(a, [b"x"], [slot(s) for s in picks])
        _, got, _, _ = socket.recv_fds(b, 1, 8)
    for fd in got:
        add(fd)
    return len(got)

def child(ops):
    global tag, fds, maps
    tag = "C%d" % os.getpid()
    try:
        for op in ops:
            op()
    finally:
        sys.stdout.flush()
        os._exit(0)

def reap(pid):
    _, st = os.waitpid(pid, 0)
    if not (os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0):
        print("BAD child status", st, flush=True)
    return 0

def o_fork(ops):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        child(ops)
    return reap(pid)

def o_scm_child(picks, ops):
    a, b = socket.socketpair()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        a.close()
        _, got, _, _ = socket.recv_fds(b, 1, 8)
        b.close()
        fds[:] = got
        child(ops)
    b.close()
    try:
        with a:
            socket.send_fds(a, [b"x"], [slot(s) for s in picks])
    finally:
        reap(pid)
    return 0

EXEC = r"""
import os, sys, errno, stat
for a in sys.argv[1:]:
    fd = int(a)
    try:
        sock = stat.S_ISSOCK(os.fstat(fd).st_mode)  # a socket's read would block
    except OSError:
        sock = True
    for fn in (lambda: os.fstat(fd).st_mode, lambda: sock or len(os.read(fd, 8))):
        try:
            fn()
        except OSError as e:
            if e.errno not in (errno.EBADF, errno.EINVAL, errno.EAGAIN, errno.EISDIR):
                print("BAD exec", fd, e, flush=True)
    try:
        os.close(fd)
    except OSError as e:
        if e.errno != errno.EBADF:
            print("BAD exec close", fd, e, flush=True)
"""

def o_exec(picks):
    keep = sorted({slot(s) for s in picks})
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in keep:
                try:
                    os.set_inheritable(fd, True)
                except OSError:
                    pass
            os.execv(sys.executable, [sys.executable, "-c", EXEC, *map(str, keep)])
        finally:
            os._exit(3)
    return reap(pid)
'''

#: every program starts holding a udmabuf device, a sealed memfd and a dma-buf of it
SETUP = r"""
T("udmabuf", ANY, o_udmabuf, 0)
T("memfd", ANY, o_memfd, 2, 0)
T("create", ANY, o_create, 0, 0, 0, 0, 2 * PAGE)
"""

EPILOGUE = r"""
for a, n, _ in maps:
    cerr(libc.munmap(a, n))
print("DONE", flush=True)
"""

DMABUF_REQS = [0x40086200, 0x40086201, 0x40046201, 0xC0086202, 0x40086203, 0x40187542]
GARBAGE_REQS = [0, 0x5401, 0xC0106200, 0x80086200, 0x6200, 0x4008620F, 0xFFFFFFFF]
SYNC_FLAGS = [1, 2, 3, 4, 5, 6, 7, 0, 0x10]

slots = st.integers(0, 15)
pointer = st.one_of(st.just(-1), st.integers(0, 4))


def _call(fn: str, allowed: str, *args: Any) -> str:
    return f"T({fn[2:]!r}, {allowed}, {fn}, {', '.join(map(repr, args))})"


def _simple_ops() -> st.SearchStrategy[str]:
    """Operations of one process (no fork): each is one call of ``T``."""
    ioctl_data = st.one_of(
        st.sampled_from(SYNC_FLAGS).map(lambda f: f.to_bytes(8, "little")),
        st.binary(max_size=24),
    )
    return st.one_of(
        st.builds(lambda f: _call("o_udmabuf", "ANY", f),
                  st.sampled_from([0, os.O_CLOEXEC, os.O_NONBLOCK])),
        st.builds(lambda p, s: _call("o_memfd", "ANY", p, s),
                  st.integers(0, 4), st.integers(-1, 1)),
        st.builds(lambda d, m, f, o, z: _call("o_create", "ANY", d, m, f, o, z),
                  slots, st.integers(0, 3), st.sampled_from([0, 1, 2, 0x80]),
                  st.sampled_from([0, 4096, 1, 8192]),
                  st.sampled_from([4096, 8192, 0, 4095, 1 << 40])),
        st.builds(lambda s, r, d, p: _call("o_ioctl", "ANY", s, r, d, p),
                  slots, st.sampled_from(DMABUF_REQS + GARBAGE_REQS), ioctl_data, pointer),
        st.builds(lambda s: _call("o_dup", "ANY", s), slots),
        st.builds(lambda s, n, i: _call("o_dup2", "ANY", s, n, i),
                  slots, st.integers(0, 60), st.booleans()),
        st.builds(lambda s, c, a: _call("o_fcntl", "ANY", s, c, a), slots,
                  st.sampled_from([0, 1, 2, 3, 4, 1030, 1033, 1034, 999]),
                  st.sampled_from([0, 1, 5, os.O_NONBLOCK, 0xF])),
        st.builds(lambda s: _call("o_close", "ANY", s), slots),
        st.builds(lambda s, n, p: _call("o_read", "ANY", s, n, p),
                  slots, st.integers(0, 8192), pointer),
        st.builds(lambda s, d, p: _call("o_write", "ANY", s, d, p),
                  slots, st.binary(max_size=64), pointer),
        st.builds(lambda s, o, w: _call("o_lseek", "ANY", s, o, w),
                  slots, st.sampled_from([0, 1, 4096, -1, 1 << 40]), st.integers(0, 4)),
        st.builds(lambda s, n, p, o: _call("o_mmap", "ANY", s, n, p, o),
                  slots, st.integers(1, 3), st.integers(0, 7), st.integers(0, 2)),
        st.builds(lambda i: _call("o_munmap", "ANY", i), slots),
        st.builds(lambda i, w: _call("o_touch", "ANY", i, w), slots, st.booleans()),
        st.builds(lambda i, p: _call("o_mprotect", "ANY", i, p), slots, st.integers(0, 7)),
        st.builds(lambda i, a: _call("o_madvise", "ANY", i, a), slots,
                  st.sampled_from([0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 14, 15, 100])),
        st.builds(lambda p, e: _call("o_poll", "ANY", p, e),
                  st.lists(slots, max_size=4), st.sampled_from([1, 4, 5, 0x3F])),
        st.builds(lambda p, d: _call("o_netlink", "ANY | {'ENODATA'}", p, d),
                  st.sampled_from([0, 15, 16, 4, 31]), st.binary(max_size=40)),
        st.builds(lambda p: _call("o_scm_self", "ANY", p), st.lists(slots, min_size=1, max_size=3)),
    )  # fmt: skip


def _lambda_list(ops: list[str]) -> str:
    return "[" + ", ".join(f"lambda: {o}" for o in ops) + "]"


def _ops() -> st.SearchStrategy[str]:
    simple = _simple_ops()
    kids = st.lists(simple, max_size=5).map(_lambda_list)
    return st.one_of(
        simple,
        simple,
        simple,
        kids.map(lambda k: f"T('fork', ANY, o_fork, {k})"),
        st.builds(lambda p, k: f"T('scm_child', ANY, o_scm_child, {p!r}, {k})",
                  st.lists(slots, min_size=1, max_size=3), kids),
        st.lists(slots, max_size=4).map(lambda p: f"T('exec', ANY, o_exec, {p!r})"),
    )  # fmt: skip


TOTALS: dict[str, Any] = {"programs": 0, "ops": 0, "lines": 0, "outcomes": {}}


def _record(ops: int, out: str) -> None:
    TOTALS["programs"] += 1
    TOTALS["ops"] += ops
    outcomes: collections.Counter[str] = collections.Counter(TOTALS["outcomes"])
    for line in out.splitlines():
        parts = line.split()
        if parts and (parts[0] == "P" or parts[0].startswith("C")):
            TOTALS["lines"] += 1
            if len(parts) >= 3:
                outcomes[parts[2]] += 1
    TOTALS["outcomes"] = dict(outcomes.most_common())
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump(TOTALS, f, indent=1)


def _settings() -> settings:
    """Few derandomized examples in the normal suite; the campaign's count and seed."""
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None and EXAMPLES <= 20,
        suppress_health_check=list(HealthCheck),
    )


@given(program=st.lists(_ops(), min_size=min(8, STEPS), max_size=STEPS))
@_settings()
def test_supervised_program_keeps_the_kernel_sound(program: list[str]) -> None:
    """Every generated program exits 0, no operation sees an errno outside its set,
    and the kernel is left with no warning and nothing leaked."""
    source = PRELUDE + SETUP + "\n".join(program) + EPILOGUE
    if os.environ.get("FUZZ_LAST"):
        with open(os.environ["FUZZ_LAST"], "w") as f:
            f.write(source)
    k = mockkernel.boot()
    try:
        r = k.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=TIMEOUT)
        _record(len(program), r.stdout)
        bad = [line for line in r.stdout.splitlines() if line.startswith("BAD")]
        assert r.returncode == 0, (r.returncode, r.stderr[-3000:], r.stdout[-2000:])
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
        assert r.stdout.rstrip().endswith("DONE"), r.stdout[-2000:]
        assert bad == [], bad
        assert k.warnings == []
        assert k.leaks() == []
    finally:
        k.shutdown(check=False)


if SEED is not None:
    test_supervised_program_keeps_the_kernel_sound = seed(int(SEED))(
        test_supervised_program_keeps_the_kernel_sound
    )
