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
