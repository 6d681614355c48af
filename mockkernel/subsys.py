"""The base of a kernel subsystem, :class:`~mockkernel.context.Subsystem` (its home).

Kept as a module of its own name because drivers and the dma-buf core import it from
here; it lives in :mod:`mockkernel.context`, the bottom of the import graph, beside the
:class:`~mockkernel.context.KernelContext` protocol subsystems are made with.
"""

from __future__ import annotations

from .context import Subsystem

__all__ = ["Subsystem"]
