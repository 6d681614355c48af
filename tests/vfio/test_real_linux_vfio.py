"""The VFIO probes of ``tests/real_linux/probes`` under mockkernel, against Linux 7.2's goldens.

Each probe runs as a program would (``python -m mockkernel run --topology
real_linux_guest.toml PROBE`` in a child process), on a topology describing the
real-Linux guest's two vfio-pci devices (QEMU edu and ivshmem) with the ``linux-7.2``
profile, and its JSON lines are compared with ``golden/PROBE.jsonl``.

``KNOWN_DIFFERENCES`` lists the steps the mock cannot reproduce, with the reason.  None is
in the vfio-pci driver: they are gaps of the core device model and sysfs (see the
reasons), which the listed steps would show the moment they are closed -- a listed step
that starts to match fails this test, so the list cannot go stale.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "real_linux"
TOPOLOGY = HERE / "real_linux_guest.toml"
PROBES = ("vfio_container", "vfio_device", "vfio_dmabuf")

_CONVENTIONAL = (
    "both devices are conventional PCI on the guest (no PCI Express capability: a 256-byte "
    "config space, no AER ERR irq); the topology can only describe PCI Express functions"
)
_SYSFS = (
    "the core's sysfs has no per-device `config` (binary) and `resource` files, which the "
    "probe reads to compare with"
)
_SIGBUS = (
    "touching a BAR mmap while PCI_COMMAND.MEMORY is clear raises SIGBUS on Linux (vfio zaps "
    "the mapping and its fault handler refuses); the mock's mapping is a plain shared mapping "
    "of the BAR's memfd, which no driver can make fault"
)
_IO_BIT = (
    "QEMU's devices keep PCI_COMMAND.IO writable (it reads 1 after pci_enable_device); the "
    "device model hardwires it to 0 because it has no I/O BARs"
)

KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {
    "vfio_container": {},
    "vfio_dmabuf": {},
    "vfio_device": {
        **{f"{d}_region_info_7_config": _CONVENTIONAL for d in ("edu", "ivshmem")},
        **{f"{d}_irq_info_3_err": _CONVENTIONAL for d in ("edu", "ivshmem")},
        **{f"{d}_cfg_read_4096": _CONVENTIONAL for d in ("edu", "ivshmem")},
        **{f"{d}_cfg_command_initial": _IO_BIT for d in ("edu", "ivshmem")},
        **{f"{d}_mmap_touch_memory_disabled": _SIGBUS for d in ("edu", "ivshmem")},
        "edu_irq_info_1_msi": "edu has an MSI capability; the device model has none",
        "ivshmem_irq_info_0_intx": "ivshmem has no interrupt pin; the device model always "
        "reports INTA",
        "ivshmem_irq_info_argsz_64": "as ivshmem_irq_info_0_intx (INTx count)",
        "ivshmem_region_info_0_bar0": "ivshmem's BAR0 is 256 bytes; the topology's minimum "
        "BAR size is 4 KiB",
        "ivshmem_region_info_argsz_512": "as ivshmem_region_info_0_bar0",
        "ivshmem_cfg_bar0_sizing": "as ivshmem_region_info_0_bar0 (sizing reads 0xffffff00)",
        **{
            f"{d}_{step}": _SYSFS
            for d in ("edu", "ivshmem")
            for step in (
                "region_bar_facts",
                "cfg_header_matches_sysfs",
                "cfg_command_memory_toggle",
                "cfg_bar_registers_equal_hw",
                "ram_bar",
                "bar_write_read_back",
                "mmap_write_then_pread",
                "mmap_two_maps_coherent",
            )
        },
    },
}


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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mockkernel",
            "run",
            "--topology",
            str(TOPOLOGY),
            str(REAL / "probes" / f"{probe}.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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
