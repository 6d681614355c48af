"""``/proc/<pid>`` and ``/proc/self`` for every mock process (``mockkernel.procfs``),
through the syscall layer: ``self`` is the current task, per thread."""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Iterator

import pytest
from core_helpers import PAGE, close_probe_device, errno_name, register_probe_device

from mockkernel.errors import NotMine
from mockkernel.kernel import Kernel
from mockkernel.process import Process
from mockkernel.syscalls import AT_FDCWD
from mockkernel.syscalls.readdir import parse_dirents64
from mockkernel.vfs import _FdTarget

CONTAINER = "/dev/vfio/vfio"


@pytest.fixture
def proc(kernel: Kernel) -> Iterator[Process]:
    p = kernel.spawn("procfs")
    yield p
    if not p.exited:
        p.exit()


def read_all(proc: Process, path: str) -> str:
    fd = proc.sys_open(path, os.O_RDONLY)
    try:
        return proc.sys_read(fd, 1 << 16).decode()
    finally:
        proc.sys_close(fd)


def test_proc_pid_fd_of_a_spawned_process(kernel: Kernel, proc: Process) -> None:
    fd = proc.sys_open(CONTAINER, os.O_RDWR)
    other = kernel.init_process  # another process looks at it by pid
    assert other.sys_readlinkat(AT_FDCWD, f"/proc/{proc.pid}/fd/{fd}") == CONTAINER.encode()
    assert proc.sys_readlinkat(AT_FDCWD, f"/proc/self/fd/{fd}") == CONTAINER.encode()
    assert proc.sys_readlinkat(AT_FDCWD, f"/proc/thread-self/fd/{fd}") == CONTAINER.encode()
    # a simulated process has no real /proc: what it lacks is ENOENT, not the real OS's
    assert errno_name(other.sys_readlinkat, AT_FDCWD, f"/proc/{proc.pid}/fd/{fd + 7}") == "ENOENT"
    assert errno_name(other.sys_newfstatat, AT_FDCWD, f"/proc/{proc.pid}/environ") == "ENOENT"
    assert errno_name(other.sys_newfstatat, AT_FDCWD, f"/proc/{proc.pid}/fd/{fd}/") == "ENOTDIR"
    reopened = proc.sys_open(f"/proc/self/fd/{fd}", os.O_RDWR)  # the path opened afresh
    assert proc.files[reopened] is not proc.files[fd]
    assert proc.files[reopened].path == CONTAINER
    proc.sys_close(reopened)
    proc.sys_close(fd)


def test_fdinfo_and_the_fd_directories(proc: Process) -> None:
    a = proc.sys_open(CONTAINER, os.O_RDWR | os.O_CLOEXEC)
    b = proc.sys_open("/dev/vfio", os.O_RDONLY | os.O_DIRECTORY)
    info = read_all(proc, f"/proc/self/fdinfo/{a}")
    assert info.startswith("pos:\t0\nflags:\t0")
    assert int(info.split("flags:\t")[1].split()[0], 8) & os.O_CLOEXEC
    for sub, want in (("fd", {str(a), str(b)}), ("fdinfo", {str(a), str(b)})):
        d = proc.sys_open(f"/proc/{proc.pid}/{sub}", os.O_RDONLY | os.O_DIRECTORY)
        names = {e[3] for e in parse_dirents64(proc.sys_getdents64(d, 4096))}
        assert names - {".", ".."} == want | {str(d)}  # its own fd too, as on Linux
        proc.sys_close(d)
    top = proc.sys_open(f"/proc/{proc.pid}", os.O_RDONLY | os.O_DIRECTORY)
    names = {e[3] for e in parse_dirents64(proc.sys_getdents64(top, 4096))}
    assert {"fd", "fdinfo", "maps"} <= names
    for n in (a, b, top):
        proc.sys_close(n)


def test_maps_of_a_spawned_process(kernel: Kernel, proc: Process) -> None:
    ops = register_probe_device(kernel)
    try:
        fd = proc.sys_open("/dev/mkprobe", os.O_RDWR)
        m = proc.sys_mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, 0, 0)
        text = read_all(proc, "/proc/self/maps")
        lines = text.splitlines()
        assert len(lines) == 1 and lines[0].endswith("/dev/mkprobe")  # its mock mapping only
        assert read_all(kernel.init_process, f"/proc/{proc.pid}/maps") == text
        m.close()
        assert read_all(proc, "/proc/self/maps") == ""
        proc.sys_close(fd)
    finally:
        close_probe_device(ops)


def test_the_real_pid_process_leaves_the_rest_to_the_real_proc(kernel: Kernel) -> None:
    init = kernel.init_process
    assert init.real_pid
    with pytest.raises(NotMine):
        init.sys_newfstatat(AT_FDCWD, "/proc/self/fd/0")  # a real fd: the real /proc's
    with pytest.raises(NotMine):
        init.sys_openat(AT_FDCWD, "/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    with pytest.raises(NotMine):
        init.sys_newfstatat(AT_FDCWD, "/proc/999999999/fd/3")  # no such mock process


def test_proc_self_is_the_current_task_of_each_thread(kernel: Kernel, proc: Process) -> None:
    fd = proc.sys_open(CONTAINER, os.O_RDWR)
    path = f"/proc/self/fd/{fd}"
    seen: dict[str, object] = {}
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        with kernel.running(proc):
            seen["thread"] = kernel.vfs.lookup(path)
            inside.set()
            done.wait(10)

    t = threading.Thread(target=other_thread)
    t.start()
    assert inside.wait(10)
    try:  # meanwhile this thread still runs the init process, which has no such mock fd
        assert kernel.vfs.lookup(path) is None or fd in kernel.init_process.files
    finally:
        done.set()
        t.join()
    node = seen["thread"]
    assert isinstance(node, _FdTarget) and node.file is proc.files[fd]
    proc.sys_close(fd)


def test_an_exited_process_is_gone_from_proc(kernel: Kernel, proc: Process) -> None:
    fd = proc.sys_open(CONTAINER, os.O_RDWR)
    path = f"/proc/{proc.pid}/fd/{fd}"
    assert kernel.vfs.lookup(path, follow=False) is not None
    proc.exit()
    assert kernel.vfs.lookup(path, follow=False) is None
