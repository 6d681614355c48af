"""The real fds the kernel holds are not the program's (issue 12, defects 2 and 3).

On Linux a number the program never opened is not open at all: ``close`` is ``EBADF``,
``closerange`` leaves the kernel's files alone and ``dup2`` onto it simply takes it.
Under the redirection those numbers hold the kernel's own real fds (placeholders, the
memfds behind udmabufs, BAR memory); the program's calls must never reach them.  And
``close`` of a mock fd drops its file even when the real fd underneath is already gone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from core_helpers import make_udmabuf, udmabuf

from mockkernel.fs import FileTable
from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL, Placeholders, held, held_fds

ROOT = Path(__file__).resolve().parents[2]
libc = ctypes.CDLL(None, use_errno=True)


def _open_really(fd: int) -> bool:
    try:
        REAL.fcntl(fd, 1)  # F_GETFD
    except OSError:
        return False
    return True


def test_close_of_a_held_number_is_ebadf(mock_kernel: Kernel) -> None:
    with udmabuf():
        pass
    numbers = held_fds(mock_kernel)
    assert numbers  # the udmabuf placeholder at least
    for n in numbers:
        with pytest.raises(OSError) as e:
            os.close(n)
        assert e.value.errno == errno.EBADF
        assert _open_really(n)
    with udmabuf() as fd:  # the kernel still works
        assert os.fstat(fd).st_size > 0


def test_dup_of_a_held_number_is_ebadf(mock_kernel: Kernel) -> None:
    with udmabuf():
        pass
    n = min(held_fds(mock_kernel))
    for call in (lambda: os.dup(n), lambda: os.dup2(n, 200)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EBADF


def test_dup2_onto_a_placeholder_moves_the_kernels_fd(mock_kernel: Kernel) -> None:
    with udmabuf():
        pass
    ph = mock_kernel.subsys(Placeholders)
    target = ph.get("dmabuf")
    r, w = os.pipe()
    try:
        assert os.dup2(r, target) == target  # the number is now the program's pipe
        assert not held(mock_kernel, target)
        os.write(w, b"x")
        assert os.read(target, 1) == b"x"
        moved = ph.get("dmabuf")
        assert moved != target and held(mock_kernel, moved)
        os.close(target)
        with udmabuf() as fd:  # mock fds are still made from the moved placeholder
            assert os.fstat(fd).st_size > 0
            assert os.readlink(f"/proc/self/fd/{fd}").startswith("/dmabuf:")
    finally:
        os.close(r)
        os.close(w)


def test_close_drops_the_file_when_the_real_fd_is_gone(mock_kernel: Kernel) -> None:
    memfd, fd = make_udmabuf()
    os.close(memfd)
    before = len(mock_kernel.subsys(FileTable).files)
    assert libc.close(fd) == 0  # the placeholder dup under the mock fd goes behind our back
    os.close(fd)  # Linux's close always drops the file
    assert fd not in mock_kernel.init_process.files
    assert len(mock_kernel.subsys(FileTable).files) == before - 1
    # (and the fixture's shutdown finds no leak)


def test_close_after_the_number_was_reused_drops_the_file(mock_kernel: Kernel) -> None:
    memfd, fd = make_udmabuf()
    os.close(memfd)
    assert libc.close(fd) == 0
    assert libc.dup(0) >= 0  # a stale real fd reuses the number under the mock fd
    os.close(fd)
    assert fd not in mock_kernel.init_process.files


PROGRAM = """
import fcntl, os, struct, sys
sys.path.insert(0, {tests!r})
from core_helpers import make_udmabuf
memfd, fd = make_udmabuf()
os.close(memfd)
os.closerange(3, 65536)   # the daemon idiom
try:
    os.fstat(fd)
except OSError as e:
    print("closed", e.errno)
memfd, fd = make_udmabuf()  # every device kind still works
print("size", os.fstat(fd).st_size)
os.close(fd)
os.close(memfd)
sys.exit(7)
"""


def test_closerange_leaves_the_kernel_alone(tmp_path: Path) -> None:
    prog = tmp_path / "daemon.py"
    prog.write_text(textwrap.dedent(PROGRAM.format(tests=str(ROOT / "tests" / "core"))))
    done = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", str(prog)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.stdout.split("\n")[:2] == [f"closed {errno.EBADF}", "size 8192"], done.stderr
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr
