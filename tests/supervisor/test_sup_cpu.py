"""``Kernel.run(cpu=N)``, ``mockkernel run --cpu N`` and ``$MOCKKERNEL_SUPERVISOR_CPU``:
the supervisor's threads and the whole tree run on one CPU (round trips are switches on
it, not wake-ups of another CPU); the caller's affinity is restored after the run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mockkernel.kernel import Kernel

SHOW = "import os; print(sorted(os.sched_getaffinity(0)))"


def test_the_tree_runs_on_the_cpu_and_the_caller_keeps_its_own(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOCKKERNEL_SUPERVISOR_CPU", raising=False)  # (a pinned test run's)
    before = os.sched_getaffinity(0)
    cpu = max(before)
    r = kernel.run([sys.executable, "-c", SHOW], capture_output=True, text=True, cpu=cpu)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"[{cpu}]\n"
    assert os.sched_getaffinity(0) == before
    r = kernel.run([sys.executable, "-c", SHOW], capture_output=True, text=True)
    assert r.stdout == f"{sorted(before)}\n"  # not pinned unless asked: the default


def test_the_environment_variable_pins_too(kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = min(os.sched_getaffinity(0))
    monkeypatch.setenv("MOCKKERNEL_SUPERVISOR_CPU", str(cpu))
    r = kernel.run([sys.executable, "-c", SHOW], capture_output=True, text=True)
    assert r.stdout == f"[{cpu}]\n"


def test_a_cpu_the_caller_may_not_use_is_refused(kernel: Kernel) -> None:
    before = os.sched_getaffinity(0)
    with pytest.raises(ValueError, match="not one this process may run on"):
        kernel.run([sys.executable, "-c", "pass"], cpu=max(before) + 1000)
    assert os.sched_getaffinity(0) == before
    assert kernel.leaks() == []


def test_the_command_line_option() -> None:
    cpu = max(os.sched_getaffinity(0))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "mockkernel", "run"]
    r = subprocess.run([*cmd, "--cpu", str(cpu), "--", sys.executable, "-c", SHOW],
                       capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert r.returncode == 0 and r.stdout == f"[{cpu}]\n", r.stderr
    r = subprocess.run([*cmd, "--cpu", "100000", "--", "true"],
                       capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert r.returncode == 2 and "argument --cpu: 100000 is not a CPU" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
