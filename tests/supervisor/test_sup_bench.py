"""``benchmarks/bench_supervisor.py`` runs every row of issue 15's proof in one run
(``--quick``: a report, the numbers are not checked -- speed lives in benchmarks/)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_supervisor.py"


def test_bench_supervisor_quick(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): the benchmark builds benchmarks/c/sup_bench.c")
    spec = importlib.util.spec_from_file_location("bench_supervisor", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        out_json = tmp_path / "bench.json"
        module.main(["--quick", "--repeat", "1", "--json", str(out_json)])
    finally:
        del sys.modules[spec.name]
    out = capsys.readouterr().out
    rows = json.loads(out_json.read_text())["rows"]
    labels = [row[0] for row in rows]
    for what in (  # the proof's benchmarks, each in this one run
        "mock ioctl, C, supervised",
        "mock ioctl, Python, in-process",
        "real ioctl(FIONREAD), C, plain",
        "real ioctl(FIONREAD), C, supervised (trapped, CONTINUE)",
        "python3 -c pass, plain / supervised",
        "mmap+munmap, 4-piece dma-buf supervised / 4-page memfd plain",
        "mock ioctls/s, 1 thread / 4 threads",
    ):
        assert what in labels
        assert what in out
    targets = [t for row in rows[1:] for t in (row[2], row[4]) if not t.endswith("(info)")]
    assert targets and all(t.endswith(("ok", "MISSED")) for t in targets)
