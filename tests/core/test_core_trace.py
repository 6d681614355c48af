"""The tracer builds each event as a flat dict and hands it to every sink."""

from __future__ import annotations

import io
import json
from typing import Any

import structlog

from mockkernel.trace import Tracer


def test_events_are_flat_dicts_with_seq() -> None:
    t = Tracer()
    assert not t.enabled
    with t.capture() as events:
        assert t.enabled
        t.emit("dma_buf.export", dmabuf=3, size=4096)
        t.emit("fd.install", fd=5)
    assert not t.enabled
    assert events == [
        {"dmabuf": 3, "size": 4096, "event": "dma_buf.export", "seq": 1},
        {"fd": 5, "event": "fd.install", "seq": 2},
    ]
    assert t.seq == 2


def test_every_sink_sees_every_event() -> None:
    t = Tracer()
    out = io.StringIO()
    t.json_lines(out)
    with t.capture() as events:
        t.emit("a.b", x=1)
    t.emit("c.d", y="z")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"x": 1, "event": "a.b", "seq": 1}, {"y": "z", "event": "c.d", "seq": 2}]
    assert events == [lines[0]]


def test_structlog_sink_renders_at_the_edge() -> None:
    t = Tracer()
    with structlog.testing.capture_logs() as logs:
        sink = t.structlog()
        t.emit("dma_buf.attach", dmabuf=1, attach=2)
        t.remove_sink(sink)
    entry: dict[str, Any] = logs[0]
    assert entry["event"] == "dma_buf.attach"
    assert entry["dmabuf"] == 1 and entry["attach"] == 2 and entry["seq"] == 1
    assert not t.enabled
