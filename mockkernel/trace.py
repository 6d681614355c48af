"""Trace: one structured event per syscall and per kernel state change.

Every kernel owns a :class:`Tracer`.  An event is declared once, at the top of the
module that emits it, as a :class:`TracePoint` (Linux's ``TRACE_EVENT``: the name and
the field names), and emitted by calling it with the tracer and the values, in order
(Linux's ``trace_<event>()``)::

    trace_dma_buf_attach = TracePoint("dma_buf.attach", "dmabuf", "attach")
    ...
    trace_dma_buf_attach(kernel.tracer, dmabuf.id, attach.id)

With tracing off a call is one attribute check (``tracer.enabled``) and no event is
built.  On a hot path (reached once per syscall: open, close, an ioctl, mmap) the site
checks first, so tracing off costs the attribute check alone, with no call and no
argument evaluated::

    if tracer.enabled:
        trace_fd_install(tracer, pid, fd, file.id, kind)

An event whose fields vary from call to call (a helper passing ``**fields`` through)
is emitted with :meth:`Tracer.emit`, which returns at once when tracing is off.

Events are flat dicts built straight from the emitting call (no logging library on
the way): ``event`` is the name (``fd.install``, ``dma_buf.export``, ...), ``seq`` a
per-kernel sequence number, everything else flat keys with object ids.  Sinks receive
the dict; an in-memory capture and a JSON-lines file sink are provided, and
:meth:`Tracer.structlog` forwards events to a structlog logger (imported only then),
so rendering stays at the edges and a traced syscall stays cheap.

A :class:`TracePoint` is an :class:`EventSpec` (the name and the field names, made
once); it emits with :meth:`Tracer.emit_record`, a tuple of values, as does every
traced syscall (``Process``'s ``_syscall``).  A :meth:`Tracer.capture` keeps every
event as such a tuple (the shape of an ``emit`` is looked up per tracer) and makes its
dict when it is read (a :class:`CapturedEvents` is a read-only sequence of dicts), so a
capture left on over a long run costs about a hundred bytes per event rather than a
dict's few hundred.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, Protocol, overload

EventDict = dict[str, Any]
Sink = Callable[[EventDict], None]

__all__ = ["CapturedEvents", "EventDict", "EventSpec", "Sink", "TracePoint", "Tracer", "TracerLike"]


class EventSpec:
    """The shape of a frequent event: its name, its field names in order, and which
    fields are shown in hex (kept as ints until an event dict is made)."""

    __slots__ = ("event", "hex_keys", "keys")

    def __init__(self, event: str, keys: tuple[str, ...], hex_keys: tuple[str, ...] = ()) -> None:
        self.event = event
        self.keys = keys
        self.hex_keys = hex_keys

    def fields(self, values: Sequence[Any], seq: int) -> EventDict:
        """The event dict of ``values`` (one per key) emitted as ``seq``."""
        d = dict(zip(self.keys, values, strict=True))
        for k in self.hex_keys:
            d[k] = hex(d[k])
        d["event"] = self.event
        d["seq"] = seq
        return d

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.event} {self.keys}>"


class TracerLike(Protocol):
    """What a :class:`TracePoint` needs of a tracer (:class:`Tracer` is one)."""

    enabled: bool

    def emit_record(self, spec: EventSpec, values: tuple[Any, ...]) -> None: ...


class TracePoint(EventSpec):
    """One trace event, declared once per module (``TRACE_EVENT``): its name, its field
    names in order, and which of them are shown in hex (``hex_keys``: kept as ints until
    an event dict is made).

    ``tp(tracer, *values)`` emits it (``trace_<event>()``): the values in field order.
    With tracing off that is one attribute check; with it on the event is a tuple
    (:meth:`Tracer.emit_record`), no dict is built for a capture.  A hot path checks
    ``tracer.enabled`` itself before the call (see the module docstring).
    """

    __slots__ = ()

    def __init__(self, event: str, *keys: str, hex_keys: tuple[str, ...] = ()) -> None:
        if not set(hex_keys) <= set(keys):
            raise ValueError(f"{event}: hex_keys {hex_keys} are not all fields {keys}")
        super().__init__(event, keys, hex_keys)

    def __call__(self, tracer: TracerLike, *values: Any) -> None:
        if tracer.enabled:
            if len(values) != len(self.keys):
                raise TypeError(f"{self.event} takes {self.keys}, got {len(values)} values")
            tracer.emit_record(self, values)


class CapturedEvents(Sequence[EventDict]):
    """The events a :meth:`Tracer.capture` collected, in order: a read-only sequence of
    event dicts (equal to a list of the same dicts).  Each event is kept as a
    ``(spec, *values)`` tuple (:class:`EventSpec`: shared by every event of its shape)
    and each read makes a fresh dict; the ``seq`` of the ``i``-th event is the first
    one's plus ``i`` (a capture sees every event emitted while it is attached)."""

    __slots__ = ("_base", "_items")

    def __init__(self, base: int) -> None:
        self._base = base
        self._items: list[tuple[Any, ...]] = []

    def _event(self, i: int) -> EventDict:
        item = self._items[i]
        spec: EventSpec = item[0]
        return spec.fields(item[1:], self._base + i)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> EventDict: ...
    @overload
    def __getitem__(self, i: slice) -> list[EventDict]: ...
    def __getitem__(self, i: int | slice) -> EventDict | list[EventDict]:
        if isinstance(i, slice):
            return [self._event(j) for j in range(len(self._items))[i]]
        return self._event(range(len(self._items))[i])

    def __iter__(self) -> Iterator[EventDict]:
        for i in range(len(self._items)):
            yield self._event(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, CapturedEvents)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def clear(self) -> None:
        """Forget the events collected so far (the capture goes on)."""
        self._base += len(self._items)
        self._items.clear()

    def __repr__(self) -> str:
        return repr(list(self))


class Tracer:
    """Per-kernel trace hub.  ``enabled`` is true while at least one sink is attached."""

    __slots__ = ("_captures", "_shapes", "before_enable", "enabled", "seq", "sinks")

    def __init__(self) -> None:
        self.enabled = False
        #: called once, before the first sink or capture turns tracing on (a kernel whose
        #: boot is deferred finishes it then, untraced, as it would have been)
        self.before_enable: Callable[[], None] | None = None
        self.sinks: list[Sink] = []
        #: the open captures: they keep :meth:`emit_record` events as tuples
        self._captures: list[CapturedEvents] = []
        #: (event, field names) -> its shape, for the events captures keep as tuples
        self._shapes: dict[tuple[str, tuple[str, ...]], EventSpec] = {}
        #: the ``seq`` of the last event emitted (0: none yet)
        self.seq = 0

    def emit(self, event: str, **fields: Any) -> None:
        """Emit one event whose fields vary from call to call (a fixed shape is a
        :class:`TracePoint`).  Nothing happens while tracing is off."""
        if not self.enabled:
            return
        self.seq = seq = self.seq + 1
        if self._captures:  # kept as a tuple of a shape seen before
            keys = tuple(fields)
            spec = self._shapes.get((event, keys))
            if spec is None:
                spec = self._shapes[(event, keys)] = EventSpec(event, keys)
            record = (spec, *fields.values())
            for cap in self._captures:
                cap._items.append(record)
        sinks = self.sinks
        if not sinks:
            return
        fields["event"] = event
        fields["seq"] = seq
        if len(sinks) == 1:
            sinks[0](fields)
            return
        for sink in tuple(sinks):
            sink(fields)

    def emit_record(self, spec: EventSpec, values: tuple[Any, ...]) -> None:
        """Emit one event of a fixed shape: ``values`` in ``spec.keys`` order.  Call only
        when ``enabled``.  Captures keep the tuple; other sinks get the dict."""
        self.seq = seq = self.seq + 1
        if self._captures:
            record = (spec, *values)
            for cap in self._captures:
                cap._items.append(record)
        sinks = self.sinks
        if sinks:
            fields = spec.fields(values, seq)
            for sink in tuple(sinks):
                sink(fields)

    def _enabling(self) -> None:
        hook = self.before_enable
        if hook is not None:
            self.before_enable = None
            hook()

    def add_sink(self, sink: Sink) -> None:
        self._enabling()
        self.sinks.append(sink)
        self.enabled = True

    def remove_sink(self, sink: Sink) -> None:
        self.sinks.remove(sink)
        self.enabled = bool(self.sinks or self._captures)

    @contextmanager
    def capture(self) -> Iterator[CapturedEvents]:
        """Collect events emitted inside the block (for tests): a sequence of event
        dicts, compact while it is not read (:class:`CapturedEvents`)."""
        self._enabling()
        events = CapturedEvents(self.seq + 1)
        self._captures.append(events)
        self.enabled = True
        try:
            yield events
        finally:
            self._captures.remove(events)
            self.enabled = bool(self.sinks or self._captures)

    def json_lines(self, stream: IO[str]) -> Sink:
        """Attach a sink that writes each event as one JSON line; returns it."""

        def sink(event: EventDict) -> None:
            stream.write(json.dumps(event, default=str, sort_keys=False) + "\n")

        self.add_sink(sink)
        return sink

    def structlog(self, logger: Any = None) -> Sink:
        """Attach a sink that logs each event through structlog (``logger``, or
        ``structlog.get_logger("mockkernel")``); returns it.  mockkernel never calls
        ``structlog.configure``: the application's configuration renders the events."""
        if logger is None:
            import structlog

            logger = structlog.get_logger("mockkernel")
        log = logger

        def sink(event: EventDict) -> None:
            fields = dict(event)
            log.info(fields.pop("event"), **fields)

        self.add_sink(sink)
        return sink
