"""The VFIO probes of ``tests/real_linux/probes`` under mockkernel, against Linux 7.2's goldens.

Each probe runs as a program would (``python -m mockkernel run --topology
real_linux_guest.toml PROBE`` in a child process), on a topology describing the
real-Linux guest's two vfio-pci devices (QEMU edu and ivshmem) with the ``linux-7.2``
profile, and its JSON lines are compared with ``golden/PROBE.jsonl``.

``KNOWN_DIFFERENCES`` lists the steps the mock cannot reproduce, with the reason; it is
empty: every step of the probes matches Linux 7.2 (the device probe's conventional
PCI functions, MSI, interrupt pin, I/O bit, 256-byte BAR, sysfs ``config``/``resource``
and the ``SIGBUS`` of a BAR mapping touched while memory decoding is off included, and
the config probe's virtualised MSI capability, raw unassigned bytes and
``INTERRUPT_LINE``, and the irqs probe's ``VFIO_DEVICE_SET_IRQS`` errnos, eventfd
loopback triggers and MSI enable bit).  A
listed step that starts to match fails this test, so the list cannot go stale.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "real_linux"
TOPOLOGY = HERE / "real_linux_guest.toml"
PROBES = (
    "vfio_container",
    "vfio_device",
    "vfio_dmabuf",
    "pci_caps",
    "vfio_config",
    "vfio_irqs",
)

KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {
    "vfio_container": {},
    "vfio_dmabuf": {},
    "vfio_device": {},
    "pci_caps": {},
    "vfio_config": {},
    "vfio_irqs": {},
}


def _load_goldens() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "real_linux_goldens_vfio", REAL / "test_goldens.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_linux_compare_vfio", REAL / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "step" in obj:
            out.setdefault(str(obj["step"]), obj)
    return out


@pytest.mark.parametrize("probe", PROBES)
def test_vfio_probe_matches_real_linux(probe: str, tmp_path: Path) -> None:
    proc = _load_goldens().run_probe(probe, tmp_path, TOPOLOGY)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"leaks or open fds reported:\n{proc.stderr}"
    golden = (REAL / "golden" / f"{probe}.jsonl").read_text().splitlines()
    actual = proc.stdout.splitlines()
    known = KNOWN_DIFFERENCES[probe]
    compare = _load_compare()
    unexplained = [m for m in compare.diff_jsonl(golden, actual) if m.split(":", 1)[0] not in known]
    exp, act = _steps(golden), _steps(actual)
    stale = [s for s in known if s in exp and s in act and exp[s] == act[s]]
    assert not unexplained, f"{probe}: differs from Linux 7.2:\n" + "\n".join(unexplained)
    assert not stale, f"{probe}: listed as known differences but now match: {stale}"
    assert set(known) <= set(exp), f"{probe}: known differences name unknown steps"
