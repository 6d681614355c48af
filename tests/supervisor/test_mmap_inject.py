"""mmap of a mock dma-buf in a traced child, laid by syscalls injected at its seccomp stop.

The test's kernel makes the udmabuf in-process; the traced child (``inject_harness``)
gets a reference to it in its mock process and maps it with a plain ``mmap`` call,
which the engine (``mockkernel/supervisor/mmap.py``) serves.  Coherence is checked
both ways against the memfd the test holds.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from inject_harness import Tracee

from mockkernel import Kernel
from mockkernel.fs import File
from mockkernel.supervisor import ptrace as pt
from mockkernel.supervisor.mmap import TraceeMapping

PAGE = os.sysconf("SC_PAGE_SIZE")
UDMABUF_CREATE = 0x40187542
UDMABUF_CREATE_LIST = 0x40087543
F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x2
PROT_RW = 3
MAP_SHARED = 1
MAP_PRIVATE = 2


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ from page to page, so a misplaced page shows."""
    return bytes((i * 7 + seed + i // PAGE) % 251 for i in range(size))


@pytest.fixture
def tracee(mock_kernel: Kernel) -> Iterator[Tracee]:
    t = Tracee(mock_kernel)
    try:
        yield t
    finally:
        t.close()


def memfd(pages: int) -> int:
    fd = os.memfd_create("inject-test", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, pages * PAGE)
    os.pwrite(fd, pattern(pages * PAGE), 0)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)
    return fd


def udmabuf(kernel: Kernel, items: list[tuple[int, int, int]]) -> File:
    """A udmabuf of ``(memfd, offset, size)`` slices, made in-process; its File (the
    in-process fd is closed: the caller's reference is the returned one)."""
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        if len(items) == 1:
            fd, off, size = items[0]
            arg = bytearray(struct.pack("=IIQQ", fd, 0, off, size))
            buf = fcntl.ioctl(dev, UDMABUF_CREATE, arg)
        else:
            arg = bytearray(struct.pack("=II", 0, len(items)))
            for fd, off, size in items:
                arg += struct.pack("=IIQQ", fd, 0, off, size)
            buf = fcntl.ioctl(dev, UDMABUF_CREATE_LIST, arg)
    finally:
        os.close(dev)
    file = kernel.current.files[buf].get()
    os.close(buf)
    return file


def ok(answer: str) -> int:
    kind, _, value = answer.partition(" ")
    assert kind == "ok", answer
    return int(value) if value else 0


def _fds(pid: int) -> set[int]:
    """The fd numbers open in process ``pid``."""
    return {int(n) for n in os.listdir(f"/proc/{pid}/fd")}


def read(t: Tracee, addr: int, n: int) -> bytes:
    return bytes.fromhex(t.send(f"read {addr} {n}")[3:])


def test_one_slice_at_memfd_offset_is_coherent_both_ways(
    mock_kernel: Kernel, tracee: Tracee
) -> None:
    mfd = memfd(4)
    file = udmabuf(mock_kernel, [(mfd, PAGE, 2 * PAGE)])
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    assert read(tracee, addr, 2 * PAGE) == pattern(4 * PAGE)[PAGE : 3 * PAGE]
    tracee.send(f"write {addr + 5} {b'child'.hex()}")
    assert os.pread(mfd, 5, PAGE + 5) == b"child"
    os.pwrite(mfd, b"parent", 2 * PAGE + 9)
    assert read(tracee, addr + PAGE + 9, 6) == b"parent"
    mp = tracee.proc.mappings[addr]
    assert isinstance(mp, TraceeMapping) and mp.length == 2 * PAGE and mp.file is file
    assert ok(tracee.send(f"munmap {addr} {2 * PAGE}")) == 0
    assert tracee.proc.mappings == {}
    assert tracee.marked_stops == []
    os.close(mfd)


def test_four_slice_list_layout_is_coherent_both_ways(mock_kernel: Kernel, tracee: Tracee) -> None:
    """The selftest's UDMABUF_CREATE_LIST shape: slices at different memfd offsets."""
    mfd = memfd(8)
    items = [
        (mfd, 5 * PAGE, PAGE),
        (mfd, 0, 2 * PAGE),
        (mfd, 7 * PAGE, PAGE),
        (mfd, 3 * PAGE, PAGE),
    ]
    file = udmabuf(mock_kernel, items)
    fd = tracee.install(file)
    file.put()
    size = 5 * PAGE
    addr = ok(tracee.send(f"mmap {size} {PROT_RW} {MAP_SHARED} {fd} 0"))
    src = pattern(8 * PAGE)
    want = b"".join(src[off : off + n] for _, off, n in items)
    assert read(tracee, addr, size) == want
    at = 0
    for i, (_, off, n) in enumerate(items):  # the child writes into every slice
        tracee.send(f"write {addr + at + 17} {bytes([0xA0 + i] * 3).hex()}")
        assert os.pread(mfd, 3, off + 17) == bytes([0xA0 + i] * 3)
        os.pwrite(mfd, bytes([0xB0 + i] * 4), off + n - 4)  # and the test into each
        at += n
    at = 0
    for i, (_, _off, n) in enumerate(items):
        assert read(tracee, addr + at + n - 4, 4) == bytes([0xB0 + i] * 4)
        at += n
    assert len(tracee.proc.mappings[addr].pieces) == 4
    assert ok(tracee.send(f"munmap {addr} {size}")) == 0
    os.close(mfd)


def test_offset_into_the_buffer_maps_the_right_slices(mock_kernel: Kernel, tracee: Tracee) -> None:
    mfd = memfd(8)
    items = [(mfd, 6 * PAGE, PAGE), (mfd, PAGE, 2 * PAGE), (mfd, 4 * PAGE, PAGE)]
    file = udmabuf(mock_kernel, items)
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED} {fd} {2 * PAGE}"))
    src = pattern(8 * PAGE)
    assert read(tracee, addr, 2 * PAGE) == src[2 * PAGE : 3 * PAGE] + src[4 * PAGE : 5 * PAGE]
    assert tracee.proc.mappings[addr].pgoff == 2
    assert ok(tracee.send(f"munmap {addr} {2 * PAGE}")) == 0
    os.close(mfd)


def test_driver_errors_reach_the_child(mock_kernel: Kernel, tracee: Tracee) -> None:
    mfd = memfd(2)
    file = udmabuf(mock_kernel, [(mfd, 0, 2 * PAGE)])
    fd = tracee.install(file)
    file.put()
    # udmabuf's mmap op: MAP_PRIVATE is EINVAL; do_mmap: unaligned offset is EINVAL
    assert tracee.send(f"mmap {PAGE} {PROT_RW} {MAP_PRIVATE} {fd} 0") == "err 22"
    assert tracee.send(f"mmap {PAGE} {PROT_RW} {MAP_SHARED} {fd} 100") == "err 22"
    assert tracee.send(f"mmap {PAGE} 7 {MAP_SHARED} {fd} 0") == "err 1"  # PROT_EXEC: EPERM
    assert tracee.proc.mappings == {}
    assert file.f_count == 1  # only the tracee's fd: no reference left behind
    os.close(mfd)


def test_map_fixed_is_honoured(mock_kernel: Kernel, tracee: Tracee) -> None:
    mfd = memfd(2)
    file = udmabuf(mock_kernel, [(mfd, 0, 2 * PAGE)])
    fd = tracee.install(file)
    file.put()
    anon = ok(tracee.send(f"mmap {4 * PAGE} {PROT_RW} 34 -1 0"))  # MAP_PRIVATE|MAP_ANON
    at = anon + PAGE
    got = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED | 0x10} {fd} 0 {at}"))
    assert got == at
    assert read(tracee, at, 2 * PAGE) == pattern(2 * PAGE)
    assert ok(tracee.send(f"munmap {anon} {4 * PAGE}")) == 0
    assert tracee.proc.mappings == {}
    os.close(mfd)


def test_munmap_drops_the_file_reference_and_splits(mock_kernel: Kernel, tracee: Tracee) -> None:
    mfd = memfd(4)
    file = udmabuf(mock_kernel, [(mfd, 0, 4 * PAGE)])
    fd = tracee.install(file)
    assert file.f_count == 2  # the test's and the tracee's fd
    addr = ok(tracee.send(f"mmap {4 * PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    assert file.f_count == 3
    # a hole in the middle: two mappings left, each with its own reference
    assert ok(tracee.send(f"munmap {addr + PAGE} {PAGE}")) == 0
    assert sorted(tracee.proc.mappings) == [addr, addr + 2 * PAGE]
    assert [m.length for _, m in sorted(tracee.proc.mappings.items())] == [PAGE, 2 * PAGE]
    assert tracee.proc.mappings[addr + 2 * PAGE].pgoff == 2
    assert file.f_count == 4
    assert read(tracee, addr + 2 * PAGE, 8) == pattern(4 * PAGE)[2 * PAGE : 2 * PAGE + 8]
    assert ok(tracee.send(f"munmap {addr} {4 * PAGE}")) == 0
    assert tracee.proc.mappings == {}
    assert file.f_count == 2
    file.put()
    os.close(mfd)


def test_three_threads_map_and_unmap_200_times(mock_kernel: Kernel, tracee: Tracee) -> None:
    mfd = memfd(3)
    file = udmabuf(mock_kernel, [(mfd, PAGE, PAGE), (mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    fds = _fds(tracee.pid)
    head = pattern(3 * PAGE)[PAGE : PAGE + 16]
    assert tracee.send(f"cycles 3 200 {fd} {2 * PAGE} {head.hex()}") == "ok"
    assert tracee.seccomp_nrs.count(9) == 600
    assert tracee.proc.mappings == {}
    assert file.f_count == 1
    assert _fds(tracee.pid) == fds  # each map closed the backing fd it opened
    os.close(mfd)


def test_zap_gives_sigbus_and_restore_gives_the_data_back(
    mock_kernel: Kernel, tracee: Tracee
) -> None:
    mfd = memfd(2)
    file = udmabuf(mock_kernel, [(mfd, PAGE, PAGE), (mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    fds = _fds(tracee.pid)
    addr = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    assert _fds(tracee.pid) == fds  # mapped: no backing fd left open in the child
    mp = tracee.proc.mappings[addr]
    mp.zap()  # the child is blocked reading stdin: interrupted, zapped, resumed
    assert mp.zapped
    assert _fds(tracee.pid) == fds
    faults: list[int] = []

    def on_signal(ev: pt.Event) -> int:
        if ev.sig != signal.SIGBUS:
            return ev.sig
        faults.append(ev.sig)
        mp.restore()  # at the SIGBUS stop; the access is retried
        return 0

    tracee.on_signal = on_signal
    src = pattern(2 * PAGE)
    assert read(tracee, addr + PAGE, 8) == src[:8]
    assert faults == [signal.SIGBUS]
    assert not mp.zapped
    assert _fds(tracee.pid) == fds  # restored from the kernel's files, none kept
    assert ok(tracee.send(f"munmap {addr} {2 * PAGE}")) == 0
    os.close(mfd)


def test_zap_from_another_thread_goes_through_the_tracer(
    mock_kernel: Kernel, tracee: Tracee
) -> None:
    import threading

    mfd = memfd(1)
    file = udmabuf(mock_kernel, [(mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    mp = tracee.proc.mappings[addr]
    done = threading.Event()
    th = threading.Thread(target=lambda: (mp.zap(), done.set()))
    th.start()
    while not done.is_set():
        tracee.step()
    th.join()
    assert mp.zapped
    seen: list[int] = []
    tracee.on_signal = lambda ev: seen.append(ev.sig) or (mp.restore() or 0)
    assert read(tracee, addr, 4) == pattern(PAGE)[:4]
    assert seen == [signal.SIGBUS]
    assert ok(tracee.send(f"munmap {addr} {PAGE}")) == 0
    os.close(mfd)


def test_unmapped_at_exit_leaves_no_leak(mock_kernel: Kernel) -> None:
    """A child that exits with the mapping still there: exit() drops the reference
    (the fixture's shutdown checks for leaks)."""
    t = Tracee(mock_kernel)
    try:
        mfd = memfd(1)
        file = udmabuf(mock_kernel, [(mfd, 0, PAGE)])
        fd = t.install(file)
        file.put()
        ok(t.send(f"mmap {PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
        assert file.f_count == 2
    finally:
        t.close()
    assert file.released
    os.close(mfd)


def test_injected_calls_are_never_stopped_again(mock_kernel: Kernel) -> None:
    """With a filter that refuses unmarked openat/fcntl/close and traces unmarked
    mmap/munmap, the engine's calls still all pass: none comes back as a stop."""
    t = Tracee(mock_kernel, strict=True)
    try:
        mfd = memfd(2)
        file = udmabuf(mock_kernel, [(mfd, PAGE, PAGE), (mfd, 0, PAGE)])
        fd = t.install(file)
        file.put()
        addr = ok(t.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
        assert read(t, addr, 4) == pattern(2 * PAGE)[PAGE : PAGE + 4]
        assert t.marked_stops == []
        assert t.seccomp_nrs == [9]
        # the scratch page, one openat, one fcntl, one close, two mmaps: none seen
        assert ok(t.send(f"munmap {addr} {2 * PAGE}")) == 0
        os.close(mfd)
    finally:
        t.close()


def test_fork_copies_the_mapping_records(mock_kernel: Kernel, tracee: Tracee) -> None:
    """A forked child inherits the mapping (its record takes a reference of its own,
    dropped when the child exits) and writes through it into the shared buffer."""
    mfd = memfd(2)
    file = udmabuf(mock_kernel, [(mfd, PAGE, PAGE), (mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    seen: list[tuple[int, int]] = []
    tracee.on_fork = lambda mm: seen.append((len(mm.proc.mappings), file.f_count))
    assert tracee.send(f"fork {addr + PAGE} 4") == "child " + pattern(2 * PAGE)[:4].hex()
    assert tracee.pump_line() == "ok 0"
    assert seen == [(1, 3)]  # the tracee's fd, its mapping, the child's mapping
    assert os.pread(mfd, 6, 0) == b"forked"
    assert file.f_count == 2  # the child's exit dropped its record
    assert ok(tracee.send(f"munmap {addr} {2 * PAGE}")) == 0
    assert file.f_count == 1
    os.close(mfd)


def test_raw_arguments_get_the_errnos_of_real_linux(mock_kernel: Kernel, tracee: Tracee) -> None:
    """The cases of ``probe_mmap_errors.py`` against its golden from real Linux 7.2."""
    from probe_mmap_errors import CASES

    golden = Path(__file__).with_name("probe_mmap_errors.golden").read_text().split("\n")
    want = dict(line.split() for line in golden if line)
    mfd = memfd(2)
    file = udmabuf(mock_kernel, [(mfd, 0, 2 * PAGE)])
    fd = tracee.install(file)
    file.put()
    got = {}
    for name, length, prot, flags, off, addr in CASES:
        answer = tracee.send(f"mmap {length} {prot} {flags} {fd} {off} {addr}")
        kind, _, value = answer.partition(" ")
        if kind == "ok":
            assert ok(tracee.send(f"munmap {value} {length}")) == 0
            got[name] = "ok"
        else:
            got[name] = errno.errorcode[int(value)]
    assert got == want
    assert tracee.proc.mappings == {}
    assert file.f_count == 1
    os.close(mfd)


def test_revoke_prefers_a_thread_other_than_the_one_being_served(
    mock_kernel: Kernel, tracee: Tracee
) -> None:
    """The thread whose syscall the requester serves would restart it if interrupted:
    another thread of the process does the work when there is one."""
    mfd = memfd(1)
    file = udmabuf(mock_kernel, [(mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    mp = tracee.proc.mappings[addr]
    assert isinstance(mp, TraceeMapping)
    assert tracee.mm.revoke(mp, True, avoid=None) == tracee.pid  # the main thread first
    assert tracee.mm.revoke(mp, False, avoid=None) == tracee.pid
    assert ok(tracee.send("idle")) == 2
    used = tracee.mm.revoke(mp, True, avoid=tracee.pid)
    assert used != tracee.pid and mp.zapped
    assert tracee.mm.revoke(mp, False, avoid=tracee.pid) == used
    assert read(tracee, addr, 4) == pattern(PAGE)[:4]
    assert ok(tracee.send(f"munmap {addr} {PAGE}")) == 0
    os.close(mfd)


def test_zap_at_a_pending_seccomp_stop_reissues_the_stopped_call(
    mock_kernel: Kernel, tracee: Tracee
) -> None:
    """A thread already stopped at the entry of a traced call (not yet reaped) does the
    work: its call is replaced by the injected ones, then issued again from its own
    instruction and served as usual."""
    import time

    from mockkernel.supervisor.mmap import _task_state

    mfd = memfd(2)
    file = udmabuf(mock_kernel, [(mfd, PAGE, PAGE), (mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    mp = tracee.proc.mappings[addr]
    os.write(tracee._in, f"mmap {PAGE} {PROT_RW} {MAP_SHARED} {fd} {PAGE}\n".encode())
    while _task_state(tracee.pid) != "t":  # stopped at the second mmap's seccomp stop
        time.sleep(0.001)
    mp.zap()
    assert mp.zapped
    second = int(tracee.pump_line().split()[1])
    assert read(tracee, second, 4) == pattern(2 * PAGE)[:4]
    # the loop saw the first map and the second one issued again (its first stop did
    # the zap, out of the loop's sight)
    assert tracee.seccomp_nrs.count(9) == 2
    mp.restore()
    assert read(tracee, addr, 4) == pattern(2 * PAGE)[PAGE : PAGE + 4]
    assert ok(tracee.send(f"munmap {second} {PAGE}")) == 0
    assert ok(tracee.send(f"munmap {addr} {2 * PAGE}")) == 0
    os.close(mfd)


def test_populate_and_the_trace(mock_kernel: Kernel, tracee: Tracee) -> None:
    """MAP_POPULATE over several pieces maps the same bytes; the trace shows one
    ``mm.mmap`` and, for a partial munmap, ``mm.munmap`` with the length unmapped."""
    mfd = memfd(4)
    items = [(mfd, 3 * PAGE, PAGE), (mfd, PAGE, PAGE)]
    file = udmabuf(mock_kernel, items)
    fd = tracee.install(file)
    file.put()
    with mock_kernel.tracer.capture() as events:
        addr = ok(tracee.send(f"mmap {2 * PAGE} {PROT_RW} {MAP_SHARED | 0x8000} {fd} 0"))
        src = pattern(4 * PAGE)
        assert read(tracee, addr, 2 * PAGE) == src[3 * PAGE : 4 * PAGE] + src[PAGE : 2 * PAGE]
        assert ok(tracee.send(f"munmap {addr + PAGE} {PAGE}")) == 0
        assert ok(tracee.send(f"munmap {addr} {PAGE}")) == 0
    mm = [
        (e["event"], e.get("length"), e.get("pid")) for e in events if e["event"].startswith("mm.")
    ]
    pid = tracee.proc.pid
    assert mm == [("mm.mmap", 2 * PAGE, pid), ("mm.munmap", PAGE, pid), ("mm.munmap", PAGE, pid)]
    os.close(mfd)


def _wait_blocked_in_read(pid: int) -> None:
    """Until thread ``pid`` sleeps inside ``read`` (``/proc/<pid>/syscall`` starts with
    its number, 0): the child answers a command before it blocks in the next read."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/syscall") as f:
                if f.read().split(" ", 1)[0] == "0":
                    return
        except OSError:
            pass
        time.sleep(0.001)
    raise AssertionError(f"thread {pid} never blocked in read")


@pytest.mark.parametrize("answer", [None, 0])
def test_a_served_thread_interrupted_for_a_zap_is_parked_until_answered(
    mock_kernel: Kernel, tracee: Tracee, answer: int | None
) -> None:
    """The only thread, blocked in the syscall being "served" (here its ``read`` of
    stdin), is interrupted to zap, then kept stopped; ``unpark(tid, None)`` issues
    the read again, ``unpark(tid, 0)`` answers it (EOF: the child ends)."""
    mfd = memfd(1)
    file = udmabuf(mock_kernel, [(mfd, 0, PAGE)])
    fd = tracee.install(file)
    file.put()
    addr = ok(tracee.send(f"mmap {PAGE} {PROT_RW} {MAP_SHARED} {fd} 0"))
    mp = tracee.proc.mappings[addr]
    assert isinstance(mp, TraceeMapping)
    work = tracee.work
    work.park_served = True
    _wait_blocked_in_read(tracee.pid)  # (else the zap finds it running, not served)
    assert tracee.mm.revoke(mp, True, avoid=tracee.pid) == tracee.pid
    assert mp.zapped and list(work.parked) == [tracee.pid]
    assert tracee.mm.revoke(mp, False, avoid=tracee.pid) == tracee.pid  # a held stop...
    assert list(work.parked) == [tracee.pid]  # ...is no longer interrupted: still parked
    assert work.unpark(tracee.pid, answer)
    assert not work.unpark(tracee.pid, answer)
    if answer is None:
        assert read(tracee, addr, 4) == pattern(PAGE)[:4]
        assert ok(tracee.send(f"munmap {addr} {PAGE}")) == 0
    else:
        while tracee.exit_event is None:
            tracee.step()
        assert tracee.exit_event.kind is pt.Stop.EXITED and tracee.exit_event.code == 0
    os.close(mfd)
