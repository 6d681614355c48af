"""Errors: every failure a syscall can report is an ``OSError`` with the kernel's errno."""

from __future__ import annotations

import errno
import os
from types import FrameType, TracebackType

__all__ = [
    "FORKED_MESSAGE",
    "ForkedKernelError",
    "KernelBug",
    "LeakError",
    "NotMine",
    "hide_kernel_frames",
    "kernel_frame",
    "kerr",
]


def kerr(code: int, detail: str | None = None) -> OSError:
    """The ``OSError`` a syscall raises for ``-code`` (``raise kerr(EINVAL)``)."""
    if detail is None:
        return OSError(code, os.strerror(code))
    return OSError(code, f"{os.strerror(code)} ({detail})")


class KernelBug(RuntimeError):
    """A driver broke a kernel rule (``WARN``/``BUG`` in Linux): wrong lock held, bad ops."""


class LeakError(RuntimeError):
    """``Kernel.shutdown()`` found objects still alive; ``leaks`` lists them."""

    def __init__(self, leaks: list[str]) -> None:
        self.leaks = leaks
        lines = "\n".join(f"  - {leak}" for leak in leaks)
        super().__init__(f"mockkernel: {len(leaks)} object(s) still alive at shutdown:\n{lines}")


class NotMine(Exception):
    """A path-based syscall's answer "this path is not the mock kernel's".

    Raised by :mod:`mockkernel.syscalls` (``Process.sys_openat``, ``sys_newfstatat``,
    ``sys_faccessat``, ``sys_readlinkat``, ...) for a path no mock node answers: an
    absolute path outside the mock tree or an overlay directory (``/``, ``/dev``), or a
    relative path whose ``dirfd`` is ``AT_FDCWD`` or a real fd.  The front-end then
    makes the real call instead: the in-process redirection calls the real function,
    a supervisor lets the tracee's syscall continue.

    ``path``, when not ``None``, is the absolute path the real call must use in place
    of ``(dirfd, path)``: a relative path under a mock directory fd that leads out of
    the mock tree (``openat(vfio_dirfd, "../null")``), whose dirfd the real OS does
    not know.  It is not an ``OSError``: no errno was decided.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(path)
        self.path = path


#: What a forked child of an in-process program is told when it uses a mock fd or path.
FORKED_MESSAGE = (
    "mockkernel: this process is a fork of an in-process mock-kernel program, and the "
    "in-process kernel is not shared with forked children; run the program supervised "
    "(mockkernel run --supervise PROGRAM.py, or Kernel.run([...]) in a test) to fork"
)


class ForkedKernelError(OSError):
    """A mock fd or path used by a forked child of an in-process program (``ENOSYS``):
    the child must not silently run on a private copy of the kernel
    (``userspace/redirect.py``, ``Redirection.forked_child``)."""

    def __init__(self) -> None:
        super().__init__(errno.ENOSYS, FORKED_MESSAGE)


def kernel_frame(frame: FrameType) -> bool:
    """Whether ``frame`` runs mockkernel's code (the package or a bundled driver)."""
    return str(frame.f_globals.get("__name__", "")).startswith("mockkernel")


def _raised_by_kernel(tb: TracebackType | None) -> bool:
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return kernel_frame(tb.tb_frame)


#: What CPython's own argument parsing raises (``fcntl.fcntl(fd, cmd, 1.5)``): the
#: redirected calls raise them the same way, from ``mockkernel.userspace``.
_ARGUMENT_ERRORS = (TypeError, ValueError, OverflowError)


def _raised_by_syscall_entry(tb: TracebackType | None) -> bool:
    """Raised in the redirected functions themselves (their argument checks), not
    deeper in the kernel or a driver (where such an exception is a bug)."""
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith("mockkernel.userspace.")


def hide_kernel_frames(exc: BaseException) -> bool:
    """Trim an ``OSError`` the mock kernel answered a redirected call with to the
    program's own frames (the dispatcher, syscall and driver frames out), and drop a
    chained exception that arose inside the kernel too (no "During handling of the
    above exception" noise).  A ``TypeError``/``ValueError``/``OverflowError`` a
    redirected function raised about its arguments (as CPython's C function would) is
    trimmed the same way.  A bug (any other exception, or one of those raised deeper)
    is left whole.  Returns whether ``exc`` was trimmed.  ``MOCKKERNEL_FULL_TRACEBACK=1``
    turns this off."""
    if os.environ.get("MOCKKERNEL_FULL_TRACEBACK"):
        return False
    if isinstance(exc, OSError):
        if not _raised_by_kernel(exc.__traceback__):
            return False
    elif not (isinstance(exc, _ARGUMENT_ERRORS) and _raised_by_syscall_entry(exc.__traceback__)):
        return False
    # the program's frames are the non-kernel ones down to the first kernel frame below
    # them: everything deeper (the kernel's, and library code the kernel called, e.g.
    # contextlib) goes; kernel frames above the program (a runner) go too
    keep: list[TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        if not kernel_frame(tb.tb_frame):
            keep.append(tb)
        elif keep:
            break
        tb = tb.tb_next
    for a, b in zip(keep, [*keep[1:], None], strict=True):
        a.tb_next = b
    exc.__traceback__ = keep[0] if keep else None
    chained = exc.__cause__ or exc.__context__
    if chained is not None and _raised_by_kernel(chained.__traceback__):
        exc.__cause__ = None
        exc.__suppress_context__ = True
    return True
