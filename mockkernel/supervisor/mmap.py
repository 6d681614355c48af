"""mmap of a mock fd in a supervised (traced) process: any layout, laid by injected calls.

The kernel's rules are shared with the in-process path: ``Process.do_mmap`` checks
the call and runs the driver's ``mmap`` op (which fills a ``Vma`` with pieces backed
by real files the kernel holds); only laying the pieces differs.  In-process,
``build_mapping`` lays them in this Python process; here :class:`TraceeMm` lays them
in the tracee, with syscalls injected into the thread stopped at the ``mmap``'s
seccomp stop (``supervisor/ptrace.py``):

1. each backing file is opened *in the tracee*, through ``/proc/<supervisor>/fd/N``
   (the paths written at once into a scratch page the tracee gets on first need);
   the stopped ``mmap`` itself becomes the first of these opens;
2. the first piece is mapped over the whole length (honouring the program's address
   hint, ``MAP_FIXED``, ...), each further piece laid over it with ``MAP_FIXED``;
3. the backing fds are closed again (one ``close_range`` when their numbers are
   contiguous, as they are unless another thread opened files meanwhile): a mapping
   keeps its file, and the process's fd set stays Linux's -- ``/proc/self/fd`` lists
   no fd the program did not open, and ``close_range(3, ~0U)`` takes nothing of the
   supervisor's.  The tracee's ``mmap`` returns the address.  A 4-piece udmabuf of
   four memfds costs 9 calls (one of them the original); a zap or restore opens what
   it maps the same way.

Records: each mapping is a :class:`TraceeMapping` in ``Process.mappings`` (what
``/proc/<pid>/maps`` and ``file_mappings`` see), holding its file reference until
:func:`unmap` (the supervisor calls it for a notified ``munmap``/``mremap`` before it
lets the real call run), :meth:`TraceeMm.exec` or :meth:`TraceeMm.exit`.

Revocation: ``TraceeMapping.zap()``/``restore()`` behave as ``Mapping``'s (access
is ``SIGBUS`` until restored), and ``remap()`` lays moved pages (``mm/gup.py``), from
any thread: the work is queued on
:class:`TracerWork` and run by the tracer thread, which injects into a thread of
the process -- one the tracer loop holds stopped (``TracerWork.held``), one stopped
at a stop not yet reaped, else one it stops with ``PTRACE_INTERRUPT`` (the thread
whose syscall the requester is serving, ``kernel.current_tid``, last).  A thread
interrupted in a blocking syscall (a user notification in progress included)
restarts that syscall afterwards; the supervisor must therefore not use
``SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`` (the thread would never stop: a hang)
and must take ``ENOENT`` from ``NOTIF_SEND`` as "restarted" (the restarted call is
notified and served again) -- or, with ``TracerWork.park_served``, answer it
through ``TracerWork.unpark(tid, result)``: the requester's own thread is then
parked instead of restarted, and its call is served once.

The tracer loop's side of the contract (see :class:`TracerWork`): wake up for
queued work (``fileno()`` readable, or the ``wake`` callback) and call
``work.run_pending()``; take ``work.deferred`` events before waiting again; ``cont``
a ``PTRACE_EVENT_STOP``/``SIGTRAP`` stop it did not ask for; list in ``work.held``
the stops it keeps while running kernel code that may revoke mappings.

API: :class:`TracerWork`; :class:`TraceeMm` (``serve_mmap(tid)`` at an ``mmap``
seccomp stop, ``fork``/``exec``/``exit``, ``revoke``, ``relay``);
:class:`TraceeMapping`; :func:`unmap`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from errno import EACCES, EEXIST, EINVAL, ENOMEM, EOVERFLOW
from typing import TYPE_CHECKING, Final, TypeVar

from ..mm import PAGE_SIZE, Mapping, Piece, page_align
from ..realfd import REAL
from ..syscalls.mmap import trace_mm_mmap
from .ptrace import (
    PTRACE_EVENT_EXIT,
    PTRACE_EVENT_STOP,
    Event,
    Injection,
    Stop,
    cont,
    getregs,
    interrupt,
    setregs,
    wait_event,
)
from .seccomp import WINDOW

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["TraceeMapping", "TraceeMm", "TracerWork", "unmap"]

_T = TypeVar("_T")

# x86-64 syscall numbers and flags (asm/unistd_64.h, asm-generic/mman*.h, fcntl.h)
NR_MMAP: Final = 9
NR_MUNMAP: Final = 11
NR_CLOSE: Final = 3
NR_FCNTL: Final = 72
NR_OPENAT: Final = 257
NR_CLOSE_RANGE: Final = 436
PROT_READ: Final = 1
PROT_WRITE: Final = 2
MAP_PRIVATE: Final = 0x02
MAP_FIXED: Final = 0x10
MAP_ANONYMOUS: Final = 0x20
MAP_POPULATE: Final = 0x8000
MAP_FIXED_NOREPLACE: Final = 0x100000
AT_FDCWD: Final = -100
#: what the pieces keep of the program's flags (the map type and its page behaviour)
_PIECE_FLAGS: Final = 0x0F | 0x2000 | 0x4000 | 0x40000  # MAP_TYPE|LOCKED|NORESERVE|NONBLOCK
#: ``-ERESTARTSYS``, ``-ERESTARTNOINTR``, ``-ERESTARTNOHAND``, ``-ERESTART_RESTARTBLOCK``:
#: ``rax`` of a thread stopped while interrupted out of a blocking syscall
_RESTART_CODES: Final = frozenset((-512, -513, -514, -516))
#: stops a held thread can run injected calls at (then be put back exactly)
_HOLDABLE: Final = frozenset((Stop.SIGNAL, Stop.EVENT, Stop.GROUP_STOP))


class TracerWork:
    """Work that must run on the tracer thread, and what the tracer loop shares with it.

    Every ptrace request must come from the thread that attached.  ``submit(fn)``
    from another thread queues ``fn``, wakes the loop (``fileno()`` turns readable)
    and waits for its result; on the tracer thread it runs ``fn`` at once.
    """

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        #: the tracer thread: the one that created this object
        self.thread = threading.get_ident()
        #: called after a job is queued from another thread: wakes a tracer loop that
        #: blocks in ``waitpid`` rather than polling ``fileno()``
        self.wake = wake
        self._queue: collections.deque[tuple[Callable[[], object], Future[object]]] = (
            collections.deque()
        )
        self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        #: events a queued job waited out of the loop's way (exits, foreign stops):
        #: the loop handles these before it waits again
        self.deferred: collections.deque[Event] = collections.deque()
        #: stops the loop is holding (not yet resumed) while it runs kernel code, by tid
        self.held: dict[int, Event] = {}
        #: opt-in (the front-end must then call :meth:`unpark`): a thread interrupted
        #: out of the very syscall the requester serves is *parked* -- kept stopped,
        #: its syscall neither restarted nor answered -- until :meth:`unpark` gives it
        #: the requester's answer.  Off: that syscall restarts (it is served twice).
        self.park_served = False
        #: parked threads -> the signal to deliver when they resume
        self.parked: dict[int, int] = {}

    def fileno(self) -> int:
        return self._efd

    def unpark(self, tid: int, result: int | None) -> bool:
        """Resume parked thread ``tid`` (any thread; runs on the tracer's): its
        interrupted syscall returns ``result`` (``-errno`` for an error), or with
        ``None`` is issued again.  ``False`` if ``tid`` is not parked.

        For the front-end whose ``NOTIF_SEND`` for ``tid`` failed with ``ENOENT``
        (the interrupt withdrew the notification): the answer goes through ptrace.
        """

        def run() -> bool:
            if tid not in self.parked:
                return False
            sig = self.parked.pop(tid)
            if result is not None:
                regs = getregs(tid)
                regs.rax = result & 0xFFFFFFFFFFFFFFFF
                regs.orig_rax = 0xFFFFFFFFFFFFFFFF  # no restart: the call is answered
                setregs(tid, regs)
            cont(tid, sig)
            return True

        return self.submit(run)

    def on_tracer(self) -> bool:
        return threading.get_ident() == self.thread

    def submit(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the tracer thread and return (or raise) what it does."""
        if self.on_tracer():
            return fn()
        fut: Future[object] = Future()
        self._queue.append((fn, fut))
        os.eventfd_write(self._efd, 1)
        if self.wake is not None:
            self.wake()
        return fut.result()  # type: ignore[return-value]

    def run_pending(self) -> None:
        """Run every queued job (the tracer loop calls this when ``fileno()`` is readable)."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._efd)
        while self._queue:
            fn, fut = self._queue.popleft()
            try:
                fut.set_result(fn())
            except BaseException as e:  # handed to the waiting thread
                fut.set_exception(e)

    def close(self) -> None:
        REAL.close(self._efd)


@dataclass(eq=False)
class TraceeMapping(Mapping):
    """A mapping of a mock file laid in a supervised process.

    ``pieces`` keep the kernel-held fds (as ``Mapping``'s); :meth:`zap` and
    :meth:`restore` lay, from the tracer thread, the same pieces in the tracee.
    """

    mm: TraceeMm | None = field(default=None, repr=False)

    def zap(self) -> None:
        if self.zapped:
            return
        if not self.pieces:
            raise ValueError(f"cannot zap {self!r}: it records no pieces to restore")
        assert self.mm is not None
        self.mm.revoke(self, True, _requester(self.mm))

    def restore(self) -> None:
        if not self.zapped:
            return
        assert self.mm is not None
        self.mm.revoke(self, False, _requester(self.mm))

    def _lay(self, pieces: Sequence[Piece]) -> None:
        """Lay ``pieces`` in the tracee (``Mapping.remap``), from the tracer thread; a
        process that is gone meanwhile has nothing left to lay them in."""
        assert self.mm is not None
        with contextlib.suppress(ProcessLookupError):
            self.mm.relay(self, pieces, _requester(self.mm))


class _Failed(Exception):
    """An injected call failed: ``errno`` is what the program's ``mmap`` returns."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


def _check(ret: int) -> int:
    if ret < 0:
        raise _Failed(-ret)
    return ret


class TraceeMm:
    """The supervisor's side of one supervised process's address space.

    ``proc`` is its mock process (fd table, ``mappings``), ``pid`` its real tgid.
    Threads share it; a forked child gets :meth:`fork`'s copy; call :meth:`exec`
    after a successful exec and :meth:`exit` when the process is gone.  Every
    method that injects runs on the tracer thread.
    """

    def __init__(self, proc: Process, pid: int, work: TracerWork) -> None:
        self.proc = proc
        self.pid = pid
        self.work = work
        #: a ``syscall`` instruction of this process (learnt at the first seccomp stop)
        self.syscall_ip: int | None = None
        #: a private page of the tracee for path strings (0: none yet)
        self.scratch = 0
        #: the supervisor's empty memfd a zapped range maps (access past EOF: SIGBUS)
        self._empty_fd = -1
        #: where the next mock mapping goes in the window (``_map_first``)
        self.window_next = WINDOW[0]
        #: the address space this process borrows (``vfork``/``CLONE_VM``): ``proc``'s
        #: ``mappings`` are that one's records until :meth:`exec` or :meth:`exit`
        self.vm_owner: TraceeMm | None = None

    # -- mmap at the seccomp stop -----------------------------------------------------
    def serve_mmap(self, tid: int) -> int | None:
        """Serve the ``mmap`` thread ``tid`` is stopped in (its seccomp stop).

        ``None``: the fd is not a mock fd, nothing was done, the real call should
        run (``cont``).  Otherwise the call has been answered (the address, or
        ``-errno``) and the result is the signal to ``cont`` the thread with.
        """
        regs = getregs(tid)
        addr, length, prot = regs.rdi, regs.rsi, regs.rdx & 0xFFFFFFFF
        flags, offset = regs.r10 & 0xFFFFFFFF, regs.r9
        fd = regs.r8 & 0xFFFFFFFF
        fd = fd - (1 << 32) if fd >= 1 << 31 else fd
        proc = self.proc
        if fd not in proc.files:
            return None
        inj = Injection(tid, at_entry=True)
        if self.syscall_ip is None:
            inj.check_insn()
            self.syscall_ip = inj.syscall_ip
        kernel = proc.kernel
        err = _raw_checks(addr, length, flags, offset)
        if err:
            return inj.finish(-err)
        try:
            with kernel.running(proc):
                file, vma, shared = proc.do_mmap(fd, length, flags, prot, offset)
        except OSError as e:
            return inj.finish(-(e.errno or ENOMEM))
        total = page_align(length)
        pflags = flags & _PIECE_FLAGS
        pieces: list[Piece] = []
        pos = 0
        for rfd, off, n in vma.segments:
            take = min(n, length - pos)
            if take <= 0:
                break
            if pieces and pieces[-1][1] == rfd and pieces[-1][2] + pieces[-1][3] == off:
                at, _, off0, n0 = pieces[-1]  # contiguous in one file: one piece
                pieces[-1] = (at, rfd, off0, n0 + take)
            else:
                pieces.append((pos, rfd, off, take))
            pos += page_align(take)
        base = 0
        opened: list[int] = []
        try:
            pieces_in = [(0, self._empty(), 0, total)] if vma.zapped else pieces
            cfds = self._open_backing(inj, [rfd for _, rfd, _, _ in pieces_in])
            opened = sorted(set(cfds))
            layout = [
                (at, cfd, off, n) for (at, _, off, n), cfd in zip(pieces_in, cfds, strict=True)
            ]
            _, cfd, off, _ = layout[0]  # the first piece, over the whole length
            first = flags if len(layout) == 1 else flags & ~MAP_POPULATE
            base = self._map_first(inj, addr, total, prot, first, cfd, off)
            for at, cfd, off, n in layout[1:]:  # (populating only their own pages)
                self._map_fixed(inj, base + at, n, prot, pflags | (flags & MAP_POPULATE), cfd, off)
        except _Failed as e:
            if base:
                inj.call(NR_MUNMAP, base, total)
            self._close_backing(inj, opened)
            if not file.released:
                file.put()
            return inj.finish(-e.errno)
        except BaseException:
            if not file.released:
                file.put()
            raise
        self._close_backing(inj, opened)
        mp = TraceeMapping(
            base,
            total,
            vma.pgoff,
            prot,
            shared,
            file,
            pieces=tuple(pieces),
            map_prot=prot,
            map_flags=pflags,
            zapped=vma.zapped,
            mm=self,
        )
        proc.add_mapping(mp)
        trace_mm_mmap(kernel.tracer, proc.pid, fd, file.id, length)
        return inj.finish(base)

    def _map_first(
        self, inj: Injection, addr: int, n: int, prot: int, flags: int, cfd: int, off: int
    ) -> int:
        """Map the first piece over the whole length: where the program said with
        ``MAP_FIXED``/``MAP_FIXED_NOREPLACE``, else in the window (``seccomp.WINDOW``,
        whose ``mprotect``/``madvise``/``msync`` the filter traps); a hint is a hint."""
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            return _check(inj.call(NR_MMAP, addr, n, prot, flags, cfd, off))
        lo, hi = WINDOW
        if flags & 0x0F == 0x03:  # MAP_SHARED_VALIDATE (checked): it refuses NOREPLACE
            flags = (flags & ~0x0F) | 0x01
        for _ in range(8):  # skip what the program itself laid in the window
            at = self.window_next
            if at + n > hi:
                at = lo  # wrapped: the oldest mappings are likely gone
            self.window_next = at + n + PAGE_SIZE  # a guard page between mappings
            got = inj.call(NR_MMAP, at, n, prot, flags | MAP_FIXED_NOREPLACE, cfd, off)
            if got != -EEXIST:
                return _check(got)
        return _check(inj.call(NR_MMAP, addr, n, prot, flags, cfd, off))

    def _map_fixed(
        self, inj: Injection, addr: int, n: int, prot: int, flags: int, cfd: int, off: int
    ) -> None:
        got = _check(inj.call(NR_MMAP, addr, n, prot, flags | MAP_FIXED, cfd, off))
        if got != addr:
            raise _Failed(ENOMEM)

    # -- backing files, open in the tracee only while it maps them ----------------------
    def _open_backing(self, inj: Injection, rfds: Sequence[int]) -> list[int]:
        """Open the kernel-held real fds ``rfds`` in the tracee (each file once, through
        ``/proc/<supervisor>/fd/N``; read-only where writing is refused): the tracee's
        fd for each, in order.  The caller closes them (:meth:`_close_backing`); on
        failure the ones opened so far are closed here."""
        keys: dict[tuple[int, int], int] = {}  # file -> index of its path in the page
        order: list[int] = []
        for rfd in rfds:
            st = os.fstat(rfd)
            order.append(keys.setdefault((st.st_dev, st.st_ino), len(keys)))
        if not self.scratch:
            self.scratch = _check(
                inj.call(NR_MMAP, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, 0x22, -1, 0)
            )
        me = os.getpid()
        paths: list[int] = []
        blob = b""
        first_rfd = {i: rfd for rfd, i in zip(reversed(rfds), reversed(order), strict=True)}
        for i in range(len(keys)):
            paths.append(self.scratch + len(blob))
            blob += f"/proc/{me}/fd/{first_rfd[i]}".encode() + b"\0"
        if len(blob) > PAGE_SIZE:
            raise _Failed(ENOMEM)  # (over ~100 distinct files in one mapping)
        _poke(self.pid, self.scratch, blob)
        fds: list[int] = []
        try:
            for path in paths:
                got = inj.call(NR_OPENAT, AT_FDCWD, path, os.O_RDWR | os.O_CLOEXEC, 0)
                if got == -EACCES:  # (a read-only file: a shared writable map then fails)
                    got = inj.call(NR_OPENAT, AT_FDCWD, path, os.O_RDONLY | os.O_CLOEXEC, 0)
                fds.append(_check(got))
        except _Failed:
            self._close_backing(inj, fds)
            raise
        return [fds[i] for i in order]

    def _close_backing(self, inj: Injection, fds: Sequence[int]) -> None:
        """Close the tracee's backing fds ``fds`` again: one ``close_range`` when their
        numbers are one contiguous run (only ours: nothing else lies between)."""
        fds = sorted(set(fds))
        run = len(fds) > 1 and fds[-1] - fds[0] == len(fds) - 1
        if run and inj.call(NR_CLOSE_RANGE, fds[0], fds[-1], 0) == 0:
            return
        for cfd in fds:
            inj.call(NR_CLOSE, cfd)

    def close_fd(self, fd: int) -> None:
        """Close the process's fd ``fd`` by an injected ``close``, from any thread: a
        number a handler reserved (``get_unused_fd_flags``: a placeholder installed with
        ``ADDFD``) and gave back (``put_unused_fd``) when the call failed.  Only the
        process itself can close its fds; the served thread, interrupted for it, is
        parked and answered through ptrace (``TracerWork.unpark``)."""

        def run(inj: Injection) -> None:
            inj.call(NR_CLOSE, fd)

        avoid = _requester(self)  # (on the serving thread: the tracer's has no current)
        self.work.submit(lambda: self._with_stopped_thread(run, avoid))

    def _empty(self) -> int:
        if self._empty_fd < 0:
            self._empty_fd = os.memfd_create("mockkernel:zapped", os.MFD_CLOEXEC)
        return self._empty_fd

    # -- revocation ---------------------------------------------------------------------
    def revoke(self, mp: TraceeMapping, zap: bool, avoid: int | None = None) -> int:
        """Zap (``SIGBUS`` on access) or restore ``mp`` in the tracee, from any thread.

        ``avoid``: a thread to interrupt only if the process has no other (the one
        whose syscall the caller is serving: interrupted, it would restart that
        syscall).  Returns the thread the calls ran in.
        """
        return self.work.submit(
            lambda: self._with_stopped_thread(lambda inj: self._revoke(inj, mp, zap), avoid)
        )

    def relay(self, mp: TraceeMapping, pieces: Sequence[Piece], avoid: int | None = None) -> int:
        """Lay ``pieces`` of ``mp`` again in the tracee (what backs them moved), from any
        thread; ``avoid`` as for :meth:`revoke`.  Returns the thread the calls ran in."""

        def run(inj: Injection) -> None:
            if mp.zapped or self.proc.mappings.get(mp.start) is not mp:
                return  # restore() lays the new pieces, or unmapped meanwhile
            self._lay_pieces(inj, mp, pieces)

        return self.work.submit(lambda: self._with_stopped_thread(run, avoid))

    def _revoke(self, inj: Injection, mp: TraceeMapping, zap: bool) -> None:
        if mp.zapped == zap or self.proc.mappings.get(mp.start) is not mp:
            return  # already done, or unmapped meanwhile
        if zap:
            self._lay_pieces(inj, mp, [(0, self._empty(), 0, mp.length)])
        else:
            self._lay_pieces(inj, mp, mp.pieces)
        mp.zapped = zap

    def _lay_pieces(self, inj: Injection, mp: TraceeMapping, pieces: Sequence[Piece]) -> None:
        """Lay ``pieces`` over ``mp`` with ``MAP_FIXED`` (its backing files opened for
        the calls and closed after); ``OSError`` if the tracee refuses."""
        try:
            cfds = self._open_backing(inj, [rfd for _, rfd, _, _ in pieces])
        except _Failed as e:
            raise OSError(e.errno, f"opening backing files in pid {self.pid}") from None
        try:
            for (at, _, off, n), cfd in zip(pieces, cfds, strict=True):
                self._map_fixed_ok(inj, mp.start + at, n, mp.map_prot, mp.map_flags, cfd, off)
        finally:
            self._close_backing(inj, cfds)

    def _map_fixed_ok(
        self, inj: Injection, addr: int, n: int, prot: int, flags: int, cfd: int, off: int
    ) -> None:
        try:
            self._map_fixed(inj, addr, n, prot, flags, cfd, off)
        except _Failed as e:
            raise OSError(e.errno, f"relaying {addr:#x} in pid {self.pid}") from None

    def _with_stopped_thread(self, fn: Callable[[Injection], None], avoid: int | None) -> int:
        """Run ``fn`` with an :class:`Injection` into a stopped thread of this process.

        A thread the loop holds at a signal or event stop (or a parked one) is used as
        it is; otherwise a thread is stopped with ``PTRACE_INTERRUPT`` (a stop of
        another kind that comes first is used too, then left to the loop:
        ``deferred``), ``avoid`` last; with ``work.park_served``, ``avoid``
        interrupted out of a syscall is parked (:meth:`TracerWork.unpark`).
        """
        work = self.work
        held = [t for t, ev in work.held.items()
                if ev.kind in _HOLDABLE and ev.event != PTRACE_EVENT_EXIT]  # fmt: skip
        held += work.parked
        candidates = sorted(_tids(self.pid), key=lambda t: t == avoid)
        if self.syscall_ip is None:
            # no mmap stop yet showed where a syscall instruction is: the served thread,
            # interrupted out of its syscall, stops right after one
            if avoid is None or _tgid_of(avoid) != self.pid:
                raise RuntimeError(f"no syscall instruction known in pid {self.pid}")
            held, candidates = [], [avoid]
        for tid in held:
            if _tgid_of(tid) == self.pid:
                inj = Injection(tid, self.syscall_ip, at_entry=False)
                try:
                    fn(inj)
                finally:
                    inj.finish(None, requeue=True)
                return tid
        for tid in candidates:
            ev2 = wait_event(tid, nohang=True)  # a stop not reaped yet serves as well
            if ev2 is None:
                if _task_state(tid) in ("t", "T"):
                    continue  # stopped, its stop reaped by the loop: not ours to use
                try:
                    interrupt(tid)
                except ProcessLookupError:
                    continue
            while True:
                if ev2 is None:
                    ev2 = wait_event(tid)
                assert ev2 is not None
                if not ev2.stopped or ev2.event == PTRACE_EVENT_EXIT:
                    work.deferred.append(ev2)  # gone or exiting: the loop's
                    break
                ours = ev2.kind is Stop.EVENT and ev2.event == PTRACE_EVENT_STOP
                entry = ev2.kind in (Stop.SECCOMP, Stop.SYSCALL)
                inj = Injection(tid, self.syscall_ip, at_entry=None if entry else False)
                park = (
                    ours
                    and tid == avoid
                    and work.park_served
                    and inj.saved.nr >= 0
                    and inj.saved.result in _RESTART_CODES
                )
                try:
                    if self.syscall_ip is None:
                        inj.check_insn()  # (ValueError: not stopped in a syscall after all)
                        self.syscall_ip = inj.syscall_ip
                    fn(inj)
                finally:
                    if park:  # interrupted out of the served syscall: hold it
                        work.parked[tid] = inj.finish(None)
                    elif ours:
                        cont(tid, inj.finish(None))
                    elif inj.at_entry and inj.calls:
                        # the stopped syscall will be issued again: the loop sees it
                        # then; the interrupt still pending stops the thread later
                        cont(tid, inj.finish(None))
                    else:
                        inj.finish(None, requeue=True)
                        work.deferred.append(ev2)
                return tid
        raise ProcessLookupError(f"no thread of pid {self.pid} to inject into")

    # -- process lifetime -----------------------------------------------------------------
    def _drop_all(self) -> None:
        for mp in [m for m in list(self.proc.mappings.values()) if isinstance(m, TraceeMapping)]:
            if mp.mm is self:
                self.proc.remove_mapping(mp)

    def _leave_vm(self) -> None:
        """A ``vfork`` child's exec or exit: the borrowed address space stays the
        owner's, with every mapping laid in it (records made by this process go home);
        this process's records start empty."""
        owner = self.vm_owner
        if owner is None:
            return
        for mp in list(self.proc.mappings.values()):
            if isinstance(mp, TraceeMapping) and mp.mm is self:
                mp.mm = owner
        self.proc.mappings = {}
        self.vm_owner = None

    def exec(self) -> None:
        """After a successful exec: the old address space and close-on-exec fds are gone."""
        self._leave_vm()
        self._drop_all()
        self.syscall_ip = None
        self.scratch = 0
        self.window_next = WINDOW[0]

    def exit(self) -> None:
        """The process is gone: drop every mapping's file reference."""
        self._leave_vm()
        self._drop_all()
        if self._empty_fd >= 0:
            REAL.close(self._empty_fd)
            self._empty_fd = -1

    def share(self, child: Process, pid: int) -> TraceeMm:
        """A ``vfork``/``CLONE_VM`` child's view: the same address space (``child``'s
        ``mappings`` are this process's records, no new reference), its own fd table."""
        out = TraceeMm(child, pid, self.work)
        out.syscall_ip = self.syscall_ip
        out.scratch = self.scratch
        out.vm_owner = self.vm_owner or self
        child.mappings = self.proc.mappings
        return out

    def fork(self, child: Process, pid: int) -> TraceeMm:
        """The forked child's copy: same mappings (each a new file reference), same
        scratch page and syscall instruction (the child's memory is a copy)."""
        out = TraceeMm(child, pid, self.work)
        out.syscall_ip = self.syscall_ip
        out.scratch = self.scratch
        out.window_next = self.window_next
        for mp in list(self.proc.mappings.values()):
            if isinstance(mp, TraceeMapping) and mp.mm is self and not mp.file.released:
                copy = TraceeMapping(
                    mp.start,
                    mp.length,
                    mp.pgoff,
                    mp.prot,
                    mp.shared,
                    mp.file.get(),
                    pieces=mp.pieces,
                    map_prot=mp.map_prot,
                    map_flags=mp.map_flags,
                    zapped=mp.zapped,
                    mm=out,
                )
                child.add_mapping(copy)
        return out


def unmap(proc: Process, addr: int, length: int) -> None:
    """``munmap(addr, length)`` of supervised ``proc``: update the kernel's records.

    Every mock mapping the range covers loses that part; a part left on either side
    stays a mapping of its own, with its own file reference (as Linux splits the
    vma), and a mapping wholly inside the range drops its reference.  The real
    ``munmap`` then runs in the tracee (the supervisor ``CONTINUE``s it).  Bad
    arguments change nothing (the real call fails with ``EINVAL``).
    """
    if addr % PAGE_SIZE or length <= 0:
        return
    lo, hi = addr, addr + page_align(length)
    with proc.files_lock:  # two threads unmapping one mapping: one of them drops it
        for mp in [m for m in list(proc.mappings.values()) if m.start < hi and lo < m.end]:
            keep = [(a, b) for a, b in ((mp.start, lo), (hi, mp.end)) if a < b]
            for a, b in keep:
                proc.add_mapping(_part(mp, a, b))  # each part takes a reference
            proc.remove_mapping(mp, min(hi, mp.end) - max(lo, mp.start))


def move(proc: Process, addr: int, length: int, old_len: int, new_addr: int) -> None:
    """``mremap(addr, old_len, length, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr)`` of a mock
    mapping (checked by ``syscalls.mmap.sys_mremap``): its records follow the pages to
    ``new_addr`` (whatever was recorded there goes, as the real call unmaps it), so the
    moved mapping stays the mock's -- device memory, revocable -- as the vma does on Linux."""
    mp = next(m for m in list(proc.mappings.values()) if m.start <= addr < m.end)
    part = _part(mp, addr, addr + length)
    unmap(proc, new_addr, length)
    unmap(proc, addr, old_len)
    part.start = new_addr
    with proc.files_lock:
        proc.add_mapping(part)


def _part(mp: Mapping, a: int, b: int) -> Mapping:
    """The part ``[a, b)`` of ``mp`` as a mapping of its own (taking a file reference)."""
    pieces: list[Piece] = []
    for at, rfd, off, n in mp.pieces:
        p_lo, p_hi = max(mp.start + at, a), min(mp.start + at + page_align(n), b)
        if p_lo < p_hi:
            pieces.append((p_lo - a, rfd, off + (p_lo - mp.start - at), p_hi - p_lo))
    extra = {"mm": mp.mm} if isinstance(mp, TraceeMapping) else {}
    return type(mp)(
        a,
        b - a,
        mp.pgoff + (a - mp.start) // PAGE_SIZE,
        mp.prot,
        mp.shared,
        mp.file.get(),
        pieces=tuple(pieces),
        map_prot=mp.map_prot,
        map_flags=mp.map_flags,
        zapped=mp.zapped,
        **extra,
    )


# -- helpers ------------------------------------------------------------------------------
def _requester(mm: TraceeMm) -> int | None:
    """The supervised thread whose syscall the calling thread serves, if any (the
    front-end's ``kernel.current_tid``), when it belongs to ``mm``'s process."""
    kernel = mm.proc.kernel
    tid: int | None = getattr(kernel, "current_tid", None)
    return tid if tid is not None and kernel.current is mm.proc else None


#: x86-64 ``TASK_SIZE_MAX``: the end of the user address space (4-level paging)
TASK_SIZE: Final = (1 << 47) - PAGE_SIZE
_ULONG_MAX: Final = (1 << 64) - 1


def _raw_checks(addr: int, length: int, flags: int, offset: int) -> int:
    """The errno ``mmap(2)`` gives for raw arguments before a driver sees them (0: none).

    What a C caller can pass and Python's ``mmap`` cannot, in the kernel's order:
    the offset's alignment and a zero length (``EINVAL``), a length past the
    address space (``ENOMEM``), an offset whose pages overflow or that
    ``file_mmap_ok`` refuses for a device file (``EOVERFLOW``), an unaligned
    ``MAP_FIXED`` address (``EINVAL``).
    """
    if offset % PAGE_SIZE or length == 0:
        return EINVAL
    length = page_align(length)
    if length > _ULONG_MAX or length == 0 or length > TASK_SIZE:
        return ENOMEM
    pgoff = offset // PAGE_SIZE
    if pgoff + (length // PAGE_SIZE) > _ULONG_MAX or pgoff > (_ULONG_MAX - length) // PAGE_SIZE:
        return EOVERFLOW
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) and addr % PAGE_SIZE:
        return EINVAL
    return 0


def _poke(pid: int, addr: int, data: bytes) -> None:
    """Write ``data`` into ``pid``'s memory at ``addr`` (as its tracer)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)
    try:
        if os.pwrite(fd, data, addr) != len(data):
            raise OSError(ENOMEM, f"short write into pid {pid}")
    finally:
        REAL.close(fd)


def _tids(pid: int) -> list[int]:
    """The threads of ``pid``, the main thread first."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []
    return sorted(tids, key=lambda t: t != pid)


def _task_state(tid: int) -> str:
    """The state letter of ``/proc/<tid>/stat`` (``t``: stopped by its tracer)."""
    try:
        with open(f"/proc/{tid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0].decode()
    except (FileNotFoundError, IndexError):
        return "X"


def _tgid_of(tid: int) -> int:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return -1
