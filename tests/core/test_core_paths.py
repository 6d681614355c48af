"""Paths: the mock tree (/dev/udmabuf, sysfs, debugfs, /proc/self/fd) through os, os.path,
glob, pathlib and open(); everything else reaches the real OS unchanged.  Expected values
are real Linux 7.2's (tests/core/real_linux/syscall_layer.golden.jsonl)."""

from __future__ import annotations

import errno
import glob
import io
import os
import pathlib
import stat
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import DEV, PAGE, errno_name, lowest_free, udmabuf

from mockkernel.kernel import Kernel
from mockkernel.realfd import REAL
from mockkernel.topology import default_topology
from mockkernel.vfs import ChrDev

BDF = "0000:01:00.0"  # in the default topology: vendor 0x10ee, IOMMU group 6
PCI = f"/sys/bus/pci/devices/{BDF}"
BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"
MISSING = "/sys/bus/pci/devices/0000:7f:1f.7"


def mock_events(kernel: Kernel, fn: Callable[[], Any]) -> list[str]:
    with kernel.tracer.capture() as ev:
        fn()
    return [e["event"] for e in ev if not e["event"].startswith("sys.")]


# -- the device node -----------------------------------------------------------------------------
def test_device_node_stat(mock_kernel: Kernel) -> None:
    node = mock_kernel.vfs.lookup(DEV)
    assert isinstance(node, ChrDev)
    for st in (os.stat(DEV), os.lstat(DEV), os.stat(os.fsencode(DEV)), pathlib.Path(DEV).stat()):
        assert stat.S_ISCHR(st.st_mode)
        assert os.major(st.st_rdev) == 10  # a misc device
        assert st.st_rdev == node.rdev
        assert (st.st_size, st.st_nlink) == (0, 1)
    assert os.path.exists(DEV) and not os.path.isfile(DEV) and not os.path.isdir(DEV)
    assert not os.path.islink(DEV)
    assert pathlib.Path(DEV).is_char_device()
    assert os.access(DEV, os.R_OK | os.W_OK) and not os.access(DEV, os.X_OK)


def test_device_node_in_its_directory(mock_kernel: Kernel) -> None:
    names = os.listdir("/dev")
    assert "udmabuf" in names and "null" in names  # the overlay merges real and mock
    assert "udmabuf" in os.listdir("/dev/")
    assert b"udmabuf" in os.listdir(b"/dev")
    entry = next(e for e in os.scandir("/dev") if e.name == "udmabuf")
    assert entry.path == DEV and not entry.is_dir() and not entry.is_file()
    assert stat.S_ISCHR(entry.stat().st_mode)
    assert glob.glob("/dev/udma*") == [DEV]
    assert [p.name for p in pathlib.Path("/dev").glob("udmabuf")] == ["udmabuf"]


@pytest.mark.parametrize(
    ("call", "expect"),
    [
        (lambda: os.stat(DEV + "/"), "ENOTDIR"),
        (lambda: os.lstat(DEV + "/"), "ENOTDIR"),
        (lambda: os.stat(DEV + "/x"), "ENOTDIR"),
        (lambda: os.listdir(DEV), "ENOTDIR"),
        (lambda: os.scandir(DEV), "ENOTDIR"),
        (lambda: os.readlink(DEV), "EINVAL"),
        (lambda: os.open(DEV, os.O_RDONLY | os.O_DIRECTORY), "ENOTDIR"),
        (lambda: os.open(DEV, os.O_RDWR | os.O_CREAT | os.O_EXCL), "EEXIST"),
        (lambda: os.stat(f"{PCI}/vendor/"), "ENOTDIR"),
        (lambda: os.stat(BUFINFO + "/"), "ENOTDIR"),
        (lambda: os.open(f"{PCI}/vendor", os.O_WRONLY), "EACCES"),
        (lambda: os.open(f"{PCI}/vendor", os.O_RDONLY | os.O_DIRECTORY), "ENOTDIR"),
        (lambda: os.readlink(PCI + "/"), "EINVAL"),
        (lambda: os.stat(MISSING), "ENOENT"),
        (lambda: os.lstat(MISSING), "ENOENT"),
        (lambda: os.open(MISSING, os.O_RDONLY), "ENOENT"),
        (lambda: os.open(f"{MISSING}/vendor", os.O_WRONLY | os.O_CREAT), "ENOENT"),
        (lambda: os.open("/sys/bus/pci/devices/newfile", os.O_WRONLY | os.O_CREAT), "EACCES"),
        (lambda: os.listdir(MISSING), "ENOENT"),
        (lambda: os.scandir(MISSING), "ENOENT"),
        (lambda: os.readlink(MISSING), "ENOENT"),
        (lambda: os.listdir("/sys/kernel/iommu_groups/6/devices/nope"), "ENOENT"),
    ],
)
def test_path_errnos(mock_kernel: Kernel, call: Callable[[], Any], expect: str) -> None:
    files = dict(mock_kernel.init_process.files)
    with pytest.raises(OSError) as e:
        call()
    assert e.value.errno is not None
    assert errno.errorcode[e.value.errno] == expect
    assert e.value.filename is not None, "errors on paths carry the path, as the real ones"
    assert mock_kernel.init_process.files == files


def test_missing_names_are_file_not_found_errors(mock_kernel: Kernel) -> None:
    with pytest.raises(FileNotFoundError) as e:
        open(f"{MISSING}/vendor")  # noqa: SIM115 - it must fail
    assert e.value.filename == f"{MISSING}/vendor"
    with pytest.raises(FileNotFoundError):
        pathlib.Path(MISSING).stat()
    with pytest.raises(PermissionError):
        open("/sys/bus/pci/devices/newfile", "w")  # noqa: SIM115 - it must fail
    assert not os.path.exists(MISSING) and not os.path.lexists(MISSING)
    assert not os.access(MISSING, os.F_OK)
    assert glob.glob(f"{MISSING}/*") == []


# -- sysfs -----------------------------------------------------------------------------------------
def test_pci_devices_in_sysfs(mock_kernel: Kernel) -> None:
    bdfs = [d.bdf for d in default_topology().devices]
    assert sorted(glob.glob("/sys/bus/pci/devices/*")) == [
        f"/sys/bus/pci/devices/{b}" for b in sorted(bdfs)
    ]
    assert sorted(os.listdir("/sys/bus/pci/devices")) == sorted(bdfs)
    assert sorted(os.listdir(b"/sys/bus/pci/devices")) == sorted(os.fsencode(b) for b in bdfs)
    assert os.path.islink(PCI) and os.path.isdir(PCI)
    assert stat.S_ISLNK(os.lstat(PCI).st_mode) and stat.S_ISDIR(os.stat(PCI).st_mode)
    assert stat.S_ISDIR(os.lstat(PCI + "/").st_mode)  # a trailing slash follows the link
    target = os.readlink(PCI)
    # through its root port (0000:00:01.0 in the default topology), as Linux's hierarchy
    assert target == f"../../../devices/pci0000:00/0000:00:01.0/{BDF}"
    real = os.path.realpath(PCI)
    assert real == f"/sys/devices/pci0000:00/0000:00:01.0/{BDF}"
    assert os.readlink(real + "/iommu_group").startswith("../../../../kernel/iommu_groups/")
    assert os.path.isdir("/sys/devices/pci0000:00/0000:00:01.0")
    assert os.path.realpath(pathlib.Path(PCI)) == real
    assert pathlib.Path(PCI).resolve() == pathlib.Path(real)
    assert os.path.samefile(PCI, real)
    assert {"vendor", "device", "class", "iommu_group"} <= set(os.listdir(PCI))
    assert os.access(PCI, os.X_OK)


def test_iommu_groups_in_sysfs(mock_kernel: Kernel) -> None:
    links = sorted(glob.glob("/sys/kernel/iommu_groups/*/devices/*"))
    expect = sorted(
        f"/sys/kernel/iommu_groups/{d.iommu_group}/devices/{d.bdf}"
        for d in default_topology().devices
        if d.iommu_group is not None
    )
    assert links == expect
    assert os.listdir("/sys/kernel/iommu_groups/6/devices") == [BDF]
    link = f"/sys/kernel/iommu_groups/6/devices/{BDF}"
    assert os.path.realpath(link) == os.path.realpath(PCI)
    assert os.path.basename(os.readlink(f"{PCI}/iommu_group")) == "6"
    assert os.path.realpath(f"{PCI}/iommu_group") == "/sys/kernel/iommu_groups/6"
    # a walk through the links, as tools do it
    walked = {
        (root, tuple(sorted(files))) for root, _dirs, files in os.walk("/sys/kernel/iommu_groups")
    }
    assert ("/sys/kernel/iommu_groups/6/devices", ()) in walked
    group_of = {
        os.path.basename(p): os.path.basename(os.readlink(f"{p}/iommu_group"))
        for p in glob.glob("/sys/bus/pci/devices/*")
    }
    assert group_of[BDF] == "6"


def test_sysfs_attribute_files(mock_kernel: Kernel) -> None:
    p = f"{PCI}/vendor"
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444 and st.st_size == 4096
    with open(p) as f:
        assert isinstance(f, io.TextIOWrapper)
        assert f.name == p
        assert f.read() == "0x10ee\n"
    with open(p, "rb") as f:
        assert f.read() == b"0x10ee\n"
    with open(p, "rb", buffering=0) as f:
        assert f.readall() == b"0x10ee\n"
    with io.open(p, encoding="ascii") as f:  # noqa: UP020 - io.open is patched too
        assert f.readline() == "0x10ee\n"
    assert pathlib.Path(p).read_text() == "0x10ee\n"
    assert pathlib.Path(p).read_bytes() == b"0x10ee\n"
    fd = os.open(p, os.O_RDONLY)
    try:
        assert fd not in mock_kernel.init_process.files  # a snapshot in a real memfd
        assert os.read(fd, 100) == b"0x10ee\n"
        assert os.pread(fd, 4, 2) == b"10ee"
    finally:
        os.close(fd)
    assert os.access(p, os.R_OK) and not os.access(p, os.X_OK)
    if os.getuid() == 0:
        assert os.access(p, os.W_OK)  # root passes the mode check (the open still fails)


def test_debugfs_bufinfo(mock_kernel: Kernel) -> None:
    st = os.stat(BUFINFO)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444 and st.st_size == 0
    assert "bufinfo" in os.listdir("/sys/kernel/debug/dma_buf")

    def lines() -> list[str]:
        with open(BUFINFO) as f:
            return f.read().splitlines()

    assert lines()[:2] == ["", "Dma-buf Objects:"]
    assert lines()[-1] == "Total 0 objects, 0 bytes"
    with udmabuf(size=3 * PAGE):
        assert lines()[-1] == f"Total 1 objects, {3 * PAGE} bytes"
        assert any(line.startswith(f"{3 * PAGE:08d}\t") for line in lines())
    assert lines()[-1] == "Total 0 objects, 0 bytes"


# -- the real OS, unchanged ------------------------------------------------------------------------
def test_real_paths_go_to_the_real_os(
    mock_kernel: Kernel, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = mock_kernel.init_process.files
    target = tmp_path / "data.bin"

    def work() -> None:
        with open(target, "wb") as f:
            f.write(b"payload")
        with open(os.fsencode(target), "rb") as f:
            assert f.read() == b"payload"
        assert target.read_bytes() == b"payload"
        assert os.stat(target) == REAL.stat(target)
        assert os.listdir(tmp_path) == ["data.bin"]
        assert [e.name for e in os.scandir(tmp_path)] == ["data.bin"]
        monkeypatch.chdir(tmp_path)
        assert os.path.exists("data.bin")
        fd = os.open("data.bin", os.O_RDONLY)
        assert fd not in files
        assert os.read(fd, 3) == b"pay"
        assert os.readlink(f"/proc/self/fd/{fd}") == str(target)
        os.close(fd)
        null = os.open("/dev/null", os.O_RDWR)  # a real node under the /dev overlay
        assert null not in files
        assert os.write(null, b"x") == 1
        assert os.readlink(f"/proc/self/fd/{null}") == "/dev/null"
        os.close(null)
        assert os.stat("/dev/null") == REAL.stat("/dev/null")
        assert os.path.isdir("/dev/shm") == REAL.access("/dev/shm", os.F_OK)
        with pytest.raises(FileNotFoundError):
            os.stat("/dev/no-such-node")
        with pytest.raises(FileNotFoundError):
            os.stat("/sys/no-such-dir")
        assert not os.path.exists("/devices/x")  # not under /dev: never mock

    # the one mock answer: /dev/no-such-node is the mock devtmpfs's ENOENT, traced
    assert mock_events(mock_kernel, work) == ["vfs.dev_absent"]
    assert not files


# -- open() of the device node ---------------------------------------------------------------------
def test_builtin_open_of_the_device(mock_kernel: Kernel) -> None:
    files = mock_kernel.init_process.files
    low = lowest_free()
    with mock_kernel.tracer.capture() as ev:
        f = open(DEV, "rb", buffering=0)  # noqa: SIM115 - closed by hand below
    fd = f.fileno()
    assert fd == low and fd in files
    assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
        "vfs.open",
        "fd.install",
    ]
    assert isinstance(f, io.FileIO) and isinstance(f, io.RawIOBase)
    assert (f.name, f.mode) == (DEV, "rb")
    assert os.get_inheritable(fd) is False
    assert errno_name(f.read, 4) == "EINVAL"  # no ->read
    assert not f.seekable()
    with mock_kernel.tracer.capture() as ev:
        f.close()
    assert [e["event"] for e in ev if not e["event"].startswith("sys.")] == [
        "fd.close",
        "file.release",
    ]
    assert f.closed and fd not in files
    f.close()  # again: nothing
    with open(DEV, "rb", buffering=0) as g:
        assert g.fileno() in files
    assert g.closed and not files
    with io.open(DEV, "wb") as h:  # noqa: UP020 - io.open is patched too
        assert isinstance(h, io.BufferedWriter)
        assert h.fileno() in files
    assert not files


def test_open_of_a_mock_fd(mock_kernel: Kernel) -> None:
    files = mock_kernel.init_process.files
    fd = os.open(DEV, os.O_RDWR)
    f = os.fdopen(fd, "rb", buffering=0)
    assert f.fileno() == fd
    f.close()
    assert fd not in files
    fd = os.open(DEV, os.O_RDWR)
    with open(fd, "wb", closefd=False) as g:
        assert g.fileno() == fd
    assert fd in files, "closefd=False leaves the fd open"
    with os.fdopen(fd, "rb", buffering=0, closefd=False):
        pass
    assert fd in files
    os.close(fd)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"mode": "rb", "encoding": "utf-8"}, ValueError),
        ({"mode": "rb", "newline": ""}, ValueError),
        ({"mode": "rw"}, ValueError),
        ({"mode": "rt+b"}, ValueError),
        ({"mode": "r", "buffering": 0}, ValueError),
        ({"mode": "r+b"}, io.UnsupportedOperation),  # BufferedRandom needs a seekable file
        ({"mode": "rb", "buffering": "1"}, TypeError),
    ],
)
def test_a_failed_open_leaves_no_fd(
    mock_kernel: Kernel, kwargs: dict[str, Any], exc: type[Exception]
) -> None:
    files = mock_kernel.init_process.files
    low = lowest_free()
    live = set(mock_kernel.live_files)
    with pytest.raises(exc) as failure:
        open(DEV, **kwargs)  # noqa: SIM115 - it must fail
    # checked while the exception (and the frames its traceback holds) is alive, as a
    # program that keeps it would: the fd must be closed by open() itself, not by the GC
    assert failure.value is not None
    assert not files
    assert lowest_free() == low
    assert set(mock_kernel.live_files) == live
    del failure
    # the same on a sysfs file (r+b: EACCES there, the attribute is read-only)
    with pytest.raises(PermissionError if kwargs["mode"] == "r+b" else exc):
        open(f"{PCI}/vendor", **kwargs)  # noqa: SIM115 - it must fail
    assert lowest_free() == low


def test_open_of_a_sysfs_file_checks_its_arguments_first(mock_kernel: Kernel) -> None:
    low = lowest_free()
    with pytest.raises(ValueError, match="binary mode doesn't take an encoding"):
        open(f"{PCI}/vendor", "rb", encoding="utf-8")  # noqa: SIM115 - it must fail
    with pytest.raises(ValueError, match="binary mode doesn't take an encoding"):
        open(f"{MISSING}/vendor", "rb", encoding="utf-8")  # noqa: SIM115 - before ENOENT
    assert lowest_free() == low


def test_lazy_directories_fill_on_first_look_not_on_build() -> None:
    import mockkernel

    kernel = mockkernel.boot()
    try:
        calls: list[str] = []

        def fill() -> None:
            calls.append("fill")
            kernel.vfs.attr("/sys/devices/lazy/attr", lambda: "x\n")

        kernel.vfs.mkdir("/sys/devices/lazy", populate=fill)
        kernel.vfs.mkdir("/sys/devices/lazy/sub")  # building inside does not fill it
        assert calls == []
        assert kernel.vfs.listdir("/sys/devices/lazy") == ["sub", "attr"]
        assert calls == ["fill"]
        assert kernel.vfs.lookup("/sys/devices/lazy/attr") is not None
        assert calls == ["fill"]  # once
        # a PCI device's attributes exist even though boot did not make them
        with kernel.install(), open("/sys/bus/pci/devices/0000:01:00.0/vendor") as f:
            assert f.read() == "0x10ee\n"
    finally:
        kernel.shutdown()
