"""The tracer builds each event as a flat dict and hands it to every sink."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest
import structlog

from mockkernel import Kernel
from mockkernel.trace import EventSpec, TracePoint, Tracer


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


def test_a_capture_reads_as_a_list_of_dicts() -> None:
    t = Tracer()
    spec = EventSpec("sys.ioctl", ("pid", "fd", "cmd", "nested", "ret"), hex_keys=("cmd",))
    with t.capture() as outer:
        t.emit("a.b", x=1)
        with t.capture() as inner:
            t.emit_record(spec, (7, 3, 0x40086200, 1, 0))
            t.emit("a.b", x=2)  # the same shape as the first: the same spec, other values
    want = [
        {"x": 1, "event": "a.b", "seq": 1},
        {"pid": 7, "fd": 3, "cmd": "0x40086200", "nested": 1, "ret": 0, "event": "sys.ioctl",
         "seq": 2},
        {"x": 2, "event": "a.b", "seq": 3},
    ]  # fmt: skip
    assert outer == want and list(outer) == want and len(outer) == 3
    assert inner == want[1:] and inner[0] == want[1] and inner[-1] == want[2]
    assert outer[1:] == want[1:] and outer[::-1] == want[::-1]
    assert outer != want[:2] and outer != "not a list"
    assert repr(inner) == repr(want[1:])
    inner.clear()
    assert inner == [] and not inner and outer == want
    with pytest.raises(IndexError):
        outer[3]


def test_a_tracepoint_emits_the_dict_emit_would_and_nothing_while_off() -> None:
    tp = TracePoint("rdma.write", "ibdev", "command", "ok", hex_keys=("command",))
    t = Tracer()
    tp(t, "mlx5_0", 0x1A, True)  # off: no event, no sequence number taken
    assert t.seq == 0
    seen: list[dict[str, Any]] = []
    t.add_sink(seen.append)
    with t.capture() as events:
        tp(t, "mlx5_0", 0x1A, True)
        t.emit("rdma.write", ibdev="mlx5_0", command="0x1a", ok=True)
    want = {"ibdev": "mlx5_0", "command": "0x1a", "ok": True, "event": "rdma.write"}
    assert seen == list(events) == [want | {"seq": 1}, want | {"seq": 2}]


def test_a_tracepoint_refuses_the_wrong_number_of_values_and_unknown_hex_keys() -> None:
    tp = TracePoint("dma_buf.detach", "dmabuf", "attach")
    t = Tracer()
    tp(t, 1)  # off: not checked (no cost)
    with t.capture(), pytest.raises(TypeError, match=r"dma_buf\.detach"):
        tp(t, 1)
    with pytest.raises(ValueError, match="hex_keys"):
        TracePoint("x.y", "a", hex_keys=("b",))


def test_emit_while_off_emits_nothing() -> None:
    t = Tracer()
    t.emit("kernel.warn", message="m")
    assert t.seq == 0


def test_emit_record_gives_other_sinks_the_same_dict() -> None:
    t = Tracer()
    got: list[dict[str, Any]] = []
    t.add_sink(got.append)
    spec = EventSpec("sys.fstat", ("pid", "fd", "nested", "ret"))
    with t.capture() as events:
        t.emit_record(spec, (7, 3, 0, "<stat_result>"))
    assert (
        got
        == list(events)
        == [
            {"pid": 7, "fd": 3, "nested": 0, "ret": "<stat_result>", "event": "sys.fstat", "seq": 1}
        ]
    )


def test_traced_syscalls_show_the_same_fields_every_way_they_are_called(
    mock_kernel: Kernel,
) -> None:
    proc = mock_kernel.init_process
    seen: list[dict[str, Any]] = []
    mock_kernel.tracer.add_sink(seen.append)
    try:
        with mock_kernel.tracer.capture() as events:
            fd = proc.sys_open("/dev/udmabuf", os.O_RDWR)
            file_id = proc.files[fd].id
            with pytest.raises(OSError):
                proc.sys_ioctl(fd, 0x1234, 0)  # not a udmabuf command: ENOTTY
            proc.sys_close(fd=fd)  # by keyword: the general path, the same event
    finally:
        mock_kernel.tracer.remove_sink(seen.append)
    assert list(events) == seen
    opened, ioctl, closed = (e for e in events if e["event"].startswith("sys."))
    assert opened["path"] == "/dev/udmabuf" and opened["ret"] == fd
    assert ioctl["cmd"] == "0x1234" and ioctl["errno"] == "ENOTTY"
    assert ioctl["file"] == file_id and list(ioctl)[:5] == ["pid", "fd", "cmd", "arg", "file"]
    assert closed == {"pid": proc.pid, "fd": fd, "nested": closed["nested"], "ret": None,
                      "event": "sys.close", "seq": closed["seq"]}  # fmt: skip
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[-1]["seq"] + 1))
