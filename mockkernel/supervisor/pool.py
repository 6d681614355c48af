"""The workers that receive and answer notifications: the leader serves inline, and a
watchdog hands the lead on when a call blocks.

One worker at a time is the *leader*: it polls the listener, receives a notification
and serves it itself (no hand-off between threads on the common path, which would
cost a wake-up and a GIL ping-pong per syscall).  The others wait for the lead.  A
watchdog checks every ``period`` seconds: if the leader is still serving the same
notification it saw last time, that call is blocking (a fence wait, a blocking read),
so it releases the lead on the leader's behalf -- a waiting worker (started if none
waits) becomes the leader, and the blocked one leaves when its call returns.  So a
blocking mock syscall stalls the other threads of the tree for at most ~2 periods.
The watchdog starts with the first call that may block (:meth:`Pool.watch`: a
handler is about to run); a tree whose calls all take the fast CONTINUE path -- most
of a program's start-up -- never pays for that thread.
"""

from __future__ import annotations

import _thread
import os
import select
import threading
from collections.abc import Callable
from errno import EINTR, ENOENT
from typing import TYPE_CHECKING

from ..realfd import REAL, hide, kernel_close
from .notify import Listener

if TYPE_CHECKING:
    from ..context import KernelContext

__all__ = ["Pool"]

Serve = Callable[[int, int, int, tuple[int, ...]], None]
MAX_WORKERS = 64


class Pool:
    """The workers of one listener; ``serve(nid, tid, nr, args)`` answers one call."""

    def __init__(
        self,
        listener: Listener | None,
        serve: Serve,
        period: float = 0.002,
        on_fatal: Callable[[BaseException], None] | None = None,
        *,
        kernel: KernelContext,
    ) -> None:
        self.kernel = kernel  # (it holds the stop pipe)
        self.listener = listener
        #: set once the listener is known: workers started before it (``start`` ahead of
        #: the child's fork, off the child's start-up path) wait for it
        self._attached = threading.Event()
        if listener is not None:
            self._attached.set()
        self._serve = serve
        self.period = period
        #: called when the listener itself fails: the tree can no longer be served
        self._on_fatal = on_fatal
        #: what went wrong while serving (a failed answer), for the supervisor's report
        self.errors: list[str] = []
        self._lead = threading.Lock()
        self._lock = threading.Lock()
        self._ticket = 0
        self._serving: int | None = None  # the leader's serve in progress
        self._serving_thread = 0  # the thread serving it
        self._handed: set[int] = set()  # serves the watchdog handed the lead on from
        self._waiting = 0
        self._workers: list[_Worker] = []
        self._stop_r, self._stop_w = (hide(kernel, fd) for fd in os.pipe())
        self._stopped = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="mockkernel-sup-watchdog")
        #: the watchdog runs (started by the first call that may block)
        self.watching = False
        #: the ticket :meth:`watch` gave the serve in progress
        self._watch_ticket = 0
        self.handoffs = 0

    def start(self, first: Callable[[], None] | None = None) -> None:
        """Start the first worker; it runs ``first`` before it serves (the launcher's
        ``posix_spawn``: a worker started anyway, so no thread of its own), and never
        leaves the pool before it stops (the spawned child is its child: a
        ``PR_SET_PDEATHSIG`` would fire when the thread ends)."""
        with self._lock:
            self._spawn(first)

    def watch(self) -> None:
        """Start the watchdog if it is not running (a call that may block is next).

        Called by the serve in progress on the one (unwatched) leader: that serve
        becomes the leader's ticket, so the watchdog can hand the lead on from it."""
        with self._lock:
            if self.watching or self._stopped.is_set():
                return
            self._ticket += 1
            self._serving = self._watch_ticket = self._ticket
            self._serving_thread = threading.get_ident()
            self.watching = True
            self._watchdog.start()

    def _spawn(self, first: Callable[[], None] | None = None) -> None:
        """A new worker (``self._lock`` held)."""
        w = _Worker()
        self._workers.append(w)
        w.start(self._worker, first)

    def attach(self, listener: Listener) -> None:
        """The listener to serve (a pool started without one)."""
        self.listener = listener
        self._attached.set()

    def stop(self) -> None:
        """Stop and join every worker and the watchdog (the tree is gone)."""
        with self._lock:
            self._stopped.set()
            watching = self.watching
        self._attached.set()
        REAL.write(self._stop_w, b"x")
        if watching:
            self._watchdog.join()
        while True:
            with self._lock:
                alive = [t for t in self._workers if t.is_alive()]
            if not alive:
                break
            for t in alive:
                t.join()
        for fd in (self._stop_r, self._stop_w):
            kernel_close(self.kernel, fd)

    def _next(self, poller: select.poll) -> tuple[int, int, int, tuple[int, ...]] | None:
        """As the leader: the next notification, or ``None`` when the pool stops."""
        listener = self.listener
        assert listener is not None
        stop_r, stopped = self._stop_r, self._stopped
        while not stopped.is_set():
            for fd, ev in poller.poll():
                if fd == stop_r or not ev & select.POLLIN:
                    stopped.set()  # stop asked, or POLLHUP: no task left
                    return None
            try:
                return listener.recv_call()
            except OSError as e:
                if e.errno in (ENOENT, EINTR):  # withdrawn (the task died), interrupted
                    continue
                raise
        return None

    def _worker(self, first: Callable[[], None] | None) -> None:
        if first is not None:
            try:
                first()
            except Exception as e:
                self.errors.append(f"worker job: {e!r}")
        self._attached.wait()
        if self.listener is None:
            return  # stopped before a listener came
        poller = select.poll()
        poller.register(self.listener.fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            with self._lock:
                self._waiting += 1
            self._lead.acquire()
            with self._lock:
                self._waiting -= 1
            while True:  # as the leader
                try:
                    got = self._next(poller)
                except Exception as e:  # the listener is broken: nothing can be served
                    self.errors.append(f"receiving: {e!r}")
                    self._stopped.set()
                    self._lead.release()
                    if self._on_fatal is not None:
                        self._on_fatal(e)  # kill the tree rather than leave it waiting
                    return
                if got is None:
                    self._lead.release()
                    return
                if not self.watching:  # (only a serve on this thread can start it)
                    if self._serve_unwatched(got):
                        continue  # still the one worker, unwatched: keep the lead
                    stay = self._settle(self._watch_ticket)
                else:
                    stay = self._serve_inline(got)
                if not stay and first is None:
                    return  # handed off while blocked, and another worker waits: leave
                break  # (the lead is released, or was handed on): wait for it again

    def _serve_unwatched(self, got: tuple[int, int, int, tuple[int, ...]]) -> bool:
        """Serve without the leader's bookkeeping: with no watchdog there is one worker
        and nobody to hand the lead to, so no lock is taken (the common case: every
        call so far took the fast CONTINUE path).  True when the watchdog is still off;
        False when this very serve started it (:meth:`watch`: the serve became the
        leader's ticket, to settle with :meth:`_settle`)."""
        try:
            self._serve(*got)
        except Exception as e:  # a failed answer must not take the worker down
            self.errors.append(f"serving {got[:3]}: {e!r}")
        return not self.watching

    def _serve_inline(self, got: tuple[int, int, int, tuple[int, ...]]) -> bool:
        """Serve as the leader; False when this worker should leave the pool."""
        with self._lock:
            self._ticket += 1
            ticket = self._serving = self._ticket
            self._serving_thread = threading.get_ident()
        try:
            self._serve(*got)
        except Exception as e:  # a failed answer must not take the worker down
            self.errors.append(f"serving {got[:3]}: {e!r}")
        return self._settle(ticket)

    def _settle(self, ticket: int) -> bool:
        """The leader's serve ``ticket`` is done: release the lead, unless the watchdog
        handed it on meanwhile; False when this worker should leave the pool."""
        with self._lock:
            handed = ticket in self._handed
            if handed:
                self._handed.discard(ticket)
            else:
                self._serving = None
                self._lead.release()
            return not (handed and self._waiting > 0)

    def _hand_on(self, ticket: int) -> None:
        """The leader's serve ``ticket`` blocks: let another worker lead (``_lock`` held)."""
        self._handed.add(ticket)
        self._serving = None
        self.handoffs += 1
        if self._waiting == 0 and len(self._workers) < MAX_WORKERS:
            self._spawn()
        self._lead.release()

    def hand_off(self) -> None:
        """The serve in progress on this thread is about to sleep (a blocking socket
        call): hand the lead on now, as the watchdog would a period or two later."""
        with self._lock:
            ticket = self._serving
            if ticket is not None and self._serving_thread == threading.get_ident():
                self._hand_on(ticket)

    def _watch(self) -> None:
        seen: int | None = None
        while not self._stopped.wait(self.period):
            with self._lock:
                ticket = self._serving
                if ticket is not None and ticket == seen:
                    self._hand_on(ticket)  # that serve blocks: let another lead
                    ticket = None
                seen = ticket


class _Worker:
    """One worker thread, started without waiting for it to run (``threading.Thread``
    blocks its starter until the new thread has taken the GIL and signalled: a wake-up
    and a switch back, ~0.4-1 ms on a loaded host, on the path of every supervised
    start-up).  ``join`` and ``is_alive`` as a thread's."""

    def __init__(self) -> None:
        self._done = threading.Event()

    def start(self, target: Callable[[Callable[[], None] | None], None],
              first: Callable[[], None] | None) -> None:  # fmt: skip
        def run() -> None:
            try:
                target(first)
            finally:
                self._done.set()

        try:
            _thread.start_new_thread(run, ())
        except BaseException:
            self._done.set()
            raise

    def is_alive(self) -> bool:
        return not self._done.is_set()

    def join(self) -> None:
        self._done.wait()
