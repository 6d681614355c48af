"""A supervised process's mock exit comes before anyone can learn of the exit
(``tests/supervisor/c/exitorder.c``), and a call the tracee had to restart is not
served twice."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mockkernel
from mockkernel.fs import File, FileOperations
from mockkernel.kernel import Kernel
from mockkernel.process import Process
from mockkernel.supervisor.tracer import TreeTracer
from mockkernel.topology import load_topology

TESTS = Path(__file__).parent.parent
GOLDEN = TESTS / "real_linux" / "golden" / "c_exitorder.txt"


def test_every_sign_of_an_exit_comes_after_the_mock_exit(
    build: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracer releases each exiting process 0.1 s late, as on a loaded machine: a
    parent that saw the exit by a pipe's end-of-file (the child exited, was killed,
    ended its last thread, exec'ed with the pipe close-on-exec), a pidfd, a zombie in
    /proc, SIGCHLD or waitpid still reads the dma-buf's count 1, and VFIO's
    UNSET_CONTAINER after the end-of-file still works: the real exit waits at its
    exit stop, the exec's real close-on-exec files are held, until the mock side is
    done."""
    release = TreeTracer.release

    def late(self: TreeTracer, proc: Process, status: int) -> None:
        time.sleep(0.1)
        release(self, proc, status)

    monkeypatch.setattr(TreeTracer, "release", late)
    k = mockkernel.boot(load_topology(TESTS / "vfio" / "real_linux_guest.toml"))
    try:
        r = k.run([build("exitorder"), "2"], capture_output=True, text=True, timeout=120)
        assert k.leaks() == []
    finally:
        k.shutdown(check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    want = [line.replace("25", "2") for line in GOLDEN.read_text().splitlines()]
    assert r.stdout.splitlines() == want


class Slow(FileOperations):
    """An ioctl that takes 0.3 s and counts its runs."""

    name = "slow"

    def __init__(self) -> None:
        self.runs = 0

    def open(self, file: File) -> None:
        file.private_data = self

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        self.runs += 1
        time.sleep(0.3)
        return 7


#: a signal with an SA_RESTART handler arrives while the ioctl is served
RESTART = """
import fcntl, os, signal, time
signal.signal(signal.SIGUSR1, lambda *a: None)
signal.siginterrupt(signal.SIGUSR1, False)
fd = os.open("/dev/slow", os.O_RDWR)
if os.fork() == 0:
    time.sleep(0.1)
    os.kill(os.getppid(), signal.SIGUSR1)
    os._exit(0)
print(fcntl.ioctl(fd, 0x1234, 0))
os.wait()
"""


def test_a_restarted_call_is_answered_once(kernel: Kernel) -> None:
    """A signal (here SIGUSR1 with SA_RESTART; as often SIGCHLD) that reaches a task
    waiting for its answer makes it restart the syscall; the supervisor keeps the
    answer it could not give and gives it to the restarted call: the driver ran once,
    as on Linux, where the ioctl is not interrupted."""
    slow = Slow()
    kernel.misc_register("slow", slow)
    r = kernel.run([sys.executable, "-c", RESTART], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "7\n"
    assert slow.runs == 1


#: a child with a close-on-exec dma-buf whose exec fails: it reports on a close-on-exec
#: pipe (the supervisor held that pipe's writer across the exec), then exits
FAILED_EXEC = """
import fcntl, os, struct
memfd = os.memfd_create("m", os.MFD_ALLOW_SEALING)
os.ftruncate(memfd, 4096)
fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
dev = os.open("/dev/udmabuf", os.O_RDWR)
buf = fcntl.ioctl(dev, 0x40187542, bytearray(struct.pack("IIQQ", memfd, 0, 0, 4096)), True)
os.set_inheritable(buf, False)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    try:
        os.execv("/nonexistent/prog", ["prog"])
    except OSError as e:
        os.write(w, e.strerror.encode())
    os._exit(3)
os.close(w)
got = b""
while chunk := os.read(r, 100):
    got += chunk
_, status = os.waitpid(pid, 0)
with open(f"/proc/self/fdinfo/{buf}") as f:
    count = next(line.split()[1] for line in f if line.startswith("count:"))
print(got.decode(), os.waitstatus_to_exitcode(status), count)
"""


def test_a_failed_exec_keeps_its_fds_and_lets_its_pipes_go(kernel: Kernel) -> None:
    """An exec with close-on-exec mock fds has its real close-on-exec fds held by the
    supervisor until the exec stop; an exec that fails has no stop, and the hold ends
    with the thread's next trapped call or its exit: the parent reads the child's
    report, then end-of-file, and the count after the child's exit is 1."""
    r = kernel.run([sys.executable, "-c", FAILED_EXEC], capture_output=True, text=True,
                   timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == "No such file or directory 3 1\n"
    assert kernel.leaks() == []
