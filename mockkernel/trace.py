"""Trace: one structured event per syscall and per kernel state change.

Every kernel owns a :class:`Tracer`.  Emitting sites guard themselves with the
``enabled`` attribute, so tracing off costs one attribute check and no log
formatting::

    if kernel.tracer.enabled:
        kernel.tracer.emit("dma_buf.attach", dmabuf=dmabuf.id, attach=attach.id)

Events are flat dicts built straight from the emitting call (no logging library on
the way): ``event`` is the name (``fd.install``, ``dma_buf.export``, ...), ``seq`` a
per-kernel sequence number, everything else flat keys with object ids.  Sinks receive
the dict; an in-memory capture and a JSON-lines file sink are provided, and
:meth:`Tracer.structlog` forwards events to a structlog logger (imported only then),
so rendering stays at the edges and a traced syscall stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

EventDict = dict[str, Any]
Sink = Callable[[EventDict], None]

__all__ = ["EventDict", "Sink", "Tracer"]


class Tracer:
    """Per-kernel trace hub.  ``enabled`` is true while at least one sink is attached."""

    __slots__ = ("_seq", "enabled", "sinks")

    def __init__(self) -> None:
        self.enabled = False
        self.sinks: list[Sink] = []
        self._seq = 0

    @property
    def seq(self) -> int:
        """The ``seq`` of the last event emitted (0: none yet)."""
        return self._seq

    def emit(self, event: str, **fields: Any) -> None:
        """Emit one event.  Call only when ``enabled`` (callers check first)."""
        self._seq = seq = self._seq + 1
        fields["event"] = event
        fields["seq"] = seq
        sinks = self.sinks
        if len(sinks) == 1:
            sinks[0](fields)
            return
        for sink in tuple(sinks):
            sink(fields)

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)
        self.enabled = True

    def remove_sink(self, sink: Sink) -> None:
        self.sinks.remove(sink)
        self.enabled = bool(self.sinks)

    @contextmanager
    def capture(self) -> Iterator[list[EventDict]]:
        """Collect events emitted inside the block into a list (for tests)."""
        events: list[EventDict] = []
        self.add_sink(events.append)
        try:
            yield events
        finally:
            self.remove_sink(events.append)

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
