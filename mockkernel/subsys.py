"""The base of a kernel subsystem: a piece of the kernel that owns its state.

It lives apart from :mod:`mockkernel.kernel` so that a subsystem (dma-buf, ...) can
subclass it without importing the kernel context: the kernel imports the layers below
it, never the other way round.  ``Kernel.subsys(Cls)`` is the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["Subsystem"]


class Subsystem:
    """A piece of the kernel that owns its state (dma-buf, PCI, net, RDMA, ...).

    All are made the same way: ``kernel.subsys(Cls)`` returns the kernel's one
    instance, built on first use as ``Cls(kernel)``.  A subsystem reports what it
    still holds at shutdown with :meth:`leaks` and lets go of its real resources in
    :meth:`shutdown` (called in the reverse order of creation, after every process
    has exited and every file was released).  Override either as needed.
    """

    #: the name leak reports and traces use
    name = "subsystem"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def leaks(self) -> list[str]:
        """What this subsystem still holds that a clean shutdown would not expect."""
        return []

    def shutdown(self) -> None:
        """Release real resources (fds, mappings); the kernel is going away."""
