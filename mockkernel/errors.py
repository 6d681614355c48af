"""Errors: every failure a syscall can report is an ``OSError`` with the kernel's errno."""

from __future__ import annotations

import os

__all__ = ["KernelBug", "LeakError", "kerr"]


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
