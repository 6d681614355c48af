"""The vfio device fd: ioctls, ``pread``/``pwrite`` at region offsets, ``mmap`` of BARs.

One ``VfioDeviceFops`` per device serves both ways of getting a device fd:
``VFIO_GROUP_GET_DEVICE_FD`` (an anonymous ``[vfio-device]`` file, usable at
once) and ``open("/dev/vfio/devices/vfioN")`` (the cdev, usable only after
``VFIO_DEVICE_BIND_IOMMUFD``).  Upstream (``vfio_main.c``
``vfio_device_fops_unl_ioctl``/``_read``/``_write``/``_mmap``): until access is
granted every ioctl except ``BIND_IOMMUFD`` is ``EINVAL``, and so are read,
write and mmap.

Regions are addressed as upstream: region *i* starts at ``i << 40``
(``VFIO_PCI_OFFSET_SHIFT``); BARs 0-5, ROM 6, config 7, VGA 8.  Values the
reference leaves open were settled on Linux 7.2 (QEMU edu device): see
``docs/uapi-profiles.md`` and the comments below.
"""

from __future__ import annotations

import mmap as _mmap
import os
import struct
from errno import EBUSY, EFAULT, EINVAL, EIO, ENODEV, ENOSPC, ENOTTY, EOPNOTSUPP, EPERM
from typing import TYPE_CHECKING

from mockkernel.driver import (
    PAGE_SIZE,
    File,
    FileOperations,
    PciBar,
    PciDev,
    Vma,
    copy_from_user,
    copy_to_user,
    device_sysfs_dir,
    fdget,
    for_each_pci_dev,
    kernel_close,
    kerr,
    pci_disable_device,
    pci_enable_device,
)
from mockkernel.uapi.linux.pci_regs import PCI_COMMAND, PCI_COMMAND_MEMORY
from mockkernel.uapi.linux.vfio import (
    VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    VFIO_DEVICE_ATTACH_PASID,
    VFIO_DEVICE_BIND_FLAG_TOKEN,
    VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_DETACH_IOMMUFD_PT,
    VFIO_DEVICE_DETACH_PASID,
    VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_FEATURE_DMA_BUF,
    VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
    VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
    VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
    VFIO_DEVICE_FEATURE_GET,
    VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
    VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
    VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
    VFIO_DEVICE_FEATURE_MASK,
    VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
    VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    VFIO_DEVICE_FEATURE_MIGRATION,
    VFIO_DEVICE_FEATURE_PROBE,
    VFIO_DEVICE_FEATURE_SET,
    VFIO_DEVICE_FLAGS_PCI,
    VFIO_DEVICE_FLAGS_RESET,
    VFIO_DEVICE_GET_INFO,
    VFIO_DEVICE_GET_IRQ_INFO,
    VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
    VFIO_DEVICE_GET_REGION_INFO,
    VFIO_DEVICE_PCI_HOT_RESET,
    VFIO_DEVICE_RESET,
    VFIO_DEVICE_SET_IRQS,
    VFIO_IRQ_INFO_AUTOMASKED,
    VFIO_IRQ_INFO_EVENTFD,
    VFIO_IRQ_INFO_MASKABLE,
    VFIO_IRQ_INFO_NORESIZE,
    VFIO_PCI_BAR5_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_DEVID_NOT_OWNED,
    VFIO_PCI_ERR_IRQ_INDEX,
    VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
    VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
    VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_IRQS,
    VFIO_PCI_NUM_REGIONS,
    VFIO_PCI_ROM_REGION_INDEX,
    VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
    VFIO_REGION_INFO_FLAG_CAPS,
    VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
    VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
)

from .config import PCI_D0, VConfig, config_size, set_power_state
from .core import FeatureHandler, VfioGroup, VfioPciDevice, vfio_check_feature
from .dmabuf import dma_buf_cleanup, dma_buf_move, feature_dma_buf
from .intrs import eventfd_ctx_fdget, irq_count, irqs_close, set_irqs
from .iommufd import IommufdCtx, iommufd_ctx_from_fd
from .profiles import profile_features

if TYPE_CHECKING:
    from mockkernel.driver import UapiProfile

__all__ = [
    "VFIO_PCI_OFFSET_SHIFT",
    "DeviceFile",
    "VfioDeviceFops",
    "build_features",
    "vfio_df_group_open",
]

VFIO_PCI_OFFSET_SHIFT = 40
VFIO_PCI_OFFSET_MASK = (1 << VFIO_PCI_OFFSET_SHIFT) - 1
_FEATURE_FLAGS = (
    VFIO_DEVICE_FEATURE_MASK
    | VFIO_DEVICE_FEATURE_GET
    | VFIO_DEVICE_FEATURE_SET
    | VFIO_DEVICE_FEATURE_PROBE
)
#: features the vfio core answers itself: a vfio-pci device has no migration or
#: dirty-logging ops, so these are ENOTTY (Linux 7.2)
_CORE_ENOTTY = frozenset(
    {
        VFIO_DEVICE_FEATURE_MIGRATION,
        VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
        VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
    }
)


class DeviceFile:
    """``struct vfio_device_file``: what one device fd knows."""

    __slots__ = ("access_granted", "device", "file", "group", "iommufd_ctx", "iommufd_file")

    def __init__(self, device: VfioPciDevice, group: VfioGroup | None) -> None:
        self.device = device
        self.group = group  # None: opened through the cdev
        self.access_granted = False
        self.iommufd_file: File | None = None  # the cdev's bound /dev/iommu (a reference)
        self.iommufd_ctx: IommufdCtx | None = None
        self.file: File | None = None


def _trace(vdev: VfioPciDevice, event: str, **fields: object) -> None:
    vdev.kernel.tracer.emit(event, bdf=vdev.pdev.bdf, **fields)  # (fields vary: no TracePoint)


# -- open / close (vfio_main.c vfio_df_open/close, vfio_pci_core_enable/disable) ------------
def _core_enable(vdev: VfioPciDevice) -> None:
    """``vfio_pci_core_enable``: enable the device, save its state, build the vconfig."""
    pdev = vdev.pdev
    cmd = pdev.pci_read_config_word(PCI_COMMAND)
    if pdev.bars and not cmd & PCI_COMMAND_MEMORY:  # pci_enable_device
        pdev.pci_write_config_word(PCI_COMMAND, cmd | PCI_COMMAND_MEMORY)
    set_power_state(pdev, PCI_D0)  # vfio_pci_set_power_state(vdev, PCI_D0)
    vdev.saved_command = pdev.pci_read_config_word(PCI_COMMAND)
    vdev.vconfig = VConfig(vdev)
    pci_enable_device(pdev)  # the count: sysfs "enable" is 1 while the device is open
    _trace(vdev, "vfio_pci.open_device", device=vdev.name)


def _core_close(vdev: VfioPciDevice) -> None:
    """``vfio_pci_core_close_device``: dma-bufs revoked for good, then the device disabled."""
    dma_buf_cleanup(vdev)
    irqs_close(vdev)
    with vdev.memory_write():
        vdev.pm_runtime_engaged = False
        vdev.pm_close_wake_fd()
    vdev.vconfig = None
    set_power_state(vdev.pdev, PCI_D0)  # vfio_pci_core_disable
    vdev.pdev.pci_write_config_word(PCI_COMMAND, vdev.saved_command)  # pci_restore_state
    pci_disable_device(vdev.pdev)
    _trace(vdev, "vfio_pci.close_device", device=vdev.name)


def _df_open(df: DeviceFile) -> None:
    """``vfio_df_open``: the cdev path opens a device only once."""
    vdev = df.device
    if vdev.open_count and df.group is None:
        raise kerr(EINVAL)
    vdev.open_count += 1
    if vdev.open_count > 1:
        return
    try:
        group = df.group
        if group is not None and group.container is not None:
            # vfio_group_use_container
            if group.container.iommu_type is None:
                raise kerr(EINVAL)
            assert group.opened_file is not None
            group.opened_file.get()
            group.container_users += 1
        elif df.iommufd_ctx is not None:
            vdev.iommufd_device = df.iommufd_ctx.bind(vdev)
        _core_enable(vdev)
    except BaseException:
        _undo_first_open(df)
        vdev.open_count -= 1
        raise


def _undo_first_open(df: DeviceFile) -> None:
    vdev = df.device
    group = df.group
    if group is not None and group.container is not None and group.container_users > 1:
        group.container_users -= 1
        assert group.opened_file is not None
        group.opened_file.put()
    if vdev.iommufd_device is not None and df.iommufd_ctx is not None:
        df.iommufd_ctx.unbind(vdev.iommufd_device)
        vdev.iommufd_device = None


def _df_close(df: DeviceFile) -> None:
    vdev = df.device
    vdev.open_count -= 1
    if vdev.open_count:
        return
    _core_close(vdev)
    _undo_first_open(df)


def vfio_df_group_open(df: DeviceFile) -> None:
    """``vfio_df_group_open``: open through a group set to a container or an iommufd."""
    group = df.group
    assert group is not None
    if not group.has_iommu():
        raise kerr(EINVAL)
    df.iommufd_ctx = group.iommufd
    first = df.device.open_count == 0
    _df_open(df)
    vdev = df.device
    if first and group.iommufd is not None and vdev.iommufd_device is not None:
        compat = group.iommufd.vfio_compat_ioas
        if compat is not None:
            group.iommufd.attach(vdev.iommufd_device, compat.id)
    df.access_granted = True


# -- runtime PM: an access wakes a device that entered low power with a wakeup eventfd ----
def _pm_runtime_get(vdev: VfioPciDevice) -> None:
    """``vfio_pci_core_runtime_resume`` with a wakeup eventfd: signal it, leave low power."""
    if not vdev.pm_runtime_engaged or vdev.pm_wake_fd is None:
        return
    os.write(vdev.pm_wake_fd, (1).to_bytes(8, "little"))
    _pm_exit(vdev)


def _pm_exit(vdev: VfioPciDevice) -> None:
    """``vfio_pci_runtime_pm_exit``."""
    with vdev.memory_write():
        if vdev.pm_runtime_engaged:
            vdev.pm_runtime_engaged = False
            vdev.pm_close_wake_fd()
        if vdev.memory_enabled():
            dma_buf_move(vdev, False, "low_power_exit")


def _pm_entry(vdev: VfioPciDevice, wake_fd: int | None) -> int:
    """``vfio_pci_runtime_pm_entry``: revokes first, then ``EINVAL`` if already engaged."""
    with vdev.memory_write():
        dma_buf_move(vdev, True, "low_power")
        if vdev.pm_runtime_engaged:
            if wake_fd is not None:
                kernel_close(vdev.kernel, wake_fd)
            raise kerr(EINVAL)
        vdev.pm_runtime_engaged = True
        vdev.pm_wake_fd = wake_fd
    _trace(vdev, "vfio_pci.low_power_entry", wakeup=wake_fd is not None)
    return 0


def _feature_pm_entry(vdev: VfioPciDevice, flags: int, arg: int, argsz: int) -> int:
    if vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0) != 1:
        return 0
    return _pm_entry(vdev, None)


def _feature_pm_entry_wakeup(vdev: VfioPciDevice, flags: int, arg: int, argsz: int) -> int:
    if vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 8) != 1:
        return 0
    (wakeup_eventfd,) = struct.unpack("<i", copy_from_user(arg, 4))
    if wakeup_eventfd < 0:
        raise kerr(EINVAL)
    return _pm_entry(vdev, eventfd_ctx_fdget(vdev, wakeup_eventfd))


def _feature_pm_exit(vdev: VfioPciDevice, flags: int, arg: int, argsz: int) -> int:
    if vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0) != 1:
        return 0
    _pm_exit(vdev)
    return 0


def build_features(profile: UapiProfile) -> dict[int, FeatureHandler]:
    """``vfio_pci_core_ioctl_feature``'s switch, plus the profile's extra indexes.

    Not listed, so ``ENOTTY``: 0 (PCI_VF_TOKEN: not an SR-IOV PF), 10 (BUS_MASTER:
    vfio-cdx only), and every unknown index.
    """
    table: dict[int, FeatureHandler] = {
        VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: _feature_pm_entry,
        VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: _feature_pm_entry_wakeup,
        VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: _feature_pm_exit,
        VFIO_DEVICE_FEATURE_DMA_BUF: feature_dma_buf,
    }
    table.update(profile_features(profile))
    return table


# -- ioctls ---------------------------------------------------------------------------------
def _vdev(file: File[DeviceFile]) -> VfioPciDevice:
    df = file.private_data
    return df.device


def _ioctl_feature(file: File, cmd: int, arg: int) -> int:
    """``vfio_ioctl_device_feature``: the core checks, then dispatch by index."""
    vdev = _vdev(file)
    argsz, flags = struct.unpack("<II", copy_from_user(arg, 8))
    if argsz < 8:
        raise kerr(EINVAL)
    if flags & ~_FEATURE_FLAGS:
        raise kerr(EINVAL)
    if (
        not flags & VFIO_DEVICE_FEATURE_PROBE
        and flags & VFIO_DEVICE_FEATURE_SET
        and flags & VFIO_DEVICE_FEATURE_GET
    ):
        raise kerr(EINVAL)
    index = flags & VFIO_DEVICE_FEATURE_MASK
    if index in _CORE_ENOTTY:
        raise kerr(ENOTTY)
    if index == VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2:
        raise kerr(EINVAL)  # Linux 7.2 answered EINVAL for every flag combination
    handler = vdev.features.get(index)
    if handler is None:
        raise kerr(ENOTTY)
    return handler(vdev, flags, arg + 8, argsz - 8)


def _ioctl_get_info(file: File, cmd: int, arg: int) -> int:
    vdev = _vdev(file)
    (argsz,) = struct.unpack("<I", copy_from_user(arg, 4))
    if argsz < 16:
        raise kerr(EINVAL)
    flags = VFIO_DEVICE_FLAGS_PCI | (VFIO_DEVICE_FLAGS_RESET if vdev.reset_works else 0)
    out = struct.pack("<IIIIII", argsz, flags, VFIO_PCI_NUM_REGIONS, VFIO_PCI_NUM_IRQS, 0, 0)
    copy_to_user(arg, out[: min(argsz, len(out))])
    return 0


def bar_mmap_supported(bar: PciBar) -> bool:
    """``vfio_pci_probe_mmaps``: a BAR of a page or more, or a smaller one that starts a
    page (the rest of which vfio-pci reserves), can be mapped; userspace then maps the
    whole page."""
    return bar.size >= PAGE_SIZE or not bar.bus_address % PAGE_SIZE


def _msix_bar(vdev: VfioPciDevice) -> int | None:
    pdev = vdev.pdev
    if not pdev.msix_cap:
        return None
    return pdev.pci_read_config_dword(pdev.msix_cap + 4) & 0x7


def _ioctl_get_region_info(file: File, cmd: int, arg: int) -> int:
    vdev = _vdev(file)
    pdev = vdev.pdev
    raw = bytearray(copy_from_user(arg, 32))
    argsz, _flags, index, cap_offset = struct.unpack_from("<IIII", raw)
    if argsz < 32:
        raise kerr(EINVAL)
    size = 0
    flags = 0
    caps = b""
    if index == VFIO_PCI_CONFIG_REGION_INDEX:
        size = config_size(pdev)
        flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
    elif index <= VFIO_PCI_BAR5_REGION_INDEX:
        bar = pdev.bars.get(index)
        if bar is not None:
            size = bar.size
            flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            if bar_mmap_supported(bar):
                flags |= VFIO_REGION_INFO_FLAG_MMAP
            if index == _msix_bar(vdev):
                # struct vfio_info_cap_header {id, version 1, next 0}
                caps = struct.pack("<HHI", VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, 0)
    elif index == VFIO_PCI_ROM_REGION_INDEX:
        pass  # no expansion ROM in this model: size 0, flags 0
    else:
        raise kerr(EINVAL)  # VGA (no VGA device) and anything past the last region
    if caps:
        flags |= VFIO_REGION_INFO_FLAG_CAPS
        if argsz < 32 + len(caps):
            argsz = 32 + len(caps)
            cap_offset = 0
        else:
            copy_to_user(arg + 32, caps)
            cap_offset = 32
    struct.pack_into(
        "<IIIIQQ", raw, 0, argsz, flags, index, cap_offset, size, index << VFIO_PCI_OFFSET_SHIFT
    )
    copy_to_user(arg, bytes(raw))
    return 0


def _ioctl_get_irq_info(file: File, cmd: int, arg: int) -> int:
    vdev = _vdev(file)
    argsz, _flags, index, _count = struct.unpack("<IIII", copy_from_user(arg, 16))
    if argsz < 16 or index >= VFIO_PCI_NUM_IRQS:
        raise kerr(EINVAL)
    if index == VFIO_PCI_ERR_IRQ_INDEX and not vdev.pdev.pci_is_pcie():
        raise kerr(EINVAL)
    flags = VFIO_IRQ_INFO_EVENTFD
    if index == VFIO_PCI_INTX_IRQ_INDEX:
        flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED
    elif index != VFIO_PCI_MSIX_IRQ_INDEX or not vdev.pdev.msix_cap:
        flags |= VFIO_IRQ_INFO_NORESIZE  # [I] MSI-X resizes (dynamic allocation on x86)
    copy_to_user(arg, struct.pack("<IIII", argsz, flags, index, irq_count(vdev, index)))
    return 0


def _ioctl_set_irqs(file: File, cmd: int, arg: int) -> int:
    """``vfio_pci_ioctl_set_irqs`` (intrs.py)."""
    return set_irqs(_vdev(file), arg)


def _ioctl_reset(file: File, cmd: int, arg: int) -> int:
    """``vfio_pci_ioctl_reset``: revoke, reset (config space is saved and restored), re-enable.
    The interrupts stay as they are (the reset saves and restores MSI state; Linux 7.2)."""
    vdev = _vdev(file)
    if not vdev.reset_works:
        raise kerr(EINVAL)
    with vdev.memory_write():
        set_power_state(vdev.pdev, PCI_D0)  # the reset may come in D3hot
        dma_buf_move(vdev, True, "reset")
        _trace(vdev, "vfio_pci.reset")
        if vdev.memory_enabled():
            dma_buf_move(vdev, False, "reset")
    return 0


# -- hot reset (vfio_pci_core.c) ----------------------------------------------------------
def _reset_peers(vdev: VfioPciDevice) -> list[PciDev]:
    """The functions a bus reset would hit: those on the device's bus.  ``ENODEV`` on a root
    bus (neither a slot nor a bus reset is possible there, as for QEMU's ivshmem on bus 0)."""
    pdev = vdev.pdev
    if pdev.busnr == 0:
        raise kerr(ENODEV)
    return [
        p
        for p in for_each_pci_dev(vdev.kernel)
        if p.domain == pdev.domain and p.busnr == pdev.busnr
    ]


def _ioctl_get_pci_hot_reset_info(file: File, cmd: int, arg: int) -> int:
    vdev = _vdev(file)
    argsz, _flags, _count = struct.unpack("<III", copy_from_user(arg, 12))
    if argsz < 12:
        raise kerr(EINVAL)
    peers = _reset_peers(vdev)
    count = len(peers)
    if count > (argsz - 12) // 8:
        copy_to_user(arg, struct.pack("<III", argsz, 0, count))
        raise kerr(ENOSPC)
    flags = 0
    entries = []
    if vdev.cdev_opened:
        flags = VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED
    for p in peers:
        if vdev.cdev_opened:
            peer = vdev.all_devices.get(p.bdf)
            owned = peer is not None and peer.iommufd_device is not None
            ident = peer.iommufd_device.id if owned and peer is vdev and peer.iommufd_device else 0
            ident = ident if owned else VFIO_PCI_DEVID_NOT_OWNED & 0xFFFFFFFF
        else:
            ident = p.iommu_group
        entries.append(struct.pack("<IHBB", ident, p.domain, p.busnr, p.devfn))
    copy_to_user(arg + 12, b"".join(entries))
    copy_to_user(arg, struct.pack("<III", argsz, flags, count))
    return 0


def _ioctl_pci_hot_reset(file: File, cmd: int, arg: int) -> int:
    """``vfio_pci_ioctl_pci_hot_reset``: group fds prove ownership of every affected group."""
    vdev = _vdev(file)
    argsz, flags, count = struct.unpack("<III", copy_from_user(arg, 12))
    if argsz < 12 or flags:
        raise kerr(EINVAL)
    if bool(count) == vdev.cdev_opened:  # a zero-length array is for cdev devices only
        raise kerr(EINVAL)
    peers = _reset_peers(vdev)
    affected = [vdev.all_devices[p.bdf] for p in peers if p.bdf in vdev.all_devices]
    if count:
        if count > len(peers):
            raise kerr(EINVAL)
        fds = struct.unpack(f"<{count}i", copy_from_user(arg + 12, 4 * count))
        groups = set()
        for fd in fds:
            f = fdget(vdev.kernel, fd)  # EBADF: no file at all
            if f is None:
                raise kerr(EINVAL)  # a real file: not a group
            group = getattr(f.f_op, "group", None)
            if not isinstance(group, VfioGroup) or f.private_data is not group:
                raise kerr(EINVAL)
            groups.add(group.number)
        if any(d.group.number not in groups for d in affected):
            raise kerr(EINVAL)
    elif any(d.open_count and d.iommufd_device is None for d in affected):
        raise kerr(EPERM)  # [I] an affected device is opened by someone else
    for d in affected:
        if not d.open_count:
            continue
        with d.memory_write():
            dma_buf_move(d, True, "hot_reset")
            if d.memory_enabled():
                dma_buf_move(d, False, "hot_reset")
    _trace(vdev, "vfio_pci.hot_reset", devices=len(peers))
    return 0


# -- the cdev path: BIND_IOMMUFD, ATTACH/DETACH_IOMMUFD_PT (device_cdev.c) -------------------
def _bind_iommufd(df: DeviceFile, arg: int) -> int:
    vdev = df.device
    kernel = vdev.kernel
    argsz, flags, iommufd = struct.unpack("<IIi", copy_from_user(arg, 12))
    copy_from_user(arg + 12, 4)  # minsz = offsetofend(out_devid)
    if argsz < 16 or flags & ~VFIO_DEVICE_BIND_FLAG_TOKEN or iommufd < 0:
        raise kerr(EINVAL)
    if df.group is not None:
        raise kerr(EINVAL)  # BIND_IOMMUFD only for cdev fds
    token = False
    if flags & VFIO_DEVICE_BIND_FLAG_TOKEN:
        if argsz < 24:
            raise kerr(EINVAL)
        (uuid_ptr,) = struct.unpack("<Q", copy_from_user(arg + 16, 8))
        copy_from_user(uuid_ptr, 16)
        token = True
    group = vdev.group
    if group.opened_file is not None:  # vfio_device_block_group
        raise kerr(EBUSY)
    group.cdev_device_open_cnt += 1
    try:
        if df.access_granted:
            raise kerr(EINVAL)  # one device cannot be bound twice
        ifile = iommufd_ctx_from_fd(kernel, iommufd)
        try:
            if token:
                raise kerr(EINVAL)  # [I] a VF token for a device that is not a PF or VF
            df.iommufd_file = ifile
            df.iommufd_ctx = ifile.private_data
            _df_open(df)
            try:
                assert vdev.iommufd_device is not None
                copy_to_user(arg + 12, struct.pack("<I", vdev.iommufd_device.id))
            except BaseException:
                _df_close(df)
                raise
        except BaseException:
            df.iommufd_file = None
            df.iommufd_ctx = None
            ifile.put()
            raise
    except BaseException:
        group.cdev_device_open_cnt -= 1
        raise
    vdev.cdev_opened = True
    df.access_granted = True
    _trace(vdev, "vfio.bind_iommufd", devid=vdev.iommufd_device.id)
    return 0


def _attach_pt(df: DeviceFile, arg: int) -> int:
    vdev = df.device
    argsz, flags, pt_id = struct.unpack("<III", copy_from_user(arg, 12))
    if argsz < 12 or flags & ~VFIO_DEVICE_ATTACH_PASID:
        raise kerr(EINVAL)
    if flags & VFIO_DEVICE_ATTACH_PASID:
        raise kerr(EOPNOTSUPP)  # [I] no PASID capability in the device model
    ictx = df.iommufd_ctx
    idev = vdev.iommufd_device
    if ictx is None or idev is None:
        raise kerr(EINVAL)
    ioas = ictx.attach(idev, pt_id)
    vdev.iommufd_ioas = ioas
    try:
        copy_to_user(arg + 8, struct.pack("<I", ioas.id))
    except OSError:
        ictx.detach(idev)
        vdev.iommufd_ioas = None
        raise kerr(EFAULT) from None
    _trace(vdev, "vfio.attach_ioas", ioas=ioas.id)
    return 0


def _detach_pt(df: DeviceFile, arg: int) -> int:
    vdev = df.device
    argsz, flags = struct.unpack("<II", copy_from_user(arg, 8))
    if argsz < 8 or flags & ~VFIO_DEVICE_DETACH_PASID:
        raise kerr(EINVAL)
    if flags & VFIO_DEVICE_DETACH_PASID:
        raise kerr(EOPNOTSUPP)
    if df.iommufd_ctx is not None and vdev.iommufd_device is not None:
        df.iommufd_ctx.detach(vdev.iommufd_device)
    vdev.iommufd_ioas = None
    return 0


# -- read / write / mmap (vfio_pci_rw, vfio_pci_core_mmap) -----------------------------------
def _region_rw(df: DeviceFile, pos: int, count: int, data: bytes | None) -> bytes | int:
    vdev = df.device
    index = pos >> VFIO_PCI_OFFSET_SHIFT
    off = pos & VFIO_PCI_OFFSET_MASK
    if index >= VFIO_PCI_NUM_REGIONS:
        raise kerr(EINVAL)
    _pm_runtime_get(vdev)
    if index == VFIO_PCI_CONFIG_REGION_INDEX:
        assert vdev.vconfig is not None
        got = vdev.vconfig.rw(off, count, data)
        return got if data is None else count
    if index > VFIO_PCI_BAR5_REGION_INDEX:
        raise kerr(EINVAL)  # no ROM (a write is EINVAL anyway), no VGA
    bar = vdev.pdev.bars.get(index)
    if bar is None or off >= bar.size:
        raise kerr(EINVAL)
    n = min(count, bar.size - off)
    vdev.memory_lock.down_read()
    try:
        if not vdev.memory_enabled():
            raise kerr(EIO)
        if data is None:
            return bar.map.read(off, n)
        bar.map.write(off, data[:n])
        return n
    finally:
        vdev.memory_lock.up_read()


class VfioDeviceFops(FileOperations):
    """``vfio_device_fops`` of one device (the cdev's fops; group-path fds share them)."""

    name = "[vfio-device]"
    ioctls = {
        VFIO_DEVICE_FEATURE: _ioctl_feature,
        VFIO_DEVICE_GET_INFO: _ioctl_get_info,
        VFIO_DEVICE_GET_REGION_INFO: _ioctl_get_region_info,
        VFIO_DEVICE_GET_IRQ_INFO: _ioctl_get_irq_info,
        VFIO_DEVICE_SET_IRQS: _ioctl_set_irqs,
        VFIO_DEVICE_RESET: _ioctl_reset,
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: _ioctl_get_pci_hot_reset_info,
        VFIO_DEVICE_PCI_HOT_RESET: _ioctl_pci_hot_reset,
    }

    def __init__(self, vdev: VfioPciDevice) -> None:
        self.vdev = vdev

    def open(self, file: File) -> None:
        """``vfio_device_fops_cdev_open``: access is granted later, by BIND_IOMMUFD;
        ``ENODEV`` while the driver is being removed."""
        self.vdev.try_get_registration()
        df = DeviceFile(self.vdev, None)
        df.file = file
        file.private_data = df

    def show_fdinfo(self, file: File) -> str:
        """``vfio_device_show_fdinfo``: the device's sysfs path (every device fd, from the
        cdev or from a group)."""
        return f"vfio-device-syspath: {device_sysfs_dir(self.vdev.pdev)}\n"

    def release(self, file: File[DeviceFile | None]) -> None:
        df = file.private_data
        if df is None:
            return
        try:
            self._release(df)
        finally:
            self.vdev.put_registration()

    def _release(self, df: DeviceFile) -> None:
        if df.group is not None:
            _df_close(df)
            return
        if not df.access_granted:  # vfio_df_unbind_iommufd
            return
        _df_close(df)
        f, df.iommufd_file = df.iommufd_file, None
        df.iommufd_ctx = None
        self.vdev.cdev_opened = False
        self.vdev.group.cdev_device_open_cnt -= 1
        if f is not None:
            f.put()

    def unlocked_ioctl(self, file: File[DeviceFile], cmd: int, arg: int) -> int:
        df = file.private_data
        if cmd == VFIO_DEVICE_BIND_IOMMUFD:
            return _bind_iommufd(df, arg)
        if not df.access_granted:
            raise kerr(EINVAL)
        _pm_runtime_get(df.device)
        if df.group is None:
            if cmd == VFIO_DEVICE_ATTACH_IOMMUFD_PT:
                return _attach_pt(df, arg)
            if cmd == VFIO_DEVICE_DETACH_IOMMUFD_PT:
                return _detach_pt(df, arg)
        handler = self.ioctls.get(cmd)
        if handler is None:
            raise kerr(ENOTTY)
        return handler(file, cmd, arg)

    def read(self, file: File[DeviceFile], count: int, pos: int) -> bytes:
        df = file.private_data
        if not df.access_granted:
            raise kerr(EINVAL)
        if not count:
            return b""
        got = _region_rw(df, pos, count, None)
        assert isinstance(got, bytes)
        return got

    def write(self, file: File[DeviceFile], data: bytes, pos: int) -> int:
        df = file.private_data
        if not df.access_granted:
            raise kerr(EINVAL)
        if not data:
            return 0
        got = _region_rw(df, pos, len(data), data)
        assert isinstance(got, int)
        return got

    def mmap(self, file: File[DeviceFile], vma: Vma) -> None:
        df = file.private_data
        if not df.access_granted:
            raise kerr(EINVAL)
        vdev = df.device
        index = vma.pgoff >> (VFIO_PCI_OFFSET_SHIFT - 12)
        if index >= VFIO_PCI_NUM_REGIONS:
            raise kerr(EINVAL)
        if not vma.flags & _mmap.MAP_SHARED:
            raise kerr(EINVAL)
        if index >= VFIO_PCI_ROM_REGION_INDEX:
            raise kerr(EINVAL)
        bar = vdev.pdev.bars.get(index)
        if bar is None or not bar_mmap_supported(bar):
            raise kerr(EINVAL)  # bar_mmap_supported is false (an absent BAR too)
        phys_len = (bar.size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        req_len = (vma.length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        req_start = (vma.pgoff & ((1 << (VFIO_PCI_OFFSET_SHIFT - 12)) - 1)) * PAGE_SIZE
        if req_start + req_len > phys_len:
            raise kerr(EINVAL)
        vma.remap(bar.memfd, req_start, vma.length)
        # no page is inserted before the first access, whose fault refuses while the device
        # cannot be accessed (vfio_pci_mmap_huge_fault)
        vma.zapped = not vdev.bar_mmaps_accessible()
