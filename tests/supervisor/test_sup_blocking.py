"""A blocking mock syscall does not stall the other threads of the tree."""

from __future__ import annotations

import threading
from collections.abc import Callable

from mockkernel.fs import File, FileOperations
from mockkernel.kernel import Kernel


class Blocker(FileOperations):
    """``/dev/blocker``: ioctl 0xb001 waits (up to 10 s) for 0xb002; any other says whether
    someone waits."""

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
        if cmd == 0xB002:
            self.gate.set()
            return 0
        return int(self.waiting > 0)


def test_other_threads_are_served_while_one_blocks(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    kernel.misc_register("blocker", Blocker())
    r = kernel.run([build("blocker")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # without the hand-off the 50 calls would wait for the driver's 10 s timeout
    assert r.stdout == "saw the waiter: 1, served while it waited: 50, released: 1\n"


class Buggy(FileOperations):
    """``/dev/buggy``: every ioctl is a driver bug (a Python exception, not an errno)."""

    name = "buggy"

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        raise RuntimeError("driver bug")


def test_a_kernel_bug_is_an_errno_and_a_warning_never_a_hang(kernel: Kernel) -> None:
    import sys

    kernel.misc_register("buggy", Buggy())
    code = (
        "import fcntl, os\n"
        "fd = os.open('/dev/buggy', os.O_RDWR)\n"
        "try:\n    fcntl.ioctl(fd, 0xb001)\nexcept OSError as e:\n    print(e.errno)\n"
        "fcntl.ioctl(fd, 0xb001) if False else print('still served')\n"
    )
    r = kernel.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["38", "still served"]  # ENOSYS
    assert [w for w in kernel.warnings if "driver bug" in w]
    kernel.warnings.clear()  # seen: the fixture's leak check would report it again


class EndsLater(Blocker):
    """``/dev/blocker`` whose wait ends a second after it began (the mock's waits are
    not interruptible): timed from the wait, not from the test's start -- a gate set
    before the thread waits (a start-up slower than the delay, on a loaded machine)
    would let its ioctl return at once, and the program spin forever for a waiter."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[threading.Timer] = []

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        if cmd == 0xB001:
            timer = threading.Timer(1.0, self.gate.set)
            self.timers.append(timer)
            timer.start()
        return super().unlocked_ioctl(file, cmd, arg)


def test_killed_while_a_thread_waits_in_the_kernel(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    blocker = EndsLater()
    kernel.misc_register("blocker", blocker)
    try:
        r = kernel.run([build("diesblocked")], capture_output=True, timeout=60)
    finally:
        for timer in blocker.timers:
            timer.cancel()
    assert r.returncode == -9
    assert blocker.timers  # the thread did wait in the driver when the process died
    assert kernel.leaks() == []  # its dma-buf, memfd pages and fds were released
