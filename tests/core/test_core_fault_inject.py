"""Fault injection as Linux offers it: ``fail-nth``, fault points, ``run --fail-nth``, sweeps.

``/proc/thread-self/fail-nth`` (and ``/proc/self/fail-nth``, the main thread's): write N
and the Nth fault point the task reaches fails; the file then reads 0; a positive value
means the task reached fewer points.  Every example is swept: each fault point failed
once must end in an errno the program sees, never a traceback out of the kernel or a
leak.
"""

from __future__ import annotations

import errno
import io
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mockkernel
from mockkernel import Kernel
from mockkernel.fault_inject import FAULT_SITES, FaultInject, should_fail
from mockkernel.testing.faults import sweep_program
from mockkernel.uaccess import cpu_fault
from mockkernel.userspace.runner import run_program

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _err(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except OSError as e:
        return errno.errorcode[e.errno or 0]


def _read(fd: int) -> bytes:
    return os.pread(fd, 32, 0)


def test_fail_nth_fails_the_nth_point_then_reads_zero(mock_kernel: Kernel) -> None:
    fnth = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    try:
        assert _read(fnth) == b"0\n"
        assert os.write(fnth, b"1\n") == 2
        assert _read(fnth) == b"1\n"
        assert _err(os.open, "/dev/udmabuf", os.O_RDWR) == "ENOMEM"  # alloc_fd
        assert _read(fnth) == b"0\n"
        fd = os.open("/dev/udmabuf", os.O_RDWR)  # spent: nothing fails any more
        os.close(fd)
        assert mock_kernel.subsys(FaultInject).injected == [
            ("alloc_fd", mock_kernel.init_process.pid)
        ]
        os.write(fnth, b"1000")  # more than the call reaches: the rest is left
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        os.close(fd)
        left = int(_read(fnth))
        assert 0 < left < 1000
        os.write(fnth, b"0")  # 0 disarms
        assert cpu_fault() is None
    finally:
        os.close(fnth)


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"7", 7),
        (b"7\n", 7),
        (b"+7", 7),
        (b"0x1f", 31),
        (b"010", 8),
        (b"0", 0),
        (b"4294967295", 0xFFFFFFFF),
        (b"4294967296", "ERANGE"),
        (b"08", "EINVAL"),
        (b"0x", "EINVAL"),
        (b"-1", "EINVAL"),
        (b" 1", "EINVAL"),
        (b"1 ", "EINVAL"),
        (b"1_0", "EINVAL"),
        (b"1\n\n", "EINVAL"),
        (b"abc", "EINVAL"),
    ],
)
def test_fail_nth_parses_as_kstrtouint(mock_kernel: Kernel, data: bytes, want: object) -> None:
    fnth = os.open("/proc/self/fail-nth", os.O_RDWR)
    try:
        got = _err(os.write, fnth, data)
        if isinstance(want, int):
            assert got == len(data)
            assert _read(fnth) == f"{want}\n".encode()
        else:
            assert got == want
        os.write(fnth, b"0")
    finally:
        os.close(fnth)


@given(st.integers(min_value=1, max_value=0xFFFFFFFF))
def test_any_count_reads_back(n: int) -> None:
    kernel = mockkernel.boot()
    try:
        with kernel.install():
            fnth = os.open("/proc/self/fail-nth", os.O_RDWR)
            try:
                os.write(fnth, str(n).encode())
                assert _read(fnth) == f"{n}\n".encode()  # (its own I/O is no fault point)
                os.write(fnth, b"0")
            finally:
                os.close(fnth)
    finally:
        kernel.shutdown()


def test_each_thread_has_its_own_count(mock_kernel: Kernel) -> None:
    fnth = os.open("/proc/self/fail-nth", os.O_RDWR)  # the main thread's
    os.write(fnth, b"1")
    seen: list[object] = []

    def other() -> None:  # another thread's points are not counted against it
        fd = os.open("/dev/udmabuf", os.O_RDWR)
        os.close(fd)
        with open("/proc/thread-self/fail-nth") as f:
            seen.append(f.read())
        with open(f"/proc/self/task/{threading.get_native_id()}/fail-nth") as f:
            seen.append(f.read())

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == ["0\n", "0\n"]
    assert _read(fnth) == b"1\n"
    assert _err(os.open, "/dev/udmabuf", os.O_RDWR) == "ENOMEM"
    assert _read(fnth) == b"0\n"
    os.close(fnth)


def test_should_fail_is_off_without_a_count(mock_kernel: Kernel) -> None:
    assert cpu_fault() is None
    assert not any(should_fail(mock_kernel, site) for site in FAULT_SITES)


def test_run_fail_nth_fails_the_program(tmp_path: Path) -> None:
    out = io.StringIO()
    status = run_program(str(EXAMPLES / "udmabuf_demo.py"), [], fail_nth=1, report=out)
    assert status == 1  # the program's own traceback: ENOMEM from os.open
    assert out.getvalue() == ""  # and nothing leaked


@pytest.mark.parametrize(
    ("name", "args", "sites"),
    [
        ("udmabuf_demo.py", (), {"alloc_fd", "dma_buf_export", "copy_from_user"}),
        ("vfio_tph_demo.py", (), {"alloc_fd", "dma_buf_export", "copy_from_user"}),
        ("rdma_dmabuf_mr.py", (), {"uverbs_obj", "map_dma_buf", "dma_buf_attach"}),
        ("netdev_bind_rx.py", ("eth0", "3"), {"netlink_skb", "map_dma_buf"}),
    ],
)
def test_sweep_of_the_examples_is_clean(name: str, args: tuple[str, ...], sites: set[str]) -> None:
    report = sweep_program(str(EXAMPLES / name), args)
    report.assert_clean()
    assert len(report.points) >= 5
    assert sites <= {p.site for p in report.points}
    for p in report.points:  # every injected fault reached the program as an errno
        assert p.site is not None


def test_cli_sweep_and_run_fail_nth(capsys: pytest.CaptureFixture[str]) -> None:
    from mockkernel.cli import main

    assert main(["sweep", str(EXAMPLES / "udmabuf_demo.py")]) == 0
    out = capsys.readouterr().out
    assert "alloc_fd" in out and out.rstrip().endswith("fault point(s), 0 not clean")
    assert main(["run", "--fail-nth", "3", str(EXAMPLES / "udmabuf_demo.py")]) == 1
    assert "Cannot allocate memory" in capsys.readouterr().err  # the program's traceback
