"""The dma-buf core (``drivers/dma-buf/dma-buf.c``), after the 7.0 revoke series.

DOC: lifecycle of a buffer, as a reader would follow it

1. An exporter fills a ``DmaBufOps`` table and calls ``dma_buf_export``: the
   core checks the table (``map_dma_buf``, ``unmap_dma_buf`` and ``release``
   are required; ``pin`` and ``unpin`` come together), creates the anon file
   and puts the buffer on the kernel's list (``DmaBufSubsystem.dmabufs``, the
   ``db_list`` debugfs prints).  ``dma_buf_fd`` installs an fd and consumes the
   export reference.
2. An importer resolves an fd with ``dma_buf_get`` (``EBADF`` / ``EINVAL`` if it
   is not a dma-buf) and attaches: ``dma_buf_dynamic_attach`` with its
   ``DmaBufAttachOps`` (``allow_peer2peer``, ``invalidate_mappings``), or
   ``dma_buf_attach`` for a static importer.  The exporter's ``attach`` may
   refuse (vfio-pci refuses static and non-p2p importers).
3. With the reservation lock held the importer maps: ``dma_buf_map_attachment``
   returns an ``SgTable`` of bus addresses (static importers are pinned
   first).  It unmaps with ``dma_buf_unmap_attachment``.
4. When the exporter must move or revoke the memory it calls
   ``dma_buf_invalidate_mappings`` with the lock held; every dynamic importer's
   ``invalidate_mappings`` runs and must unmap soon.
5. ``dma_buf_detach`` and ``dma_buf_put``; the last reference to the file runs
   the exporter's ``release``.

Locking (checked here, as lockdep would): importers hold ``dmabuf.resv`` for
pin, unpin, map, unmap and ``dma_buf_get_pci_tph``, and must not hold it for
attach, detach, export, fd, get, put, mmap and the ``*_unlocked`` helpers.

State: a kernel's live buffers and attachments belong to its ``DmaBufSubsystem``
(``dma_buf_subsys(kernel)``), which reports the ones left at shutdown.  Both are
dicts, and so is a buffer's own attachment list: Linux's lists keep insertion order,
which bufinfo shows, and a dict keeps it too while adding and removing in O(1).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from errno import EBADF, EFAULT, EINVAL, ENOMEM, EOPNOTSUPP
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import KernelBug, kerr
from ..fault_inject import should_fail
from ..fs import FMODE_LSEEK, FMODE_READ, FMODE_WRITE, File, FileOperations, Inode
from ..mm import PAGE_SIZE, KernelMap, Vma
from ..poll import EPOLLIN, EPOLLOUT
from ..subsys import Subsystem
from ..trace import TracePoint
from ..uaccess import copy_from_user, copy_to_user, get_user_u64, strndup_user
from ..uapi.linux import dma_buf as uapi
from ..uapi.linux.dma_buf import (
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
    DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
    DMA_BUF_IOCTL_SYNC,
    DMA_BUF_NAME_LEN,
    DMA_BUF_SET_NAME_A,
    DMA_BUF_SET_NAME_B,
    DMA_BUF_SYNC_END,
    DMA_BUF_SYNC_READ,
    DMA_BUF_SYNC_RW,
    DMA_BUF_SYNC_VALID_FLAGS_MASK,
    DMA_BUF_SYNC_WRITE,
)
from .debugfs import dma_buf_init_debugfs
from .fence import DmaFence, dma_fence_unwrap
from .resv import (
    DMA_RESV_USAGE_KERNEL,
    DMA_RESV_USAGE_READ,
    DMA_RESV_USAGE_WRITE,
    DmaResv,
    dma_resv_get_singleton,
)
from .sync_file import sync_file_create, sync_file_get_fence

if TYPE_CHECKING:
    from ..process import Process, TaskContext

__all__ = [
    "DMA_BIDIRECTIONAL",
    "DMA_FROM_DEVICE",
    "DMA_TO_DEVICE",
    "Attachment",
    "Device",
    "DmaBuf",
    "DmaBufAttachOps",
    "DmaBufOps",
    "DmaBufSubsystem",
    "SgEntry",
    "SgTable",
    "dma_buf_attach",
    "dma_buf_attach_revocable",
    "dma_buf_detach",
    "dma_buf_dynamic_attach",
    "dma_buf_export",
    "dma_buf_fd",
    "dma_buf_fops",
    "dma_buf_get",
    "dma_buf_get_pci_tph",
    "dma_buf_get_tph",
    "dma_buf_init",
    "dma_buf_invalidate_mappings",
    "dma_buf_map_attachment",
    "dma_buf_map_attachment_unlocked",
    "dma_buf_pin",
    "dma_buf_put",
    "dma_buf_subsys",
    "dma_buf_unmap_attachment",
    "dma_buf_unmap_attachment_unlocked",
    "dma_buf_unpin",
    "is_dma_buf_file",
]

trace_dma_buf_export = TracePoint("dma_buf.export", "dmabuf", "exp_name", "size", "file")
trace_dma_buf_release = TracePoint("dma_buf.release", "dmabuf")
trace_dma_buf_attach = TracePoint(
    "dma_buf.attach", "dmabuf", "attach", "dev", "dynamic", "peer2peer"
)
trace_dma_buf_detach = TracePoint("dma_buf.detach", "dmabuf", "attach")
trace_dma_buf_pin = TracePoint("dma_buf.pin", "dmabuf", "attach")
trace_dma_buf_unpin = TracePoint("dma_buf.unpin", "dmabuf", "attach")
trace_dma_buf_map = TracePoint("dma_buf.map", "dmabuf", "attach", "direction", "nents")
trace_dma_buf_unmap = TracePoint("dma_buf.unmap", "dmabuf", "attach")
trace_dma_buf_invalidate = TracePoint("dma_buf.invalidate", "dmabuf", "attachments")
trace_dma_buf_sync = TracePoint("dma_buf.sync", "dmabuf", "flags")
trace_dma_buf_set_name = TracePoint("dma_buf.set_name", "dmabuf", "name")

# enum dma_data_direction
DMA_BIDIRECTIONAL = 0
DMA_TO_DEVICE = 1
DMA_FROM_DEVICE = 2

# f_mode bits of include/linux/fs.h (7.x) that a dma-buf file has besides READ/WRITE/LSEEK:
# alloc_file_pseudo() opens it (FMODE_OPENED) with fsnotify off (FMODE_NONOTIFY, as for
# every pseudo file).  No FMODE_CAN_READ/CAN_WRITE: dma_buf_fops has no read or write.
# bufinfo prints f_mode as is: 02080007 for an O_RDWR buffer.
FMODE_OPENED = 0x80000
FMODE_NONOTIFY = 1 << 25


class Device(Protocol):
    """Anything that can attach: it only needs a name (``dev_name``)."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class SgEntry:
    """One scatterlist entry: a bus address range and, for the model, the memory behind it.

    ``mem`` (with ``mem_offset``) is where a DMA to ``dma_address`` lands: the
    exporter's kernel mapping of the backing pages or BAR.
    """

    dma_address: int
    length: int
    mem: KernelMap | None = None
    mem_offset: int = 0


@dataclass
class SgTable:
    entries: list[SgEntry] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(e.length for e in self.entries)

    def __iter__(self) -> Iterator[SgEntry]:
        return iter(self.entries)


class DmaBufSubsystem(Subsystem):
    """The dma-buf state of one kernel: its live buffers and attachments.

    ``dmabufs`` is ``db_list`` (every exported buffer until its release, in export
    order), by buffer id; ``attachments`` every attachment of every buffer until its
    detach, by attachment id (Linux keeps no such list: it is here so that shutdown can
    report the importers that never detached).  Made at boot by :func:`dma_buf_init`,
    which also registers ``/sys/kernel/debug/dma_buf/bufinfo``.
    """

    name = "dma-buf"

    def __init__(self, kernel: TaskContext) -> None:
        super().__init__(kernel)
        self.dmabufs: dict[int, DmaBuf] = {}
        self.attachments: dict[int, Attachment] = {}
        dma_buf_init_debugfs(self)

    def leaks(self) -> list[str]:
        out = [f"dma-buf still alive: {d!r}" for d in self.dmabufs.values()]
        out += [f"attachment still attached: {a!r}" for a in self.attachments.values()]
        return out


def dma_buf_init(kernel: TaskContext) -> DmaBufSubsystem:
    """``dma_buf_init`` (a ``subsys_initcall``): the subsystem and its debugfs files."""
    return kernel.subsys(DmaBufSubsystem)


def dma_buf_subsys(kernel: TaskContext) -> DmaBufSubsystem:
    """The dma-buf state of ``kernel``: ``.dmabufs`` and ``.attachments``, by id."""
    return kernel.subsys(DmaBufSubsystem)


class DmaBufOps:
    """The exporter's ops table (``struct dma_buf_ops``).  Subclass and define methods.

    Required: ``map_dma_buf``, ``unmap_dma_buf``, ``release``.  Optional: the rest;
    ``pin`` and ``unpin`` come together.

    * ``attach(dmabuf, attach)``: called unlocked; raise to refuse the importer.
    * ``detach(dmabuf, attach)``: called unlocked.
    * ``pin(attach)`` / ``unpin(attach)``: resv held.
    * ``map_dma_buf(attach, direction) -> SgTable``: resv held.
    * ``unmap_dma_buf(attach, sgt, direction)``: resv held.
    * ``release(dmabuf)``: the last reference is gone.
    * ``mmap(dmabuf, vma)``: fill ``vma`` with ``vma.remap``; called unlocked.
    * ``begin_cpu_access(dmabuf, direction)`` / ``end_cpu_access``: unlocked.
    * ``get_pci_tph(dmabuf, extended) -> (steering_tag, ph)``: resv held (TPH series v8+).
    * ``get_tph(dmabuf, st_width) -> (steering_tag, ph)``: the same hook as the TPH series
      v1/v2 had it (profiles ``tph-v1``/``tph-v2``); no lock rule was stated.
    """

    attach: Callable[[DmaBuf, Attachment], None] | None = None
    detach: Callable[[DmaBuf, Attachment], None] | None = None
    pin: Callable[[Attachment], None] | None = None
    unpin: Callable[[Attachment], None] | None = None
    map_dma_buf: Callable[[Attachment, int], SgTable | None] | None = None
    unmap_dma_buf: Callable[[Attachment, SgTable, int], None] | None = None
    release: Callable[[DmaBuf], None] | None = None
    mmap: Callable[[DmaBuf, Vma], None] | None = None
    begin_cpu_access: Callable[[DmaBuf, int], None] | None = None
    end_cpu_access: Callable[[DmaBuf, int], None] | None = None
    get_pci_tph: Callable[[DmaBuf, bool], tuple[int, int]] | None = None
    get_tph: Callable[[DmaBuf, int], tuple[int, int]] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_op_names(cls, DmaBufOps)


class DmaBufAttachOps:
    """The importer's ops (``struct dma_buf_attach_ops``), for ``dma_buf_dynamic_attach``.

    * ``allow_peer2peer``: the importer can reach device memory (a BAR) over PCIe;
      an exporter of device memory (vfio-pci) refuses an importer without it
      (``EOPNOTSUPP``).
    * ``invalidate_mappings(attach)``: the exporter calls it with ``dmabuf.resv`` held
      when it moves or revokes the memory; unmap before returning, and do not DMA until
      mapped again.  Without it the importer is not revocable, and vfio-pci refuses it
      (``EOPNOTSUPP``).
    """

    allow_peer2peer: bool = False
    invalidate_mappings: Callable[[Attachment], None] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_op_names(cls, DmaBufAttachOps)


def _missing_ops(ops: DmaBufOps) -> list[str]:
    """The required ops ``ops`` lacks (``dma_buf_export`` refuses it: ``EINVAL``)."""
    out = [op for op in ("map_dma_buf", "unmap_dma_buf", "release") if getattr(ops, op) is None]
    if (ops.pin is None) != (ops.unpin is None):
        out.append("unpin" if ops.unpin is None else "pin")
    return out


def _check_op_names(cls: type, base: type) -> None:
    """A misspelled op (``invalidate_mapping``) would silently be no op at all: refuse the
    class when it is defined, in one line naming it and the op meant."""
    ops = [n for n in vars(base) if not n.startswith("_")]
    others = [n for n in vars(cls) if not n.startswith("_") and n not in ops]
    if not others:
        return
    import difflib  # (only for a class with names of its own: it costs import time)

    for name in others:
        close = difflib.get_close_matches(name, ops, n=1, cutoff=0.85)
        if close and close[0] not in vars(cls):
            raise TypeError(
                f"{base.__name__} {cls.__module__}.{cls.__qualname__}: {name!r} is not an op "
                f"(did you mean {close[0]!r}?)"
            )


class DmaBuf:
    """A shared buffer (``struct dma_buf``).

    ``attachments`` is ``dmabuf->attachments``: the attachments in attach order, as
    bufinfo lists them.  A dict used as an ordered set (values ``None``): detach finds
    and removes one in O(1), where a list would search it.
    """

    def __init__(
        self,
        kernel: TaskContext,
        subsys: DmaBufSubsystem,
        ops: DmaBufOps,
        size: int,
        priv: Any,
        exp_name: str,
    ) -> None:
        self.kernel = kernel
        self.subsys = subsys
        self.tracer = kernel.tracer
        self.ops = ops
        self.size = size
        self.priv = priv
        self.exp_name = exp_name
        self.name: str | None = None
        self.name_lock = threading.Lock()
        self.id = kernel.new_id()  # also the inode number, as bufinfo shows
        self.resv = DmaResv(kernel, f"dma_buf#{self.id}.resv")
        self.attachments: dict[Attachment, None] = {}
        self.file: File  # set by dma_buf_export

    def __repr__(self) -> str:
        return f"<DmaBuf #{self.id} {self.exp_name} size={self.size}>"


class Attachment:
    """One importer's attachment (``struct dma_buf_attachment``)."""

    def __init__(
        self,
        dmabuf: DmaBuf,
        dev: Device,
        importer_ops: DmaBufAttachOps | None,
        importer_priv: Any,
    ) -> None:
        self.dmabuf = dmabuf
        self.dev = dev
        self.importer_ops = importer_ops
        self.importer_priv = importer_priv
        self.peer2peer = importer_ops.allow_peer2peer if importer_ops is not None else False
        self.priv: Any = None  # the exporter's per-attachment data
        self.mapped = 0
        self.pinned = 0
        self.id = dmabuf.kernel.new_id()

    @property
    def dynamic(self) -> bool:
        return self.importer_ops is not None

    def __repr__(self) -> str:
        kind = "dynamic" if self.dynamic else "static"
        return f"<Attachment #{self.id} {kind} dev={self.dev.name} dmabuf=#{self.dmabuf.id}>"


# -- export / fd / get / put ----------------------------------------------------------------
def dma_buf_export(
    kernel: TaskContext,
    ops: DmaBufOps,
    size: int,
    priv: Any,
    exp_name: str,
    flags: int = os.O_RDWR,
) -> DmaBuf:
    """Create a buffer and its file; the caller owns the one reference (``dma_buf_export``)."""
    if (
        priv is None
        or ops.map_dma_buf is None
        or ops.unmap_dma_buf is None
        or ops.release is None
        or (ops.pin is None) != (ops.unpin is None)
    ):
        cls = type(ops)
        missing = ", ".join(_missing_ops(ops)) or "priv"
        why = f"{cls.__module__}.{cls.__qualname__} from {exp_name}: missing {missing}"
        kernel.warn(f"dma_buf_export: bad ops table ({why})")
        raise kerr(EINVAL, f"dma_buf_export: bad ops table ({why})")
    if should_fail(kernel, "dma_buf_export"):
        raise kerr(ENOMEM)  # kzalloc of the dma_buf
    subsys = kernel.subsys(DmaBufSubsystem)
    dmabuf = DmaBuf(kernel, subsys, ops, size, priv, exp_name)
    f_flags = flags & (os.O_ACCMODE | os.O_NONBLOCK)
    f_mode = FMODE_LSEEK | FMODE_OPENED | FMODE_NONOTIFY
    acc = flags & os.O_ACCMODE
    if acc in (os.O_RDONLY, os.O_RDWR):
        f_mode |= FMODE_READ
    if acc in (os.O_WRONLY, os.O_RDWR):
        f_mode |= FMODE_WRITE
    # alloc_anon_inode(): mode 0600 and no type bits, owned by the creator
    inode = Inode(dmabuf.id, 0o600, size=size, dev=0x10, uid=os.geteuid(), gid=os.getegid())
    dmabuf.file = File(kernel, dma_buf_fops, inode, f_flags, f_mode, dmabuf)
    subsys.dmabufs[dmabuf.id] = dmabuf
    if kernel.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_export(kernel.tracer, dmabuf.id, exp_name, size, dmabuf.file.id)
    return dmabuf


def dma_buf_fd(dmabuf: DmaBuf | None, flags: int, proc: Process | None = None) -> int:
    """Install an fd for ``dmabuf`` in the calling process, consuming the export reference."""
    if dmabuf is None:
        raise kerr(EINVAL)
    task = proc if proc is not None else dmabuf.kernel.current
    return task.install_file(dmabuf.file, bool(flags & os.O_CLOEXEC))


def is_dma_buf_file(file: File) -> bool:
    return file.f_op is dma_buf_fops


def dma_buf_get(fd: int, proc: Process) -> DmaBuf:
    """The buffer behind ``fd`` with a reference: ``EBADF`` no file, ``EINVAL`` not a dma-buf.

    An fd the mock does not own (a real file) is "not a dma-buf" when the real
    OS knows it, and ``EBADF`` otherwise, exactly as Linux answers.
    """
    file = proc.files.get(fd)
    if file is None:
        if proc.fdt.is_real_fd(fd):
            raise kerr(EINVAL)
        raise kerr(EBADF)
    if file.f_op is not dma_buf_fops:
        raise kerr(EINVAL)
    file.get()
    dmabuf: DmaBuf = file.private_data
    return dmabuf


def dma_buf_put(dmabuf: DmaBuf) -> None:
    dmabuf.file.put()


# -- attach / detach ------------------------------------------------------------------------
def dma_buf_dynamic_attach(
    dmabuf: DmaBuf,
    dev: Device,
    importer_ops: DmaBufAttachOps | None,
    importer_priv: Any = None,
) -> Attachment:
    if dmabuf is None or dev is None:
        raise kerr(EINVAL)
    if dmabuf.resv.held:
        raise KernelBug("dma_buf_dynamic_attach called with the reservation lock held")
    if should_fail(dmabuf.kernel, "dma_buf_attach"):
        raise kerr(ENOMEM)  # kzalloc of the attachment
    attach = Attachment(dmabuf, dev, importer_ops, importer_priv)
    if dmabuf.ops.attach is not None:
        dmabuf.ops.attach(dmabuf, attach)
    with dmabuf.resv:
        dmabuf.attachments[attach] = None
    dmabuf.subsys.attachments[attach.id] = attach
    k = dmabuf.kernel
    if k.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_attach(
            k.tracer, dmabuf.id, attach.id, dev.name, attach.dynamic, attach.peer2peer
        )
    return attach


def dma_buf_attach(dmabuf: DmaBuf, dev: Device) -> Attachment:
    """A static attachment: no invalidation, no peer-to-peer."""
    return dma_buf_dynamic_attach(dmabuf, dev, None, None)


def dma_buf_detach(dmabuf: DmaBuf, attach: Attachment) -> None:
    if attach.dmabuf is not dmabuf or attach not in dmabuf.attachments:
        raise KernelBug(f"dma_buf_detach of {attach!r} from {dmabuf!r}")
    if dmabuf.resv.held:
        raise KernelBug("dma_buf_detach called with the reservation lock held")
    k = dmabuf.kernel
    if attach.mapped:
        k.warn(f"{attach!r} detached with {attach.mapped} mapping(s) outstanding")
    with dmabuf.resv:
        del dmabuf.attachments[attach]
    if dmabuf.ops.detach is not None:
        dmabuf.ops.detach(dmabuf, attach)
    dmabuf.subsys.attachments.pop(attach.id, None)
    if k.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_detach(k.tracer, dmabuf.id, attach.id)


def dma_buf_attach_revocable(attach: Attachment) -> bool:
    ops = attach.importer_ops
    return ops is not None and ops.invalidate_mappings is not None


# -- pin / map ------------------------------------------------------------------------------
def dma_buf_pin(attach: Attachment) -> None:
    dmabuf = attach.dmabuf
    dmabuf.resv.assert_held()
    if not attach.dynamic:
        raise KernelBug("dma_buf_pin on a static attachment")
    if dmabuf.ops.pin is not None:
        if should_fail(dmabuf.kernel, "pin"):
            raise kerr(ENOMEM)
        dmabuf.ops.pin(attach)
    attach.pinned += 1
    if dmabuf.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_pin(dmabuf.tracer, dmabuf.id, attach.id)


def dma_buf_unpin(attach: Attachment) -> None:
    dmabuf = attach.dmabuf
    dmabuf.resv.assert_held()
    if not attach.dynamic:
        raise KernelBug("dma_buf_unpin on a static attachment")
    if attach.pinned <= 0:
        raise KernelBug(f"dma_buf_unpin of an unpinned {attach!r}")
    if dmabuf.ops.unpin is not None:
        dmabuf.ops.unpin(attach)
    attach.pinned -= 1
    if dmabuf.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_unpin(dmabuf.tracer, dmabuf.id, attach.id)


def dma_buf_map_attachment(attach: Attachment, direction: int) -> SgTable:
    dmabuf = attach.dmabuf
    dmabuf.resv.assert_held()
    ops = dmabuf.ops
    pinned_here = False
    if not attach.dynamic and ops.pin is not None:
        ops.pin(attach)
        pinned_here = True
    assert ops.map_dma_buf is not None
    try:
        if should_fail(dmabuf.kernel, "map_dma_buf"):
            raise kerr(ENOMEM)  # the exporter's map op failed
        sgt = ops.map_dma_buf(attach, direction)
        if sgt is None:
            raise kerr(ENOMEM)
        if not attach.dynamic:
            # static importers do not handle fences: the core waits for the kernel's
            dmabuf.resv.wait(DMA_RESV_USAGE_KERNEL)
    except BaseException:
        if pinned_here and ops.unpin is not None:
            ops.unpin(attach)
        raise
    attach.mapped += 1
    k = dmabuf.kernel
    if k.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_map(k.tracer, dmabuf.id, attach.id, direction, len(sgt.entries))
    return sgt


def dma_buf_unmap_attachment(attach: Attachment, sgt: SgTable, direction: int) -> None:
    dmabuf = attach.dmabuf
    dmabuf.resv.assert_held()
    if attach.mapped <= 0:
        raise KernelBug(f"unmap of {attach!r} that has no mapping")
    ops = dmabuf.ops
    assert ops.unmap_dma_buf is not None
    ops.unmap_dma_buf(attach, sgt, direction)
    attach.mapped -= 1
    if not attach.dynamic and ops.unpin is not None:
        ops.unpin(attach)
    if dmabuf.tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_unmap(dmabuf.tracer, dmabuf.id, attach.id)


def dma_buf_map_attachment_unlocked(attach: Attachment, direction: int) -> SgTable:
    with attach.dmabuf.resv:
        return dma_buf_map_attachment(attach, direction)


def dma_buf_unmap_attachment_unlocked(attach: Attachment, sgt: SgTable, direction: int) -> None:
    with attach.dmabuf.resv:
        dma_buf_unmap_attachment(attach, sgt, direction)


def dma_buf_invalidate_mappings(dmabuf: DmaBuf) -> None:
    """Tell every dynamic importer its mapping is going away (resv held by the exporter)."""
    dmabuf.resv.assert_held()
    k = dmabuf.kernel
    trace_dma_buf_invalidate(k.tracer, dmabuf.id, len(dmabuf.attachments))
    for attach in list(dmabuf.attachments):
        ops = attach.importer_ops
        if ops is not None and ops.invalidate_mappings is not None:
            ops.invalidate_mappings(attach)


def dma_buf_get_pci_tph(dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
    """The exporter's TPH steering tag and processing hint for this buffer (resv held)."""
    dmabuf.resv.assert_held()
    op = dmabuf.ops.get_pci_tph
    if op is None:
        raise kerr(EOPNOTSUPP)
    if should_fail(dmabuf.kernel, "tph_query"):
        raise kerr(ENOMEM)
    return op(dmabuf, extended)


def dma_buf_get_tph(dmabuf: DmaBuf, st_width: int) -> tuple[int, int]:
    """TPH series v1/v2 (profiles ``tph-v1``/``tph-v2``): ``dmabuf->ops->get_tph``.

    ``EOPNOTSUPP`` without the op.  No lock is asserted: v2's mlx5 called it unlocked.
    """
    op = dmabuf.ops.get_tph
    if op is None:
        raise kerr(EOPNOTSUPP)
    if should_fail(dmabuf.kernel, "tph_query"):
        raise kerr(ENOMEM)
    return op(dmabuf, st_width)


# -- the dma-buf file -----------------------------------------------------------------------
_SYNC_DIRECTION = MappingProxyType(
    {
        DMA_BUF_SYNC_RW: DMA_BIDIRECTIONAL,
        DMA_BUF_SYNC_READ: DMA_FROM_DEVICE,
        DMA_BUF_SYNC_WRITE: DMA_TO_DEVICE,
    }
)


def dma_buf_ioctl_sync(file: File[DmaBuf], cmd: int, arg: int) -> int:
    """``DMA_BUF_IOCTL_SYNC``: bracket CPU access with the exporter's ``begin_cpu_access`` /
    ``end_cpu_access``; a start waits for the fences a reader (writer) must wait for."""
    dmabuf = file.private_data
    flags = get_user_u64(arg)  # struct dma_buf_sync: one __u64, flags
    if flags & ~DMA_BUF_SYNC_VALID_FLAGS_MASK or not flags & DMA_BUF_SYNC_RW:
        raise kerr(EINVAL)
    rw = flags & DMA_BUF_SYNC_RW
    direction = _SYNC_DIRECTION[rw]
    if flags & DMA_BUF_SYNC_END:
        end = dmabuf.ops.end_cpu_access
        if end is not None:
            end(dmabuf, direction)
    else:
        begin = dmabuf.ops.begin_cpu_access
        if begin is not None:
            begin(dmabuf, direction)
        resv = dmabuf.resv
        if resv.fences:  # a reader waits for writers, a writer for everyone
            resv.wait(DMA_RESV_USAGE_READ if rw & DMA_BUF_SYNC_WRITE else DMA_RESV_USAGE_WRITE)
    tracer = dmabuf.tracer
    if tracer.enabled:  # (a hot path: no call while off)
        trace_dma_buf_sync(tracer, dmabuf.id, flags)
    return 0


def dma_buf_set_name(file: File[DmaBuf], cmd: int, arg: int) -> int:
    """``DMA_BUF_SET_NAME`` (either number): a user string of at most
    ``DMA_BUF_NAME_LEN`` bytes with its NUL, shown by fdinfo, bufinfo and the links."""
    dmabuf = file.private_data
    name = strndup_user(arg, DMA_BUF_NAME_LEN)
    with dmabuf.name_lock:
        dmabuf.name = name.decode("utf-8", "replace")
    trace_dma_buf_set_name(dmabuf.tracer, dmabuf.id, dmabuf.name)
    return 0


def dma_buf_export_sync_file(file: File[DmaBuf], cmd: int, arg: int) -> int:
    """``dma_buf_export_sync_file``: an fd (``O_CLOEXEC``) of a sync_file of the fences a
    reader (``READ``) or writer (``WRITE``) would wait for, the stub when there are none."""
    dmabuf = file.private_data
    data = uapi.dma_buf_export_sync_file.from_buffer_copy(
        copy_from_user(arg, ctypes.sizeof(uapi.dma_buf_export_sync_file))
    )
    flags = data.flags
    if flags & ~DMA_BUF_SYNC_RW or not flags & DMA_BUF_SYNC_RW:
        raise kerr(EINVAL)
    k = dmabuf.kernel
    proc = k.current
    fd = proc.get_unused_fd(cloexec=True, label="sync_file")
    try:
        usage = DMA_RESV_USAGE_READ if flags & DMA_BUF_SYNC_WRITE else DMA_RESV_USAGE_WRITE
        fence = dma_resv_get_singleton(k, dmabuf.resv, usage) or DmaFence.stub()
        sync = sync_file_create(k, fence).file
    except BaseException:
        proc.fdt.free_number(fd)
        raise
    data.fd = fd
    try:
        copy_to_user(arg, bytes(data))
    except OSError:
        proc.fdt.free_number(fd)
        sync.put()
        raise kerr(EFAULT) from None
    proc.fd_install(fd, sync)
    return 0


def dma_buf_import_sync_file(file: File[DmaBuf], cmd: int, arg: int) -> int:
    """``dma_buf_import_sync_file``: each fence inside the sync file (an array unwrapped)
    joins the reservation with ``WRITE`` usage, or ``READ`` for a ``READ``-only import."""
    dmabuf = file.private_data
    data = uapi.dma_buf_import_sync_file.from_buffer_copy(
        copy_from_user(arg, ctypes.sizeof(uapi.dma_buf_import_sync_file))
    )
    flags = data.flags
    if flags & ~DMA_BUF_SYNC_RW or not flags & DMA_BUF_SYNC_RW:
        raise kerr(EINVAL)
    fence = sync_file_get_fence(dmabuf.kernel.current, data.fd)
    if fence is None:
        raise kerr(EINVAL)
    usage = DMA_RESV_USAGE_WRITE if flags & DMA_BUF_SYNC_WRITE else DMA_RESV_USAGE_READ
    with dmabuf.resv:
        for f in dma_fence_unwrap(fence):
            dmabuf.resv.add_fence(f, usage)
    return 0


class DmaBufFops(FileOperations):
    """``dma_buf_fops``: what an fd of a dma-buf does.  Its ``private_data`` is the
    ``DmaBuf``; the file is that buffer's one file, and its identity is what
    ``dma_buf_get`` checks."""

    name = "dmabuf"
    ioctls = {
        DMA_BUF_IOCTL_SYNC: dma_buf_ioctl_sync,
        DMA_BUF_SET_NAME_A: dma_buf_set_name,
        DMA_BUF_SET_NAME_B: dma_buf_set_name,
        DMA_BUF_IOCTL_EXPORT_SYNC_FILE: dma_buf_export_sync_file,
        DMA_BUF_IOCTL_IMPORT_SYNC_FILE: dma_buf_import_sync_file,
    }

    def release(self, file: File[DmaBuf]) -> None:
        """``dma_buf_file_release``: the exporter's ``release``; off the kernel's list."""
        dmabuf = file.private_data
        k = dmabuf.kernel
        if dmabuf.attachments:
            k.warn(f"{dmabuf!r} released with {len(dmabuf.attachments)} attachment(s)")
        assert dmabuf.ops.release is not None
        try:
            dmabuf.ops.release(dmabuf)
        finally:
            dmabuf.subsys.dmabufs.pop(dmabuf.id, None)
            if k.tracer.enabled:  # (a hot path: no call while off)
                trace_dma_buf_release(k.tracer, dmabuf.id)

    def llseek(self, file: File[DmaBuf], offset: int, whence: int) -> int:
        """``dma_buf_llseek``: only to the start or the end, offset 0 (the size)."""
        dmabuf = file.private_data
        if offset != 0:
            raise kerr(EINVAL)
        if whence == os.SEEK_END:
            return dmabuf.size
        if whence == os.SEEK_SET:
            return 0
        raise kerr(EINVAL)

    def mmap(self, file: File[DmaBuf], vma: Vma) -> None:
        """``dma_buf_mmap_internal``: the exporter's ``mmap``, inside the buffer only."""
        dmabuf = file.private_data
        if dmabuf.ops.mmap is None:
            raise kerr(EINVAL)
        if vma.pgoff + vma.pages > dmabuf.size // PAGE_SIZE:
            raise kerr(EINVAL)  # the mapping would overflow the buffer
        dmabuf.ops.mmap(dmabuf, vma)

    def show_fdinfo(self, file: File[DmaBuf]) -> str:
        """``dma_buf_show_fdinfo``: size, count (``file_count - 1``), exporter, name."""
        dmabuf = file.private_data
        out = f"size:\t{dmabuf.size}\ncount:\t{file.f_count - 1}\nexp_name:\t{dmabuf.exp_name}\n"
        with dmabuf.name_lock:
            if dmabuf.name is not None:  # set, even to "": a name line
                out += f"name:\t{dmabuf.name}\n"
        return out

    def poll(self, file: File[DmaBuf]) -> int:
        """``dma_buf_poll``: ``EPOLLIN`` once the write fences have signalled (a reader
        may look), ``EPOLLOUT`` once every fence up to ``READ`` usage has (a writer may)."""
        dmabuf = file.private_data
        resv = dmabuf.resv
        mask = 0
        if all(f.signaled for f in resv.fences_for(DMA_RESV_USAGE_WRITE)):
            mask |= EPOLLIN
        if all(f.signaled for f in resv.fences_for(DMA_RESV_USAGE_READ)):
            mask |= EPOLLOUT
        return mask

    def dname(self, file: File[DmaBuf]) -> str:
        """``dmabuffs_dname``: ``/dmabuf:<name>`` (``/dmabuf:`` when unnamed): links and
        maps follow renames."""
        dmabuf = file.private_data
        with dmabuf.name_lock:
            return f"/dmabuf:{dmabuf.name or ''}"


dma_buf_fops = DmaBufFops()
