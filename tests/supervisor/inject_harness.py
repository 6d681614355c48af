"""A minimal tracer for the mmap-engine tests: one traced Python child, no notification loop.

:class:`Tracee` starts ``inject_tracee.py`` (a seccomp filter that ``TRACE``s ``mmap``
of an fd and ``munmap`` unless marked), seizes it, gives it a mock process in the
test's kernel and serves its stops on the test's thread (the tracer thread):
``mmap`` of a mock fd through ``TraceeMm.serve_mmap``, ``munmap`` through
``unmap``, signals through an optional hook.  Commands are lines on the child's
stdin; :meth:`Tracee.send` pumps the tracer loop until the answer line arrives.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mockkernel import Kernel
from mockkernel.fs import File
from mockkernel.supervisor import ptrace as pt
from mockkernel.supervisor.mmap import TraceeMm, TracerWork, unmap

SCRIPT = Path(__file__).with_name("inject_tracee.py")


class Tracee:
    def __init__(self, kernel: Kernel, strict: bool = False) -> None:
        self.kernel = kernel
        self.work = TracerWork()
        args = [hex(pt.INJECT_MARK), str(pt.mark_word_offset(9)), str(pt.mark_word_offset(11))]
        self.child = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args, "strict" if strict else "loose"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.child.stdin is not None and self.child.stdout is not None
        self._in = self.child.stdin.fileno()
        self._out = self.child.stdout.fileno()
        self._buf = b""
        self.pid = self.child.pid
        self.exit_event: pt.Event | None = None
        try:
            ready = self._read_line_untraced()
            pt.seize(self.pid)
        except (RuntimeError, PermissionError) as e:  # no seccomp filter or no ptrace
            self.child.kill()
            self.child.wait()
            self.work.close()
            pytest.skip(f"this host lets no process trace its child under seccomp: {e}")
        assert ready == "ready", ready
        self.proc = kernel.spawn("tracee")
        self.mm = TraceeMm(self.proc, self.pid, self.work)
        #: every traced process's engine by pid (forked children join), thread -> pid
        self.mms: dict[int, TraceeMm] = {self.pid: self.mm}
        self.tgid: dict[int, int] = {self.pid: self.pid}
        #: called with the child's TraceeMm when the tracee forks
        self.on_fork: Callable[[TraceeMm], None] | None = None
        #: called at a signal-delivery-stop; returns the signal to deliver
        self.on_signal: Callable[[pt.Event], int] | None = None
        #: syscall numbers of every seccomp stop, and any that carried the marker
        self.seccomp_nrs: list[int] = []
        self.marked_stops: list[int] = []

    def _read_line_untraced(self) -> str:
        while b"\n" not in self._buf:
            data = os.read(self._out, 4096)
            if not data:
                raise RuntimeError("tracee died before it was ready")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def install(self, file: File) -> int:
        """Give the tracee's mock process (a reference to) ``file``; its fd number."""
        return self.proc.install_file(file.get(), False)

    def send(self, line: str) -> str:
        os.write(self._in, line.encode() + b"\n")
        return self.pump_line()

    def pump_line(self) -> str:
        while b"\n" not in self._buf:
            if self.exit_event is not None:
                raise RuntimeError(f"tracee exited: {self.exit_event}")
            self.step()
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def step(self) -> None:
        """Handle one event, or wait a little for output or queued tracer work."""
        work = self.work
        while work.deferred:
            self.handle(work.deferred.popleft())
        try:
            ev = pt.wait_event(-1, nohang=True)
        except ChildProcessError:
            ev = None
        if ev is not None:
            self.handle(ev)
            return
        ready, _, _ = select.select([self._out, work.fileno()], [], [], 0.0005)
        if work.fileno() in ready:
            work.run_pending()
        if self._out in ready:
            data = os.read(self._out, 65536)
            self._buf += data

    def handle(self, ev: pt.Event) -> None:
        tid = ev.tid
        if ev.kind is pt.Stop.SECCOMP:
            regs = pt.getregs(tid)
            nr = regs.nr
            self.seccomp_nrs.append(nr)
            args = (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9)
            if args[pt.mark_arg(nr)] >> 32 == pt.INJECT_MARK:
                self.marked_stops.append(nr)
            mm = self.mms[self.tgid[tid]]
            if nr == 9:
                pt.cont(tid, mm.serve_mmap(tid) or 0)
                return
            if nr == 11:
                unmap(mm.proc, regs.rdi, regs.rsi)
            pt.cont(tid)
        elif ev.kind is pt.Stop.SIGNAL:
            sig = ev.sig
            if self.on_signal is not None:
                self.work.held[tid] = ev
                try:
                    sig = self.on_signal(ev)
                finally:
                    del self.work.held[tid]
            pt.cont(tid, sig)
        elif ev.kind is pt.Stop.EVENT and ev.event in (pt.PTRACE_EVENT_FORK, pt.PTRACE_EVENT_CLONE):
            new = pt.geteventmsg(tid)
            if ev.event == pt.PTRACE_EVENT_CLONE:
                self.tgid[new] = self.tgid[tid]
            else:
                parent = self.mms[self.tgid[tid]]
                child = parent.fork(self.kernel.spawn("forked"), new)
                self.mms[new] = child
                self.tgid[new] = new
                if self.on_fork is not None:
                    self.on_fork(child)
            pt.cont(tid)
        elif ev.stopped:
            pt.cont(tid)  # exec events, new tasks' first stop, stray interrupts
        elif tid == self.pid:
            self.exit_event = ev
        elif tid in self.mms:  # a forked child is gone
            gone = self.mms.pop(tid)
            gone.exit()
            gone.proc.exit()

    def close(self) -> None:
        """Let the child exit (kill it if it will not); release its mock process."""
        try:
            if self.exit_event is None and self.child.poll() is None:
                os.write(self._in, b"exit\n")
                for _ in range(20000):
                    if self.exit_event is not None:
                        break
                    self.step()
        except OSError:
            pass
        if self.exit_event is None:
            os.kill(self.pid, signal.SIGKILL)
            while self.exit_event is None:
                try:
                    ev = pt.wait_event(-1)
                except ChildProcessError:
                    break
                if ev is not None and ev.tid == self.pid and not ev.stopped:
                    self.exit_event = ev
        self.mm.exit()
        self.proc.exit()
        self.work.close()
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.close()
        self.child.stdout.close()
