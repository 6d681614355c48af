"""The supervisor: the mock processes of one supervised tree and the workers serving it.

A :class:`Supervisor` owns the task registry (tid -> mock ``Process``), the seccomp
listener and a pool of worker threads that receive notifications and answer them
(leader/follower: one worker polls the listener at a time, hands the lead on as
soon as it has a notification, then serves it; the pool grows while every worker
is busy, so a blocking mock syscall never stalls the other threads of the tree).
The tracer thread (``tracer.py``) adds and removes processes; the handlers
(``handlers.py``) run with the caller as the kernel's current task.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from errno import EBADF, EINVAL, ENOENT, ENOSYS, ESRCH
from typing import TYPE_CHECKING, Protocol

from ..cred import Ids, status_ids
from ..errors import kerr
from ..fault_inject import FailNth, FaultInject
from ..net.dev_ioctl import is_dev_ioctl
from ..process import Process
from ..realfd import REAL, hide, hold, kernel_close
from ..uaccess import RemoteMemory, set_cpu_fault
from ..wait import Signals
from . import paths
from .epollsys import EpollMirrors
from .execsys import ExecHolds
from .fdtable import RemoteFdTable
from .handlers import CONTINUE, TABLE, Call, Syscall
from .host import libc
from .mmap import TraceeMm, TracerWork
from .notify import Listener
from .pool import Pool
from .scm import ScmTokens, quick_recvmmsg
from .seccomp import NR

if TYPE_CHECKING:
    from ..process import TaskContext
    from ..topology import Topology
    from ..vfs import Vfs

    class SupervisedKernel(TaskContext, Protocol):
        """What the supervisor uses of the kernel it serves from (``mockkernel.Kernel`` is
        one): typed so, the supervisor -- above the kernel -- never names it."""

        @property
        def vfs(self) -> Vfs:
            """The mock file tree."""

        @property
        def topology(self) -> Topology:
            """The machine (its ``kernel.rlimit_nofile``)."""

        def placeholder(self, label: str) -> int:
            """The real memfd whose dups hold the numbers of mock fds of this kind."""

        def finish_probes(self) -> None:
            """Finish a deferred boot and its deferred driver probes now (a no-op when
            nothing waits): a supervised tree may observe anything."""


__all__ = ["Supervisor"]


class Supervisor:
    """Serves one supervised process tree from ``kernel``."""

    def __init__(self, kernel: SupervisedKernel) -> None:
        self.kernel = kernel
        self.listener: Listener | None = None
        #: every live supervised thread, by tid, to its process (thread group)
        self.tasks: dict[int, Process] = {}
        #: the live threads of each process, by its pid (tgid)
        self.threads: dict[int, set[int]] = {}
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.pool: Pool | None = None
        self._mm_like: RemoteMemory | None = None
        #: the tracer thread's work queue (mmap revocation from other threads)
        self.work: TracerWork | None = None
        #: each process's address space as the tracer lays mock mappings in it, by pid
        self.mms: dict[int, TraceeMm] = {}
        #: mock files in flight in SCM_RIGHTS messages (scm.py)
        self.scm = ScmTokens()
        #: threads sleeping in a socket call with a timeout (``SO_RCVTIMEO``): a signal
        #: fails the call with ``EINTR``, never a restart (tracer.py, tcpsock.py)
        self.timed_sleepers: set[int] = set()
        #: eventfds standing for mock files in the tree's epoll instances (epollsys.py)
        self.epoll = EpollMirrors()
        #: real close-on-exec files held across an exec, by thread (execsys.py)
        self.exec_holds = ExecHolds(kernel)
        #: the call each thread has in a handler, or whose answer it could not take (a
        #: signal interrupted its wait), by tid: for the restarted call (``serve``)
        self.served: dict[int, _Served] = {}
        #: notified when a handler a restarted call waits for ends (rare: no cost else)
        self.restarts = threading.Condition(threading.Lock())
        self.faults = kernel.subsys(FaultInject)
        #: the tree's one ``fail-nth`` count (``arm_fail_nth``), if armed
        self.tree_fail: FailNth | None = None
        #: ``N`` to arm the tree's count with when the root starts (0: none)
        self.fail_nth = 0
        #: the cwd of each process (by pid) that chdir'ed into a mock directory the host
        #: lacks (its real cwd stayed where it was); paths.chdir
        self.cwd: dict[int, str] = {}
        #: each process's parent in the tree, by pid, until the parent's exit is done
        #: (its orphans then have none here): ``exits_first``
        self.parents: dict[int, int] = {}
        #: processes (pids) a thread exit of which the tracer is handling right now
        self.exiting: set[int] = set()
        #: notified by the tracer each time it has handled an exit
        self.exited = threading.Condition(self.lock)
        #: each calling thread's ``/proc/<tid>/status``, held open (``_ids``)
        self._status_fds: dict[int, int] = {}
        self._status_lock = threading.Lock()

    # -- the process registry (called by the tracer thread) -------------------------------
    def new_process(
        self,
        pid: int,
        name: str,
        fdt: RemoteFdTable | None = None,
        parent: Process | None = None,
        share_vm: bool = False,
    ) -> Process:
        """A mock process for the real process ``pid`` (its memory, fd table and the
        tracer's view of its address space); ``parent``: a fork's copy of it, or with
        ``share_vm`` (``vfork``) a user of its address space."""
        assert self.listener is not None and self.work is not None
        k = self.kernel
        if fdt is None:
            fdt = RemoteFdTable(k.topology.kernel.rlimit_nofile, pid, self.listener, k.placeholder)
        if isinstance(fdt, RemoteFdTable) and fdt.closer is None:
            fdt.closer = self._close_in
        proc = Process(k, pid, fdt, name, mm=self.remote_memory(pid))
        proc.real_pid = True  # a real process: the real /proc/<pid> answers for its real fds
        proc.fget_real_hook = self._fget_real(pid)
        proc.ids_hook = self._ids
        pmm = self.mms.get(parent.pid) if parent is not None else None
        if parent is not None and parent.pid in self.cwd:
            self.cwd[pid] = self.cwd[parent.pid]  # copy_fs: a fork starts where its parent is
        if pmm is None:
            tmm = TraceeMm(proc, pid, self.work)
        else:
            tmm = pmm.share(proc, pid) if share_vm else pmm.fork(proc, pid)
        with self.lock:
            k.processes.append(proc)
            self.tasks[pid] = proc
            self.threads[pid] = {pid}
            self.mms[pid] = tmm
            if parent is not None:
                self.parents[pid] = parent.pid
        return proc

    def remote_memory(self, pid: int) -> RemoteMemory:
        """The address space of ``pid`` for uaccess (sharing the loaded libc calls)."""
        mm = RemoteMemory(pid, like=self._mm_like)
        if self._mm_like is None:
            self._mm_like = mm
        return mm

    def _ids(self) -> Ids:
        """The calling thread's credentials (``current_cred()``), from its
        ``/proc/<tid>/status``: a child that called ``setuid`` is judged by its new ids.
        The file stays open per thread until it exits (a ``pread`` at 0 shows the task
        anew: ~8 us where an open and a read take ~45); a held file of a task that has
        gone fails (``ESRCH``) and is opened again.  Under ``_status_lock``, so
        ``thread_gone`` never closes a file being read."""
        k = self.kernel
        tid = k.current_tid or k.current.pid
        with self._status_lock:
            for _attempt in (1, 2):
                fd = self._status_fds.get(tid)
                if fd is None:
                    try:
                        fd = hide(k, REAL.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC))
                    except OSError:
                        break
                    self._status_fds[tid] = fd
                try:
                    return status_ids(REAL.pread(fd, 4096, 0))
                except OSError:
                    del self._status_fds[tid]
                    kernel_close(k, fd)
        raise kerr(ESRCH)

    def _fget_real(self, pid: int) -> Callable[[int], int]:
        def fget_real(fd: int) -> int:
            """``pidfd_getfd``: a real fd of the child, for a driver that takes one."""
            lib = libc()
            try:
                pidfd = lib.pidfd_open(pid)
            except OSError:
                raise kerr(ESRCH) from None
            try:
                return hide(self.kernel, lib.pidfd_getfd(pidfd, fd))
            except OSError:
                raise kerr(EBADF) from None
            finally:
                REAL.close(pidfd)

        return fget_real

    def _close_in(self, pid: int, fd: int) -> None:
        """Close ``fd`` in supervised process ``pid`` (``RemoteFdTable.put_unused``)."""
        tmm = self.mms.get(pid)
        if tmm is not None:
            tmm.close_fd(fd)

    def add_thread(self, proc: Process, tid: int) -> None:
        with self.lock:
            self.tasks[tid] = proc
            self.threads[proc.pid].add(tid)

    def thread_gone(self, tid: int) -> Process | None:
        """Forget ``tid``; returns its process when that was its last thread."""
        self.served.pop(tid, None)
        with self._status_lock:
            status_fd = self._status_fds.pop(tid, None)
        if status_fd is not None:
            kernel_close(self.kernel, status_fd)
        with self.lock:
            proc = self.tasks.pop(tid, None)
            if proc is None:
                return None
            left = self.threads.get(proc.pid, set())
            left.discard(tid)
            if left:
                return None
            self.threads.pop(proc.pid, None)
        self.release_mm(proc)
        return proc

    def release_mm(self, proc: Process) -> None:
        """``exit_mm`` of the tracer's view: the mock mappings' file references go with
        the address space (once: at the exit stop, or when the last thread is gone)."""
        with self.lock:
            self.cwd.pop(proc.pid, None)
            tmm = self.mms.pop(proc.pid, None)
        if tmm is not None:
            tmm.exit()

    def reparent(self, pid: int, parent: int | None) -> None:
        """Process ``pid``'s parent is ``parent`` (``CLONE_PARENT``; ``None``: outside
        the tree)."""
        with self.lock:
            if parent is None:
                self.parents.pop(pid, None)
            else:
                self.parents[pid] = parent

    def exit_done(self, pid: int) -> None:
        """The tracer has handled (and reaped) an exit of a thread of process ``pid``:
        when that was the process, its children are orphans, outside the tree."""
        with self.lock:
            self.exiting.discard(pid)
            if pid not in self.threads:
                self.parents.pop(pid, None)
                for child in [c for c, p in self.parents.items() if p == pid]:
                    del self.parents[child]
            self.exited.notify_all()

    def _parent_exited(self, pid: int) -> bool:
        """Has the parent of process ``pid`` a thread that exited and whose exit the
        tracer has not handled yet?  ``waitid(WNOWAIT)`` of each of its threads: that
        takes ``tasklist_lock``, which the exiting task holds from the reparenting of
        its children to its ``exit_state``, so an orphan that saw ``getppid`` change
        finds its parent's exit here."""
        ppid = self.parents.get(pid)
        if ppid is None:
            return False
        if ppid in self.exiting:
            return True
        for t in tuple(self.threads.get(ppid, ())):  # (a copy made under the GIL)
            try:
                info = os.waitid(os.P_PID, t, _WALL | os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                continue  # reaped meanwhile (its exit was handled) or not ours
            if info is not None and info.si_code in _EXIT_CODES:
                return True
        return False

    def exits_first(self, pid: int) -> None:
        """Before serving a call of process ``pid``: wait until the tracer has handled
        an exit of its parent that already happened.

        Linux releases a dying task's files (``exit_files``) before ``exit_notify``
        reparents its children and makes it a zombie, so an orphan that saw
        ``getppid()`` change already sees its files' counts drop; here the release is
        the tracer's (``TreeTracer.gone``), which may come later than the orphan's
        next call.  The root (no parent in the tree) pays nothing; another process
        one ``waitid`` per thread of its parent (~1 us, the ``waitid`` ~0.5 us of it
        on an idle host; a notification costs 20-60 us).  Lock-free signs of the exit
        (a pidfd, ``SIGCHLD``) come after the reparenting: only ``waitid`` is ordered
        after what the orphan saw.  The wait is bounded: the supervisor never hangs."""
        if not self._parent_exited(pid):
            return
        deadline = time.monotonic() + _EXIT_WAIT
        while True:
            with self.exited:
                self.exited.wait(0.01)
            if not self._parent_exited(pid) or time.monotonic() > deadline:
                return

    def unshare_files(self, proc: Process, keep: bool) -> bool:
        """``unshare_fd``: leave a table shared with other processes (``CLONE_FILES``).
        An exiting one takes an empty table (its exit closes nothing of theirs); an
        exec'ing one, or ``unshare(CLONE_FILES)``/``CLOSE_RANGE_UNSHARE`` (``keep``),
        a copy holding the same files, one more reference each.  False: the table was
        the process's own (nothing to do, as Linux when the count is 1)."""
        fdt = proc.fdt
        if not isinstance(fdt, RemoteFdTable) or len(fdt.users) < 2:
            return False
        with proc.files_lock:
            fdt.users.discard(proc.pid)
            if fdt.pid == proc.pid:
                fdt.pid = min(fdt.users)  # (its /proc/<pid>/fd lists the shared table)
            files = sorted(proc.files.items()) if keep else []
            own = fdt.copy(proc.pid)
            if keep:
                own.cloexec = set(fdt.cloexec)
            proc.fdt = own
            proc.files = own.files
            proc.slots = [None] * 64
            proc.files_lock = type(proc.files_lock)()
            for fd, file in files:
                proc.fd_install(fd, file.get())
        return True

    def exec_threads(self, proc: Process, pid: int) -> list[int]:
        """``de_thread``: after an exec only ``pid`` is left of ``proc``'s threads; returns
        the tids that went."""
        with self.lock:
            gone = [t for t in self.threads.get(proc.pid, set()) if t != pid]
            for t in gone:
                self.tasks.pop(t, None)
            self.threads[proc.pid] = {pid}
            self.tasks[pid] = proc
        return gone

    # -- the workers ------------------------------------------------------------------------
    def prepare(self, first: Callable[[], None] | None = None) -> None:
        """Start the workers ahead of the child (they wait for its listener): thread
        start-up then does not compete with the child's exec for the CPU.  The first
        worker runs ``first`` before it serves (the launcher's ``posix_spawn``)."""
        if self.pool is None:
            self.pool = Pool(None, self.serve, on_fatal=self._kill_tree, kernel=self.kernel)
            self.pool.start(first)

    def start(self, listener_fd: int, root: int, name: str) -> Process:
        """Serve the listener (from now on a real fd this kernel holds): the root process
        first, then the workers.  The listener fd is the supervisor's from the call on,
        even when this raises (a deferred boot that fails, say): :meth:`stop` closes it."""
        try:
            self.listener = Listener(hold(self.kernel, listener_fd))
        except BaseException:
            kernel_close(self.kernel, listener_fd)
            raise
        self.listener.sync_wake_up()
        self.kernel.subsys(Signals).add(self.signal_pending, self.will_sleep)
        proc = self.new_process(root, name)
        if self.fail_nth:
            self.arm_fail_nth(self.fail_nth, proc)
        self.prepare()
        assert self.pool is not None
        self.pool.attach(self.listener)
        return proc

    def _kill_tree(self, why: BaseException) -> None:
        """The listener failed: SIGKILL every task (the tracer then sees them go)."""
        self.errors.append(f"listener failed, tree killed: {why!r}")
        with self.lock:
            pids = list(self.threads)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop and join every worker; close the listener; end what the tracer missed."""
        if self.pool is not None:
            self.pool.stop()
            self.errors += self.pool.errors
        if self.listener is not None:
            self.kernel.subsys(Signals).remove(self.signal_pending, self.will_sleep)
            kernel_close(self.kernel, self.listener.fd)
        with self._status_lock:
            status_fds, self._status_fds = list(self._status_fds.values()), {}
        for fd in status_fds:
            kernel_close(self.kernel, fd)
        for tmm in self.mms.values():
            tmm.exit()
        for proc in {id(p): p for p in self.tasks.values()}.values():
            if not proc.exited:  # tasks whose exit the tracer never saw
                proc.exit()
        self.tasks.clear()
        self.threads.clear()
        self.mms.clear()
        self.scm.release_all()  # messages never received
        self.exec_holds.release_all()
        self.epoll.stop()

    def signal_pending(self) -> bool:
        """``signal_pending(current)`` for a worker of this tree sleeping in the kernel:
        the notification it serves was withdrawn (the caller took a signal -- its own
        kernel restarts the call or says ``EINTR`` -- or died).  False on other threads."""
        lst = self.listener
        nid = lst.cpu.notif_id if lst is not None else None
        return nid is not None and lst is not None and not lst.id_valid(nid)

    def will_sleep(self) -> None:
        """A worker of this tree is about to sleep in the kernel: the pool hands its lead
        on now rather than when the watchdog notices (other calls go on at once)."""
        lst, pool = self.listener, self.pool
        if lst is not None and pool is not None and lst.cpu.notif_id is not None:
            pool.hand_off()

    def id_valid(self, nid: int) -> bool:
        """Is the task of notification ``nid`` still waiting (memory read is its own)?"""
        return self.listener is not None and self.listener.id_valid(nid)

    # -- one notification ----------------------------------------------------------------------
    def serve(self, nid: int, tid: int, nr: int, args: tuple[int, ...]) -> None:
        """Run the handler for one trapped syscall and answer it."""
        lst = self.listener
        assert lst is not None
        entry = TABLE.get(nr)
        proc = self.tasks.get(tid)
        if self.exec_holds.held:
            self.exec_holds.release(tid)  # its exec failed: it is calling again
        prev = self.served.get(tid) if self.served else None
        if prev is not None:  # (a thread has one syscall at a time: see _Served)
            if _later(prev.nid, nid):
                return  # a later call of the thread came first: this one is dead
            if prev.nr == nr and prev.args == args:
                self._restarted(lst, nid, tid, prev)
                return
            if self.served.get(tid) is prev:
                del self.served[tid]  # the thread has moved on
        if entry is None or proc is None or self._quick_continue(entry, proc, nr, args):
            try:
                lst.send_continue(nid)  # a real fd or path: the common, cheap case
            except OSError as e:
                if e.errno != ENOENT:
                    raise
            return
        pool = self.pool
        if pool is not None and not pool.watching:
            pool.watch()  # a handler may block: the watchdog hands the lead on then
        me = self.served[tid] = _Served(nid, nr, args)
        try:
            self._serve(lst, entry, proc, nid, tid, args, me)
        finally:
            self._served_done(tid, me)

    def _serve(
        self, lst: Listener, entry: Syscall, proc: Process, nid: int, tid: int,
        args: tuple[int, ...], me: _Served,
    ) -> None:  # fmt: skip
        if proc.pid in self.parents:
            self.exits_first(proc.pid)
        lst.begin(nid)
        hook = self._fault_hook(proc, tid)
        try:
            with self.kernel.running(proc, tid):
                if hook is None:
                    res = entry.handler(Call(self, proc, tid, nid, args))
                else:
                    set_cpu_fault(hook)
                    try:
                        res = entry.handler(Call(self, proc, tid, nid, args))
                    finally:
                        set_cpu_fault(None)
        except OSError as e:
            self._settle()
            self._send(lst, nid, proc, tid, error=e.errno or EINVAL, served=me)
            return
        except Exception as e:  # a kernel bug must not hang or kill the child
            self.kernel.warn(f"supervisor: {entry.name} from {tid} raised {e!r}")
            self._send(lst, nid, proc, tid, error=ENOSYS)
            return
        self._settle()
        if res is CONTINUE:
            self._send(lst, nid, proc, tid, cont=True)
        else:
            assert isinstance(res, int)
            self._send(lst, nid, proc, tid, val=res, served=me)

    def _settle(self) -> None:
        """The epoll mirrors follow what the call just changed (``EpollMirrors.settle``);
        nothing to do (one test) while no mock fd is in an epoll instance."""
        if self.epoll.mirrors:
            self.epoll.settle()

    def _restarted(self, lst: Listener, nid: int, tid: int, prev: _Served) -> None:
        """Notification ``nid`` is ``prev`` restarted: wait for its run, take its answer
        (none kept: it installed fds, or gave up -- run it again)."""
        pool = self.pool
        if pool is not None and not pool.watching:
            pool.watch()  # (the wait may be long: the watchdog hands the lead on)
        if not prev.done:
            with self.restarts:
                prev.waiters += 1
                while not prev.done:
                    self.restarts.wait(0.05)
        if prev.answer is not None:
            if self._answer_again(lst, nid, *prev.answer) and self.served.get(tid) is prev:
                del self.served[tid]  # taken (else: restarted again, kept)
            return
        entry, proc = TABLE.get(prev.nr), self.tasks.get(tid)
        if entry is None or proc is None:
            return  # gone meanwhile
        me = self.served[tid] = _Served(nid, prev.nr, prev.args)
        try:
            self._serve(lst, entry, proc, nid, tid, prev.args, me)
        finally:
            self._served_done(tid, me)

    def _served_done(self, tid: int, me: _Served) -> None:
        me.done = True
        if me.waiters:
            with self.restarts:
                self.restarts.notify_all()
        if me.answer is None and self.served.get(tid) is me:
            del self.served[tid]

    def _answer_again(self, lst: Listener, nid: int, val: int, error: int) -> bool:
        """The restarted call whose first run was served: its answer, not a second run.
        False: not taken either (restarted once more)."""
        try:
            lst.send(nid, val, error)
        except OSError as e:
            if e.errno != ENOENT:
                raise
            return False
        return True

    # -- fault injection ---------------------------------------------------------------------
    def arm_fail_nth(self, n: int, root: Process) -> FailNth:
        """Fail the ``n``-th fault point any task of the tree reaches (counted across the
        tree, in the order the calls are served)."""
        self.tree_fail = FailNth(self.faults.kernel, root, 0, n, any_task=True)
        return self.tree_fail

    def _fault_hook(self, proc: Process, tid: int) -> FailNth | None:
        """The count to arm while serving ``tid``: the tree's, else the task's own
        (its ``/proc/thread-self/fail-nth``)."""
        tree = self.tree_fail
        if tree is not None and tree.remaining > 0:
            return tree
        return self.faults.task_hook(proc, tid)

    def _quick_continue(
        self, entry: Syscall, proc: Process, nr: int, args: tuple[int, ...]
    ) -> bool:
        """Is the call surely not the mock's, decided without the handler (no current
        task, no ``Call``)?  A real fd in an fd-only call; ``close`` of a real fd the
        tracer keeps nothing at; ``munmap`` in a process without mock mappings; a path
        outside ``/dev``, ``/sys`` and ``/proc`` (read here, once: most of what a
        program's start-up traps is ``stat``/``openat`` of its libraries); a message
        without a control buffer, or with no mock fd in it."""
        fd_arg = entry.fd_arg
        if fd_arg is not None:  # (SIOCGIF* & co. on any socket are the kernel's)
            return _i32(args[fd_arg]) not in proc.files and (
                nr != _NR_IOCTL or not is_dev_ioctl(args[1] & 0xFFFFFFFF)
            )
        if entry.path_arg is not None:
            return _host_path(proc, entry.path_arg, args)
        if nr == _NR_CLOSE:
            return _i32(args[0]) not in proc.files
        if nr == _NR_MUNMAP:
            return not proc.mappings
        if nr == _NR_GETCWD:
            return proc.pid not in self.cwd
        if nr == _NR_RECVMMSG:
            return quick_recvmmsg(proc, args)
        if entry.quick is not None:
            return entry.quick(proc, args)
        return False

    def _send(
        self, lst: Listener, nid: int, proc: Process | None, tid: int, val: int = 0,
        error: int = 0, cont: bool = False, served: _Served | None = None,
    ) -> None:  # fmt: skip
        """Answer; when the child can no longer take it (``ENOENT``: it died, or a
        signal interrupted its wait -- ``SIGCHLD`` of a child's exit does, for a traced
        task -- and the call will be restarted), undo the fds the handler made, or,
        if it made none, keep the answer (in ``served``) for the restarted call:
        Linux's ioctls and reads are not interrupted once they run, so the restart
        must not run the handler a second time (an ``UNSET_CONTAINER`` that worked
        would say ``EINVAL``, a read lose its data)."""
        lost = lst.lost()  # (the handler gave up: its caller was no longer waiting)
        added = lst.end()
        try:
            lst.send(nid, val, error, cont)
        except OSError as e:
            if e.errno != ENOENT:
                raise
            if self._unpark(tid, None if cont else -error if error else val):
                return  # answered through ptrace: the fds the handler made stay
            if proc is not None:
                for fd in added:
                    if fd in proc.files:
                        proc.forget_fd(fd)
            if served is not None and not added and not lost:
                served.answer = (val, error)

    def _unpark(self, tid: int, result: int | None) -> bool:
        """The call of ``tid`` being answered was interrupted by the tracer to revoke or
        lay a mapping of its own process (``TracerWork.park_served``: the thread was
        kept stopped, its syscall neither restarted nor answered): answer it now through
        ptrace (``result``; ``None``: let it run again, for a ``CONTINUE``).  Without
        this the restarted call would be served a second time -- the driver's side
        effects twice, the second serve racing the first's end.  False when ``tid`` is
        not parked (it died, or was never interrupted)."""
        work = self.work
        if work is None or tid not in work.parked:
            return False
        try:
            return work.unpark(tid, result)
        except OSError:  # (gone meanwhile: its exit is the tracer's)
            return False


class _Served:
    """A call a handler runs for a thread (``done`` once it ends), and the answer the
    thread could not take.  A thread has one syscall at a time: a new
    notification with the same call from it is that call restarted (its wait was
    interrupted by a signal, perhaps while the handler still ran), which takes this
    answer instead of a second run; any other call from it means it moved on, and a
    notification older than the one recorded (notification ids grow) is dead: its
    restart was received first."""

    __slots__ = ("answer", "args", "done", "nid", "nr", "waiters")

    def __init__(self, nid: int, nr: int, args: tuple[int, ...]) -> None:
        self.nid, self.nr, self.args = nid, nr, args
        self.answer: tuple[int, int] | None = None
        #: the handler has ended; restarts waiting for it (``Supervisor.restarts``)
        self.done = False
        self.waiters = 0


def _later(a: int, b: int) -> bool:
    """Was notification id ``a`` made after ``b`` (the filter's counter, from a random
    start, wraps at 2**64)?"""
    return 0 < (a - b) % (1 << 64) < 1 << 63


_WALL = 0x40000000
_EXIT_CODES = (os.CLD_EXITED, os.CLD_KILLED, os.CLD_DUMPED)
#: the longest a call waits for the tracer to handle its parent's exit (seconds)
_EXIT_WAIT = 10.0
_NR_CLOSE, _NR_MUNMAP, _NR_GETCWD = NR["close"], NR["munmap"], NR["getcwd"]
_NR_IOCTL = NR["ioctl"]
_NR_RECVMMSG = NR["recvmmsg"]
_ROOTS = tuple(os.fsencode(r) for r in paths.ROOTS)


def _host_path(proc: Process, where: tuple[int, int | None], args: tuple[int, ...]) -> bool:
    """Is the path argument surely the host's: absolute outside the mock roots, or
    empty with no mock ``dirfd`` (the real kernel answers ``AT_EMPTY_PATH`` or
    ``ENOENT``)?  A relative path needs the caller's cwd or ``dirfd``: not decided here."""
    path_i, dirfd_i = where
    addr = args[path_i]
    if addr == 0:
        return False  # the handler says EFAULT, or AT_EMPTY_PATH with a NULL path
    mm = proc.mm
    if not isinstance(mm, RemoteMemory):
        return False
    head = mm.peek(addr, min(256, 4096 - addr % 4096))  # (one page: a partial read fails)
    if head is None:
        return False
    nul = head.find(b"\0")
    if nul < 0:
        return False
    if nul == 0:
        return dirfd_i is None or _i32(args[dirfd_i]) not in proc.files
    return head[0] == 0x2F and not head.startswith(_ROOTS)  # "/"


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v
