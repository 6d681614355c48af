"""Errors: every failure a syscall can report is an ``OSError`` with the kernel's errno."""

from __future__ import annotations

import errno
import os

__all__ = ["FORKED_MESSAGE", "ForkedKernelError", "KernelBug", "LeakError", "NotMine", "kerr"]


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
