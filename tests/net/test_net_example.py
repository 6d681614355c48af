"""``examples/netdev_bind_rx.py`` runs unchanged under ``mockkernel run --check-leaks``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "netdev_bind_rx.py"


def test_example_runs_unchanged(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", str(EXAMPLE), "eth0", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [
        "netdev family id 19",
        "ifindex 2: 8 RX queues",
        "bound dma-buf fd 6 to RX queue 3: binding id 1",
        "QUEUE_GET: queue 3 dmabuf 1",
        "binding the same queue again: File exists",
        "socket closed: binding undone",
    ]
