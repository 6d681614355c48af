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
    /sys/devices/pci0000:00/<bdf>/{driver_override,remove,rescan}
    /sys/bus/pci/drivers/<name>/{bind,unbind,uevent}, /sys/bus/pci/{rescan,drivers_probe}

Binding (``docs/reliability.md``, "Driver binding from sysfs"): writing a BDF to a
driver's ``unbind`` runs its ``remove``, to ``bind`` its ``probe``; ``driver_override``
names the one driver that may bind; a device's ``remove`` takes it off the bus (its
driver removed first) and ``rescan`` brings it back (probed again).  The writes reach
the driver core through :attr:`PciCore.bus_ops`.

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
import re
from collections.abc import Callable
from errno import EBUSY, EEXIST, EINVAL, EIO, ENODEV, ERANGE
from types import MappingProxyType
from typing import TYPE_CHECKING

from .errors import KernelBug, kerr
from .mm import PAGE_SIZE
from .pci.core import PciBusOps, PciCore
from .trace import TracePoint
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
    "kstrtoul",
    "pci_driver_sysfs",
    "pci_sysfs_add_device",
    "pci_sysfs_remove_device",
    "populate_pci",
    "resource_flags",
    "resource_text",
    "sysfs_create_dir",
    "sysfs_create_file",
    "sysfs_create_link",
    "sysfs_remove_dir",
    "sysfs_remove_file",
    "sysfs_remove_link",
    "sysfs_streq",
    "unbind_driver",
]

_DEVICES = "/sys/devices/pci0000:00"
trace_pci_driver_override = TracePoint("pci.driver_override", "bdf", "driver", "old")

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
        euid = file.f_euid if file.f_euid >= 0 else os.geteuid()
        size = pdev.cfg_size if euid == 0 else _UNPRIVILEGED_CONFIG
        if pos > size:
            return b""
        return pdev.cfg.read_bytes(pos, count if count < size - pos else size - pos)

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


#: what ``kstrtoul`` with base 0 takes: hex after 0x, octal after 0, else decimal
_ULONG = re.compile(rb"0[xX]([0-9a-fA-F]+)|0[0-7]*|[1-9][0-9]*")


def kstrtoul(data: bytes) -> int:
    """``kstrtoul(buf, 0, &val)``: one unsigned long, a base prefix and one trailing
    newline allowed; ``EINVAL`` otherwise, ``ERANGE`` past 64 bits."""
    text = data[:-1] if data.endswith(b"\n") else data
    text = text.removeprefix(b"+")
    m = _ULONG.fullmatch(text)
    if m is None:
        raise kerr(EINVAL)
    if m.group(1) is not None:
        n = int(m.group(1), 16)
    elif text.startswith(b"0"):
        n = int(text, 8)
    else:
        n = int(text)
    if n >> 64:
        raise kerr(ERANGE)
    return n


def kstrtoint(data: bytes) -> int:
    """``kstrtoint(buf, 0, &val)`` (``param_set_int``): :func:`kstrtoul`'s syntax with an
    optional leading ``-``; ``ERANGE`` outside a C ``int``."""
    if data.startswith(b"-"):
        if data.startswith(b"-+"):  # (kstrtoll takes no sign after the minus)
            raise kerr(EINVAL)
        n = -kstrtoul(data[1:])
    else:
        n = kstrtoul(data)
    if not -(1 << 31) <= n < 1 << 31:
        raise kerr(ERANGE)
    return n


def sysfs_streq(data: bytes) -> str:
    """The name written to a sysfs file as ``sysfs_streq`` compares it: one trailing
    newline ignored (``bus_find_device_by_name``)."""
    return (data[:-1] if data.endswith(b"\n") else data).decode(errors="replace")


def _bus_ops(kernel: KernelContext) -> PciBusOps:
    ops = kernel.subsys(PciCore).bus_ops
    if ops is None:  # the files exist from boot; the loader sets the ops at boot
        raise kerr(ENODEV)
    return ops


def _bus_attrs(kernel: KernelContext) -> None:
    """``/sys/bus/pci``'s own files (``pci_bus_attrs``, ``bus_add_probe_files``), so a
    write there reaches the mock bus and never the host's: ``rescan`` (removed
    functions come back and are probed), ``drivers_probe`` (a present but unbound
    function is probed; a name no function has ``ENODEV``), ``drivers_autoprobe``,
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
        _bus_ops(kernel).drivers_probe(sysfs_streq(data))
        return len(data)

    def rescan(file: File, pos: int, data: bytes) -> int:
        if kstrtoul(data):  # bus_rescan_store
            _bus_ops(kernel).rescan()
        return len(data)

    def resource_alignment(file: File, pos: int, data: bytes) -> int:
        state["resource_alignment"] = data.decode(errors="replace").strip() + "\n"
        return len(data)

    vfs.bin_attr("/sys/bus/pci/rescan", 0o200, 0, write=rescan)
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


# -- /proc/bus/pci (drivers/pci/proc.c) -------------------------------------------------------
#: the low bits of a BAR printed with its start (PCI_REGION_FLAG_MASK)
_PCI_REGION_FLAG_MASK = 0x0F
#: PCI_ROM_RESOURCE: the six BARs and the ROM are listed
_PROC_RESOURCES = 7


def _proc_path(pdev: PciDev) -> str:
    """``/proc/bus/pci/<bus>/<slot>.<fn>`` (``%04x:%02x`` for a domain other than 0)."""
    bus = f"{pdev.busnr:02x}" if not pdev.domain else f"{pdev.domain:04x}:{pdev.busnr:02x}"
    return f"/proc/bus/pci/{bus}/{pdev.devfn >> 3:02x}.{pdev.devfn & 7:x}"


def proc_bus_pci_devices(kernel: KernelContext) -> str:
    """``/proc/bus/pci/devices`` (``show_device``): per function, bus+devfn, vendor+device,
    irq, the start (with the BAR's low flag bits) and size of the six BARs and the ROM,
    and the bound driver's name."""
    pci = kernel.subsys(PciCore)
    out = []
    for pdev in pci.bus.devices:
        line = f"{pdev.busnr:02x}{pdev.devfn:02x}\t{pdev.vendor:04x}{pdev.device:04x}\t0"
        bars = [pdev.bars.get(i) for i in range(_PROC_RESOURCES)]
        for bar in bars:
            start = 0 if bar is None else bar.bus_address | bar.flags & _PCI_REGION_FLAG_MASK
            line += f"\t{start:16x}"
        for bar in bars:
            line += f"\t{0 if bar is None else bar.size:16x}"
        bound = pci.bound.get(pdev.bdf)
        out.append(f"{line}\t{bound.name if bound is not None else ''}\n")
    return "".join(out)


def _proc_init(kernel: KernelContext) -> None:
    """``pci_proc_init``: ``/proc/bus/pci`` is the mock bus's, never the host's."""
    vfs = kernel.subsys(Vfs)
    vfs.mkdir("/proc/bus/pci", owned=True)
    vfs.attr("/proc/bus/pci/devices", lambda: proc_bus_pci_devices(kernel))


def _proc_attach_device(kernel: KernelContext, pdev: PciDev) -> None:
    """``pci_proc_attach_device``: the function's config space, 0644 with ``i_size`` =
    ``cfg_size``; read and written as its sysfs ``config`` (``proc_bus_pci_read``:
    64 bytes for a reader without ``CAP_SYS_ADMIN``)."""
    vfs = kernel.subsys(Vfs)
    path = _proc_path(pdev)
    vfs.mkdir(os.path.dirname(path))
    read, write = _config_ops(pdev)
    vfs.bin_attr(path, 0o644, pdev.cfg_size, read=read, write=write)


def populate_pci(kernel: KernelContext) -> None:
    vfs = kernel.subsys(Vfs)
    _proc_init(kernel)
    vfs.mkdir("/sys/bus/pci/devices", owned=True)
    vfs.mkdir("/sys/bus/pci/drivers", owned=True)
    vfs.mkdir("/sys/bus/pci", owned=True)  # everything on the mock's PCI bus is mock
    _bus_attrs(kernel)
    vfs.mkdir(_DEVICES, owned=True)
    vfs.mkdir("/sys/kernel/iommu_groups", owned=True)
    for pdev in kernel.subsys(PciCore).bus.devices:
        pci_sysfs_add_device(kernel, pdev)


def pci_sysfs_add_device(kernel: KernelContext, pdev: PciDev) -> None:
    """The function's directory and the links to it (``pci_bus_add_device``), and its
    ``/proc/bus/pci`` file (``pci_proc_attach_device``)."""
    vfs = kernel.subsys(Vfs)
    _proc_attach_device(kernel, pdev)
    d = device_dir(pdev)
    vfs.mkdir(d, populate=_attrs_filler(kernel, pdev, d))
    link = f"/sys/bus/pci/devices/{pdev.bdf}"
    vfs.symlink(_up_to_sys(link) + _from_sys(d), link)
    group = f"/sys/kernel/iommu_groups/{pdev.iommu_group}"
    vfs.mkdir(f"{group}/devices")
    link = f"{group}/devices/{pdev.bdf}"
    vfs.symlink(_up_to_sys(link) + _from_sys(d), link)


def pci_sysfs_remove_device(kernel: KernelContext, pdev: PciDev) -> None:
    """Undo :func:`pci_sysfs_add_device` (``pci_remove_bus_device``: ``device_del``);
    the driver was removed before, its own files with it."""
    vfs = kernel.subsys(Vfs)
    for path in (
        f"/sys/kernel/iommu_groups/{pdev.iommu_group}/devices/{pdev.bdf}",
        f"/sys/bus/pci/devices/{pdev.bdf}",
        device_dir(pdev),
        _proc_path(pdev),
    ):
        if vfs.peek(path) is not None:
            vfs.unlink(path)


def pci_driver_sysfs(kernel: KernelContext, name: str) -> None:
    """``/sys/bus/pci/drivers/<name>`` of a registered driver (``bus_add_driver``):
    ``bind`` and ``unbind`` (``driver_attach``/``device_release_driver`` of the BDF
    written) and ``uevent``."""
    vfs = kernel.subsys(Vfs)
    drv = f"/sys/bus/pci/drivers/{name}"
    vfs.mkdir(drv)

    def bind(file: File, pos: int, data: bytes) -> int:
        _bus_ops(kernel).bind_store(name, sysfs_streq(data))
        return len(data)

    def unbind(file: File, pos: int, data: bytes) -> int:
        _bus_ops(kernel).unbind_store(name, sysfs_streq(data))
        return len(data)

    vfs.bin_attr(f"{drv}/bind", 0o200, 0, write=bind)
    vfs.bin_attr(f"{drv}/unbind", 0o200, 0, write=unbind)
    vfs.bin_attr(f"{drv}/uevent", 0o200, 0, write=lambda file, pos, data: len(data))


def _modalias(pdev: PciDev) -> str:
    """What module autoloading (and rdma-core's provider matching) reads."""
    cc = pdev.class_code
    return (
        f"pci:v{pdev.vendor:08X}d{pdev.device:08X}sv{pdev.subsystem_vendor:08X}"
        f"sd{pdev.subsystem_device:08X}bc{cc >> 16:02X}sc{(cc >> 8) & 0xFF:02X}i{cc & 0xFF:02X}"
    )


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
        ids["modalias"] = _modalias(pdev) + "\n"
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
        _generic_attrs(kernel, pdev, d)
        _binding_attrs(kernel, pdev, d)

    return fill


def _binding_attrs(kernel: KernelContext, pdev: PciDev, d: str) -> None:
    """``driver_override`` (0644), ``remove`` and ``rescan`` (0200) of a function."""
    vfs = kernel.subsys(Vfs)

    def override_show(file: File, pos: int, count: int) -> bytes:
        if gone():
            raise kerr(ENODEV)
        text = f"{pdev.driver_override}\n" if pdev.driver_override is not None else "(null)\n"
        return text.encode()[pos : pos + count]

    def gone() -> bool:
        """The function was removed: its files answer ``ENODEV`` (kernfs deactivated)."""
        return kernel.subsys(PciCore).bus.get_present(pdev.bdf) is not pdev

    def override_store(file: File, pos: int, data: bytes) -> int:
        # driver_set_override: at most a page less one; up to the first newline; "\n"
        # clears (a write of nothing never reaches the store)
        if gone():
            raise kerr(ENODEV)
        if not data:
            return 0
        if len(data) >= PAGE_SIZE - 1:
            raise kerr(EINVAL)
        name = data.split(b"\n", 1)[0].decode(errors="replace")
        old, pdev.driver_override = pdev.driver_override, name or None
        trace_pci_driver_override(kernel.tracer, pdev.bdf, name or None, old)
        return len(data)

    def remove(file: File, pos: int, data: bytes) -> int:
        if gone():
            raise kerr(ENODEV)
        if kstrtoul(data):  # remove_store
            _bus_ops(kernel).remove_device(pdev.bdf)
        return len(data)

    def rescan(file: File, pos: int, data: bytes) -> int:
        if gone():
            raise kerr(ENODEV)
        if kstrtoul(data):  # dev_rescan_store: the whole bus here (one bus)
            _bus_ops(kernel).rescan()
        return len(data)

    vfs.bin_attr(f"{d}/driver_override", 0o644, PAGE_SIZE, read=override_show, write=override_store)
    vfs.bin_attr(f"{d}/remove", 0o220, 0, write=remove)
    vfs.bin_attr(f"{d}/rescan", 0o200, 0, write=rescan)


# -- drivers/pci/pci-sysfs.c: the attributes every device has ---------------------------------
_PM_STATES = ("D0", "D1", "D2", "D3hot")
#: pcie_link_speed[] by the 4-bit speed code (LNKSTA/LNKCAP), as pci_speed_string() names it
_LINK_SPEEDS = MappingProxyType({1: "2.5 GT/s PCIe", 2: "5.0 GT/s PCIe", 3: "8.0 GT/s PCIe",
                4: "16.0 GT/s PCIe", 5: "32.0 GT/s PCIe", 6: "64.0 GT/s PCIe"})  # fmt: skip
_UEVENT_ACTIONS = frozenset(
    ("add", "remove", "change", "move", "online", "offline", "bind", "unbind")
)


def cpumask_text(nbits: int) -> str:
    """``%*pb`` of a mask with the first ``nbits`` bits set: hex in 32-bit groups, most
    significant first, comma separated; the first group as wide as its bits need."""
    mask = (1 << nbits) - 1
    groups = []
    for i in range((nbits + 31) // 32):
        groups.append((mask >> (32 * i)) & 0xFFFF_FFFF)
    top = nbits - 32 * (len(groups) - 1)
    out = [f"{groups[-1]:0{(top + 3) // 4}x}"] + [f"{g:08x}" for g in reversed(groups[:-1])]
    return ",".join(out) + "\n"


def _rw(show: Callable[[], str], store: Callable[[bytes], None]) -> tuple[BinRead, BinWrite]:
    """A text attribute's ``show``/``store`` as a bin attribute's read and write."""

    def read(file: File, pos: int, count: int) -> bytes:
        return show().encode()[pos : pos + count]

    def write(file: File, pos: int, data: bytes) -> int:
        store(data)
        return len(data)

    return read, write


def _generic_attrs(kernel: KernelContext, pdev: PciDev, d: str) -> None:
    """``irq``, ``enable``, ``numa_node``, ``local_cpus``/``local_cpulist``, ``msi_bus``,
    ``dma_mask_bits``, ``consistent_dma_mask_bits``, ``d3cold_allowed``,
    ``power_state``, ``broken_parity_status``, ``ari_enabled``, ``uevent``, the PCIe
    link attributes and the ``subsystem`` link (``pci-sysfs.c``, ``drivers/base``)."""
    vfs = kernel.subsys(Vfs)
    core = kernel.subsys(PciCore)
    spec = pdev.spec
    # pci_pm_init allows D3cold only for a function with a PM capability
    d3cold = 1 if pdev.pm_cap else 0
    state = {"numa_node": -1, "msi_bus": 1, "d3cold_allowed": d3cold, "broken_parity_status": 0}
    irq = spec.interrupt_line if spec.interrupt_pin else 0
    vfs.attr(f"{d}/irq", _const(f"{irq}\n"))
    vfs.attr(f"{d}/local_cpus", _const(cpumask_text(core.nr_cpus)))
    cpus = "0" if core.nr_cpus == 1 else f"0-{core.nr_cpus - 1}"
    vfs.attr(f"{d}/local_cpulist", _const(cpus + "\n"))
    vfs.attr(f"{d}/dma_mask_bits", lambda: f"{pdev.dma_mask_bits}\n")
    vfs.attr(f"{d}/consistent_dma_mask_bits", lambda: f"{pdev.coherent_dma_mask_bits}\n")
    vfs.attr(f"{d}/ari_enabled", _const("0\n"))

    def power_state() -> str:
        if not pdev.pm_cap:
            return "D0\n"
        return _PM_STATES[pdev.pci_read_config_word(pdev.pm_cap + 4) & 3] + "\n"

    vfs.attr(f"{d}/power_state", power_state)

    def enable_store(data: bytes) -> None:  # enable_store: only while no driver is bound
        value = kstrtoul(data)
        if pdev.bdf in core.bound:
            raise kerr(EBUSY)
        if value:
            pdev.enable_cnt += 1  # pci_enable_device
        elif pdev.enable_cnt:
            pdev.enable_cnt -= 1
        else:
            raise kerr(EIO)

    read, write = _rw(lambda: f"{pdev.enable_cnt}\n", enable_store)
    vfs.bin_attr(f"{d}/enable", 0o644, 4096, read=read, write=write)

    def numa_store(data: bytes) -> None:  # numa_node_store: NUMA_NO_NODE or an online node
        text = data.decode(errors="replace").strip()
        try:
            node = int(text, 0)
        except ValueError:
            raise kerr(EINVAL) from None
        if node not in (-1, 0):
            raise kerr(EINVAL)
        state["numa_node"] = node

    read, write = _rw(lambda: f"{state['numa_node']}\n", numa_store)
    vfs.bin_attr(f"{d}/numa_node", 0o644, 4096, read=read, write=write)
    for name in ("msi_bus", "d3cold_allowed", "broken_parity_status"):

        def store(data: bytes, name: str = name) -> None:
            state[name] = 1 if kstrtoul(data) else 0

        read, write = _rw(lambda name=name: f"{state[name]}\n", store)  # type: ignore[misc]
        vfs.bin_attr(f"{d}/{name}", 0o644, 4096, read=read, write=write)

    def uevent() -> str:
        drv = core.bound.get(pdev.bdf)
        cc = pdev.class_code
        lines = [f"DRIVER={drv.name}"] if drv is not None else []
        lines += [
            f"PCI_CLASS={cc:X}",
            f"PCI_ID={pdev.vendor:04X}:{pdev.device:04X}",
            f"PCI_SUBSYS_ID={pdev.subsystem_vendor:04X}:{pdev.subsystem_device:04X}",
            f"PCI_SLOT_NAME={pdev.bdf}",
            f"MODALIAS={_modalias(pdev)}",
        ]
        return "".join(line + "\n" for line in lines)

    def uevent_store(data: bytes) -> None:  # kobject_synth_uevent: an action name first
        words = data.decode(errors="replace").split()
        if not words or words[0] not in _UEVENT_ACTIONS:
            raise kerr(EINVAL)

    read, write = _rw(uevent, uevent_store)
    vfs.bin_attr(f"{d}/uevent", 0o644, 4096, read=read, write=write)
    if pdev.pcie_cap:  # pcie_dev_attrs_are_visible

        def lnk(reg: int) -> int:  # speed in bits 3:0, width in 9:4 (LNKCAP and LNKSTA)
            return pdev.pci_read_config_word(pdev.pcie_cap + reg)

        def speed(reg: int) -> Callable[[], str]:
            return lambda: _LINK_SPEEDS.get(lnk(reg) & 0xF, "Unknown") + "\n"

        def width(reg: int) -> Callable[[], str]:
            return lambda: f"{(lnk(reg) >> 4) & 0x3F}\n"

        vfs.attr(f"{d}/current_link_speed", speed(_PCI_EXP_LNKSTA))
        vfs.attr(f"{d}/current_link_width", width(_PCI_EXP_LNKSTA))
        vfs.attr(f"{d}/max_link_speed", speed(_PCI_EXP_LNKCAP))
        vfs.attr(f"{d}/max_link_width", width(_PCI_EXP_LNKCAP))
    link = f"{d}/subsystem"
    vfs.symlink(f"{_up_to_sys(link)}bus/pci", link)


#: link registers of the PCI Express capability (uapi pci_regs.h)
_PCI_EXP_LNKCAP = 0x0C
_PCI_EXP_LNKSTA = 0x12


def bind_driver(kernel: KernelContext, pdev: PciDev, name: str) -> None:
    vfs = kernel.subsys(Vfs)
    drv = f"/sys/bus/pci/drivers/{name}"
    vfs.mkdir(drv)
    d = device_dir(pdev)
    vfs.symlink(_up_to_sys(f"{drv}/{pdev.bdf}") + _from_sys(d), f"{drv}/{pdev.bdf}")
    vfs.symlink(f"{_up_to_sys(d + '/driver')}bus/pci/drivers/{name}", f"{d}/driver")


def unbind_driver(kernel: KernelContext, pdev: PciDev, name: str) -> None:
    """Undo :func:`bind_driver` (``driver_sysfs_remove``): the two links."""
    vfs = kernel.subsys(Vfs)
    for path in (f"/sys/bus/pci/drivers/{name}/{pdev.bdf}", f"{device_dir(pdev)}/driver"):
        if vfs.peek(path) is not None:
            vfs.unlink(path)


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
    kernel: KernelContext,
    path: str,
    show: Callable[[], str],
    mode: int = 0o444,
    store: Callable[[bytes], None] | None = None,
) -> None:
    """``sysfs_create_file``/``device_create_file``: a text attribute at ``path`` whose
    content is ``show()`` at each open (``mode`` 0444 unless given).  With ``store`` it
    is writable as ``mode`` allows: ``store(data)`` gets each write's bytes and raises
    ``kerr(...)`` to refuse them (the attribute's ``->store``; a module parameter's
    ``param_set_int`` is ``kstrtoint``).

    Called by a driver's ``probe`` or a module's ``init``; ``EEXIST`` if ``path`` exists,
    ``KernelBug`` outside ``/sys/``.
    """
    vfs = kernel.subsys(Vfs)
    if store is None:
        _sysfs_add(lambda: vfs.attr(_sysfs_path(path), show, mode), path)
        return
    read, write = _rw(show, store)
    _sysfs_add(lambda: vfs.bin_attr(_sysfs_path(path), mode, 4096, read=read, write=write), path)


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
