"""``benchmarks/bench_netdev.py`` runs (a tiny run: it is a report, the numbers are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_netdev.py"


def test_bench_netdev_main(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_netdev", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--repeat", "1", "--requests", "20"]) == 0
    out = capsys.readouterr().out
    assert "netdev QUEUE_GET (do)" in out
    assert "devmem receive 64 KiB (16 niovs, 256 TLPs), tracing off" in out
