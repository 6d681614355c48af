"""Sleeping in the kernel: wait queues and ``signal_pending`` (``include/linux/wait.h``).

A blocking syscall (a socket's ``accept`` or ``recv`` with nothing queued) sleeps on a
:class:`WaitQueueHead` until another thread -- another supervised process, the test, a
scripted peer -- makes its condition true and calls :meth:`WaitQueueHead.wake_up`, as
``sk_data_ready`` wakes ``sk_sleep(sk)``.  The sleeper also looks again every
:data:`SLICE` seconds (state changed without a wake-up, a signal), and gives up at its
timeout (``SO_RCVTIMEO``).

``signal_pending(current)`` is the front-end's to say: only it knows how a signal
reaches the task it serves.  Each front-end registers a source with the kernel's
:class:`Signals` (:meth:`Signals.add`); a source answers for the threads it serves and
says False for every other thread:

* the in-process redirection: a Python handler was deferred while the main thread
  sleeps in a syscall (``userspace/signals.py``);
* the supervisor: the notification this worker serves is no longer valid
  (``SECCOMP_IOCTL_NOTIF_ID_VALID``): the caller was signalled (the real kernel then
  restarts its call or fails it with ``EINTR``, per ``SA_RESTART``) or died.

A wait interrupted so ends with ``EINTR`` (see :func:`wait_event_interruptible_timeout`).
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from errno import EINTR

from .context import KernelContext, Subsystem
from .errors import kerr

__all__ = [
    "SLICE",
    "Signals",
    "WaitQueueHead",
    "signal_pending",
    "wait_event_interruptible_timeout",
    "wait_fd_interruptible",
]

#: ``select.poll`` as imported (before a redirection replaces it)
_real_poll = select.poll

#: the longest a sleeper goes without looking at its condition and at signals (s)
SLICE = 0.005


class WaitQueueHead:
    """``wait_queue_head_t``: the sleepers waiting for one kind of event."""

    __slots__ = ("_cond", "_sleepers")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._sleepers = 0

    def waitqueue_active(self) -> bool:
        """``waitqueue_active``: is a task sleeping here now?"""
        return self._sleepers > 0

    def wake_up(self) -> None:
        """``wake_up_interruptible_all``: every sleeper looks at its condition again.
        Nobody asleep: nothing to do (``wq_has_sleeper``; one about to sleep looks again
        within its :data:`SLICE`)."""
        if self._sleepers:
            with self._cond:
                self._cond.notify_all()

    def sleep(self, seconds: float, condition: Callable[[], bool]) -> None:
        """Sleep until a wake-up or ``seconds`` passed (a spurious return is fine), unless
        ``condition()`` holds once this sleeper is counted: a waker that found nobody
        asleep (:meth:`wake_up`) changed the state before, so it is seen here."""
        with self._cond:
            self._sleepers += 1
            try:
                if not condition():
                    self._cond.wait(seconds)
            finally:
                self._sleepers -= 1


SignalSource = Callable[[], bool]


class Signals(Subsystem):
    """The front-ends' answers to ``signal_pending(current)``."""

    name = "signals"
    boot_independent = True  # (filled when a front-end installs, which boots nothing)

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self._sources: tuple[SignalSource, ...] = ()
        self._sleep_hooks: tuple[Callable[[], None], ...] = ()
        self._lock = threading.Lock()

    def add(self, source: SignalSource, will_sleep: Callable[[], None] | None = None) -> None:
        """Register a front-end's source (True: the task this thread serves has a
        signal to take) and what it does when that task is about to sleep (the
        supervisor hands its lead on at once: ``schedule()``)."""
        with self._lock:
            self._sources = (*self._sources, source)
            if will_sleep is not None:
                self._sleep_hooks = (*self._sleep_hooks, will_sleep)

    def remove(self, source: SignalSource, will_sleep: Callable[[], None] | None = None) -> None:
        with self._lock:  # (bound methods compare with ==)
            self._sources = tuple(s for s in self._sources if s != source)
            self._sleep_hooks = tuple(h for h in self._sleep_hooks if h != will_sleep)

    def pending(self) -> bool:
        return any(source() for source in self._sources)

    def will_sleep(self) -> None:
        for hook in self._sleep_hooks:
            hook()


def signal_pending(kernel: KernelContext) -> bool:
    """``signal_pending(current)``: has the task this thread serves a signal to take?"""
    return kernel.subsys(Signals).pending()


def wait_event_interruptible_timeout(
    kernel: KernelContext,
    wq: WaitQueueHead,
    condition: Callable[[], bool],
    timeo: float | None,
) -> bool:
    """Sleep on ``wq`` until ``condition()`` holds (True) or ``timeo`` seconds passed
    (False; ``None``: no timeout).  A signal for the current task ends the sleep with
    ``EINTR`` (Linux's ``-ERESTARTSYS``: the front-end restarts the call per
    ``SA_RESTART``, or the supervised caller's own kernel did already)."""
    if condition():
        return True
    deadline = None if timeo is None else time.monotonic() + timeo
    kernel.subsys(Signals).will_sleep()
    while True:
        if signal_pending(kernel):
            raise kerr(EINTR, "interrupted by a signal while waiting")
        if deadline is None:
            wq.sleep(SLICE, condition)
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                return condition()
            wq.sleep(min(SLICE, left), condition)
        if condition():
            return True


def wait_fd_interruptible(kernel: KernelContext, fd: int, events: int) -> int:
    """Sleep until the *real* ``fd`` (a host pipe the kernel splices with) reports one of
    ``events`` -- or ``POLLERR``/``POLLHUP`` -- and return its poll mask.  Nobody wakes a
    wait queue for a host file, so the sleeper polls it every :data:`SLICE`; a signal
    for the current task ends the sleep with ``EINTR``, as
    :func:`wait_event_interruptible_timeout`."""
    p = _real_poll()
    p.register(fd, events)
    kernel.subsys(Signals).will_sleep()
    while True:
        if signal_pending(kernel):
            raise kerr(EINTR, "interrupted by a signal while waiting")
        ready = p.poll(SLICE * 1000)
        if ready:
            return int(ready[0][1])
