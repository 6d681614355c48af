"""A trace as a sequence diagram: who called whom, step by step.

:func:`steps` turns the trace tree into arrows between lanes (one program lane per
process, then the core, the dma-buf core, the exporter, the importer and the PCIe
device lane); :func:`render_mermaid` writes them as a Mermaid ``sequenceDiagram`` and
:mod:`.html` draws the same steps as an SVG.

A syscall is an arrow from its process to the lane whose code it enters (the driver of
the fd's file: ``ioctl`` on a VFIO device fd enters the exporter, on a dma-buf fd the
dma-buf core; path calls enter the core) and a dashed return arrow carrying the result.
Each event the call caused is an arrow from its *caller* to the event's lane: the lane
the syscall entered, except where the kernel's call graph says otherwise — an exporter
calls ``dma_buf_export`` and ``dma_buf_invalidate_mappings``, an importer attaches and
maps (and its device sends the TLPs), the dma-buf core calls the importer's
``move_notify`` after an invalidation, and closing a dma-buf fd enters the dma-buf core,
which calls the exporter's ``release``.  (The trace records what changed,
in order, not the call stack: these arrows are that order drawn with the kernel's
roles.)  Each arrow that stands for an event is numbered with the event's ``seq``; the
return arrow carries the syscall event's own ``seq`` (it is emitted on return), so the
numbers read in increasing order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .decode import fields, result_text, syscall_text
from .model import LANES, Node, lane_of, pids, view, who

__all__ = ["Diagram", "Step", "render_mermaid", "steps"]

#: event -> the lane that makes it happen (else the lane the syscall entered)
_CALLERS: Mapping[str, str] = MappingProxyType(
    {
        "dma_buf.export": "exporter",
        "dma_buf.invalidate": "exporter",
        "dma_buf.attach": "importer",
        "dma_buf.detach": "importer",
        "dma_buf.map": "importer",
        "dma_buf.unmap": "importer",
        "dma_buf.pin": "importer",
        "dma_buf.unpin": "importer",
        "pcie.tlp": "importer",  # a device's DMA: the NIC/HCA of an importer is the requester
    }
)
#: after this dma-buf event, events of that lane are the dma-buf core calling it
_CALLBACKS: Mapping[str, str] = MappingProxyType(
    {
        "dma_buf.invalidate": "importer",  # ->invalidate_mappings (move_notify)
    }
)


@dataclass(frozen=True)
class Step:
    """One arrow: ``src`` -> ``dst`` with ``text``; ``seq`` is the event's number (None
    for a syscall's call arrow, whose event is its return); ``kind`` is ``call``,
    ``return`` or ``event``; ``error`` marks a failed syscall's return."""

    seq: int | None
    src: str
    dst: str
    text: str
    kind: str
    error: bool = False


@dataclass(frozen=True)
class Diagram:
    """The lanes that have an arrow (``(id, label)``, left to right), the arrows, and
    how many shutdown events were left out."""

    lanes: tuple[tuple[str, str], ...]
    steps: tuple[Step, ...]
    hidden: int


def event_text(ev: Mapping[str, Any]) -> str:
    """``dma_buf.sync dmabuf=131 flags=DMA_BUF_SYNC_END|DMA_BUF_SYNC_WRITE``."""
    shown = " ".join(f"{k}={v}" for k, v in fields(ev))
    return f"{ev.get('event', '?')} {shown}".rstrip()


def steps(
    events: list[dict[str, Any]],
    only: tuple[str, ...] = (),
    shutdown: bool = False,
    skip_core: bool = False,
) -> Diagram:
    """The arrows of a trace (``only``: events named so and their syscalls; ``shutdown``:
    keep the shutdown of devices the program did not use; ``skip_core``: leave out the
    syscalls only the core saw)."""
    v = view(events, only, shutdown, skip_core)
    events = v.events
    file_kinds = v.file_kinds
    procs = pids(events)
    many = len(procs) > 1
    comm: dict[Any, str] = {}
    for e in events:  # a process's name: its exec's, or its parent's at fork
        if e.get("event") == "sup.exec" and "pid" in e and "comm" in e:
            comm.setdefault(e["pid"], str(e["comm"]))
        elif e.get("event") == "sup.fork" and e.get("pid") in comm and "child" in e:
            comm.setdefault(e["child"], comm[e["pid"]])
    prog_ids = {p: (f"p{p}" if many else "program") for p in procs}
    out: list[Step] = []

    def program(ev: Mapping[str, Any]) -> str:
        pid = ev.get("pid")
        if pid not in prog_ids:
            prog_ids[pid] = f"p{pid}" if many and pid is not None else "program"
        return prog_ids[pid]

    def walk(node: Node, entry: str | None, pid: Any, state: dict[str, str]) -> None:
        if not v.keep(node):
            return
        ev = node.event
        seq = ev.get("seq") if isinstance(ev.get("seq"), int) else None
        if node.name.startswith("sys."):
            me = program(ev)
            into = _ident(v.entries.get(id(ev), "core"))
            call = syscall_text(ev, file_kinds, addresses=False)
            head = call.rpartition(" = ")[0]
            if ev.get("tid") not in (None, ev.get("pid")):
                head = f"[{who(ev)}] {head}"
            out.append(Step(None, me, into, head, "call"))
            inner: dict[str, str] = {}
            for child in node.children:
                walk(child, into, ev.get("pid"), inner)
            out.append(Step(seq, into, me, result_text(ev), "return", error="errno" in ev))
            return
        lane = lane_of(node.name)
        if lane == "program":
            dst = program({"pid": ev.get("pid", pid)})
            src = dst
            if node.name == "sup.fork" and "child" in ev:
                dst = program({"pid": ev["child"]})
        else:
            dst = _ident(lane)
            caller = _CALLERS.get(node.name)
            if caller is None and state.get("callback") == lane:
                caller = "dma-buf"
            if caller is None:
                caller = entry if entry is not None else lane
            src = _ident(caller)
        if lane == "dma-buf":
            state["callback"] = _CALLBACKS.get(node.name, "")
        out.append(Step(seq, src, dst, event_text(ev), "event"))
        for child in node.children:
            walk(child, entry, pid, state)

    for node in v.nodes:
        walk(node, None, None, {})
    used = {s.src for s in out} | {s.dst for s in out}
    lanes: list[tuple[str, str]] = []
    for lane, _prefixes in LANES:
        if lane == "program":
            seen: dict[str, str] = {}
            for pid, ident in prog_ids.items():
                label = "program" if not many else f"{comm.get(pid, 'pid')} {pid}"
                seen.setdefault(ident, label)
            lanes += [(ident, label) for ident, label in seen.items() if ident in used]
        elif _ident(lane) in used:
            lanes.append((_ident(lane), _LABELS.get(lane, lane)))
    return Diagram(tuple(lanes), tuple(out), v.hidden)


_LABELS = MappingProxyType({"dma-buf": "dma-buf core", "pci": "PCIe device"})


def _ident(lane: str) -> str:
    return lane.replace("-", "")


def _mermaid_text(s: str) -> str:
    """Mermaid message text: one line, no ';' (a statement break) or '#' (an entity
    code), and '<' '>' (which would read as HTML) as the look-alikes U+2039 and U+203A."""
    s = s.replace(";", ",").replace("#", "no.").replace("\n", " ")
    return s.replace("<", "\u2039").replace(">", "\u203a")


def render_mermaid(
    events: list[dict[str, Any]],
    only: tuple[str, ...] = (),
    shutdown: bool = False,
    skip_core: bool = False,
) -> str:
    """A Mermaid ``sequenceDiagram`` of :func:`steps`: each event's arrow numbered with
    its ``seq`` (``autonumber N`` before it), call arrows unnumbered."""
    d = steps(events, only, shutdown, skip_core)
    return mermaid_of(d)


def mermaid_of(d: Diagram) -> str:
    """The Mermaid text of a :class:`Diagram`."""
    lines = ["sequenceDiagram"]
    lines += [f"    participant {ident} as {label}" for ident, label in d.lanes]
    numbered = False
    for s in d.steps:
        if s.seq is None:
            if numbered:
                lines.append("    autonumber off")
                numbered = False
        else:
            lines.append(f"    autonumber {s.seq}")
            numbered = True
        arrow = {"call": "->>+", "return": "-->>-", "event": "->>"}[s.kind]
        if s.kind == "return" and s.error:
            arrow = "--x-"
        lines.append(f"    {s.src}{arrow}{s.dst}: {_mermaid_text(s.text)}")
    if d.hidden:
        lines.append(
            f"    %% {d.hidden} shutdown event(s) of devices the program did not use "
            "left out (--shutdown shows them)"
        )
    return "\n".join(lines) + "\n"
