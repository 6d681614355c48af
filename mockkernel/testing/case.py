"""unittest support: :class:`MockKernelTestCase` and :class:`MockKernelMixin`.

Each test gets a fresh kernel as ``self.kernel``, installed (names bound in loaded
modules redirected too), uninstalled and shut down with the leak check by a cleanup.
Class attributes choose what boots: ``mockkernel_topology``, ``mockkernel_uapi``,
``mockkernel_plugins``, and which modules' names are rebound:
``mockkernel_skip_modules``, ``mockkernel_modules``.
"""

from __future__ import annotations

import unittest
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

from ..kernel import Kernel
from ..lifecycle import boot

__all__ = ["MockKernelMixin", "MockKernelTestCase"]


class MockKernelMixin:
    """Mix into a ``unittest.TestCase``; call :meth:`setUpMockKernel` from ``setUp``."""

    mockkernel_topology: ClassVar[Any] = None
    mockkernel_uapi: ClassVar[str | None] = None
    mockkernel_plugins: ClassVar[Sequence[object]] = ()
    mockkernel_skip_modules: ClassVar[Sequence[str]] = ()
    mockkernel_modules: ClassVar[Sequence[ModuleType | str]] = ()
    kernel: Kernel

    def setUpMockKernel(self) -> Kernel:
        """Boot and install a kernel for this test; the cleanup checks for leaks."""
        kernel = boot(
            self.mockkernel_topology, uapi=self.mockkernel_uapi, plugins=self.mockkernel_plugins
        )
        try:
            redir = kernel.install(
                skip=self.mockkernel_skip_modules, modules=self.mockkernel_modules
            )
        except BaseException:
            kernel.shutdown(check=False)
            raise

        def teardown() -> None:
            redir.uninstall()
            kernel.shutdown(check=not self._mockkernel_failed())

        kernel.record_openers = True  # leak reports name the line that opened an fd
        self.addCleanup(teardown)  # type: ignore[attr-defined]
        self.kernel = kernel
        return kernel

    def _mockkernel_failed(self) -> bool:
        """Whether this test already failed (then it is reported once, for its failure,
        and the leaks are cleaned up without a second report).  Read from the result
        unittest is filling in; a result that keeps no lists means "not known"."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        reported = [*getattr(result, "failures", ()), *getattr(result, "errors", ())]
        return any(test is self for test, _ in reported)


class MockKernelTestCase(MockKernelMixin, unittest.TestCase):
    """A ``TestCase`` whose every test runs against a fresh, installed ``self.kernel``."""

    def setUp(self) -> None:
        super().setUp()
        self.setUpMockKernel()
