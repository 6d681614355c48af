"""The RDMA probes of ``tests/real_linux/probes`` under mockkernel, compared with real Linux.

``uverbs_ioctl``, ``uverbs_write``, ``uverbs_objects`` and ``rdma_nldev`` (NETLINK_RDMA)
were recorded on a real Linux
7.2 guest with soft-RoCE (``rxe0`` over the guest's Ethernet, 2 CPUs).  Here each runs
as a program does -- ``python -m mockkernel run --topology rxe_guest.toml PROBE`` in a
child process, from an empty directory -- on the same machine as far as uverbs can see
(``rxe_guest.toml``), and its JSON lines must equal the golden file's, step by step.

No step is excused.  The only thing the runner may report is the async event fd that
``uverbs_write``'s ``write_get_context_extra_in_words`` step leaves open -- the probe
does not close it on real Linux either (it only closes the uverbs fd).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "real_linux"
TOPOLOGY = HERE / "rxe_guest.toml"
PROBES = ("uverbs_ioctl", "uverbs_write", "uverbs_objects", "rdma_nldev")

#: what the runner may print on stderr per probe (fds the probe itself leaves open)
EXPECTED_STDERR = {
    "uverbs_ioctl": r"",
    "uverbs_write": (
        r"mockkernel: the program left 1 fd\(s\) open; closed at exit:\n"
        r"  fd \d+: anon_inode:\[infinibandevent\]\n"
    ),
    "uverbs_objects": r"",
    "rdma_nldev": r"",
}
#: steps per golden file (tests/real_linux/README.md)
STEPS = {"uverbs_ioctl": 113, "uverbs_write": 124, "uverbs_objects": 85, "rdma_nldev": 53}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


goldens = _load("real_linux_test_goldens", REAL / "test_goldens.py")


@pytest.mark.parametrize("probe", PROBES)
def test_uverbs_probe_matches_real_linux(probe: str, tmp_path: Path) -> None:
    proc = goldens.run_probe(probe, tmp_path, TOPOLOGY)
    assert proc.returncode == 0, f"{probe} exited {proc.returncode}:\n{proc.stderr}"
    assert re.fullmatch(EXPECTED_STDERR[probe], proc.stderr), f"{probe}:\n{proc.stderr}"
    golden = (REAL / "golden" / f"{probe}.jsonl").read_text().splitlines()
    actual = proc.stdout.splitlines()
    messages = goldens.compare.diff_jsonl(golden, actual)
    exp_steps, act_steps = goldens._parse(golden), goldens._parse(actual)
    report: list[str] = []
    for msg in messages:
        report.append(msg)
        step = msg.split(":", 1)[0]
        exp, act = exp_steps.get(step), act_steps.get(step)
        if exp is not None and act is not None and "ok" in exp and "ok" in act:
            goldens._explain("ok", exp["ok"], act["ok"], report)
    assert not report, f"{probe}: differs from real Linux 7.2:\n" + "\n".join(report)
    assert len(exp_steps) == STEPS[probe]
