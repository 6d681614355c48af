"""Discovery, the group/container path and the cdev + iommufd path.

Errnos of the group/container path are those Linux 7.2 gave (tests/real_linux
``vfio_container`` golden); the cdev path follows upstream ``vfio_main.c`` and
``device_cdev.c`` (no iommufd in the real-Linux guest).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from pathlib import Path

import pytest
from vfio_helpers import (
    BDF,
    GROUP,
    call,
    cdev_name,
    feature,
    ioctl_buf,
    open_cdev_path,
    open_group_path,
)

from mockkernel import Kernel
from mockkernel.topology import load_topology
from mockkernel.uapi.linux.iommufd import IOMMU_DESTROY, IOMMU_IOAS_ALLOC
from mockkernel.uapi.linux.vfio import (
    VFIO_API_VERSION,
    VFIO_CHECK_EXTENSION,
    VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_DETACH_IOMMUFD_PT,
    VFIO_DEVICE_FEATURE_DMA_BUF,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_GET_INFO,
    VFIO_GET_API_VERSION,
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_GROUP_UNSET_CONTAINER,
    VFIO_IOMMU_GET_INFO,
    VFIO_SET_IOMMU,
    VFIO_TYPE1_IOMMU,
    VFIO_TYPE1v2_IOMMU,
)

pytestmark = pytest.mark.usefixtures("mock_kernel")
SYS = f"/sys/bus/pci/devices/{BDF}"


def _get_device_fd(group_fd: int, name: str = BDF) -> int:
    return fcntl.ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, bytearray(name.encode() + b"\0"), True)


def _status(group_fd: int) -> int:
    _, out = ioctl_buf(group_fd, VFIO_GROUP_GET_STATUS, struct.pack("<II", 8, 0))
    flags: int = struct.unpack("<II", out)[1]
    return flags


# -- discovery --------------------------------------------------------------------------------
def test_nodes_and_sysfs() -> None:
    assert os.readlink(f"{SYS}/driver").endswith("/drivers/vfio-pci")
    assert os.path.basename(os.readlink(f"{SYS}/iommu_group")) == str(GROUP)
    assert os.listdir(f"/sys/kernel/iommu_groups/{GROUP}/devices") == [BDF]
    assert sorted(os.listdir("/dev/vfio")) == sorted([str(GROUP), "devices", "vfio"])
    st = os.stat("/dev/vfio/vfio")
    assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (10, 196)
    assert stat.S_IMODE(os.stat(f"/dev/vfio/{GROUP}").st_mode) == 0o600
    assert stat.S_ISCHR(os.stat("/dev/iommu").st_mode)
    name = cdev_name()
    assert name == "vfio0"
    assert os.listdir("/dev/vfio/devices") == [name]
    cdev = os.stat(f"/dev/vfio/devices/{name}")
    with open(f"{SYS}/vfio-dev/{name}/dev") as f:
        assert f.read() == f"{os.major(cdev.st_rdev)}:{os.minor(cdev.st_rdev)}\n"
    assert os.path.realpath(f"/sys/class/vfio-dev/{name}") == os.path.realpath(
        f"{SYS}/vfio-dev/{name}"
    )


# -- container ---------------------------------------------------------------------------------
def test_container_basics() -> None:
    c = os.open("/dev/vfio/vfio", os.O_RDWR)
    try:
        assert fcntl.ioctl(c, VFIO_GET_API_VERSION) == VFIO_API_VERSION == 0
        exts = {e: fcntl.ioctl(c, VFIO_CHECK_EXTENSION, e) for e in range(12)}
        assert exts == {e: int(e in (1, 3, 9)) for e in range(12)}
        assert call(fcntl.ioctl, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == "EINVAL"  # no group
        assert call(fcntl.ioctl, c, VFIO_IOMMU_GET_INFO, bytes(24)) == "EINVAL"  # no driver
    finally:
        os.close(c)


def test_group_and_container_sequence() -> None:
    c = os.open("/dev/vfio/vfio", os.O_RDWR)
    g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)
    nul = os.open("/dev/null", os.O_RDWR)
    try:
        assert call(os.open, f"/dev/vfio/{GROUP}", os.O_RDWR) == "EBUSY"
        assert _status(g) == 1  # VIABLE
        assert call(ioctl_buf, g, VFIO_GROUP_GET_STATUS, struct.pack("<II", 4, 0)) == "EINVAL"
        assert call(_get_device_fd, g) == "EINVAL"  # no container
        assert call(fcntl.ioctl, g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", -1)) == "EBADF"
        assert call(fcntl.ioctl, g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", nul)) == "EBADFD"
        assert call(fcntl.ioctl, g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", g)) == "EBADFD"
        assert call(fcntl.ioctl, g, VFIO_GROUP_UNSET_CONTAINER) == "EINVAL"
        fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", c))
        assert call(fcntl.ioctl, g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", c)) == "EINVAL"
        assert _status(g) == 3  # VIABLE | CONTAINER_SET
        assert call(_get_device_fd, g) == "EINVAL"  # no IOMMU driver yet
        assert call(fcntl.ioctl, c, VFIO_SET_IOMMU, 2) == "ENODEV"
        assert call(fcntl.ioctl, c, VFIO_SET_IOMMU, 99) == "ENODEV"
        assert fcntl.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) == 0
        assert call(fcntl.ioctl, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == "EINVAL"
        assert fcntl.ioctl(c, VFIO_CHECK_EXTENSION, 10) == 1  # UPDATE_VADDR, with the driver
        assert call(fcntl.ioctl, c, (ord(";") << 8) | 99) == "ENOTTY"
        assert call(_get_device_fd, g, "0000:99:00.0") == "ENODEV"
        assert call(_get_device_fd, g, "01:00.0") == "ENODEV"
        assert call(_get_device_fd, g, BDF + " vf_token=" + "0" * 36) == "EINVAL"
        d = _get_device_fd(g, BDF + "  ")
        d2 = _get_device_fd(g)  # a second fd of the same device
        try:
            assert not os.get_inheritable(d)  # FD_CLOEXEC
            assert os.readlink(f"/proc/self/fd/{d}") == "anon_inode:[vfio-device]"
            assert fcntl.fcntl(d, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
            assert call(os.lseek, d, 0, os.SEEK_SET) == "ESPIPE"
            assert call(fcntl.ioctl, g, VFIO_GROUP_UNSET_CONTAINER) == "EBUSY"
            # group ioctls on a device fd, device ioctls on a group: ENOTTY
            assert call(fcntl.ioctl, d, VFIO_GROUP_GET_STATUS, bytes(8)) == "ENOTTY"
            assert call(fcntl.ioctl, g, VFIO_DEVICE_GET_INFO, bytes(16)) == "ENOTTY"
        finally:
            os.close(d)
            os.close(d2)
        assert fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER) == 0
        assert _status(g) == 1
    finally:
        for fd in (nul, g, c):
            os.close(fd)


def test_closing_container_keeps_group_working() -> None:
    c = os.open("/dev/vfio/vfio", os.O_RDWR)
    g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)
    fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", c))
    fcntl.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
    os.close(c)
    try:
        assert _status(g) == 3
        os.close(_get_device_fd(g))
    finally:
        os.close(g)


def test_closing_group_while_device_open() -> None:
    dev = open_group_path()
    g, c = dev.others
    os.close(g)
    dev.others = [c]
    try:
        # the device holds the group file: the group cannot be reopened yet
        assert call(os.open, f"/dev/vfio/{GROUP}", os.O_RDWR) == "EBUSY"
        assert ioctl_buf(dev.fd, VFIO_DEVICE_GET_INFO, struct.pack("<IIII", 16, 0, 0, 0))[0] == 0
    finally:
        dev.close()
    g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)
    assert _status(g) == 1  # detached from its container when the last reference went
    os.close(g)


# -- type1 backend ----------------------------------------------------------------------------
def test_type1_info_and_mappings() -> None:
    dev = open_group_path()
    c = dev.others[1]
    try:
        _, out = ioctl_buf(c, VFIO_IOMMU_GET_INFO, struct.pack("<IIQII", 16, 0, 0, 0, 0))
        assert struct.unpack_from("<IIQ", out) == (120, 3, 0x40201000)
        buf = bytearray(256)
        struct.pack_into("<I", buf, 0, 256)
        fcntl.ioctl(c, VFIO_IOMMU_GET_INFO, buf, True)
        assert struct.unpack_from("<I", buf, 16)[0] == 24  # cap_offset
        ids = []
        off = 24
        while off:
            cap_id, _ver, off = struct.unpack_from("<HHI", buf, off)
            ids.append(cap_id)
        assert ids == [2, 3, 1]  # MIGRATION, DMA_AVAIL, IOVA_RANGE
        assert struct.unpack_from("<I", buf, 56 + 8)[0] == 65535
        mem = bytearray(2 * 4096)
        import ctypes

        vaddr = ctypes.addressof((ctypes.c_char * len(mem)).from_buffer(mem))
        vaddr = (vaddr + 4095) & ~4095
        mp = struct.pack("<IIQQQ", 32, 3, vaddr, 0x100000, 4096)
        from mockkernel.uapi.linux.vfio import VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA

        assert ioctl_buf(c, VFIO_IOMMU_MAP_DMA, mp)[0] == 0
        assert call(ioctl_buf, c, VFIO_IOMMU_MAP_DMA, mp) == "EEXIST"
        bad = struct.pack("<IIQQQ", 32, 3, 4096, 0x200000, 4096)
        assert call(ioctl_buf, c, VFIO_IOMMU_MAP_DMA, bad) == "EFAULT"
        unaligned = struct.pack("<IIQQQ", 32, 3, vaddr, 0x200001, 4096)
        assert call(ioctl_buf, c, VFIO_IOMMU_MAP_DMA, unaligned) == "EINVAL"
        _, out = ioctl_buf(c, VFIO_IOMMU_UNMAP_DMA, struct.pack("<IIQQ", 24, 0, 0x100000, 4096))
        assert struct.unpack_from("<Q", out, 16)[0] == 4096
    finally:
        dev.close()


# -- cdev + iommufd -----------------------------------------------------------------------------
def test_cdev_before_bind_is_einval() -> None:
    """vfio_main.c: until VFIO_DEVICE_BIND_IOMMUFD grants access, every other ioctl,
    read, write and mmap of a cdev fd is EINVAL (``if (!df->access_granted) return -EINVAL``)."""
    fd = os.open(f"/dev/vfio/devices/{cdev_name()}", os.O_RDWR)
    try:
        hdr = struct.pack("<IIII", 16, 0, 0, 0)
        assert call(ioctl_buf, fd, VFIO_DEVICE_GET_INFO, hdr) == "EINVAL"
        assert call(feature, fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_DMA_BUF) == (
            "EINVAL"
        )
        assert call(fcntl.ioctl, fd, (ord(";") << 8) | 99) == "EINVAL"  # even unknown ones
        assert call(os.pread, fd, 4, 7 << 40) == "EINVAL"
        assert call(os.pwrite, fd, b"\0", 7 << 40) == "EINVAL"
        import mmap

        with pytest.raises(OSError) as e:
            mmap.mmap(fd, 4096)
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_bind_errors() -> None:
    iommufd = os.open("/dev/iommu", os.O_RDWR)
    fd = os.open(f"/dev/vfio/devices/{cdev_name()}", os.O_RDWR)
    nul = os.open("/dev/null", os.O_RDONLY)
    try:

        def bind(argsz: int = 16, flags: int = 0, ifd: int = iommufd) -> int | str:
            data = struct.pack("<IIiI", argsz, flags, ifd, 0)
            return call(lambda: ioctl_buf(fd, VFIO_DEVICE_BIND_IOMMUFD, data)[0])

        assert bind(argsz=15) == "EINVAL"
        assert bind(flags=2) == "EINVAL"
        assert bind(ifd=-1) == "EINVAL"
        assert bind(ifd=999) == "EBADF"
        assert bind(ifd=nul) == "EBADFD"  # a real file that is not an iommufd
        assert bind(ifd=fd) == "EBADFD"  # a mock file that is not an iommufd
        g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)
        assert bind() == "EBUSY"  # the group is open: vfio_device_block_group
        os.close(g)
        assert bind() == 0
        assert bind() == "EINVAL"  # bound twice
        # the group cannot be opened while a device is bound through its cdev
        assert call(os.open, f"/dev/vfio/{GROUP}", os.O_RDWR) == "EBUSY"
        fd2 = os.open(f"/dev/vfio/devices/{cdev_name()}", os.O_RDWR)
        try:  # a second cdev open binds nothing: the device is open already
            data = struct.pack("<IIiI", 16, 0, iommufd, 0)
            assert call(ioctl_buf, fd2, VFIO_DEVICE_BIND_IOMMUFD, data) == "EINVAL"
        finally:
            os.close(fd2)
    finally:
        for x in (nul, fd, iommufd):
            os.close(x)
    g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)  # unblocked after the cdev closed
    os.close(g)


def test_bind_on_group_fd_is_einval() -> None:
    """Linux with CONFIG_VFIO_DEVICE_CDEV: BIND_IOMMUFD on a group-path fd is EINVAL
    (``if (df->group) return -EINVAL``); the real-Linux guest has no cdev support and says
    ENOTTY there instead."""
    dev = open_group_path()
    iommufd = os.open("/dev/iommu", os.O_RDWR)
    try:
        data = struct.pack("<IIiI", 16, 0, iommufd, 0)
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_BIND_IOMMUFD, data) == "EINVAL"
        pt = struct.pack("<III", 12, 0, 1)
        assert call(ioctl_buf, dev.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, pt) == "ENOTTY"
    finally:
        os.close(iommufd)
        dev.close()


def test_iommufd_and_attach() -> None:
    dev = open_cdev_path(attach=False)
    iommufd = dev.others[0]
    try:
        assert dev.devid == 1
        # IOAS_ALLOC: size framing and flags
        assert call(ioctl_buf, iommufd, IOMMU_IOAS_ALLOC, struct.pack("<III", 8, 0, 0)) == "EINVAL"
        assert (
            call(ioctl_buf, iommufd, IOMMU_IOAS_ALLOC, struct.pack("<III", 12, 1, 0))
            == "EOPNOTSUPP"
        )
        big = struct.pack("<IIII", 16, 0, 0, 7)
        assert call(ioctl_buf, iommufd, IOMMU_IOAS_ALLOC, big) == "E2BIG"
        _, out = ioctl_buf(iommufd, IOMMU_IOAS_ALLOC, struct.pack("<IIII", 16, 0, 0, 0))
        ioas = struct.unpack_from("<I", out, 8)[0]
        assert ioas == 2
        assert call(fcntl.ioctl, iommufd, VFIO_GET_API_VERSION) == "ENOTTY"

        def attach(argsz: int = 12, flags: int = 0, pt: int = ioas) -> int | str:
            data = struct.pack("<III", argsz, flags, pt)
            return call(lambda: ioctl_buf(dev.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, data)[0])

        assert attach(argsz=11) == "EINVAL"
        assert attach(flags=2) == "EINVAL"
        assert attach(pt=99) == "ENOENT"
        assert attach(pt=dev.devid) == "EINVAL"  # a device object is not a page table
        assert attach() == 0
        assert attach() == 0  # replace
        destroy = struct.pack("<II", 8, ioas)
        assert call(ioctl_buf, iommufd, IOMMU_DESTROY, destroy) == "EBUSY"
        data = struct.pack("<II", 8, 0)
        assert ioctl_buf(dev.fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, data)[0] == 0
        assert ioctl_buf(iommufd, IOMMU_DESTROY, destroy)[0] == 0
        assert call(ioctl_buf, iommufd, IOMMU_DESTROY, destroy) == "ENOENT"
    finally:
        dev.close()


def test_iommufd_closed_first_device_keeps_working(mock_kernel: Kernel) -> None:
    dev = open_cdev_path()
    os.close(dev.others.pop())
    try:
        hdr = struct.pack("<IIII", 16, 0, 0, 0)
        assert ioctl_buf(dev.fd, VFIO_DEVICE_GET_INFO, hdr)[0] == 0
    finally:
        dev.close()


def test_group_set_to_an_iommufd(mock_kernel: Kernel) -> None:
    """``VFIO_GROUP_SET_CONTAINER`` also takes an iommufd (the compat IOAS is created)."""
    iommufd = os.open("/dev/iommu", os.O_RDWR)
    g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)
    try:
        fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", iommufd))
        assert _status(g) == 3
        d = _get_device_fd(g)
        try:
            hdr = struct.pack("<IIII", 16, 0, 0, 0)
            assert ioctl_buf(d, VFIO_DEVICE_GET_INFO, hdr)[0] == 0
            vdev = mock_kernel.bound[BDF].devices[BDF]  # type: ignore[attr-defined]
            assert vdev.iommufd_device is not None and vdev.iommufd_device.ioas is not None
        finally:
            os.close(d)
        assert fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER) == 0
        assert _status(g) == 1
    finally:
        os.close(g)
        os.close(iommufd)


def test_o_path_group_and_container() -> None:
    """``O_PATH`` opens run no ``->open``: an ``O_PATH`` group fd does not count as an
    open of the group, and an ``O_PATH`` container fd is ``EBADF`` to
    ``VFIO_GROUP_SET_CONTAINER`` (``fdget``).  Real Linux 7.2 (the guest's group 4) gave
    exactly these answers: ``getfl_is_opath`` true, ``ioctl_on_opath_group`` EBADF, an
    ``O_RDWR`` open after the ``O_PATH`` one succeeds, a second one is EBUSY,
    ``set_container_opath`` EBADF, an ``O_PATH`` open while the group is open succeeds."""
    p = os.open(f"/dev/vfio/{GROUP}", os.O_PATH)
    try:
        assert fcntl.fcntl(p, fcntl.F_GETFL) == os.O_PATH
        assert call(fcntl.ioctl, p, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", 0)) == "EBADF"
        g = os.open(f"/dev/vfio/{GROUP}", os.O_RDWR)  # the O_PATH fd did not claim it
        try:
            assert call(os.open, f"/dev/vfio/{GROUP}", os.O_RDWR) == "EBUSY"
            os.close(os.open(f"/dev/vfio/{GROUP}", os.O_PATH))  # while it is open: fine
            cp = os.open("/dev/vfio/vfio", os.O_PATH)
            try:
                arg = struct.pack("<i", cp)
                assert call(fcntl.ioctl, g, VFIO_GROUP_SET_CONTAINER, arg) == "EBADF"
            finally:
                os.close(cp)
            c = os.open("/dev/vfio/vfio", os.O_RDWR)
            try:
                fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", c))
                fcntl.ioctl(g, VFIO_GROUP_UNSET_CONTAINER)
            finally:
                os.close(c)
        finally:
            os.close(g)
    finally:
        os.close(p)


@pytest.mark.mockkernel(topology=load_topology(Path(__file__).parent / "real_linux_guest.toml"))
def test_device_fdinfo_and_sysfs_path_through_the_root_port() -> None:
    """What real Linux 7.2 showed for the guest's two devices (edu behind the
    pcie-root-port 0000:00:03.0, ivshmem on the root bus): the device fd's fdinfo ends
    with ``vfio-device-syspath:``, and sysfs links run through the port."""
    expect = {
        "0000:01:00.0": ("6", "/sys/devices/pci0000:00/0000:00:03.0/0000:01:00.0", 4),
        "0000:00:04.0": ("4", "/sys/devices/pci0000:00/0000:00:04.0", 3),
    }
    for bdf, (group, path, ups) in expect.items():
        c = os.open("/dev/vfio/vfio", os.O_RDWR)
        g = os.open(f"/dev/vfio/{group}", os.O_RDWR)
        try:
            fcntl.ioctl(g, VFIO_GROUP_SET_CONTAINER, struct.pack("<i", c))
            fcntl.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)
            d = fcntl.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bytearray(bdf.encode() + b"\0"), True)
            try:
                with open(f"/proc/self/fdinfo/{d}") as f:
                    lines = f.read().splitlines()
                assert lines[4:] == [f"vfio-device-syspath: {path}"]
            finally:
                os.close(d)
        finally:
            os.close(g)
            os.close(c)
        assert os.path.realpath(f"/sys/bus/pci/devices/{bdf}") == path
        assert os.readlink(f"/sys/bus/pci/devices/{bdf}") == "../../../" + path[5:]
        assert os.readlink(f"{path}/iommu_group") == "../" * ups + f"kernel/iommu_groups/{group}"
