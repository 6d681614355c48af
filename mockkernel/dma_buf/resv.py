"""Reservation objects (``drivers/dma-buf/dma-resv.c``): a buffer's lock and its fences.

Every dma-buf has one ``DmaResv``: the ww_mutex importers hold to pin, map and unmap,
and the fences of the work that uses the buffer, each with a ``DMA_RESV_USAGE_*``
saying who must wait for it.  A waiter of a usage waits for every fence of that usage
or a stronger one (``KERNEL`` < ``WRITE`` < ``READ`` < ``BOOKKEEP``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..locks import Mutex
from .fence import DmaFence, DmaFenceArray

if TYPE_CHECKING:
    from ..process import TaskContext

__all__ = [
    "DMA_RESV_USAGE_BOOKKEEP",
    "DMA_RESV_USAGE_KERNEL",
    "DMA_RESV_USAGE_READ",
    "DMA_RESV_USAGE_WRITE",
    "DmaResv",
    "dma_resv_get_singleton",
]

# enum dma_resv_usage
DMA_RESV_USAGE_KERNEL = 0
DMA_RESV_USAGE_WRITE = 1
DMA_RESV_USAGE_READ = 2
DMA_RESV_USAGE_BOOKKEEP = 3
#: the names ``dma_resv_describe`` prints, by usage
USAGE_NAMES = ("kernel", "write", "read", "bookkeep")


class DmaResv(Mutex):
    """The reservation object: a lock plus the fences of the buffer."""

    __slots__ = ("fences",)

    def __init__(self, kernel: TaskContext, name: str) -> None:
        super().__init__(kernel, name)
        self.fences: list[tuple[DmaFence, int]] = []

    def add_fence(self, fence: DmaFence, usage: int) -> None:
        """``dma_resv_add_fence``: the fence takes the first slot that holds a signalled
        fence, or an older fence of its context with the same or a weaker usage (KERNEL <
        WRITE < READ < BOOKKEEP); otherwise it is appended."""
        self.assert_held()
        for i, (old, old_usage) in enumerate(self.fences):
            if (
                old.context == fence.context and old_usage >= usage and fence.is_later_or_same(old)
            ) or old.signaled:
                self.fences[i] = (fence, usage)
                return
        self.fences.append((fence, usage))

    def fences_for(self, usage: int) -> list[DmaFence]:
        """Fences a waiter of ``usage`` must wait for (all with usage ≤ it)."""
        return [f for f, u in self.fences if u <= usage]

    def wait(self, usage: int, timeout: float | None = None) -> bool:
        if not self.fences:
            return True
        return all(f.wait(timeout) for f in self.fences_for(usage))


def dma_resv_get_singleton(kernel: TaskContext, resv: DmaResv, usage: int) -> DmaFence | None:
    """The unsignalled fences for ``usage`` as one fence: ``None``, the fence, or an array."""
    pending = [f for f in resv.fences_for(usage) if not f.signaled]
    if not pending:
        return None
    if len(pending) == 1:
        return pending[0]
    return DmaFenceArray(pending, context=kernel.new_id())  # dma_fence_context_alloc
