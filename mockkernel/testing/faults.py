"""Fault sweeps: run a scenario once per fault point, failing that point (``fail-nth``).

``sweep_scenario(scenario)`` runs ``scenario()`` against a fresh kernel, installed, with
the main thread's ``fail-nth`` set to 1, then 2, 3, ... until a run ends with the count
not spent (the scenario reached fewer points: every point was failed once).  Each run
gives a :class:`SweepPoint`: the site failed, the errno the first failing syscall after
it returned to the program, how the scenario ended (normally, an ``OSError`` escaping,
``SystemExit`` and its status, or a traceback), and the leaks left once the task exited
and the kernel shut down.  ``mockkernel sweep PROGRAM`` does the same for a program run
as ``__main__`` (``sweep_program``) and prints one line per point; ``mockkernel sweep --
CMD`` (``sweep_command``) runs any command as a supervised tree, with one ``fail-nth``
count for the whole tree (the Nth point any of its tasks reaches fails), where a run
ending on a signal (a crash) is not clean either.

A point is *clean* when the scenario ended without a traceback other than the
``OSError`` the fault caused, and nothing leaked: what the kernel must guarantee for any
fault.  ``SweepReport.assert_clean()`` fails a test with every point that was not.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import os
import runpy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..fault_inject import FaultInject
from ..lifecycle import boot
from ..trace import EventDict

__all__ = ["SweepPoint", "SweepReport", "sweep_command", "sweep_program", "sweep_scenario"]


@dataclass
class SweepPoint:
    """One run of a sweep: fault point ``n`` failed at ``site``."""

    n: int
    site: str | None
    #: the errno name the first syscall failing after the fault returned (None: none)
    errno: str | None
    #: "ok", "exit <status>", "OSError <name>" or "traceback <type>"
    outcome: str
    leaks: list[str] = field(default_factory=list)
    #: the task the fault was injected in (a supervised tree's: any of its processes)
    pid: int | None = None

    @property
    def clean(self) -> bool:
        return not self.outcome.startswith(("traceback", "signal")) and not self.leaks

    def line(self) -> str:
        leak = f", {len(self.leaks)} leak(s): {self.leaks[0]}" if self.leaks else ""
        state = "clean" if self.clean else "NOT CLEAN"
        where = f"{self.n:4d} {self.site or '-':16s} {self.errno or '-':10s}"
        return f"{where} {self.outcome}{leak} [{state}]"


@dataclass
class SweepReport:
    points: list[SweepPoint]

    @property
    def dirty(self) -> list[SweepPoint]:
        return [p for p in self.points if not p.clean]

    def assert_clean(self) -> None:
        if self.dirty:
            raise AssertionError(
                "fault sweep: points not handled cleanly:\n"
                + "\n".join(p.line() for p in self.dirty)
            )

    def text(self) -> str:
        head = f"{'n':>4s} {'site':16s} {'errno':10s} outcome"
        return "\n".join([head, *(p.line() for p in self.points)])


def _seen_errno(events: Sequence[EventDict]) -> str | None:
    """The errno of the first syscall that failed after the fault was injected."""
    after = False
    for ev in events:
        name = str(ev.get("event", ""))
        if name == "fault.inject":
            after = True
        elif after and name.startswith("sys.") and ev.get("errno") is not None:
            return str(ev["errno"])
    return None


def _run_once(
    n: int,
    scenario: Callable[[], None],
    topology: Any,
    uapi: str | None,
) -> tuple[SweepPoint, bool]:
    """One run with point ``n`` failed; also whether the count was spent."""
    kernel = boot(topology, uapi=uapi)
    faults = kernel.subsys(FaultInject)
    outcome = "ok"
    with kernel.tracer.capture() as events, kernel.install(rebind=True):
        faults.arm(kernel.init_process, n)
        try:
            scenario()
        except SystemExit as e:
            code = e.code
            outcome = f"exit {code if isinstance(code, int) else 1}" if code else "ok"
        except OSError as e:
            outcome = f"OSError {errno.errorcode.get(e.errno or 0, e.errno)}"
        except BaseException as e:  # a traceback: what the sweep is looking for
            outcome = f"traceback {type(e).__name__}: {e}"
        finally:
            spent = faults.remaining(kernel.init_process, _main_ident()) == 0
            faults.arm(kernel.init_process, 0)
        gc.collect()  # unmap what the scenario dropped, as exit would
    site = faults.injected[0][0] if faults.injected else None
    kernel.init_process.exit()
    leaks = kernel.shutdown(check=False)
    seen = _seen_errno(events)
    if seen is None and outcome.startswith("OSError "):
        seen = outcome.split()[1]  # (a front-end call the trace does not name: a socket's)
    return SweepPoint(n, site, seen, outcome, leaks), spent


def _main_ident() -> int:
    import threading

    ident = threading.main_thread().ident
    return ident if ident is not None else threading.get_ident()


def sweep_scenario(
    scenario: Callable[[], None],
    *,
    topology: Any = None,
    uapi: str | None = None,
    limit: int = 10_000,
    start: int = 1,
) -> SweepReport:
    """Run ``scenario`` once per fault point it reaches (see the module); call it from
    the main thread (``/proc/self/fail-nth`` is the main thread's)."""
    points: list[SweepPoint] = []
    for n in range(start, limit + 1):
        point, spent = _run_once(n, scenario, topology, uapi)
        if not spent:
            break  # fewer than n points: every one was failed once
        points.append(point)
    return SweepReport(points)


def sweep_program(
    path: str,
    args: Sequence[str] = (),
    *,
    topology: Any = None,
    uapi: str | None = None,
    limit: int = 10_000,
) -> SweepReport:
    """``sweep_scenario`` of the program at ``path`` run as ``__main__`` (its output
    swallowed), as ``mockkernel sweep`` does."""

    def scenario() -> None:
        saved_argv, saved_path = sys.argv, list(sys.path)
        sys.argv = [path, *args]
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                runpy.run_path(path, run_name="__main__")
        finally:
            sys.argv = saved_argv
            sys.path[:] = saved_path

    return sweep_scenario(scenario, topology=topology, uapi=uapi, limit=limit)


def _run_command_once(
    n: int, argv: Sequence[str], topology: Any, uapi: str | None, timeout: float
) -> tuple[SweepPoint, bool]:
    """One supervised run of ``argv`` with the tree's point ``n`` failed."""
    from ..supervisor import supervise

    kernel = boot(topology, uapi=uapi)
    faults = kernel.subsys(FaultInject)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        with kernel.tracer.capture() as events:
            code = supervise(kernel, argv, stdio=(null, null, null), timeout=timeout,
                             fail_nth=n)  # fmt: skip
    finally:
        os.close(null)
    if code == 0:
        outcome = "ok"
    elif code > 0:
        outcome = f"exit {code}"
    else:
        outcome = f"signal {-code}"
    site, pid = faults.injected[0] if faults.injected else (None, None)
    leaks = kernel.shutdown(check=False)
    point = SweepPoint(n, site, _seen_errno(events), outcome, leaks, pid)
    return point, bool(faults.injected)


def sweep_command(
    argv: Sequence[str],
    *,
    topology: Any = None,
    uapi: str | None = None,
    limit: int = 10_000,
    timeout: float = 120.0,
) -> SweepReport:
    """Run ``argv`` (any executable) supervised once per fault point its whole tree
    reaches, failing that point (``mockkernel sweep -- CMD``); the program's output is
    discarded.  ``OSError`` when it cannot be started."""
    points: list[SweepPoint] = []
    for n in range(1, limit + 1):
        point, spent = _run_command_once(n, argv, topology, uapi, timeout)
        if not spent:
            break
        points.append(point)
    return SweepReport(points)
