"""Running a command under the supervisor: ``supervise`` (the status) and ``run`` (a
``subprocess.CompletedProcess``, for tests: ``kernel.run([...])``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ..realfd import REAL
from .execsys import TRACED
from .handlers import TABLE
from .launch import Child, LaunchError, Spec, start_child
from .mmap import TracerWork
from .ptrace import INJECT_MARK, mark_word_offset
from .seccomp import NR, build_filter, marker_prefix
from .supervisor import Supervisor
from .tracer import TreeTracer

if TYPE_CHECKING:
    from .supervisor import SupervisedKernel as Kernel

__all__ = ["LaunchError", "run", "supervise"]


def _which(argv0: str, env: Mapping[str, str]) -> str:
    if "/" in argv0:
        return argv0
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(2, os.strerror(2), argv0)
    return found


def _trace_tree(sv: Supervisor, spec: Spec, box: dict[str, Any], route: str) -> None:
    """Start the child, then follow the tree until it is gone -- on the calling thread,
    which so becomes the tracer (no thread to start and join on the critical path)."""
    tt: TreeTracer | None = None

    def ready(pid: int, listener: int) -> None:
        """The filter is in place, the child not yet exec'ed: serve it from here on."""
        nonlocal tt
        sv.work = TracerWork()
        sv.work.park_served = True  # a call that revokes its own mappings is served once
        tt = box["tt"] = TreeTracer(sv, pid, sv.work)
        sv.start(listener, pid, os.path.basename(spec.path))

    try:
        box["child"] = start_child(spec, FILTER, sv.prepare, ready, route)
    except BaseException as e:
        box["error"] = e
        if tt is not None:
            tt.close()
        return
    assert tt is not None
    try:
        tt.loop()
    except BaseException as e:  # never leave the tree running nor the caller waiting
        box["error"] = e
        for _attempt in range(_DRAIN_TRIES):  # (a further ^C or SIGTERM: drain on)
            try:
                tt.kill_all()
                tt.loop()
                break
            except KeyboardInterrupt:
                continue
            except BaseException:  # (a tracer bug: stop; EXITKILL ends the tree with us)
                break
    finally:
        tt.close()


#: how many interrupts the drain of a killed tree outlasts before it gives up
_DRAIN_TRIES = 100

#: the filter every supervised tree runs: a pure function of the syscall table, so
#: assembled once, at import (it took ~0.2 ms a run)
FILTER: Final = tuple(
    build_filter(
        (s.name for s in TABLE.values()),
        trace_mmap=True,
        allow_prefix=marker_prefix(INJECT_MARK, mark_word_offset(NR["mmap"]), mark_word_offset(0)),
        trace=TRACED,
    )
)


class _Deadline:
    """``timeout``: a thread that kills the tree when it passes (``os.kill`` needs no
    ptrace, any thread may)."""

    def __init__(self, timeout: float, box: dict[str, Any]) -> None:
        self.box = box
        self.done = threading.Event()
        self.expired = False
        self.thread = threading.Thread(target=self._run, args=(timeout,), daemon=True,
                                       name="mockkernel-deadline")  # fmt: skip
        self.thread.start()

    def _run(self, timeout: float) -> None:
        if self.done.wait(timeout):
            return
        self.expired = True
        while not self.done.is_set():  # (the tracer may still be starting the child)
            tt = self.box.get("tt")
            if tt is not None:
                tt.kill_all()
            self.done.wait(0.01)

    def cancel(self) -> None:
        self.done.set()
        self.thread.join()


def supervise(
    kernel: Kernel,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    timeout: float | None = None,
    fail_nth: int = 0,
    route: str = "auto",
    cpu: int | None = None,
) -> int:
    """Run ``argv`` as a supervised tree served by ``kernel``; returns its returncode
    (negative: killed by that signal).  ``subprocess.TimeoutExpired`` after killing
    the tree when ``timeout`` passes; ``OSError`` when the exec fails.  ``fail_nth``:
    fail the Nth fault point any task of the tree reaches (``docs/reliability.md``).
    ``route``: how the child is started (``launch.ROUTES``; "auto" spawns where the
    host allows, else forks).  The calling thread is the tree's tracer until it ends.
    ``cpu`` (default ``$MOCKKERNEL_SUPERVISOR_CPU``): run the supervisor's threads and
    the whole tree on that one CPU -- every round trip is then a switch on one CPU, not
    a wake-up of another (on hosts whose idle CPUs wake slowly that is 13 instead of
    60 us); the tree's own threads share the CPU.  The caller's affinity is restored."""
    # a kernel whose boot (or driver probes) was deferred finishes it here, on this
    # thread, before any child exists: the tree may see anything, and a boot that fails
    # is this call's error with nothing started
    kernel.finish_probes()
    env = dict(os.environ if env is None else env)
    spec = Spec(_which(argv[0], env), list(argv), env, cwd, stdio)
    pinned = _pin(cpu)
    sv = Supervisor(kernel)
    sv.fail_nth = fail_nth
    box: dict[str, Any] = {}
    deadline = _Deadline(timeout, box) if timeout is not None else None
    try:
        _trace_tree(sv, spec, box, route)
    finally:
        if deadline is not None:
            deadline.cancel()
        sv.stop()
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
    for err in sv.errors:  # the supervisor's own failures: kernel bugs, reported as such
        kernel.warn(f"supervisor: {err}")
    expired = deadline is not None and deadline.expired
    return _outcome(box, list(argv), timeout if expired else None)


#: the environment variable naming the CPU ``supervise`` pins a tree to by default
CPU_ENV = "MOCKKERNEL_SUPERVISOR_CPU"


def _pin(cpu: int | None) -> set[int] | None:
    """Pin the calling thread (the threads it starts and the child it spawns inherit
    it) to ``cpu``; the affinity to restore, or None when not pinning.  A CPU the
    caller may not run on is ``ValueError``."""
    if cpu is None:
        value = os.environ.get(CPU_ENV, "")
        if not value:
            return None
        try:
            cpu = int(value)
        except ValueError:
            raise ValueError(f"{CPU_ENV}={value!r}: not a CPU number") from None
    before = os.sched_getaffinity(0)
    if cpu not in before:
        raise ValueError(f"CPU {cpu} is not one this process may run on: {sorted(before)}")
    os.sched_setaffinity(0, {cpu})
    return before


def _outcome(box: dict[str, Any], argv: list[str], timed_out: float | None) -> int:
    child: Child | None = box.get("child")
    err = child.exec_error() if child is not None else None
    if child is not None:
        child.close()
    if timed_out is not None:
        # the deadline killed the tree: whatever failed after that (a launch cut short,
        # a task gone in the middle of a fork) is its consequence, kept as the cause
        raise subprocess.TimeoutExpired(argv, timed_out) from box.get("error")
    if "error" in box:
        raise box["error"]
    if err is not None:
        raise OSError(err, os.strerror(err), argv[0])
    tt: TreeTracer = box["tt"]
    if tt.root_status is None:
        return -9
    return os.waitstatus_to_exitcode(tt.root_status)


def _std(value: Any, which: int, keep: list[int]) -> tuple[int | None, int | None]:
    """(the child's fd, our end to read/write) for a subprocess-style stdio argument."""
    if value is None:
        return None, None
    if value == subprocess.PIPE:
        r, w = os.pipe()
        child, ours = (r, w) if which == 0 else (w, r)
        keep.append(child)
        return child, ours
    if value == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR)
        keep.append(fd)
        return fd, None
    if isinstance(value, int):
        return value, None
    return value.fileno(), None


def _pump_out(fd: int, out: list[bytes]) -> None:
    with open(fd, "rb", closefd=True) as f:
        out.append(f.read())


def _pump_in(fd: int, data: bytes) -> None:
    with open(fd, "wb", closefd=True) as f, contextlib.suppress(BrokenPipeError):
        f.write(data)


def run(
    kernel: Kernel,
    args: Sequence[str],
    *,
    stdin: Any = None,
    input: bytes | str | None = None,
    stdout: Any = None,
    stderr: Any = None,
    capture_output: bool = False,
    text: bool = False,
    check: bool = False,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    cpu: int | None = None,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with the command served by ``kernel`` (see ``supervise``;
    ``cpu``: the one CPU of the supervisor and the tree).
    ``timeout``: the whole tree is killed when it passes and ``TimeoutExpired`` carries
    what the tree wrote to captured stdout/stderr until then (bytes, as
    ``subprocess.run``'s); the kernel has released every file of the tree by then."""
    if capture_output:
        stdout = stderr = subprocess.PIPE
    if input is not None:
        stdin = subprocess.PIPE
    keep: list[int] = []
    cin, win = _std(stdin, 0, keep)
    cout, rout = _std(stdout, 1, keep)
    cerr, rerr = (cout, None) if stderr == subprocess.STDOUT else _std(stderr, 2, keep)
    outs: dict[int, list[bytes]] = {1: [], 2: []}
    pumps = [threading.Thread(target=_pump_out, args=(fd, outs[i]))
             for i, fd in ((1, rout), (2, rerr)) if fd is not None]  # fmt: skip
    if win is not None:
        data = input.encode() if isinstance(input, str) else (input or b"")
        pumps.append(threading.Thread(target=_pump_in, args=(win, data)))
    expired: subprocess.TimeoutExpired | None = None
    try:
        for p in pumps:
            p.start()
        code = supervise(
            kernel, args, env=env, cwd=cwd, stdio=(cin, cout, cerr), timeout=timeout, cpu=cpu
        )
    except subprocess.TimeoutExpired as e:  # the tree is gone: what it wrote is all here
        expired = e
    finally:
        for fd in keep:
            REAL.close(fd)
        for p in pumps:
            p.join()
    out, err = (b"".join(outs[i]) if outs[i] else None for i in (1, 2))
    if expired is not None:
        # as subprocess.run: the output captured so far, always bytes (even with text)
        expired.stdout, expired.stderr = out, err
        raise expired
    res: subprocess.CompletedProcess[Any] = subprocess.CompletedProcess(
        list(args), code, _text(out, text), _text(err, text)
    )
    if check:
        res.check_returncode()
    return res


def _text(data: bytes | None, text: bool) -> Any:
    return data.decode() if text and data is not None else data
