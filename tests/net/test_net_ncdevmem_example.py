"""``examples/ncdevmem_rx.py`` under ``mockkernel run --check-leaks``: the topology's
scripted peer connects to the NIC address and its bytes arrive through the dma-buf."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ncdevmem_rx.py"
PAYLOAD = "devmem " * 1000  # 7000 bytes: two fragments


def topology(tmp_path: Path, extra: str = "") -> Path:
    text = (files("mockkernel") / "default_topology.toml").read_text()
    nic = text.index('driver = "mock_nic"')
    end = text.index("\n[[devices.bars]]", nic)
    options = f'\n[devices.options]\npeer_port = 5201\npeer_data = "{PAYLOAD}"\n{extra}'
    path = tmp_path / "topology.toml"
    path.write_text(text[:end] + options + text[end:])
    return path


def run(tmp_path: Path, extra: str = "") -> list[str]:
    argv = ["run", "--check-leaks", "--topology", str(topology(tmp_path, extra)), str(EXAMPLE)]
    proc = subprocess.run(
        [sys.executable, "-m", "mockkernel", *argv, "eth0", "0", "192.0.2.1", "5201"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    return proc.stdout.splitlines()


def test_ncdevmem_example(tmp_path: Path) -> None:
    lines = run(tmp_path)
    assert lines[0] == "bound RX queue 0: dmabuf id 1"
    assert lines[1:3] == [
        "frag: dmabuf 1 offset 0x0 size 4096 token 1",
        "frag: dmabuf 1 offset 0x1000 size 2904 token 2",
    ]
    assert lines[3] == f"received 7000 bytes: {PAYLOAD[:64]!r}"
    assert len(lines) == 4


def test_ncdevmem_example_linear_payload(tmp_path: Path) -> None:
    """``linear_payload = 100``: the first 100 bytes come as ``SCM_DEVMEM_LINEAR``."""
    lines = run(tmp_path, "linear_payload = 100\n")
    assert lines[1:3] == [
        "frag: dmabuf 1 offset 0x0 size 4096 token 1",
        "frag: dmabuf 1 offset 0x1000 size 2804 token 2",
    ]
    assert lines[3] == f"received 7000 bytes: {PAYLOAD[:64]!r}"
