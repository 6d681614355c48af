"""Probes run unchanged under ``mockkernel run`` must print what real Linux 7.2 printed.

* tests/core/real_linux/syscall_layer.py -- this suite's probe (paths, device fds, ioctl
  arguments); every step must match its golden except the deviations listed below, which must
  still deviate exactly as listed (so a fix, or a new difference, shows up here);
* tests/real_linux/probes/fd_table.py -- the fd table with real fds: must match entirely;
* the steps of the other shared probes that belong to the syscall layer (generic ioctls,
  fcntl, close, fdinfo, mmap lifetime): must match.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "real_linux"
SHARED = ROOT / "tests" / "real_linux"

#: step -> (what the mock prints instead, why).  Owned elsewhere or not modelled.
KNOWN_DEVIATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "dev_stat": (
        {
            "ok": {
                "type": "0o20000",
                "perm": "0o660",
                "major": 10,
                "size": 0,
                "nlink": 1,
                "lstat_same_mode": True,
                "exists": True,
                "isfile": False,
                "isdir": False,
                "islink": False,
            }
        },
        "the udmabuf plugin registers /dev/udmabuf 0660; devtmpfs makes it 0600 without udev",
    ),
    "bufinfo_open_wronly": (
        {"errno": "EACCES"},
        "debugfs lets root open a read-only file for writing (the write then fails); "
        "mock pseudo-files refuse the open like sysfs does",
    ),
}


def run_probe(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "leak" not in done.stderr and "left" not in done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def golden(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@cache
def mock_output(probe: str) -> dict[str, dict[str, Any]]:
    return {o["step"]: o for o in run_probe(Path(probe))}


def steps(path: Path) -> list[str]:
    return [o["step"] for o in golden(path)]


LAYER_GOLDEN = HERE / "syscall_layer.golden.jsonl"
LAYER_PROBE = str(HERE / "syscall_layer.py")


@pytest.mark.parametrize("step", steps(LAYER_GOLDEN))
def test_syscall_layer_probe(step: str) -> None:
    expected = {o["step"]: o for o in golden(LAYER_GOLDEN)}[step]
    got = mock_output(LAYER_PROBE).get(step)
    assert got is not None, f"step {step} missing from the mock run"
    if step in KNOWN_DEVIATIONS:
        deviation, why = KNOWN_DEVIATIONS[step]
        assert got != expected, f"{step} now matches real Linux: drop it from KNOWN_DEVIATIONS"
        assert got == {"step": step, **deviation}, f"{step} deviates differently ({why})"
    else:
        assert got == expected


def test_syscall_layer_probe_has_no_extra_steps() -> None:
    assert list(mock_output(LAYER_PROBE)) == steps(LAYER_GOLDEN)


def test_fd_table_probe_matches_real_linux() -> None:
    got = run_probe(SHARED / "probes" / "fd_table.py")
    assert got == golden(SHARED / "golden" / "fd_table.jsonl")


#: The syscall-layer steps of the other shared probes (the rest belongs to the dma-buf core
#: and udmabuf suites).
SHARED_STEPS = {
    "dma_buf_fops": [
        "fstat",
        "read",
        "read_0_bytes",
        "write",
        "write_0_bytes",
        "pread",
        "pwrite",
        "sync_bytes_arg",
        "sync_bad_pointer",
        "set_name_b_bad_pointer",
        "set_name_b_null",
        "set_name_bytearray",
        "set_name_no_explicit_nul",
        "ioctl_unknown_nr_4",
        "ioctl_unknown_type",
        "ioctl_on_closed_dmabuf",
        "ioctl_udmabuf_create_on_dmabuf",
        "generic_fionbio",
        "generic_fioclex",
        "generic_fioasync",
        "generic_fionread",
        "generic_fioqsize",
        "generic_figetbsz",
        "generic_tcgets",
        "generic_fs_ioc_getflags",
        "isatty",
        "fcntl_flags",
        "fcntl_get_seals",
        "fcntl_dupfd",
        "fdinfo_initial",
        "fdinfo_cloexec_buffer",
        "proc_fd_links",
    ],
    "lifetime": [
        "dup_close_original",
        "dup_close_dup",
        "python_mmap_holds_extra_fd",
        "mmap_survives_fd_close",
        "dup2_over_last_dmabuf_fd",
        "dup2_dmabuf_over_pipe",
        "close_dmabuf_twice",
        "dmabuf_number_reused",
        "recreate_after_close",
    ],
}


@pytest.mark.parametrize(
    ("probe", "step"), [(p, s) for p, names in SHARED_STEPS.items() for s in names]
)
def test_shared_probe_steps(probe: str, step: str) -> None:
    expected = {o["step"]: o for o in golden(SHARED / "golden" / f"{probe}.jsonl")}
    assert step in expected, f"{step} is not in golden/{probe}.jsonl any more"
    got = mock_output(str(SHARED / "probes" / f"{probe}.py")).get(step)
    assert got == expected[step]
