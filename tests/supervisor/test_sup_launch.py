"""Starting a supervised child: both launch routes (posix_spawn + injected filter, and
fork) give the program the same start -- stdio, cwd, environment, no fd of the
supervisor's, the exec's errno -- and the filter is in place from its first call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from mockkernel.kernel import Kernel
from mockkernel.supervisor import LaunchError
from mockkernel.supervisor.launch import ROUTES, spawn_supported
from mockkernel.supervisor.run import supervise

REPO = Path(__file__).parent.parent.parent
ROUTE_PARAMS = [
    pytest.param(
        "spawn",
        marks=pytest.mark.skipif(not spawn_supported(), reason="no posix_spawn route here"),
    ),
    "fork",
]


def run_on(kernel: Kernel, argv: list[str], route: str, **kw: object) -> tuple[int, str]:
    """(returncode, stdout) of ``argv`` supervised, started by ``route``."""
    r, w = os.pipe()
    try:
        code = supervise(kernel, argv, stdio=(None, w, None), route=route, **kw)  # type: ignore[arg-type]
    finally:
        os.close(w)
    with open(r, "rb") as f:
        return code, f.read().decode()


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_the_child_starts_as_subprocess_would(kernel: Kernel, route: str, tmp_path: Path) -> None:
    leaky_r, leaky_w = os.pipe()
    os.set_inheritable(leaky_w, True)  # inheritable in the supervisor: not the child's
    try:
        code, out = run_on(
            kernel,
            ["sh", "-c", 'pwd; echo "$GREETING"; ls /proc/self/fd; ls /dev/udmabuf; exit 7'],
            route,
            cwd=str(tmp_path),
            env={"GREETING": "hello", "PATH": os.environ["PATH"]},
        )
    finally:
        os.close(leaky_r)
        os.close(leaky_w)
    assert code == 7
    # ls's own fds only (3: the directory it lists): neither the listener nor the
    # supervisor's inheritable pipe came along; the filter serves /dev from the start
    assert out.split("\n") == [str(tmp_path), "hello", "0", "1", "2", "3", "/dev/udmabuf", ""]


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_the_exec_errno_is_raised(kernel: Kernel, route: str, tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError):
        supervise(kernel, [str(script)], route=route)
    assert kernel.leaks() == []


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_a_missing_cwd_is_a_launch_error(kernel: Kernel, route: str, tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="chdir: No such file"):
        supervise(kernel, ["true"], cwd=str(tmp_path / "gone"), route=route)


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_a_closed_stdin_leaves_no_listener_behind(route: str) -> None:
    """With fd 0 closed the listener lands at 0 in the child (not where the spawn
    route's hand-shake expects it): it still goes with the exec."""
    prog = textwrap.dedent(f"""
        import os, sys
        os.close(0)
        import mockkernel
        from mockkernel.supervisor.run import supervise
        k = mockkernel.boot()
        code = supervise(k, [sys.executable, "-c",
                             "import os; print(sorted(os.listdir('/proc/self/fd')))"],
                         route={route!r})
        k.shutdown()
        sys.exit(code)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "plugins")]))
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                       env=env, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['0', '1', '2']"  # 0: listdir's own directory fd


def test_an_unknown_route_is_refused(kernel: Kernel) -> None:
    assert "spawn" in ROUTES and "fork" in ROUTES
    with pytest.raises(ValueError, match="route"):
        supervise(kernel, ["true"], route="teleport")


def test_a_timeout_while_starting_still_kills_the_tree(kernel: Kernel) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        kernel.run(["sleep", "30"], timeout=0.001)
    assert kernel.leaks() == []


def test_without_a_fifo_the_launch_forks(kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spawn route needs a FIFO in the temporary directory; "auto" forks without."""

    def no_fifo(path: str, mode: int = 0o666) -> None:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(os, "mkfifo", no_fifo)
    assert run_on(kernel, ["sh", "-c", "ls /dev/udmabuf"], "auto") == (0, "/dev/udmabuf\n")
    if spawn_supported():
        with pytest.raises(OSError, match="no FIFO"):
            supervise(kernel, ["true"], route="spawn")
    assert kernel.leaks() == []


def test_the_watchdog_starts_with_the_first_handled_call(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree whose calls all take the fast CONTINUE path never starts the pool's
    watchdog thread; the first call a handler serves does (it may block)."""
    from mockkernel.supervisor.supervisor import Supervisor

    seen: list[bool] = []
    stop = Supervisor.stop

    def spy(self: Supervisor) -> None:
        assert self.pool is not None
        seen.append(self.pool.watching)
        stop(self)

    monkeypatch.setattr(Supervisor, "stop", spy)
    assert kernel.run(["true"]).returncode == 0
    assert kernel.run(["sh", "-c", "exec 3</dev/udmabuf"]).returncode == 0
    assert seen == [False, True]


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_a_host_that_refuses_ptrace_is_named_and_leaves_nothing(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the host refuses an interface (a Yama ``ptrace_scope`` of 3, a container
    without ``CAP_SYS_PTRACE`` over its children...) the launch says which (issue 15: "a
    clear error where it does not"), kills the child it started and the kernel stays
    usable (the CLI prints that message and exits 127)."""
    from mockkernel.supervisor import launch

    def refuse(pid: int, options: int) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(launch, "seize", refuse)
    with pytest.raises(LaunchError, match=r"the host refused ptrace \(PTRACE_SEIZE\)"):
        supervise(kernel, ["/bin/true"], route=route)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the child it started is gone and reaped
    monkeypatch.undo()
    assert run_on(kernel, ["/bin/echo", "again"], route) == (0, "again\n")
    assert kernel.leaks() == []


def test_a_task_killed_in_its_exec_stop_just_exits(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILL (a timeout's, another process's) may come while the tracer holds a task
    in a ptrace stop; every ptrace request on it then fails with ``ESRCH`` and its exit is
    the next event.  The tracer must take that as the task's end, not as its own failure
    (which made a timed-out run raise ``ProcessLookupError`` instead of ``TimeoutExpired``)."""
    from mockkernel.supervisor.tracer import TreeTracer

    on_exec = TreeTracer.on_exec

    def killed_first(self: TreeTracer, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)  # the tracee leaves its exec stop at once
        on_exec(self, pid)

    monkeypatch.setattr(TreeTracer, "on_exec", killed_first)
    assert kernel.run(["true"]).returncode == -signal.SIGKILL
    assert kernel.leaks() == []


def test_a_timeout_is_the_outcome_whatever_the_kill_broke(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline's SIGKILL lands in a fork stop: the tracer cannot follow the new task
    and ends the tree (an error of its own); the run's outcome is still the timeout, with
    that error as its cause, and nothing hangs or leaks."""
    from mockkernel.supervisor.tracer import TreeTracer

    run_mod = sys.modules["mockkernel.supervisor.run"]  # (the package's ``run`` is a function)
    deadlines: list[run_mod._Deadline] = []
    due = threading.Event()

    class Recorded(run_mod._Deadline):
        """A deadline that passes when the test says (at the fork stop), not by the clock."""

        def __init__(self, *args: Any) -> None:
            deadlines.append(self)
            super().__init__(*args)

        def _run(self, timeout: float) -> None:
            due.wait()
            super()._run(0)

    on_clone = TreeTracer.on_clone

    def expired_and_killed(self: TreeTracer, tid: int, event: int) -> None:
        due.set()  # the deadline passes now ...
        while not deadlines[0].expired:
            deadlines[0].done.wait(0.001)
        os.kill(tid, signal.SIGKILL)  # ... and its SIGKILL comes while tid is in this stop
        on_clone(self, tid, event)

    monkeypatch.setattr(run_mod, "_Deadline", Recorded)
    monkeypatch.setattr(TreeTracer, "on_clone", expired_and_killed)
    with pytest.raises(subprocess.TimeoutExpired) as e:
        kernel.run(["sh", "-c", "true & wait"], timeout=60)
    assert isinstance(e.value.__cause__, ProcessLookupError)
    assert kernel.leaks() == []
