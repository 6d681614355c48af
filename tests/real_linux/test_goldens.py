"""The probes of ``probes/`` under mockkernel, compared with what real Linux 7.2 printed.

Each probe runs as a program would: in a child process, ``python -m mockkernel run
PROBE`` from an empty directory.  Its JSON lines are compared with ``golden/PROBE.jsonl``
step by step (``compare.diff_jsonl``); a failure lists every differing step, and for a
step whose result is a dict or a list only the parts that differ.

``KNOWN_DIFFERENCES`` lists, per probe, the steps the mock cannot reproduce, each with the
reason; they are compared with the golden anyway and must still differ (a listed step that
starts to match is reported, so the list cannot go stale).  ``netlink``: the ops lists of
nlctrl and netdev name commands the mock does not implement; ``rtnetlink``:
``IFLA_AF_SPEC``; ``generic_file``: ``mprotect`` through ctypes.  The
``vfio_*`` probes are checked elsewhere.
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
PROBES = (
    "fd_table",
    "udmabuf",
    "dma_buf_fops",
    "lifetime",
    "proc_debugfs",
    "poll",
    "sync_file",
    "netlink",
    "rtnetlink",
    "dirs",
    "generic_file",
)

#: probe -> {step: why the mock cannot give real Linux's result}.
KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {probe: {} for probe in PROBES}
KNOWN_DIFFERENCES["generic_file"] = {
    "udmabuf_mprotect": "mprotect through ctypes reaches the real mapping, a memfd on the"
    " internal shmem mount, which is not noexec as the dma-buf pseudo fs is (Python has no"
    " mprotect to redirect; a supervised process's mprotect would be the kernel's)",
}
KNOWN_DIFFERENCES["netlink"] = {
    "getfamily_nlctrl_ops": "nlctrl has no CTRL_CMD_GETPOLICY (policy dumps are not modelled)",
    "getfamily_netdev_ops": "the netdev family has no QUEUE_CREATE (leased queues are not"
    " modelled)",
}
KNOWN_DIFFERENCES["rtnetlink"] = {
    "link_af_spec": "IFLA_AF_SPEC (the inet/inet6 device configuration) is not modelled:"
    " no IPv6, no devconf",
}


def _load_compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_linux_compare", HERE / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare = _load_compare()


def _parse(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        if line.strip():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "step" in obj:
                out.setdefault(str(obj["step"]), obj)
    return out


def _explain(path: str, expected: Any, actual: Any, out: list[str]) -> None:
    """The differing leaves of two JSON values, as ``path: expected -> actual`` lines."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual:
                out.append(f"    {path}.{key}: missing (expected {json.dumps(expected[key])})")
            elif key not in expected:
                out.append(f"    {path}.{key}: unexpected {json.dumps(actual[key])}")
            elif expected[key] != actual[key]:
                _explain(f"{path}.{key}", expected[key], actual[key], out)
        return
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            if e != a:
                _explain(f"{path}[{i}]", e, a, out)
        return
    out.append(f"    {path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


def run_probe(
    probe: str, tmp_path: Path, topology: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``probes/<probe>.py`` under ``mockkernel run`` (on ``topology`` if given)."""
    topo = ["--topology", str(topology)] if topology is not None else []
    return subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", *topo, str(HERE / "probes" / f"{probe}.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("probe", PROBES)
def test_probe_matches_real_linux(probe: str, tmp_path: Path) -> None:
    proc = run_probe(probe, tmp_path)
    assert proc.returncode == 0, f"{probe} exited {proc.returncode}:\n{proc.stderr}"
    # the runner reports fds left open and kernel objects leaked on stderr
    assert proc.stderr == "", f"{probe} under mockkernel reported:\n{proc.stderr}"
    golden = (HERE / "golden" / f"{probe}.jsonl").read_text().splitlines()
    actual = proc.stdout.splitlines()
    known = KNOWN_DIFFERENCES[probe]

    messages = compare.diff_jsonl(golden, actual)
    exp_steps, act_steps = _parse(golden), _parse(actual)
    unexplained: list[str] = []
    differing = 0
    for msg in messages:
        step = msg.split(":", 1)[0]
        if step in known:
            continue
        differing += 1
        unexplained.append(msg)
        exp, act = exp_steps.get(step), act_steps.get(step)
        if exp is not None and act is not None and "ok" in exp and "ok" in act:
            _explain("ok", exp["ok"], act["ok"], unexplained)  # just the differing parts
    stale = [
        step
        for step in known
        if step in exp_steps and step in act_steps and exp_steps[step] == act_steps[step]
    ]
    report = []
    if unexplained:
        report.append(f"{probe}: {differing} step(s) differ from real Linux 7.2:")
        report += unexplained
    if stale:
        report.append(f"{probe}: steps listed in KNOWN_DIFFERENCES now match: {stale}")
    assert not report, "\n".join(report)


def test_every_golden_step_is_compared() -> None:
    """The goldens have the step counts the README gives; no probe is silently empty."""
    counts = {
        p: len(_parse((HERE / "golden" / f"{p}.jsonl").read_text().splitlines())) for p in PROBES
    }
    assert counts == {
        "fd_table": 51,
        "udmabuf": 81,
        "dma_buf_fops": 120,
        "lifetime": 19,
        "proc_debugfs": 25,
        "poll": 17,
        "sync_file": 61,
        "netlink": 115,
        "rtnetlink": 39,
        "dirs": 21,
        "generic_file": 18,
    }
