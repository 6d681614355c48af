"""``benchmarks/bench_rdma.py`` runs (a tiny run: it is a report, the numbers are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rdma.py"


def test_bench_rdma_main(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_rdma", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--repeat", "1", "--writes", "20"]) == 0
    out = capsys.readouterr().out
    assert "RDMA WRITE     64 B (  1 TLPs), tracing off" in out
    assert "REG_DMABUF_MR + MR_DESTROY, dynamic (vfio-pci)" in out
