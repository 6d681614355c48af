"""The dma-buf debugfs files (``dma_buf_init_debugfs``): ``/sys/kernel/debug/dma_buf/bufinfo``.

What ``dma_buf_debug_show`` prints: every live buffer of the kernel, newest first, with
its fences and attached devices.  Reads the subsystem's state; changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..vfs import Vfs
from .resv import DMA_RESV_USAGE_READ, USAGE_NAMES

if TYPE_CHECKING:
    from .core import DmaBufSubsystem

__all__ = ["BUFINFO", "dma_buf_debug_show", "dma_buf_init_debugfs"]

DEBUGFS_DIR = "/sys/kernel/debug/dma_buf"
BUFINFO = f"{DEBUGFS_DIR}/bufinfo"


def dma_buf_init_debugfs(subsys: DmaBufSubsystem) -> None:
    """Create ``/sys/kernel/debug/dma_buf`` and its ``bufinfo`` (root-only, 0444)."""
    vfs = subsys.kernel.subsys(Vfs)
    vfs.mkdir(DEBUGFS_DIR, owned=True)
    vfs.attr(BUFINFO, lambda: dma_buf_debug_show(subsys), 0o444, 0)


def dma_buf_debug_show(subsys: DmaBufSubsystem) -> str:
    """``bufinfo`` as ``dma_buf_debug_show`` prints it.

    Buffers newest first (the core adds each one at the head of its list); per
    buffer its line (``f_flags`` and ``f_mode`` in hex, ``file_count``, the name or
    ``<none>`` when never set), one line per fence up to ``READ`` usage
    (``dma_resv_describe``: ``BOOKKEEP`` fences are not shown), then the devices in
    attach order.
    """
    out = ["\nDma-buf Objects:\n"]
    out.append(
        f"{'size':<8s}\t{'flags':<8s}\t{'mode':<8s}\t{'count':<8s}\texp_name\t{'ino':<8s}\tname\n"
    )
    total = 0
    count = 0
    for dmabuf in reversed(list(subsys.dmabufs.values())):
        f = dmabuf.file
        with dmabuf.name_lock:
            name = "<none>" if dmabuf.name is None else dmabuf.name
        out.append(
            f"{dmabuf.size:08d}\t{f.f_flags:08x}\t{f.f_mode:08x}\t{f.f_count:08d}\t"
            f"{dmabuf.exp_name}\t{f.inode.ino:08d}\t{name}\n"
        )
        for fence, usage in list(dmabuf.resv.fences):
            if usage <= DMA_RESV_USAGE_READ:
                out.append(f"\t{USAGE_NAMES[usage]} fence:{fence.describe()}\n")
        out.append("\tAttached Devices:\n")
        attached = list(dmabuf.attachments)
        for a in attached:
            out.append(f"\t{a.dev.name}\n")
        out.append(f"Total {len(attached)} devices attached\n\n")
        count += 1
        total += dmabuf.size
    out.append(f"\nTotal {count} objects, {total} bytes\n")
    return "".join(out)
