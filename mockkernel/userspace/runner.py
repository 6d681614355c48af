"""``mockkernel run``: boot, install, run a program as ``__main__``, report leaks."""

from __future__ import annotations

import gc
import os
import runpy
import sys
import traceback
from typing import IO

from ..errors import hide_kernel_frames
from ..fault_inject import FaultInject
from ..lifecycle import boot
from ..realfd import hold
from ..topology import Topology

__all__ = ["run_program"]


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_program(
    path: str,
    args: list[str],
    *,
    topology: Topology | str | None = None,
    trace: IO[str] | None = None,
    uapi: str | None = None,
    check_leaks: bool = False,
    report: IO[str] | None = None,
    fail_nth: int = 0,
) -> int:
    """Run ``path`` unchanged against a fresh kernel; returns the exit status.

    After the program ends its fds are closed, as the kernel does at exit.  Fds
    it left open are reported (that is legal, but often a bug in a test
    program); objects still alive after that -- dma-bufs, attachments, held
    locks, warnings -- are kernel-side leaks.  With ``check_leaks`` either makes
    the status 70 (``EX_SOFTWARE``) when the program itself succeeded -- what the
    pytest fixture fails a test for -- and each fd names the line that opened it.  ``fail_nth``
    is written to the program's ``/proc/self/fail-nth`` before it starts.
    """
    out = report if report is not None else sys.stderr
    kernel = boot(topology, uapi=uapi)
    kernel.record_openers = check_leaks
    if trace is not None:
        hold(kernel, trace.fileno())  # the kernel's: the program may not close it
        kernel.tracer.json_lines(trace)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    status = 0
    try:
        with kernel.install(rebind=True):
            if fail_nth:
                kernel.subsys(FaultInject).arm(kernel.init_process, fail_nth)
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as e:
                status = _exit_status(e.code)
            except BaseException as e:  # the program's own traceback, as python would print it
                hide_kernel_frames(e)  # (an errno from the kernel: the program's frames only)
                tb = e.__traceback__  # from the program's first frame, as python shows it
                while tb is not None and tb.tb_frame.f_globals.get("__name__") != "__main__":
                    tb = tb.tb_next
                traceback.print_exception(type(e), e, tb or e.__traceback__)
                status = 1
            gc.collect()  # unmap what the program dropped, as exit would
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    proc = kernel.init_process
    left = sorted(proc.files.items())
    if left:
        out.write(f"mockkernel: the program left {len(left)} fd(s) open; closed at exit:\n")
        for fd, file in left:
            where = kernel.opened_at(file)
            out.write(f"  fd {fd}: {file.link_name}{f' (opened at {where})' if where else ''}\n")
        if check_leaks and status == 0:
            status = 70
    proc.exit()
    leaks = kernel.shutdown(check=False)
    if leaks:
        out.write(f"mockkernel: {len(leaks)} leak(s) after the program exited:\n")
        for leak in leaks:
            out.write(f"  - {leak}\n")
        if check_leaks and status == 0:
            status = 70
    return status
