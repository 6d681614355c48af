"""C programs built with plain ``cc`` run under the supervisor, served by one kernel."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mockkernel.kernel import Kernel
from mockkernel.traceview import load, render_timeline

REPO = Path(__file__).parent.parent.parent


def python_twin_lines() -> list[str]:
    """What ``mockkernel run examples/udmabuf_demo.py`` prints (in-process mode)."""
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", str(REPO / "examples" / "udmabuf_demo.py")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return r.stdout.splitlines()


def test_udmabuf_demo_prints_what_the_python_twin_prints(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    r = kernel.run([build("udmabuf_demo")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == python_twin_lines()


def test_the_demo_trace_carries_pid_and_tid(kernel: Kernel, build: Callable[[str], str]) -> None:
    with kernel.tracer.capture() as events:
        r = kernel.run([build("udmabuf_demo")], capture_output=True, timeout=60)
    assert r.returncode == 0
    ioctls = [e for e in events if e["event"] == "sys.ioctl"]
    # UDMABUF_CREATE, SET_NAME, SYNC twice
    assert [e.get("errno") for e in ioctls] == [None] * 4
    assert all(e["tid"] == e["pid"] for e in ioctls)
    names = [e["event"] for e in events]
    assert "sup.exec" in names and "sup.exit" in names
    assert names.count("mm.mmap") == names.count("mm.munmap") == 1


def test_threads_all_served(kernel: Kernel, build: Callable[[str], str]) -> None:
    r = kernel.run([build("threads"), "4", "500"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ok 6000 of 6000", "count: 1"]


def test_a_shell_script_gets_mock_fds_and_proc(kernel: Kernel) -> None:
    script = "exec 3<>/dev/udmabuf; readlink /proc/self/fd/3; cat /proc/$$/fdinfo/3; exec 3>&-"
    r = kernel.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "/dev/udmabuf"
    assert lines[1] == "pos:\t0"
    assert lines[2] == "flags:\t0100002"  # O_RDWR | O_LARGEFILE, no O_CLOEXEC


def test_killed_mid_run_ends_cleanly(kernel: Kernel) -> None:
    r = kernel.run(["sh", "-c", "exec 3<>/dev/udmabuf; kill -9 $$"], timeout=60)
    assert r.returncode == -9
    assert kernel.leaks() == []  # the killed process's mock fd was released


def test_exec_failure_is_the_errno(kernel: Kernel) -> None:
    import pytest

    with pytest.raises(FileNotFoundError):
        kernel.run(["/nonexistent/program"])
    with pytest.raises(FileNotFoundError):
        kernel.run(["no-such-program-anywhere"])


def test_timeout_kills_the_tree(kernel: Kernel) -> None:
    import pytest

    with pytest.raises(subprocess.TimeoutExpired):
        kernel.run(["sh", "-c", "exec 3<>/dev/udmabuf; sleep 30 & sleep 30"], timeout=1)
    assert kernel.leaks() == []


def test_bufinfo_shows_a_buffer_the_test_made(kernel: Kernel, build: Callable[[str], str]) -> None:
    """The C program and the Python test share one kernel: a buffer the test made in
    its own process is listed by ``cat`` in the supervised one."""
    with kernel.install():
        memfd = os.memfd_create("t", os.MFD_ALLOW_SEALING)
        os.ftruncate(memfd, 4096)
        fcntl.fcntl(memfd, 1033, 2)  # F_ADD_SEALS, F_SEAL_SHRINK
        dev = os.open("/dev/udmabuf", os.O_RDWR)
        arg = bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096))
        buf = fcntl.ioctl(dev, 0x40187542, arg)  # UDMABUF_CREATE
        fcntl.ioctl(buf, 0x40086201, b"made-by-the-test\0")
        try:
            r = kernel.run(["cat", "/sys/kernel/debug/dma_buf/bufinfo"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
        finally:
            for fd in (buf, dev, memfd):
                os.close(fd)
    assert r.returncode == 0, r.stderr
    assert "made-by-the-test" in r.stdout


def test_python_fork_and_subprocess_share_the_kernel(kernel: Kernel) -> None:
    prog = Path(__file__).parent / "py" / "fork_and_subprocess.py"
    r = kernel.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "count: 1",
        "fork child count: 2",
        "parent sees name: set-by-fork-child",
        "subprocess sees name: set-by-fork-child",
        "parent sees name: set-by-subprocess",
        "after the subprocess, count: 1",
        "done",
    ]


def test_cli_runs_a_command_supervised(tmp_path: Path, build: Callable[[str], str]) -> None:
    trace = tmp_path / "t.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--check-leaks", "--trace", str(trace),
         "--", build("udmabuf_demo")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("udmabuf: dma-buf fd ")
    assert '"event": "sup.exec"' in trace.read_text()
    # the ioctl's argument, read from the child's memory, decoded by name
    timeline = render_timeline(load(trace.read_text().splitlines()))
    assert re.search(r"ioctl\(fd=\d+, cmd=UDMABUF_CREATE, arg=\{memfd=\d+, flags=", timeline)
    assert "cmd=DMA_BUF_IOCTL_SYNC, arg={flags=DMA_BUF_SYNC_" in timeline


def test_cli_exit_status_of_a_killed_child() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--", "sh", "-c", "kill -TERM $$"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 128 + 15


def test_cli_supervise_runs_a_python_program_supervised() -> None:
    prog = Path(__file__).parent / "py" / "fork_and_subprocess.py"
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--supervise", str(prog)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "parent sees name: set-by-subprocess" in r.stdout


def test_mock_kernel_fixture_runs_a_c_program(
    mock_kernel: Kernel, build: Callable[[str], str]
) -> None:
    """With the in-process redirection installed too (the fixture), the supervisor's own
    host calls stay real and the C program is served by the test's kernel."""
    r = mock_kernel.run([build("udmabuf_demo")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == python_twin_lines()
    assert not mock_kernel.init_process.files


def test_proc_self_maps_shows_the_dmabuf_mapping(kernel: Kernel) -> None:
    prog = Path(__file__).parent / "py" / "maps.py"
    r = kernel.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # one line, the dma-buf's own (not the memfds laid under it)
    assert r.stdout.startswith("[['rw-s', '00000000', ") and r.stdout.count("dmabuf") == 1
    assert "/dmabuf:" in r.stdout and "mockkernel" not in r.stdout


def test_multiprocessing_children_of_every_start_method(kernel: Kernel) -> None:
    prog = Path(__file__).parent / "py" / "multiproc.py"
    r = kernel.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    want = str([(i, "/dev/udmabuf") for i in range(3)])
    assert r.stdout.splitlines() == [f"{m} {want}" for m in ("fork", "spawn", "forkserver")]


def test_trace_view_has_one_lane_per_process(kernel: Kernel, build: Callable[[str], str]) -> None:
    from mockkernel.traceview import render_mermaid, render_timeline

    with kernel.tracer.capture() as events:
        r = kernel.run([build("forkexec")], capture_output=True, timeout=60)
    assert r.returncode == 0
    parent = next(e["pid"] for e in events if e["event"] == "sup.fork")
    child = next(e["child"] for e in events if e["event"] == "sup.fork")
    timeline = render_timeline(list(events))
    assert f"[{child}] ioctl(fd=" in timeline and f"[{parent}] open(path=/dev/udmabuf" in timeline
    diagram = render_mermaid(list(events))
    assert f"participant p{parent} as forkexec {parent}" in diagram
    assert f"participant p{child} as forkexec {child}" in diagram  # its parent's name
    assert f"p{parent}->>p{child}: sup.fork " in diagram  # the fork: an arrow between them
    assert re.search(rf"p{child}->>\+dmabuf: ioctl\(fd=\d+, cmd=DMA_BUF_SET_NAME\)", diagram)


def test_select_and_poll_of_a_mock_fd_ask_its_poll(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``select``/``pselect6`` are served (the placeholder memfd would always say
    readable and writable): the dma-buf's ``->poll`` decides, with fs/select.c's masks."""
    from mockkernel.dma_buf.core import dma_buf_fops
    from mockkernel.poll import EPOLLIN

    prog = Path(__file__).parent / "py" / "selects.py"
    run = [sys.executable, str(prog)]
    r = kernel.run(run, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # both ready: the dma-buf (no fences) and the pipe; no exception on a dma-buf
    assert r.stdout.splitlines() == ["select [True, False] [True, False] []", "poll 5"]
    monkeypatch.setattr(dma_buf_fops, "poll", lambda file: EPOLLIN)  # an unsignalled reader
    r = kernel.run(run, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["select [True, False] [False] []", "poll 1"]


def test_scm_rights_passes_the_mock_file(kernel: Kernel) -> None:
    """``SCM_RIGHTS`` of a mock fd (the kernel's own ``sendmsg``/``recvmsg`` of tokens):
    the receiver's fd is the same file (count 2 with the sender's), a real fd passed
    with it stays real, and a message never received leaves no file behind."""
    prog = Path(__file__).parent / "py" / "scm_rights.py"
    r = kernel.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "b'm' /dmabuf: 8192",
        "['count:\\t2']",
        "True",
        "done",
    ]
    assert kernel.leaks() == []


def test_clone_without_clone_files_copies_the_table(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    """The control of ``cloneprobe`` (whose CLONE_FILES run matches real Linux): with a
    plain clone the child's close and opens stay in its own copy of the table."""
    r = kernel.run([build("cloneprobe"), "nofiles"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "no CLONE_FILES: child exit 0",
        "the parent's udmabuf fd after the child closed it: ok",
        "fd base+0: /dev/udmabuf, name -",
        "fd base+1: -, name -",
        "fd base+2: -, name -",
        "fd base+3: -, name -",
    ]
    assert kernel.leaks() == []


def test_epoll_of_a_mock_fd_asks_its_poll(kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """``epoll_ctl`` of a mock fd is served (an eventfd mirrors its ``->poll``; the
    placeholder memfd would always say readable and writable)."""
    from mockkernel.dma_buf.core import dma_buf_fops
    from mockkernel.poll import EPOLLIN

    prog = Path(__file__).parent / "py" / "epolls.py"
    run = [sys.executable, str(prog)]
    r = kernel.run(run, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    fd = r.stdout.split("(")[1].split(",")[0]  # epoll.poll() gives (fd, events): the data
    assert r.stdout.splitlines() == [f"epoll [({fd}, 5)]", "after unregister []"]
    monkeypatch.setattr(dma_buf_fops, "poll", lambda file: EPOLLIN)  # an unsignalled reader
    r = kernel.run(run, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"epoll [({fd}, 1)]", "after unregister []"]
    assert kernel.leaks() == []


def test_cli_runs_an_executable_and_a_shebang_script_without_dashdash(
    tmp_path: Path, build: Callable[[str], str]
) -> None:
    """``mockkernel run ./prog`` (no ``--``): a program that is not a ``.py`` file is run
    supervised -- an ELF built with ``cc`` and a ``#!/bin/sh`` script, by relative path."""
    shutil.copy(build("threads"), tmp_path / "threads")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexec 3<>/dev/udmabuf\nreadlink /proc/self/fd/3\n")
    script.chmod(0o755)
    cli = [sys.executable, "-m", "mockkernel", "run", "--check-leaks"]
    r = subprocess.run([*cli, "./script"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "/dev/udmabuf\n"), r.stderr
    r = subprocess.run([*cli, "./threads", "2", "10"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ok 60 of 60", "count: 1"]
