"""The tracer thread: ptrace events of the supervised tree become mock process events.

``waitpid(-1, _WALL)`` in a loop: a fork/vfork/clone stop makes the new mock process
(a copy of the parent's fd table sharing its ``File``s) or adds a thread; an exec stop
drops the close-on-exec mock fds; an exit ends the thread, and the last thread of a
process ends the process (``Process.exit`` releases everything) -- at the exit stop
(``PTRACE_EVENT_EXIT``) of its last thread, before the real kernel closes its files.
A new task does not run before its mock process exists: its first stop is held until
the parent's event has been handled.  Signal-delivery stops re-inject the signal;
group stops are left stopped with ``PTRACE_LISTEN``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import TYPE_CHECKING

from ..process import Cred
from ..realfd import REAL
from ..uaccess import RemoteMemory
from .execsys import quick_execve
from .fdtable import RemoteFdTable, real_fd_open
from .mmap import TracerWork
from .ptrace import (
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_EXEC,
    PTRACE_EVENT_EXIT,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_SECCOMP,
    PTRACE_EVENT_STOP,
    PTRACE_EVENT_VFORK,
    TraceeGone,
    cont,
    decode_status,
    event_message,
    geteventmsg,
    getregs,
    listen,
    setregs,
)
from .seccomp import TRACE_CALL

if TYPE_CHECKING:
    from ..process import Process
    from .supervisor import Supervisor

CLONE_VM, CLONE_FILES, CLONE_PARENT = 0x100, 0x400, 0x8000
_NR_CLONE, _NR_CLONE3 = 56, 435


def _clone_flags(tid: int) -> int:
    """The flags of the ``clone``/``clone3`` that ``tid`` is stopped in (0 for ``fork``,
    ``vfork`` or a register read that failed)."""
    try:
        regs = getregs(tid)
    except OSError:
        return 0
    nr = regs.nr
    if nr == _NR_CLONE:
        return int(regs.rdi)
    if nr == _NR_CLONE3:
        try:
            with REAL.builtin_open(f"/proc/{tid}/mem", "rb", buffering=0) as mem:
                mem.seek(regs.rdi)
                return int.from_bytes(mem.read(8), "little")
        except OSError:
            return 0
    return 0


__all__ = ["TreeTracer"]

_ERESTARTSYS, _EINTR = 512, 4


def _sock_intr_errno(tid: int) -> None:
    """``sock_intr_errno``: a socket call with a timeout (``SO_RCVTIMEO``) that a signal
    interrupts fails with ``EINTR`` even under ``SA_RESTART``.  The thread's seccomp wait
    ended with ``-ERESTARTSYS`` (a restart); at its signal-delivery stop, before the
    restart is decided, that becomes ``-EINTR``."""
    with contextlib.suppress(OSError):
        regs = getregs(tid)
        if regs.result == -_ERESTARTSYS:
            regs.rax = -_EINTR & 0xFFFFFFFFFFFFFFFF
            setregs(tid, regs)


_WALL = 0x40000000
_EXIT_CODES = (os.CLD_EXITED, os.CLD_KILLED, os.CLD_DUMPED)


def _exit_status(code: int, status: int) -> int:
    """The ``waitpid`` status of an exit that ``waitid`` reported as ``code``/``status``."""
    if code == os.CLD_EXITED:
        return (status & 0xFF) << 8
    return (status & 0x7F) | (0x80 if code == os.CLD_DUMPED else 0)


_STOP_SIGNALS = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def _tgid(tid: int) -> int:
    with REAL.builtin_open(f"/proc/{tid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Tgid:"):
                return int(line.split()[1])
    raise ProcessLookupError(tid)


_PF_EXITING = 0x4
_SIGKILL_BIT = 1 << 8


def _dying(tid: int) -> bool:
    """Is thread ``tid`` past the point of running user code again: gone, exiting
    (``PF_EXITING``), or with ``SIGKILL`` pending (a group exit's ``zap_other_threads``
    or a kill)?  From ``/proc/<tid>/stat``: its flags (field 9) and its own pending
    signals (field 31)."""
    try:
        with REAL.builtin_open(f"/proc/{tid}/stat", "rb") as f:
            rest = f.read().rpartition(b")")[2].split()
    except OSError:
        return True
    try:
        return (
            rest[0] in (b"Z", b"X")
            or bool(int(rest[6]) & _PF_EXITING)
            or bool(int(rest[28]) & _SIGKILL_BIT)
        )
    except (IndexError, ValueError):
        return True


def _comm(pid: int, default: str) -> str:
    try:
        with REAL.builtin_open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() or default
    except OSError:
        return default


class TreeTracer:
    """The ptrace side of one supervised tree (every method runs on the tracer thread)."""

    def __init__(self, sv: Supervisor, root: int, work: TracerWork) -> None:
        self.sv = sv
        self.root = root
        self.work = work
        work.wake = self._wake
        #: the waker (a ``sleep`` child), spawned with the first mock mapping: only
        #: mappings ever need work from other threads (0: none yet; -1: lost)
        self.waker = 0
        self._waker_lock = threading.Lock()
        self.live: set[int] = {root}
        #: new tasks whose first stop came before their parent's event (held stopped)
        self.early: set[int] = set()
        #: new tasks announced by their parent's event whose first stop is still to come
        self.announced: set[int] = set()
        self.root_status: int | None = None
        #: the threads, by tid, that have reached their exit stop (``on_exit_stop``)
        self.exiting: set[int] = set()
        #: set by :meth:`kill_all`: the tree is ending; a task first seen from now on
        #: (made before the kill, reported after it) is killed too
        self.ending = False

    def loop(self) -> None:
        """Until every task of the tree has exited.

        Blocks in ``waitpid``; work other threads queue for the tracer thread (laying
        or zapping mock mappings) wakes it through the *waker*: a ``sleep`` child that
        ``TracerWork.wake`` stops with ``SIGSTOP``, which ``waitpid`` reports."""
        work = self.work
        while self.live or self.early:
            while work.deferred:
                ev = work.deferred.popleft()
                self.handle(ev.tid, ev.status)
            try:
                got = self._next_event()
            except ChildProcessError:
                break
            if got is None:
                continue
            pid, status = got
            if pid == self.waker:
                self._woken(status)
                continue
            self.handle(pid, status)

    def _next_event(self) -> tuple[int, int] | None:
        """The next ``waitpid`` status, waited for; ``None``: nothing to do (a task's exit
        was handled here, or a stop went before it was taken).

        An exit is *looked at* first (``WNOWAIT``) and the mock exit done before the
        zombie is reaped: on Linux ``exit_files`` runs before ``exit_notify``, so
        whoever learns of the exit (the real parent's ``waitpid``, which the reap lets
        through; an orphan whose ``getppid`` changed, see ``Supervisor.exits_first``)
        already sees the files released.  A stop is taken with ``WSTOPPED`` alone, so
        an exit that replaced it meanwhile (``SIGKILL``) is never reaped unseen."""
        info = os.waitid(os.P_ALL, 0, _WALL | os.WEXITED | os.WSTOPPED | os.WNOWAIT)
        if info is None:
            return None
        pid = info.si_pid
        if info.si_code in _EXIT_CODES and pid == self.waker:
            return os.waitpid(pid, 0)  # killed by someone (``_woken``)
        if info.si_code in _EXIT_CODES:
            proc = self.sv.tasks.get(pid)
            sv = self.sv
            if proc is not None:
                sv.exiting.add(proc.pid)
            try:
                self.gone(pid, _exit_status(info.si_code, info.si_status))
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, _WALL)  # the reap: the real parent may learn of it now
            finally:
                if proc is not None:
                    sv.exit_done(proc.pid)
            return None
        try:
            info = os.waitid(os.P_PID, pid, _WALL | os.WSTOPPED | os.WNOHANG)
        except ChildProcessError:
            return None
        if info is None:
            return None  # SIGKILLed out of its stop: its exit is next
        return pid, (info.si_status & 0xFFFF) << 8 | 0x7F

    def _woken(self, status: int) -> None:
        if os.WIFSTOPPED(status):
            os.kill(self.waker, signal.SIGCONT)  # first: a later wake stops it again
            self.work.run_pending()
        else:
            self.waker = -1  # killed by someone: wakes are lost (mapping work stalls)

    def close(self) -> None:
        """End the waker (the tree is gone)."""
        if self.waker > 0:
            with contextlib.suppress(OSError):
                os.kill(self.waker, signal.SIGKILL)
                os.waitpid(self.waker, 0)
            self.waker = -1
        self.work.close()

    def _wake(self) -> None:
        if self.waker == 0:
            with self._waker_lock:
                if self.waker == 0:
                    # work for a tree that never mapped a mock file (an injected close:
                    # ``TraceeMm.close_fd``): the waker is made now, by the waking thread
                    self.waker = os.posix_spawn("/bin/sleep", ["sleep", "infinity"], {})
        if self.waker > 0:
            with contextlib.suppress(OSError):
                os.kill(self.waker, signal.SIGSTOP)

    def kill_all(self) -> None:
        """SIGKILL every live task (a timeout, or the supervisor failed)."""
        self.ending = True
        for tid in [*self.live, *self.early]:
            with contextlib.suppress(OSError):
                os.kill(tid, signal.SIGKILL)

    def _cont(self, tid: int, sig: int = 0) -> None:
        with contextlib.suppress(ProcessLookupError):  # killed meanwhile: its exit is next
            cont(tid, sig)

    def handle(self, tid: int, status: int) -> None:
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.gone(tid, status)
            return
        if not os.WIFSTOPPED(status):
            return
        sig, event = os.WSTOPSIG(status), status >> 16
        if tid not in self.live:  # a new task's first stop
            if event == PTRACE_EVENT_EXIT:
                # SIGKILLed while held for its parent's event (a timeout's kill_all, the
                # parent's death): it is dying, not starting; let it go, its exit is next
                self._cont(tid)
                return
            if self.ending:  # made before the tree's kill, seen after it: it goes too
                self.early.add(tid)
                with contextlib.suppress(OSError):
                    os.kill(tid, signal.SIGKILL)
                return
            if tid in self.announced:
                self.announced.discard(tid)
                self._cont(tid)
            else:
                self.early.add(tid)
            return
        if event == 0:
            if tid in self.sv.timed_sleepers:
                _sock_intr_errno(tid)
            self._cont(tid, sig)  # signal-delivery stop: deliver it
            return
        # held while kernel code runs for it: a revocation may inject into this thread
        self.work.held[tid] = decode_status(tid, status)
        try:
            self._event(tid, sig, event)
        except ProcessLookupError:
            # SIGKILLed in its stop (a timeout, another process): from the kill on, every
            # ptrace request on it is ESRCH, and its exit is its next event -- the end of
            # the task, not a failure of the tracer.  Except in a fork/clone stop: the
            # new task it made cannot be told apart from others then (its first stop
            # would wait for an event that never comes), so the tree is ended (``loop``'s
            # caller kills every task)
            if event in (PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE):
                raise
        finally:
            self.work.held.pop(tid, None)

    def _event(self, tid: int, sig: int, event: int) -> None:
        if event in (PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE):
            self.on_clone(tid, event)
            self._cont(tid)
        elif event == PTRACE_EVENT_SECCOMP:
            self.on_seccomp(tid)
        elif event == PTRACE_EVENT_EXIT:
            self.on_exit_stop(tid)
            self._cont(tid)
        elif event == PTRACE_EVENT_EXEC:
            self.on_exec(tid)
            self._cont(tid)
        elif event == PTRACE_EVENT_STOP and sig in _STOP_SIGNALS:
            with contextlib.suppress(ProcessLookupError):
                listen(tid)  # group stop: stay stopped, report SIGCONT
        else:
            self._cont(tid)

    def on_clone(self, tid: int, event: int) -> None:
        new = event_message(tid, event)  # (ESRCH: killed in the stop, see ``handle``)
        parent = self.sv.tasks.get(tid)
        self.live.add(new)
        if parent is not None:
            if event == PTRACE_EVENT_CLONE and _tgid(new) == parent.pid:
                self.sv.add_thread(parent, new)
                self._trace("sup.thread", pid=parent.pid, tid=new)
            else:
                flags = _clone_flags(tid)
                share_vm = event == PTRACE_EVENT_VFORK or bool(flags & CLONE_VM)
                self.fork(parent, new, bool(flags & CLONE_FILES), share_vm)
                if flags & CLONE_PARENT:  # a sibling of the caller: its parent's child
                    self.sv.reparent(new, self.sv.parents.get(parent.pid))
        if new in self.early:
            self.early.discard(new)
            self._cont(new)
        else:
            self.announced.add(new)

    def on_exit_stop(self, tid: int) -> None:
        """``PTRACE_EVENT_EXIT``: thread ``tid`` is in ``do_exit``, its files not yet
        closed.  When every thread of its process has come this far, the process's
        files go now (``release``), before the real ``exit_files``: a pipe's
        end-of-file, the zombie in ``/proc``, a pidfd turning readable, ``SIGCHLD`` and
        ``waitpid`` all come after it, as on Linux, where the file counts drop in
        ``exit_files`` and those signs follow (``exit_task_work``, ``exit_notify``).
        A thread whose siblings still run (``pthread_exit``) goes on at once: the last
        thread to stop here is still before its ``exit_files``, so the table is whole
        until then.  A sibling killed by a group exit may skip its stop (a thread that
        enters ``do_exit`` with ``SIGKILL`` pending does not stop), so siblings that are
        dying (``_dying``) count as stopped: this thread, held here, keeps the table
        whole while the release runs."""
        proc = self.sv.tasks.get(tid)
        if proc is None:
            return
        self.exiting.add(tid)
        others = self.sv.threads.get(proc.pid, set()) - self.exiting
        if not proc.exited and all(_dying(t) for t in others):
            try:
                status = geteventmsg(tid)
            except OSError:
                status = 0x9  # SIGKILLed out of the stop meanwhile
            self.release(proc, status)

    def on_seccomp(self, tid: int) -> None:
        """A ``SECCOMP_RET_TRACE`` stop: ``mmap`` of an fd.  A mock fd's mapping is laid
        by syscalls injected into the stopped thread (``mmap.py``); a real fd's call runs.
        Or ``execve`` (``TRACE_CALL``): the real close-on-exec files are held while the
        process has close-on-exec mock fds (``execsys.py``)."""
        proc = self.sv.tasks.get(tid)
        try:
            call = event_message(tid, PTRACE_EVENT_SECCOMP)
        except OSError:
            return  # SIGKILLed in its stop: its exit is next
        if call == TRACE_CALL:
            if proc is not None and not quick_execve(proc):
                self.sv.exec_holds.hold(proc, tid)
            self._cont(tid)
            return
        tmm = self.sv.mms.get(proc.pid) if proc is not None else None
        if tmm is None:
            self._cont(tid)
            return
        if self.waker == 0 and proc is not None and proc.files:
            # a mock mapping may be laid now: revoking it later needs the waker (the
            # spawn, ~0.3 ms, is saved for the trees that never map a mock file)
            with self._waker_lock:
                if self.waker == 0:
                    self.waker = os.posix_spawn("/bin/sleep", ["sleep", "infinity"], {})
        try:
            sig = tmm.serve_mmap(tid)
        except TraceeGone as e:
            self.work.deferred.append(e.event)  # it died meanwhile: its exit is next
            return
        except ProcessLookupError:
            return  # SIGKILLed in its stop, before its registers were read: exit next
        self._cont(tid, sig or 0)

    def fork(
        self, parent: Process, pid: int, share_files: bool = False, share_vm: bool = False
    ) -> Process:
        """``dup_fd``: the child's table holds the parent's files, one reference each;
        its mock mappings are the parent's (one more file reference each).
        ``share_files`` (``CLONE_FILES``): the child uses the parent's table itself.
        ``share_vm`` (``vfork``, ``CLONE_VM``): the child lives in the parent's address
        space, so its mock mappings are the parent's records themselves (a ``munmap``
        in a vfork child unmaps the parent's), until its exec or exit."""
        fdt = parent.fdt
        assert isinstance(fdt, RemoteFdTable)
        if share_files:
            with parent.files_lock:
                child = self.sv.new_process(pid, parent.name, fdt, parent, share_vm)
                child.slots = parent.slots
                child.files_lock = parent.files_lock
                fdt.users.add(pid)
            self._trace("sup.fork", pid=parent.pid, child=pid, fds=len(child.files),
                        shared_files=True)  # fmt: skip
            return child
        with parent.files_lock:
            child = self.sv.new_process(pid, parent.name, fdt.copy(pid), parent, share_vm)
            for fd, file in sorted(parent.files.items()):
                child.fd_install(fd, file.get())
        self._trace("sup.fork", pid=parent.pid, child=pid, fds=len(child.files),
                    shared_vm=share_vm)  # fmt: skip
        return child

    def on_exec(self, pid: int) -> None:
        """The close-on-exec mock fds are gone (the real kernel closed their placeholders).
        ``ProcessLookupError`` before any change when the task was SIGKILLed in the stop."""
        former = event_message(pid, PTRACE_EVENT_EXEC)
        proc = self.sv.tasks.get(pid) or self.sv.tasks.get(former)
        if proc is None:
            return
        for tid in self.sv.exec_threads(proc, pid):
            self.live.discard(tid)
        self.sv.unshare_files(proc, keep=True)  # execve's unshare_files
        dropped = [fd for fd in sorted(proc.files) if not real_fd_open(pid, fd)]
        for fd in dropped:
            proc.forget_fd(fd)
        fdt = proc.fdt
        if isinstance(fdt, RemoteFdTable):
            fdt.cloexec.clear()  # what survived exec was not close-on-exec
        old = proc.mm
        proc.mm = self.sv.remote_memory(pid)  # a new address space
        if isinstance(old, RemoteMemory):
            old.close()
        tmm = self.sv.mms.get(proc.pid)
        if tmm is not None:
            tmm.exec()
        proc.cred = Cred(pid)  # prepare_exec_creds: files opened before are foreign now
        proc.name = _comm(pid, proc.name)
        self._trace("sup.exec", pid=pid, comm=proc.name, dropped=dropped)
        self.sv.exec_holds.release(former, pid)  # the real close-on-exec files go last

    def gone(self, tid: int, status: int) -> None:
        """Thread ``tid`` has exited: the last of its process ends the mock process, if
        its exit stop did not already (a task SIGKILLed out of that stop)."""
        self.live.discard(tid)
        self.early.discard(tid)
        self.exiting.discard(tid)
        self.sv.exec_holds.release(tid)
        self.work.parked.pop(tid, None)  # (killed while parked: nothing to answer)
        if tid == self.root:
            self.root_status = status
        proc = self.sv.thread_gone(tid)
        if proc is not None and not proc.exited:
            self.release(proc, status)

    def release(self, proc: Process, status: int) -> None:
        """The mock exit of ``proc`` (``exit_files``, ``exit_mm``): its mock mappings,
        its fd table's files, its memory."""
        self._trace("sup.exit", pid=proc.pid, status=os.waitstatus_to_exitcode(status))
        self.sv.release_mm(proc)
        self.sv.unshare_files(proc, keep=False)
        proc.exit()
        if isinstance(proc.mm, RemoteMemory):
            proc.mm.close()

    def _trace(self, event: str, **fields: object) -> None:
        self.sv.kernel.tracer.emit(event, **fields)  # (their fields vary: no TracePoint)
