"""File locks (``fs/locks.c``): POSIX record locks, OFD locks and ``flock`` locks.

Locks belong to an inode (``inode->i_flctx``), so every file of a dma-buf, every open of
a device node sees the same ones: the contexts are kept by the inode's ``(dev, ino)``
(the mock tree makes an ``Inode`` object per open of a node; its number is the node's).
Who owns a lock decides what conflicts and when it goes, as on Linux:

* a POSIX record lock (``F_SETLK``) is the *process's* (``fl_owner`` is its fd table):
  its own locks never conflict with each other, and closing *any* fd of the inode in that
  process drops them all (``locks_remove_posix`` from ``filp_flush``);
* an OFD lock (``F_OFD_SETLK``) and a ``flock`` lock are the open file description's:
  two opens conflict even in one process, and they go with the file's last ``fput``
  (``locks_remove_file``).

POSIX and OFD locks share one list (they conflict with each other); ``flock`` locks are
a separate list that never meets them.  Every change and every wait is under the one
condition of the kernel's :class:`FileLocks` subsystem: waiters (``F_SETLKW``,
``flock`` without ``LOCK_NB``) sleep on it and are woken by any unlock.  A POSIX waiter
is recorded with the lock it waits for (``blocked_hash``), so a request that would wait
on an owner that waits, in a chain, on the requester is ``EDEADLK``
(``posix_locks_deadlock``; OFD requests are not checked, as on Linux).  The rules of
each syscall (argument checks, errnos) live in :mod:`mockkernel.syscalls.fd`.
"""

from __future__ import annotations

import fcntl as _fcntl
import threading
from dataclasses import dataclass, field
from errno import EAGAIN, EDEADLK, EWOULDBLOCK
from typing import TYPE_CHECKING

from .context import KernelContext, Subsystem
from .errors import kerr
from .trace import TracePoint

if TYPE_CHECKING:
    from .fs import File, Inode

__all__ = [
    "FL_FLOCK",
    "FL_OFDLCK",
    "FL_POSIX",
    "OFFSET_MAX",
    "FileLock",
    "FileLockContext",
    "FileLocks",
]

trace_filelock_posix = TracePoint("filelock.posix", "pid", "flags", "type", "start", "end")
trace_filelock_flock = TracePoint("filelock.flock", "pid", "flags", "type", "start", "end")

OFFSET_MAX = 2**63 - 1
#: ``posix_locks_deadlock`` follows at most this many waiting owners (then: no deadlock)
MAX_DEADLK_ITERATIONS = 10
FL_POSIX = 1
FL_FLOCK = 2
FL_OFDLCK = 1024
F_RDLCK, F_WRLCK, F_UNLCK = _fcntl.F_RDLCK, _fcntl.F_WRLCK, _fcntl.F_UNLCK


@dataclass(eq=False)
class FileLock:
    """One lock (``struct file_lock``): ``[start, end]`` inclusive, ``end`` OFFSET_MAX
    meaning "to the end of the file"."""

    owner: object  # POSIX: the Process; OFD and flock: the File
    pid: int  # what F_GETLK reports as l_pid (-1 for an OFD lock)
    flags: int  # FL_POSIX | FL_OFDLCK | FL_FLOCK
    type: int  # F_RDLCK or F_WRLCK
    start: int = 0
    end: int = OFFSET_MAX


@dataclass(eq=False)
class FileLockContext:
    """``struct file_lock_context``: the locks of one inode."""

    posix: list[FileLock] = field(default_factory=list)  # POSIX and OFD locks
    flock: list[FileLock] = field(default_factory=list)


def _conflict(a: FileLock, b: FileLock) -> bool:
    """``posix_locks_conflict``/``flock_locks_conflict``: other owner, overlap, a writer."""
    if a.owner is b.owner:
        return False
    if a.type != F_WRLCK and b.type != F_WRLCK:
        return False
    return a.start <= b.end and b.start <= a.end


class FileLocks(Subsystem):
    """Every inode's lock context of one kernel, and the condition waiters sleep on."""

    name = "file locks"
    probe_independent = True  # (no driver probe reads or changes it)

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self.cond = threading.Condition()
        #: ``i_flctx`` of each inode with locks, by ``(dev, ino)``; dropped when empty
        self.contexts: dict[tuple[int, int], FileLockContext] = {}
        #: ``blocked_hash``: each sleeping POSIX (not OFD) request and the lock it waits for
        self.blocked: list[tuple[FileLock, FileLock]] = []

    def _ctx(self, inode: Inode) -> FileLockContext:
        key = (inode.dev, inode.ino)
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = self.contexts[key] = FileLockContext()
        return ctx

    def _lookup(self, inode: Inode) -> FileLockContext | None:
        return self.contexts.get((inode.dev, inode.ino))

    def _tidy(self, inode: Inode, ctx: FileLockContext) -> None:
        if not ctx.posix and not ctx.flock:
            self.contexts.pop((inode.dev, inode.ino), None)

    def leaks(self) -> list[str]:
        return [
            f"file lock still held: {lk}"
            for c in self.contexts.values()
            for lk in c.posix + c.flock
        ]

    def _trace(self, tp: TracePoint, lock: FileLock) -> None:
        tp(self.kernel.tracer, lock.pid, lock.flags, lock.type, lock.start, lock.end)

    # -- POSIX and OFD record locks ----------------------------------------------------
    def posix_test(self, inode: Inode, req: FileLock) -> FileLock | None:
        """``posix_test_lock``: the first lock that would block ``req``, if any."""
        with self.cond:
            ctx = self._lookup(inode)
            if ctx is None:
                return None
            for lock in ctx.posix:
                if _conflict(lock, req):
                    return lock
        return None

    def posix_set(self, inode: Inode, req: FileLock, wait: bool) -> None:
        """``posix_lock_inode``: take, change or (``F_UNLCK``) release ``req``'s range for
        its owner, merging with the owner's adjacent locks of the same type.  A conflict
        is ``EAGAIN``, or with ``wait`` a sleep until it goes -- ``EDEADLK`` instead when
        the sleep would close a circle of POSIX owners waiting on each other."""
        with self.cond:
            ctx = self._ctx(inode)
            while req.type != F_UNLCK:
                blocker = next((lk for lk in ctx.posix if _conflict(lk, req)), None)
                if blocker is None:
                    break
                if not wait:
                    raise kerr(EAGAIN)
                if self._deadlock(req, blocker):
                    self._tidy(inode, ctx)
                    raise kerr(EDEADLK)
                if req.flags & FL_OFDLCK:
                    self.cond.wait()
                    continue
                entry = (req, blocker)
                self.blocked.append(entry)
                try:
                    self.cond.wait()
                finally:
                    self.blocked.remove(entry)
            self._replace_range(ctx, req)
            self._tidy(inode, ctx)
            self.cond.notify_all()
        self._trace(trace_filelock_posix, req)

    def _deadlock(self, req: FileLock, blocker: FileLock) -> bool:
        """``posix_locks_deadlock``: does ``blocker``'s owner wait (through a chain of
        waiting owners) for a lock of ``req``'s owner?  Never for an OFD request."""
        if req.flags & FL_OFDLCK:
            return False
        for _ in range(MAX_DEADLK_ITERATIONS + 1):  # what_owner_is_waiting_for
            nxt = next((b for w, b in self.blocked if w.owner is blocker.owner), None)
            if nxt is None:
                return False
            if nxt.owner is req.owner:
                return True
            blocker = nxt
        return False

    @staticmethod
    def _replace_range(ctx: FileLockContext, req: FileLock) -> None:
        """The owner's locks lose ``[req.start, req.end]``; ``req`` (unless an unlock) takes
        it, merged with touching locks of the same type."""
        keep: list[FileLock] = []
        start, end = req.start, req.end
        for lk in ctx.posix:
            if lk.owner is not req.owner:
                keep.append(lk)
                continue
            touching = lk.start <= end + 1 and start <= lk.end + 1
            if req.type != F_UNLCK and lk.type == req.type and touching:
                start, end = min(start, lk.start), max(end, lk.end)  # merge
                continue
            if lk.end < req.start or lk.start > req.end:
                keep.append(lk)
                continue
            if lk.start < req.start:  # the part before the range survives
                keep.append(FileLock(lk.owner, lk.pid, lk.flags, lk.type, lk.start, req.start - 1))
            if lk.end > req.end:  # and the part after it
                keep.append(FileLock(lk.owner, lk.pid, lk.flags, lk.type, req.end + 1, lk.end))
        if req.type != F_UNLCK:
            keep.append(FileLock(req.owner, req.pid, req.flags, req.type, start, end))
        keep.sort(key=lambda lk: lk.start)
        ctx.posix[:] = keep

    def remove_posix(self, inode: Inode, owner: object) -> None:
        """``locks_remove_posix``: a close in process ``owner`` drops its POSIX locks."""
        if not self.contexts:
            return
        with self.cond:
            ctx = self._lookup(inode)
            if ctx is None:
                return
            before = len(ctx.posix)
            ctx.posix[:] = [lk for lk in ctx.posix if lk.owner is not owner]
            if len(ctx.posix) != before:
                self._tidy(inode, ctx)
                self.cond.notify_all()

    # -- flock ---------------------------------------------------------------------------
    def flock(self, inode: Inode, req: FileLock, wait: bool) -> None:
        """``flock_lock_inode``: the file's one lock becomes ``req`` (or goes: F_UNLCK).

        A conversion drops the old lock first, as Linux does (another waiter may get in
        between); a conflict is ``EWOULDBLOCK`` or, with ``wait``, a sleep."""
        with self.cond:
            ctx = self._ctx(inode)
            mine = [lk for lk in ctx.flock if lk.owner is req.owner]
            if mine:
                if mine[0].type == req.type:
                    return
                ctx.flock.remove(mine[0])
                self.cond.notify_all()
            if req.type == F_UNLCK:
                self._tidy(inode, ctx)
                return
            while any(_conflict(lk, req) for lk in ctx.flock):
                if not wait:
                    raise kerr(EWOULDBLOCK)
                self.cond.wait()
            ctx.flock.append(req)
        self._trace(trace_filelock_flock, req)

    # -- the last fput -------------------------------------------------------------------
    def remove_file(self, file: File) -> None:
        """``locks_remove_file``: the file's OFD and flock locks go with it."""
        if not self.contexts:
            return
        with self.cond:
            ctx = self._lookup(file.inode)
            if ctx is None:
                return
            ctx.posix[:] = [lk for lk in ctx.posix if lk.owner is not file]
            ctx.flock[:] = [lk for lk in ctx.flock if lk.owner is not file]
            self._tidy(file.inode, ctx)
            self.cond.notify_all()
