"""Reading a trace: ``--trace FILE`` events as a timeline, a diagram or an HTML page.

    mockkernel trace trace.jsonl                  # each syscall with what it caused
    mockkernel trace --mermaid trace.jsonl        # a sequence diagram (any Mermaid viewer)
    mockkernel trace --html trace.jsonl > t.html  # one self-contained page: diagram + table
    mockkernel trace --only dma_buf trace.jsonl   # events starting so, and their syscalls
    mockkernel trace --shutdown trace.jsonl       # with every device's shutdown

The pieces: :mod:`.model` reads a trace into a tree of syscalls and the events they
caused, each in a lane (:data:`LANES`); :mod:`.decode` writes numbers as the names of
the uAPI headers (``O_RDWR|O_CLOEXEC``, ``VFIO_DEVICE_FEATURE``, ``DMA_BUF_SYNC_END``);
:mod:`.timeline` prints the tree; :mod:`.diagram` turns it into arrows between lanes
(Mermaid text); :mod:`.html` draws those arrows as an inline SVG beside a timeline
table, in one file that needs no network.  A trace of several processes (a supervised
tree) has one program lane per process.  (Syscalls of concurrent threads interleave, so
their ``nested`` events may be drawn under a neighbour's call.)
"""

from __future__ import annotations

from .decode import fields, ioctl_name, syscall_text
from .diagram import Diagram, Step, render_mermaid, steps
from .html import render_html
from .model import LANES, Node, TraceError, lane_of, load, split_shutdown, tree
from .timeline import render_timeline

__all__ = [
    "LANES",
    "Diagram",
    "Node",
    "Step",
    "TraceError",
    "fields",
    "ioctl_name",
    "lane_of",
    "load",
    "render_html",
    "render_mermaid",
    "render_timeline",
    "split_shutdown",
    "steps",
    "syscall_text",
    "tree",
]
