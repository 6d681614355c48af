"""A trace as a timeline: one line per event, what a syscall caused indented under it."""

from __future__ import annotations

from typing import Any

from .decode import syscall_text
from .diagram import event_text
from .model import Node, lane_of, pids, view, who

__all__ = ["render_timeline"]


def render_timeline(
    events: list[dict[str, Any]],
    only: tuple[str, ...] = (),
    shutdown: bool = False,
    skip_core: bool = False,
) -> str:
    """One line per event: ``seq``, lane, then the event with its numbers decoded;
    syscalls with what they caused indented under them.  When several processes made
    syscalls (a supervised tree), each syscall line starts with its ``pid`` (``pid/tid``
    for a further thread).  The shutdown of devices the program did not use is left out
    (one closing line says how many) unless ``shutdown``; ``skip_core`` leaves out the
    syscalls only the core saw."""
    v = view(events, only, shutdown, skip_core)
    file_kinds = v.file_kinds
    hidden = v.hidden
    many = len(pids(v.events)) > 1
    out: list[str] = []

    def walk(node: Node, depth: int) -> None:
        if not v.keep(node):
            return
        ev = node.event
        seq = ev.get("seq", "")
        lane = lane_of(node.name)
        if node.name.startswith("sys."):
            text = syscall_text(ev, file_kinds)
            if many:
                text = f"[{who(ev)}] {text}"
        else:
            text = event_text(ev)
        out.append(f"{seq!s:>5}  {lane:<8}  {'  ' * depth}{text}")
        for child in node.children:
            walk(child, depth + 1)

    for node in v.nodes:
        walk(node, 0)
    if hidden:
        out.append(
            f"    …  {hidden} shutdown event(s) of devices the program did not use "
            "left out (--shutdown shows them)"
        )
    return "\n".join(out) + ("\n" if out else "")
