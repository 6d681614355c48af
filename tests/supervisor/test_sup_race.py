"""Concurrent calls of two processes and their threads each get their own answer.

Issue 15's reliability hunt: a handler must read the request from its caller's address
space, run with its caller as the current task, install fds into its caller, and its
answer must go to its own notification -- whatever other workers serve meanwhile.
``/dev/echo`` answers with what the kernel thinks the caller is and a function of the
caller's payload; some calls block for a moment, so the watchdog hands the lead on and
several workers serve at once (the interleavings a loaded host makes).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable

import pytest

from mockkernel.driver import (
    FMODE_READ,
    FMODE_WRITE,
    File,
    FileOperations,
    Inode,
    copy_from_user,
    copy_to_user,
    fd_install,
    get_unused_fd_flags,
)
from mockkernel.kernel import Kernel
from mockkernel.realfd import Placeholders

_ECHO = struct.Struct("<IIQ48s")
ECHO_IOCTL = 3 << 30 | _ECHO.size << 16 | ord("E") << 8 | 1
ECHO_NEWFD = ord("E") << 8 | 2


class Echo(FileOperations):
    """``/dev/echo``: ``ECHO_IOCTL`` writes back the current task's pid and tid, the
    caller's sequence number and its payload + 1; every 5th call of a thread waits a
    few ms first (and reads the request again after: it must not have changed).
    ``ECHO_NEWFD`` returns a new fd of an echo file."""

    name = "echo"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.calls = 0
        self.reread_mismatch = 0
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        k = self.kernel
        if cmd == ECHO_NEWFD:
            fd = get_unused_fd_flags(k, os.O_CLOEXEC)
            new = File(k, self, Inode(k.new_id(), 0o600, dev=0x0F), os.O_RDWR,
                       FMODE_READ | FMODE_WRITE, None)  # fmt: skip
            fd_install(k, fd, new)
            return fd
        if cmd != ECHO_IOCTL:
            return -25
        raw = copy_from_user(arg, _ECHO.size)
        _pid, _tid, seq, data = _ECHO.unpack(raw)
        with self._lock:
            self.calls += 1
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            if seq % 5 == 0:
                threading.Event().wait(0.004)  # block: the watchdog hands the lead on
                if copy_from_user(arg, _ECHO.size) != raw:
                    with self._lock:
                        self.reread_mismatch += 1
            tid = k.current_tid or 0
            out = _ECHO.pack(k.current.pid, tid, seq, bytes((b + 1) & 0xFF for b in data))
            copy_to_user(arg, out)
        finally:
            with self._lock:
                self.concurrent -= 1
        return 0


def test_two_processes_and_their_threads_each_get_their_own_answer(
    kernel: Kernel, build: Callable[[str], str]
) -> None:
    echo = Echo(kernel)
    kernel.misc_register("echo", echo)
    r = kernel.run([build("echostress"), "3", "60"], capture_output=True, text=True,
                   timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bad 0\n"
    assert echo.calls == 2 * 3 * 60
    assert echo.reread_mismatch == 0
    assert echo.most_concurrent >= 2  # the interleavings were there to be got wrong


def test_a_placeholder_asked_for_by_two_threads_at_once_is_made_once(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers serving two processes may open the first file of a kind at once: one
    placeholder memfd comes of it, not one each (the other would leak).  The second
    asker is started while the first is inside ``memfd_create``."""
    ph = kernel.subsys(Placeholders)
    real = os.memfd_create
    made: list[str] = []
    second: list[int] = []
    asker = threading.Thread(target=lambda: second.append(ph.get("race")))

    def memfd_create(name: str, flags: int = os.MFD_CLOEXEC) -> int:
        made.append(name)
        if len(made) == 1:
            asker.start()
            asker.join(0.2)  # (unlocked, it makes its own placeholder meanwhile)
        return real(name, flags)

    monkeypatch.setattr(os, "memfd_create", memfd_create)
    first = ph.get("race")
    asker.join()
    assert made == ["mockkernel:race"]
    assert second == [first]


SELF_REVOKE = r"""
import fcntl, mmap, os, struct
container = os.open("/dev/vfio/vfio", os.O_RDWR)
group = os.open("/dev/vfio/6", os.O_RDWR)
fcntl.ioctl(group, 0x3B68, struct.pack("<i", container))  # VFIO_GROUP_SET_CONTAINER
fcntl.ioctl(container, 0x3B66, 3)  # VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU
dev = fcntl.ioctl(group, 0x3B6A, bytearray(b"0000:01:00.0\0"))  # VFIO_GROUP_GET_DEVICE_FD
CMD = (7 << 40) + 4  # PCI_COMMAND in the config region

def memory(on):
    cmd = struct.unpack("<H", os.pread(dev, 2, CMD))[0]
    return os.pwrite(dev, struct.pack("<H", cmd | 2 if on else cmd & ~2), CMD)

memory(True)
bar = mmap.mmap(dev, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
bar[8:16] = b"from-kid"
print(memory(False), memory(True), bar[8:16].decode(), flush=True)
"""


def test_a_call_that_revokes_its_own_mapping_is_served_once(kernel: Kernel) -> None:
    """Turning memory decoding off zaps the BAR mapping of the very process asking: the
    tracer interrupts its thread (waiting in that ``pwrite``) to inject the zap.  The
    interrupted call is answered, once -- not restarted and served again, which ran the
    driver twice, the second time racing the end of the first."""
    import sys

    with kernel.tracer.capture() as events:
        r = kernel.run([sys.executable, "-c", SELF_REVOKE], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == "2 2 from-kid\n"
    writes = [e for e in events if e["event"] == "sys.pwrite"]
    assert len(writes) == 3  # memory on, off (the zap), on (the restore)
    assert [e["nested"] > 0 for e in writes] == [False, True, True]
