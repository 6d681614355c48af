"""A trace as one self-contained HTML page: the sequence diagram and the timeline.

The page needs no network and no JavaScript library: the diagram of :mod:`.diagram` is
drawn here as an inline SVG (lanes, lifelines, numbered arrows), beside the timeline as a
table.  An arrow's label is wrapped to stay inside the lanes it joins (from just right of
its left end to the edge of its right lane's column; a self-arrow's, its own column), at
most :data:`MAX_LINES` lines -- a longer one ends in "…", and its full text is the
arrow's tooltip.  CSS and the
few lines of script (a filter box; clicking an arrow shows its timeline row) are inline,
and a ``Content-Security-Policy`` forbids the page any load from elsewhere, so it opens
the same from a file, an e-mail attachment or a CI artifact.
"""

from __future__ import annotations

import textwrap
from html import escape
from typing import Any

from .decode import syscall_text
from .diagram import Diagram, event_text, steps
from .model import Node, View, lane_of, pids, view, who

__all__ = ["CHAR_W", "LANE_W", "MAX_LINES", "label_lines", "render_html", "svg_of"]

LANE_W = 220  # px between lifelines: each lane's column is this wide, centred on it
_ROW_H = 26  # px per arrow with a one-line label
_LINE_H = 13  # px per further line of a label
_TOP = 56  # px above the first arrow (the lane boxes)
CHAR_W = 6.6  # px per character of the 11px monospace labels
#: the most lines of one label (the rest is in the arrow's tooltip and the timeline)
MAX_LINES = 8

_SVG_CSS = """
svg text{font:11px ui-monospace,SFMono-Regular,Menlo,monospace;fill:#222;
  paint-order:stroke;stroke:#fcfcff;stroke-width:3px}
svg .lane rect{fill:#eef;stroke:#99c}
svg .lane text{font:bold 12px system-ui,sans-serif;text-anchor:middle}
svg .life{stroke:#99c;stroke-dasharray:4 3}
svg .step line,svg .step path{stroke:#333;fill:none;marker-end:url(#head)}
svg .step.return line{stroke-dasharray:5 3;stroke:#777}
svg .step.error line{stroke:#c00}
svg .step.error text{fill:#c00}
svg .step circle{fill:#333}
svg .step text.n{fill:#fff;stroke:none;font-size:9px;text-anchor:middle}
svg .step:hover text{font-weight:bold}
svg .step.picked line,svg .step.picked path{stroke:#e60;stroke-width:2}
"""

_PAGE_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .3em}
.note{color:#555;margin:.2em 0 1em}
#diagram{overflow-x:auto;border:1px solid #ddd;padding:.5em;background:#fcfcff}
table{border-collapse:collapse;margin-top:1em;font:12px ui-monospace,Menlo,monospace}
td,th{padding:1px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #eee}
td.seq{text-align:right;color:#666}
tr.picked{background:#fe9}
tr.sys td.text{font-weight:bold}
#filter{margin:.5em 0;padding:3px 6px;width:24em}
"""
_CSS = _PAGE_CSS + _SVG_CSS

_JS = """
(function(){
  var rows=document.querySelectorAll('#timeline tbody tr');
  var box=document.getElementById('filter');
  function pick(seq){
    document.querySelectorAll('.picked').forEach(function(e){e.classList.remove('picked')});
    var g=document.querySelector('svg .step[data-seq="'+seq+'"]');
    var r=document.getElementById('seq-'+seq);
    if(g)g.classList.add('picked');
    if(r){r.classList.add('picked');r.scrollIntoView({block:'center'});}
  }
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase(),n=0;
    rows.forEach(function(r){var hit=!q||r.textContent.toLowerCase().indexOf(q)>=0;
      r.style.display=hit?'':'none';if(hit)n++;});
    document.getElementById('shown').textContent=n;
  });
  document.querySelectorAll('svg .step').forEach(function(g){
    g.addEventListener('click',function(){pick(g.getAttribute('data-seq'));});
  });
  var m=/^#seq-(\\d+)$/.exec(location.hash);
  if(m)pick(m[1]);
  document.getElementById('shown').textContent=rows.length;
  var svg=document.querySelector('#diagram svg');
  document.body.setAttribute('data-drawn',svg?Math.round(svg.getBBox().height):0);
  document.body.setAttribute('data-ready','1');
})();
"""


def label_lines(text: str, room: float) -> list[str]:
    """``text`` wrapped to ``room`` px of 11px monospace (at spaces, or inside a word
    longer than a line), at most :data:`MAX_LINES` lines, the last cut with "…"."""
    n = max(8, int(room // CHAR_W))
    lines = textwrap.wrap(text, n, break_on_hyphens=False) or [""]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][: n - 1] + "…"
    return lines


def svg_of(d: Diagram, standalone: bool = False) -> str:
    """The SVG of a :class:`Diagram`: one column per lane, one row per arrow, as tall as
    its wrapped label (``standalone``: with its own style sheet, for an ``.svg`` file or
    an ``<img>``)."""
    x = {ident: 20 + LANE_W // 2 + i * LANE_W for i, (ident, _) in enumerate(d.lanes)}

    def box(src: str, dst: str) -> tuple[int, int]:
        """Where an arrow's label may go: a self-arrow's, its lane's column (the label
        above the loop); another's, from just right of its left end to the edge of its
        right lane's column."""
        if src == dst:
            return x[src] - LANE_W // 2 + 6, x[src] + LANE_W // 2 - 6
        return min(x[src], x[dst]) + 14, max(x[src], x[dst]) + LANE_W // 2 - 6

    labels = []
    for s in d.steps:
        lo, hi = box(s.src, s.dst)
        labels.append((lo, label_lines(s.text, hi - lo)))
    width = 40 + LANE_W * max(1, len(d.lanes))
    height = _TOP + sum(_ROW_H + _LINE_H * (len(lines) - 1) for _, lines in labels) + _ROW_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="sequence diagram">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
        'fill="#333"/></marker></defs>',
    ]
    if standalone:
        out.append(f"<style>{_SVG_CSS}svg{{background:#fcfcff}}</style>")
    for ident, label in d.lanes:
        cx = x[ident]
        out.append(
            f'<g class="lane" data-lane="{escape(ident)}"><rect x="{cx - 90}" y="8" '
            f'width="180" height="30" rx="4"/><text x="{cx}" y="28">{escape(label)}</text></g>'
        )
        out.append(f'<line class="life" x1="{cx}" y1="38" x2="{cx}" y2="{height - 4}"/>')
    top = _TOP
    for s, (tx, lines) in zip(d.steps, labels, strict=True):
        more = _LINE_H * (len(lines) - 1)
        y = top + 14 + more  # the arrow, under its label
        top += _ROW_H + more
        x1, x2 = x[s.src], x[s.dst]
        cls = f"step {s.kind}" + (" error" if s.error else "")
        seq = "" if s.seq is None else str(s.seq)
        out.append(f'<g class="{cls}" data-seq="{seq}"><title>{escape(s.text)}</title>')
        if x1 == x2:
            out.append(f'<path d="M{x1},{y - 6}h28v12h-26"/>')
            last = y - 9
        else:
            out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}"/>')
            last = y - 4
        for i, line in enumerate(lines):
            ty = last - _LINE_H * (len(lines) - 1 - i)
            out.append(f'<text x="{tx}" y="{ty}">{escape(line)}</text>')
        if seq:
            out.append(
                f'<circle cx="{x1}" cy="{y}" r="8"/><text class="n" x="{x1}" '
                f'y="{y + 3}">{seq}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _rows(v: View) -> list[str]:
    many = len(pids(v.events)) > 1
    rows: list[str] = []

    def walk(node: Node, depth: int) -> None:
        if not v.keep(node):
            return
        ev = node.event
        seq = ev.get("seq", "")
        is_sys = node.name.startswith("sys.")
        if is_sys:
            text = syscall_text(ev, v.file_kinds)
            if many:
                text = f"[{who(ev)}] {text}"
        else:
            text = event_text(ev)
        pad = "\u2003" * depth
        rows.append(
            f'<tr id="seq-{escape(str(seq))}" class="{"sys" if is_sys else "ev"}">'
            f'<td class="seq">{escape(str(seq))}</td><td>{escape(lane_of(node.name))}</td>'
            f'<td class="text">{pad}{escape(text)}</td></tr>'
        )
        for child in node.children:
            walk(child, depth + 1)

    for node in v.nodes:
        walk(node, 0)
    return rows


def render_html(
    events: list[dict[str, Any]],
    only: tuple[str, ...] = (),
    shutdown: bool = False,
    title: str = "mockkernel trace",
    skip_core: bool = False,
) -> str:
    """One HTML page (no network, no external file): the diagram of :func:`.steps` as
    an SVG and the timeline as a table whose rows are ``id="seq-N"``."""
    d = steps(events, only, shutdown, skip_core)
    rows = _rows(view(events, only, shutdown, skip_core))
    hidden = (
        f" {d.hidden} shutdown event(s) of devices the program did not use are left out"
        " (<code>mockkernel trace --html --shutdown</code> shows them)."
        if d.hidden
        else ""
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="note">{len(d.steps)} arrows between {len(d.lanes)} lanes; each '
            "numbered arrow is the trace event of that <code>seq</code>, a syscall's "
            "number is on its return arrow.  Hover an arrow for its full text, click it "
            "to find it in the timeline (or open the page at <code>#seq-N</code>)."
            f"{hidden}</p>",
            f'<div id="diagram">{svg_of(d)}</div>',
            "<h2>Timeline</h2>",
            '<input id="filter" type="search" placeholder="filter rows (e.g. dma_buf)"> '
            '<span id="shown"></span> rows',
            '<table id="timeline"><thead><tr><th>seq</th><th>lane</th><th>event</th></tr>'
            "</thead><tbody>",
            *rows,
            "</tbody></table>",
            f"<script>{_JS}</script>",
            "</body></html>",
            "",
        ]
    )
