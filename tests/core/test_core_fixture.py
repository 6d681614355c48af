"""The ``mock_kernel`` fixture rebinds names this module bound at import (the pyfakefs trap),
restores them afterwards, and fails a test that leaks."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from fcntl import ioctl
from os import close as os_close
from os import open as os_open
from pathlib import Path

from core_helpers import DEV, PAGE, sealed_memfd

from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL
from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE


def test_names_bound_at_import_reach_the_mock(mock_kernel: Kernel) -> None:
    assert ioctl is not REAL.ioctl and os_open is not REAL.open and os_close is not REAL.close
    dev = os_open(DEV, os.O_RDWR)
    memfd = sealed_memfd(PAGE)
    try:
        fd = ioctl(dev, UDMABUF_CREATE, bytearray(struct.pack("=IIQQ", memfd, 0, 0, PAGE)))
        assert fd in mock_kernel.init_process.files
        assert os.fstat(fd).st_size == PAGE
        os_close(fd)
    finally:
        os_close(dev)
        os_close(memfd)


INNER = """
import os
from fcntl import ioctl

from mockkernel.realfd import REAL


def test_a_rebound(mock_kernel):
    assert ioctl is not REAL.ioctl


def test_b_restored():
    assert ioctl is REAL.ioctl
    assert os.open is REAL.open


def test_c_leaks_an_fd(mock_kernel):
    os.open("/dev/udmabuf", os.O_RDWR)


def test_d_clean_after_a_leak(mock_kernel):
    assert not mock_kernel.init_process.files
    assert ioctl is not REAL.ioctl
"""


def test_fixture_restores_names_and_reports_leaks(tmp_path: Path) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(INNER))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-q",
            "-s",
            str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert "4 passed, 1 error" in out, out  # test_c passes; its teardown is the error
    assert "ERROR at teardown of test_c_leaks_an_fd" in out, out
    assert (
        "still alive at shutdown" in out and "still open: <File" in out and "/dev/udmabuf" in out
    ), out
    assert "Traceback" not in proc.stderr, out
