"""The PCIe fabric: memory-write TLPs from a requester to whatever the address decodes to.

A device model (an RDMA NIC writing an incoming RDMA WRITE, an Ethernet NIC landing a
packet) calls :meth:`Fabric.memory_write` with the bus address it DMAs to -- an address
it got from ``dma_buf_map_attachment`` -- and, when it uses TLP Processing Hints, the
processing hint and steering tag.  The fabric

1. splits the write into TLPs at the Max_Payload_Size and at 4 KiB boundaries (a TLP may
   not cross one);
2. decodes each address: a BAR of a device (peer-to-peer) or system RAM an exporter
   registered (``add_ram``); nothing there, or a BAR whose function has memory decoding
   off, is an Unsupported Request -- the posted write is dropped, as on real hardware;
3. carries TPH as the spec says: TH=1, PH in the address's low bits, the 8-bit ST in the
   header, and the upper ST byte as a TPH TLP prefix only when the *completer* (the
   target function, or the root port for system RAM) supports extended TPH;
4. emits one ``pcie.tlp`` trace event per TLP and lands the bytes in the target memory
   (a BAR's memfd, so a VFIO region mmap sees them).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..mm import KernelMap
from ..trace import TracePoint
from .tph import PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH, pcie_tph_completer_type

if TYPE_CHECKING:
    from ..trace import Tracer
    from .bus import PciBus
    from .dev import PciBar, PciDev, PciRootPort

__all__ = ["Fabric", "Tlp", "WriteResult"]

trace_pcie_tlp = TracePoint(
    "pcie.tlp",
    *("requester", "address", "length", "th", "ph", "st", "st_ext", "target", "status"),
    hex_keys=("address",),
)

_FOUR_K = 4096
#: one BAR as the fabric decodes it: first and last bus address, the BAR, its function,
#: the TLP target name and whether the function completes extended TPH
_Window = tuple[int, int, "PciBar", "PciDev", str, bool]


@dataclass(frozen=True)
class Tlp:
    """One posted memory-write request as it crosses the fabric."""

    requester_id: int  # bus << 8 | devfn
    address: int
    length: int
    th: bool  # TLP Processing Hints present
    ph: int  # processing hint (2 bits), meaningful when th
    st: int  # steering tag bits [7:0] (header)
    st_ext: int | None  # steering tag bits [15:8] (TPH prefix), None when no prefix
    target: str  # "bdf:barN" or "ram"
    status: str  # "ok" or "ur" (unsupported request: dropped)

    @property
    def steering_tag(self) -> int:
        return self.st | ((self.st_ext or 0) << 8)


_new_object = object.__new__


def _tlp(
    rid: int,
    addr: int,
    n: int,
    th: bool,
    ph: int,
    st: int,
    st_ext: int | None,
    target: str,
    status: str,
) -> Tlp:
    """``Tlp(rid, addr, n, ...)`` without the frozen dataclass's ``__init__`` (an
    ``object.__setattr__`` per field): one is made per 256 bytes a device writes, the
    fabric's hot loop.  The fields go straight into the instance's own ``__dict__`` (a
    key-sharing dict, as ``__init__`` would make).  Equal to, and indistinguishable from,
    one made the usual way."""
    tlp = _new_object(Tlp)
    d = tlp.__dict__
    d["requester_id"] = rid
    d["address"] = addr
    d["length"] = n
    d["th"] = th
    d["ph"] = ph
    d["st"] = st
    d["st_ext"] = st_ext
    d["target"] = target
    d["status"] = status
    return tlp


@dataclass(frozen=True, init=False)
class WriteResult:
    """What one DMA did: its TLPs, in order."""

    tlps: tuple[Tlp, ...]

    def __init__(self, tlps: tuple[Tlp, ...]) -> None:
        # (the frozen dataclass's own __init__ sets each field with object.__setattr__;
        # one of these is made per DMA)
        self.__dict__["tlps"] = tlps

    @property
    def ok(self) -> bool:
        return all(t.status == "ok" for t in self.tlps)

    @property
    def delivered(self) -> int:
        return sum(t.length for t in self.tlps if t.status == "ok")


class Fabric:
    """Routes memory writes for one kernel's PCI bus and system RAM."""

    def __init__(self, bus: PciBus, tracer: Tracer, max_payload: int = 256) -> None:
        if max_payload not in (128, 256, 512, 1024, 2048, 4096):
            raise ValueError(f"bad Max_Payload_Size {max_payload}")
        self.bus = bus
        self.tracer = tracer
        self.max_payload = max_payload
        self._ram_starts: list[int] = []
        self._ram: dict[int, tuple[int, KernelMap, int]] = {}  # start -> (end, map, offset)
        self._root_port: PciRootPort | None = bus.root_ports[0] if bus.root_ports else None
        #: every BAR of the bus as a ``_Window`` (first and last address, the BAR, its
        #: function, ``"bdf:barN"``, extended-TPH completer), in the order decoding tries
        #: them; rebuilt when ``bus.devices`` (a tuple the bus replaces on each removal
        #: and rescan) is another object than the one they were built from
        self._windows: tuple[_Window, ...] = ()
        self._windows_of: tuple[PciDev, ...] | None = None

    # -- system RAM that exporters hand out --------------------------------------------------
    def add_ram(self, address: int, length: int, mem: KernelMap, offset: int = 0) -> None:
        """Make ``[address, address+length)`` decode to ``mem`` at ``offset``."""
        i = bisect.bisect_left(self._ram_starts, address)
        for j in (i - 1, i):
            if 0 <= j < len(self._ram_starts):
                start = self._ram_starts[j]
                end = self._ram[start][0]
                if start < address + length and address < end:
                    raise ValueError(f"RAM range {address:#x}+{length:#x} overlaps {start:#x}")
        self._ram_starts.insert(i, address)
        self._ram[address] = (address + length, mem, offset)

    def remove_ram(self, address: int) -> None:
        """Forget the range added at ``address``.  Found by bisection, not ``list.remove``:
        a scan from the front made each removal O(live ranges) (udmabuf adds one per
        buffer, and the newest is at the end)."""
        if address in self._ram:
            del self._ram[address]
            del self._ram_starts[bisect.bisect_left(self._ram_starts, address)]

    # -- decoding ------------------------------------------------------------------------------
    def _bar_windows(self) -> tuple[_Window, ...]:
        """The BARs of the functions present now, flattened once per bus change: a
        device DMAs on every write, and walking each function's BARs (formatting the
        target's name, reading its DEVCAP2) per TLP run was most of the fabric's cost.
        A BAR's bus address and size are fixed for its life, and so is its function's
        TPH completer support (DEVCAP2 is read-only); whether the BAR is closed and
        whether the function decodes memory are checked per write."""
        devices = self.bus.devices
        if devices is not self._windows_of:
            self._windows = tuple(
                (
                    bar.bus_address,
                    bar.end,
                    bar,
                    pdev,
                    f"{pdev.bdf}:bar{bar.index}",
                    pcie_tph_completer_type(pdev) == PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH,
                )
                for pdev in devices
                for bar in pdev.bars.values()
            )
            self._windows_of = devices
        return self._windows

    def _decode(
        self, address: int, requester: PciDev
    ) -> tuple[str, KernelMap, int, int, PciDev | None, bool] | None:
        """(name, memory, offset, bytes left in the region, target function, whether the
        completer takes the extended-ST prefix) or None."""
        windows = self._windows if self.bus.devices is self._windows_of else self._bar_windows()
        for first, last, bar, pdev, name, ext in windows:
            if first <= address <= last and not bar.closed:
                off = address - first
                return name, bar.map, off, bar.size - off, pdev, ext
        i = bisect.bisect_right(self._ram_starts, address) - 1
        if i >= 0:
            start = self._ram_starts[i]
            end, mem, base = self._ram[start]
            if address < end and not mem.closed:
                ext = self._completer_ext(None, requester)
                return "ram", mem, base + address - start, end - address, None, ext
        return None

    def _completer_ext(self, target: PciDev | None, requester: PciDev) -> bool:
        """Does the completer take the extended-ST prefix?  RAM completes at the root port."""
        if target is not None:
            return pcie_tph_completer_type(target) == PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH
        rp = requester.root_port or self._root_port
        return rp is not None and rp.tph_completer == PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH

    # -- the write -----------------------------------------------------------------------------
    def memory_write(
        self,
        requester: PciDev,
        address: int,
        data: bytes | bytearray | memoryview,
        *,
        ph: int | None = None,
        steering_tag: int = 0,
    ) -> WriteResult:
        """DMA ``data`` to bus address ``address`` from ``requester``; TPH when ``ph`` is set."""
        if ph is not None and not 0 <= ph <= 3:
            raise ValueError(f"processing hint {ph} is not 2 bits")
        if not 0 <= steering_tag <= 0xFFFF:
            raise ValueError(f"steering tag {steering_tag:#x} is not 16 bits")
        rid = requester.busnr << 8 | requester.devfn
        payload = bytes(data)
        total = len(payload)
        tlps: list[Tlp] = []
        th = ph is not None
        tph, st = (ph, steering_tag & 0xFF) if ph is not None else (0, 0)
        st_ext = steering_tag >> 8 if th else None
        max_payload = self.max_payload
        tracing = self.tracer.enabled
        pos = 0
        while pos < total:
            # one decode per run of the payload inside one region (a BAR, a RAM range),
            # whose bytes land in one copy; the run still crosses as TLPs of at most
            # max_payload bytes that never cross a 4 KiB boundary
            addr = address + pos
            where = self._decode(addr, requester)
            if where is None:
                run, name, status, ext = total - pos, "none", "ur", None
                run = min(run, max_payload, _FOUR_K - addr % _FOUR_K)  # one UR TLP
            else:
                name, mem, off, left, target, ext_completer = where
                run = total - pos
                if run > left:
                    run = left
                ext = st_ext if ext_completer else None
                status = "ur"
                if target is None or target.memory_enabled:
                    piece = payload if run == total else memoryview(payload)[pos : pos + run]
                    mem.write(off, piece)
                    status = "ok"
            end = pos + run
            while pos < end:
                addr = address + pos
                n = end - pos
                if n > max_payload:
                    n = max_payload
                to_4k = _FOUR_K - addr % _FOUR_K
                if n > to_4k:
                    n = to_4k
                tlps.append(_tlp(rid, addr, n, th, tph, st, ext, name, status))
                if tracing:  # (checked once per write: no call per TLP while off)
                    trace_pcie_tlp(
                        self.tracer, requester.bdf, addr, n, th, tph, st, ext, name, status
                    )
                pos += n
        return WriteResult(tuple(tlps))
