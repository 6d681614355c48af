"""Topology: the machine a kernel boots on, as frozen data (CPUs, root ports, PCI devices, rxe).

A :class:`Topology` is loaded from TOML with :func:`load_topology` (``docs/topology.md``
is the reference for the format) or built in Python from the ``*Spec`` dataclasses.
Every dataclass checks its own fields when constructed and :class:`Topology` checks
what spans objects (unique BDFs, root-port references, BAR address windows), so a
Python-built topology is held to the same rules as a loaded one.  Errors are
:class:`TopologyError`, whose message is ``"<key path>: <problem>"``, for example
``devices[1].bars[0].size: 3000 is not a power of two``.

Nothing here is live: :mod:`mockkernel.pci` turns a topology into config spaces and
BAR memory.  :func:`dumps` renders a topology back to TOML, and
``load_topology(dumps(t)) == t`` holds for every valid ``t``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from .profiles import BUILTIN_UAPI_PROFILES, DEFAULT_UAPI_PROFILE, UapiProfiles

__all__ = [
    "DEFAULT_TOPOLOGY_TOML",
    "PCIE_TYPES",
    "TPH_COMPLETER_TYPES",
    "TPH_ST_MODES",
    "TPH_ST_TABLE_LOCATIONS",
    "UAPI_PROFILES",
    "BarSpec",
    "CpuSteeringTag",
    "DeviceSpec",
    "KernelSpec",
    "MsiSpec",
    "MsixSpec",
    "RdmaSpec",
    "RootPortSpec",
    "RxeSpec",
    "Topology",
    "TopologyError",
    "TphSpec",
    "default_topology",
    "dumps",
    "layout_bars",
    "load_topology",
]

#: the names of the built-in uAPI profiles (a kernel's plugins may add more:
#: :class:`mockkernel.profiles.UapiProfiles`)
UAPI_PROFILES = tuple(p.name for p in BUILTIN_UAPI_PROFILES)
TPH_COMPLETER_TYPES = ("none", "tph-only", "ext")  # DEVCAP2[13:12] = 0, 1, 3
TPH_ST_MODES = ("ns", "iv", "ds")  # PCI_TPH_CAP_ST_NS / _IV / _DS
TPH_ST_TABLE_LOCATIONS = ("none", "cap", "msix")  # PCI_TPH_LOC_NONE / _CAP / _MSIX
# PCI_EXP_TYPE_ENDPOINT / _RC_END; "conventional": no PCI Express capability at all
PCIE_TYPES = ("endpoint", "rc-integrated", "conventional")

PAGE_SIZE = 4096
MIN_BAR_SIZE = 16  # a memory BAR's low 4 bits are its flags
MAX_BAR32_SIZE = 1 << 30
MAX_BAR64_SIZE = 1 << 40
MAX_TPH_CAP_ST_ENTRIES = 64  # PCIe r6.2 sec 7.9.13.2: at most 64 entries in the capability
MAX_MSIX_VECTORS = 2048
MSI_VECTORS = (1, 2, 4, 8, 16, 32)  # Multiple Message Capable: 2^0 .. 2^5
MAX_NR_CPUS = 8192
MAX_RLIMIT_NOFILE = 1 << 20  # fs.nr_open default
# Firmware's MMIO windows, from which BARs get bus addresses in topology order.
MMIO32_WINDOW = (0xE000_0000, 0xFEC0_0000)  # up to the IOAPIC
MMIO64_WINDOW = (0x3800_0000_0000, 0x4800_0000_0000)

_BDF_RE = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]")
# dev_valid_name(): 1-15 bytes (IFNAMSIZ - 1), not "." or "..", no '/', ':' or whitespace
_IFNAME_RE = re.compile(r"[^/:\s]{1,15}")
_IBDEV_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")  # IB_DEVICE_NAME_MAX - 1


class TopologyError(ValueError):
    """A topology is invalid; ``key`` is the dotted TOML path, ``problem`` what is wrong.

    ``load_topology`` reports every error it finds at once: ``errors`` lists them (the
    first is also ``key``/``problem``), and ``file`` names the TOML file read, if any::

        topo.toml: 2 errors:
          devices[0].bdf: '0000:0A:00.0' is not a PCI address like '0000:01:00.0' (...)
          devices[1].vendr: unknown key (did you mean 'vendor'?)
    """

    def __init__(
        self,
        key: str,
        problem: str,
        *,
        file: str | None = None,
        errors: tuple[TopologyError, ...] = (),
    ) -> None:
        self.key = key
        self.problem = problem
        self.file = file
        self.errors: tuple[TopologyError, ...] = errors or (self,)
        if len(self.errors) > 1:
            lines = [f"  {e.key}: {e.problem}" if e.key else f"  {e.problem}" for e in errors]
            text = "\n".join([f"{file or 'topology'}: {len(errors)} errors:", *lines])
        else:
            text = f"{key}: {problem}" if key else problem
            if file:
                text = f"{file}: {text}"
        super().__init__(text)


def _did_you_mean(word: object, choices: Iterable[str]) -> str:
    import difflib  # (only on the error path: it costs import time)

    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@contextmanager
def _at(path: str) -> Iterator[None]:
    """Prefix the key of any :class:`TopologyError` raised inside with ``path``."""
    try:
        yield
    except TopologyError as e:

        def prefixed(err: TopologyError) -> TopologyError:
            key = err.key if not err.key or err.key.startswith("[") else "." + err.key
            return TopologyError(path + key, err.problem)

        errors = tuple(prefixed(x) for x in e.errors)
        raise TopologyError(errors[0].key, errors[0].problem, errors=errors) from None


def _check_int(key: str, value: int, lo: int, hi: int, *, hexa: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TopologyError(key, f"expected an integer, got {_type_name(value)}")
    if not lo <= value <= hi:
        f = "#x" if hexa else "d"
        raise TopologyError(key, f"{value:{f}} is out of range [{lo:{f}}, {hi:{f}}]")


def _check_bool(key: str, value: bool) -> None:
    if not isinstance(value, bool):
        raise TopologyError(key, f"expected a boolean, got {_type_name(value)}")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        hint = _did_you_mean(value, choices)
        raise TopologyError(key, f"{value!r} is not one of {', '.join(map(repr, choices))}{hint}")


def _check_bdf(key: str, value: str) -> None:
    if not isinstance(value, str) or not _BDF_RE.fullmatch(value):
        hint = ""
        if isinstance(value, str) and _BDF_RE.fullmatch(value.lower()):
            hint = f" (hex digits are lower case, as in sysfs: {value.lower()!r})"
        elif isinstance(value, str) and re.fullmatch(
            r"[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]", value
        ):
            hint = f" (the domain is needed: '0000:{value.lower()}')"
        raise TopologyError(key, f"{value!r} is not a PCI address like '0000:01:00.0'{hint}")


def _type_name(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string"}
    names |= {list: "array", tuple: "array", dict: "table", MappingProxyType: "table"}
    return names.get(type(value), type(value).__name__)


def _freeze(key: str, value: Any) -> Any:
    """Deep-freeze a free-form option value: tables become read-only, arrays tuples."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return tuple(_freeze(f"{key}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TopologyError(key, f"option keys must be strings, got {_type_name(k)}")
            out[k] = _freeze(f"{key}.{k}", v)
        return MappingProxyType(out)
    raise TopologyError(key, f"unsupported option value type {_type_name(value)}")


# ---------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class KernelSpec:
    """Kernel-wide settings: the uAPI profile, the fd limit and the number of CPUs.

    ``uapi`` is a profile's name.  Which names exist is the booting kernel's registry's
    business (plugins add profiles): :func:`load_topology` checks the name against a
    registry, ``boot`` looks it up.
    """

    uapi: str = DEFAULT_UAPI_PROFILE
    rlimit_nofile: int = 1024
    nr_cpus: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.uapi, str) or not self.uapi:
            raise TopologyError("uapi", f"expected a uAPI profile name, got {self.uapi!r}")
        _check_int("rlimit_nofile", self.rlimit_nofile, 1, MAX_RLIMIT_NOFILE)
        _check_int("nr_cpus", self.nr_cpus, 1, MAX_NR_CPUS)


@dataclass(frozen=True)
class CpuSteeringTag:
    """What the root port's ACPI ``_DSM`` (rev 7, func 0xF) answers for one CPU.

    ``None`` means the entry's valid bit is clear: the kernel then hands out tag 0.
    """

    cpu: int
    vm_st: int | None = None
    pm_st: int | None = None
    vm_xst: int | None = None
    pm_xst: int | None = None

    def __post_init__(self) -> None:
        _check_int("cpu", self.cpu, 0, MAX_NR_CPUS - 1)
        for name in ("vm_st", "pm_st"):
            if (v := getattr(self, name)) is not None:
                _check_int(name, v, 0, 0xFF, hexa=True)
        for name in ("vm_xst", "pm_xst"):
            if (v := getattr(self, name)) is not None:
                _check_int(name, v, 0, 0xFFFF, hexa=True)


@dataclass(frozen=True)
class RootPortSpec:
    """A PCIe root port: its TPH completer support and its per-CPU steering tags.

    An empty ``cpu_st`` means the port has no ``_DSM``; a CPU missing from it makes the
    ``_DSM`` fail for that CPU.  Either way ``pcie_tph_get_cpu_st`` returns ``-EINVAL``.
    """

    bdf: str
    tph_completer: str = "none"
    cpu_st: tuple[CpuSteeringTag, ...] = ()

    def __post_init__(self) -> None:
        _check_bdf("bdf", self.bdf)
        _check_choice("tph_completer", self.tph_completer, TPH_COMPLETER_TYPES)
        object.__setattr__(self, "cpu_st", tuple(self.cpu_st))
        seen: dict[int, int] = {}
        for i, entry in enumerate(self.cpu_st):
            if entry.cpu in seen:
                raise TopologyError(
                    f"cpu_st[{i}].cpu",
                    f"duplicate cpu {entry.cpu} (also cpu_st[{seen[entry.cpu]}])",
                )
            seen[entry.cpu] = i


@dataclass(frozen=True)
class BarSpec:
    """A memory BAR.  A 64-bit BAR also uses the register at ``index + 1``."""

    index: int
    size: int
    mem64: bool = False
    prefetch: bool = False
    p2pdma: bool = False  # can be a peer-to-peer DMA provider (pcim_p2pdma_provider)

    def __post_init__(self) -> None:
        for name in ("mem64", "prefetch", "p2pdma"):
            _check_bool(name, getattr(self, name))
        _check_int("index", self.index, 0, 4 if self.mem64 else 5)
        limit = MAX_BAR64_SIZE if self.mem64 else MAX_BAR32_SIZE
        _check_int("size", self.size, MIN_BAR_SIZE, limit, hexa=True)
        if self.size & (self.size - 1):
            raise TopologyError("size", f"{self.size:#x} is not a power of two")


@dataclass(frozen=True)
class MsiSpec:
    """An MSI capability (``PCI_CAP_ID_MSI``): how many vectors it can request."""

    vectors: int = 1  # Multiple Message Capable: 1, 2, 4, 8, 16 or 32
    addr64: bool = True  # PCI_MSI_FLAGS_64BIT
    per_vector_mask: bool = False  # PCI_MSI_FLAGS_MASKBIT

    def __post_init__(self) -> None:
        _check_int("vectors", self.vectors, 1, MSI_VECTORS[-1])
        if self.vectors not in MSI_VECTORS:
            raise TopologyError("vectors", f"{self.vectors} is not a power of two")
        _check_bool("addr64", self.addr64)
        _check_bool("per_vector_mask", self.per_vector_mask)


@dataclass(frozen=True)
class MsixSpec:
    """An MSI-X capability; its table and PBA live in BAR ``bar``."""

    vectors: int
    bar: int
    table_offset: int = 0
    pba_offset: int | None = None  # None: right after the table

    def __post_init__(self) -> None:
        _check_int("vectors", self.vectors, 1, MAX_MSIX_VECTORS)
        _check_int("bar", self.bar, 0, 5)
        _check_int("table_offset", self.table_offset, 0, 0xFFFF_FFF8, hexa=True)
        if self.table_offset % 8:
            raise TopologyError("table_offset", f"{self.table_offset:#x} is not 8-byte aligned")
        if self.pba_offset is None:
            object.__setattr__(self, "pba_offset", self.table_end)
        assert self.pba_offset is not None
        _check_int("pba_offset", self.pba_offset, 0, 0xFFFF_FFF8, hexa=True)
        if self.pba_offset % 8:
            raise TopologyError("pba_offset", f"{self.pba_offset:#x} is not 8-byte aligned")
        if self.pba_offset < self.table_end and self.table_offset < self.pba_end:
            raise TopologyError("pba_offset", "the PBA overlaps the MSI-X table")

    @property
    def table_end(self) -> int:
        return self.table_offset + 16 * self.vectors

    @property
    def pba_end(self) -> int:
        assert self.pba_offset is not None
        return self.pba_offset + 8 * math.ceil(self.vectors / 64)


@dataclass(frozen=True)
class TphSpec:
    """A TPH Requester extended capability (``PCI_EXT_CAP_ID_TPH``).

    ``st_table_size`` counts entries: 1..64 for ``st_table = "cap"``, 0 for ``"none"``;
    for ``"msix"`` it is the MSI-X table size (0 in the input means "the same").
    """

    modes: tuple[str, ...] = ("ns",)
    ext: bool = False
    st_table: str = "none"
    st_table_size: int = 0

    def __post_init__(self) -> None:
        modes = tuple(self.modes)
        for i, mode in enumerate(modes):
            _check_choice(f"modes[{i}]", mode, TPH_ST_MODES)
            if mode in modes[:i]:
                raise TopologyError(f"modes[{i}]", f"duplicate mode {mode!r}")
        object.__setattr__(self, "modes", tuple(m for m in TPH_ST_MODES if m in modes))
        _check_bool("ext", self.ext)
        _check_choice("st_table", self.st_table, TPH_ST_TABLE_LOCATIONS)
        if self.st_table == "cap":
            _check_int("st_table_size", self.st_table_size, 1, MAX_TPH_CAP_ST_ENTRIES)
        elif self.st_table == "msix":
            _check_int("st_table_size", self.st_table_size, 0, MAX_MSIX_VECTORS)
        elif self.st_table_size != 0:
            raise TopologyError("st_table_size", "must be 0 when st_table = 'none'")


@dataclass(frozen=True)
class DeviceSpec:
    """A PCI function (type 0 header).  TOML spells ``class_code`` as ``class``.

    A PCI Express function unless ``pcie_type = "conventional"``: then it has no PCI
    Express capability, a 256-byte config space and no extended capabilities.
    """

    bdf: str
    vendor: int
    device: int
    class_code: int
    iommu_group: int
    revision: int = 0
    subsystem_vendor: int | None = None
    subsystem_device: int | None = None
    driver: str | None = None  # matched against driver plugins by name
    root_port: str | None = None  # the BDF of a root port
    pcie_type: str = "endpoint"
    memory_enabled: bool = True  # PCI_COMMAND_MEMORY at boot
    io_enabled: bool = False  # PCI_COMMAND_IO implemented (writable) and set at boot
    serr_enabled: bool = False  # PCI_COMMAND_SERR at boot (SeaBIOS sets it)
    interrupt_pin: int = 1  # PCI_INTERRUPT_PIN: 0 none, 1-4 INTA#-INTD#
    interrupt_line: int = 0  # PCI_INTERRUPT_LINE at boot (firmware-assigned)
    devspec_writable: bool = False  # 0x40..end writable outside capabilities (QEMU)
    pm: bool = True  # a Power Management capability (QEMU's edu and ivshmem have none)
    tph_completer: str = "none"  # PCI_EXP_DEVCAP2_TPH_COMP
    bars: tuple[BarSpec, ...] = ()
    msi: MsiSpec | None = None
    msix: MsixSpec | None = None
    tph: TphSpec | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)  # for the driver

    def __post_init__(self) -> None:
        _check_bdf("bdf", self.bdf)
        _check_int("vendor", self.vendor, 0, 0xFFFE, hexa=True)
        _check_int("device", self.device, 0, 0xFFFF, hexa=True)
        _check_int("class", self.class_code, 0, 0xFF_FFFF, hexa=True)
        _check_int("iommu_group", self.iommu_group, 0, 0xFFFF_FFFF)
        _check_int("revision", self.revision, 0, 0xFF, hexa=True)
        for name in ("subsystem_vendor", "subsystem_device"):
            if (v := getattr(self, name)) is not None:
                _check_int(name, v, 0, 0xFFFF, hexa=True)
        if self.driver is not None and (not isinstance(self.driver, str) or not self.driver):
            raise TopologyError("driver", "expected a non-empty string")
        if self.root_port is not None:
            _check_bdf("root_port", self.root_port)
        _check_choice("pcie_type", self.pcie_type, PCIE_TYPES)
        _check_bool("memory_enabled", self.memory_enabled)
        _check_bool("io_enabled", self.io_enabled)
        _check_bool("serr_enabled", self.serr_enabled)
        _check_int("interrupt_pin", self.interrupt_pin, 0, 4)
        _check_int("interrupt_line", self.interrupt_line, 0, 0xFF, hexa=True)
        _check_bool("devspec_writable", self.devspec_writable)
        _check_bool("pm", self.pm)
        _check_choice("tph_completer", self.tph_completer, TPH_COMPLETER_TYPES)
        if self.pcie_type == "conventional":
            # DEVCAP2 is in the PCI Express capability; TPH is an extended capability
            if self.tph_completer != "none":
                raise TopologyError("tph_completer", "a conventional PCI function has none")
            if self.tph is not None:
                raise TopologyError("tph", "a conventional PCI function has no extended capability")
        object.__setattr__(self, "options", _freeze("options", self.options))
        self._check_bars()
        self._check_msix_and_tph()

    def _check_bars(self) -> None:
        used: dict[int, int] = {}
        for i, bar in enumerate(self.bars):
            for reg in (bar.index, bar.index + 1) if bar.mem64 else (bar.index,):
                if reg in used:
                    raise TopologyError(
                        f"bars[{i}].index",
                        f"BAR register {reg} is already used by bars[{used[reg]}]",
                    )
                used[reg] = i
        object.__setattr__(self, "bars", tuple(sorted(self.bars, key=lambda b: b.index)))

    def _check_msix_and_tph(self) -> None:
        if self.msix is not None:
            bar = self.bar(self.msix.bar)
            if bar is None:
                raise TopologyError("msix.bar", f"there is no BAR {self.msix.bar}")
            end = max(self.msix.table_end, self.msix.pba_end)
            if end > bar.size:
                raise TopologyError(
                    "msix", f"table and PBA end at {end:#x}, past the end of BAR {bar.index}"
                )
        if self.tph is not None and self.tph.st_table == "msix":
            if self.msix is None:
                raise TopologyError("tph.st_table", "'msix' needs an [msix] table")
            if self.tph.st_table_size not in (0, self.msix.vectors):
                raise TopologyError(
                    "tph.st_table_size",
                    f"{self.tph.st_table_size} differs from the MSI-X table size "
                    f"({self.msix.vectors})",
                )
            object.__setattr__(
                self, "tph", dataclasses.replace(self.tph, st_table_size=self.msix.vectors)
            )

    def bar(self, index: int) -> BarSpec | None:
        """The BAR whose register is ``index`` (not the upper half of a 64-bit BAR)."""
        return next((b for b in self.bars if b.index == index), None)


@dataclass(frozen=True)
class RxeSpec:
    """A soft-RoCE device (``rdma link add <name> type rxe netdev <netdev>``).

    ``name`` defaults to ``rxe<N>`` (N its position in ``rdma.rxe``); the node GUID is
    derived from ``netdev``, as rxe derives it from the interface's MAC address.
    """

    netdev: str
    name: str | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.netdev, str)
            or not _IFNAME_RE.fullmatch(self.netdev)
            or self.netdev in (".", "..")
        ):
            raise TopologyError("netdev", f"{self.netdev!r} is not a network interface name")
        if self.name is not None and (
            not isinstance(self.name, str) or not _IBDEV_RE.fullmatch(self.name)
        ):
            raise TopologyError("name", f"{self.name!r} is not an RDMA device name")


@dataclass(frozen=True)
class RdmaSpec:
    """RDMA devices that are not PCI functions: soft-RoCE (``rxe``) links."""

    rxe: tuple[RxeSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rxe", tuple(self.rxe))
        names: dict[str, int] = {}
        netdevs: dict[str, int] = {}
        for i, r in enumerate(self.rxe):
            name = self.rxe_name(i)
            if name in names:
                raise TopologyError(
                    f"rxe[{i}].name", f"duplicate {name!r} (also rxe[{names[name]}])"
                )
            if r.netdev in netdevs:
                raise TopologyError(
                    f"rxe[{i}].netdev",
                    f"{r.netdev!r} already has an rxe device (rxe[{netdevs[r.netdev]}])",
                )
            names[name] = i
            netdevs[r.netdev] = i

    def rxe_name(self, index: int) -> str:
        """The ibdev name of ``rxe[index]``."""
        return self.rxe[index].name or f"rxe{index}"


def layout_bars(devices: tuple[DeviceSpec, ...]) -> dict[tuple[str, int], int]:
    """Assign bus addresses the way firmware would: in topology order, naturally aligned.

    A BAR smaller than a page still starts a page of its own, as Linux realigns them in a
    guest (``pcibios_default_alignment``), which is what lets vfio-pci map one.
    """
    cursors = {False: MMIO32_WINDOW[0], True: MMIO64_WINDOW[0]}
    out: dict[tuple[str, int], int] = {}
    for d, dev in enumerate(devices):
        for b, bar in enumerate(dev.bars):
            align = max(bar.size, PAGE_SIZE)
            start = -(-cursors[bar.mem64] // align) * align
            lo, hi = MMIO64_WINDOW if bar.mem64 else MMIO32_WINDOW
            if start + bar.size > hi:
                raise TopologyError(
                    f"devices[{d}].bars[{b}].size",
                    f"the {'64' if bar.mem64 else '32'}-bit MMIO window "
                    f"{lo:#x}-{hi - 1:#x} is exhausted",
                )
            out[dev.bdf, bar.index] = start
            cursors[bar.mem64] = start + bar.size
    return out


@dataclass(frozen=True)
class Topology:
    """A whole machine: kernel settings, root ports and PCI devices (in bus-scan order)."""

    kernel: KernelSpec = field(default_factory=KernelSpec)
    root_ports: tuple[RootPortSpec, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    rdma: RdmaSpec = field(default_factory=RdmaSpec)
    _bar_addresses: Mapping[tuple[str, int], int] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "root_ports", tuple(self.root_ports))
        object.__setattr__(self, "devices", tuple(self.devices))
        owners: dict[str, str] = {}
        ports: set[str] = set()
        for i, rp in enumerate(self.root_ports):
            key = f"root_ports[{i}]"
            if rp.bdf in owners:
                raise TopologyError(f"{key}.bdf", f"duplicate {rp.bdf!r} (also {owners[rp.bdf]})")
            owners[rp.bdf] = key
            ports.add(rp.bdf)
            for j, entry in enumerate(rp.cpu_st):
                if entry.cpu >= self.kernel.nr_cpus:
                    raise TopologyError(
                        f"{key}.cpu_st[{j}].cpu",
                        f"cpu {entry.cpu} does not exist (kernel.nr_cpus = {self.kernel.nr_cpus})",
                    )
        for i, dev in enumerate(self.devices):
            key = f"devices[{i}]"
            if dev.bdf in owners:
                raise TopologyError(f"{key}.bdf", f"duplicate {dev.bdf!r} (also {owners[dev.bdf]})")
            owners[dev.bdf] = key
            if dev.root_port is not None and dev.root_port not in ports:
                raise TopologyError(f"{key}.root_port", f"no root port {dev.root_port!r}")
            if dev.pcie_type == "rc-integrated" and dev.root_port is not None:
                raise TopologyError(
                    f"{key}.root_port", "an rc-integrated endpoint has no root port"
                )
        object.__setattr__(self, "_bar_addresses", MappingProxyType(layout_bars(self.devices)))

    def device(self, bdf: str) -> DeviceSpec:
        """The device at ``bdf`` (``KeyError`` if none)."""
        for dev in self.devices:
            if dev.bdf == bdf:
                return dev
        raise KeyError(bdf)

    def root_port(self, bdf: str) -> RootPortSpec:
        """The root port at ``bdf`` (``KeyError`` if none)."""
        for rp in self.root_ports:
            if rp.bdf == bdf:
                return rp
        raise KeyError(bdf)

    def bar_address(self, bdf: str, index: int) -> int:
        """The bus address firmware assigned to BAR ``index`` of device ``bdf``."""
        return self._bar_addresses[bdf, index]

    def iommu_groups(self) -> dict[int, tuple[str, ...]]:
        """Group number to the BDFs in it, in topology order."""
        groups: dict[int, tuple[str, ...]] = {}
        for dev in self.devices:
            groups[dev.iommu_group] = (*groups.get(dev.iommu_group, ()), dev.bdf)
        return groups


# ---------------------------------------------------------------------------
# TOML -> model

_REQUIRED: Any = object()
_T = TypeVar("_T")


class _Table:
    """One TOML table being read: rejects unknown keys up front and type-checks values."""

    def __init__(self, raw: object, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(raw, dict):
            raise TopologyError(path, f"expected a table, got {_type_name(raw)}")
        self.raw: dict[str, Any] = raw
        self.path = path
        unknown = [
            TopologyError(self.key(key), f"unknown key{_did_you_mean(key, allowed)}")
            for key in raw
            if key not in allowed
        ]
        if unknown:  # every unknown key of the table at once
            raise TopologyError(unknown[0].key, unknown[0].problem, errors=tuple(unknown))

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str, default: Any, types: tuple[type, ...], what: str) -> Any:
        if name not in self.raw:
            if default is _REQUIRED:
                raise TopologyError(self.key(name), "missing required key")
            return default
        value = self.raw[name]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise TopologyError(self.key(name), f"expected {what}, got {_type_name(value)}")
        return value

    def get_int(self, name: str, default: Any = _REQUIRED) -> Any:
        return self._get(name, default, (int,), "an integer")

    def get_str(self, name: str, default: Any = _REQUIRED) -> Any:
        return self._get(name, default, (str,), "a string")

    def get_bool(self, name: str, default: Any = _REQUIRED) -> Any:
        return self._get(name, default, (bool,), "a boolean")

    def get_strs(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._get(name, default, (list,), "an array of strings")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise TopologyError(
                    f"{self.key(name)}[{i}]", f"expected a string, got {_type_name(item)}"
                )
        return tuple(value)

    def get_table(self, name: str) -> dict[str, Any] | None:
        return self._get(name, None, (dict,), "a table")  # type: ignore[no-any-return]

    def get_tables(self, name: str) -> list[Any]:
        value = self._get(name, [], (list,), "an array of tables")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise TopologyError(
                    f"{self.key(name)}[{i}]", f"expected a table, got {_type_name(item)}"
                )
        return value  # type: ignore[no-any-return]


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def _make(path: str, cls: type[_T], **kwargs: Any) -> _T:
    """Construct ``cls`` from already-read values, prefixing its errors with ``path``."""
    with _at(path):
        return cls(**kwargs)


def _parse_kernel(raw: object, uapi_profiles: UapiProfiles) -> KernelSpec:
    t = _Table(raw, "kernel", _fields(KernelSpec))
    d = KernelSpec()
    uapi = t.get_str("uapi", d.uapi)
    with _at("kernel"):
        _check_choice("uapi", uapi, uapi_profiles.names())
    return _make(
        "kernel",
        KernelSpec,
        uapi=uapi,
        rlimit_nofile=t.get_int("rlimit_nofile", d.rlimit_nofile),
        nr_cpus=t.get_int("nr_cpus", d.nr_cpus),
    )


def _parse_root_port(raw: object, path: str) -> RootPortSpec:
    t = _Table(raw, path, _fields(RootPortSpec))
    entries = []
    for i, e in enumerate(t.get_tables("cpu_st")):
        et = _Table(e, f"{path}.cpu_st[{i}]", _fields(CpuSteeringTag))
        entries.append(
            _make(
                et.path,
                CpuSteeringTag,
                cpu=et.get_int("cpu"),
                vm_st=et.get_int("vm_st", None),
                pm_st=et.get_int("pm_st", None),
                vm_xst=et.get_int("vm_xst", None),
                pm_xst=et.get_int("pm_xst", None),
            )
        )
    return _make(
        path,
        RootPortSpec,
        bdf=t.get_str("bdf"),
        tph_completer=t.get_str("tph_completer", "none"),
        cpu_st=tuple(entries),
    )


def _parse_device(raw: object, path: str) -> DeviceSpec:
    keys = tuple("class" if k == "class_code" else k for k in _fields(DeviceSpec))
    t = _Table(raw, path, keys)
    bars = []
    for i, b in enumerate(t.get_tables("bars")):
        bt = _Table(b, f"{path}.bars[{i}]", _fields(BarSpec))
        bars.append(
            _make(
                bt.path,
                BarSpec,
                index=bt.get_int("index"),
                size=bt.get_int("size"),
                mem64=bt.get_bool("mem64", False),
                prefetch=bt.get_bool("prefetch", False),
                p2pdma=bt.get_bool("p2pdma", False),
            )
        )
    msi = None
    if (m := t.get_table("msi")) is not None:
        mt = _Table(m, f"{path}.msi", _fields(MsiSpec))
        msi = _make(
            mt.path,
            MsiSpec,
            vectors=mt.get_int("vectors", 1),
            addr64=mt.get_bool("addr64", True),
            per_vector_mask=mt.get_bool("per_vector_mask", False),
        )
    msix = None
    if (m := t.get_table("msix")) is not None:
        mt = _Table(m, f"{path}.msix", _fields(MsixSpec))
        msix = _make(
            mt.path,
            MsixSpec,
            vectors=mt.get_int("vectors"),
            bar=mt.get_int("bar"),
            table_offset=mt.get_int("table_offset", 0),
            pba_offset=mt.get_int("pba_offset", None),
        )
    tph = None
    if (p := t.get_table("tph")) is not None:
        pt = _Table(p, f"{path}.tph", _fields(TphSpec))
        tph = _make(
            pt.path,
            TphSpec,
            modes=pt.get_strs("modes", ("ns",)),
            ext=pt.get_bool("ext", False),
            st_table=pt.get_str("st_table", "none"),
            st_table_size=pt.get_int("st_table_size", 0),
        )
    return _make(
        path,
        DeviceSpec,
        bdf=t.get_str("bdf"),
        vendor=t.get_int("vendor"),
        device=t.get_int("device"),
        class_code=t.get_int("class"),
        iommu_group=t.get_int("iommu_group"),
        revision=t.get_int("revision", 0),
        subsystem_vendor=t.get_int("subsystem_vendor", None),
        subsystem_device=t.get_int("subsystem_device", None),
        driver=t.get_str("driver", None),
        root_port=t.get_str("root_port", None),
        pcie_type=t.get_str("pcie_type", "endpoint"),
        memory_enabled=t.get_bool("memory_enabled", True),
        io_enabled=t.get_bool("io_enabled", False),
        serr_enabled=t.get_bool("serr_enabled", False),
        interrupt_pin=t.get_int("interrupt_pin", 1),
        interrupt_line=t.get_int("interrupt_line", 0),
        devspec_writable=t.get_bool("devspec_writable", False),
        pm=t.get_bool("pm", True),
        tph_completer=t.get_str("tph_completer", "none"),
        bars=tuple(bars),
        msi=msi,
        msix=msix,
        tph=tph,
        options=t.get_table("options") or {},
    )


def _parse_rdma(raw: object) -> RdmaSpec:
    t = _Table(raw, "rdma", _fields(RdmaSpec))
    rxe = []
    for i, r in enumerate(t.get_tables("rxe")):
        rt = _Table(r, f"rdma.rxe[{i}]", _fields(RxeSpec))
        rxe.append(
            _make(rt.path, RxeSpec, netdev=rt.get_str("netdev"), name=rt.get_str("name", None))
        )
    return _make("rdma", RdmaSpec, rxe=tuple(rxe))


def _looks_like_toml(source: str) -> bool:
    if "\n" in source:
        return True
    if source.endswith(".toml") or os.path.exists(source):
        return False
    line = source.strip()
    return not line or line.startswith("#") or "=" in line or "[" in line


def _read_source(source: str | os.PathLike[str]) -> str:
    if isinstance(source, str) and _looks_like_toml(source):
        return source
    try:
        with open(source, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise TopologyError(os.fspath(source), e.strerror or str(e)) from None
    except UnicodeDecodeError as e:
        raise TopologyError(os.fspath(source), f"not UTF-8 ({e.reason})") from None


def topology_file(source: str | os.PathLike[str]) -> str | None:
    """The file name ``load_topology(source)`` reads (None: ``source`` is TOML text), for
    the error messages about that topology."""
    return None if isinstance(source, str) and _looks_like_toml(source) else os.fspath(source)


def load_topology(
    source: str | os.PathLike[str],
    *,
    uapi_profiles: UapiProfiles | None = None,
    check_driver: Callable[[str], str | None] | None = None,
) -> Topology:
    """Load and validate a topology from a TOML file or TOML text.

    ``source`` is a path (any ``os.PathLike``, or a one-line ``str`` that names an existing
    file, ends in ``.toml``, or has no ``=``/``[``/``#`` in it) or the TOML text itself.
    ``[kernel] uapi`` must name a profile of ``uapi_profiles`` (default: the built-in
    ones; ``boot`` passes its kernel's registry, plugins' profiles included).
    ``check_driver(name)``: what is wrong with a device's ``driver`` (None: nothing), so
    that an unknown driver is reported with the file's other errors (``boot`` passes the
    registered PCI drivers' check when a file has errors).
    Raises :class:`TopologyError`.
    """
    text = _read_source(source)
    file = topology_file(source)
    try:
        return _load(text, uapi_profiles, check_driver)
    except TopologyError as e:
        if file is None:
            raise
        raise TopologyError(e.key, e.problem, file=file, errors=e.errors) from None


def _load(
    text: str,
    uapi_profiles: UapiProfiles | None,
    check_driver: Callable[[str], str | None] | None = None,
) -> Topology:
    """Parse every table, collecting the errors of each (all are reported at once)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TopologyError("", f"TOML syntax error: {e}") from None
    errors: list[TopologyError] = []

    def attempt(parse: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return parse(*args)
        except TopologyError as e:
            errors.extend(e.errors)
            return None

    sections = ("kernel", "root_ports", "devices", "rdma")
    attempt(_Table, raw, "", sections)  # unknown top-level keys
    t = _Table({k: v for k, v in raw.items() if k in sections}, "", sections)
    profiles = uapi_profiles if uapi_profiles is not None else UapiProfiles()
    kernel = attempt(lambda: _parse_kernel(t.get_table("kernel") or {}, profiles))
    rps = attempt(t.get_tables, "root_ports") or []
    root_ports = [attempt(_parse_root_port, r, f"root_ports[{i}]") for i, r in enumerate(rps)]
    devs = attempt(t.get_tables, "devices") or []
    devices = [attempt(_parse_device, d, f"devices[{i}]") for i, d in enumerate(devs)]
    if check_driver is not None:
        for i, d in enumerate(devs):
            name = d.get("driver") if isinstance(d, dict) else None
            problem = check_driver(name) if isinstance(name, str) and name else None
            if problem is not None:
                errors.append(TopologyError(f"devices[{i}].driver", problem))
    rdma = attempt(lambda: _parse_rdma(t.get_table("rdma") or {}))
    if errors:
        first = errors[0]
        raise TopologyError(first.key, first.problem, errors=tuple(errors))
    assert kernel is not None and rdma is not None
    return Topology(
        kernel=kernel,
        root_ports=tuple(r for r in root_ports if r is not None),
        devices=tuple(d for d in devices if d is not None),
        rdma=rdma,
    )


def _read_default() -> str:
    """The bundled ``default_topology.toml``: read beside this file (``importlib.resources``
    costs ~7 ms of imports, a tenth of ``import mockkernel``), through it only when the
    package is not plain files (a zip)."""
    try:
        with open(os.path.join(os.path.dirname(__file__), "default_topology.toml"), "rb") as f:
            return f.read().decode("utf-8")
    except OSError:
        from importlib import resources

        path = resources.files("mockkernel").joinpath("default_topology.toml")
        text: str = path.read_text(encoding="utf-8")
        return text


DEFAULT_TOPOLOGY_TOML: str = _read_default()


def default_topology() -> Topology:
    """The machine a kernel boots on when given none (``mockkernel topology`` prints it)."""
    return load_topology(DEFAULT_TOPOLOGY_TOML)


# ---------------------------------------------------------------------------
# model -> TOML

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = MappingProxyType(
    {
        '"': '\\"',
        "\\": "\\\\",
        "\b": "\\b",
        "\t": "\\t",
        "\n": "\\n",
        "\f": "\\f",
        "\r": "\\r",
    }
)


def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(k: str) -> str:
    return k if _BARE_KEY_RE.fullmatch(k) else _toml_str(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot render {type(v).__name__} as TOML")


def _hex(v: int, width: int = 0) -> str:
    return f"{v:#0{width + 2}x}" if width else hex(v)


def dumps(topology: Topology) -> str:
    """Render ``topology`` as TOML that :func:`load_topology` reads back to an equal value."""
    out: list[str] = []

    def kv(key: str, value: str | None) -> None:
        if value is not None:
            out.append(f"{key} = {value}")

    k = topology.kernel
    out.append("[kernel]")
    kv("uapi", _toml_str(k.uapi))
    kv("rlimit_nofile", str(k.rlimit_nofile))
    kv("nr_cpus", str(k.nr_cpus))
    for rp in topology.root_ports:
        out += ["", "[[root_ports]]"]
        kv("bdf", _toml_str(rp.bdf))
        kv("tph_completer", _toml_str(rp.tph_completer))
        for e in rp.cpu_st:
            out += ["", "[[root_ports.cpu_st]]"]
            kv("cpu", str(e.cpu))
            for name, width in (("vm_st", 2), ("pm_st", 2), ("vm_xst", 4), ("pm_xst", 4)):
                v = getattr(e, name)
                kv(name, None if v is None else _hex(v, width))
    for d in topology.devices:
        out += ["", "[[devices]]"]
        kv("bdf", _toml_str(d.bdf))
        kv("vendor", _hex(d.vendor, 4))
        kv("device", _hex(d.device, 4))
        kv("class", _hex(d.class_code, 6))
        kv("revision", _hex(d.revision, 2))
        kv("subsystem_vendor", None if d.subsystem_vendor is None else _hex(d.subsystem_vendor, 4))
        kv("subsystem_device", None if d.subsystem_device is None else _hex(d.subsystem_device, 4))
        kv("driver", None if d.driver is None else _toml_str(d.driver))
        kv("iommu_group", str(d.iommu_group))
        kv("root_port", None if d.root_port is None else _toml_str(d.root_port))
        kv("pcie_type", _toml_str(d.pcie_type))
        kv("memory_enabled", _toml_value(d.memory_enabled))
        kv("io_enabled", _toml_value(d.io_enabled))
        kv("serr_enabled", _toml_value(d.serr_enabled))
        kv("interrupt_pin", str(d.interrupt_pin))
        kv("interrupt_line", _hex(d.interrupt_line, 2))
        kv("devspec_writable", _toml_value(d.devspec_writable))
        kv("pm", _toml_value(d.pm))
        kv("tph_completer", _toml_str(d.tph_completer))
        for bar in d.bars:
            out += ["", "[[devices.bars]]"]
            kv("index", str(bar.index))
            kv("size", _hex(bar.size))
            kv("mem64", _toml_value(bar.mem64))
            kv("prefetch", _toml_value(bar.prefetch))
            kv("p2pdma", _toml_value(bar.p2pdma))
        if d.msi is not None:
            out += ["", "[devices.msi]"]
            kv("vectors", str(d.msi.vectors))
            kv("addr64", _toml_value(d.msi.addr64))
            kv("per_vector_mask", _toml_value(d.msi.per_vector_mask))
        if d.msix is not None:
            out += ["", "[devices.msix]"]
            kv("vectors", str(d.msix.vectors))
            kv("bar", str(d.msix.bar))
            kv("table_offset", _hex(d.msix.table_offset))
            kv("pba_offset", None if d.msix.pba_offset is None else _hex(d.msix.pba_offset))
        if d.tph is not None:
            out += ["", "[devices.tph]"]
            kv("modes", _toml_value(d.tph.modes))
            kv("ext", _toml_value(d.tph.ext))
            kv("st_table", _toml_str(d.tph.st_table))
            kv("st_table_size", str(d.tph.st_table_size))
        if d.options:
            out += ["", "[devices.options]"]
            for key, value in d.options.items():
                kv(_toml_key(key), _toml_value(value))
    for r in topology.rdma.rxe:
        out += ["", "[[rdma.rxe]]"]
        kv("netdev", _toml_str(r.netdev))
        kv("name", None if r.name is None else _toml_str(r.name))
    return "\n".join(out) + "\n"
