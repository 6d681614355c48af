"""The kernel context as the layers below the kernel see it, and the subsystem base.

Every layer below :mod:`mockkernel.kernel` (files, the VFS, processes, dma-buf, PCI,
net, RDMA) types the kernel it is handed against :class:`KernelContext`: the few
things every layer may use -- the tracer, fresh ids, ``WARN()``, the plugin manager,
and the typed registry of subsystems.  What a layer
needs of another layer it asks that layer's subsystem for (``kernel.subsys(Vfs)``),
so no module below the kernel imports :mod:`mockkernel.kernel` and the import graph
has no cycle through it.  Layers that also need the current task type against
:class:`mockkernel.process.TaskContext`, which adds the processes; the few that read
the topology (PCI, RDMA) add it in their own protocol (the topology module sits above
the dma-buf core, which the uAPI profiles it validates against call).

This module imports nothing of the package at run time: it is the bottom of the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    import pluggy

    from .trace import Tracer

__all__ = ["KernelContext", "Subsystem"]

_S = TypeVar("_S", bound="Subsystem")


class Subsystem:
    """A piece of the kernel that owns its state (the VFS, PCI, net, RDMA, ...).

    All are made the same way: ``kernel.subsys(Cls)`` returns the kernel's one
    instance, built on first use as ``Cls(kernel)``.  A subsystem reports what it
    still holds at shutdown with :meth:`leaks` (each contributes its own lines to the
    kernel's leak report) and lets go of its real resources in :meth:`shutdown`.

    Shutdown order: after every process has exited and every file was released, the
    subsystems are shut down in the reverse order of their creation.  Subsystems made
    lazily (net on the first socket, RDMA on the first device) are therefore shut down
    before the boot-time ones (the module loader, PCI, the VFS): their ``shutdown``
    releases real resources only and leaves their tables usable for drivers that are
    removed after them.
    """

    #: the name leak reports and traces use
    name = "subsystem"
    #: made without finishing a deferred boot (``boot(lazy=True)``): a registry the
    #: front-ends fill at install time that no boot step reads or fills
    boot_independent = False
    #: seen without running driver probes that are deferred (:meth:`Kernel.defer_probes`):
    #: no probe reads, fills or changes it (the VFS is one: its lookups run the probes
    #: first, through ``Vfs.before_walk``)
    probe_independent = False

    def __init__(self, kernel: KernelContext) -> None:
        self.kernel = kernel

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def leaks(self) -> list[str]:
        """What this subsystem still holds that a clean shutdown would not expect."""
        return []

    def shutdown(self) -> None:
        """Release real resources (fds, mappings); the kernel is going away."""


class KernelContext(Protocol):
    """What every layer below the kernel may use of it (:class:`mockkernel.Kernel` is one)."""

    #: trace events: each a ``TracePoint`` called with it (``mockkernel.trace``)
    tracer: Tracer
    #: ``WARN()`` messages so far (the leak report lists them)
    warnings: list[str]
    #: set once ``shutdown()`` began
    is_shut_down: bool

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The plugins of this boot (discovery and lifecycle hooks only)."""

    def new_id(self) -> int:
        """A fresh id, unique within this kernel (files, inodes, objects)."""

    def warn(self, message: str) -> None:
        """``WARN()``: record a broken kernel rule; the leak report lists it."""

    def subsys(self, cls: type[_S]) -> _S:
        """The kernel's one ``cls`` subsystem, made on first use as ``cls(kernel)``."""
