"""One tracing idiom in ``mockkernel/`` and ``plugins/`` (docs/architecture.md, "Tracing").

A fixed-shape event is a ``TracePoint`` declared once and called with the tracer; only an
event whose fields vary per call (``**fields`` passed through) goes through
``tracer.emit``.  Read from the source (AST), so a hand-written
``if tracer.enabled: tracer.emit("name", key=value)`` fails here before it ships.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _fixed_shape_emits(rel: str, source: str) -> list[str]:
    """``tracer.emit("literal name", key=value, ...)`` calls (no ``**fields``) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, rel)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "emit"
            and "tracer" in ast.unparse(node.func.value)
        ):
            continue
        literal = bool(node.args) and isinstance(node.args[0], ast.Constant)
        varying = any(k.arg is None for k in node.keywords)  # **fields
        if literal and not varying:
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_fixed_shape_events_are_tracepoints() -> None:
    found = [
        hit
        for tree in ("mockkernel", "plugins")
        for path in sorted((ROOT / tree).rglob("*.py"))
        for hit in _fixed_shape_emits(path.relative_to(ROOT).as_posix(), path.read_text())
    ]
    assert not found, (
        "declare each of these once as `trace_x = TracePoint(name, *fields)` and call "
        "`trace_x(tracer, *values)` (docs/architecture.md, 'Tracing'):\n" + "\n".join(found)
    )


def test_the_check_sees_a_hand_written_emit_and_spares_varying_fields() -> None:
    source = (
        "if k.tracer.enabled:\n"
        "    k.tracer.emit('x.y', a=1)\n"
        "tracer.emit('x.z', a=1, **more)\n"
        "self.kernel.tracer.emit(event, **fields)\n"
    )
    assert [hit.split(":")[1] for hit in _fixed_shape_emits("m.py", source)] == ["2"]
