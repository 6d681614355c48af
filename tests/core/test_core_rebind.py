"""Names bound at import in *any* loaded module reach the mock (the library under test, not
only the test module), the opt-out list and explicit modules work, everything is put back
after uninstall, and a failing test that also leaks is reported once, briefly."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL
from mockkernel.userspace.rebind import skipped

Factory = Callable[..., Kernel]


@pytest.fixture
def helper() -> Iterator[types.ModuleType]:
    """A loaded 'library' that bound the real functions at import."""
    mod = types.ModuleType("mk_helper_lib")
    exec(
        "from os import open as os_open, close\nfrom fcntl import ioctl\nimport os\n",
        mod.__dict__,
    )
    sys.modules[mod.__name__] = mod
    try:
        yield mod
    finally:
        del sys.modules[mod.__name__]


def test_a_loaded_module_is_rebound_and_restored(
    mock_kernel_factory: Factory, helper: types.ModuleType
) -> None:
    kernel = mock_kernel_factory()
    with kernel.installed() as redir:
        assert helper.ioctl is fcntl.ioctl is redir.funcs["ioctl"]
        assert helper.os_open is redir.funcs["open"]
        fd = helper.os_open("/dev/udmabuf", os.O_RDWR)
        assert fd in kernel.init_process.files
        helper.close(fd)
        with kernel.paused():
            assert helper.ioctl is REAL.ioctl and os.open is REAL.open
        assert helper.ioctl is redir.funcs["ioctl"]
    assert helper.ioctl is REAL.ioctl and helper.os_open is REAL.open
    assert helper.close is REAL.close and helper.os is os


def test_a_module_bound_after_a_first_scan_is_rescanned(
    mock_kernel_factory: Factory, helper: types.ModuleType
) -> None:
    kernel = mock_kernel_factory()
    with kernel.installed():
        pass
    exec("from os import read as os_read", helper.__dict__)  # the namespace changed size
    with kernel.installed() as redir:
        assert helper.os_read is redir.funcs["read"]
    assert helper.os_read is REAL.read


def test_opt_out_and_explicit_modules(
    mock_kernel_factory: Factory, helper: types.ModuleType
) -> None:
    kernel = mock_kernel_factory()
    with kernel.installed(skip=["mk_helper_lib"]):
        assert helper.ioctl is REAL.ioctl, "an opted-out module keeps the real function"
    with kernel.installed(skip=["mk_helper_lib"], modules=["mk_helper_lib"]) as redir:
        assert helper.ioctl is redir.funcs["ioctl"], "naming a module wins over the skip list"
    with pytest.raises(LookupError, match="not imported"), kernel.installed(modules=["mk_nope"]):
        pass
    assert helper.ioctl is REAL.ioctl and fcntl.ioctl is REAL.ioctl


def test_what_is_skipped_by_default() -> None:
    assert skipped("os") and skipped("json.decoder") and skipped("mockkernel.fs")
    assert skipped("mockkernel_udmabuf") and skipped("_pytest.fixtures")
    assert not skipped("mylib") and not skipped("pytest_mylib")
    assert skipped("mylib.sub", ["mylib"]) and not skipped("mylibrary", ["mylib"])


LIB = """
from os import open as os_open, close as os_close
from fcntl import ioctl

def open_udmabuf():
    return os_open("/dev/udmabuf", 2)
"""

TESTS = """
import os
import pytest
import mylib
from mockkernel.realfd import REAL

def test_library_reaches_the_mock(mock_kernel):
    fd = mylib.open_udmabuf()
    assert fd in mock_kernel.init_process.files
    mylib.os_close(fd)

def test_restored_afterwards():
    assert mylib.os_open is REAL.open and mylib.ioctl is REAL.ioctl

@pytest.mark.mockkernel(skip_modules=["mylib"])
def test_opted_out(mock_kernel):
    assert mylib.os_open is REAL.open

def test_fails_and_leaks(mock_kernel):
    mylib.open_udmabuf()
    assert False, "the test's own failure"

def test_leaks(mock_kernel):
    mylib.open_udmabuf()
"""


def test_the_fixture_serves_the_code_under_test(tmp_path: Path) -> None:
    (tmp_path / "mylib.py").write_text(LIB)
    (tmp_path / "test_lib.py").write_text(textwrap.dedent(TESTS))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        },
    )
    out = proc.stdout + proc.stderr
    assert "1 failed, 4 passed, 1 error" in out, out
    # the failing test is reported once (its failure), the leak of the passing one briefly
    assert out.count("still alive at shutdown") == 2, out  # the error + the failed test's section
    assert "ERROR at teardown of test_leaks" in out and "ERROR at teardown of test_fails" not in out
    assert "opened at mylib.py:6 in open_udmabuf" in out, out
    teardown = out[out.index("ERROR at teardown of test_leaks") :].split("=====")[0]
    assert len(teardown.splitlines()) < 8, teardown  # no fixture or shutdown source


def test_the_ini_opt_out_list(tmp_path: Path) -> None:
    (tmp_path / "mylib.py").write_text(LIB)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmockkernel_skip_modules =\n    mylib\n")
    (tmp_path / "test_ini.py").write_text(
        "import pytest, mylib\n"
        "from mockkernel.realfd import REAL\n"
        "def test_left_alone(mock_kernel):\n"
        "    assert mylib.os_open is REAL.open\n"
        "@pytest.mark.mockkernel(modules=['mylib'])\n"
        "def test_named_wins(mock_kernel):\n"
        "    assert mylib.os_open is not REAL.open\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        },
    )
    assert "2 passed" in proc.stdout, proc.stdout + proc.stderr
