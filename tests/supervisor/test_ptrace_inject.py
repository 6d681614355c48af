"""supervisor/ptrace.py: the register layout, stop decoding, the marker, and injection.

Injection runs in the traced child of ``inject_harness`` (a Python process whose
filter ``TRACE``s ``mmap`` of an fd): the tests stop it there and inject by hand.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inject_harness import Tracee

from mockkernel import Kernel
from mockkernel.supervisor import ptrace as pt

MAP_SHARED = 1
PAGE = os.sysconf("SC_PAGE_SIZE")
SIGTRAP = int(signal.SIGTRAP)


# -- layout and decoding -------------------------------------------------------------------
def test_user_regs_matches_sys_user_h(tmp_path: Path) -> None:
    fields = [name for name, _ in pt.UserRegs._fields_]
    assert ctypes.sizeof(pt.UserRegs) == 27 * 8 == 216
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler: sizes checked, offsets against <sys/user.h> not")
    src = tmp_path / "regs.c"
    lines = [f'printf("{f} %zu\\n", offsetof(struct user_regs_struct, {f}));' for f in fields]
    src.write_text(
        "#include <stddef.h>\n#include <stdio.h>\n#include <sys/user.h>\nint main(void){"
        + "".join(lines)
        + 'printf("size %zu\\n", sizeof(struct user_regs_struct));return 0;}\n'
    )
    subprocess.run([cc, "-o", str(tmp_path / "regs"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "regs")], check=True, capture_output=True, text=True)
    want = {f: getattr(pt.UserRegs, f).offset for f in fields} | {"size": 216}
    got = {k: int(v) for k, v in (line.split() for line in out.stdout.splitlines())}
    assert got == want


def stopped(sig: int, event: int = 0) -> int:
    return ((event << 16) | (sig << 8)) | 0x7F


@pytest.mark.parametrize(
    ("status", "kind", "sig", "event"),
    [
        (stopped(SIGTRAP | 0x80), pt.Stop.SYSCALL, SIGTRAP, 0),
        (stopped(SIGTRAP, pt.PTRACE_EVENT_SECCOMP), pt.Stop.SECCOMP, SIGTRAP, 7),
        (stopped(SIGTRAP, pt.PTRACE_EVENT_CLONE), pt.Stop.EVENT, SIGTRAP, 3),
        (stopped(SIGTRAP, pt.PTRACE_EVENT_STOP), pt.Stop.EVENT, SIGTRAP, 128),
        (stopped(int(signal.SIGSTOP), pt.PTRACE_EVENT_STOP), pt.Stop.GROUP_STOP, 19, 128),
        (stopped(int(signal.SIGTTIN), pt.PTRACE_EVENT_STOP), pt.Stop.GROUP_STOP, 21, 128),
        (stopped(int(signal.SIGUSR1)), pt.Stop.SIGNAL, int(signal.SIGUSR1), 0),
        (stopped(SIGTRAP), pt.Stop.SIGNAL, SIGTRAP, 0),
        (int(signal.SIGKILL), pt.Stop.KILLED, 9, 0),
    ],
)
def test_decode_status(status: int, kind: pt.Stop, sig: int, event: int) -> None:
    ev = pt.decode_status(42, status)
    assert (ev.tid, ev.kind, ev.sig, ev.event) == (42, kind, sig, event)
    assert ev.stopped == (kind is not pt.Stop.KILLED)


@given(st.integers(0, 255))
def test_decode_exit(code: int) -> None:
    ev = pt.decode_status(7, code << 8)
    assert ev.kind is pt.Stop.EXITED and ev.code == code and not ev.stopped


# -- the marker ----------------------------------------------------------------------------
@given(
    st.integers(0, 450),
    st.lists(st.integers(-(1 << 63), (1 << 64) - 1), max_size=6),
)
def test_mark_args_sets_only_the_high_half_of_the_marker_argument(nr: int, args: list[int]) -> None:
    if len(args) == 6 and nr != 9:
        with pytest.raises(ValueError):
            pt.mark_args(nr, tuple(args))
        return
    out = pt.mark_args(nr, tuple(args))
    full = [a & (1 << 64) - 1 for a in args] + [0] * (6 - len(args))
    i = pt.mark_arg(nr)
    assert out[i] >> 32 == pt.INJECT_MARK
    assert out[i] & 0xFFFFFFFF == full[i] & 0xFFFFFFFF
    assert [v for j, v in enumerate(out) if j != i] == [v for j, v in enumerate(full) if j != i]
    assert pt.mark_word_offset(nr) == 16 + 8 * i + 4


def test_mark_is_never_an_int_high_half() -> None:
    assert pt.INJECT_MARK not in (0, 0xFFFFFFFF)
    assert pt.mark_arg(9) == 4 and pt.mark_arg(257) == 5


def test_the_real_kernel_ignores_the_marker_bits() -> None:
    """The probe also runs on real Linux (real-linux/run): the same lines."""
    probe = Path(__file__).with_name("probe_inject_marker.py")
    out = subprocess.run([sys.executable, str(probe)], check=True, capture_output=True, text=True)
    assert out.stdout == Path(__file__).with_name("probe_inject_marker.golden").read_text()


# -- injection -----------------------------------------------------------------------------
@pytest.fixture
def stopped_at_mmap(mock_kernel: Kernel) -> Iterator[tuple[Tracee, int]]:
    """A tracee stopped at the seccomp stop of ``mmap(NULL, PAGE, 3, MAP_SHARED, 1000, 0)``."""
    t = Tracee(mock_kernel)
    try:
        os.write(t._in, f"mmap {PAGE} 3 {MAP_SHARED} 1000 0\n".encode())
        while True:
            ev = pt.wait_event(t.pid)
            assert ev is not None and ev.stopped
            if ev.kind is pt.Stop.SECCOMP and pt.getregs(ev.tid).nr == 9:
                break
            t.handle(ev)
        yield t, ev.tid
    finally:
        t.close()


def test_inject_runs_in_the_tracee_and_sets_the_result(stopped_at_mmap: tuple[Tracee, int]) -> None:
    t, tid = stopped_at_mmap
    before = pt.getregs(tid)
    inj = pt.Injection(tid)
    assert inj.at_entry and inj.syscall_ip == before.rip - 2
    inj.check_insn()
    assert inj.call(39) == t.pid  # getpid, replacing the stopped mmap
    assert inj.call(3, 99999) == -9  # close(99999): -EBADF
    anon = inj.call(9, 0, PAGE, 3, 0x22, -1, 0)
    assert anon > 0
    assert inj.call(11, anon, PAGE) == 0
    assert inj.finish(0x5000) == 0
    after = pt.getregs(tid)
    assert after.rip == before.rip and after.rsp == before.rsp and after.rax == 0x5000
    assert (after.rdi, after.rsi, after.r8) == (before.rdi, before.rsi, before.r8)
    pt.cont(tid)
    assert t.pump_line() == f"ok {0x5000}"


def test_finish_without_result_issues_the_syscall_again(
    stopped_at_mmap: tuple[Tracee, int],
) -> None:
    t, tid = stopped_at_mmap
    before = pt.getregs(tid)
    assert pt.inject_syscall(tid, 39) == t.pid
    pt.cont(tid)
    while True:  # the same mmap stops again at its seccomp stop
        ev = pt.wait_event(t.pid)
        assert ev is not None and ev.stopped
        if ev.kind is pt.Stop.SECCOMP:
            break
        t.handle(ev)
    again = pt.getregs(ev.tid)
    assert (again.nr, again.rdi, again.rsi, again.rdx, again.r10, again.r8, again.r9) == (
        before.nr,
        before.rdi,
        before.rsi,
        before.rdx,
        before.r10,
        before.r8,
        before.r9,
    )
    assert again.rip == before.rip
    pt.Injection(ev.tid).finish(-19)
    pt.cont(ev.tid)
    assert t.pump_line() == "err 19"


def test_a_signal_arriving_during_injection_is_held(stopped_at_mmap: tuple[Tracee, int]) -> None:
    t, tid = stopped_at_mmap
    os.kill(t.pid, signal.SIGUSR1)  # pending: delivered at the next return to user mode
    inj = pt.Injection(tid)
    assert inj.call(39) == t.pid
    assert inj.call(39) == t.pid  # its return to user mode meets the signal: held
    assert inj.call(39) == t.pid
    assert inj.held == [int(signal.SIGUSR1)]
    assert inj.finish(-12) == signal.SIGUSR1
    pt.cont(tid, 0)  # the caller decides: here it is dropped (it would kill the child)
    assert t.pump_line() == "err 12"


def test_ptrace_errors_carry_the_errno() -> None:
    with pytest.raises(ProcessLookupError):
        pt.getregs(os.getpid())  # not our tracee
    with pytest.raises(ProcessLookupError):
        pt.cont(2**22 + 12345)


def other_syscall_insn(pid: int, avoid: int) -> int:
    """The address of a ``syscall`` instruction in ``pid``'s libc other than ``avoid``."""
    with open(f"/proc/{pid}/maps") as f:
        spans = [ln.split() for ln in f if "r-xp" in ln and "libc" in ln]
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for span in spans:
            lo, hi = (int(x, 16) for x in span[0].split("-"))
            mem.seek(lo)
            code = mem.read(hi - lo)
            at = code.find(pt.SYSCALL_INSN)
            while at >= 0:
                if lo + at != avoid:
                    return lo + at
                at = code.find(pt.SYSCALL_INSN, at + 1)
    raise AssertionError("no other syscall instruction in libc")


def test_calls_through_another_syscall_instruction_reissue_from_the_stopped_one(
    stopped_at_mmap: tuple[Tracee, int],
) -> None:
    t, tid = stopped_at_mmap
    before = pt.getregs(tid)
    elsewhere = other_syscall_insn(t.pid, before.rip - 2)
    inj = pt.Injection(tid, syscall_ip=elsewhere)
    assert inj.at_entry
    inj.check_insn()
    assert inj.call(39) == t.pid  # replaces the stopped call
    assert inj.call(39) == t.pid  # runs at `elsewhere`
    assert inj.finish() == 0
    after = pt.getregs(tid)
    assert after.rip == before.rip - 2 and after.rax == before.orig_rax  # issued again
    assert after.rsp == before.rsp
    pt.cont(tid)
    while True:
        ev = pt.wait_event(t.pid)
        assert ev is not None and ev.stopped
        if ev.kind is pt.Stop.SECCOMP:
            break
        t.handle(ev)
    assert pt.getregs(ev.tid).rip == before.rip
    pt.Injection(ev.tid).finish(-19)
    pt.cont(ev.tid)
    assert t.pump_line() == "err 19"
