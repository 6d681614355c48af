"""A trace as a tree of syscalls and what they caused, in lanes.

A syscall's event (``sys.<name>``) is emitted when the call returns and carries
``nested``: how many events the call emitted before it.  So the flat list is a tree:
each syscall owns the ``nested`` events just before it (a driver's work, the dma-buf
core's, the fabric's), and events outside any syscall (boot, a test's peer sending) stand
at the top.  Each event belongs to one *lane* by its name's prefix (the program, the
core, the dma-buf core, exporters, importers, the PCIe devices and fabric).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "KIND_LANES",
    "LANES",
    "Node",
    "TraceError",
    "View",
    "entry_lanes",
    "kinds",
    "lane_of",
    "load",
    "pids",
    "split_shutdown",
    "tree",
    "view",
    "who",
]

#: lane name -> event-name prefixes, in the diagram's left-to-right order
LANES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("program", ("sys.", "userspace.", "sup.")),
    (
        "core",
        ("fd.", "file.", "vfs.", "mm.", "chrdev.", "module.", "kernel.", "poll.", "fault."),
    ),
    ("dma-buf", ("dma_buf.",)),
    ("exporter", ("vfio_pci.", "vfio.", "iommufd.", "udmabuf.")),
    (
        "importer",
        (
            "rdma.",
            "rdma_nl.",
            "mlx5.",
            "rxe.",
            "roce.",
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

#: a file's kind (``fd.install``'s ``kind``: its ops' name) -> the lane whose code its
#: syscalls enter; other kinds (directories, sysfs, seq files) are the core's
KIND_LANES: Mapping[str, str] = MappingProxyType(
    {
        "dmabuf": "dma-buf",
        "sync_file": "dma-buf",
        "udmabuf": "exporter",
        "iommufd": "exporter",
        "vfio": "exporter",
        "vfio-group": "exporter",
        "[vfio-device]": "exporter",
        "uverbs": "importer",
        "[infinibandevent]": "importer",
        "socket": "importer",
    }
)


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
    """The lane of an event name (``core`` for a name no lane claims)."""
    for lane, prefixes in LANES:
        if name.startswith(prefixes):
            return lane
    return "core"


def kinds(events: Iterable[Mapping[str, Any]]) -> dict[Any, str]:
    """file id -> its kind, from ``fd.install`` events."""
    return {e.get("file"): str(e["kind"]) for e in events if e.get("event") == "fd.install"}


def pids(events: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The processes whose syscalls the trace has, in order of appearance."""
    seen: dict[Any, None] = {}
    for e in events:
        if str(e.get("event", "")).startswith("sys.") and "pid" in e:
            seen.setdefault(e["pid"], None)
    return list(seen)


def who(ev: Mapping[str, Any]) -> str:
    """``pid`` or ``pid/tid`` (a thread other than the main one) of a syscall event."""
    pid, tid = ev.get("pid"), ev.get("tid")
    return f"{pid}" if tid in (None, pid) else f"{pid}/{tid}"


#: the fields that name a device or an object: a shutdown event is the program's
#: business when one of them names something the program's part of the trace named
_IDENTITIES = ("bdf", "dev", "ibdev", "ifname", "device", "path", "requester", "dmabuf", "file")
#: events a shutdown keeps always (the leak count; the dma-buf core's teardown)
_ALWAYS = ("kernel.shutdown", "dma_buf.")


def split_shutdown(
    events: list[dict[str, Any]], only: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], int]:
    """The events without the shutdown of devices the program never touched, and how
    many were left out (of those named ``only*``, when ``only`` is given).

    The shutdown is what follows the program's last event (a syscall, a ``userspace.*``
    or supervisor ``sup.*`` event).  In it, an event stays when it names a device or an
    object that the program's part named (``bdf``, ``ibdev``, ``dev``, ``path``, ``dmabuf``,
    ...), and ``kernel.shutdown`` (with the leak count) and ``dma_buf.*`` always stay:
    a trace of the udmabuf demo does not end with the NIC's page pools going away."""
    last = -1
    for i, e in enumerate(events):
        if str(e.get("event", "")).startswith(LANES[0][1]):
            last = i
    if last < 0:
        return events, 0
    seen = {str(e[k]) for e in events[: last + 1] for k in _IDENTITIES if e.get(k) is not None}
    kept = events[: last + 1]
    for e in events[last + 1 :]:
        name = str(e.get("event", ""))
        if name.startswith(_ALWAYS) or any(
            str(e[k]) in seen for k in _IDENTITIES if e.get(k) is not None
        ):
            kept.append(e)
    if not only:
        return kept, len(events) - len(kept)
    stayed = {id(e) for e in kept[last + 1 :]}
    left_out = [e for e in events[last + 1 :] if id(e) not in stayed]
    return kept, sum(1 for e in left_out if str(e.get("event", "")).startswith(only))


def _driver_of(node: Node) -> str:
    """The lane a syscall on an fd of unknown kind entered, from what it caused: an
    exporter's or importer's event, else the dma-buf core's, else the core."""
    lanes = [lane_of(c.name) for c in node.children]
    for lane in ("exporter", "importer", "dma-buf"):
        if lane in lanes:
            return lane
    return "core"


def entry_lanes(nodes: list[Node], file_kinds: Mapping[Any, str]) -> dict[int, str]:
    """``id(syscall event)`` -> the lane whose code the call entered: the driver of its
    fd's file (followed through ``fd.install``/``fd.close``; for an fd opened before the
    trace began, the driver its events show), the core for a path call."""
    fds: dict[tuple[Any, Any], Any] = {}  # (pid, fd) -> file id
    inferred: dict[tuple[Any, Any], str] = {}  # (pid, fd) of unknown kind -> its driver
    entries: dict[int, str] = {}

    def scan(node: Node, pid: Any) -> None:
        ev = node.event
        name = node.name
        if name.startswith("sys."):
            file = ev.get("file")
            if file is None and "fd" in ev:
                file = fds.get((ev.get("pid"), ev["fd"]))
            kind = file_kinds.get(file)
            if kind is not None or "fd" not in ev:
                entries[id(ev)] = KIND_LANES.get(kind or "", "core")
            else:
                key = (ev.get("pid"), ev["fd"])
                lane = _driver_of(node)
                if lane == "core":
                    lane = inferred.get(key, lane)
                inferred[key] = entries[id(ev)] = lane
            pid = ev.get("pid")
        elif name == "fd.install":
            fds[(ev.get("pid", pid), ev.get("fd"))] = ev.get("file")
        elif name == "fd.close":
            fds.pop((ev.get("pid", pid), ev.get("fd")), None)
        for child in node.children:
            scan(child, pid)

    for node in nodes:
        scan(node, None)
    return entries


@dataclass
class View:
    """What a renderer shows of a trace: the tree, which nodes to keep, and how many
    shutdown events were left out."""

    events: list[dict[str, Any]]
    nodes: list[Node]
    file_kinds: dict[Any, str]
    entries: dict[int, str]
    only: tuple[str, ...]
    skip_core: bool
    hidden: int

    def _driver_file(self, ev: Mapping[str, Any]) -> bool:
        return KIND_LANES.get(self.file_kinds.get(ev.get("file"), ""), "core") != "core"

    def touches_driver(self, node: Node) -> bool:
        """Did this syscall enter a driver, cause an event outside the core, or touch a
        driver's file (a dma-buf fd closed, a udmabuf released)?"""
        if self.entries.get(id(node.event), "core") != "core":
            return True
        for c in node.children:
            if lane_of(c.name) not in ("core", "program") or self._driver_file(c.event):
                return True
            if c.name.startswith("sys.") and self.touches_driver(c):
                return True
        return False

    def keep(self, node: Node) -> bool:
        """Shown: matches ``only`` (or has a descendant that does) and, with
        ``skip_core``, is not a syscall (or a stray core event) that only the core saw."""
        if self.skip_core:
            if node.name.startswith("sys."):
                if not self.touches_driver(node):
                    return False
            elif (
                lane_of(node.name) == "core"
                and node.name != "kernel.shutdown"
                and not self._driver_file(node.event)
            ):
                return False
        if not self.only or node.name.startswith(self.only):
            return True
        return any(self.keep(c) for c in node.children)


def view(
    events: list[dict[str, Any]],
    only: tuple[str, ...] = (),
    shutdown: bool = False,
    skip_core: bool = False,
) -> View:
    """The :class:`View` of a trace: without the unused devices' shutdown unless
    ``shutdown``; ``only`` prefixes; ``skip_core`` leaves out the syscalls only the core
    saw (directory listings, sysfs reads, ``stat``: a program's discovery)."""
    hidden = 0
    if not shutdown:
        events, hidden = split_shutdown(events, only)
    file_kinds = kinds(events)
    nodes = tree(events)
    return View(events, nodes, file_kinds, entry_lanes(nodes, file_kinds), only, skip_core, hidden)
