"""The dma-buf core (``drivers/dma-buf/dma-buf.c``), after the 7.0 revoke series.

DOC: lifecycle of a buffer, as a reader would follow it

1. An exporter fills a ``DmaBufOps`` table and calls ``dma_buf_export``: the
   core checks the table (``map_dma_buf``, ``unmap_dma_buf`` and ``release``
   are required; ``pin`` and ``unpin`` come together), creates the anon file
   and puts the buffer on the kernel's list.  ``dma_buf_fd`` installs an fd and
   consumes the export reference.
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
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from errno import EBADF, EFAULT, EINVAL, ENOENT, ENOMEM, EOPNOTSUPP
from typing import TYPE_CHECKING, Any, Protocol

from .errors import KernelBug, kerr
from .fs import FMODE_LSEEK, FMODE_READ, FMODE_WRITE, File, FileOperations, Inode
from .locks import Mutex
from .mm import PAGE_SIZE, KernelMap, Vma
from .poll import EPOLLIN, EPOLLOUT
from .uaccess import copy_from_user, copy_to_user, get_user_u64, strndup_user

if TYPE_CHECKING:
    # the kernel context as the task layer sees it (this module never imports kernel.py)
    from .process import Process
    from .process import TaskContext as Kernel

__all__ = [
    "DMA_BIDIRECTIONAL",
    "DMA_FROM_DEVICE",
    "DMA_TO_DEVICE",
    "Attachment",
    "Device",
    "DmaBuf",
    "DmaBufAttachOps",
    "DmaBufOps",
    "DmaFence",
    "DmaFenceArray",
    "DmaResv",
    "SgEntry",
    "SgTable",
    "SyncFile",
    "dma_buf_attach",
    "dma_buf_attach_revocable",
    "dma_buf_detach",
    "dma_buf_dynamic_attach",
    "dma_buf_export",
    "dma_buf_fd",
    "dma_buf_get",
    "dma_buf_get_pci_tph",
    "dma_buf_get_tph",
    "dma_buf_invalidate_mappings",
    "dma_buf_map_attachment",
    "dma_buf_map_attachment_unlocked",
    "dma_buf_pin",
    "dma_buf_put",
    "dma_buf_unmap_attachment",
    "dma_buf_unmap_attachment_unlocked",
    "dma_buf_unpin",
    "dma_fence_unwrap",
    "dma_fence_unwrap_merge",
    "dma_resv_get_singleton",
    "is_dma_buf_file",
    "sync_file_create",
    "sync_file_get_fence",
]

# enum dma_data_direction
DMA_BIDIRECTIONAL = 0
DMA_TO_DEVICE = 1
DMA_FROM_DEVICE = 2

# enum dma_resv_usage
DMA_RESV_USAGE_KERNEL = 0
DMA_RESV_USAGE_WRITE = 1
DMA_RESV_USAGE_READ = 2
DMA_RESV_USAGE_BOOKKEEP = 3
_USAGE_NAMES = ("kernel", "write", "read", "bookkeep")

# linux/dma-buf.h (uapi), used by the file ops below
_SYNC_READ = 1 << 0
_SYNC_WRITE = 2 << 0
_SYNC_RW = _SYNC_READ | _SYNC_WRITE
_SYNC_END = 1 << 2
_SYNC_VALID = _SYNC_RW | _SYNC_END
DMA_BUF_NAME_LEN = 32
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SET_NAME_A = 0x40046201
DMA_BUF_SET_NAME_B = 0x40086201
DMA_BUF_IOCTL_EXPORT_SYNC_FILE = 0xC0086202
DMA_BUF_IOCTL_IMPORT_SYNC_FILE = 0x40086203

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

        Signalled (and timestamped) on first use, like the kernel's ``dma_fence_stub``;
        every later call returns the same fence.
        """
        global _STUB
        with _STUB_LOCK:
            if _STUB is None:
                _STUB = cls("stub", "stub", 0, 0)
                _STUB.signal()
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


_STUB: DmaFence | None = None
_STUB_LOCK = threading.Lock()


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


def dma_fence_unwrap_merge(kernel: Kernel, *fences: DmaFence) -> DmaFence:
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


class DmaResv(Mutex):
    """The reservation object: a lock plus the fences of the buffer."""

    __slots__ = ("fences",)

    def __init__(self, kernel: Kernel, name: str) -> None:
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


class DmaBufAttachOps:
    """The importer's ops (``struct dma_buf_attach_ops``)."""

    allow_peer2peer: bool = False
    invalidate_mappings: Callable[[Attachment], None] | None = None


class DmaBuf:
    """A shared buffer (``struct dma_buf``)."""

    def __init__(self, kernel: Kernel, ops: DmaBufOps, size: int, priv: Any, exp_name: str) -> None:
        self.kernel = kernel
        self.tracer = kernel.tracer
        self.ops = ops
        self.size = size
        self.priv = priv
        self.exp_name = exp_name
        self.name: str | None = None
        self.name_lock = threading.Lock()
        self.id = kernel.new_id()  # also the inode number, as bufinfo shows
        self.resv = DmaResv(kernel, f"dma_buf#{self.id}.resv")
        self.attachments: list[Attachment] = []
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
    kernel: Kernel,
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
        kernel.warn(f"dma_buf_export: bad ops table from {exp_name}")
        raise kerr(EINVAL)
    dmabuf = DmaBuf(kernel, ops, size, priv, exp_name)
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
    kernel.dmabufs[dmabuf.id] = dmabuf
    if kernel.tracer.enabled:
        kernel.tracer.emit(
            "dma_buf.export", dmabuf=dmabuf.id, exp_name=exp_name, size=size, file=dmabuf.file.id
        )
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
    attach = Attachment(dmabuf, dev, importer_ops, importer_priv)
    if dmabuf.ops.attach is not None:
        dmabuf.ops.attach(dmabuf, attach)
    with dmabuf.resv:
        dmabuf.attachments.append(attach)
    k = dmabuf.kernel
    k.attachments[attach.id] = attach
    if k.tracer.enabled:
        k.tracer.emit(
            "dma_buf.attach",
            dmabuf=dmabuf.id,
            attach=attach.id,
            dev=dev.name,
            dynamic=attach.dynamic,
            peer2peer=attach.peer2peer,
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
        dmabuf.attachments.remove(attach)
    if dmabuf.ops.detach is not None:
        dmabuf.ops.detach(dmabuf, attach)
    k.attachments.pop(attach.id, None)
    if k.tracer.enabled:
        k.tracer.emit("dma_buf.detach", dmabuf=dmabuf.id, attach=attach.id)


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
        dmabuf.ops.pin(attach)
    attach.pinned += 1
    if dmabuf.kernel.tracer.enabled:
        dmabuf.kernel.tracer.emit("dma_buf.pin", dmabuf=dmabuf.id, attach=attach.id)


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
    if dmabuf.kernel.tracer.enabled:
        dmabuf.kernel.tracer.emit("dma_buf.unpin", dmabuf=dmabuf.id, attach=attach.id)


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
    if k.tracer.enabled:
        k.tracer.emit(
            "dma_buf.map",
            dmabuf=dmabuf.id,
            attach=attach.id,
            direction=direction,
            nents=len(sgt.entries),
        )
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
    if dmabuf.kernel.tracer.enabled:
        dmabuf.kernel.tracer.emit("dma_buf.unmap", dmabuf=dmabuf.id, attach=attach.id)


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
    if k.tracer.enabled:
        k.tracer.emit("dma_buf.invalidate", dmabuf=dmabuf.id, attachments=len(dmabuf.attachments))
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
    return op(dmabuf, extended)


def dma_buf_get_tph(dmabuf: DmaBuf, st_width: int) -> tuple[int, int]:
    """TPH series v1/v2 (profiles ``tph-v1``/``tph-v2``): ``dmabuf->ops->get_tph``.

    ``EOPNOTSUPP`` without the op.  No lock is asserted: v2's mlx5 called it unlocked.
    """
    op = dmabuf.ops.get_tph
    if op is None:
        raise kerr(EOPNOTSUPP)
    return op(dmabuf, st_width)


# -- the dma-buf file -----------------------------------------------------------------------
class DmaBufFops(FileOperations):
    """``dma_buf_fops``: what an fd of a dma-buf does."""

    name = "dmabuf"

    def release(self, file: File) -> None:
        dmabuf: DmaBuf = file.private_data
        k = dmabuf.kernel
        if dmabuf.attachments:
            k.warn(f"{dmabuf!r} released with {len(dmabuf.attachments)} attachment(s)")
        assert dmabuf.ops.release is not None
        try:
            dmabuf.ops.release(dmabuf)
        finally:
            k.dmabufs.pop(dmabuf.id, None)
            if k.tracer.enabled:
                k.tracer.emit("dma_buf.release", dmabuf=dmabuf.id)

    def dma_buf_llseek(self, file: File, offset: int, whence: int) -> int:
        dmabuf: DmaBuf = file.private_data
        if offset != 0:
            raise kerr(EINVAL)
        if whence == os.SEEK_END:
            return dmabuf.size
        if whence == os.SEEK_SET:
            return 0
        raise kerr(EINVAL)

    def dma_buf_mmap(self, file: File, vma: Vma) -> None:
        dmabuf: DmaBuf = file.private_data
        if dmabuf.ops.mmap is None:
            raise kerr(EINVAL)
        if vma.pgoff + vma.pages > dmabuf.size // PAGE_SIZE:
            raise kerr(EINVAL)  # the mapping would overflow the buffer
        dmabuf.ops.mmap(dmabuf, vma)

    def dma_buf_fdinfo(self, file: File) -> str:
        dmabuf: DmaBuf = file.private_data
        out = f"size:\t{dmabuf.size}\ncount:\t{file.f_count - 1}\nexp_name:\t{dmabuf.exp_name}\n"
        with dmabuf.name_lock:
            if dmabuf.name is not None:  # set, even to "": a name line
                out += f"name:\t{dmabuf.name}\n"
        return out

    def dma_buf_poll(self, file: File) -> int:
        """``dma_buf_poll``: ``EPOLLIN`` once the write fences have signalled (a reader
        may look), ``EPOLLOUT`` once every fence up to ``READ`` usage has (a writer may)."""
        resv = file.private_data.resv
        mask = 0
        if all(f.signaled for f in resv.fences_for(DMA_RESV_USAGE_WRITE)):
            mask |= EPOLLIN
        if all(f.signaled for f in resv.fences_for(DMA_RESV_USAGE_READ)):
            mask |= EPOLLOUT
        return mask

    def dmabuffs_dname(self, file: File) -> str:
        """``/dmabuf:<name>`` (``/dmabuf:`` when unnamed): links and maps follow renames."""
        dmabuf: DmaBuf = file.private_data
        with dmabuf.name_lock:
            return f"/dmabuf:{dmabuf.name or ''}"


DmaBufFops.dname = DmaBufFops.dmabuffs_dname  # type: ignore[assignment]
DmaBufFops.llseek = DmaBufFops.dma_buf_llseek  # type: ignore[assignment]
DmaBufFops.mmap = DmaBufFops.dma_buf_mmap  # type: ignore[assignment]
DmaBufFops.show_fdinfo = DmaBufFops.dma_buf_fdinfo  # type: ignore[assignment]
DmaBufFops.poll = DmaBufFops.dma_buf_poll  # type: ignore[assignment]


_SYNC_DIRECTION = {
    _SYNC_RW: DMA_BIDIRECTIONAL,
    _SYNC_READ: DMA_FROM_DEVICE,
    _SYNC_WRITE: DMA_TO_DEVICE,
}


def _sync(file: File, cmd: int, arg: int) -> int:
    dmabuf: DmaBuf = file.private_data
    flags = get_user_u64(arg)
    if flags & ~_SYNC_VALID or not flags & _SYNC_RW:
        raise kerr(EINVAL)
    rw = flags & _SYNC_RW
    direction = _SYNC_DIRECTION[rw]
    if flags & _SYNC_END:
        end = dmabuf.ops.end_cpu_access
        if end is not None:
            end(dmabuf, direction)
    else:
        begin = dmabuf.ops.begin_cpu_access
        if begin is not None:
            begin(dmabuf, direction)
        resv = dmabuf.resv
        if resv.fences:  # a reader waits for writers, a writer for everyone
            resv.wait(DMA_RESV_USAGE_READ if rw & _SYNC_WRITE else DMA_RESV_USAGE_WRITE)
    tracer = dmabuf.tracer
    if tracer.enabled:
        tracer.emit("dma_buf.sync", dmabuf=dmabuf.id, flags=flags)
    return 0


def _set_name(file: File, cmd: int, arg: int) -> int:
    dmabuf: DmaBuf = file.private_data
    name = strndup_user(arg, DMA_BUF_NAME_LEN)
    with dmabuf.name_lock:
        dmabuf.name = name.decode("utf-8", "replace")
    if dmabuf.kernel.tracer.enabled:
        dmabuf.kernel.tracer.emit("dma_buf.set_name", dmabuf=dmabuf.id, name=dmabuf.name)
    return 0


def _export_sync_file(file: File, cmd: int, arg: int) -> int:
    """``dma_buf_export_sync_file``: an fd (``O_CLOEXEC``) of a sync_file of the fences a
    reader (``READ``) or writer (``WRITE``) would wait for, the stub when there are none."""
    dmabuf: DmaBuf = file.private_data
    raw = copy_from_user(arg, 8)
    flags = int.from_bytes(raw[:4], "little")
    if flags & ~_SYNC_RW or not flags & _SYNC_RW:
        raise kerr(EINVAL)
    k = dmabuf.kernel
    proc = k.current
    fd = proc.get_unused_fd(cloexec=True, label="sync_file")
    try:
        usage = DMA_RESV_USAGE_READ if flags & _SYNC_WRITE else DMA_RESV_USAGE_WRITE
        fence = dma_resv_get_singleton(k, dmabuf.resv, usage) or DmaFence.stub()
        sync = sync_file_create(k, fence).file
    except BaseException:
        proc.fdt.free_number(fd)
        raise
    try:
        copy_to_user(arg, raw[:4] + fd.to_bytes(4, "little", signed=True))
    except OSError:
        proc.fdt.free_number(fd)
        sync.put()
        raise kerr(EFAULT) from None
    proc.fd_install(fd, sync)
    return 0


def dma_resv_get_singleton(kernel: Kernel, resv: DmaResv, usage: int) -> DmaFence | None:
    """The unsignalled fences for ``usage`` as one fence: ``None``, the fence, or an array."""
    pending = [f for f in resv.fences_for(usage) if not f.signaled]
    if not pending:
        return None
    if len(pending) == 1:
        return pending[0]
    return DmaFenceArray(pending, context=kernel.new_id())  # dma_fence_context_alloc


def _import_sync_file(file: File, cmd: int, arg: int) -> int:
    """``dma_buf_import_sync_file``: each fence inside the sync file (an array unwrapped)
    joins the reservation with ``WRITE`` usage, or ``READ`` for a ``READ``-only import."""
    dmabuf: DmaBuf = file.private_data
    raw = copy_from_user(arg, 8)
    flags = int.from_bytes(raw[:4], "little")
    fd = int.from_bytes(raw[4:8], "little", signed=True)
    if flags & ~_SYNC_RW or not flags & _SYNC_RW:
        raise kerr(EINVAL)
    fence = sync_file_get_fence(dmabuf.kernel.current, fd)
    if fence is None:
        raise kerr(EINVAL)
    usage = DMA_RESV_USAGE_WRITE if flags & _SYNC_WRITE else DMA_RESV_USAGE_READ
    with dmabuf.resv:
        for f in dma_fence_unwrap(fence):
            dmabuf.resv.add_fence(f, usage)
    return 0


DmaBufFops.ioctls = {
    DMA_BUF_IOCTL_SYNC: _sync,
    DMA_BUF_SET_NAME_A: _set_name,
    DMA_BUF_SET_NAME_B: _set_name,
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE: _export_sync_file,
    DMA_BUF_IOCTL_IMPORT_SYNC_FILE: _import_sync_file,
}

dma_buf_fops = DmaBufFops()


# -- sync files (drivers/dma-buf/sync_file.c) --------------------------------------------
SYNC_NAME_LEN = 32
SYNC_IOC_MERGE = 0xC0303E03  # _IOWR('>', 3, struct sync_merge_data)
SYNC_IOC_FILE_INFO = 0xC0383E04  # _IOWR('>', 4, struct sync_file_info)
SYNC_IOC_SET_DEADLINE = 0x40103E05  # _IOW('>', 5, struct sync_set_deadline)
_MERGE_DATA = struct.Struct("<32siiII")  # name, fd2, fence, flags, pad
_FILE_INFO = struct.Struct("<32siIIIQ")  # name, status, flags, num_fences, pad, sync_fence_info
_FENCE_INFO = struct.Struct("<32s32siIQ")  # obj_name, driver_name, status, flags, timestamp_ns
_SET_DEADLINE = struct.Struct("<QQ")  # deadline_ns, pad


class SyncFile:
    """``struct sync_file``: the anon file, the one fence it holds, and the name a merge
    gave it (``user_name``, empty otherwise).  It is the file's ``private_data``."""

    __slots__ = ("fence", "file", "user_name")

    def __init__(self, fence: DmaFence, user_name: bytes = b"") -> None:
        self.fence = fence
        self.user_name = user_name
        self.file: File

    def __repr__(self) -> str:
        return f"<SyncFile {self.get_name()!r} fence {self.fence.context}:{self.fence.seqno}>"

    def get_name(self) -> str:
        """``sync_file_get_name``: the merge's name, else ``driver-timeline<context>-<seqno>``
        of the fence (names of a signalled fence: ``detached-driver``,
        ``signaled-timeline``), cut to 31 bytes."""
        return self._name_bytes().decode("utf-8", "replace")

    def _name_bytes(self) -> bytes:
        if self.user_name:
            return self.user_name[: SYNC_NAME_LEN - 1]
        f = self.fence
        seqno = f.seqno - (1 << 64) if f.seqno >= 1 << 63 else f.seqno  # %lld
        name = f"{f.driver_name()}-{f.timeline_name()}{f.context}-{seqno}"
        return name.encode()[: SYNC_NAME_LEN - 1]


def sync_file_create(kernel: Kernel, fence: DmaFence, user_name: bytes = b"") -> SyncFile:
    """``sync_file_create``: a sync file holding ``fence``; one file reference, no fd."""
    sf = SyncFile(fence, user_name)
    # anon_inode_getfile("sync_file", ..., 0): opened O_RDONLY
    sf.file = File(
        kernel, sync_file_fops, Inode(kernel.new_id(), 0o600, dev=0x10), 0, FMODE_READ, sf
    )
    return sf


def _sync_file_fdget(proc: Process, fd: int) -> File | None:
    """``sync_file_fdget``: the sync file at ``fd`` with a reference, else ``None``."""
    file = proc.files.get(fd)
    if file is None or file.f_op is not sync_file_fops:
        return None
    return file.get()


def sync_file_get_fence(proc: Process, fd: int) -> DmaFence | None:
    """``sync_file_get_fence``: the fence of the sync file at ``fd``, else ``None``."""
    file = _sync_file_fdget(proc, fd)
    if file is None:
        return None
    fence: DmaFence = file.private_data.fence
    file.put()
    return fence


def _merge(file: File, cmd: int, arg: int) -> int:
    """``sync_file_ioctl_merge``: a new ``O_CLOEXEC`` sync file of this file's fences and
    ``fd2``'s (``dma_fence_unwrap_merge``), named by the caller.  The fd is reserved
    first (``EMFILE``); then ``EFAULT``, flags/pad ``EINVAL``, ``fd2`` not a sync file
    ``ENOENT``; the whole struct is copied back with ``fence`` set."""
    sf: SyncFile = file.private_data
    k = file.kernel
    proc = k.current
    fd = proc.get_unused_fd(cloexec=True, label="sync_file")
    try:
        name, fd2, _, flags, pad = _MERGE_DATA.unpack(copy_from_user(arg, _MERGE_DATA.size))
        if flags or pad:
            raise kerr(EINVAL)
        other = _sync_file_fdget(proc, fd2)
        if other is None:
            raise kerr(ENOENT)
    except BaseException:
        proc.fdt.free_number(fd)
        raise
    try:
        name = name[: SYNC_NAME_LEN - 1] + b"\0"  # data.name[31] = 0, copied back too
        fence = dma_fence_unwrap_merge(k, sf.fence, other.private_data.fence)
        merged = sync_file_create(k, fence, name.split(b"\0", 1)[0])
        try:
            copy_to_user(arg, _MERGE_DATA.pack(name, fd2, fd, flags, pad))
        except BaseException:
            merged.file.put()
            raise
    except BaseException:
        proc.fdt.free_number(fd)
        raise
    finally:
        other.put()
    proc.fd_install(fd, merged.file)
    if k.tracer.enabled:
        k.tracer.emit(
            "dma_buf.sync_file_merge",
            file=file.id,
            other=other.id,
            merged=merged.file.id,
            name=merged.get_name(),
            fences=len(dma_fence_unwrap(fence)),
        )
    return 0


def _fill_fence_info(fence: DmaFence) -> tuple[bytes, int]:
    """``sync_fill_fence_info``: one ``struct sync_fence_info`` and the fence's status."""
    status = fence.get_status()
    info = _FENCE_INFO.pack(
        fence.timeline_name().encode()[: SYNC_NAME_LEN - 1],
        fence.driver_name().encode()[: SYNC_NAME_LEN - 1],
        status,
        0,
        fence.timestamp if fence.signaled else 0,
    )
    return info, status


def _file_info(file: File, cmd: int, arg: int) -> int:
    """``sync_file_ioctl_fence_info``: flags/pad ``EINVAL``; ``num_fences`` 0 asks only
    for the count (status of the file's fence); fewer than the fences ``EINVAL``; else
    one ``sync_fence_info`` per fence at the user pointer (status: 1, or the first
    that is not positive).  The name, status and count are copied back."""
    sf: SyncFile = file.private_data
    raw = copy_from_user(arg, _FILE_INFO.size)
    name, status, flags, num_fences, pad, ptr = _FILE_INFO.unpack(raw)
    if flags or pad:
        raise kerr(EINVAL)
    fences = dma_fence_unwrap(sf.fence)
    if not num_fences:
        status = sf.fence.get_status()
    else:
        if num_fences < len(fences):
            raise kerr(EINVAL)
        status = 1
        out = bytearray()
        for f in fences:
            info, st = _fill_fence_info(f)
            out += info
            status = status if status <= 0 else st
        copy_to_user(ptr, out)
    # strscpy/snprintf into info.name: the bytes after the NUL stay as the user left them
    new = sf._name_bytes() + b"\0"
    name = new + name[len(new) :]
    copy_to_user(arg, _FILE_INFO.pack(name, status, flags, len(fences), pad, ptr))
    return 0


def _set_deadline(file: File, cmd: int, arg: int) -> int:
    """``sync_file_ioctl_set_deadline``: pad ``EINVAL``; a hint passed to the fence."""
    sf: SyncFile = file.private_data
    deadline_ns, pad = _SET_DEADLINE.unpack(copy_from_user(arg, _SET_DEADLINE.size))
    if pad:
        raise kerr(EINVAL)
    sf.fence.set_deadline(deadline_ns)
    k = file.kernel
    if k.tracer.enabled:
        k.tracer.emit("dma_buf.sync_file_deadline", file=file.id, deadline_ns=deadline_ns)
    return 0


class SyncFileOps(FileOperations):
    """``sync_file_fops``: poll and the three ``SYNC_IOC_*`` ioctls; nothing else."""

    name = "sync_file"

    def _poll(self, file: File) -> int:
        """``sync_file_poll``: readable once the fence has signalled."""
        sf: SyncFile = file.private_data
        return EPOLLIN if sf.fence.signaled else 0

    poll = _poll


SyncFileOps.ioctls = {
    SYNC_IOC_MERGE: _merge,
    SYNC_IOC_FILE_INFO: _file_info,
    SYNC_IOC_SET_DEADLINE: _set_deadline,
}

sync_file_fops = SyncFileOps()


# -- debugfs ----------------------------------------------------------------------------------
def bufinfo(kernel: Kernel) -> str:
    """``/sys/kernel/debug/dma_buf/bufinfo`` as ``dma_buf_debug_show`` prints it.

    Buffers newest first (the core adds each one at the head of its list); per
    buffer its line (``f_flags`` and ``f_mode`` in hex, ``file_count``, the name or
    ``<none>`` when never set), one line per fence up to ``READ`` usage
    (``dma_resv_describe``: ``BOOKKEEP`` fences are not shown), then the devices.
    """
    out = ["\nDma-buf Objects:\n"]
    out.append(
        f"{'size':<8s}\t{'flags':<8s}\t{'mode':<8s}\t{'count':<8s}\texp_name\t{'ino':<8s}\tname\n"
    )
    total = 0
    count = 0
    for dmabuf in reversed(list(kernel.dmabufs.values())):
        f = dmabuf.file
        with dmabuf.name_lock:
            name = "<none>" if dmabuf.name is None else dmabuf.name
        out.append(
            f"{dmabuf.size:08d}\t{f.f_flags:08x}\t{f.f_mode:08x}\t{f.f_count:08d}\t"
            f"{dmabuf.exp_name}\t{f.inode.ino:08d}\t{name}\n"
        )
        for fence, usage in list(dmabuf.resv.fences):
            if usage <= DMA_RESV_USAGE_READ:
                out.append(f"\t{_USAGE_NAMES[usage]} fence:{fence.describe()}\n")
        out.append("\tAttached Devices:\n")
        for a in list(dmabuf.attachments):
            out.append(f"\t{a.dev.name}\n")
        out.append(f"Total {len(dmabuf.attachments)} devices attached\n\n")
        count += 1
        total += dmabuf.size
    out.append(f"\nTotal {count} objects, {total} bytes\n")
    return "".join(out)
