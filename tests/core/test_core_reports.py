"""Failure reports a user reads: an errno from the kernel shows the program's frames only
(no dispatcher, syscall or driver frames, no chained noise), ``mockkernel run
--check-leaks`` fails where the fixture fails and names the line that opened a leaked fd."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import mockkernel
from mockkernel import Kernel
from mockkernel.errors import hide_kernel_frames, kerr

PROGRAM = """
import fcntl, os, struct

def create(dev):
    return fcntl.ioctl(dev, 0x40187542, struct.pack("=IIQQ", 99, 0, 0, 4096))

dev = os.open("/dev/udmabuf", os.O_RDWR)
create(dev)
"""

LEAKY = """
import os
os.open("/dev/udmabuf", os.O_RDWR)
"""


def _run(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    prog = tmp_path / "prog.py"
    prog.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", *args, str(prog)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "MOCKKERNEL_FULL_TRACEBACK"},
    )


def test_a_kernel_errno_shows_the_programs_frames_only(tmp_path: Path) -> None:
    run = _run(tmp_path, PROGRAM)
    assert run.returncode == 1
    files = [line for line in run.stderr.splitlines() if line.strip().startswith("File ")]
    assert len(files) == 2 and all("prog.py" in f for f in files), run.stderr
    assert "in create" in files[1]
    assert "OSError: [Errno 77]" in run.stderr and "During handling" not in run.stderr


def test_check_leaks_fails_on_an_fd_left_open_and_names_its_line(tmp_path: Path) -> None:
    run = _run(tmp_path, LEAKY, "--check-leaks")
    assert run.returncode == 70, run.stderr
    assert "fd 3: /dev/udmabuf (opened at prog.py:3 in <module>)" in run.stderr
    assert _run(tmp_path, LEAKY).returncode == 0, "without --check-leaks: reported only"


def test_a_bug_keeps_its_whole_traceback() -> None:
    def kernel_side() -> None:
        raise KeyError("a driver bug")

    try:
        kernel_side()
    except KeyError as e:
        assert not hide_kernel_frames(e)
        assert e.__traceback__ is not None


def test_a_chained_kernel_error_loses_its_kernel_context() -> None:
    with mockkernel.boot() as kernel:
        try:
            kernel.init_process.sys_close(12345)
        except OSError as e:
            err = e
    assert hide_kernel_frames(err)
    tb = err.__traceback__
    while tb is not None:
        assert "mockkernel" not in str(tb.tb_frame.f_globals.get("__name__"))
        tb = tb.tb_next
    plain = kerr(9)
    assert not hide_kernel_frames(plain), "never raised: nothing to trim"


def test_during_handling_noise_from_inside_the_kernel_is_dropped() -> None:
    ns: dict[str, object] = {"__name__": "mockkernel.fake_driver", "kerr": kerr}
    exec(
        "def op():\n    try:\n        {}['x']\n    except KeyError:\n        raise kerr(22)\n",
        ns,
    )
    try:
        ns["op"]()  # type: ignore[operator]
    except OSError as e:
        err = e
    assert isinstance(err.__context__, KeyError)
    assert hide_kernel_frames(err)
    assert err.__suppress_context__ and err.__cause__ is None
    assert err.__traceback__ is not None  # this test's own frame stays
    assert err.__traceback__.tb_frame.f_code.co_name.startswith("test_during")


INNER = """
import fcntl, os, struct

def test_errno(mock_kernel):
    dev = os.open("/dev/udmabuf", os.O_RDWR)
    try:
        fcntl.ioctl(dev, 0x40187542, struct.pack("=IIQQ", 99, 0, 0, 4096))
    finally:
        os.close(dev)
"""


def test_pytest_shows_the_tests_frames_only(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout
    assert "1 failed" in out and "OSError: [Errno 77]" in out, out
    for name in ("hotpath.py", "ioctl.py", "mockkernel_udmabuf", "During handling"):
        assert name not in out, out


def test_a_bad_argument_to_a_redirected_call_shows_the_callers_frames_only(
    mock_kernel: Kernel,
) -> None:
    """``fcntl.fcntl(None, ...)``: the ``TypeError`` CPython's C function would raise, with
    no frame of the redirection (it raised it, about its arguments)."""
    try:
        fcntl.fcntl(None, fcntl.F_GETFL)  # type: ignore[call-overload]
    except TypeError as e:
        err = e
    assert hide_kernel_frames(err)
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_globals["__name__"])
        tb = tb.tb_next
    assert frames == [__name__], frames


def test_a_type_error_deeper_in_the_kernel_is_a_bug_and_kept() -> None:
    ns: dict[str, object] = {"__name__": "mockkernel.fake_driver"}
    exec("def op():\n    return len(3)\n", ns)
    try:
        ns["op"]()  # type: ignore[operator]
    except TypeError as e:
        err = e
    assert not hide_kernel_frames(err)
