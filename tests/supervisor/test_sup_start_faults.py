"""Every way a supervised start can fail, by both launch routes: the run raises a clear
error (``docs/supervisor.md``, "When the start fails"), never hangs, and leaves no
child or zombie and no fd of the supervisor's behind.

"Never hangs" is bounded by an alarm that fails the test (not a speed test: the bound
is far above any start); "no child" is ``waitpid(-1)`` saying ``ECHILD``; "no fd" is
``/proc/self/fd`` the same before and after (a warm-up run first opens what a kernel
keeps for its life: its placeholder files)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from mockkernel.kernel import Kernel
from mockkernel.supervisor import LaunchError, launch
from mockkernel.supervisor.launch import spawn_supported
from mockkernel.supervisor.run import supervise
from mockkernel.supervisor.supervisor import Supervisor

#: the module (``mockkernel.supervisor.run`` is also the package's ``run`` function)
run_module = sys.modules[supervise.__module__]

ROUTES = [
    pytest.param(
        "spawn",
        marks=pytest.mark.skipif(not spawn_supported(), reason="no posix_spawn route here"),
    ),
    "fork",
]

#: the most a failed start may take before the test calls it a hang (seconds)
BOUND = 60


class Hung(Exception):
    """The alarm went off: the supervisor hung."""


def _fds() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (listdir's own directory fd, closed since)
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return out


def _no_child() -> None:
    with pytest.raises(ChildProcessError) as e:
        os.waitpid(-1, os.WNOHANG | 0x40000000)  # __WALL: tracees and zombies too
    assert e.value.errno == errno.ECHILD


@contextmanager
def _clean(kernel: Kernel) -> Iterator[None]:
    """The block neither hangs nor leaves a child, a zombie or an fd behind."""
    assert kernel.run(["true"]).returncode == 0  # (warm-up: the kernel's own fds)
    _no_child()
    before = _fds()

    def alarm(_sig: int, _frame: FrameType | None) -> None:
        raise Hung(f"the supervisor hung (more than {BOUND} s)")

    old = signal.signal(signal.SIGALRM, alarm)
    # (again every 5 s: a hung cleanup under the first Hung is cut short too)
    signal.setitimer(signal.ITIMER_REAL, BOUND, 5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    _no_child()
    after = _fds()
    leaked = {fd: what for fd, what in after.items() if before.get(fd) != what}
    assert leaked == {}
    assert kernel.leaks() == []


def _failing(exc: BaseException, real: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """A stand-in that raises ``exc`` (after running ``real``, when given)."""

    def fail(*args: Any, **kw: Any) -> Any:
        if real is not None:
            real(*args, **kw)
        raise exc

    return fail


# -- an exception in the kernel's start (Supervisor.start) -----------------------------------
@pytest.mark.parametrize("exc", [RuntimeError("boot failed on purpose"), KeyboardInterrupt()])
@pytest.mark.parametrize("route", ROUTES)
def test_a_start_that_raises_kills_the_child(
    kernel: Kernel, route: str, exc: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's start fails once the child has its filter (a deferred boot that
    fails at the first mock process, or ^C then): the spawn route used to hang here,
    reaping a tracee left in its exit stop; the fork route left the child stopped."""
    with _clean(kernel):
        monkeypatch.setattr(Supervisor, "new_process", _failing(exc))
        with pytest.raises(type(exc)):
            supervise(kernel, ["true"], route=route)
        monkeypatch.undo()


@pytest.mark.parametrize("route", ROUTES)
def test_a_start_that_raises_after_the_listener_is_taken(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener is the supervisor's from ``start`` on: closed once, by ``stop``."""
    with _clean(kernel):
        monkeypatch.setattr(Supervisor, "arm_fail_nth", _failing(RuntimeError("late")))
        with pytest.raises(RuntimeError, match="late"):
            supervise(kernel, ["true"], route=route, fail_nth=1)
        monkeypatch.undo()


# -- the filter install ------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_a_refused_filter_is_a_launch_error(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host refuses the filter (here: a program it cannot load, ``EINVAL``)."""
    with _clean(kernel):
        monkeypatch.setattr(run_module, "FILTER", ((0xFFFF, 0, 0, 0),))
        with pytest.raises(LaunchError, match="seccomp user notification") as e:
            supervise(kernel, ["true"], route=route)
        assert e.value.errno == errno.EINVAL
        monkeypatch.undo()


# -- the seize ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc", [OSError(errno.EPERM, "Operation not permitted"), KeyboardInterrupt()]
)
@pytest.mark.parametrize("route", ROUTES)
def test_a_failed_seize(
    kernel: Kernel, route: str, exc: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PTRACE_SEIZE`` refused (a Yama policy, a container) is a ``LaunchError`` with
    its errno; ^C at that point is the ``KeyboardInterrupt``."""
    with _clean(kernel):
        monkeypatch.setattr(launch, "seize", _failing(exc))
        with pytest.raises(LaunchError if isinstance(exc, OSError) else KeyboardInterrupt) as e:
            supervise(kernel, ["true"], route=route)
        if isinstance(exc, OSError):
            assert e.value.errno == errno.EPERM  # type: ignore[attr-defined]
            assert "PTRACE_SEIZE" in str(e.value)
        monkeypatch.undo()


@pytest.mark.parametrize("route", ROUTES)
def test_an_interrupt_right_after_the_seize(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """^C once the child is our tracee, before the filter is in place."""
    with _clean(kernel):
        monkeypatch.setattr(launch, "seize", _failing(KeyboardInterrupt(), launch.seize))
        with pytest.raises(KeyboardInterrupt):
            supervise(kernel, ["true"], route=route)
        monkeypatch.undo()


def test_an_interrupt_before_the_spawned_childs_pid_is_known(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """^C while waiting for the spawned child's hang-up on the FIFO: the child may be
    blocked opening the FIFO (no writer will come), and is found among the worker's
    children and killed."""
    if not spawn_supported():
        pytest.skip("no posix_spawn route here")
    real = launch._await_child

    def late(spec: launch.Spec, rd: int, done_r: int, spawned: Any) -> int:
        real(spec, rd, done_r, spawned)  # (the child now waits on the FIFO)
        raise KeyboardInterrupt

    with _clean(kernel):
        monkeypatch.setattr(launch, "_await_child", late)
        with pytest.raises(KeyboardInterrupt):
            supervise(kernel, ["true"], route="spawn")
        monkeypatch.undo()


def test_an_interrupt_while_the_forked_child_sends_its_listener(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _clean(kernel):
        monkeypatch.setattr(launch.socket, "recv_fds", _failing(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            supervise(kernel, ["true"], route="fork")
        monkeypatch.undo()


def test_an_interrupt_during_the_spawned_childs_filter_install(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not spawn_supported():
        pytest.skip("no posix_spawn route here")
    with _clean(kernel):
        monkeypatch.setattr(launch, "_getfd", _failing(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            supervise(kernel, ["true"], route="spawn")
        monkeypatch.undo()


# -- the first notification --------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_a_broken_listener_at_the_first_notification_kills_the_tree(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener fails at the first notification: the tree is killed (SIGKILL,
    ``-9``), the failure reported as a kernel warning, nothing left waiting."""
    from mockkernel.supervisor.notify import Listener

    with _clean(kernel):
        monkeypatch.setattr(Listener, "recv_call", _failing(RuntimeError("listener broke")))
        code = supervise(kernel, ["cat", "/dev/null"], route=route)
        monkeypatch.undo()
        assert code == -signal.SIGKILL
        assert [w for w in kernel.warnings if "listener broke" in w] != []
        kernel.warnings.clear()


@pytest.mark.parametrize("route", ROUTES)
def test_a_handler_that_raises_at_the_first_notification(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel bug in the first handled call: the caller gets ``ENOSYS``, the run ends."""
    from types import MappingProxyType

    from mockkernel.supervisor import handlers
    from mockkernel.supervisor import supervisor as sup_module

    nr = launch.NR["openat"]
    broken = dataclasses.replace(handlers.TABLE[nr], handler=_failing(RuntimeError("handler bug")))
    with _clean(kernel):  # (the table is read-only: the supervisor's name is rebound)
        monkeypatch.setattr(sup_module, "TABLE", MappingProxyType({**handlers.TABLE, nr: broken}))
        code = supervise(kernel, ["sh", "-c", "exec 3</dev/udmabuf"], route=route)
        monkeypatch.undo()
        assert code != 0
        assert [w for w in kernel.warnings if "handler bug" in w] != []
        kernel.warnings.clear()


# -- the exec ----------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "make, err",
    [
        (lambda p: p, errno.ENOENT),  # no such file
        (lambda p: (p.write_text("#!/bin/sh\n"), p)[1], errno.EACCES),  # not executable
        (lambda p: (p.write_bytes(b"\x7fELF garbage"), p.chmod(0o755), p)[2], errno.ENOEXEC),
    ],
    ids=["ENOENT", "EACCES", "ENOEXEC"],
)
def test_a_failed_exec_raises_its_errno(
    kernel: Kernel, route: str, make: Callable[[Path], Path], err: int, tmp_path: Path
) -> None:
    prog = make(tmp_path / "prog")
    with _clean(kernel):
        with pytest.raises(OSError) as e:
            supervise(kernel, [str(prog)], route=route)
        assert e.value.errno == err
        assert not isinstance(e.value, LaunchError)


# -- a timeout while starting -----------------------------------------------------------------
@pytest.mark.parametrize("timeout", [0.0, 0.001, 0.01])
@pytest.mark.parametrize("route", ROUTES)
def test_a_timeout_at_any_point_of_the_start_kills_the_tree(
    kernel: Kernel, route: str, timeout: float
) -> None:
    with _clean(kernel):
        for _ in range(5):
            with pytest.raises(subprocess.TimeoutExpired):
                supervise(kernel, ["sleep", "30"], route=route, timeout=timeout)


@pytest.mark.parametrize("route", ROUTES)
def test_a_timeout_while_the_kernel_starts(
    kernel: Kernel, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline passes while the kernel's start runs (a slow deferred boot)."""
    real = Supervisor.new_process

    def slow(self: Supervisor, *args: Any, **kw: Any) -> Any:
        signal.sigtimedwait([signal.SIGUSR2], 0.3)  # (a sleep no signal cuts short)
        return real(self, *args, **kw)

    with _clean(kernel):
        monkeypatch.setattr(Supervisor, "new_process", slow)
        with pytest.raises(subprocess.TimeoutExpired):
            supervise(kernel, ["sleep", "30"], route=route, timeout=0.05)
        monkeypatch.undo()


# -- a signal to the supervisor ---------------------------------------------------------------
REPO = Path(__file__).parent.parent.parent


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_mockkernel_run_killed_by_a_signal_kills_the_tree(sig: int) -> None:
    """SIGTERM/SIGHUP to ``mockkernel run`` are handled as ^C: the tree is killed and
    reaped, the CLI says so and exits 128 + the signal."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "plugins")]))
    cmd = [sys.executable, "-m", "mockkernel", "run", "--", "sh", "-c", "echo $$; exec sleep 60"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          stdin=subprocess.DEVNULL) as p:  # fmt: skip
        assert p.stdout is not None
        tree_pid = int(p.stdout.readline())
        p.send_signal(sig)
        try:
            _out, err = p.communicate(timeout=BOUND)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    assert p.returncode == 128 + sig, err
    assert signal.Signals(sig).name in err.decode()
    assert not os.path.exists(f"/proc/{tree_pid}")  # (reaped: not even a zombie)
