"""Faults in a supervised tree (``tests/supervisor/c/faults.c``): each gets a documented
result, the run ends, nothing leaks, and ``--check-leaks`` sees the whole tree."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mockkernel
from mockkernel.fs import File, FileOperations
from mockkernel.kernel import Kernel
from mockkernel.supervisor.tracer import TreeTracer

GOLDEN = Path(__file__).parent.parent / "real_linux" / "golden"


def run(kernel: Kernel, build: Callable[[str], str], mode: str) -> tuple[int, list[str]]:
    r = kernel.run([build("faults"), mode], capture_output=True, text=True, timeout=60)
    assert not r.stderr, r.stderr
    return r.returncode, r.stdout.splitlines()


def golden(mode: str) -> list[str]:
    """What ``faults MODE`` printed on real Linux 7.2 (``c_faults.txt``, one section per
    mode)."""
    out: dict[str, list[str]] = {}
    for line in (GOLDEN / "c_faults.txt").read_text().splitlines():
        if line.startswith("== "):
            out[line[3:]] = []
        else:
            out[next(reversed(out))].append(line)
    return out[mode]


def test_closing_every_fd_keeps_mappings_and_the_supervisor_working(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    """``close_range(3, ~0)`` closes the mock fds (the supervisor keeps no fd of its own
    in the process: a mapping's backing fds are closed right after the injected maps):
    the mapping stays, a new dma-buf maps again, as on real Linux."""
    code, lines = run(kernel, build, "closeall")
    assert code == 0
    assert lines == golden("closeall")
    assert kernel.leaks() == []


def test_a_child_that_kills_its_parent(kernel: Kernel, build: Callable[[str], str]) -> None:
    """The root dies (its status is the run's, -9); the orphan keeps its mock fds, the
    dead parent's references go, and the run ends when the orphan does."""
    code, lines = run(kernel, build, "killparent")
    assert code == -9
    assert lines == golden("killparent")
    assert kernel.leaks() == []


def _late_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracer handles every exit 0.3 s late, as on a loaded machine (the window in
    which a process that learnt of the exit may call again)."""
    gone = TreeTracer.gone

    def late(self: TreeTracer, tid: int, status: int) -> None:
        time.sleep(0.3)
        gone(self, tid, status)

    monkeypatch.setattr(TreeTracer, "gone", late)


def test_an_orphan_sees_its_dead_parents_files_released(
    kernel: Kernel, build: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux runs ``exit_files`` before ``exit_notify`` reparents the children: an orphan
    that saw ``getppid()`` change reads ``count 1``, however late the tracer handles the
    parent's exit (``Supervisor.exits_first``)."""
    _late_exits(monkeypatch)
    code, lines = run(kernel, build, "killparent")
    assert code == -9
    assert lines == golden("killparent")
    assert kernel.leaks() == []


#: a parent that blocks SIGCHLD (no signal-delivery stop to hold it back) reaps a child
#: that held its dma-buf, then reads the dma-buf's fdinfo count
REAPER = """
import fcntl, os, signal, struct
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
memfd = os.memfd_create("m", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 4096)
fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("IIQQ", memfd, 0, 0, 4096)), True)
def count():
    with open(f"/proc/self/fdinfo/{buf}") as f:
        return next(line.split()[1] for line in f if line.startswith("count:"))
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print(count())
"""


def test_a_reaped_childs_files_are_released(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parent's ``waitpid`` returns only after the child's mock exit: the tracer looks
    at an exit (``WNOWAIT``), releases the mock process, then reaps, so the count the
    parent reads next is 1, however late the tracer is (a parent that takes SIGCHLD
    is held anyway: its signal-delivery stop waits for the tracer)."""
    _late_exits(monkeypatch)
    r = kernel.run([sys.executable, "-c", REAPER], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n"
    assert kernel.leaks() == []


def test_io_uring_is_refused(kernel: Kernel, build: Callable[[str], str]) -> None:
    """``io_uring_setup`` is ``ENOSYS`` in the tree (real Linux: it works): its
    operations would bypass seccomp and reach a mock fd's placeholder."""
    code, lines = run(kernel, build, "iouring")
    assert code == 0
    assert golden("iouring") == ["io_uring_setup: ok", "the dma-buf after: ok"]
    assert lines == ["io_uring_setup: ENOSYS", "the dma-buf after: ok"]
    assert kernel.leaks() == []


def test_32_bit_syscalls_are_enosys(kernel: Kernel, build: Callable[[str], str]) -> None:
    """i386 (``int 0x80``) and x32 calls are ``ENOSYS`` for the whole tree and never
    reach a mock fd's placeholder (real Linux: the i386 calls work; x32 is disabled in
    Debian's build, ``ENOSYS`` there too)."""
    code, lines = run(kernel, build, "abi")
    assert code == 0
    assert golden("abi")[:4] == [
        "int 0x80 ioctl on the dma-buf: ok",
        "int 0x80 getpid: ok",
        "name after: via-int80",
        "x32 ioctl on the dma-buf: ENOSYS",
    ]
    assert lines == [
        "int 0x80 ioctl on the dma-buf: ENOSYS",
        "int 0x80 getpid: ENOSYS",
        "name after: -",
        "x32 ioctl on the dma-buf: ENOSYS",
        "name after: -",
        "x86-64 ioctl: ok",
        "name after: via-syscall",
    ]
    assert kernel.leaks() == []


class Blocker(FileOperations):
    """``/dev/blocker``: ioctl 0xb001 waits (up to 10 s) for the gate; any other says
    whether someone waits."""

    name = "blocker"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.waiting = 0

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        if cmd == 0xB001:
            self.waiting += 1
            try:
                return int(self.gate.wait(10))
            finally:
                self.waiting -= 1
        return int(self.waiting > 0)


def test_a_child_killed_inside_a_mock_syscall(kernel: Kernel, build: Callable[[str], str]) -> None:
    """The parent SIGKILLs a child waiting in a driver: the parent's ``waitpid`` returns
    at once (the real task is gone), the child's references go, the driver's wait ends
    later and its answer is dropped (the task is gone); nothing hangs or leaks."""
    blocker = Blocker()
    kernel.misc_register("blocker", blocker)
    done = threading.Event()

    def release() -> None:
        """Once the child waits, end the wait a second later (the mock's waits are not
        interruptible: the driver returns into a task that is gone)."""
        while not blocker.waiting and not done.wait(0.01):
            pass
        done.wait(1.0)
        blocker.gate.set()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        code, lines = run(kernel, build, "killchild")
    finally:
        done.set()
        releaser.join()
    assert code == 0
    assert lines == [
        "count while the child lives: 2",
        "child: killed by signal 9",
        "SET_NAME after: ok",
        "name: survivor",
    ]
    assert kernel.leaks() == []


class Leaky(FileOperations):
    """``/dev/leaky``: a driver bug, each open keeps a reference on the file forever."""

    name = "leaky"

    def __init__(self) -> None:
        self.kept: list[File] = []

    def open(self, file: File) -> None:
        self.kept.append(file.get())


def test_a_leak_in_a_grandchild_names_it(build: Callable[[str], str]) -> None:
    k = mockkernel.boot()
    k.misc_register("leaky", Leaky())
    try:
        code, lines = run(k, build, "leak")
        leaks = k.leaks()
    finally:
        k.shutdown(check=False)
    assert code == 0
    grandchild = lines[0].split()[1].rstrip(":")
    assert lines == [f"grandchild {grandchild}: open /dev/leaky: ok"]
    assert len(leaks) == 1
    assert leaks[0].startswith("file still referenced (not by an fd: a mapping or a driver)")
    assert leaks[0].endswith(f"/dev/leaky count=1>, opened by pid {grandchild}")


LEAKY_CLI = """
import sys
import mockkernel.cli, mockkernel.lifecycle as lifecycle
from mockkernel.fs import FileOperations

class Leaky(FileOperations):
    name = "leaky"
    kept = []
    def open(self, file):
        self.kept.append(file.get())

boot = lifecycle.boot
def leaky_boot(*a, **kw):
    k = boot(*a, **kw)
    k.misc_register("leaky", Leaky())
    return k
lifecycle.boot = leaky_boot
sys.exit(mockkernel.cli.main(sys.argv[1:]))
"""


def test_check_leaks_covers_the_whole_tree(build: Callable[[str], str]) -> None:
    """``mockkernel run --check-leaks``: a leak made by a grandchild is exit 70 and a
    report naming the process that opened the file."""
    r = subprocess.run(
        [sys.executable, "-c", LEAKY_CLI, "run", "--check-leaks", "--", build("faults"), "leak"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 70, r.stdout + r.stderr
    grandchild = r.stdout.split()[1].rstrip(":")
    assert "mockkernel: 1 leak(s) after the program exited:" in r.stderr
    assert f"/dev/leaky count=1>, opened by pid {grandchild}" in r.stderr


def test_fail_nth_of_a_supervised_task(kernel: Kernel, build: Callable[[str], str]) -> None:
    """``/proc/thread-self/fail-nth`` of a C program: its own count, spent by its own
    calls (``alloc_fd`` of the open: ``ENOMEM``), read back, parsed as Linux does."""
    code, lines = run(kernel, build, "failnth")
    assert code == 0
    assert lines == [
        "open fail-nth: ok",
        "write 1: ok",
        "open /dev/udmabuf: ENOMEM",
        "left: 0",
        "write 100: ok",
        "open /dev/udmabuf: ok",
        "left: 99",
        "write 0: ok",
        "write x: EINVAL",
    ]
    assert kernel.leaks() == []


def test_a_sweep_of_a_supervised_tree_is_clean(build: Callable[[str], str]) -> None:
    """``sweep_command``: one count for the whole tree, so faults land in the parent and
    in its forked child; every point ends with the program's own error path (an exit
    status, never a signal) and no leak."""
    from mockkernel.testing.faults import sweep_command

    report = sweep_command([build("forkexec")])
    report.assert_clean()
    assert len(report.points) >= 10
    assert {"alloc_fd", "copy_from_user", "dma_buf_export", "copy_to_user"} <= {
        p.site for p in report.points
    }
    assert len({p.pid for p in report.points}) >= 2  # the parent's and the child's calls
    assert {p.outcome for p in report.points} <= {"ok", "exit 1"}


def test_cli_sweep_and_fail_nth_of_a_command(build: Callable[[str], str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "sweep", "--limit", "3", "--", build("udmabuf_demo")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "3 fault point(s), 0 not clean"
    r = subprocess.run(
        [sys.executable, "-m", "mockkernel", "run", "--fail-nth", "1", "--check-leaks", "--",
         build("udmabuf_demo")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1  # the demo's die(): the first point is the open's alloc_fd
    assert "Cannot allocate memory" in r.stdout + r.stderr
