"""uverbs objects and the per-file handle table (``rdma_core.c``, ``uverbs_std_types*.c``).

Userspace names objects by *handles*: per uverbs file, one counter shared by every
object type, the lowest free number first (``xa_alloc``).  A handle is reserved when
the ``NEW`` attribute is parsed, becomes visible when the method succeeds (commit),
and is released if it fails (abort).  Each object type has a destroy function that
may refuse with ``EBUSY`` while the object is in use (a PD with MRs, a DMAH an MR
uses) -- unless the file is being closed, when everything goes in an order that works:
newest first, retried until nothing is left (so MRs before their PD).

The objects themselves (:class:`IbPd`, :class:`IbMr`, :class:`IbDmah`,
:class:`IbUcontext`) are what drivers see; ``priv`` is the driver's.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from errno import EBUSY
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..trace import TracePoint
from ..uapi.rdma.ib_user_ioctl_cmds import (
    UVERBS_OBJECT_ASYNC_EVENT,
    UVERBS_OBJECT_COMP_CHANNEL,
    UVERBS_OBJECT_DMAH,
    UVERBS_OBJECT_MR,
    UVERBS_OBJECT_PD,
)
from .events import IB_EVENT_DEVICE_FATAL, EventFile, ib_uverbs_async_handler

if TYPE_CHECKING:
    from ..fs import File
    from .device import IbDevice
    from .umem import IbUmem, UmemDmabuf

__all__ = [
    "IB_DMAH_CPU_ID_EXISTS",
    "IB_DMAH_MEM_TYPE_EXISTS",
    "IB_DMAH_PH_EXISTS",
    "RDMA_REMOVE_ABORT",
    "RDMA_REMOVE_CLOSE",
    "RDMA_REMOVE_DESTROY",
    "IbDmah",
    "IbMr",
    "IbPd",
    "IbUcontext",
    "UobjType",
    "Uobject",
    "UverbsFile",
]

trace_rdma_destroy = TracePoint("rdma.destroy", "ibdev", "type", "handle", "why")
trace_rdma_ufile_close = TracePoint("rdma.ufile_close", "ibdev")
trace_rdma_dmah_free = TracePoint("rdma.dmah_free", "ibdev", "handle")

# enum rdma_remove_reason
RDMA_REMOVE_DESTROY = 0  # userspace asked: EBUSY is an answer
RDMA_REMOVE_CLOSE = 1  # the file is closing: retried, then forced
RDMA_REMOVE_DRIVER_REMOVE = 2
RDMA_REMOVE_ABORT = 3  # the creating method failed

# enum ib_dmah_valid_fields (bit numbers)
IB_DMAH_CPU_ID_EXISTS = 0
IB_DMAH_MEM_TYPE_EXISTS = 1
IB_DMAH_PH_EXISTS = 2


@dataclass(eq=False)
class IbUcontext:
    """``struct ib_ucontext``: what ``GET_CONTEXT`` makes, one per uverbs file."""

    device: IbDevice
    ufile: UverbsFile
    priv: Any = None


@dataclass(eq=False)
class IbPd:
    """``struct ib_pd``; ``usecnt`` counts the MRs on it."""

    device: IbDevice
    uctx: IbUcontext
    usecnt: int = 0
    priv: Any = None
    handle: int = -1


@dataclass(eq=False)
class IbDmah:
    """``struct ib_dmah``: a DMA handle -- the CPU, memory type and PH an MR's TPH uses.

    ``valid_fields`` has bit ``IB_DMAH_*_EXISTS`` set for each attribute given;
    ``usecnt`` counts the MRs that use it.
    """

    device: IbDevice
    cpu_id: int = 0
    mem_type: int = 0
    ph: int = 0
    valid_fields: int = 0
    usecnt: int = 0
    priv: Any = None
    handle: int = -1

    def has(self, bit: int) -> bool:
        return bool(self.valid_fields & (1 << bit))


@dataclass(eq=False)
class IbMr:
    """``struct ib_mr``: the driver makes it (keys, ``umem``, ``priv``); the core fills
    the rest after ``reg_*`` returns.

    ``umem`` is an :class:`~mockkernel.rdma.IbUmem` (user memory) or an
    :class:`~mockkernel.rdma.UmemDmabuf` (a dma-buf), or ``None`` (ODP, no pinning).
    """

    lkey: int
    rkey: int
    umem: IbUmem | UmemDmabuf | None = None
    priv: Any = None
    device: IbDevice = field(init=False, repr=False)
    pd: IbPd = field(init=False, repr=False)
    iova: int = 0
    length: int = 0
    access: int = 0
    dmah: IbDmah | None = None
    handle: int = -1
    destroyed: bool = False

    def __repr__(self) -> str:
        return (
            f"<IbMr handle={self.handle} lkey={self.lkey:#x} iova={self.iova:#x} "
            f"length={self.length:#x} access={self.access:#x}>"
        )


@dataclass(frozen=True)
class UobjType:
    """An object type: its ``UVERBS_OBJECT_*`` id and destroy function.

    ``destroy(uobj, why)`` frees the hardware object; it raises ``EBUSY`` (only when
    ``why`` is ``RDMA_REMOVE_DESTROY`` or a first close pass) to refuse.
    """

    obj_id: int
    name: str
    destroy: Callable[[Uobject, int], None]
    is_fd: bool = False


class Uobject:
    """``struct ib_uobject``: one handle and the object behind it."""

    __slots__ = ("committed", "file", "hw_valid", "id", "object", "type", "ufile")

    def __init__(self, ufile: UverbsFile, utype: UobjType, uid: int) -> None:
        self.ufile = ufile
        self.type = utype
        self.id = uid
        self.object: Any = None
        self.committed = False
        self.hw_valid = False  # the hardware object exists (uverbs_finalize_uobj_create)
        self.file: File | None = None  # for FD objects: the file to install

    def __repr__(self) -> str:
        return f"<Uobject {self.type.name} {self.id}>"


class UverbsFile:
    """``struct ib_uverbs_file``: one open of ``/dev/infiniband/uverbsN``.

    Holds the context and the handle table.  ``lock`` serialises the file's commands
    (the kernel locks per object; one lock per file is enough for a model).
    """

    def __init__(self, device: IbDevice) -> None:
        self.device = device
        self.kernel = device.kernel
        self.ucontext: IbUcontext | None = None
        self.lock = threading.RLock()
        self.objects: dict[int, Uobject] = {}  # committed IDR objects by handle
        self.order: list[Uobject] = []  # committed objects, oldest first (FD ones too)
        self._reserved: set[int] = set()
        self._free: list[int] = []  # freed handles below _next (a heap)
        self._next = 0
        self.closed = False
        #: ``ib_uverbs_free_hw_resources`` ran (the device was unregistered with this
        #: file open): every later command is ``EIO``
        self.disassociated = False
        #: the first async event file made on this file: the one events of its CQs and
        #: QPs go to (``default_async_file``)
        self.default_async_file: EventFile | None = None
        device.files.add(self)

    def __repr__(self) -> str:
        return f"<UverbsFile {self.device.name} handles={sorted(self.objects)}>"

    # -- handles ------------------------------------------------------------------------
    def alloc_id(self) -> int:
        """The lowest free handle (``xa_alloc`` over the file's table)."""
        if self._free:
            uid = heapq.heappop(self._free)
        else:
            uid = self._next
            self._next += 1
        self._reserved.add(uid)
        return uid

    def free_id(self, uid: int) -> None:
        if uid in self._reserved:
            self._reserved.discard(uid)
            self.objects.pop(uid, None)
            heapq.heappush(self._free, uid)

    def commit(self, uobj: Uobject) -> None:
        uobj.committed = True
        if not uobj.type.is_fd:
            self.objects[uobj.id] = uobj
        self.order.append(uobj)

    def forget(self, uobj: Uobject) -> None:
        """Drop a destroyed or aborted object's handle."""
        if uobj in self.order:
            self.order.remove(uobj)
        if not uobj.type.is_fd:
            self.free_id(uobj.id)

    def destroy_uobject(self, uobj: Uobject, why: int) -> None:
        """Destroy the hardware object (``EBUSY`` may refuse) and drop the handle."""
        if uobj.hw_valid:
            uobj.type.destroy(uobj, why)
            uobj.hw_valid = False
        self.forget(uobj)
        why_name = ("destroy", "close", "driver_remove", "abort")[why]
        trace_rdma_destroy(self.kernel.tracer, self.device.name, uobj.type.name, uobj.id, why_name)

    # -- close --------------------------------------------------------------------------
    def disassociate(self) -> None:
        """``ib_uverbs_free_hw_resources`` for a device whose driver supports
        ``disassociate_ucontext``: every object destroyed (``RDMA_REMOVE_DRIVER_REMOVE``:
        nothing refuses), the context released; the file stays open and every later
        command on it is ``EIO``."""
        with self.lock:
            if self.closed or self.disassociated:
                return
            self.disassociated = True
            self.destroy_all(RDMA_REMOVE_DRIVER_REMOVE)
        trace = self.kernel.tracer
        if trace.enabled:
            trace.emit("rdma.ufile_disassociate", ibdev=self.device.name)

    def destroy_all(self, why: int = RDMA_REMOVE_CLOSE) -> None:
        """``uverbs_destroy_ufile_hw(why)``: every object, newest first, ``EBUSY`` ones
        retried while that makes progress, then forced; the context last."""
        while self.order:
            progress = False
            for uobj in reversed(list(self.order)):
                try:
                    self.destroy_uobject(uobj, why)
                    progress = True
                except OSError as e:
                    if e.errno != EBUSY:
                        self.kernel.warn(f"{self.device.name}: destroying {uobj!r} failed: {e}")
                        self.forget(uobj)
                        progress = True
            if not progress:
                for uobj in reversed(list(self.order)):
                    self.kernel.warn(f"{self.device.name}: {uobj!r} still busy at close")
                    self.forget(uobj)
        uctx = self.ucontext
        if uctx is not None:
            self.ucontext = None
            dealloc = self.device.ops.dealloc_ucontext
            if dealloc is not None:
                dealloc(uctx)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self.lock:
            self.destroy_all()
        trace_rdma_ufile_close(self.kernel.tracer, self.device.name)


# -- object types -------------------------------------------------------------------------------
def _destroy_pd(uobj: Uobject, why: int) -> None:
    pd: IbPd = uobj.object
    if pd.usecnt and why in (RDMA_REMOVE_DESTROY, RDMA_REMOVE_CLOSE):
        raise kerr(EBUSY)
    op = pd.device.ops.dealloc_pd
    if op is not None:
        op(pd)


def _destroy_mr(uobj: Uobject, why: int) -> None:
    from .uverbs import ib_dereg_mr_user

    ib_dereg_mr_user(uobj.object)


def _destroy_dmah(uobj: Uobject, why: int) -> None:
    dmah: IbDmah = uobj.object
    if dmah.usecnt:
        raise kerr(EBUSY)
    op = dmah.device.ops.dealloc_dmah
    assert op is not None
    op(dmah)
    trace_rdma_dmah_free(dmah.device.kernel.tracer, dmah.device.name, dmah.handle)


def _destroy_async(uobj: Uobject, why: int) -> None:
    """``uverbs_async_event_destroy_uobj``: the file stays open (its fd is the
    program's) but takes no more device events; when the device goes away under it
    (``RDMA_REMOVE_DRIVER_REMOVE``) it gets one last ``IB_EVENT_DEVICE_FATAL``."""
    assert uobj.file is not None
    ev: EventFile = uobj.file.private_data
    ev.device.event_handlers.discard(ev)
    if why == RDMA_REMOVE_DRIVER_REMOVE:
        ib_uverbs_async_handler(ev, 0, IB_EVENT_DEVICE_FATAL)


def _destroy_comp_channel(uobj: Uobject, why: int) -> None:
    """``uverbs_completion_event_file_destroy_uobj``: the queue closes (an empty read
    is ``EIO``, ``poll`` says ``EPOLLERR``); the file stays the program's."""
    assert uobj.file is not None
    ev: EventFile = uobj.file.private_data
    ev.close_queue()


PD_TYPE = UobjType(UVERBS_OBJECT_PD, "pd", _destroy_pd)
MR_TYPE = UobjType(UVERBS_OBJECT_MR, "mr", _destroy_mr)
DMAH_TYPE = UobjType(UVERBS_OBJECT_DMAH, "dmah", _destroy_dmah)
ASYNC_EVENT_TYPE = UobjType(UVERBS_OBJECT_ASYNC_EVENT, "async_event", _destroy_async, is_fd=True)
COMP_CHANNEL_TYPE = UobjType(
    UVERBS_OBJECT_COMP_CHANNEL, "comp_channel", _destroy_comp_channel, is_fd=True
)
