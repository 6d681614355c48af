"""Systematic fault injection (``lib/fault-inject.c``): ``fail-nth`` and ``should_fail``.

As on Linux, a task writes N to ``/proc/thread-self/fail-nth`` (or
``/proc/self/fail-nth``, the thread-group leader's: the main thread in-process) and the
Nth fault point that task then reaches fails; reading the file gives what is left of
the count, ``0`` once the fault was injected (a positive number: the task reached
fewer than N points).  The count is the task's (``current->fail_nth``), spent across
syscalls until it reaches 0.

A fault point is a call ``should_fail(kernel, site)`` where the kernel would fail an
allocation, a user copy or a driver op; on ``True`` the caller fails the way that site
fails on Linux (``ENOMEM`` for an allocation, ``EFAULT`` for a user copy, the op's
error).  Sites: ``FAULT_SITES``.  With no count armed on the calling thread a fault
point costs one attribute check (the per-CPU ``uaccess`` state's ``fault``).

Each injection emits ``fault.inject`` (site, pid) and is recorded on the subsystem's
``injected`` list, so a sweep can say which site it failed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .context import Subsystem
from .trace import TracePoint
from .uaccess import cpu_fault, set_cpu_fault

if TYPE_CHECKING:
    from .context import KernelContext
    from .process import Process

__all__ = ["FAULT_SITES", "FailNth", "FaultInject", "should_fail"]

trace_fault_inject = TracePoint("fault.inject", "site", "pid")

#: The fault points, by site name (what ``fault.inject`` and a sweep report).
FAULT_SITES = (
    "alloc_fd",  # get_unused_fd_flags: ENOMEM (expand_files)
    "alloc_file",  # alloc_file_pseudo: ENOMEM
    "copy_from_user",  # fail_usercopy: EFAULT
    "copy_to_user",  # fail_usercopy: EFAULT
    "dma_buf_export",  # kzalloc of the dma_buf: ENOMEM
    "dma_buf_attach",  # kzalloc of the attachment: ENOMEM
    "map_dma_buf",  # the exporter's map op: ENOMEM
    "pin",  # the exporter's pin op: ENOMEM
    "tph_query",  # the exporter's TPH op: ENOMEM
    "netlink_skb",  # genlmsg_new / nlmsg_new: ENOBUFS
    "uverbs_obj",  # a uverbs object's allocation: ENOMEM
)


@dataclass
class FailNth:
    """One task's ``fail_nth`` count (the thread ``ident`` serving ``proc``)."""

    kernel: KernelContext
    proc: Process
    ident: int
    remaining: int = 0
    #: the sites reached while counting, in order (a sweep reports the failed one)
    reached: list[str] = field(default_factory=list)
    #: counts the points every task reaches, not only ``proc``'s: a supervised tree's
    #: one count (``mockkernel run --fail-nth N -- CMD``, ``mockkernel sweep -- CMD``)
    any_task: bool = False

    def fail(self, site: str) -> bool:
        """The uaccess side's entry (``uaccess.FaultHook``): count this point."""
        return self.kernel.subsys(FaultInject).hit(self, site)


class FaultInject(Subsystem):
    """The ``fail-nth`` counts of one kernel's tasks, and what was injected."""

    name = "fault_inject"

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self.counts: dict[tuple[int, int], FailNth] = {}
        #: (site, pid) of each fault injected so far
        self.injected: list[tuple[str, int]] = []
        #: serialises counting: a supervised tree's tasks are served on several threads
        self.lock = threading.Lock()

    def count(self, proc: Process, ident: int) -> FailNth:
        key = (proc.pid, ident)
        fn = self.counts.get(key)
        if fn is None:
            fn = self.counts[key] = FailNth(self.kernel, proc, ident)
        return fn

    def arm(self, proc: Process, n: int, ident: int | None = None) -> None:
        """``echo N > fail-nth`` for ``proc``'s thread ``ident`` (default: the caller).

        The per-CPU hook is set when that thread is the caller (the usual case: a task
        writes its own file); another thread's count takes effect at its next syscall
        fault point only if that thread arms it itself."""
        me = threading.get_ident()
        fn = self.count(proc, me if ident is None else ident)
        fn.remaining = n
        fn.reached.clear()
        if fn.ident == me:
            set_cpu_fault(fn if n else None)

    def remaining(self, proc: Process, ident: int) -> int:
        fn = self.counts.get((proc.pid, ident))
        return 0 if fn is None else fn.remaining

    def hit(self, fn: FailNth, site: str) -> bool:
        """A fault point reached with ``fn`` armed on this CPU: count it down."""
        kernel = self.kernel
        current = getattr(kernel, "current", None)
        if current is None or (current is not fn.proc and not fn.any_task):
            return False
        with self.lock:
            if fn.remaining <= 0:
                return False
            fn.remaining -= 1
            fn.reached.append(site)
            if fn.remaining:
                return False
        set_cpu_fault(None)
        self.injected.append((site, current.pid))
        trace_fault_inject(kernel.tracer, site, current.pid)
        return True

    def task_hook(self, proc: Process, tid: int) -> FailNth | None:
        """The armed count a front-end serving ``proc``'s thread ``tid`` (a supervised
        task, whose ``fail-nth`` is keyed by its tid) puts on its CPU for the call
        (``set_cpu_fault``), or None: one dict probe while nothing is armed."""
        if not self.counts:
            return None
        fn = self.counts.get((proc.pid, tid))
        return fn if fn is not None and fn.remaining > 0 else None

    def shutdown(self) -> None:
        fn = cpu_fault()
        if isinstance(fn, FailNth) and fn.kernel is self.kernel:
            set_cpu_fault(None)
        self.counts.clear()


def should_fail(kernel: KernelContext, site: str) -> bool:
    """True when this fault point must fail (``should_fail``): one attribute check when
    no count is armed on the calling thread."""
    fn = cpu_fault()
    if fn is None:
        return False
    if not isinstance(fn, FailNth) or fn.kernel is not kernel:
        return False
    return fn.fail(site)
