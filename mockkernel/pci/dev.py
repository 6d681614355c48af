"""PCI functions (``struct pci_dev``), their BARs and the root ports above them.

A :class:`PciDev` is built from a topology :class:`~mockkernel.topology.DeviceSpec`:
its :class:`ConfigSpace` gets a type 0 header, a capability list (power management,
MSI and MSI-X if the device has them, PCI Express unless it is conventional PCI) and,
for a PCI Express function, an extended-capability chain at 0x100 (Device Serial
Number, then the TPH Requester if the device has one).  Layout::

    0x00  type 0 header (ids, command/status, class, BARs, subsystem, cap pointer, pin)
    0x40  PCI_CAP_ID_PM     PMCSR power state writable
    0x48  PCI_CAP_ID_MSI    only with an [msi] capability (enable, QSIZE, address, data)
    0x60  PCI_CAP_ID_EXP    endpoint or RC-integrated; DEVCAP2 TPH completer bits
    0xa0  PCI_CAP_ID_MSIX   only with an [msix] table (table and PBA in a BAR)
    0x100 PCI_EXT_CAP_ID_DSN  PCI Express only (a conventional function has 256 bytes)
    0x110 PCI_EXT_CAP_ID_TPH  only with a [tph] requester; ST table entries at +0xc

Bytes from 0x40 up that no capability covers read 0 and drop writes, unless the topology
says ``devspec_writable`` (QEMU's devices: every such byte is writable).

Each memory BAR is backed by a memfd (``mockkernel:<bdf>:bar<n>``, at a high fd) and a
kernel-side ``KernelMap`` of it.  A driver hands userspace a mapping of the same memfd, so
what the kernel writes through :attr:`PciBar.map` (a TLP landing in the BAR, an MSI-X table
update) and what userspace writes through its mapping are the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from errno import EIO
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import KernelBug, kerr
from ..mm import KernelMap
from ..realfd import hide, kernel_close, move_high, os_close
from ..topology import BarSpec, CpuSteeringTag, DeviceSpec, RootPortSpec, layout_bars
from ..trace import EventSpec, TracePoint
from ._regs import (
    PCI_BASE_ADDRESS_0,
    PCI_BASE_ADDRESS_MEM_PREFETCH,
    PCI_BASE_ADDRESS_MEM_TYPE_32,
    PCI_BASE_ADDRESS_MEM_TYPE_64,
    PCI_BASE_ADDRESS_SPACE_MEMORY,
    PCI_CACHE_LINE_SIZE,
    PCI_CAP_EXP_ENDPOINT_SIZEOF_V2,
    PCI_CAP_ID_EXP,
    PCI_CAP_ID_MSI,
    PCI_CAP_ID_MSIX,
    PCI_CAP_ID_PM,
    PCI_CFG_SPACE_EXP_SIZE,
    PCI_CFG_SPACE_SIZE,
    PCI_CLASS_REVISION,
    PCI_COMMAND,
    PCI_COMMAND_INTX_DISABLE,
    PCI_COMMAND_IO,
    PCI_COMMAND_MASTER,
    PCI_COMMAND_MEMORY,
    PCI_COMMAND_PARITY,
    PCI_COMMAND_SERR,
    PCI_DEVICE_ID,
    PCI_EXP_DEVCAP,
    PCI_EXP_DEVCAP2,
    PCI_EXP_DEVCTL,
    PCI_EXP_DEVCTL2,
    PCI_EXP_DEVSTA,
    PCI_EXP_FLAGS,
    PCI_EXP_FLAGS_TYPE,
    PCI_EXP_TYPE_ENDPOINT,
    PCI_EXP_TYPE_RC_END,
    PCI_EXT_CAP_DSN_SIZEOF,
    PCI_EXT_CAP_ID_DSN,
    PCI_EXT_CAP_ID_TPH,
    PCI_HEADER_TYPE,
    PCI_HEADER_TYPE_NORMAL,
    PCI_INTERRUPT_LINE,
    PCI_INTERRUPT_PIN,
    PCI_MSI_ADDRESS_HI,
    PCI_MSI_ADDRESS_LO,
    PCI_MSI_DATA_32,
    PCI_MSI_DATA_64,
    PCI_MSI_FLAGS,
    PCI_MSI_FLAGS_64BIT,
    PCI_MSI_FLAGS_ENABLE,
    PCI_MSI_FLAGS_MASKBIT,
    PCI_MSI_FLAGS_QSIZE,
    PCI_MSI_MASK_32,
    PCI_MSI_MASK_64,
    PCI_MSIX_ENTRY_CTRL_MASKBIT,
    PCI_MSIX_ENTRY_SIZE,
    PCI_MSIX_ENTRY_VECTOR_CTRL,
    PCI_MSIX_FLAGS,
    PCI_MSIX_FLAGS_ENABLE,
    PCI_MSIX_FLAGS_MASKALL,
    PCI_MSIX_PBA,
    PCI_MSIX_TABLE,
    PCI_PM_CTRL,
    PCI_PM_CTRL_NO_SOFT_RESET,
    PCI_PM_CTRL_PME_STATUS,
    PCI_PM_CTRL_STATE_MASK,
    PCI_PM_PMC,
    PCI_STATUS,
    PCI_STATUS_DETECTED_PARITY,
    PCI_STATUS_PARITY,
    PCI_STATUS_REC_MASTER_ABORT,
    PCI_STATUS_REC_TARGET_ABORT,
    PCI_STATUS_SIG_SYSTEM_ERROR,
    PCI_STATUS_SIG_TARGET_ABORT,
    PCI_STD_HEADER_SIZEOF,
    PCI_SUBSYSTEM_ID,
    PCI_SUBSYSTEM_VENDOR_ID,
    PCI_TPH_BASE_SIZEOF,
    PCI_TPH_CAP,
    PCI_TPH_CAP_EXT_TPH,
    PCI_TPH_CAP_ST_DS,
    PCI_TPH_CAP_ST_IV,
    PCI_TPH_CAP_ST_NS,
    PCI_TPH_CAP_ST_SHIFT,
    PCI_TPH_CTRL,
    PCI_TPH_CTRL_MODE_SEL_MASK,
    PCI_TPH_CTRL_REQ_EN_MASK,
    PCI_TPH_LOC_CAP,
    PCI_TPH_LOC_MSIX,
    PCI_TPH_LOC_NONE,
    PCI_VENDOR_ID,
)
from .config import ConfigSpace

if TYPE_CHECKING:
    from ..context import KernelContext
    from .bus import PciBus

__all__ = [
    "CommandListener",
    "EventTracer",
    "PciBar",
    "PciDev",
    "PciRootPort",
    "dma_set_mask_and_coherent",
    "pci_disable_device",
    "pci_enable_device",
    "pci_get_drvdata",
    "pci_set_drvdata",
]

trace_pci_config_write = TracePoint("pci.config_write", "bdf", "where", "old", "new")

# Where the device model puts its capabilities.
PM_CAP = 0x40
MSI_CAP = 0x48  # at most 24 bytes (64-bit address, per-vector masking): ends at EXP_CAP
EXP_CAP = 0x60
MSIX_CAP = 0xA0
DSN_EXT_CAP = 0x100
TPH_EXT_CAP = 0x110

_COMMAND_WMASK = (
    PCI_COMMAND_MEMORY
    | PCI_COMMAND_MASTER
    | PCI_COMMAND_PARITY
    | PCI_COMMAND_SERR
    | PCI_COMMAND_INTX_DISABLE
)  # PCI_COMMAND_IO is hardwired to 0 unless the topology says io_enabled
_STATUS_W1C = (
    PCI_STATUS_PARITY
    | PCI_STATUS_SIG_TARGET_ABORT
    | PCI_STATUS_REC_TARGET_ABORT
    | PCI_STATUS_REC_MASTER_ABORT
    | PCI_STATUS_SIG_SYSTEM_ERROR
    | PCI_STATUS_DETECTED_PARITY
)
_TPH_MODE_BITS = MappingProxyType(
    {"ns": PCI_TPH_CAP_ST_NS, "iv": PCI_TPH_CAP_ST_IV, "ds": PCI_TPH_CAP_ST_DS}
)
_TPH_LOC = MappingProxyType(
    {"none": PCI_TPH_LOC_NONE, "cap": PCI_TPH_LOC_CAP, "msix": PCI_TPH_LOC_MSIX}
)

#: Power-on config space images by (spec, BAR addresses).  A memo of a pure function
#: (``PciDev._build_config``), like ``functools.cache``: no kernel's state lives here,
#: every device gets its own copy.  Bounded, so a long test session cannot grow it.
#: Each image comes with the capability offsets found in it (``pm_cap``, ``msi_cap``,
#: ``pcie_cap``, ``msix_cap``, ``tph_cap``), as pure a function of it.
_CONFIG_IMAGES: dict[
    tuple[Any, tuple[tuple[int, int], ...]],
    tuple[tuple[bytes, bytes, bytes, int, int], tuple[int, int, int, int, int]],
] = {}
_CONFIG_IMAGES_MAX = 256
TPH_COMPLETER = MappingProxyType({"none": 0, "tph-only": 1, "ext": 3})  # PCI_EXP_DEVCAP2_TPH_COMP_*


class EventTracer(Protocol):
    """What the PCI layer needs of a tracer (:class:`mockkernel.trace.Tracer` is one)."""

    enabled: bool

    def emit(self, event: str, **fields: Any) -> None: ...

    def emit_record(self, spec: EventSpec, values: tuple[Any, ...]) -> None: ...


CommandListener = Callable[["PciDev", int, int], None]
"""Called as ``listener(pdev, old, new)`` after a config write changed ``PCI_COMMAND``."""


class PciBar:
    """A memory BAR: its resource (bus address, size, flags) and its backing memory.

    ``memfd`` is a real memfd of ``size`` bytes and ``map`` the kernel's shared mapping
    of it; any other mapping of ``memfd`` sees the same bytes (a BAR smaller than a page
    is the start of a page-long mapping of it).  :meth:`close` releases both and is
    idempotent.
    """

    __slots__ = (
        "_closed",
        "_init",
        "_map",
        "_memfd",
        "bus_address",
        "index",
        "kernel",
        "mem64",
        "name",
        "p2pdma",
        "prefetch",
        "size",
    )

    def __init__(
        self, bdf: str, spec: BarSpec, bus_address: int, kernel: KernelContext | None = None
    ) -> None:
        #: the kernel whose memory this is (holds the memfd, records the mapping); ``None``
        #: for a device built alone (a unit test of the PCI layer)
        self.kernel = kernel
        self.index = spec.index
        self.size = spec.size
        self.mem64 = spec.mem64
        self.prefetch = spec.prefetch
        self.p2pdma = spec.p2pdma
        self.bus_address = bus_address
        self.name = f"mockkernel:{bdf}:bar{spec.index}"
        # The backing memory is made on first use (most BARs of most boots are never
        # touched: a memfd, its size and the kernel's mapping are five syscalls each).
        self._memfd = -1
        self._map: KernelMap | None = None
        self._closed = False
        #: what the device puts in its BAR at power-on, written when the memory is made
        self._init: list[tuple[int, bytes]] = []

    def _materialise(self) -> None:
        if self._closed:
            raise ValueError(f"{self.name}: BAR used after close")
        fd = os.memfd_create(self.name, os.MFD_CLOEXEC)
        fd = move_high(fd) if self.kernel is None else hide(self.kernel, fd)
        try:
            os.ftruncate(fd, self.size)
            kmap = KernelMap(self.kernel, fd, self.size)
            for off, data in self._init:
                kmap.write(off, data)
        except BaseException:
            self._close_fd(fd)
            raise
        self._init = []
        self._memfd, self._map = fd, kmap

    @property
    def memfd(self) -> int:
        """The real memfd behind the BAR (made on first use; -1 once closed)."""
        if self._memfd < 0 and not self._closed:
            self._materialise()
        return self._memfd

    @property
    def map(self) -> KernelMap:
        """The kernel's shared mapping of :attr:`memfd` (made on first use)."""
        kmap = self._map
        if kmap is None:
            self._materialise()
            kmap = self._map
            assert kmap is not None
        return kmap

    def power_on_write(self, offset: int, data: bytes) -> None:
        """Contents the BAR holds from power-on (an MSI-X table's masked entries):
        written now if the memory exists, else when it is made."""
        if self._map is not None:
            self._map.write(offset, data)
        else:
            self._init.append((offset, bytes(data)))

    @property
    def flags(self) -> int:
        """The low bits of the BAR register (``PCI_BASE_ADDRESS_*``)."""
        mem_type = PCI_BASE_ADDRESS_MEM_TYPE_64 if self.mem64 else PCI_BASE_ADDRESS_MEM_TYPE_32
        prefetch = PCI_BASE_ADDRESS_MEM_PREFETCH if self.prefetch else 0
        return PCI_BASE_ADDRESS_SPACE_MEMORY | mem_type | prefetch

    @property
    def end(self) -> int:
        """The last bus address of the BAR (``pci_resource_end``)."""
        return self.bus_address + self.size - 1

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._map is not None:
            self._map.close()
            self._map = None
            self._close_fd(self._memfd)
            self._memfd = -1

    def _close_fd(self, fd: int) -> None:
        if self.kernel is None:
            os_close(fd)
        else:
            kernel_close(self.kernel, fd)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<PciBar {self.name} {self.bus_address:#x}+{self.size:#x}{state}>"


class PciRootPort:
    """A root port, modelled by what TPH asks of it: its completer type and ``_DSM``."""

    __slots__ = ("_cpu_st", "bdf", "tph_completer")

    def __init__(self, spec: RootPortSpec) -> None:
        self.bdf = spec.bdf
        self.tph_completer = TPH_COMPLETER[spec.tph_completer]  # its DEVCAP2[13:12]
        self._cpu_st: dict[int, CpuSteeringTag] = {e.cpu: e for e in spec.cpu_st}

    def acpi_tph_dsm(self, cpu_uid: int) -> int | None:
        """Evaluate the ``_DSM`` (rev 7, func 0xF) for ``cpu_uid``: the 64-bit ``st_info``.

        ``None`` when the ``_DSM`` fails (no table, or no entry for the CPU).  Layout as
        ``union st_info`` in ``drivers/pci/tph.c``: bit 0 vm_st_valid, 1 vm_xst_valid,
        8-15 vm_st, 16-31 vm_xst, 32 pm_st_valid, 33 pm_xst_valid, 40-47 pm_st,
        48-63 pm_xst.
        """
        entry = self._cpu_st.get(cpu_uid)
        if entry is None:
            return None
        info = 0
        for value, valid_bit, shift in (
            (entry.vm_st, 0, 8),
            (entry.vm_xst, 1, 16),
            (entry.pm_st, 32, 40),
            (entry.pm_xst, 33, 48),
        ):
            if value is not None:
                info |= (1 << valid_bit) | (value << shift)
        return info

    def __repr__(self) -> str:
        return f"<PciRootPort {self.bdf}>"


class PciDev:
    """One PCI function: config space, BARs, and the kernel's per-device TPH/MSI-X state.

    Config accessors carry the kernel's names (``pdev.pci_read_config_word(where)``)
    and raise ``OSError(EINVAL)`` for a bad offset or alignment.  A write that changes
    ``PCI_COMMAND`` emits ``pci.config_write`` and then calls each command listener.
    """

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        bar_addresses: Mapping[int, int] | None = None,
        root_port: PciRootPort | None = None,
        bus: PciBus | None = None,
        tracer: EventTracer | None = None,
        kernel: KernelContext | None = None,
    ) -> None:
        if root_port is not None and root_port.bdf != spec.root_port:
            raise ValueError(f"{spec.bdf} sits behind {spec.root_port}, not {root_port.bdf}")
        if bar_addresses is None:
            laid_out = layout_bars((spec,))
            bar_addresses = {index: addr for (_, index), addr in laid_out.items()}
        self.spec = spec
        self.bdf = spec.bdf
        domain, bus_nr, slot_fn = spec.bdf.split(":")
        slot, fn = slot_fn.split(".")
        self.domain = int(domain, 16)
        self.busnr = int(bus_nr, 16)
        self.devfn = int(slot, 16) << 3 | int(fn)  # PCI_DEVFN(slot, func)
        self.vendor = spec.vendor
        self.device = spec.device
        self.class_code = spec.class_code
        self.revision = spec.revision
        self.subsystem_vendor = spec.subsystem_vendor or 0
        self.subsystem_device = spec.subsystem_device or 0
        #: the driver whose id table matches the function (the topology's ``driver``)
        self.driver_name = spec.driver
        #: ``pdev->driver_override``: when set, the only driver that may bind (sysfs)
        self.driver_override: str | None = None
        self.iommu_group = spec.iommu_group
        self.options = spec.options
        self.root_port = root_port
        self.bus = bus
        self.tracer = tracer
        conventional = spec.pcie_type == "conventional"
        self.cfg = ConfigSpace(PCI_CFG_SPACE_SIZE if conventional else PCI_CFG_SPACE_EXP_SIZE)
        self.cfg_size = self.cfg.size  # pdev->cfg_size
        self.bars: dict[int, PciBar] = {}
        self._command_listeners: list[CommandListener] = []
        self._closed = False
        # struct pci_dev's TPH and MSI-X state (drivers/pci/tph.c, msi/msi.c)
        self.tph_cap = 0
        self.tph_enabled = False
        self.tph_mode = 0
        self.tph_req_type = 0
        self.msix_enabled = False
        self.msix_nvec = 0
        #: ``dev->driver_data``: what the bound driver keeps (``pci_set_drvdata``)
        self.driver_data: object = None
        #: ``pdev->enable_cnt`` (:func:`pci_enable_device`; sysfs ``enable``)
        self.enable_cnt = 0
        #: ``dev->dma_mask``/``coherent_dma_mask`` as bit counts (32 until the driver
        #: says otherwise: :func:`dma_set_mask_and_coherent`; sysfs ``dma_mask_bits``)
        self.dma_mask_bits = 32
        self.coherent_dma_mask_bits = 32
        try:
            for bar in spec.bars:
                self.bars[bar.index] = PciBar(spec.bdf, bar, bar_addresses[bar.index], kernel)
            key = (spec, tuple(sorted(bar_addresses.items())))
            cached = _CONFIG_IMAGES.get(key)
            if cached is None:
                self._build_config()
                caps = (
                    self.pci_find_capability(PCI_CAP_ID_PM),
                    self.pci_find_capability(PCI_CAP_ID_MSI),
                    self.pci_find_capability(PCI_CAP_ID_EXP),
                    self.pci_find_capability(PCI_CAP_ID_MSIX),
                    self.pci_find_ext_capability(PCI_EXT_CAP_ID_TPH),  # pci_tph_init
                )
                if len(_CONFIG_IMAGES) >= _CONFIG_IMAGES_MAX:
                    _CONFIG_IMAGES.clear()
                _CONFIG_IMAGES[key] = (self.cfg.image(), caps)
            else:
                image, caps = cached
                self.cfg.load_image(image)
            self._init_msix_table()
        except BaseException:
            self.close()
            raise
        self.pm_cap, self.msi_cap, self.pcie_cap, self.msix_cap, self.tph_cap = caps

    # -- the device model -----------------------------------------------------

    def _build_config(self) -> None:
        """The config space at power-on: a pure function of the spec and the BAR
        addresses, so ``__init__`` builds it once per process and copies it after."""
        spec, cfg = self.spec, self.cfg
        cfg.poke(PCI_VENDOR_ID, 2, spec.vendor)
        cfg.poke(PCI_DEVICE_ID, 2, spec.device)
        io = PCI_COMMAND_IO if spec.io_enabled else 0
        serr = PCI_COMMAND_SERR if spec.serr_enabled else 0
        cfg.poke(PCI_COMMAND, 2, (PCI_COMMAND_MEMORY if spec.memory_enabled else 0) | io | serr)
        cfg.set_wmask(PCI_COMMAND, 2, _COMMAND_WMASK | io)
        cfg.set_w1cmask(PCI_STATUS, 2, _STATUS_W1C)
        cfg.poke(PCI_CLASS_REVISION, 4, spec.class_code << 8 | spec.revision)
        cfg.set_wmask(PCI_CACHE_LINE_SIZE, 1, 0xFF)
        cfg.poke(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_NORMAL)
        for bar in self.bars.values():
            reg = PCI_BASE_ADDRESS_0 + 4 * bar.index
            size_mask = ~(bar.size - 1)
            cfg.poke(reg, 4, (bar.bus_address & 0xFFFF_FFF0) | bar.flags)
            cfg.set_wmask(reg, 4, size_mask & 0xFFFF_FFF0)
            if bar.mem64:
                cfg.poke(reg + 4, 4, bar.bus_address >> 32)
                cfg.set_wmask(reg + 4, 4, (size_mask >> 32) & 0xFFFF_FFFF)
        cfg.poke(PCI_SUBSYSTEM_VENDOR_ID, 2, self.subsystem_vendor)
        cfg.poke(PCI_SUBSYSTEM_ID, 2, self.subsystem_device)
        cfg.set_wmask(PCI_INTERRUPT_LINE, 1, 0xFF)
        cfg.poke(PCI_INTERRUPT_LINE, 1, spec.interrupt_line)  # as the firmware left it
        cfg.poke(PCI_INTERRUPT_PIN, 1, spec.interrupt_pin)  # 0: none, 1: INTA# ...

        if spec.pm:
            pm = cfg.add_capability(PCI_CAP_ID_PM, PM_CAP)
            cfg.poke(pm + PCI_PM_PMC, 2, 0x0003)  # version 3, no PME
            cfg.poke(pm + PCI_PM_CTRL, 2, PCI_PM_CTRL_NO_SOFT_RESET)  # D0
            cfg.set_wmask(pm + PCI_PM_CTRL, 2, PCI_PM_CTRL_STATE_MASK)
            cfg.set_w1cmask(pm + PCI_PM_CTRL, 2, PCI_PM_CTRL_PME_STATUS)

        if spec.msi is not None:
            # the first capability sits at 0x40: MSI takes PM's place when there is none
            # (QEMU's edu: MSI at 0x40)
            self._build_msi(spec, MSI_CAP if spec.pm else PM_CAP)
        if spec.pcie_type != "conventional":
            self._build_pcie(spec)
        if spec.msix is not None:
            self._build_msix(spec)
        if spec.pcie_type != "conventional":
            self._build_ext_caps(spec)
        if spec.devspec_writable:
            self._devspec_writable(spec)

    def _devspec_writable(self, spec: DeviceSpec) -> None:
        """QEMU's ``pci_init_wmask``: every byte past the header is writable, except the
        capabilities (``pci_add_capability``/``pcie_add_capability`` clear their range; the
        capability then opens its own writable bits)."""
        cfg = self.cfg
        covered: list[tuple[int, int]] = []
        if spec.pm:
            covered.append((PM_CAP, 8))
        if spec.msi is not None:
            size = 0x0E if spec.msi.addr64 else 0x0A  # QEMU's msi_cap_sizeof
            size += 0x0A if spec.msi.per_vector_mask else 0
            covered.append((MSI_CAP if spec.pm else PM_CAP, size))
        if spec.pcie_type != "conventional":
            covered.append((EXP_CAP, 0x3C))  # PCI_EXP_VER2_SIZEOF
            covered.append((DSN_EXT_CAP, PCI_EXT_CAP_DSN_SIZEOF))
            if spec.tph is not None:
                table = 2 * spec.tph.st_table_size if spec.tph.st_table == "cap" else 0
                covered.append((TPH_EXT_CAP, PCI_TPH_BASE_SIZEOF + table))
        if spec.msix is not None:
            covered.append((MSIX_CAP, 12))  # PCI_CAP_MSIX_SIZEOF
        inside = bytearray(cfg.size)
        for start, size in covered:
            inside[start : start + size] = b"\1" * size
        for off in range(PCI_STD_HEADER_SIZEOF, cfg.size):
            if not inside[off]:
                cfg.set_wmask(off, 1, 0xFF)

    def _build_msi(self, spec: DeviceSpec, at: int) -> None:
        """The MSI capability: Multiple Message Capable from ``vectors``; enable, Multiple
        Message Enable, address and data writable (mask bits too, with per-vector masking)."""
        cfg, msi_spec = self.cfg, spec.msi
        assert msi_spec is not None
        msi = cfg.add_capability(PCI_CAP_ID_MSI, at)
        flags = (msi_spec.vectors.bit_length() - 1) << 1  # PCI_MSI_FLAGS_QMASK
        if msi_spec.addr64:
            flags |= PCI_MSI_FLAGS_64BIT
        if msi_spec.per_vector_mask:
            flags |= PCI_MSI_FLAGS_MASKBIT
        cfg.poke(msi + PCI_MSI_FLAGS, 2, flags)
        cfg.set_wmask(msi + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE)
        cfg.set_wmask(msi + PCI_MSI_ADDRESS_LO, 4, 0xFFFF_FFFC)
        if msi_spec.addr64:
            cfg.set_wmask(msi + PCI_MSI_ADDRESS_HI, 4, 0xFFFF_FFFF)
        cfg.set_wmask(msi + (PCI_MSI_DATA_64 if msi_spec.addr64 else PCI_MSI_DATA_32), 2, 0xFFFF)
        if msi_spec.per_vector_mask:
            mask = PCI_MSI_MASK_64 if msi_spec.addr64 else PCI_MSI_MASK_32
            cfg.set_wmask(msi + mask, 4, (1 << msi_spec.vectors) - 1)
        assert msi + (PCI_MSI_MASK_64 + 8 if msi_spec.per_vector_mask else 0x10) <= EXP_CAP

    def _build_pcie(self, spec: DeviceSpec) -> None:
        cfg = self.cfg
        exp = cfg.add_capability(PCI_CAP_ID_EXP, EXP_CAP)
        rc_end = spec.pcie_type == "rc-integrated"
        port_type = PCI_EXP_TYPE_RC_END if rc_end else PCI_EXP_TYPE_ENDPOINT
        cfg.poke(exp + PCI_EXP_FLAGS, 2, 0x2 | port_type << 4)  # capability version 2
        cfg.poke(exp + PCI_EXP_DEVCAP, 4, 0x0000_8002)  # role-based errors, MPS 512
        cfg.poke(exp + PCI_EXP_DEVCTL, 2, 0x2810)  # MRRS 512, no-snoop, relaxed ordering
        cfg.set_wmask(exp + PCI_EXP_DEVCTL, 2, 0x7FFF)
        cfg.set_w1cmask(exp + PCI_EXP_DEVSTA, 2, 0x000F)
        cfg.poke(exp + PCI_EXP_DEVCAP2, 4, TPH_COMPLETER[spec.tph_completer] << 12)
        cfg.set_wmask(exp + PCI_EXP_DEVCTL2, 2, 0x07FF)
        assert exp + PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 <= MSIX_CAP

    def _build_msix(self, spec: DeviceSpec) -> None:
        cfg = self.cfg
        assert spec.msix is not None
        msix = cfg.add_capability(PCI_CAP_ID_MSIX, MSIX_CAP)
        bir = spec.msix.bar
        assert spec.msix.pba_offset is not None
        cfg.poke(msix + PCI_MSIX_FLAGS, 2, spec.msix.vectors - 1)
        cfg.set_wmask(msix + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)
        cfg.poke(msix + PCI_MSIX_TABLE, 4, spec.msix.table_offset | bir)
        cfg.poke(msix + PCI_MSIX_PBA, 4, spec.msix.pba_offset | bir)

    def _init_msix_table(self) -> None:
        """Every MSI-X table entry starts masked: one write of the whole table."""
        msix = self.spec.msix
        if msix is None:
            return
        entry = bytes(PCI_MSIX_ENTRY_VECTOR_CTRL) + PCI_MSIX_ENTRY_CTRL_MASKBIT.to_bytes(
            4, "little"
        )
        assert len(entry) == PCI_MSIX_ENTRY_SIZE
        self.bars[msix.bar].power_on_write(msix.table_offset, entry * msix.vectors)

    def _build_ext_caps(self, spec: DeviceSpec) -> None:
        cfg = self.cfg
        dsn = cfg.add_ext_capability(PCI_EXT_CAP_ID_DSN, 1, DSN_EXT_CAP)
        cfg.poke(dsn + 4, 4, self.domain << 16 | self.busnr << 8 | self.devfn)
        cfg.poke(dsn + 8, 4, spec.vendor << 16 | spec.device)
        assert dsn + PCI_EXT_CAP_DSN_SIZEOF <= TPH_EXT_CAP

        if spec.tph is not None:
            tph = cfg.add_ext_capability(PCI_EXT_CAP_ID_TPH, 1, TPH_EXT_CAP)
            cap = _TPH_LOC[spec.tph.st_table]
            for mode in spec.tph.modes:
                cap |= _TPH_MODE_BITS[mode]
            if spec.tph.ext:
                cap |= PCI_TPH_CAP_EXT_TPH
            if spec.tph.st_table_size:
                cap |= (spec.tph.st_table_size - 1) << PCI_TPH_CAP_ST_SHIFT
            cfg.poke(tph + PCI_TPH_CAP, 4, cap)
            cfg.set_wmask(
                tph + PCI_TPH_CTRL, 4, PCI_TPH_CTRL_MODE_SEL_MASK | PCI_TPH_CTRL_REQ_EN_MASK
            )
            if spec.tph.st_table == "cap":
                for i in range(spec.tph.st_table_size):
                    cfg.set_wmask(tph + PCI_TPH_BASE_SIZEOF + 2 * i, 2, 0xFFFF)

    # -- config space accessors (include/linux/pci.h) -------------------------

    def pci_read_config_byte(self, where: int) -> int:
        return self.cfg.read(where, 1)

    def pci_read_config_word(self, where: int) -> int:
        return self.cfg.read(where, 2)

    def pci_read_config_dword(self, where: int) -> int:
        return self.cfg.read(where, 4)

    def pci_write_config_byte(self, where: int, val: int) -> None:
        self._write_config(where, 1, val)

    def pci_write_config_word(self, where: int, val: int) -> None:
        self._write_config(where, 2, val)

    def pci_write_config_dword(self, where: int, val: int) -> None:
        self._write_config(where, 4, val)

    def _write_config(self, where: int, width: int, val: int) -> None:
        touches_command = where < PCI_COMMAND + 2 and where + width > PCI_COMMAND
        old = self.cfg.read(PCI_COMMAND, 2)
        self.cfg.write(where, width, val)
        if not touches_command:
            return
        new = self.cfg.read(PCI_COMMAND, 2)
        if new == old:
            return
        tracer = self.tracer
        if tracer is not None:
            trace_pci_config_write(tracer, self.bdf, PCI_COMMAND, old, new)
        for listener in tuple(self._command_listeners):
            listener(self, old, new)

    def pci_find_capability(self, cap: int) -> int:
        """Offset of standard capability ``cap``, or 0."""
        return self.cfg.find_capability(cap)

    def pci_find_ext_capability(self, cap: int) -> int:
        """Offset of extended capability ``cap``, or 0."""
        return self.cfg.find_ext_capability(cap)

    def pcie_capability_read_dword(self, where: int) -> int:
        """A register of the PCI Express capability (0 if there is none, as the kernel)."""
        return self.cfg.read(self.pcie_cap + where, 4) if self.pcie_cap else 0

    def pci_is_pcie(self) -> bool:
        """Whether the function has a PCI Express capability (``pci_is_pcie``)."""
        return bool(self.pcie_cap)

    def pci_pcie_type(self) -> int:
        """``PCI_EXP_TYPE_*`` from the PCI Express capability's flags (0 without one, as
        the kernel's cached ``pcie_flags_reg`` is)."""
        if not self.pcie_cap:
            return 0
        return (self.cfg.read(self.pcie_cap + PCI_EXP_FLAGS, 2) & PCI_EXP_FLAGS_TYPE) >> 4

    def pci_resource_start(self, bar: int) -> int:
        return self.bars[bar].bus_address

    def pci_resource_len(self, bar: int) -> int:
        return self.bars[bar].size

    # -- PCI_COMMAND ----------------------------------------------------------

    @property
    def memory_enabled(self) -> bool:
        """Whether the function decodes memory (``PCI_COMMAND_MEMORY``)."""
        return bool(self.cfg.read(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY)

    def add_command_listener(self, listener: CommandListener) -> None:
        """Call ``listener(pdev, old, new)`` after each write that changes ``PCI_COMMAND``."""
        self._command_listeners.append(listener)

    def remove_command_listener(self, listener: CommandListener) -> None:
        self._command_listeners.remove(listener)

    # -- lifetime -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the BARs' memory and forget the listeners.  Safe to call twice."""
        self._closed = True
        for bar in self.bars.values():
            bar.close()
        self._command_listeners.clear()

    def pci_name(self) -> str:
        return self.bdf

    @property
    def name(self) -> str:
        """``dev_name()``: what bufinfo lists under "Attached Devices"."""
        return self.bdf

    def __repr__(self) -> str:
        return (
            f"<PciDev {self.bdf} [{self.vendor:04x}:{self.device:04x}] "
            f"class {self.class_code:06x} driver={self.driver_name}>"
        )


def pci_set_drvdata(pdev: PciDev, data: object) -> None:
    """``pci_set_drvdata``: the bound driver's object for ``pdev`` (called by ``probe``;
    ``remove`` sets ``None``).  Others find it with :func:`pci_get_drvdata`."""
    pdev.driver_data = data


def pci_get_drvdata(pdev: PciDev) -> object:
    """``pci_get_drvdata``: what the bound driver stored with :func:`pci_set_drvdata`
    (``None``: unbound, or the driver stores nothing); check its type before use."""
    return pdev.driver_data


trace_pci_enable = TracePoint("pci.enable", "bdf", "enable_cnt")
trace_pci_disable = TracePoint("pci.disable", "bdf", "enable_cnt")


def pci_enable_device(pdev: PciDev) -> None:
    """``pci_enable_device``: one more enable of ``pdev`` by its driver (``probe``, or
    vfio-pci's first open of the device); sysfs ``enable`` shows the count.  Pair with
    :func:`pci_disable_device`.  (The mock's BARs are decoded from power-on: the
    command register is the topology's, not changed here.)"""
    pdev.enable_cnt += 1
    if pdev.tracer is not None:
        trace_pci_enable(pdev.tracer, pdev.bdf, pdev.enable_cnt)


def pci_disable_device(pdev: PciDev) -> None:
    """``pci_disable_device``: undo one :func:`pci_enable_device` (``remove``, or
    vfio-pci's last close).  ``KernelBug`` when the device is not enabled (Linux:
    "disabling already-disabled device", a ``WARN``)."""
    if pdev.enable_cnt <= 0:
        raise KernelBug(f"{pdev.bdf}: disabling already-disabled device")
    pdev.enable_cnt -= 1
    if pdev.tracer is not None:
        trace_pci_disable(pdev.tracer, pdev.bdf, pdev.enable_cnt)


def dma_set_mask_and_coherent(pdev: PciDev, bits: int) -> None:
    """``dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(bits))``: the addresses the
    device can reach (a NIC's ``probe`` says 64).  ``EIO`` for a mask under 24 bits (no
    system memory reachable: ``dma_supported`` fails) or over 64."""
    if not 24 <= bits <= 64:
        raise kerr(EIO)
    pdev.dma_mask_bits = pdev.coherent_dma_mask_bits = bits
