"""Fences (``drivers/dma-buf/dma-fence.c``, ``dma-fence-array.c``, ``dma-fence-unwrap.c``).

A fence is a completion point of one timeline: a context, a sequence number, the names
of its driver and timeline, and once it signals a timestamp (and maybe an error).  The
stub fence, fence arrays and ``dma_fence_unwrap_merge`` (what ``SYNC_IOC_MERGE`` uses)
live here too.  Nothing here knows about buffers: reservations (:mod:`.resv`) hold
fences, sync files (:mod:`.sync_file`) hand them to userspace.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ..errors import KernelBug

if TYPE_CHECKING:
    from ..process import TaskContext

__all__ = ["DmaFence", "DmaFenceArray", "dma_fence_unwrap", "dma_fence_unwrap_merge"]


class DmaFence:
    """A completion point (``struct dma_fence``): a context, a sequence number, names.

    ``context`` and ``seqno`` order fences of one timeline (``dma_fence_context_alloc``
    gives a driver its contexts; 0 is the stub's).  bufinfo shows ``context:seqno``,
    and the names only while the fence is unsignalled.  ``signal`` records the
    ``CLOCK_MONOTONIC`` time in ``timestamp`` (ns); ``set_error`` before it makes the
    status negative.
    """

    def __init__(
        self,
        driver: str = "mockkernel",
        timeline: str = "stub",
        seqno: int = 0,
        context: int = 0,
    ) -> None:
        self.driver = driver
        self.timeline = timeline
        self.seqno = seqno
        self.context = context
        self._timestamp = 0
        self._error = 0
        #: the earliest deadline asked for (``dma_fence_set_deadline``), in ns
        self.deadline: int | None = None
        self._done = threading.Event()

    @classmethod
    def stub(cls) -> DmaFence:
        """``dma_fence_get_stub``: the one signalled stub fence, context 0, seqno 0.

        Every call returns the same fence.  It is made (and signalled) when this module
        is loaded, not on first use as in the kernel: a signalled fence never changes
        again (``signal`` does nothing, ``set_error`` is refused, deadlines are ignored),
        so it is a constant that every kernel in the process may share.
        """
        return _STUB

    @classmethod
    def private_stub(cls, context: int, timestamp: int) -> DmaFence:
        """``dma_fence_allocate_private_stub``: a new signalled fence of its own context
        (``dma_fence_context_alloc``), seqno 0, signalled at ``timestamp``."""
        f = cls("stub", "stub", 0, context)
        f._timestamp = timestamp
        f._done.set()
        return f

    @property
    def signaled(self) -> bool:
        return self._done.is_set()

    @property
    def timestamp(self) -> int:
        """When it signalled (``dma_fence_timestamp``, ns); 0 while unsignalled."""
        return self._timestamp

    @property
    def error(self) -> int:
        """The error set with ``set_error`` (a negative errno), else 0."""
        return self._error

    def set_error(self, error: int) -> None:
        """``dma_fence_set_error``: only before the fence signals, only a negative errno."""
        if self.signaled:
            raise KernelBug(f"dma_fence_set_error on a signalled fence {self.describe()}")
        if not -4095 <= error < 0:
            raise KernelBug(f"dma_fence_set_error({error}): not a negative errno")
        self._error = error

    def signal(self) -> None:
        if not self._done.is_set():
            self._timestamp = time.monotonic_ns()
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def get_status(self) -> int:
        """``dma_fence_get_status``: 0 while active, then the error or 1."""
        if not self.signaled:
            return 0
        return self.error or 1

    def driver_name(self) -> str:
        """``dma_fence_driver_name``: ``detached-driver`` once signalled."""
        return "detached-driver" if self.signaled else self.driver

    def timeline_name(self) -> str:
        """``dma_fence_timeline_name``: ``signaled-timeline`` once signalled."""
        return "signaled-timeline" if self.signaled else self.timeline

    def set_deadline(self, deadline_ns: int) -> None:
        """``dma_fence_set_deadline``: a hint to an unsignalled fence; the earliest stays."""
        if not self.signaled and (self.deadline is None or deadline_ns < self.deadline):
            self.deadline = deadline_ns

    def is_later(self, other: DmaFence) -> bool:
        """``dma_fence_is_later`` (same context assumed)."""
        return self.seqno > other.seqno

    def is_later_or_same(self, other: DmaFence) -> bool:
        """``dma_fence_is_later_or_same`` (same context assumed)."""
        return self is other or self.seqno >= other.seqno

    def describe(self) -> str:
        """``dma_fence_describe``: ``context:seqno timeline driver [un]signalled``."""
        if self.signaled:
            return f"{self.context}:{self.seqno}   signalled"
        return f"{self.context}:{self.seqno} {self.timeline} {self.driver} unsignalled"


def _signalled_stub() -> DmaFence:
    stub = DmaFence("stub", "stub", 0, 0)
    stub.signal()
    return stub


#: ``dma_fence_stub``: signalled, so immutable from here on (see :meth:`DmaFence.stub`)
_STUB = _signalled_stub()


class DmaFenceArray(DmaFence):
    """A container of fences (``dma_fence_array``): signalled when all of them are.

    Its status is the first error among its fences; its timestamp the latest of theirs.
    ``dma_resv_get_singleton`` and ``dma_fence_unwrap_merge`` make them with a new
    context and seqno 1.
    """

    def __init__(self, fences: list[DmaFence], context: int = 0, seqno: int = 1) -> None:
        super().__init__("dma_fence_array", "unbound", seqno, context)
        self.fences = fences

    @property
    def signaled(self) -> bool:
        return all(f.signaled for f in self.fences)

    @property
    def timestamp(self) -> int:
        if not self.signaled:
            return 0
        return max((f.timestamp for f in self.fences), default=0)

    @property
    def error(self) -> int:
        for f in self.fences:
            if f.error:
                return f.error
        return 0

    def set_error(self, error: int) -> None:
        raise KernelBug("a fence array takes its error from its fences")

    def signal(self) -> None:
        raise KernelBug("a fence array signals when its fences do")

    def set_deadline(self, deadline_ns: int) -> None:
        """``dma_fence_array_set_deadline``: passed on to every fence."""
        for f in self.fences:
            f.set_deadline(deadline_ns)

    def wait(self, timeout: float | None = None) -> bool:
        return all(f.wait(timeout) for f in self.fences)


def dma_fence_unwrap(fence: DmaFence) -> list[DmaFence]:
    """``dma_fence_unwrap_for_each``: the fences of an array, else the fence itself."""
    if isinstance(fence, DmaFenceArray):
        return list(fence.fences)
    return [fence]


def dma_fence_unwrap_merge(kernel: TaskContext, *fences: DmaFence) -> DmaFence:
    """``dma_fence_unwrap_merge``: one fence for all the unsignalled fences inside ``fences``.

    Signalled fences are dropped (their latest timestamp is kept).  None left: a private
    stub signalled at that timestamp; one: that fence; else, sorted by context and seqno
    with only the latest fence of each context kept, one fence or a new array.
    """
    pending: list[DmaFence] = []
    timestamp = 0
    for head in fences:
        for f in dma_fence_unwrap(head):
            if f.signaled:
                timestamp = max(timestamp, f.timestamp)
            else:
                pending.append(f)
    if len(pending) > 1:
        pending.sort(key=lambda f: (f.context, f.seqno))
        kept: list[DmaFence] = []
        for f in pending:  # only the most recent fence of each context
            if kept and kept[-1].context == f.context:
                kept[-1] = f
            else:
                kept.append(f)
        pending = kept
    if not pending:
        return DmaFence.private_stub(kernel.new_id(), timestamp)
    if len(pending) == 1:
        return pending[0]
    return DmaFenceArray(pending, context=kernel.new_id(), seqno=1)
