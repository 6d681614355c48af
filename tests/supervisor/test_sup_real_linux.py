"""The supervisor's C probes print on the mock what they printed on real Linux 7.2.

The goldens (``tests/real_linux/golden/c_*.txt``) are the probes' output in the QEMU
guest, as root, built with the guest's ``cc`` (``tests/real_linux/regen_c.sh``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mockkernel.kernel import Kernel

GOLDEN = Path(__file__).parent.parent / "real_linux" / "golden"


@pytest.mark.parametrize(
    "probe",
    [
        "fdops",
        "forkexec",
        "mmapfork",
        "pollprobe",
        "selectprobe",
        "udmabuf_selftest",
        "scmprobe",
        "cloneprobe",
        "epollprobe",
        "mapprot",
    ],
)
def test_probe_matches_real_linux(kernel: Kernel, build: Callable[[str], str], probe: str) -> None:
    r = kernel.run([build(probe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    want = (GOLDEN / f"c_{probe}.txt").read_text().splitlines()
    assert r.stdout.splitlines() == want
