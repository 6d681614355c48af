"""The entry points a user would guess: ``with boot() as k, k.installed()``, ``k.install()``
installing at once (and staying compatible with ``.install()`` after it), the decorator,
pause/resume, the unittest ``TestCase``."""

from __future__ import annotations

import inspect
import os
import unittest

import pytest

import mockkernel
from mockkernel.errors import LeakError
from mockkernel.realfd import REAL
from mockkernel.testing import MockKernelMixin, MockKernelTestCase
from mockkernel.userspace.redirect import Redirection

DEV = "/dev/udmabuf"


def test_kernel_is_a_context_manager_with_the_leak_check() -> None:
    with pytest.raises(LeakError, match="udmabuf"), mockkernel.boot() as kernel, kernel.installed():
        os.open(DEV, os.O_RDWR)
    assert kernel.is_shut_down and os.open is REAL.open


def test_an_error_in_the_block_is_reported_alone() -> None:
    with pytest.raises(ZeroDivisionError), mockkernel.boot() as kernel, kernel.installed():
        os.open(DEV, os.O_RDWR)
        1 / 0  # noqa: B018
    assert kernel.is_shut_down and Redirection.active is None


def test_install_installs_now_and_stays_compatible() -> None:
    with mockkernel.boot() as kernel:
        redir = kernel.install()
        assert redir.installed and Redirection.active is redir
        redir.install()  # the old two-step shape: a no-op once
        with pytest.raises(RuntimeError, match="already installed"):
            redir.install()
        redir.uninstall()
        assert os.open is REAL.open
        with kernel.install() as r2:  # `with kernel.install():` installs once
            assert r2.installed
        assert Redirection.active is None


def test_leaving_the_with_block_uninstalls_a_forgotten_redirection() -> None:
    with mockkernel.boot() as kernel:
        kernel.install()
    assert Redirection.active is None and os.open is REAL.open and kernel.is_shut_down


def test_pause_and_resume() -> None:
    with mockkernel.boot() as kernel, kernel.installed() as redir:
        fd = os.open(DEV, os.O_RDWR)
        patched = os.open
        with kernel.paused():
            assert os.open is REAL.open and redir.is_paused
            with kernel.paused():  # nested: still paused after the inner block
                pass
            assert redir.is_paused
        assert os.open is patched and not redir.is_paused
        redir.pause()
        redir.uninstall()  # while paused: everything real, nothing left behind
        assert os.open is REAL.open and Redirection.active is None
        kernel.init_process.sys_close(fd)
    with (
        mockkernel.boot() as other,
        pytest.raises(RuntimeError, match="not installed"),
        other.paused(),
    ):
        pass


def test_with_kernel_decorator() -> None:
    seen = []

    @mockkernel.with_kernel
    def plain(x: int, kernel: mockkernel.Kernel) -> int:
        seen.append(kernel)
        assert os.open is not REAL.open
        return x + 1

    assert "kernel" not in inspect.signature(plain).parameters, "not a pytest fixture name"
    assert plain(1) == 2 and seen[0].is_shut_down and os.open is REAL.open

    @mockkernel.with_kernel(install=False)
    def leaky(kernel: mockkernel.Kernel) -> None:
        kernel.init_process.sys_openat(-100, DEV, os.O_RDWR, 0)

    with pytest.raises(LeakError):
        leaky()


def test_unittest_case() -> None:
    class Case(MockKernelTestCase):
        def test_ok(self) -> None:
            fd = os.open(DEV, os.O_RDWR)
            self.assertIn(fd, self.kernel.init_process.files)
            os.close(fd)

        def test_leak(self) -> None:
            os.open(DEV, os.O_RDWR)

        def test_fails_and_leaks(self) -> None:
            os.open(DEV, os.O_RDWR)
            self.fail("the test's own failure")

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert result.testsRun == 3
    assert len(result.failures) == 1 and "own failure" in result.failures[0][1], "reported once"
    assert len(result.errors) == 1 and "test_leak" in str(result.errors[0][0])
    assert "still alive" in result.errors[0][1]
    assert os.open is REAL.open


def test_unittest_mixin_in_the_users_own_test_case() -> None:
    """``MockKernelMixin`` in a ``TestCase`` of the user's own (its own ``setUp``), with
    the class attributes choosing what boots."""

    class Base(unittest.TestCase):
        def setUp(self) -> None:
            self.prepared = True

    class Case(MockKernelMixin, Base):
        mockkernel_uapi = "linux-7.2"

        def setUp(self) -> None:
            super().setUp()
            self.setUpMockKernel()

        def test_ok(self) -> None:
            assert self.prepared and self.kernel.uapi.name == "linux-7.2"
            fd = os.open(DEV, os.O_RDWR)
            self.assertIn(fd, self.kernel.init_process.files)
            os.close(fd)

        def test_leak(self) -> None:
            os.open(DEV, os.O_RDWR)

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert result.testsRun == 2 and not result.failures, result.failures
    assert len(result.errors) == 1 and "test_leak" in str(result.errors[0][0])
    assert "still alive" in result.errors[0][1]
    assert os.open is REAL.open and Redirection.active is None
