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
from errno import EEXIST, EINVAL, ENODEV
from typing import TYPE_CHECKING

from .errors import KernelBug, kerr
from .mm import PAGE_SIZE
from .pci.core import PciCore
from .vfs import Attr, BinRead, BinWrite, Dir, Node, Symlink, Vfs

if TYPE_CHECKING:
    from .context import KernelContext
    from .fs import File
    from .mm import Vma
    from .pci import PciBar, PciDev

__all__ = [
    "bind_driver",
    "device_dir",
    "device_sysfs_dir",
    "populate_pci",
    "resource_flags",
    "resource_text",
    "sysfs_create_dir",
    "sysfs_create_file",
    "sysfs_create_link",
    "sysfs_remove_dir",
    "sysfs_remove_file",
    "sysfs_remove_link",
]

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
    """``/sys/devices/pci0000:00[/<root port>]/<bdf>``: a device behind a root port sits
    in the port's directory, as the kernel's device hierarchy has it (the port is the
    parent of the device's bus)."""
    rp = pdev.root_port
    if rp is None:
        return f"{_DEVICES}/{pdev.bdf}"
    return f"{_DEVICES}/{rp.bdf}/{pdev.bdf}"


def _up_to_sys(path: str) -> str:
    """The ``../`` chain from the directory holding ``path`` up to ``/sys``."""
    return "../" * (path.count("/") - 2)


def _from_sys(path: str) -> str:
    return path.removeprefix("/sys/")


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
        # file_ns_capable(filp, CAP_SYS_ADMIN): the opener's credentials
        euid = file.f_cred if file.f_cred >= 0 else os.geteuid()
        size = pdev.cfg_size if euid == 0 else _UNPRIVILEGED_CONFIG
        if pos > size:
            return b""
        count = min(count, size - pos)
        return pdev.cfg.read_bytes(pos, count)

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


def _bus_attrs(kernel: KernelContext) -> None:
    """``/sys/bus/pci``'s own files (``pci_bus_attrs``, ``bus_add_probe_files``), so a
    write there reaches the mock bus and never the host's: ``rescan`` (the mock bus
    is enumerated once: nothing new appears), ``drivers_probe`` (a function of the bus:
    it is already probed; another name ``ENODEV``), ``drivers_autoprobe``,
    ``resource_alignment`` and ``uevent``."""
    vfs = kernel.subsys(Vfs)
    state = {"drivers_autoprobe": "1\n", "resource_alignment": "\n"}

    def text(name: str) -> BinRead:
        def read(file: File, pos: int, count: int) -> bytes:
            return state[name].encode()[pos : pos + count]

        return read

    def store_int(name: str | None) -> BinWrite:
        def write(file: File, pos: int, data: bytes) -> int:
            try:
                value = int(data.strip() or b"x", 0)
            except ValueError:
                raise kerr(EINVAL) from None
            if name is not None:
                state[name] = f"{int(bool(value))}\n"
            return len(data)

        return write

    def drivers_probe(file: File, pos: int, data: bytes) -> int:
        if data.decode(errors="replace").strip() not in kernel.subsys(PciCore).bus:
            raise kerr(ENODEV)  # bus_find_device_by_name found nothing
        return len(data)

    def resource_alignment(file: File, pos: int, data: bytes) -> int:
        state["resource_alignment"] = data.decode(errors="replace").strip() + "\n"
        return len(data)

    vfs.bin_attr("/sys/bus/pci/rescan", 0o200, 0, write=store_int(None))
    vfs.bin_attr("/sys/bus/pci/drivers_probe", 0o200, 0, write=drivers_probe)
    vfs.bin_attr(
        "/sys/bus/pci/drivers_autoprobe",
        0o644,
        0,
        read=text("drivers_autoprobe"),
        write=store_int("drivers_autoprobe"),
    )
    vfs.bin_attr(
        "/sys/bus/pci/resource_alignment",
        0o644,
        0,
        read=text("resource_alignment"),
        write=resource_alignment,
    )
    vfs.bin_attr("/sys/bus/pci/uevent", 0o200, 0, write=lambda file, pos, data: len(data))
    vfs.mkdir("/sys/bus/pci/slots", owned=True)


def populate_pci(kernel: KernelContext) -> None:
    vfs = kernel.subsys(Vfs)
    vfs.mkdir("/sys/bus/pci/devices", owned=True)
    vfs.mkdir("/sys/bus/pci/drivers", owned=True)
    vfs.mkdir("/sys/bus/pci", owned=True)  # everything on the mock's PCI bus is mock
    _bus_attrs(kernel)
    vfs.mkdir(_DEVICES, owned=True)
    vfs.mkdir("/sys/kernel/iommu_groups", owned=True)
    for pdev in kernel.subsys(PciCore).bus.devices:
        d = device_dir(pdev)
        vfs.mkdir(d, populate=_attrs_filler(kernel, pdev, d))
        link = f"/sys/bus/pci/devices/{pdev.bdf}"
        vfs.symlink(_up_to_sys(link) + _from_sys(d), link)
        group = f"/sys/kernel/iommu_groups/{pdev.iommu_group}"
        vfs.mkdir(f"{group}/devices")
        link = f"{group}/devices/{pdev.bdf}"
        vfs.symlink(_up_to_sys(link) + _from_sys(d), link)


def _attrs_filler(kernel: KernelContext, pdev: PciDev, d: str) -> Callable[[], None]:
    """The device's own attributes, made when its directory is first looked into."""

    def fill() -> None:
        vfs = kernel.subsys(Vfs)
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
        link = f"{d}/iommu_group"
        vfs.symlink(f"{_up_to_sys(link)}kernel/iommu_groups/{pdev.iommu_group}", link)

    return fill


def bind_driver(kernel: KernelContext, pdev: PciDev, name: str) -> None:
    vfs = kernel.subsys(Vfs)
    drv = f"/sys/bus/pci/drivers/{name}"
    vfs.mkdir(drv)
    d = device_dir(pdev)
    vfs.symlink(_up_to_sys(f"{drv}/{pdev.bdf}") + _from_sys(d), f"{drv}/{pdev.bdf}")
    vfs.symlink(f"{_up_to_sys(d + '/driver')}bus/pci/drivers/{name}", f"{d}/driver")


# -- what drivers add (fs/sysfs, drivers/base) -----------------------------------------------
def device_sysfs_dir(pdev: PciDev) -> str:
    """The device's directory: ``/sys`` + ``kobject_get_path(&pdev->dev.kobj)``
    (``/sys/devices/pci0000:00/<root port>/<bdf>``, or ``.../pci0000:00/<bdf>`` for a
    device on the root bus).  Drivers add their class devices and attributes below it."""
    return device_dir(pdev)


def _sysfs_path(path: str) -> str:
    if not path.startswith("/sys/") or "/../" in path or path.endswith("/.."):
        raise KernelBug(f"not a sysfs path: {path!r}")
    return path


def _sysfs_add(fn: Callable[[], object], path: str) -> None:
    try:
        fn()
    except FileExistsError:
        raise kerr(EEXIST, path) from None


def sysfs_create_dir(kernel: KernelContext, path: str) -> None:
    """``sysfs_create_dir``/``class_create``: the directory ``path`` (and its parents).

    Called by a driver's ``init`` or ``probe``; an existing directory is kept.  Only
    paths under ``/sys/`` (else ``KernelBug``); ``EEXIST`` if a non-directory is there.
    """
    try:
        kernel.subsys(Vfs).mkdir(_sysfs_path(path), owned=True)
    except FileExistsError:
        raise kerr(EEXIST, path) from None


def sysfs_create_file(
    kernel: KernelContext, path: str, show: Callable[[], str], mode: int = 0o444
) -> None:
    """``sysfs_create_file``/``device_create_file``: a read-only text attribute at
    ``path`` whose content is ``show()`` at each open (``mode`` 0444 unless given).

    Called by a driver's ``probe``; ``EEXIST`` if ``path`` exists, ``KernelBug`` outside
    ``/sys/``.
    """
    vfs = kernel.subsys(Vfs)
    _sysfs_add(lambda: vfs.attr(_sysfs_path(path), show, mode), path)


def sysfs_create_link(kernel: KernelContext, path: str, target: str) -> None:
    """``sysfs_create_link``: the symlink ``path`` pointing at ``target`` (a path
    relative to the link's directory, as sysfs writes them: ``../../class/vfio-dev``).

    Called by a driver's ``probe``; ``EEXIST`` if ``path`` exists, ``KernelBug`` outside
    ``/sys/``.
    """
    vfs = kernel.subsys(Vfs)
    _sysfs_add(lambda: vfs.symlink(target, _sysfs_path(path)), path)


def _sysfs_remove(kernel: KernelContext, path: str, kind: type[Node]) -> None:
    vfs = kernel.subsys(Vfs)
    # not a lookup: that would populate the PCI device's directory just to remove a node
    node = vfs.peek(_sysfs_path(path))
    if not isinstance(node, kind):
        raise KernelBug(f"no sysfs {kind.__name__.lower()} at {path!r} to remove")
    vfs.unlink(path)


def sysfs_remove_dir(kernel: KernelContext, path: str) -> None:
    """``sysfs_remove_dir``/``class_destroy``: the directory ``path`` and all below it.
    Called by a driver's ``remove``/``exit``; ``KernelBug`` if there is none."""
    _sysfs_remove(kernel, path, Dir)


def sysfs_remove_file(kernel: KernelContext, path: str) -> None:
    """``sysfs_remove_file``: the attribute ``path``; ``KernelBug`` if there is none."""
    _sysfs_remove(kernel, path, Attr)


def sysfs_remove_link(kernel: KernelContext, path: str) -> None:
    """``sysfs_remove_link``: the symlink ``path``; ``KernelBug`` if there is none."""
    _sysfs_remove(kernel, path, Symlink)
