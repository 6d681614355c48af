"""Trace: one structured event per syscall and per kernel state change.

Every kernel owns a :class:`Tracer`.  Emitting sites guard themselves with the
``enabled`` attribute, so tracing off costs one attribute check and no log
formatting::

    if kernel.tracer.enabled:
        kernel.tracer.emit("dma_buf.attach", dmabuf=dmabuf.id, attach=attach.id)

Events are flat dicts built by a structlog logger that this module wraps
(mockkernel never calls ``structlog.configure``): ``event`` is the name
(``fd.install``, ``dma_buf.export``, ...), ``seq`` a per-kernel sequence number,
everything else flat keys with object ids.  Sinks receive the dict; a JSON-lines
file sink and an in-memory capture are provided.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

import structlog

EventDict = dict[str, Any]
Sink = Callable[[EventDict], None]

__all__ = ["EventDict", "Sink", "Tracer"]


class _FanOut:
    """The structlog "logger" at the end of the chain: hands the dict to sinks."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def msg(self, **event: Any) -> None:
        for sink in tuple(self._tracer.sinks):
            sink(event)


class Tracer:
    """Per-kernel trace hub.  ``enabled`` is true while at least one sink is attached."""

    __slots__ = ("_log", "_seq", "enabled", "sinks")

    def __init__(self) -> None:
        self.enabled = False
        self.sinks: list[Sink] = []
        self._seq = 0
        self._log = structlog.wrap_logger(
            _FanOut(self),
            processors=[self._add_seq, self._to_kwargs],
            wrapper_class=structlog.BoundLogger,
            cache_logger_on_first_use=False,
        )

    def _add_seq(self, _logger: Any, _name: str, ed: MutableMapping[str, Any]) -> Any:
        self._seq += 1
        ed["seq"] = self._seq
        return ed

    @staticmethod
    def _to_kwargs(_logger: Any, _name: str, ed: MutableMapping[str, Any]) -> Any:
        return dict(ed)

    @property
    def seq(self) -> int:
        """The ``seq`` of the last event emitted (0: none yet)."""
        return self._seq

    def emit(self, event: str, **fields: Any) -> None:
        """Emit one event.  Call only when ``enabled`` (callers check first)."""
        self._log.msg(event, **fields)

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
