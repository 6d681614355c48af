"""ptrace for the supervisor: requests, stop decoding, and syscalls run inside a tracee.

The supervisor is the tracer of every supervised task (``PTRACE_SEIZE`` before exec
with :data:`DEFAULT_OPTIONS`).  Linux demands that every ptrace request comes from
the one OS thread that attached (the *tracer thread*): call everything here on it.

API (x86-64 only):

- ``ptrace(request, tid, addr=0, data=0) -> int``: the raw call; ``OSError`` with
  the errno (``ProcessLookupError`` for ``ESRCH``: the tracee is gone or not stopped).
- ``seize``, ``cont``, ``syscall``, ``singlestep``, ``listen``, ``interrupt``,
  ``detach``, ``geteventmsg``, ``getregs``/``setregs`` (:class:`UserRegs`, byte-exact
  ``struct user_regs_struct``), ``getsiginfo`` (:class:`Siginfo`).
- ``wait_event(pid=-1, nohang=False) -> Event | None``: ``waitpid(..., __WALL)`` and the
  status decoded into a :class:`Event` of one :class:`Stop` kind.
- :class:`Injection`: at a ptrace stop of a thread, run syscalls *in that thread*
  (``call(nr, *args) -> int``, ``-errno`` on failure), then ``finish(result)`` puts the
  thread back: with ``result`` the interrupted syscall returns it; with ``None`` the
  thread resumes where it was (a syscall stopped at entry is issued again).
  :func:`inject_syscall` is the one-call form.
- The marker: every injected syscall carries :data:`INJECT_MARK` in the high 32 bits
  of one argument the real kernel ignores (:func:`mark_arg`: ``fd`` for ``mmap``,
  which the kernel reads as an ``unsigned int``; the unused sixth argument for every
  other call).  The seccomp filter must ``ALLOW`` a call whose word at
  :func:`mark_word_offset` in ``struct seccomp_data`` equals :data:`INJECT_MARK`,
  before anything else: after a tracer changes a syscall seccomp checks it again, and
  a user notification raised by the very thread the tracer is waiting on deadlocks.

How a call runs: the thread must have stopped at or after a ``syscall`` instruction
(a seccomp or syscall stop: ``rip`` is just past it), or the caller names one
(``syscall_ip``: the address of any ``0f 05`` in the process, e.g. remembered from an
earlier stop; needed at an interrupt or signal stop).  At a syscall-entry stop the
first call *replaces* the stopped syscall (``orig_rax`` and the arguments are
rewritten, ``PTRACE_SYSCALL`` runs it to its exit stop: one stop).  Every further call
points ``rip`` at the ``syscall`` instruction and single-steps it (one stop: the step
trap is reported at syscall exit).  Signals that arrive meanwhile are held back and
handed to the caller by :meth:`Injection.finish`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import errno
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_OPTIONS",
    "INJECT_MARK",
    "PTRACE_CONT",
    "PTRACE_DETACH",
    "PTRACE_EVENT_CLONE",
    "PTRACE_EVENT_EXEC",
    "PTRACE_EVENT_EXIT",
    "PTRACE_EVENT_FORK",
    "PTRACE_EVENT_SECCOMP",
    "PTRACE_EVENT_STOP",
    "PTRACE_EVENT_VFORK",
    "PTRACE_EVENT_VFORK_DONE",
    "PTRACE_GETEVENTMSG",
    "PTRACE_GETREGS",
    "PTRACE_GETSIGINFO",
    "PTRACE_INTERRUPT",
    "PTRACE_LISTEN",
    "PTRACE_O_EXITKILL",
    "PTRACE_O_TRACECLONE",
    "PTRACE_O_TRACEEXEC",
    "PTRACE_O_TRACEEXIT",
    "PTRACE_O_TRACEFORK",
    "PTRACE_O_TRACESECCOMP",
    "PTRACE_O_TRACESYSGOOD",
    "PTRACE_O_TRACEVFORK",
    "PTRACE_O_TRACEVFORKDONE",
    "PTRACE_SEIZE",
    "PTRACE_SETOPTIONS",
    "PTRACE_SETREGS",
    "PTRACE_SINGLESTEP",
    "PTRACE_SYSCALL",
    "SYSCALL_INSN",
    "TREE_OPTIONS",
    "Event",
    "Injection",
    "Siginfo",
    "Stop",
    "TraceeGone",
    "UserRegs",
    "cont",
    "detach",
    "event_message",
    "geteventmsg",
    "getregs",
    "getsiginfo",
    "inject_syscall",
    "interrupt",
    "listen",
    "mark_arg",
    "mark_args",
    "mark_word_offset",
    "ptrace",
    "seize",
    "setregs",
    "singlestep",
    "syscall",
    "wait_event",
]

# -- include/uapi/linux/ptrace.h ---------------------------------------------------------
PTRACE_CONT: Final = 7
PTRACE_SINGLESTEP: Final = 9
PTRACE_GETREGS: Final = 12
PTRACE_SETREGS: Final = 13
PTRACE_DETACH: Final = 17
PTRACE_SYSCALL: Final = 24
PTRACE_SETOPTIONS: Final = 0x4200
PTRACE_GETEVENTMSG: Final = 0x4201
PTRACE_GETSIGINFO: Final = 0x4202
PTRACE_SEIZE: Final = 0x4206
PTRACE_INTERRUPT: Final = 0x4207
PTRACE_LISTEN: Final = 0x4208

PTRACE_EVENT_FORK: Final = 1
PTRACE_EVENT_VFORK: Final = 2
PTRACE_EVENT_CLONE: Final = 3
PTRACE_EVENT_EXEC: Final = 4
PTRACE_EVENT_VFORK_DONE: Final = 5
PTRACE_EVENT_EXIT: Final = 6
PTRACE_EVENT_SECCOMP: Final = 7
PTRACE_EVENT_STOP: Final = 128

PTRACE_O_TRACESYSGOOD: Final = 1
PTRACE_O_TRACEFORK: Final = 1 << PTRACE_EVENT_FORK
PTRACE_O_TRACEVFORK: Final = 1 << PTRACE_EVENT_VFORK
PTRACE_O_TRACECLONE: Final = 1 << PTRACE_EVENT_CLONE
PTRACE_O_TRACEEXEC: Final = 1 << PTRACE_EVENT_EXEC
PTRACE_O_TRACEVFORKDONE: Final = 1 << PTRACE_EVENT_VFORK_DONE
PTRACE_O_TRACEEXIT: Final = 1 << PTRACE_EVENT_EXIT
PTRACE_O_TRACESECCOMP: Final = 1 << PTRACE_EVENT_SECCOMP
PTRACE_O_EXITKILL: Final = 1 << 20

#: what the supervisor seizes with: every new task traced, seccomp stops, and syscall
#: stops told apart from a real ``SIGTRAP`` (``SIGTRAP | 0x80``)
DEFAULT_OPTIONS: Final = (
    PTRACE_O_TRACESYSGOOD
    | PTRACE_O_TRACESECCOMP
    | PTRACE_O_TRACECLONE
    | PTRACE_O_TRACEFORK
    | PTRACE_O_TRACEVFORK
    | PTRACE_O_TRACEEXEC
    | PTRACE_O_EXITKILL
)

#: what a supervised tree is seized with: also a stop at each task's exit, before its
#: files are closed (``PTRACE_O_TRACEEXIT``), where the tracer does the mock exit
TREE_OPTIONS: Final = DEFAULT_OPTIONS | PTRACE_O_TRACEEXIT

__WALL: Final = 0x40000000
_SYS_ptrace: Final = 101
_SYS_tgkill: Final = 234
_SYS_mmap: Final = 9
_SIGTRAP: Final = int(signal.SIGTRAP)
#: the bytes of x86-64 ``syscall``
SYSCALL_INSN: Final = b"\x0f\x05"

# -- the marker --------------------------------------------------------------------------
#: the high 32 bits of :func:`mark_arg` in every injected syscall ("mkIJ"): never 0 or
#: 0xffffffff, the high halves a sign- or zero-extended ``int`` argument has
INJECT_MARK: Final = 0x6D6B494A
_SECCOMP_DATA_ARGS: Final = 16  # offsetof(struct seccomp_data, args)


def mark_arg(nr: int) -> int:
    """The argument whose high 32 bits carry :data:`INJECT_MARK` in syscall ``nr``.

    ``mmap`` uses all six: its ``fd`` (argument 4) is read as an ``unsigned int``
    (``fget(fd)``) and ignored with ``MAP_ANONYMOUS``.  Every other call the
    supervisor injects takes at most five, so the sixth (``r9``) is free.
    """
    return 4 if nr == _SYS_mmap else 5


def mark_word_offset(nr: int) -> int:
    """Byte offset in ``struct seccomp_data`` of the 32-bit word equal to the marker."""
    return _SECCOMP_DATA_ARGS + 8 * mark_arg(nr) + 4  # little endian: the high half


def mark_args(nr: int, args: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
    """``args`` padded to six unsigned 64-bit values, with the marker in place.

    ``ValueError`` for a sixth argument of a call other than ``mmap`` (its register
    carries the marker) or a value that does not fit in 64 bits.
    """
    if len(args) > 6 or (len(args) == 6 and nr != _SYS_mmap):
        raise ValueError(f"cannot inject syscall {nr} with {len(args)} arguments")
    full = [a & 0xFFFFFFFFFFFFFFFF for a in args] + [0] * (6 - len(args))
    if any(not -(1 << 63) <= a < (1 << 64) for a in args):
        raise ValueError(f"syscall argument out of range: {args}")
    i = mark_arg(nr)
    full[i] = (full[i] & 0xFFFFFFFF) | (INJECT_MARK << 32)
    return full[0], full[1], full[2], full[3], full[4], full[5]


# -- the raw call ------------------------------------------------------------------------
class _Libc:
    """libc's ``syscall`` (loaded once, on first use; no import-time side effects):
    ``fn`` variadic, ``ptrace_fn`` typed for ptrace (no argument objects per call)."""

    fn: Callable[..., int] | None = None
    ptrace_fn: Callable[..., int] | None = None

    @classmethod
    def syscall(cls) -> Callable[..., int]:
        if cls.fn is None:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            fn: Callable[..., int] = libc.syscall
            cls.fn = fn
            typed = libc["syscall"]  # a function object of its own
            typed.restype = ctypes.c_long
            typed.argtypes = [ctypes.c_long] * 5
            cls.ptrace_fn = typed
        return cls.fn


def ptrace(request: int, tid: int, addr: int = 0, data: int = 0) -> int:
    """``ptrace(request, tid, addr, data)`` as the raw syscall; ``OSError`` on failure."""
    fn = _Libc.ptrace_fn
    if fn is None:
        _Libc.syscall()
        fn = _Libc.ptrace_fn
        assert fn is not None
    ret: int = fn(_SYS_ptrace, request, tid, addr, data)
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request:#x}, {tid}): {os.strerror(err)}")
    return ret


class UserRegs(ctypes.Structure):
    """``struct user_regs_struct`` (arch/x86/include/asm/user_64.h), 27 x 8 bytes."""

    _fields_ = [
        (name, ctypes.c_ulong)
        for name in [
            "r15",
            "r14",
            "r13",
            "r12",
            "rbp",
            "rbx",
            "r11",
            "r10",
            "r9",
            "r8",
            "rax",
            "rcx",
            "rdx",
            "rsi",
            "rdi",
            "orig_rax",
            "rip",
            "cs",
            "eflags",
            "rsp",
            "ss",
            "fs_base",
            "gs_base",
            "ds",
            "es",
            "fs",
            "gs",
        ]
    ]
    r15: int
    r14: int
    r13: int
    r12: int
    rbp: int
    rbx: int
    r11: int
    r10: int
    r9: int
    r8: int
    rax: int
    rcx: int
    rdx: int
    rsi: int
    rdi: int
    orig_rax: int
    rip: int
    cs: int
    eflags: int
    rsp: int
    ss: int
    fs_base: int
    gs_base: int
    ds: int
    es: int
    fs: int
    gs: int

    def copy(self) -> UserRegs:
        out = UserRegs()
        ctypes.memmove(ctypes.byref(out), ctypes.byref(self), ctypes.sizeof(UserRegs))
        return out

    @property
    def result(self) -> int:
        """``rax`` as the signed value a syscall returned (``-errno`` on failure)."""
        return _signed(self.rax)

    @property
    def nr(self) -> int:
        """``orig_rax`` signed: the syscall number at a syscall stop, -1 for none."""
        return _signed(self.orig_rax)


class Siginfo(ctypes.Structure):
    """The head of ``siginfo_t`` (128 bytes); the union is kept raw."""

    _fields_ = [
        ("si_signo", ctypes.c_int),
        ("si_errno", ctypes.c_int),
        ("si_code", ctypes.c_int),
        ("_pad", ctypes.c_int),
        ("_sifields", ctypes.c_ubyte * 112),
    ]
    si_signo: int
    si_errno: int
    si_code: int


def _signed(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def seize(pid: int, options: int = DEFAULT_OPTIONS) -> None:
    """``PTRACE_SEIZE``: trace ``pid`` without stopping it."""
    ptrace(PTRACE_SEIZE, pid, 0, options)


def cont(tid: int, sig: int = 0) -> None:
    """``PTRACE_CONT``, delivering ``sig`` (0: none)."""
    ptrace(PTRACE_CONT, tid, 0, sig)


def syscall(tid: int, sig: int = 0) -> None:
    """``PTRACE_SYSCALL``: resume until the next syscall entry or exit."""
    ptrace(PTRACE_SYSCALL, tid, 0, sig)


def singlestep(tid: int, sig: int = 0) -> None:
    """``PTRACE_SINGLESTEP``: resume for one instruction."""
    ptrace(PTRACE_SINGLESTEP, tid, 0, sig)


def listen(tid: int) -> None:
    """``PTRACE_LISTEN``: leave a group-stopped tracee stopped but let it be woken."""
    ptrace(PTRACE_LISTEN, tid)


def interrupt(tid: int) -> None:
    """``PTRACE_INTERRUPT``: a running tracee stops (``Stop.EVENT``, ``PTRACE_EVENT_STOP``).

    A thread blocked in an interruptible syscall (a seccomp user notification not yet
    received with ``SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV``) leaves it: the stop shows
    ``rax`` = ``-ERESTARTSYS``-family and the call is restarted on resume.
    """
    ptrace(PTRACE_INTERRUPT, tid)


def detach(tid: int, sig: int = 0) -> None:
    ptrace(PTRACE_DETACH, tid, 0, sig)


def geteventmsg(tid: int) -> int:
    """``PTRACE_GETEVENTMSG``: new tid for clone/fork/vfork, former tid for exec,
    ``SECCOMP_RET_DATA`` for a seccomp stop, exit status for ``PTRACE_EVENT_EXIT``."""
    msg = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(msg))
    return msg.value


def event_message(tid: int, event: int) -> int:
    """:func:`geteventmsg` of the ``PTRACE_EVENT_*`` stop ``event`` that ``tid`` is in,
    checked: ``ProcessLookupError`` when ``tid`` has left that stop.

    A SIGKILL wakes a task out of any ptrace stop; on its way out it may stop again in
    ``PTRACE_EVENT_EXIT``, and ``do_exit`` sets the message to the exit status (9 for a
    SIGKILL) first -- so a bare read after a kill takes the exit status for a new tid
    (a fork's) or a former one (an exec's).  The stop's siginfo, read after the
    message, says whether the message was still the event's: ``SIGTRAP`` with the
    event in ``si_code``'s second byte.
    """
    msg = geteventmsg(tid)
    info = getsiginfo(tid)
    if info.si_signo != signal.SIGTRAP or info.si_code >> 8 != event:
        raise ProcessLookupError(errno.ESRCH, f"task {tid} left its ptrace event stop {event}")
    return msg


def getregs(tid: int) -> UserRegs:
    regs = UserRegs()
    ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
    return regs


def setregs(tid: int, regs: UserRegs) -> None:
    ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(regs))


def getsiginfo(tid: int) -> Siginfo:
    info = Siginfo()
    ptrace(PTRACE_GETSIGINFO, tid, 0, ctypes.addressof(info))
    return info


# -- stops -------------------------------------------------------------------------------
class Stop(enum.Enum):
    """What a ``waitpid`` status says happened to a tracee."""

    SYSCALL = "syscall"  # syscall entry or exit stop (needs PTRACE_O_TRACESYSGOOD)
    SECCOMP = "seccomp"  # PTRACE_EVENT_SECCOMP: at entry of a call the filter TRACEd
    EVENT = "event"  # another PTRACE_EVENT_* stop (clone, exec, exit, interrupt, ...)
    GROUP_STOP = "group-stop"  # PTRACE_EVENT_STOP with a stopping signal (SEIZE)
    SIGNAL = "signal"  # signal-delivery-stop: ``sig`` is about to be delivered
    EXITED = "exited"
    KILLED = "killed"


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded ``waitpid`` status of tracee ``tid``.

    ``sig``: the stop signal (``SIGTRAP`` for syscall and event stops), the signal
    to be delivered, or the killing signal; ``event``: the ``PTRACE_EVENT_*`` number
    (0 if none); ``code``: the exit code of ``EXITED``.
    """

    tid: int
    kind: Stop
    sig: int = 0
    event: int = 0
    code: int = 0
    status: int = 0

    @property
    def stopped(self) -> bool:
        return self.kind not in (Stop.EXITED, Stop.KILLED)


def decode_status(tid: int, status: int) -> Event:
    """The :class:`Event` for a raw ``waitpid`` status of ``tid``."""
    if os.WIFEXITED(status):
        return Event(tid, Stop.EXITED, code=os.WEXITSTATUS(status), status=status)
    if os.WIFSIGNALED(status):
        return Event(tid, Stop.KILLED, sig=os.WTERMSIG(status), status=status)
    sig = os.WSTOPSIG(status)
    event = (status >> 16) & 0xFF
    if sig == _SIGTRAP | 0x80:
        return Event(tid, Stop.SYSCALL, sig=_SIGTRAP, status=status)
    if event == PTRACE_EVENT_SECCOMP:
        return Event(tid, Stop.SECCOMP, sig=sig, event=event, status=status)
    if event == PTRACE_EVENT_STOP and sig in _STOP_SIGNALS:
        return Event(tid, Stop.GROUP_STOP, sig=sig, event=event, status=status)
    if event:
        return Event(tid, Stop.EVENT, sig=sig, event=event, status=status)
    return Event(tid, Stop.SIGNAL, sig=sig, status=status)


_STOP_SIGNALS: Final = frozenset(
    int(s) for s in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
)


def wait_event(pid: int = -1, nohang: bool = False) -> Event | None:
    """``waitpid(pid, __WALL)`` decoded; ``None`` with ``nohang`` and nothing to report.

    ``ChildProcessError`` when there is no tracee or child to wait for.
    """
    tid, status = os.waitpid(pid, __WALL | (os.WNOHANG if nohang else 0))
    if tid == 0:
        return None
    return decode_status(tid, status)


# -- injection ---------------------------------------------------------------------------
class TraceeGone(ProcessLookupError):
    """The tracee exited, was killed or began to exit (its ``PTRACE_EVENT_EXIT`` stop,
    ``event``: the tracer's to handle) while a syscall was being injected."""

    def __init__(self, event: Event) -> None:
        super().__init__(f"tracee {event.tid} went away during an injected syscall: {event}")
        self.event = event


def _read_mem(pid: int, addr: int, n: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
        f.seek(addr)
        return f.read(n)


class Injection:
    """Syscalls run by stopped tracee thread ``tid`` on the tracer's behalf.

    Create it at a ptrace stop of ``tid`` (on the tracer thread), :meth:`call` as
    often as needed, then :meth:`finish` once and resume the thread (``cont``) with
    the signal ``finish`` returns.  ``syscall_ip`` is the address of a ``syscall``
    instruction in the tracee; by default the one just before ``rip``, which is
    right at a seccomp or syscall stop.  ``at_entry``: the thread is stopped at a
    syscall's entry (a seccomp stop or a syscall-entry stop), so the first call
    replaces that syscall; ``None`` decides from the registers (``rax`` is
    ``-ENOSYS`` at every syscall entry).
    """

    def __init__(self, tid: int, syscall_ip: int | None = None, at_entry: bool | None = None):
        self.tid = tid
        self.saved = getregs(tid)
        if syscall_ip is None:
            syscall_ip = self.saved.rip - 2
        self.syscall_ip = syscall_ip
        if at_entry is None:
            at_entry = self.saved.result == -38 and self.saved.nr >= 0  # -ENOSYS
        self.at_entry = at_entry
        self.calls = 0
        #: signals that arrived during the injected calls, not yet delivered
        self.held: list[int] = []
        self._done = False

    def check_insn(self) -> None:
        """``ValueError`` unless ``syscall_ip`` holds a ``syscall`` instruction."""
        got = _read_mem(self.tid, self.syscall_ip, 2)
        if got != SYSCALL_INSN:
            raise ValueError(f"no syscall instruction at {self.syscall_ip:#x}: {got.hex()}")

    def _wait(self) -> Event:
        while True:
            ev = wait_event(self.tid)
            assert ev is not None
            if not ev.stopped or ev.event == PTRACE_EVENT_EXIT:
                raise TraceeGone(ev)  # dead, or dying: its exit stop is the tracer's
            return ev

    def call(self, nr: int, *args: int) -> int:
        """Run syscall ``nr(*args)`` in the thread; its result (``-errno`` on failure).

        The marker is added (:func:`mark_args`).  ``TraceeGone`` if the thread dies.
        """
        if self._done:
            raise RuntimeError("Injection already finished")
        a = mark_args(nr, args)
        regs = self.saved.copy()
        regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9 = a
        tid = self.tid
        if self.at_entry and self.calls == 0:
            # the stopped syscall becomes this one: seccomp re-checks it (the marker
            # allows it) and PTRACE_SYSCALL stops at its exit
            regs.orig_rax = nr
            setregs(tid, regs)
            sig = 0
            while True:
                syscall(tid, sig)
                ev = self._wait()
                if ev.kind is Stop.SYSCALL or (ev.kind is Stop.SIGNAL and ev.sig == _SIGTRAP):
                    break
                if ev.kind is Stop.SIGNAL:
                    self.held.append(ev.sig)
        else:
            regs.rip = self.syscall_ip
            regs.rax = nr
            regs.orig_rax = 0xFFFFFFFFFFFFFFFF  # no syscall to restart at this stop
            setregs(tid, regs)
            after = self.syscall_ip + 2
            while True:
                singlestep(tid)
                ev = self._wait()
                if ev.kind is Stop.SIGNAL and ev.sig != _SIGTRAP:
                    self.held.append(ev.sig)
                    continue
                if ev.kind in (Stop.SIGNAL, Stop.SYSCALL):
                    done = getregs(tid)
                    if done.rip == after:
                        self.calls += 1
                        return done.result
                # a step trap before the instruction ran (the exit of a skipped
                # syscall), an event or group stop: step again
        self.calls += 1
        return getregs(tid).result

    def finish(self, result: int | None = None, *, requeue: bool = False) -> int:
        """Put the thread back; returns the signal to deliver when resuming it (0: none).

        ``result`` given: the syscall the thread was stopped in returns ``result``
        (at an entry stop with no call made, the syscall is skipped).  ``None``: the
        registers are restored; a thread stopped at a syscall's entry issues that
        syscall again once resumed (seccomp sees it anew).  Held signals beyond the
        first (all of them with ``requeue``: the caller will not resume the thread
        itself) are queued again with ``tgkill``.
        """
        if self._done:
            raise RuntimeError("Injection already finished")
        self._done = True
        regs = self.saved.copy()
        if result is not None:
            regs.rax = result & 0xFFFFFFFFFFFFFFFF
            regs.orig_rax = 0xFFFFFFFFFFFFFFFF  # skip it (entry) / no restart (exit)
        elif self.at_entry and self.calls:
            regs.rip = self.saved.rip - 2  # the stopped syscall's own instruction
            regs.rax = self.saved.orig_rax
            regs.orig_rax = 0xFFFFFFFFFFFFFFFF
        if result is not None or self.calls:
            setregs(self.tid, regs)
        sig = self.held[0] if self.held and not requeue else 0
        again = self.held[1:] if sig else self.held
        if again:
            tgid = _tgid(self.tid)
            tgkill = _Libc.syscall()
            for s in again:
                tgkill(ctypes.c_long(_SYS_tgkill), tgid, self.tid, s)
        return sig


def _tgid(tid: int) -> int:
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
    raise ProcessLookupError(tid)


def inject_syscall(tid: int, nr: int, *args: int, syscall_ip: int | None = None) -> int:
    """Run one syscall in stopped thread ``tid`` and put it back as it was.

    The one-call form of :class:`Injection` (``finish(None)``): a thread stopped at
    a syscall's entry issues that syscall again when resumed.  A held signal is
    queued again with ``tgkill``.  Returns the result (``-errno`` on failure).
    """
    inj = Injection(tid, syscall_ip)
    try:
        return inj.call(nr, *args)
    finally:
        sig = inj.finish()
        if sig:
            _Libc.syscall()(ctypes.c_long(_SYS_tgkill), _tgid(tid), tid, sig)
