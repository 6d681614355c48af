"""The driver-API services plugins use instead of kernel internals: char devices, sysfs,
the current task's fds, PCI lookups (``docs/plugins.md``, "Driver API reference")."""

from __future__ import annotations

import errno
import functools
import os
import select
import stat
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockkernel.driver import (
    MINORMASK,
    MISC_DYNAMIC_MINOR,
    MISC_MAJOR,
    MKDEV,
    File,
    FileOperations,
    Inode,
    Kernel,
    KernelBug,
    cdev_device_add,
    cdev_device_del,
    current_task,
    device_sysfs_dir,
    fd_install,
    fdget,
    fget,
    fget_real,
    for_each_pci_dev,
    get_unused_fd_flags,
    misc_deregister,
    misc_register,
    net_devmem_lookup_dmabuf,
    num_online_cpus,
    pci_fabric,
    pci_find_device_by_name,
    pci_get_drvdata,
    put_unused_fd,
    register_chrdev_region,
    sysfs_create_dir,
    sysfs_create_file,
    sysfs_create_link,
    sysfs_remove_dir,
    sysfs_remove_file,
    sysfs_remove_link,
    unregister_chrdev_region,
)


class Ops(FileOperations):
    name = "[apitest]"


def _errno(fn: Callable[[], object]) -> str:
    try:
        fn()
    except OSError as e:
        assert e.errno is not None
        return errno.errorcode[e.errno]
    return "ok"


@pytest.fixture
def kernel(mock_kernel_factory: Callable[..., Kernel]) -> Kernel:
    return mock_kernel_factory()


def _node(kernel: Kernel, path: str) -> os.stat_result:
    node = kernel.vfs.lookup(path, follow=False)
    assert node is not None
    return node.inode().stat_result()


# -- char devices -----------------------------------------------------------------------
def test_misc_register_dynamic_and_fixed_minors(kernel: Kernel) -> None:
    a = misc_register(kernel, "apitest-a", Ops())
    b = misc_register(kernel, "apitest-b", Ops(), minor=MISC_DYNAMIC_MINOR, mode=0o600)
    c = misc_register(kernel, "apitest-c", Ops(), minor=7)
    try:
        assert {os.major(a), os.major(b), os.major(c)} == {MISC_MAJOR}
        assert len({os.minor(a), os.minor(b)} | {7}) == 3
        assert os.minor(c) == 7
        st_b = _node(kernel, "/dev/apitest-b")
        assert st_b.st_rdev == b and stat.S_ISCHR(st_b.st_mode)
        assert stat.S_IMODE(st_b.st_mode) == 0o600
        # a taken minor, a taken name; and the Kernel method shares the minor space
        assert _errno(lambda: misc_register(kernel, "apitest-d", Ops(), minor=7)) == "EBUSY"
        assert _errno(lambda: misc_register(kernel, "apitest-a", Ops())) == "EEXIST"
        d = kernel.misc_register("apitest-d", Ops())
        assert os.minor(d) not in {os.minor(a), os.minor(b), 7}
        kernel.misc_deregister("apitest-d")
    finally:
        for name in ("apitest-a", "apitest-b", "apitest-c"):
            misc_deregister(kernel, name)
    assert kernel.vfs.listdir("/dev") is not None
    assert "apitest-a" not in (kernel.vfs.listdir("/dev") or [])
    with pytest.raises(KernelBug):
        misc_deregister(kernel, "apitest-a")


def test_misc_nodename_makes_and_removes_its_directory(kernel: Kernel) -> None:
    devt = misc_register(kernel, "apitest", Ops(), minor=201, nodename="apitest/sub/ctl")
    assert devt == MKDEV(MISC_MAJOR, 201)
    assert kernel.vfs.listdir("/dev/apitest") == ["sub"]
    assert _node(kernel, "/dev/apitest/sub/ctl").st_rdev == devt
    with kernel.tracer.capture() as ev:
        misc_deregister(kernel, "apitest")
    assert [(e["event"], e["path"]) for e in ev] == [("chrdev.unregister", "/dev/apitest/sub/ctl")]
    assert "apitest" not in (kernel.vfs.listdir("/dev") or [])
    with pytest.raises(KernelBug):
        misc_register(kernel, "apitest", Ops(), nodename="../etc/passwd")


def test_chrdev_regions_and_nodes(kernel: Kernel) -> None:
    first = MKDEV(230, 0)
    register_chrdev_region(kernel, first, 4, "apitest")
    try:
        assert _errno(lambda: register_chrdev_region(kernel, MKDEV(230, 3), 2, "x")) == "EBUSY"
        assert _errno(lambda: register_chrdev_region(kernel, MKDEV(MISC_MAJOR, 0), 1, "x")) == (
            "EBUSY"
        )
        assert _errno(lambda: register_chrdev_region(kernel, MKDEV(231, 0), 0, "x")) == "EINVAL"
        assert (
            _errno(lambda: register_chrdev_region(kernel, MKDEV(231, 1), MINORMASK + 1, "x"))
            == "EINVAL"
        )
        cdev_device_add(kernel, MKDEV(230, 2), Ops(), "apitest/2")
        assert _node(kernel, "/dev/apitest/2").st_rdev == MKDEV(230, 2)
        assert _errno(lambda: cdev_device_add(kernel, MKDEV(230, 3), Ops(), "apitest/2")) == (
            "EEXIST"
        )
        with pytest.raises(KernelBug):  # a number nobody registered
            cdev_device_add(kernel, MKDEV(230, 4), Ops(), "apitest/4")
        cdev_device_del(kernel, "apitest/2")
        assert "apitest" not in (kernel.vfs.listdir("/dev") or [])
        assert _errno(lambda: cdev_device_del(kernel, "apitest/2")) == "ENOENT"
    finally:
        unregister_chrdev_region(kernel, first, 4)
    with pytest.raises(KernelBug):
        unregister_chrdev_region(kernel, first, 4)


# -- sysfs --------------------------------------------------------------------------------
def test_sysfs_helpers(kernel: Kernel) -> None:
    pdev = next(for_each_pci_dev(kernel))
    base = f"{device_sysfs_dir(pdev)}/apitest"
    assert kernel.vfs.lookup(f"/sys/bus/pci/devices/{pdev.bdf}/vendor") is not None
    sysfs_create_dir(kernel, base)
    sysfs_create_dir(kernel, base)  # an existing directory is kept
    count = iter(range(100))
    sysfs_create_file(kernel, f"{base}/count", lambda: f"{next(count)}\n", 0o440)
    sysfs_create_link(kernel, f"{base}/device", "../../" + pdev.bdf)
    assert sorted(kernel.vfs.listdir(base) or []) == ["count", "device"]
    f = kernel.vfs.open(f"{base}/count", os.O_RDONLY, 0)
    try:
        assert f.vfs_read(10, None) == b"0\n"
    finally:
        f.put()
    assert stat.S_IMODE(_node(kernel, f"{base}/count").st_mode) == 0o440
    assert _errno(lambda: sysfs_create_file(kernel, f"{base}/count", str)) == "EEXIST"
    assert _errno(lambda: sysfs_create_link(kernel, f"{base}/count", "x")) == "EEXIST"
    with pytest.raises(KernelBug):
        sysfs_create_file(kernel, "/dev/apitest", str)
    with pytest.raises(KernelBug):
        sysfs_remove_link(kernel, f"{base}/count")  # not a link
    sysfs_remove_file(kernel, f"{base}/count")
    sysfs_remove_link(kernel, f"{base}/device")
    assert kernel.vfs.listdir(base) == []
    sysfs_remove_dir(kernel, base)
    with pytest.raises(KernelBug):
        sysfs_remove_dir(kernel, base)


# -- the current task's fds ---------------------------------------------------------------
def _mock_file(kernel: Kernel) -> File:
    return File(kernel, Ops(), Inode(kernel.new_id(), 0o600), os.O_RDWR, 0)


@pytest.fixture
def real_fd() -> Iterator[int]:
    fd = os.eventfd(0)
    yield fd
    os.close(fd)


def test_fdget_tells_mock_real_and_closed(kernel: Kernel, real_fd: int) -> None:
    proc = current_task(kernel)
    assert proc is kernel.init_process
    file = _mock_file(kernel)
    fd = get_unused_fd_flags(kernel, os.O_CLOEXEC)
    fd_install(kernel, fd, file)
    try:
        assert fdget(kernel, fd) is file
        assert file.f_count == 1
        got = fget(kernel, fd)
        assert got is file and file.f_count == 2
        file.put()
        assert fdget(kernel, real_fd) is None
        assert fget(kernel, real_fd) is None
        closed = os.dup(real_fd)
        os.close(closed)
        for bad in (closed, -1, 1 << 31, 1 << 40):
            assert _errno(functools.partial(fdget, kernel, bad)) == "EBADF"
        assert proc.fdt.get_cloexec(fd)
    finally:
        proc.sys_close(fd)


# fdget changes nothing, so one kernel serves every example
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fd=st.integers(min_value=-(1 << 40), max_value=1 << 40) | st.integers(0, 1100))
def test_fdget_never_raises_anything_but_ebadf(kernel: Kernel, fd: int) -> None:
    try:
        got = fdget(kernel, fd)
    except OSError as e:
        assert e.errno == errno.EBADF
    else:
        assert got is None  # nothing mock is open: an open fd here is a real one


def test_fds_go_to_the_current_task(kernel: Kernel) -> None:
    proc = kernel.spawn("apitest")
    with kernel.running(proc):
        assert current_task(kernel) is proc
        fd = get_unused_fd_flags(kernel, 0)
        assert fd == 0 and not proc.files
        put_unused_fd(kernel, fd)
        fd = get_unused_fd_flags(kernel, 0)
        file = _mock_file(kernel)
        fd_install(kernel, fd, file)
        assert proc.files == {0: file} and not proc.fdt.get_cloexec(0)
        with pytest.raises(KernelBug):
            put_unused_fd(kernel, fd)
        with pytest.raises(KernelBug):
            fd_install(kernel, fd, file)
        assert _errno(lambda: get_unused_fd_flags(kernel, os.O_NONBLOCK)) == "EINVAL"
        assert fdget(kernel, 0) is file
    assert kernel.init_process.files.get(0) is None
    proc.sys_close(0)


def test_fd_install_gives_the_number_the_placeholder_of_the_files_kind(
    kernel: Kernel,
) -> None:
    """The number reserved before the file existed ends up held by the placeholder of
    the file's kind, as an fd made in one step would be."""
    fd = get_unused_fd_flags(kernel, os.O_CLOEXEC)
    try:
        before = os.readlink(f"/proc/self/fd/{fd}")
        fd_install(kernel, fd, _mock_file(kernel))
    except BaseException:
        put_unused_fd(kernel, fd)
        raise
    try:
        assert "[apitest]" not in before
        assert "[apitest]" in os.readlink(f"/proc/self/fd/{fd}")
        assert not os.get_inheritable(fd)  # O_CLOEXEC kept
    finally:
        current_task(kernel).sys_close(fd)


def test_fget_real_is_the_drivers_own_reference(kernel: Kernel, real_fd: int) -> None:
    kfd = fget_real(kernel, real_fd)
    try:
        assert kfd != real_fd
        assert os.fstat(kfd).st_ino == os.fstat(real_fd).st_ino
        os.eventfd_write(kfd, 3)
        assert select.select([real_fd], [], [], 0)[0] == [real_fd]
    finally:
        os.close(kfd)
    fd = get_unused_fd_flags(kernel, os.O_CLOEXEC)
    fd_install(kernel, fd, _mock_file(kernel))
    try:
        assert _errno(lambda: fget_real(kernel, fd)) == "EBADF"
    finally:
        current_task(kernel).sys_close(fd)


# -- PCI, net, CPUs ----------------------------------------------------------------------
def test_pci_lookups(kernel: Kernel) -> None:
    devices = list(for_each_pci_dev(kernel))
    assert devices and all(pci_find_device_by_name(kernel, p.bdf) is p for p in devices)
    assert pci_find_device_by_name(kernel, "0000:7f:1f.7") is None
    assert pci_fabric(kernel).bus.devices == tuple(devices)
    assert num_online_cpus(kernel) == kernel.topology.kernel.nr_cpus > 0


def test_drvdata_is_what_the_bound_driver_set(kernel: Kernel) -> None:
    from mockkernel_mlx5 import Mlx5Dev
    from mockkernel_nic import MockNic, nic_dev
    from mockkernel_vfio_pci import VfioPciDevice

    kinds = {}
    for pdev in for_each_pci_dev(kernel):
        data = pci_get_drvdata(pdev)
        kinds[pdev.driver_name] = type(data)
        if isinstance(data, MockNic):
            assert nic_dev(kernel, pdev.bdf) is data
    assert kinds.get("mock_nic") is MockNic
    assert kinds.get("vfio-pci") is VfioPciDevice
    assert kinds.get("mlx5_core") is Mlx5Dev
    unbound = [p for p in for_each_pci_dev(kernel) if p.driver_name is None]
    assert all(pci_get_drvdata(p) is None for p in unbound)
    with pytest.raises(KeyError):
        nic_dev(
            kernel, next(p.bdf for p in for_each_pci_dev(kernel) if p.driver_name != "mock_nic")
        )


def test_net_devmem_lookup_of_an_unknown_binding(kernel: Kernel) -> None:
    assert net_devmem_lookup_dmabuf(kernel, 12345) is None


def test_removed_directories_leave_no_stale_cache(kernel: Kernel) -> None:
    """A node added after a directory was removed lands in the new tree (the VFS keeps a
    path -> directory cache: removal must forget the directory and everything below)."""
    base = "/sys/apitest"
    sysfs_create_dir(kernel, f"{base}/a/b")
    sysfs_create_file(kernel, f"{base}/a/b/old", str)  # caches a and a/b
    sysfs_create_file(kernel, f"{base}/a/old", str)
    sysfs_remove_dir(kernel, f"{base}/a")  # has a subdirectory
    sysfs_create_file(kernel, f"{base}/a/b/new", str)
    assert kernel.vfs.listdir(f"{base}/a/b") == ["new"]
    sysfs_remove_dir(kernel, f"{base}/a/b")  # no subdirectory
    sysfs_create_file(kernel, f"{base}/a/b/newer", str)
    assert kernel.vfs.listdir(f"{base}/a/b") == ["newer"]
    assert kernel.vfs.peek(f"{base}/a/b/newer") is kernel.vfs.lookup(f"{base}/a/b/newer")
    assert kernel.vfs.peek(f"{base}/a/b/newer/x") is None
    assert kernel.vfs.peek(f"{base}/nothing") is None
    sysfs_remove_dir(kernel, base)
