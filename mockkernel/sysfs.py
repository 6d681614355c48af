"""sysfs for the topology's PCI devices, laid out as Linux does.

::

    /sys/devices/pci0000:00/<bdf>/{vendor,device,class,revision,subsystem_*}
    /sys/devices/pci0000:00/<bdf>/config      binary: the config space (pci_read_config)
    /sys/devices/pci0000:00/<bdf>/resource    text: start, end, flags of each resource
    /sys/devices/pci0000:00/<bdf>/resource<N>[_wc]  binary: mmap of memory BAR N
    /sys/devices/pci0000:00/<bdf>/driver      -> ../../../bus/pci/drivers/<name>
    /sys/devices/pci0000:00/<bdf>/iommu_group -> ../../../kernel/iommu_groups/<n>
    /sys/bus/pci/devices/<bdf>                -> ../../../devices/pci0000:00/<bdf>
    /sys/bus/pci/drivers/<name>/<bdf>         -> ../../../../devices/pci0000:00/<bdf>
    /sys/kernel/iommu_groups/<n>/devices/<bdf> -> ../../../../devices/pci0000:00/<bdf>

``config`` (``drivers/pci/pci-sysfs.c``, 0644, ``i_size`` = ``cfg_size``) reads the
device's own registers, not a driver's virtualised view: what ``lspci -x`` shows.  A
reader without ``CAP_SYS_ADMIN`` (here: a non-zero euid) sees only the first 64 bytes.
Root may write it (through the write masks, as ``pci_user_write_config_*``).

``resource`` prints one line per resource as ``resource_show`` does
(``0x%016llx 0x%016llx 0x%016llx``: start, end, ``IORESOURCE_*`` flags): the six
BARs, the expansion ROM and the six SR-IOV BARs (``CONFIG_PCI_IOV``); unused ones are
zeros.  ``resource<N>`` (0600, ``i_size`` = the BAR's size) maps the BAR's memory
(``pci_mmap_resource``: the mapping must fit in the BAR's pages); it has no read or
write op (``EIO``), and ``resource<N>_wc`` exists for a prefetchable BAR.  [I] The
``iomem_is_exclusive`` refusal (a BAR a driver has claimed, with
``CONFIG_IO_STRICT_DEVMEM``) is not modelled, and a mapping keeps showing the BAR's
memory while memory decoding is off (hardware would answer all-ones).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from errno import EINVAL
from typing import TYPE_CHECKING

from .errors import kerr
from .mm import PAGE_SIZE

if TYPE_CHECKING:
    from .fs import File
    from .kernel import Kernel
    from .mm import Vma
    from .pci import PciBar, PciDev

__all__ = ["bind_driver", "device_dir", "populate_pci", "resource_flags", "resource_text"]

_DEVICES = "/sys/devices/pci0000:00"

# include/linux/ioport.h
IORESOURCE_MEM = 0x00000200
IORESOURCE_PREFETCH = 0x00002000
IORESOURCE_SIZEALIGN = 0x00040000
IORESOURCE_MEM_64 = 0x00100000
#: PCI_BRIDGE_RESOURCES with CONFIG_PCI_IOV: 6 BARs, the ROM, 6 SR-IOV BARs
_NR_RESOURCES = 13
#: what pci_read_config lets a reader without CAP_SYS_ADMIN see
_UNPRIVILEGED_CONFIG = 64


def device_dir(pdev: PciDev) -> str:
    return f"{_DEVICES}/{pdev.bdf}"


def _hex(value: int, width: int) -> str:
    return f"0x{value:0{width}x}\n"


def _const(text: str) -> Callable[[], str]:
    return lambda: text


def resource_flags(bar: PciBar) -> int:
    """``res->flags`` of a memory BAR: ``decode_bar`` plus ``IORESOURCE_SIZEALIGN``."""
    flags = bar.flags | IORESOURCE_MEM | IORESOURCE_SIZEALIGN
    if bar.prefetch:
        flags |= IORESOURCE_PREFETCH
    if bar.mem64:
        flags |= IORESOURCE_MEM_64
    return flags


def resource_text(pdev: PciDev) -> str:
    """The ``resource`` file of ``pdev`` (``resource_show``)."""
    out = []
    for i in range(_NR_RESOURCES):
        bar = pdev.bars.get(i) if i < 6 else None
        if bar is None:
            start = end = flags = 0
        else:
            start, end, flags = bar.bus_address, bar.end, resource_flags(bar)
        out.append(f"0x{start:016x} 0x{end:016x} 0x{flags:016x}\n")
    return "".join(out)


def _config_ops(
    pdev: PciDev,
) -> tuple[Callable[[File, int, int], bytes], Callable[[File, int, bytes], int]]:
    """``pci_read_config`` and ``pci_write_config`` of ``pdev``."""

    def read(file: File, pos: int, count: int) -> bytes:
        size = pdev.cfg_size if os.geteuid() == 0 else _UNPRIVILEGED_CONFIG
        if pos > size:
            return b""
        count = min(count, size - pos)
        return bytes(pdev.cfg.read(pos + i, 1) for i in range(count))

    def write(file: File, pos: int, data: bytes) -> int:
        # sysfs clamped data to cfg_size; split as pci_write_config does
        off, end = pos, pos + len(data)
        while off < end:
            left = end - off
            if off & 1 or left == 1:
                width = 1
            elif off & 3 or left < 4:
                width = 2
            else:
                width = 4
            value = int.from_bytes(data[off - pos : off - pos + width], "little")
            if width == 4:
                pdev.pci_write_config_dword(off, value)
            elif width == 2:
                pdev.pci_write_config_word(off, value)
            else:
                pdev.pci_write_config_byte(off, value)
            off += width
        return len(data)

    return read, write


def _resource_mmap(bar: PciBar) -> Callable[[File, Vma], None]:
    """``pci_mmap_resource`` of a memory BAR."""

    def mmap(file: File, vma: Vma) -> None:
        pages = ((bar.size - 1) // PAGE_SIZE) + 1  # pci_mmap_fits
        if not (vma.pgoff < pages and pages - vma.pgoff >= vma.pages):
            raise kerr(EINVAL)
        vma.remap(bar.memfd, vma.offset, vma.length)

    return mmap


def populate_pci(kernel: Kernel) -> None:
    vfs = kernel.vfs
    vfs.mkdir("/sys/bus/pci/devices", owned=True)
    vfs.mkdir("/sys/bus/pci/drivers", owned=True)
    vfs.mkdir(_DEVICES, owned=True)
    vfs.mkdir("/sys/kernel/iommu_groups", owned=True)
    assert kernel.pci is not None
    for pdev in kernel.pci.devices:
        d = device_dir(pdev)
        vfs.mkdir(d, populate=_attrs_filler(kernel, pdev, d))
        vfs.symlink(f"../../../devices/pci0000:00/{pdev.bdf}", f"/sys/bus/pci/devices/{pdev.bdf}")
        group = f"/sys/kernel/iommu_groups/{pdev.iommu_group}"
        vfs.mkdir(f"{group}/devices")
        vfs.symlink(f"../../../../devices/pci0000:00/{pdev.bdf}", f"{group}/devices/{pdev.bdf}")


def _attrs_filler(kernel: Kernel, pdev: PciDev, d: str) -> Callable[[], None]:
    """The device's own attributes, made when its directory is first looked into."""

    def fill() -> None:
        vfs = kernel.vfs
        ids = {
            "vendor": _hex(pdev.vendor, 4),
            "device": _hex(pdev.device, 4),
            "class": _hex(pdev.class_code, 6),
            "revision": _hex(pdev.revision, 2),
            "subsystem_vendor": _hex(pdev.subsystem_vendor, 4),
            "subsystem_device": _hex(pdev.subsystem_device, 4),
        }
        # what module autoloading (and rdma-core's provider matching) reads
        cc = pdev.class_code
        ids["modalias"] = (
            f"pci:v{pdev.vendor:08X}d{pdev.device:08X}sv{pdev.subsystem_vendor:08X}"
            f"sd{pdev.subsystem_device:08X}bc{cc >> 16:02X}sc{(cc >> 8) & 0xFF:02X}"
            f"i{cc & 0xFF:02X}\n"
        )
        for name, text in ids.items():
            vfs.attr(f"{d}/{name}", _const(text))
        read, write = _config_ops(pdev)
        vfs.bin_attr(f"{d}/config", 0o644, pdev.cfg_size, read=read, write=write)
        vfs.attr(f"{d}/resource", _const(resource_text(pdev)))
        for bar in pdev.bars.values():
            mmap = _resource_mmap(bar)
            vfs.bin_attr(f"{d}/resource{bar.index}", 0o600, bar.size, mmap=mmap)
            if bar.prefetch:
                vfs.bin_attr(f"{d}/resource{bar.index}_wc", 0o600, bar.size, mmap=mmap)
        vfs.symlink(f"../../../kernel/iommu_groups/{pdev.iommu_group}", f"{d}/iommu_group")

    return fill


def bind_driver(kernel: Kernel, pdev: PciDev, name: str) -> None:
    vfs = kernel.vfs
    drv = f"/sys/bus/pci/drivers/{name}"
    vfs.mkdir(drv)
    vfs.symlink(f"../../../../devices/pci0000:00/{pdev.bdf}", f"{drv}/{pdev.bdf}")
    vfs.symlink(f"../../../bus/pci/drivers/{name}", f"{device_dir(pdev)}/driver")
