"""The group/container path: ``/dev/vfio/vfio`` and ``/dev/vfio/<group>`` (container.c, group.c).

Answers as Linux 7.2 gave them (tests/real_linux probes, QEMU edu device):

* container: ``VFIO_GET_API_VERSION`` 0; ``VFIO_CHECK_EXTENSION`` asks the type1
  driver (1 for TYPE1, TYPE1v2 and UNMAP_ALL; UPDATE_VADDR only once a container
  has the driver; DMA_CC_IOMMU 0); ``VFIO_SET_IOMMU`` needs a group (``EINVAL``),
  only once (``EINVAL``), and a type the driver takes (``ENODEV``); before
  ``SET_IOMMU`` every other command is ``EINVAL``, after it the type1 backend
  (:mod:`.type1`) answers (``ENOTTY`` for what it does not know); the last group
  leaving takes the backend and its mappings with it;
* group: a single opener (``EBUSY``), and none while a device of the group is bound
  through its cdev (``EBUSY``); ``VFIO_GROUP_GET_STATUS`` (``VIABLE``, plus
  ``CONTAINER_SET``); ``VFIO_GROUP_SET_CONTAINER`` takes a container fd or an
  iommufd (anything else ``EBADFD``, a bad fd ``EBADF``, already set ``EINVAL``);
  ``VFIO_GROUP_UNSET_CONTAINER`` (``EINVAL`` when unset, ``EBUSY`` with a device
  open); ``VFIO_GROUP_GET_DEVICE_FD`` by name (``ENODEV``; ``EINVAL`` before a
  container with an IOMMU driver), a close-on-exec fd.
"""

from __future__ import annotations

import os
import re
import struct
from errno import EBADFD, EBUSY, EINVAL, ENODEV
from typing import TYPE_CHECKING

from mockkernel.driver import (
    FMODE_READ,
    FMODE_WRITE,
    PAGE_SIZE,
    File,
    FileOperations,
    Inode,
    TracePoint,
    copy_from_user,
    copy_to_user,
    fd_install,
    fdget,
    get_unused_fd_flags,
    kerr,
    put_unused_fd,
    strndup_user,
)
from mockkernel.uapi.linux.vfio import (
    VFIO_API_VERSION,
    VFIO_CHECK_EXTENSION,
    VFIO_DMA_CC_IOMMU,
    VFIO_GET_API_VERSION,
    VFIO_GROUP_FLAGS_CONTAINER_SET,
    VFIO_GROUP_FLAGS_VIABLE,
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_GROUP_UNSET_CONTAINER,
    VFIO_SET_IOMMU,
    VFIO_TYPE1_IOMMU,
    VFIO_UNMAP_ALL,
    VFIO_UPDATE_VADDR,
    VFIO_TYPE1v2_IOMMU,
)

from .core import VfioGroup
from .device import DeviceFile, vfio_df_group_open
from .iommufd import IommufdFops, iommufd_vfio_compat_ioas_create
from .type1 import Type1Iommu

if TYPE_CHECKING:
    pass

__all__ = ["ContainerFops", "GroupFops", "VfioContainer"]

trace_vfio_group_set_container = TracePoint("vfio.group_set_container", "group", "file")
trace_vfio_group_set_iommufd = TracePoint("vfio.group_set_iommufd", "group", "file")

_FMODE_PREAD = 0x8
_FMODE_PWRITE = 0x10
_TYPE1_TYPES = (VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU)


class VfioContainer:
    """``struct vfio_container``: lives while its file or any group holds it."""

    def __init__(self) -> None:
        self.groups: list[VfioGroup] = []
        self.iommu_type: int | None = None  # the type1 driver is attached when set
        self.iommu: Type1Iommu | None = None

    def check_extension(self, arg: int) -> int:
        """``vfio_iommu_type1_check_extension`` (with or without an iommu)."""
        if arg in (VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL):
            return 1
        if arg == VFIO_UPDATE_VADDR:
            return 1 if self.iommu_type is not None else 0
        if arg == VFIO_DMA_CC_IOMMU:
            return 0
        return 0

    def detach_group(self, group: VfioGroup) -> None:
        """``vfio_group_detach_container``: the last group takes the IOMMU driver with it."""
        self.groups.remove(group)
        group.container = None
        group.container_users = 0
        if not self.groups:
            self.iommu_type = None
            self.iommu = None


# -- /dev/vfio/vfio ---------------------------------------------------------------------------
def _get_api_version(file: File, cmd: int, arg: int) -> int:
    return VFIO_API_VERSION


def _check_extension(file: File[VfioContainer], cmd: int, arg: int) -> int:
    container = file.private_data
    return container.check_extension(arg)


def _set_iommu(file: File[VfioContainer], cmd: int, arg: int) -> int:
    container = file.private_data
    if not container.groups or container.iommu_type is not None:
        raise kerr(EINVAL)
    if arg not in _TYPE1_TYPES:
        raise kerr(ENODEV)  # no registered IOMMU driver takes it
    container.iommu_type = arg
    container.iommu = Type1Iommu(arg)
    return 0


class ContainerFops(FileOperations):
    """``vfio_fops`` of ``/dev/vfio/vfio``."""

    name = "vfio"
    ioctls = {
        VFIO_GET_API_VERSION: _get_api_version,
        VFIO_CHECK_EXTENSION: _check_extension,
        VFIO_SET_IOMMU: _set_iommu,
    }

    def open(self, file: File) -> None:
        file.private_data = VfioContainer()

    def unlocked_ioctl(self, file: File[VfioContainer], cmd: int, arg: int) -> int:
        handler = self.ioctls.get(cmd)
        if handler is not None:
            return handler(file, cmd, arg)
        container = file.private_data
        if container.iommu is None:
            raise kerr(EINVAL)  # no IOMMU driver yet: vfio_fops_unl_ioctl's ret stays -EINVAL
        return container.iommu.ioctl(cmd, arg)


# -- /dev/vfio/<group> ------------------------------------------------------------------------
def _group(file: File[VfioGroup]) -> VfioGroup:
    group = file.private_data
    return group


def _get_status(file: File, cmd: int, arg: int) -> int:
    group = _group(file)
    argsz, _flags = struct.unpack("<II", copy_from_user(arg, 8))
    if argsz < 8:
        raise kerr(EINVAL)
    flags = 0
    if group.has_iommu():
        flags = VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE
    elif not group.cdev_device_open_cnt:  # DMA ownership not claimed by a cdev
        flags = VFIO_GROUP_FLAGS_VIABLE
    copy_to_user(arg, struct.pack("<II", argsz, flags))
    return 0


def _set_container(file: File, cmd: int, arg: int) -> int:
    group = _group(file)
    kernel = file.kernel
    (fd,) = struct.unpack("<i", copy_from_user(arg, 4))
    other = fdget(kernel, fd)  # EBADF: no file; None: a real file (not ours)
    if group.has_iommu():
        raise kerr(EINVAL)
    if other is not None and isinstance(other.f_op, ContainerFops):
        container: VfioContainer = other.private_data
        if group.cdev_device_open_cnt:
            raise kerr(EBUSY)  # iommu_group_claim_dma_owner: owned through a cdev
        group.container = container
        group.container_users = 1
        container.groups.append(group)
        trace_vfio_group_set_container(kernel.tracer, group.number, other.id)
        return 0
    if other is not None and isinstance(other.f_op, IommufdFops):
        iommufd_vfio_compat_ioas_create(other.private_data)
        group.iommufd = other.private_data
        group.iommufd_file = other.get()
        trace_vfio_group_set_iommufd(kernel.tracer, group.number, other.id)
        return 0
    raise kerr(EBADFD)  # the fd passed is not recognized


def _unset_container(file: File, cmd: int, arg: int) -> int:
    group = _group(file)
    if not group.has_iommu():
        raise kerr(EINVAL)
    if group.container is not None:
        if group.container_users != 1:
            raise kerr(EBUSY)
        group.container.detach_group(group)
    _drop_iommufd(group)
    return 0


def _drop_iommufd(group: VfioGroup) -> None:
    if group.iommufd is not None:
        group.iommufd = None
        f, group.iommufd_file = group.iommufd_file, None
        if f is not None:
            f.put()


def _get_device_fd(file: File, cmd: int, arg: int) -> int:
    group = _group(file)
    kernel = file.kernel
    name = strndup_user(arg, PAGE_SIZE).decode("utf-8", "replace")
    vdev = next((d for d in group.devices if _match(d.pdev.bdf, name)), None)
    if vdev is None:
        raise kerr(ENODEV)
    if not group.has_iommu():
        raise kerr(EINVAL)
    fd = get_unused_fd_flags(kernel, os.O_CLOEXEC)
    try:
        df = DeviceFile(vdev, group)
        vfio_df_group_open(df)
    except BaseException:
        put_unused_fd(kernel, fd)
        raise
    # anon_inode_getfile_fmode("[vfio-device]", ..., O_RDWR, FMODE_PREAD | FMODE_PWRITE)
    dfile = File(
        kernel,
        vdev.fops,
        Inode(kernel.new_id(), 0o600, dev=0x0F),
        os.O_RDWR,
        FMODE_READ | FMODE_WRITE | _FMODE_PREAD | _FMODE_PWRITE,
        df,
    )
    df.file = dfile
    fd_install(kernel, fd, dfile)
    return fd


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _match(bdf: str, name: str) -> bool:
    """``vfio_pci_core_match``: the BDF, then space-separated options (only ``vf_token=``).

    A match with options that do not parse, or with a VF token (the device is neither
    an SR-IOV PF nor a VF), is ``EINVAL``.
    """
    if not name.startswith(bdf):
        return False
    rest = name[len(bdf) :]
    if not rest:
        return True
    if rest[0] != " ":
        return False
    vf_token = False
    i = 0
    while i < len(rest):
        if rest[i] == " ":
            i += 1
            continue
        if not vf_token and rest.startswith("vf_token=", i):
            i += len("vf_token=")
            if not _UUID.match(rest, i):
                raise kerr(EINVAL)
            vf_token = True
            i += 36
        else:
            raise kerr(EINVAL)  # unknown or duplicate option
    if vf_token:
        raise kerr(EINVAL)  # vfio_pci_validate_vf_token: not a PF or VF
    return True


class GroupFops(FileOperations):
    """``vfio_group_fops`` of one ``/dev/vfio/<n>`` (an instance per group)."""

    name = "vfio-group"
    ioctls = {
        VFIO_GROUP_GET_STATUS: _get_status,
        VFIO_GROUP_SET_CONTAINER: _set_container,
        VFIO_GROUP_UNSET_CONTAINER: _unset_container,
        VFIO_GROUP_GET_DEVICE_FD: _get_device_fd,
    }

    def __init__(self, group: VfioGroup) -> None:
        self.group = group

    def open(self, file: File) -> None:
        group = self.group
        if not group.devices:
            raise kerr(ENODEV)
        if group.cdev_device_open_cnt or group.opened_file is not None:
            raise kerr(EBUSY)
        group.opened_file = file
        file.private_data = group

    def release(self, file: File) -> None:
        if file.private_data is not self.group:
            return  # the open failed (the VFS still puts the file)
        group = self.group
        # device fds hold a group file reference: no device is open here
        if group.container is not None:
            group.container.detach_group(group)
        _drop_iommufd(group)
        group.opened_file = None
        file.private_data = None
