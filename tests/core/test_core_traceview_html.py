"""``mockkernel trace --html``: one self-contained page, checked as text and in a browser.

The browser test runs headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it
when it can; ``MOCKKERNEL_CHROMIUM`` names another binary) on the page written by the
command, with every host unresolvable, and reads the DOM after the page's script ran:
the diagram was laid out, the timeline has a row per event, and a ``#seq-N`` link picks
that step.  Without Chromium it skips, in one line saying how to get it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mockkernel.traceview import load, render_html, split_shutdown, steps

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "udmabuf.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--trace", str(path),
         "examples/udmabuf_demo.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def page(trace: Path) -> Path:
    """The page, as the command writes it."""
    out = trace.with_suffix(".html")
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "trace", "--html", str(trace)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    out.write_text(proc.stdout, encoding="utf-8")
    return out


def test_the_page_needs_nothing_from_elsewhere(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # nothing to fetch: no src/href at all, no URL but the SVG namespace
    assert not re.search(r"\s(src|href)\s*=", text, re.I)
    assert re.findall(r"https?://[^\s\"'<>]+", text) == ["http://www.w3.org/2000/svg"]
    assert "@import" not in text and "url(http" not in text
    # and the browser is told so
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def test_the_page_has_every_step_and_row(trace: Path, page: Path) -> None:
    events = load(trace.read_text().splitlines())
    d = steps(events)
    text = page.read_text(encoding="utf-8")
    assert text.count('<g class="step ') == len(d.steps)
    kept, hidden = split_shutdown(events)
    assert hidden and f"{hidden} shutdown event(s)" in text
    rows = [int(n) for n in re.findall(r'<tr id="seq-(\d+)"', text)]
    assert sorted(rows) == [e["seq"] for e in kept]  # one row per event, none twice
    assert "page_pool.destroy" not in text
    assert "page_pool.destroy" in render_html(events, shutdown=True)
    # the lanes the udmabuf demo touches, and only those
    assert re.findall(r'<g class="lane" data-lane="([^"]+)"', text) == [
        "program",
        "core",
        "dmabuf",
        "exporter",
    ]
    # the decoded names a learner reads
    for want in (
        "ioctl(fd=4, cmd=UDMABUF_CREATE, arg={memfd=3, flags=UDMABUF_FLAGS_CLOEXEC, ",
        "arg={flags=DMA_BUF_SYNC_START|DMA_BUF_SYNC_READ}",
        "dma_buf.export dmabuf=",
        "flags=DMA_BUF_SYNC_END|DMA_BUF_SYNC_WRITE",
        "open(path=/dev/udmabuf, flags=O_RDWR|O_CLOEXEC)",
        "prot=PROT_READ|PROT_WRITE",
    ):
        assert want in text, want


def _chromium() -> str | None:
    named = os.environ.get("MOCKKERNEL_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(
    _chromium() is None,
    reason="no headless Chromium (apt-get install chromium, or set MOCKKERNEL_CHROMIUM); "
    ".ci/run installs it",
)
def test_the_page_renders_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    seq = next(
        m.group(1)
        for m in re.finditer(
            r'<g class="step event" data-seq="(\d+)"><title>([^<]*)', page.read_text()
        )
        if m.group(2).startswith("dma_buf.export")
    )
    proc = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=3000",
            "--dump-dom", f"{page.as_uri()}#seq-{seq}",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    dom = proc.stdout
    assert proc.returncode == 0 and "<body" in dom, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    assert 'data-ready="1"' in body.group(1), "the page's script did not run"
    drawn = re.search(r'data-drawn="(\d+)"', body.group(1))
    assert drawn is not None and int(drawn.group(1)) > 500, "the diagram was not laid out"
    rows = len(re.findall(r'<tr id="seq-\d+"', dom))
    assert re.search(rf'<span id="shown">{rows}</span>', dom)
    # the #seq-N link picked that step: the export arrow and its timeline row
    assert re.search(rf'<g class="step event picked" data-seq="{seq}">', dom)
    assert re.search(rf'<tr id="seq-{seq}" class="ev picked">', dom)
    for want in ("UDMABUF_CREATE", "dma_buf.export", "DMA_BUF_SYNC_END|DMA_BUF_SYNC_WRITE"):
        assert want in dom


# -- long labels are wrapped inside their lanes ------------------------------------------------
_LANE_CX = re.compile(r'<g class="lane" data-lane="[^"]+"><rect x="(\d+)" y="8" width="(\d+)"')
_STEP = re.compile(r'<g class="step [^"]*" data-seq="\d*">(.*?)</g>', re.S)
_TEXT = re.compile(r'<text x="(\d+)" y="(-?\d+)">([^<]*)</text>')


def _overflows(svg: str) -> list[str]:
    """Every label line (by the monospace width the renderer assumes) that leaves the
    columns of the lanes its arrow joins: ``[left lane's left edge, right lane's right
    edge]``, each column ``LANE_W`` wide around its lifeline."""
    import html

    from mockkernel.traceview.html import CHAR_W, LANE_W

    centres = [int(x) + int(w) // 2 for x, w in _LANE_CX.findall(svg)]
    assert len(centres) >= 2
    bad = []
    for body in _STEP.findall(svg):
        line = re.search(r'<line x1="(\d+)" y1="\d+" x2="(\d+)"', body)
        loop = re.search(r'<path d="M(\d+),', body)
        ends = [int(v) for v in line.groups()] if line else [int(loop.group(1))]  # type: ignore[union-attr]
        assert all(e in centres for e in ends)
        lo, hi = min(ends) - LANE_W / 2, max(ends) + LANE_W / 2
        for x, _y, text in _TEXT.findall(body):
            right = int(x) + len(html.unescape(text)) * CHAR_W
            if int(x) < lo or right > hi:
                bad.append(text)
    return bad


@pytest.fixture(scope="module")
def rdma_trace(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    path = tmp_path_factory.mktemp("html") / "rdma.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--trace", str(path),
         "examples/rdma_dmabuf_mr.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return load(path.read_text().splitlines())


def test_long_labels_wrap_inside_their_lanes(rdma_trace: list[dict[str, object]]) -> None:
    from mockkernel.traceview.html import MAX_LINES, svg_of

    d = steps(rdma_trace)
    longest = max(d.steps, key=lambda s: len(s.text))
    assert len(longest.text) > 600  # the uverbs REG_DMABUF_MR call and its attributes
    svg = svg_of(d)
    assert _overflows(svg) == []
    wrapped = [body for body in _STEP.findall(svg) if len(_TEXT.findall(body)) > 1]
    assert wrapped, "no label was long enough to wrap"
    # a label's lines are its text (up to MAX_LINES; a longer one ends in "…")
    for s, body in zip(d.steps, _STEP.findall(svg), strict=True):
        import html

        lines = [html.unescape(t) for _x, _y, t in _TEXT.findall(body)]
        assert 1 <= len(lines) <= MAX_LINES
        joined = " ".join(lines)
        if joined.endswith("…"):
            assert len(lines) == MAX_LINES
            assert s.text.replace(" ", "").startswith(joined[:-1].replace(" ", ""))
        else:
            assert joined.replace(" ", "") == s.text.replace(" ", "")


def test_the_old_layout_would_overflow(rdma_trace: list[dict[str, object]]) -> None:
    """The check can fail: one unwrapped long label leaves its lanes."""
    from mockkernel.traceview.html import svg_of

    svg = svg_of(steps(rdma_trace))
    body = _STEP.findall(svg)[0]
    x, y, _ = _TEXT.findall(body)[0]
    long_line = f'<text x="{x}" y="{y}">{"x" * 200}</text>'
    assert _overflows(svg.replace(body, body + long_line, 1))


_MEASURE = """<script>
(function(){
  var cx=[].map.call(document.querySelectorAll('svg .lane text'),function(t){
    return +t.getAttribute('x');});
  var w=cx[1]-cx[0],bad=0,n=0;
  document.querySelectorAll('svg .step').forEach(function(g){
    var l=g.querySelector('line'),xs;
    if(l){xs=[+l.getAttribute('x1'),+l.getAttribute('x2')];}
    else{xs=[+/M([0-9.]+)/.exec(g.querySelector('path').getAttribute('d'))[1]];}
    var lo=Math.min.apply(null,xs)-w/2,hi=Math.max.apply(null,xs)+w/2;
    g.querySelectorAll('text:not(.n)').forEach(function(t){
      var b=t.getBBox();n++;if(b.x<lo-0.5||b.x+b.width>hi+0.5)bad++;});
  });
  document.body.setAttribute('data-labels',n);
  document.body.setAttribute('data-overflow',bad);
})();
</script></body>"""


@pytest.mark.skipif(
    _chromium() is None,
    reason="no headless Chromium (apt-get install chromium, or set MOCKKERNEL_CHROMIUM); "
    ".ci/run installs it",
)
def test_chromium_draws_no_label_outside_its_lanes(
    rdma_trace: list[dict[str, object]], tmp_path: Path
) -> None:
    """The browser's own text measure (``getBBox``) of every label line of the rdma
    example's page: inside the columns of the lanes its arrow joins."""
    browser = _chromium()
    assert browser is not None
    page = tmp_path / "rdma.html"
    page.write_text(render_html(rdma_trace).replace("</body>", _MEASURE, 1), encoding="utf-8")
    proc = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=3000",
            "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert proc.returncode == 0 and body is not None, proc.stderr[-2000:]
    labels = re.search(r'data-labels="(\d+)"', body.group(1))
    assert labels is not None and int(labels.group(1)) > 50, "the measuring script did not run"
    assert 'data-overflow="0"' in body.group(1)
