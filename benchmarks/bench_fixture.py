"""Per-test cost of the ``mock_kernel`` fixture inside pytest, beside pyfakefs's ``fs``.

    python benchmarks/bench_fixture.py [--tests N] [--json]

A generated test module holds ``N`` empty tests of each kind -- no fixture,
``mock_kernel``, and pyfakefs's ``fs`` (when installed: the ``bench`` extra) --
and ``N`` tests of each fixture that *use* it once (open and close ``/dev/udmabuf``;
create and read a file), interleaved, so a noisy neighbour hurts all kinds alike.  The
empty rows are the issue's measure; the used rows say what a real test pays, since the
fixture boots a kernel nobody touches lazily (``boot(lazy=True)``): never.  A small
plugin times each test's whole protocol (setup + call + teardown, the collector left
on: what a suite pays) and the cost of a fixture is the median of its tests minus the median of the
empty ones.  It runs pytest in a subprocess so that the fixture's first use (imports,
plugin discovery, the first boot) is out of the steady state: the first round of
each kind is dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_TIMER_PLUGIN = """
import json, os, time
import pytest

_times = {}

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0 = time.perf_counter_ns()
    yield
    kind = item.name.split("_")[1]
    _times.setdefault(kind, []).append(time.perf_counter_ns() - t0)

def pytest_sessionfinish(session):
    with open(os.environ["BENCH_FIXTURE_OUT"], "w") as f:
        json.dump(_times, f)
"""


def _module(n: int, kinds: list[str]) -> str:
    lines = []
    for i in range(n):
        for kind in kinds:
            arg = {
                "empty": "",
                "mk": "mock_kernel",
                "fs": "fs",
                "mkuse": "mock_kernel",
                "fsuse": "fs",
            }[kind]
            body = {
                "mkuse": "    os.close(os.open('/dev/udmabuf', os.O_RDWR))\n",
                "fsuse": "    fs.create_file('/x', contents='y')\n    open('/x').read()\n",
            }.get(kind, "    pass\n")
            lines.append(f"def test_{kind}_{i}({arg}):\n{body}")
    return "import os\n\n" + "\n".join(lines)


def have_pyfakefs() -> bool:
    try:
        import pyfakefs  # noqa: F401
    except ImportError:
        return False
    return True


def measure(n: int = 300) -> dict[str, Any]:
    """Median per-test cost (ms) of each fixture, minus an empty test's, in one run."""
    kinds = ["empty", "mk", "mkuse"] + (["fs", "fsuse"] if have_pyfakefs() else [])
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "bench_timer.py").write_text(_TIMER_PLUGIN)
        (root / "test_bench_fixture.py").write_text(_module(n, kinds))
        out = root / "times.json"
        env = dict(os.environ, BENCH_FIXTURE_OUT=str(out))
        env["PYTHONPATH"] = os.pathsep.join([d, env.get("PYTHONPATH", "")])
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "bench_timer",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                "-o",
                "addopts=",
                "--rootdir",
                d,
                str(root / "test_bench_fixture.py"),
            ],
            cwd=d,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times = json.loads(out.read_text())
    med = {k: statistics.median(v[1:]) / 1e6 for k, v in times.items()}
    res: dict[str, Any] = {"tests": n, "empty_ms": med["empty"]}
    res["mock_kernel_ms"] = med["mk"] - med["empty"]
    res["mock_kernel_used_ms"] = med["mkuse"] - med["empty"]
    if "fs" in med:
        res["pyfakefs_fs_ms"] = med["fs"] - med["empty"]
        res["ratio_vs_fs"] = res["mock_kernel_ms"] / res["pyfakefs_fs_ms"]
        res["pyfakefs_fs_used_ms"] = med["fsuse"] - med["empty"]
        res["used_ratio_vs_fs"] = res["mock_kernel_used_ms"] / res["pyfakefs_fs_used_ms"]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = measure(args.tests)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:>16}: {v:.3f}" if isinstance(v, float) else f"{k:>16}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
