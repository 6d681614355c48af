"""Inside the kernel's trees nothing a program does reaches the host (issue 12, defect 6).

``/dev``: only the host's harmless nodes show (``vfs.HOST_DEV``: null, zero, urandom,
pts, shm...); any other missing name is ``ENOENT``, and ``O_CREAT`` makes a file in the
mock devtmpfs (root; ``EACCES`` otherwise), never on the host.  ``/sys/bus/pci`` is the
mock bus's own (``rescan``, ``drivers_probe``...).  The host's other sysfs and procfs
knobs are read-only (``EROFS``), as in a container.
"""

from __future__ import annotations

import contextlib
import errno
import os

import pytest

from mockkernel import Kernel

NEW = "/dev/mockkernel-isolation-test"


def _err(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except OSError as e:
        return errno.errorcode[e.errno or 0]


@pytest.mark.skipif(os.geteuid() != 0, reason="root creates in /dev")
def test_creating_in_dev_makes_a_mock_file_not_a_host_one(mock_kernel: Kernel) -> None:
    fd = os.open(NEW, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert os.write(fd, b"kept in the mock") == 16
        assert os.pread(fd, 4, 8) == b"the "
        assert os.fstat(fd).st_size == 16
        assert NEW.rsplit("/", 1)[1] in os.listdir("/dev")
    finally:
        os.close(fd)
    assert _err(os.open, NEW, os.O_CREAT | os.O_EXCL | os.O_WRONLY) == "EEXIST"
    fd = os.open(NEW, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert os.stat(NEW).st_size == 0
    # the host never saw it: the real lstat (taken before the redirection) says so
    from mockkernel.realfd import REAL

    with pytest.raises(FileNotFoundError):
        REAL.stat(NEW)


@pytest.mark.skipif(os.geteuid() != 0, reason="root creates in /dev")
@pytest.mark.parametrize("traced", [False, True])
def test_exclusive_create_of_a_new_dev_name_opens_it(mock_kernel: Kernel, traced: bool) -> None:
    """``O_CREAT|O_EXCL`` of a name that does not exist creates and opens it (the path is
    looked up once: a second lookup used to find the new file and answer ``EEXIST``)."""
    with mock_kernel.tracer.capture() if traced else contextlib.nullcontext():
        fd = os.open(NEW, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        assert os.write(fd, b"x") == 1
    finally:
        os.close(fd)
    assert _err(os.open, NEW, os.O_CREAT | os.O_EXCL | os.O_RDWR) == "EEXIST"


def test_creating_in_dev_as_a_user_is_eacces(mock_kernel: Kernel) -> None:
    root = os.geteuid() == 0
    if root:
        os.seteuid(65534)  # nobody, for this check (the saved uid lets us back)
    try:
        assert _err(os.open, NEW, os.O_CREAT | os.O_RDWR, 0o644) == "EACCES"
    finally:
        if root:
            os.seteuid(0)


def test_host_devices_do_not_show_but_harmless_ones_work(mock_kernel: Kernel) -> None:
    assert _err(os.open, "/dev/sda", os.O_RDONLY) == "ENOENT"
    assert _err(os.stat, "/dev/mem") == "ENOENT"
    names = set(os.listdir("/dev"))
    assert {"null", "zero", "urandom", "vfio", "udmabuf"} <= names
    assert not names & {"mem", "kmsg", "sda", "loop0"}
    fd = os.open("/dev/null", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # a shell's "> /dev/null"
    try:
        assert os.write(fd, b"gone") == 4
    finally:
        os.close(fd)
    with open("/dev/urandom", "rb") as f:
        assert len(f.read(8)) == 8


def test_pci_bus_files_are_the_mock_bus(mock_kernel: Kernel) -> None:
    assert set(os.listdir("/sys/bus/pci")) == {
        "devices",
        "drivers",
        "drivers_autoprobe",
        "drivers_probe",
        "rescan",
        "resource_alignment",
        "slots",
        "uevent",
    }
    for path, data, want in [
        ("/sys/bus/pci/rescan", b"1", 1),
        ("/sys/bus/pci/rescan", b"x", "EINVAL"),
        ("/sys/bus/pci/drivers_probe", b"0000:01:00.0", 12),
        ("/sys/bus/pci/drivers_probe", b"0000:99:00.0", "ENODEV"),
        ("/sys/bus/pci/drivers_autoprobe", b"0", 1),
    ]:
        if os.geteuid() != 0 and "autoprobe" not in path:
            assert _err(os.open, path, os.O_WRONLY) == "EACCES"
            continue
        if os.geteuid() != 0:
            continue
        fd = os.open(path, os.O_WRONLY)
        try:
            assert _err(os.write, fd, data) == want, path
        finally:
            os.close(fd)
    if os.geteuid() == 0:
        with open("/sys/bus/pci/drivers_autoprobe") as f:
            assert f.read() == "0\n"
    assert _err(os.open, "/sys/bus/pci/nonexistent", os.O_RDONLY) == "ENOENT"


@pytest.mark.parametrize(
    "path",
    [
        "/proc/sys/vm/drop_caches",
        "/proc/sys/kernel/hostname",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/module/printk/parameters/time",
        "/sys/power/state",
    ],
)
def test_host_knobs_are_read_only(mock_kernel: Kernel, path: str) -> None:
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_CREAT):
        assert _err(os.open, path, flags) == "EROFS"
    assert _err(os.open, "/proc/sys/kernel/mockkernel-new", os.O_CREAT | os.O_WRONLY) == "EROFS"


def test_own_proc_files_stay_writable(mock_kernel: Kernel) -> None:
    fd = os.open("/proc/self/comm", os.O_WRONLY)  # the program's own task: not the host's
    os.close(fd)


@pytest.mark.parametrize("path", ["/dev/dma_heap", "/dev/dma_heap/system", "/dev/dri/card0"])
def test_an_unmodelled_device_is_absent_and_traced(mock_kernel: Kernel, path: str) -> None:
    """No dma-buf heap or DRM device is modelled: the kernel's dmabuf-heaps selftest
    (``opendir("/dev/dma_heap")``) gets Linux's answer for a kernel without them,
    ``ENOENT`` whatever the host has, and the trace names the missing device."""
    with mock_kernel.tracer.capture() as events:
        assert _err(os.open, path, os.O_RDONLY | os.O_DIRECTORY) == "ENOENT"
        assert _err(os.stat, path) == "ENOENT"
    absent = [e["path"] for e in events if e["event"] == "vfs.dev_absent"]
    assert absent == ["/dev/" + path.split("/")[2]] * 2
