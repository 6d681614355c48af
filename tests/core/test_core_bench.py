"""``benchmarks/run.py`` runs (``--quick``: it is a report, the numbers are not checked) and
reports every target, the pass-through floors beside the real-fd rows and the scaling
series, and restores the functions its floor measurement patches."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def test_bench_run_quick(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # (its dataclasses look it up)
    spec.loader.exec_module(module)
    before = (os.read, os.write, os.open, os.close, os.fstat, fcntl.ioctl)
    out_json = tmp_path / "bench.json"
    assert module.main(["--quick", "--json", str(out_json)]) == 0
    assert (os.read, os.write, os.open, os.close, os.fstat, fcntl.ioctl) == before
    out = capsys.readouterr().out
    assert "summary:" in out
    rows = {r["key"]: r for r in json.loads(out_json.read_text())["rows"]}
    for base in ("ioctl_fionread", "write_read", "fstat", "open_close"):
        inst, floor = rows[f"{base}.installed"], rows[f"{base}.floor"]
        assert inst["status"] in ("PASS", "FAIL") and floor["status"] == ""
        assert inst["us"] > 0 and floor["us"] > 0
    assert rows["boot.cycle"]["status"] in ("PASS", "FAIL")
    for key in (  # issue 10's table, each judged in the same run
        "issue.ioctl_sync",
        "issue.open_udmabuf",
        "issue.mmap_dmabuf",
        "issue.sysfs_config",
        "issue.traced",
        "issue.rdma_write",
        "issue.devmem_rx",
        "issue.bytes_per_event",
        "issue.fixture",
        "issue.first_test.no_bytecode",
        "issue.first_test.cached",
    ):
        assert rows[key]["status"] in ("PASS", "FAIL") and rows[key]["us"] > 0, key
    for label in ("no_bytecode", "cached", "no_cache"):  # min and a cold cache: information
        for key in (
            f"issue.first_test.{label}",
            *(f"issue.first_test.{label}.{s}" for s in ("min", "cold")),
        ):
            assert rows[key]["us"] > 0, key
    mb_s = rows["issue.devmem_rx.mb_s"]  # (information: the devmem row as a rate)
    assert mb_s["status"] == "" and mb_s["us"] == pytest.approx(
        65536 / rows["issue.devmem_rx"]["us"]
    )
    assert "64 B RDMA WRITE into a BAR dma-buf MR, tracing off" in out
    series = {s["key"]: s for s in json.loads(out_json.read_text())["scaling"]}
    assert set(series) == {"scaling.attach_detach", "scaling.udmabuf_create_close"}
    for s in series.values():  # a series: one time per size, judged largest vs smallest
        assert len(s["us"]) == len(s["sizes"]) >= 2 and min(s["us"]) > 0
        assert s["status"] in ("PASS", "FAIL")
    assert "scaling series" in out
