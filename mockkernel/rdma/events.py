"""uverbs event files: completion channels and the async event file (``uverbs_main.c``).

Both are ``anon_inode:[infinibandevent]`` files over one ``ib_uverbs_event_queue``:

* a **completion channel** (``CREATE_COMP_CHANNEL``; ``ibv_create_comp_channel``) gets
  one ``ib_uverbs_comp_event_desc`` (the CQ's ``user_handle``) each time a CQ attached
  to it and armed with ``REQ_NOTIFY_CQ`` gets a completion (``ib_uverbs_comp_handler``);
* the **async event file** (``GET_CONTEXT``'s ``async_fd``, ``ASYNC_EVENT_ALLOC``) gets
  ``ib_uverbs_async_event_desc``\\ s: an object's events (``IB_EVENT_CQ_ERR``,
  ``IB_EVENT_QP_FATAL``, ...: ``element`` is the object's ``user_handle``) go to the
  context's first async file (``default_async_file``); device events (a port's state,
  ``IB_EVENT_DEVICE_FATAL`` when the device goes away under an open context) to every
  async file of the device (``ib_register_event_handler``).

``read`` takes one event (``EINVAL`` if ``count`` is smaller than it); with none queued
it is ``EAGAIN`` for an ``O_NONBLOCK`` file, ``EIO`` once the queue is closed, else it
sleeps until an event comes or the queue closes.  ``poll`` is ``EPOLLIN | EPOLLRDNORM``
with an event queued, ``EPOLLERR`` once closed.  Reading an event counts it for its
object (``comp_events_reported``, ``events_reported``: what ``DESTROY_CQ``/``DESTROY_QP``
answer, so that libibverbs waits for the acks); destroying an object drops its unread
events.
"""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass, field
from errno import EAGAIN, EINVAL, EIO
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_READ, File, FileOperations, Inode
from ..poll import EPOLLERR, EPOLLIN, EPOLLRDNORM
from ..trace import TracePoint

if TYPE_CHECKING:
    from .device import IbDevice
    from .objects import UverbsFile

__all__ = [
    "IB_EVENT_CQ_ERR",
    "IB_EVENT_DEVICE_FATAL",
    "IB_EVENT_PORT_ACTIVE",
    "IB_EVENT_PORT_ERR",
    "IB_EVENT_QP_FATAL",
    "IB_EVENT_QP_LAST_WQE_REACHED",
    "IB_EVENT_SQ_DRAINED",
    "IB_EVENT_SRQ_LIMIT_REACHED",
    "EventFile",
    "EventQueue",
    "UeventObject",
    "ib_dispatch_event",
    "ib_uverbs_async_handler",
    "new_event_file",
]

trace_rdma_event = TracePoint("rdma.event", "ibdev", "queue", "element", "type")
trace_rdma_event_read = TracePoint("rdma.event_read", "ibdev", "queue", "left")

# enum ib_event_type (libibverbs' enum ibv_event_type has the same numbers)
IB_EVENT_CQ_ERR = 0
IB_EVENT_QP_FATAL = 1
IB_EVENT_QP_REQ_ERR = 2
IB_EVENT_QP_ACCESS_ERR = 3
IB_EVENT_COMM_EST = 4
IB_EVENT_SQ_DRAINED = 5
IB_EVENT_DEVICE_FATAL = 8
IB_EVENT_PORT_ACTIVE = 9
IB_EVENT_PORT_ERR = 10
IB_EVENT_SRQ_ERR = 14
IB_EVENT_SRQ_LIMIT_REACHED = 15
IB_EVENT_QP_LAST_WQE_REACHED = 16

_COMP_DESC = struct.Struct("<Q")  # struct ib_uverbs_comp_event_desc
_ASYNC_DESC = struct.Struct("<QII")  # struct ib_uverbs_async_event_desc


@dataclass(eq=False)
class UeventObject:
    """``struct ib_uevent_object`` (+ ``ib_ucq_object``'s completion counter): what an
    object's events were counted as when read, and which async file gets them."""

    user_handle: int = 0
    events_reported: int = 0
    comp_events_reported: int = 0
    event_file: EventFile | None = None


@dataclass(eq=False)
class _Event:
    """``struct ib_uverbs_event``: the descriptor, and whose counter reading it bumps."""

    desc: bytes
    owner: UeventObject | None = None
    comp: bool = False


@dataclass(eq=False)
class EventQueue:
    """``struct ib_uverbs_event_queue``: the events, the sleepers, ``is_closed``."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    events: list[_Event] = field(default_factory=list)
    is_closed: bool = False


class EventFile:
    """``ib_uverbs_completion_event_file`` / ``ib_uverbs_async_event_file``: the queue
    of one ``[infinibandevent]`` file and the uverbs file it was made on."""

    def __init__(self, ufile: UverbsFile, comp: bool) -> None:
        self.ufile = ufile
        self.device: IbDevice = ufile.device
        self.comp = comp
        self.queue = EventQueue()
        #: the open file (set by :func:`new_event_file`)
        self.file: File[EventFile] | None = None

    @property
    def eventsz(self) -> int:
        return _COMP_DESC.size if self.comp else _ASYNC_DESC.size

    def __repr__(self) -> str:
        kind = "comp" if self.comp else "async"
        return f"<EventFile {kind} {self.device.name} {len(self.queue.events)} queued>"

    def post(
        self, desc: bytes, owner: UeventObject | None, element: int, event: int | None
    ) -> None:
        """Queue one event and wake the readers; nothing once the queue is closed (or
        the file released: nobody can read it)."""
        q = self.queue
        with q.cond:
            if q.is_closed or (self.file is not None and self.file.released):
                return
            q.events.append(_Event(desc, owner, self.comp))
            q.cond.notify_all()
        tracer = self.device.kernel.tracer
        if tracer.enabled:
            kind = "comp" if self.comp else "async"
            trace_rdma_event(tracer, self.device.name, kind, element, event)

    def close_queue(self) -> None:
        """``is_closed = 1``, then wake the sleepers: reads of an empty queue are ``EIO``."""
        q = self.queue
        with q.cond:
            q.is_closed = True
            q.cond.notify_all()

    def drop(self, owner: UeventObject) -> None:
        """Forget the unread events of a destroyed object (``ib_uverbs_release_ucq``)."""
        q = self.queue
        with q.cond:
            q.events = [e for e in q.events if e.owner is not owner]

    def read(self, file: File, count: int) -> bytes:
        """``ib_uverbs_event_read``: one event; sleeps while there is none."""
        q = self.queue
        eventsz = self.eventsz
        with q.cond:
            while not q.events:
                if q.is_closed:
                    raise kerr(EIO)
                if file.f_flags & os.O_NONBLOCK:
                    raise kerr(EAGAIN)
                q.cond.wait()
            if eventsz > count:
                raise kerr(EINVAL)
            ev = q.events.pop(0)
            left = len(q.events)
            if ev.owner is not None:
                if ev.comp:
                    ev.owner.comp_events_reported += 1
                else:
                    ev.owner.events_reported += 1
        tracer = self.device.kernel.tracer
        if tracer.enabled:
            trace_rdma_event_read(tracer, self.device.name, "comp" if self.comp else "async", left)
        return ev.desc

    def poll(self) -> int:
        """``ib_uverbs_event_poll``."""
        q = self.queue
        with q.cond:
            if q.events:
                return EPOLLIN | EPOLLRDNORM
            return EPOLLERR if q.is_closed else 0


class EventFops(FileOperations):
    """``uverbs_event_fops`` / ``uverbs_async_event_fops``."""

    name = "[infinibandevent]"

    def read(self, file: File[EventFile], count: int, pos: int) -> bytes:
        return file.private_data.read(file, count)

    def poll(self, file: File[EventFile]) -> int:
        return file.private_data.poll()

    def release(self, file: File[EventFile]) -> None:
        """The last close: the queued events go (``ib_uverbs_free_event_queue``), and an
        async file stops taking the device's events (its handler is unregistered)."""
        ev = file.private_data
        with ev.queue.cond:
            ev.queue.events.clear()
        ev.device.event_handlers.discard(ev)


EVENT_FOPS = EventFops()


def new_event_file(ufile: UverbsFile, comp: bool) -> File[EventFile]:
    """``anon_inode_getfile("[infinibandevent]", ..., O_RDONLY)`` over a new queue."""
    kernel = ufile.kernel
    ev = EventFile(ufile, comp)
    inode = Inode(kernel.new_id(), 0o600, dev=0x10)
    file: File[EventFile] = File(kernel, EVENT_FOPS, inode, os.O_RDONLY, FMODE_READ, ev)
    ev.file = file
    return file


# -- posting events ------------------------------------------------------------------------
def ib_uverbs_comp_handler(channel: EventFile | None, uevent: UeventObject) -> None:
    """``ib_uverbs_comp_handler``: a CQ's completion event to its channel (if it has one)."""
    if channel is not None:
        channel.post(_COMP_DESC.pack(uevent.user_handle), uevent, uevent.user_handle, None)


def ib_uverbs_async_handler(
    async_file: EventFile | None, element: int, event: int, owner: UeventObject | None = None
) -> None:
    """``ib_uverbs_async_handler``: one ``ib_uverbs_async_event_desc`` to ``async_file``."""
    if async_file is not None:
        async_file.post(_ASYNC_DESC.pack(element, event, 0), owner, element, event)


def ib_uverbs_uobj_event(uevent: UeventObject, event: int) -> None:
    """``uverbs_uobj_event``: an object's event to the async file it was made with,
    ``element`` its ``user_handle``."""
    ib_uverbs_async_handler(uevent.event_file, uevent.user_handle, event, uevent)


def ib_dispatch_event(dev: IbDevice, event: int, port_num: int = 0) -> None:
    """``ib_dispatch_event`` of a device event (a port's state, ``DEVICE_FATAL``): to
    every async event file open on ``dev`` (``ib_uverbs_event_handler``)."""
    for ev in list(dev.event_handlers):
        ib_uverbs_async_handler(ev, port_num, event)
