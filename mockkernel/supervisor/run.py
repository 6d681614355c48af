"""Running a command under the supervisor: ``supervise`` (the status) and ``run`` (a
``subprocess.CompletedProcess``, for tests: ``kernel.run([...])``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..realfd import REAL
from .handlers import TABLE
from .launch import Child, LaunchError, Spec, read_error, start_child
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


def _tracer_thread(sv: Supervisor, spec: Spec, box: dict[str, Any]) -> None:
    """The tracer thread: start the child, then follow the tree until it is gone."""
    sv.prepare()  # the workers start while the filter is assembled and the child forked
    marker = marker_prefix(INJECT_MARK, mark_word_offset(NR["mmap"]), mark_word_offset(0))
    code = build_filter((s.name for s in TABLE.values()), trace_mmap=True, allow_prefix=marker)
    try:
        child = start_child(spec, code)
    except BaseException as e:
        box["error"] = e
        return
    box["child"] = child
    sv.work = TracerWork()
    tt = box["tt"] = TreeTracer(sv, child.pid, sv.work)
    try:
        sv.start(child.listener, child.pid, os.path.basename(spec.path))
        tt.loop()
    except BaseException as e:  # never leave the tree running nor the caller waiting
        box["error"] = e
        tt.kill_all()
        with contextlib.suppress(BaseException):
            tt.loop()
    finally:
        tt.close()


def supervise(
    kernel: Kernel,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    timeout: float | None = None,
    fail_nth: int = 0,
) -> int:
    """Run ``argv`` as a supervised tree served by ``kernel``; returns its returncode
    (negative: killed by that signal).  ``subprocess.TimeoutExpired`` after killing
    the tree when ``timeout`` passes; ``OSError`` when the exec fails.  ``fail_nth``:
    fail the Nth fault point any task of the tree reaches (``docs/reliability.md``)."""
    env = dict(os.environ if env is None else env)
    spec = Spec(_which(argv[0], env), list(argv), env, cwd, stdio)
    sv = Supervisor(kernel)
    sv.fail_nth = fail_nth
    box: dict[str, Any] = {}
    t = threading.Thread(target=_tracer_thread, args=(sv, spec, box), name="mockkernel-tracer")
    t.start()
    t.join(timeout)
    timed_out = t.is_alive()
    if timed_out:
        tt = box.get("tt")
        if tt is not None:
            tt.kill_all()  # os.kill needs no ptrace: any thread may do it
        t.join()
    sv.stop()
    for err in sv.errors:  # the supervisor's own failures: kernel bugs, reported as such
        kernel.warn(f"supervisor: {err}")
    return _outcome(box, list(argv), timeout if timed_out else None)


def _outcome(box: dict[str, Any], argv: list[str], timed_out: float | None) -> int:
    child: Child | None = box.get("child")
    err = read_error(child.err_r) if child is not None else None
    if child is not None:
        REAL.close(child.err_r)
    if "error" in box:
        raise box["error"]
    if timed_out is not None:
        raise subprocess.TimeoutExpired(argv, timed_out)
    if err is not None and err[1] == "exec":
        raise OSError(err[0], os.strerror(err[0]), argv[0])
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
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with the command served by ``kernel`` (see ``supervise``)."""
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
    try:
        for p in pumps:
            p.start()
        code = supervise(kernel, args, env=env, cwd=cwd, stdio=(cin, cout, cerr), timeout=timeout)
    finally:
        for fd in keep:
            REAL.close(fd)
        for p in pumps:
            p.join()
    out, err = (b"".join(outs[i]) if outs[i] else None for i in (1, 2))
    res: subprocess.CompletedProcess[Any] = subprocess.CompletedProcess(
        list(args), code, _text(out, text), _text(err, text)
    )
    if check:
        res.check_returncode()
    return res


def _text(data: bytes | None, text: bool) -> Any:
    return data.decode() if text and data is not None else data
