"""vfio-pci: PCI functions handed to userspace, and their BARs exported as dma-bufs.

A bundled plugin (entry point ``vfio_pci`` in the ``mockkernel`` group) that uses
only :mod:`mockkernel.driver` and :mod:`mockkernel.uapi`, like any third-party one.
What it adds to a kernel:

* the PCI driver ``"vfio-pci"``: topology devices with ``driver = "vfio-pci"`` bind to
  it.  Per device: ``/dev/vfio/devices/vfioN`` (the cdev) and
  ``/sys/bus/pci/devices/<bdf>/vfio-dev/vfioN``; per IOMMU group: ``/dev/vfio/<n>``;
* the module ``vfio`` (``/dev/vfio/vfio``, the container) and the module ``iommufd``
  (``/dev/iommu``);
* the device fd of :mod:`.device` (info, regions, IRQ info, reset, region
  ``pread``/``pwrite``/``mmap``, ``VFIO_DEVICE_FEATURE``) with the dma-buf exporter
  of :mod:`.dmabuf` and the TPH feature of the booted uAPI profile (:mod:`.profiles`).

Modules: :mod:`.core` (device and group objects), :mod:`.container` (group/container
path), :mod:`.iommufd`, :mod:`.device`, :mod:`.config` (the config region),
:mod:`.dmabuf`, :mod:`.tph`, :mod:`.profiles`.

Topology options (``[devices.options]``):

* ``reset = false``: the device reports no reset support (``VFIO_DEVICE_FLAGS_RESET``
  clear, ``VFIO_DEVICE_RESET`` ``EINVAL``), as Linux 7.2 does for QEMU's ivshmem;
* ``dma_buf = false``: the driver has no ``pci_ops->get_dmabuf_phys`` (as a variant
  driver may not): ``VFIO_DEVICE_FEATURE_DMA_BUF`` is ``EOPNOTSUPP``, PROBE included.
"""

from __future__ import annotations

import posixpath

import mockkernel
from mockkernel.driver import (
    MINORMASK,
    MKDEV,
    DriverRegistry,
    Kernel,
    PciDev,
    TracePoint,
    cdev_device_add,
    cdev_device_del,
    device_sysfs_dir,
    misc_deregister,
    misc_register,
    pci_set_drvdata,
    register_chrdev_region,
    sysfs_create_dir,
    sysfs_create_file,
    sysfs_create_link,
    sysfs_remove_dir,
    sysfs_remove_link,
    unregister_chrdev_region,
)

from .container import ContainerFops, GroupFops
from .core import VfioGroup, VfioPciDevice
from .device import VfioDeviceFops, build_features
from .dmabuf import VfioPciDmaBufOps, make_dmabuf_ops
from .iommufd import IommufdFops
from .profiles import profile_dma_buf_ops

__all__ = ["VfioPci", "VfioPciDevice", "mockkernel_register"]

trace_vfio_pci_probe = TracePoint("vfio_pci.probe", "bdf", "device", "group", "uapi")

VFIO_MINOR = 196  # /dev/vfio/vfio is misc 10:196 (Linux 7.2)
#: dynamic char majors as a typical boot hands them out ("vfio" groups, "vfio-dev" cdevs)
VFIO_GROUP_MAJOR = 241
VFIO_DEV_MAJOR = 240


class VfioPci:
    """The driver of one kernel: ``vfio-pci`` + the ``vfio`` and ``iommufd`` modules."""

    name = "vfio-pci"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.profile = kernel.uapi
        self.dmabuf_ops: VfioPciDmaBufOps = make_dmabuf_ops(profile_dma_buf_ops(self.profile))
        self.features = build_features(self.profile)
        self.devices: dict[str, VfioPciDevice] = {}
        self.groups: dict[int, VfioGroup] = {}
        self._next_index = 0
        self._next_group_minor = 0

    # -- modules ---------------------------------------------------------------------------
    def vfio_init(self, kernel: Kernel) -> None:
        """``vfio_init``: the container misc device, the char regions of the group and
        cdev nodes (``alloc_chrdev_region``; the majors a typical boot hands out) and
        the ``vfio-dev`` class."""
        misc_register(kernel, "vfio", ContainerFops(), minor=VFIO_MINOR, nodename="vfio/vfio")
        register_chrdev_region(kernel, MKDEV(VFIO_GROUP_MAJOR, 0), MINORMASK + 1, "vfio")
        register_chrdev_region(kernel, MKDEV(VFIO_DEV_MAJOR, 0), MINORMASK + 1, "vfio-dev")
        sysfs_create_dir(kernel, "/sys/class/vfio-dev")

    def vfio_exit(self, kernel: Kernel) -> None:
        sysfs_remove_dir(kernel, "/sys/class/vfio-dev")
        unregister_chrdev_region(kernel, MKDEV(VFIO_DEV_MAJOR, 0), MINORMASK + 1)
        unregister_chrdev_region(kernel, MKDEV(VFIO_GROUP_MAJOR, 0), MINORMASK + 1)
        misc_deregister(kernel, "vfio")

    def iommufd_init(self, kernel: Kernel) -> None:
        misc_register(kernel, "iommu", IommufdFops(), mode=0o660)

    def iommufd_exit(self, kernel: Kernel) -> None:
        misc_deregister(kernel, "iommu")

    # -- the PCI driver --------------------------------------------------------------------
    def probe(self, kernel: Kernel, pdev: PciDev) -> None:
        """``vfio_pci_probe``: the group node, the cdev and the ``vfio-dev`` class device."""
        group = self.groups.get(pdev.iommu_group)
        if group is None:
            rdev = MKDEV(VFIO_GROUP_MAJOR, self._next_group_minor)
            self._next_group_minor += 1
            group = VfioGroup(pdev.iommu_group, rdev)
            self.groups[group.number] = group
            cdev_device_add(kernel, rdev, GroupFops(group), f"vfio/{group.number}")
        index = self._next_index
        self._next_index += 1
        vdev = VfioPciDevice(
            kernel, pdev, index, group, self.profile, self.dmabuf_ops, self.features
        )
        vdev.fops = VfioDeviceFops(vdev)
        vdev.all_devices = self.devices
        group.devices.append(vdev)
        self.devices[pdev.bdf] = vdev
        pci_set_drvdata(pdev, vdev)
        cdev_device_add(kernel, MKDEV(VFIO_DEV_MAJOR, index), vdev.fops, _cdev_name(vdev))
        # /sys/devices/.../<bdf>/vfio-dev/vfioN and /sys/class/vfio-dev/vfioN
        classdev = _classdev(vdev)
        sysfs_create_dir(kernel, classdev)
        dev_text = f"{VFIO_DEV_MAJOR}:{index}\n"
        uevent = f"MAJOR={VFIO_DEV_MAJOR}\nMINOR={index}\nDEVNAME=vfio/devices/{vdev.name}\n"
        sysfs_create_file(kernel, f"{classdev}/dev", lambda: dev_text)
        sysfs_create_file(kernel, f"{classdev}/uevent", lambda: uevent)
        sysfs_create_link(kernel, f"{classdev}/subsystem", "../../../../../class/vfio-dev")
        sysfs_create_link(
            kernel,
            f"/sys/class/vfio-dev/{vdev.name}",
            posixpath.relpath(classdev, "/sys/class/vfio-dev"),
        )
        trace_vfio_pci_probe(kernel.tracer, pdev.bdf, vdev.name, group.number, self.profile.name)

    def remove(self, kernel: Kernel, pdev: PciDev) -> None:
        """``vfio_pci_remove``: every fd is closed by now (processes exited first)."""
        vdev = self.devices.pop(pdev.bdf, None)
        if vdev is None:
            return
        vdev.group.devices.remove(vdev)
        pci_set_drvdata(pdev, None)
        sysfs_remove_link(kernel, f"/sys/class/vfio-dev/{vdev.name}")
        sysfs_remove_dir(kernel, _classdev(vdev))
        cdev_device_del(kernel, _cdev_name(vdev))
        if not vdev.group.devices:
            cdev_device_del(kernel, f"vfio/{vdev.group.number}")
            self.groups.pop(vdev.group.number, None)


def _cdev_name(vdev: VfioPciDevice) -> str:
    return f"vfio/devices/{vdev.name}"


def _classdev(vdev: VfioPciDevice) -> str:
    """The ``vfio-dev`` class device in sysfs, under its PCI device."""
    return f"{device_sysfs_dir(vdev.pdev)}/vfio-dev/{vdev.name}"


@mockkernel.hookimpl
def mockkernel_register(registry: DriverRegistry) -> None:
    drv = VfioPci(registry.kernel)
    registry.add_module("vfio", drv.vfio_init, drv.vfio_exit)
    registry.add_module("iommufd", drv.iommufd_init, drv.iommufd_exit)
    registry.add_pci_driver(drv)
