"""The CPUs of the machine, as ``linux/cpumask.h`` tells drivers about them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pci.core import PciContext

__all__ = ["num_online_cpus"]


def num_online_cpus(kernel: PciContext) -> int:
    """``num_online_cpus``: the CPUs of the booted topology (``[kernel] nr_cpus``); a
    driver sizes per-CPU things (completion vectors, queues) by it."""
    return kernel.topology.kernel.nr_cpus
