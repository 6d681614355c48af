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
from typing import Any

__all__ = [
    "KIND_LANES",
    "LANES",
    "Node",
    "TraceError",
    "kinds",
    "lane_of",
    "load",
    "pids",
    "split_shutdown",
    "tree",
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
KIND_LANES: Mapping[str, str] = {
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
