"""Reading a trace: ``--trace FILE`` events as a timeline or a Mermaid sequence diagram.

    mockkernel trace trace.jsonl                  # each syscall with what it caused
    mockkernel trace --mermaid trace.jsonl        # a sequence diagram (any Mermaid viewer)
    mockkernel trace --only dma_buf trace.jsonl   # events starting so, and their syscalls

A syscall's event (``sys.<name>``) is emitted when the call returns and carries
``nested``: how many events the call emitted before it.  So the flat list is a tree:
each syscall owns the ``nested`` events just before it (a driver's work, the dma-buf
core's, the fabric's), and events outside any syscall (boot, a test's peer sending) stand
at the top.  Each event belongs to one *lane* by its name's prefix (the program, the
core, the dma-buf core, exporters, importers, the PCIe fabric), which is what the
diagram draws; a trace of several processes (a supervised tree) has one program lane
per process.  (Syscalls of concurrent threads interleave, so their ``nested`` events
may be drawn under a neighbour's call.)
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = [
    "LANES",
    "Node",
    "TraceError",
    "lane_of",
    "load",
    "render_mermaid",
    "render_timeline",
    "syscall_text",
    "tree",
]

#: lane name -> event-name prefixes, in the diagram's left-to-right order
LANES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("program", ("sys.", "userspace.")),
    ("core", ("fd.", "file.", "vfs.", "mm.", "chrdev.", "module.", "kernel.", "poll.")),
    ("dma-buf", ("dma_buf.",)),
    ("exporter", ("vfio_pci.", "vfio.", "iommufd.", "udmabuf.")),
    (
        "importer",
        (
            "rdma.",
            "mlx5.",
            "rxe.",
            "netdev.",
            "mock_nic.",
            "devmem_tcp.",
            "netlink.",
            "rtnetlink.",
            "page_pool.",
            "napi.",
        ),
    ),
    ("pci", ("pci.", "pcie.")),
)
_META = frozenset({"event", "seq", "pid", "tid", "nested"})


class TraceError(ValueError):
    """A trace file that is not one JSON event per line."""


@dataclass
class Node:
    """One event and, for a syscall, the events it caused (in order)."""

    event: dict[str, Any]
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.event.get("event", "?"))


def load(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The events of a JSON-lines trace (blank lines skipped)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraceError(f"line {n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise TraceError(f'line {n}: not a trace event (an object with an "event" name)')
        out.append(obj)
    return out


def tree(events: Iterable[dict[str, Any]]) -> list[Node]:
    """Nest each syscall's ``nested`` preceding events under it."""
    top: list[Node] = []
    for ev in events:
        node = Node(ev)
        nested = ev.get("nested")
        seq = ev.get("seq")
        if isinstance(nested, int) and isinstance(seq, int) and nested > 0:
            first = seq - nested
            at = len(top)
            while at > 0 and _seq(top[at - 1]) >= first:
                at -= 1
            node.children, top[at:] = top[at:], []
        top.append(node)
    return top


def _seq(node: Node) -> int:
    seq = node.event.get("seq")
    return seq if isinstance(seq, int) else -1


def lane_of(name: str) -> str:
    for lane, prefixes in LANES:
        if name.startswith(prefixes):
            return lane
    return "core"


# -- text ---------------------------------------------------------------------------------------
@cache
def _ioctl_names() -> dict[int, tuple[str, ...]]:
    """Ioctl numbers of ``mockkernel.uapi`` (and the generic ``FIO*``) -> their names."""
    from . import uapi

    names: dict[int, set[str]] = {
        0x5451: {"FIOCLEX"},
        0x5450: {"FIONCLEX"},
        0x5421: {"FIONBIO"},
        0x5452: {"FIOASYNC"},
        0x541B: {"FIONREAD"},
    }
    for info in pkgutil.walk_packages(uapi.__path__, uapi.__name__ + "."):
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", ()):
            value = getattr(mod, name, None)
            if (
                type(value) is int
                and 0xFF < value < 1 << 32
                and (value >> 8) & 0xFF in (0x3B, 0x62, 0x75, 0x1B)  # VFIO/iommufd, dma-buf,
                and not name.endswith(("_FLAGS", "_MASK"))  # udmabuf, RDMA_VERBS_IOCTL
            ):
                names.setdefault(value, set()).add(name)
    return {k: tuple(sorted(v)) for k, v in names.items()}


def _ioctl_name(cmd: Any, kind: str | None) -> str:
    try:
        number = int(str(cmd), 0)
    except ValueError:
        return str(cmd)
    names = _ioctl_names().get(number, ())
    if kind == "[vfio-device]":
        names = tuple(n for n in names if n.startswith("VFIO_DEVICE_")) or names
    elif kind in ("vfio", "vfio-group"):
        names = tuple(n for n in names if not n.startswith("VFIO_DEVICE_")) or names
    names = tuple(n for n in names if "SPAPR" not in n and "EEH" not in n) or names
    if "DMA_BUF_SET_NAME" in names:
        names = ("DMA_BUF_SET_NAME",)
    return "|".join(names) if names else hex(number)


def _fields(ev: dict[str, Any], skip: Iterable[str] = ()) -> str:
    drop = _META | set(skip)
    return " ".join(f"{k}={_value(v)}" for k, v in ev.items() if k not in drop)


def _value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v) if (not v or " " in v or '"' in v) else v
    return json.dumps(v, default=str)


def syscall_text(ev: dict[str, Any], kinds: dict[Any, str] | None = None) -> str:
    """``ioctl(fd=4, cmd=VFIO_DEVICE_FEATURE, arg=...) = 0`` for a ``sys.*`` event."""
    name = str(ev["event"]).removeprefix("sys.")
    flags = ev.get("flags")
    args = []
    for k, v in ev.items():
        if k in _META or k in ("ret", "errno", "file"):
            continue
        if k == "cmd" and name == "ioctl":
            args.append(f"{k}={_ioctl_name(v, (kinds or {}).get(ev.get('file')))}")
        elif k == "arg" and name == "ioctl" and isinstance(v, int) and v > 0xFFFF:
            args.append(f"{k}={v:#x}")  # a user address
        elif k == "cmd" and name == "fcntl" and isinstance(v, int):
            args.append(f"{k}={_FCNTL.get(v, v)}")
        elif k == "flags" and name == "open" and isinstance(v, int):
            args.append(f"{k}={_open_flags(v)}")
        elif k == "mode" and name == "open" and not (isinstance(flags, int) and flags & 0o100):
            continue  # (only meaningful with O_CREAT)
        else:
            args.append(f"{k}={_value(v)}")
    if "errno" in ev:
        result = f"-1 {ev['errno']}"
    else:
        ret = ev.get("ret")
        result = "0" if ret is None else _value(ret)
    return f"{name}({', '.join(args)}) = {result}"


_O_NAMES = tuple(
    (getattr(os, n), n)
    for n in ("O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC",
              "O_DIRECT", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_PATH")
    if hasattr(os, n)
)  # fmt: skip


_FCNTL = {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL",
          1030: "F_DUPFD_CLOEXEC", 1033: "F_ADD_SEALS", 1034: "F_GET_SEALS"}  # fmt: skip


def _open_flags(flags: int) -> str:
    """``O_RDWR|O_CLOEXEC`` for 0o2000002."""
    parts = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[flags & 3]]
    rest = flags & ~3
    for bit, name in _O_NAMES:
        if rest & bit == bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(f"{rest:#o}")
    return "|".join(parts)


def _kinds(events: Iterable[dict[str, Any]]) -> dict[Any, str]:
    """file id -> its kind, from ``fd.install`` events."""
    return {e.get("file"): str(e["kind"]) for e in events if e.get("event") == "fd.install"}


def _keep(node: Node, only: tuple[str, ...]) -> bool:
    return not only or node.name.startswith(only) or any(_keep(c, only) for c in node.children)


def _pids(events: Iterable[dict[str, Any]]) -> list[Any]:
    """The processes whose syscalls the trace has, in order of appearance."""
    seen: dict[Any, None] = {}
    for e in events:
        if str(e.get("event", "")).startswith("sys.") and "pid" in e:
            seen.setdefault(e["pid"], None)
    return list(seen)


def _who(ev: dict[str, Any]) -> str:
    """``pid`` or ``pid/tid`` (a thread other than the main one) of a syscall event."""
    pid, tid = ev.get("pid"), ev.get("tid")
    return f"{pid}" if tid in (None, pid) else f"{pid}/{tid}"


def render_timeline(events: list[dict[str, Any]], only: tuple[str, ...] = ()) -> str:
    """One line per event: syscalls with what they caused indented under them.  When
    several processes made syscalls (a supervised tree), each syscall line starts with
    its ``pid`` (``pid/tid`` for a further thread): one lane per process."""
    kinds = _kinds(events)
    many = len(_pids(events)) > 1
    out: list[str] = []

    def walk(node: Node, depth: int) -> None:
        if not _keep(node, only):
            return
        ev = node.event
        seq = ev.get("seq", "")
        lane = lane_of(node.name)
        if node.name.startswith("sys."):
            text = syscall_text(ev, kinds)
            if many:
                text = f"[{_who(ev)}] {text}"
        else:
            text = f"{node.name} {_fields(ev)}".rstrip()
        out.append(f"{seq!s:>5}  {lane:<8}  {'  ' * depth}{text}")
        for child in node.children:
            walk(child, depth + 1)

    for node in tree(events):
        walk(node, 0)
    return "\n".join(out) + ("\n" if out else "")


def render_mermaid(events: list[dict[str, Any]], only: tuple[str, ...] = ()) -> str:
    """A Mermaid ``sequenceDiagram``: syscalls as calls from the program into the kernel,
    the events they caused as notes over their lanes, then the return."""
    kinds = _kinds(events)
    lines = ["sequenceDiagram", "    autonumber"]
    pids = _pids(events)
    many = len(pids) > 1
    programs = {pid: f"program{pid}" if many else "program" for pid in pids}
    for lane, _prefixes in LANES:
        if lane == "program" and many:  # one lane per process of a supervised tree
            lines += [f"    participant {programs[p]} as program {p}" for p in pids]
        else:
            lines.append(f"    participant {_ident(lane)} as {lane}")

    def text(s: str) -> str:
        """Mermaid message text: one line, no ';' (a statement break), '#' only in the
        entity codes that stand for '<' and '>' (which would read as HTML)."""
        s = s.replace(";", ",").replace("#", "no.").replace("\n", " ")
        return s.replace("<", "#lt;").replace(">", "#gt;")

    def walk(node: Node) -> None:
        if not _keep(node, only):
            return
        ev = node.event
        if node.name.startswith("sys."):
            call = syscall_text(ev, kinds)
            head, _, result = call.rpartition(" = ")
            who = programs.get(ev.get("pid"), "program")
            lines.append(f"    {who}->>+core: {text(head)}")
            for child in node.children:
                walk(child)
            lines.append(f"    core-->>-{who}: {text(result)}")
            return
        lane = _ident(lane_of(node.name))
        lines.append(f"    Note over {lane}: {text(node.name + ' ' + _fields(ev)).strip()}")
        for child in node.children:
            walk(child)

    for node in tree(events):
        walk(node)
    return "\n".join(lines) + "\n"


def _ident(lane: str) -> str:
    return lane.replace("-", "")
