"""The ``mockkernel`` command: run a program, list plugins, show the default topology."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .kernel import Kernel
    from .profiles import UapiProfiles
    from .topology import Topology

__all__ = ["main"]


#: the exit status of a run killed by ``--timeout`` (as ``timeout(1)``'s)
_TIMED_OUT = 124


class _UsageError(Exception):
    """A bad argument: reported as ``mockkernel: error: ...``, exit status 2."""


def _open_trace(path: str) -> IO[str]:
    """The trace file, on a high fd: the program must see the fd numbers it would see bare
    (the kernel booted next holds it: :func:`~mockkernel.realfd.hold`)."""
    from .realfd import move_high

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise _UsageError(f"cannot write the trace to {path!r}: {e.strerror}") from None
    return open(move_high(fd), "w", encoding="utf-8")


def _uapi_profiles() -> UapiProfiles:
    """The profiles a kernel booted here would know: built-in and the plugins' ones."""
    from .plugins import get_plugin_manager
    from .profiles import UapiProfiles

    return UapiProfiles.from_plugins(get_plugin_manager())


def _supervised(ns: argparse.Namespace) -> bool:
    """In-process for ``run PROGRAM.py`` (the fast path); supervised for ``run -- CMD``,
    ``run ./prog`` (anything not a ``.py`` file) and ``run --supervise PROGRAM.py``."""
    supervise = getattr(ns, "supervise", False)  # (sweep has no --supervise)
    return bool(supervise or ns.dashdash or not ns.program.endswith(".py"))


def _cmd_run_supervised(ns: argparse.Namespace) -> int:
    from .lifecycle import boot
    from .realfd import hold
    from .supervisor import LaunchError, supervise
    from .topology import load_topology

    profiles = _uapi_profiles()
    topology = None
    if ns.topology:
        topology = _load(lambda p: load_topology(p, uapi_profiles=profiles), ns.topology)
    trace = _open_trace(ns.trace) if ns.trace else None
    kernel = boot(topology, uapi=ns.uapi)
    if trace is not None:
        hold(kernel, trace.fileno())
        kernel.tracer.json_lines(trace)
    try:
        argv = [ns.program, *ns.args]
        if ns.program.endswith(".py") and not ns.dashdash:
            argv = [sys.executable, *argv]  # run --supervise PROGRAM.py
        try:
            with _interruptible():
                code = supervise(
                    kernel, argv, fail_nth=ns.fail_nth or 0, timeout=ns.timeout, cpu=ns.cpu
                )
        except KeyboardInterrupt as e:
            signum = e.signum if isinstance(e, _Terminated) else signal.SIGINT
            print(f"mockkernel: {signal.Signals(signum).name}: every process of the tree "
                  "was killed", file=sys.stderr)  # fmt: skip
            code = -signum
        except (LaunchError, OSError) as e:
            print(f"mockkernel: cannot run {ns.program!r}: {e}", file=sys.stderr)
            code = 127
        except subprocess.TimeoutExpired:
            print(f"mockkernel: {ns.program!r} timed out after {ns.timeout:g} s: every "
                  "process of the tree was killed", file=sys.stderr)  # fmt: skip
            code = _TIMED_OUT
        status = code if code >= 0 else 128 - code
        return _report(kernel, status, ns.check_leaks)
    finally:
        if trace is not None:
            trace.close()


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP to ``mockkernel run``: raised as ^C is, so the supervisor kills
    and reaps the tree (with no handler the process would die at once, leaving a child
    that was not yet seized blocked in its launch)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`_Terminated` in the block (main thread only)."""

    def terminate(signum: int, _frame: object) -> None:
        raise _Terminated(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _report(kernel: Kernel, status: int, check_leaks: bool) -> int:
    """Shut the kernel down; report what leaked (exit 70 with ``--check-leaks``)."""
    leaks = kernel.shutdown(check=False)
    if leaks:
        print(f"mockkernel: {len(leaks)} leak(s) after the program exited:", file=sys.stderr)
        for leak in leaks:
            print(f"  - {leak}", file=sys.stderr)
        if check_leaks and status == 0:
            return 70
    return status


def _cmd_run(ns: argparse.Namespace) -> int:
    from .topology import load_topology
    from .userspace.runner import run_program

    profiles = _uapi_profiles()
    if ns.uapi is not None and ns.uapi not in profiles:
        raise _UsageError(
            f"argument --uapi: invalid choice: {ns.uapi!r} (choose from {', '.join(profiles)})"
        )
    if ns.cpu is not None and ns.cpu not in os.sched_getaffinity(0):
        raise _UsageError(
            f"argument --cpu: {ns.cpu} is not a CPU this process may run on "
            f"({', '.join(map(str, sorted(os.sched_getaffinity(0))))})"
        )
    if _supervised(ns):
        return _cmd_run_supervised(ns)
    if ns.timeout is not None:
        raise _UsageError(
            "argument --timeout: needs a supervised run (run --supervise PROGRAM.py, "
            "run -- CMD): an in-process program cannot be killed apart from mockkernel"
        )
    if ns.cpu is not None:
        raise _UsageError(
            "argument --cpu: needs a supervised run (run --supervise PROGRAM.py, run -- CMD)"
        )

    try:
        os.stat(ns.program)
    except OSError as e:  # as python says it, before anything is booted
        print(
            f"mockkernel: can't open file {ns.program!r}: [Errno {e.errno}] {e.strerror}",
            file=sys.stderr,
        )
        return 2
    topology: Topology | None = None
    if ns.topology:
        topology = _load(lambda p: load_topology(p, uapi_profiles=profiles), ns.topology)
    trace = _open_trace(ns.trace) if ns.trace else None
    try:
        return run_program(
            ns.program,
            ns.args,
            topology=topology,
            trace=trace,
            uapi=ns.uapi,
            check_leaks=ns.check_leaks,
            fail_nth=ns.fail_nth,
        )
    finally:
        if trace is not None:
            trace.close()


def _cmd_sweep(ns: argparse.Namespace) -> int:
    """``mockkernel sweep``: one run per fault point; 0 when every point was clean."""
    from .testing.faults import sweep_command, sweep_program

    if _supervised(ns):  # sweep -- CMD, sweep ./prog: the whole tree, supervised
        argv = [ns.program, *ns.args]
        if ns.program.endswith(".py") and not ns.dashdash:
            argv = [sys.executable, *argv]
        try:
            report = sweep_command(argv, uapi=ns.uapi, limit=ns.limit)
        except OSError as e:
            print(f"mockkernel: cannot run {ns.program!r}: {e}", file=sys.stderr)
            return 127
    else:
        try:
            os.stat(ns.program)
        except OSError as e:
            print(f"mockkernel: can't open file {ns.program!r}: {e.strerror}", file=sys.stderr)
            return 2
        report = sweep_program(ns.program, ns.args, uapi=ns.uapi, limit=ns.limit)
    print(report.text())
    dirty = report.dirty
    print(f"{len(report.points)} fault point(s), {len(dirty)} not clean")
    return 1 if dirty else 0


def _cmd_plugins(ns: argparse.Namespace) -> int:
    import warnings

    from .plugins import get_plugin_manager, plugin_failures, plugin_names

    with warnings.catch_warnings():  # each failure is a line of the listing instead
        warnings.simplefilter("ignore")
        pm = get_plugin_manager()
    names = plugin_names(pm)
    failed = plugin_failures()
    if not names:
        print("no plugins loaded")
    for name, where in names:
        print(f"{name}\t{where}")
    for name, why in failed:
        print(f"{name}\tNOT LOADED: {why}")
    return 1 if failed else 0


def _cmd_topology(ns: argparse.Namespace) -> int:
    from .lifecycle import boot
    from .topology import default_topology, dumps, load_topology

    if ns.file:
        profiles = _uapi_profiles()
        topo = _load(lambda p: load_topology(p, uapi_profiles=profiles), ns.file)
        # what only a boot can check (each driver named is registered by a plugin)
        boot(topo).shutdown(check=False)
    else:
        topo = default_topology()
    sys.stdout.write(dumps(topo))
    return 0


def _cmd_trace(ns: argparse.Namespace) -> int:
    from .traceview import TraceError, load, render_html, render_mermaid, render_timeline

    try:
        if ns.file == "-":
            events = load(sys.stdin)
        else:
            with open(ns.file, encoding="utf-8") as f:
                events = load(f)
    except OSError as e:
        raise _UsageError(f"{ns.file}: {e.strerror}") from None
    except (TraceError, UnicodeDecodeError) as e:
        raise _UsageError(f"{ns.file}: {e}") from None
    only = tuple(ns.only or ())
    if ns.html:
        title = "mockkernel trace" + ("" if ns.file == "-" else f": {os.path.basename(ns.file)}")
        sys.stdout.write(
            render_html(events, only, ns.shutdown, title=title, skip_core=ns.skip_core)
        )
    elif ns.mermaid:
        sys.stdout.write(render_mermaid(events, only, ns.shutdown, ns.skip_core))
    else:
        sys.stdout.write(render_timeline(events, only, ns.shutdown, ns.skip_core))
    return 0


def _load(load: Callable[[str], Topology], path: str) -> Topology:
    from .topology import TopologyError

    try:
        return load(path)
    except TopologyError as e:
        raise _UsageError(f"bad topology: {e}") from None


def _dashdash(raw: list[str], command: str = "run") -> bool:
    """Did ``--`` come right before the program (``run [OPTIONS] -- CMD ...``)?"""
    takes_value = {"--topology", "--trace", "--uapi", "--fail-nth", "--limit"}
    i = raw.index(command) + 1
    while i < len(raw):
        tok = raw[i]
        if tok == "--":
            return True
        if not tok.startswith("-"):
            return False
        i += 2 if tok in takes_value else 1
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mockkernel", description="A simulated Linux kernel that runs in-process."
    )
    parser.add_argument("--version", action="version", version=f"mockkernel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run a program unchanged against a mock kernel: PROGRAM.py in-process, "
        "-- CMD [ARGS] (any executable, and every process it makes) supervised",
    )
    run.add_argument(
        "--supervise",
        action="store_true",
        help="run PROGRAM.py supervised too (forks, execs and subprocesses share the kernel)",
    )
    run.add_argument("--topology", metavar="FILE", help="a topology TOML file (default: built in)")
    run.add_argument("--trace", metavar="FILE", help="write trace events as JSON lines")
    run.add_argument(
        "--uapi",
        metavar="NAME",
        help="the uAPI profile to boot with (docs/uapi-profiles.md; plugins may add some)",
    )
    run.add_argument(
        "--check-leaks",
        action="store_true",
        help="exit 70 if the program left an fd or a kernel object alive",
    )
    run.add_argument(
        "--fail-nth",
        type=int,
        default=0,
        metavar="N",
        help="fail the Nth fault point the program reaches (as /proc/self/fail-nth)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="kill the supervised tree after SECONDS (exit 124, as timeout(1)); the "
        "kernel releases all it held, so --check-leaks still reports",
    )
    run.add_argument(
        "--cpu",
        type=int,
        metavar="N",
        help="supervised: run the supervisor and the whole tree on CPU N (faster round "
        "trips where idle CPUs wake slowly; the tree's threads share it)",
    )
    run.add_argument("program", help="the program, e.g. examples/udmabuf_demo.py")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    run.set_defaults(func=_cmd_run)
    sweep = sub.add_parser(
        "sweep", help="run a program once per fault point, failing that point (fail-nth)"
    )
    sweep.add_argument("--uapi", metavar="NAME", help="the uAPI profile to boot with")
    sweep.add_argument("--limit", type=int, default=10_000, help="at most this many points")
    sweep.add_argument("program", help="the program, e.g. examples/udmabuf_demo.py")
    sweep.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    sweep.set_defaults(func=_cmd_sweep)
    plugins = sub.add_parser("plugins", help="list the plugins that would be loaded")
    plugins.set_defaults(func=_cmd_plugins)
    topo = sub.add_parser("topology", help="print the default (or a given) topology as TOML")
    topo.add_argument("--file", help="validate and print this topology instead")
    topo.set_defaults(func=_cmd_topology)
    trace = sub.add_parser(
        "trace",
        help="show a --trace file as a timeline, a Mermaid sequence diagram or an HTML page",
    )
    trace.add_argument("file", help="a JSON-lines trace written by run --trace ('-': stdin)")
    shape = trace.add_mutually_exclusive_group()
    shape.add_argument(
        "--mermaid",
        action="store_true",
        help="a Mermaid sequenceDiagram: arrows between the lanes, numbered with seq",
    )
    shape.add_argument(
        "--html",
        action="store_true",
        help="one self-contained HTML page (diagram as SVG + timeline table; no network)",
    )
    trace.add_argument(
        "--skip-core",
        action="store_true",
        help="leave out syscalls only the core saw (directory listings, sysfs reads, stat)",
    )
    trace.add_argument(
        "--shutdown",
        action="store_true",
        help="keep the shutdown of devices the program did not use (left out by default)",
    )
    trace.add_argument(
        "--only",
        action="append",
        metavar="PREFIX",
        help="only events whose name starts with PREFIX (and the syscalls around them)",
    )
    trace.set_defaults(func=_cmd_trace)
    raw = list(sys.argv[1:] if argv is None else argv)
    ns = parser.parse_args(raw)
    if ns.command in ("run", "sweep"):
        ns.dashdash = _dashdash(raw, ns.command)
    from .topology import TopologyError

    try:
        status: int = ns.func(ns)
    except _UsageError as e:
        print(f"mockkernel: error: {e}", file=sys.stderr)
        return 2
    except TopologyError as e:  # found at boot: a driver no plugin registered
        file = ns.file if ns.command == "topology" else getattr(ns, "topology", None)
        if e.file is None and file:
            e = TopologyError(e.key, e.problem, file=file, errors=e.errors)
        print(f"mockkernel: error: bad topology: {e}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
