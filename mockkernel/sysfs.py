"""sysfs for the topology's PCI devices, laid out as Linux does.

::

    /sys/devices/pci0000:00/<bdf>/{vendor,device,class,revision,subsystem_*}
    /sys/devices/pci0000:00/<bdf>/driver      -> ../../../bus/pci/drivers/<name>
    /sys/devices/pci0000:00/<bdf>/iommu_group -> ../../../kernel/iommu_groups/<n>
    /sys/bus/pci/devices/<bdf>                -> ../../../devices/pci0000:00/<bdf>
    /sys/bus/pci/drivers/<name>/<bdf>         -> ../../../../devices/pci0000:00/<bdf>
    /sys/kernel/iommu_groups/<n>/devices/<bdf> -> ../../../../devices/pci0000:00/<bdf>
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kernel import Kernel
    from .pci import PciDev

__all__ = ["bind_driver", "device_dir", "populate_pci"]

_DEVICES = "/sys/devices/pci0000:00"


def device_dir(pdev: PciDev) -> str:
    return f"{_DEVICES}/{pdev.bdf}"


def _hex(value: int, width: int) -> str:
    return f"0x{value:0{width}x}\n"


def _const(text: str) -> Callable[[], str]:
    return lambda: text


def populate_pci(kernel: Kernel) -> None:
    vfs = kernel.vfs
    vfs.mkdir("/sys/bus/pci/devices", owned=True)
    vfs.mkdir("/sys/bus/pci/drivers", owned=True)
    vfs.mkdir(_DEVICES, owned=True)
    vfs.mkdir("/sys/kernel/iommu_groups", owned=True)
    assert kernel.pci is not None
    for pdev in kernel.pci.devices:
        d = device_dir(pdev)
        vfs.mkdir(d)
        ids = {
            "vendor": _hex(pdev.vendor, 4),
            "device": _hex(pdev.device, 4),
            "class": _hex(pdev.class_code, 6),
            "revision": _hex(pdev.revision, 2),
            "subsystem_vendor": _hex(pdev.subsystem_vendor, 4),
            "subsystem_device": _hex(pdev.subsystem_device, 4),
        }
        for name, text in ids.items():
            vfs.attr(f"{d}/{name}", _const(text))
        vfs.symlink(f"../../../devices/pci0000:00/{pdev.bdf}", f"/sys/bus/pci/devices/{pdev.bdf}")
        group = f"/sys/kernel/iommu_groups/{pdev.iommu_group}"
        vfs.mkdir(f"{group}/devices")
        vfs.symlink(f"../../../../devices/pci0000:00/{pdev.bdf}", f"{group}/devices/{pdev.bdf}")
        vfs.symlink(f"../../../kernel/iommu_groups/{pdev.iommu_group}", f"{d}/iommu_group")


def bind_driver(kernel: Kernel, pdev: PciDev, name: str) -> None:
    vfs = kernel.vfs
    drv = f"/sys/bus/pci/drivers/{name}"
    vfs.mkdir(drv)
    vfs.symlink(f"../../../../devices/pci0000:00/{pdev.bdf}", f"{drv}/{pdev.bdf}")
    vfs.symlink(f"../../../bus/pci/drivers/{name}", f"{device_dir(pdev)}/driver")
