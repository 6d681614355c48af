"""``benchmarks/bench_netdev.py`` reports the devmem socket path next to the NIC side."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_netdev.py"


def test_bench_netdev_socket_rows(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_netdev_socket", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--repeat", "1", "--requests", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for state in ("off", "on "):
        nic = f"devmem receive 64 KiB (16 niovs, 256 TLPs), tracing {state}"
        sock = f"same via socket (send, recvmsg, DONTNEED), tracing {state}"
        (i,) = [n for n, line in enumerate(lines) if nic in line]
        assert sock in lines[i + 1] and "MB/s" in lines[i + 1]
