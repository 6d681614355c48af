"""The fabric's write path against a plain model of the spec, TLP by TLP.

:meth:`Fabric.memory_write` decodes once per run of the payload inside one region,
keeps the bus's BARs flattened (rebuilt when the bus changes) with each completer's
extended-TPH support, and lands each run in one copy.  The model here does none of
that: for every TLP it walks the functions present and their BARs, then the RAM
ranges, reads the completer's DEVCAP2 and the command register afresh, and splits at
Max_Payload_Size, 4 KiB and the end of the region.  Both must give the same TLPs and
the same bytes in memory, for any address, length, hint, tag and payload size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mockkernel
from mockkernel.kernel import Kernel
from mockkernel.lifecycle import ModuleLoader
from mockkernel.mm import KernelMap
from mockkernel.pci.dev import PciDev
from mockkernel.pci.fabric import Fabric, Tlp
from mockkernel.pci.tph import PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH, pcie_tph_completer_type

VFIO = "0000:01:00.0"  # extended-TPH completer
MLX = "0000:02:00.0"
NIC = "0000:03:00.0"  # no TPH completer
RAM = 0x1_0000_0000  # a RAM range the tests add (8 KiB)


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    k = mockkernel.boot()
    fd = os.memfd_create("ram")
    os.ftruncate(fd, 8192)
    mem = KernelMap(k, fd, 8192)
    k.fabric.add_ram(RAM, 8192, mem)
    yield k
    k.fabric.remove_ram(RAM)
    mem.close()
    os.close(fd)
    k.shutdown()


def _model_decode(fab: Fabric, address: int) -> tuple[str, KernelMap, int, int, PciDev | None]:
    """(name, memory, offset, bytes left, function) found the long way, or "none"."""
    for pdev in fab.bus.devices:
        for bar in pdev.bars.values():
            if bar.bus_address <= address <= bar.bus_address + bar.size - 1 and not bar.closed:
                off = address - bar.bus_address
                return f"{pdev.bdf}:bar{bar.index}", bar.map, off, bar.size - off, pdev
    for start, (end, mem, base) in fab._ram.items():
        if start <= address < end and not mem.closed:
            return "ram", mem, base + address - start, end - address, None
    raise LookupError


def _model_write(
    fab: Fabric, requester: PciDev, address: int, data: bytes, ph: int | None, tag: int
) -> tuple[list[Tlp], list[tuple[KernelMap, int, bytes]]]:
    """The TLPs the spec says, and (memory, offset, bytes) each delivered one lands."""
    tlps: list[Tlp] = []
    landed: list[tuple[KernelMap, int, bytes]] = []
    rid = requester.busnr << 8 | requester.devfn
    pos = 0
    while pos < len(data):
        addr = address + pos
        n = min(len(data) - pos, fab.max_payload, 4096 - addr % 4096)
        try:
            name, mem, off, left, target = _model_decode(fab, addr)
        except LookupError:
            name, status, ext = "none", "ur", None
        else:
            n = min(n, left)
            if target is not None:
                ext_ok = pcie_tph_completer_type(target) == PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH
            else:
                rp = requester.root_port or fab.bus.root_ports[0]
                ext_ok = rp.tph_completer == PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH
            ext = tag >> 8 if ph is not None and ext_ok else None
            status = "ok" if target is None or target.memory_enabled else "ur"
            if status == "ok":
                landed.append((mem, off, data[pos : pos + n]))
        th = ph is not None
        tlps.append(
            Tlp(rid, addr, n, th, ph if th else 0, tag & 0xFF if th else 0, ext, name, status)
        )
        pos += n
    return tlps, landed


def _addresses(kernel: Kernel) -> st.SearchStrategy[int]:
    """Addresses near the interesting places: BAR starts, ends and a page boundary
    inside, RAM, nothing."""
    assert kernel.pci is not None
    anchors = [RAM, RAM + 4096, RAM + 8192, 0x10]
    for pdev in kernel.pci.devices:
        for bar in pdev.bars.values():
            anchors += [bar.bus_address, bar.bus_address + 4096, bar.bus_address + bar.size]
    deltas = st.integers(-3, 3) | st.integers(-300, 300) | st.integers(-5000, 5000)
    return st.builds(lambda a, d: max(0, a + d), st.sampled_from(anchors), deltas)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_memory_write_matches_the_spec_model(kernel: Kernel, data: st.DataObject) -> None:
    assert kernel.pci is not None
    fab = kernel.fabric
    requester = kernel.pci.get(data.draw(st.sampled_from((MLX, NIC)), label="requester"))
    address = data.draw(_addresses(kernel), label="address")
    length = data.draw(st.integers(1, 4) | st.integers(1, 9000), label="length")
    payload = data.draw(st.binary(min_size=length, max_size=length), label="payload")
    ph = data.draw(st.none() | st.integers(0, 3), label="ph")
    tag = data.draw(st.integers(0, 0xFFFF), label="tag") if ph is not None else 0
    mps = data.draw(st.sampled_from((128, 256, 512, 4096)), label="mps")
    vfio = kernel.pci.get(VFIO)
    memory_on = data.draw(st.booleans(), label="vfio decodes memory")
    cmd = vfio.pci_read_config_word(0x04)
    vfio.pci_write_config_word(0x04, cmd | 0x2 if memory_on else cmd & ~0x2)
    saved_mps, fab.max_payload = fab.max_payload, mps
    try:
        want, landed = _model_write(fab, requester, address, payload, ph, tag)
        got = fab.memory_write(requester, address, payload, ph=ph, steering_tag=tag)
    finally:
        fab.max_payload = saved_mps
        vfio.pci_write_config_word(0x04, cmd)
    assert list(got.tlps) == want
    assert got.delivered == sum(t.length for t in want if t.status == "ok")
    for mem, off, chunk in landed:
        assert mem.read(off, len(chunk)) == chunk


def test_bar_decoding_follows_removal_and_rescan() -> None:
    """The fabric's flattened BARs are rebuilt when the bus changes: a removed function's
    BAR decodes to nothing (an unsupported request), and again after a rescan."""
    kernel = mockkernel.boot()
    try:
        assert kernel.pci is not None
        mlx = kernel.pci.get(MLX)
        bar = kernel.pci.get(NIC).bars[0]
        assert kernel.fabric.memory_write(mlx, bar.bus_address, b"one").ok
        kernel.subsys(ModuleLoader).remove_device(NIC)
        res = kernel.fabric.memory_write(mlx, bar.bus_address, b"two")
        assert [(t.target, t.status) for t in res.tlps] == [("none", "ur")]
        kernel.subsys(ModuleLoader).rescan()
        res = kernel.fabric.memory_write(mlx, bar.bus_address, b"six", ph=1, steering_tag=0x102)
        assert [(t.target, t.status, t.st_ext) for t in res.tlps] == [(f"{NIC}:bar0", "ok", None)]
        assert bar.map.read(0, 3) == b"six"
    finally:
        kernel.shutdown()


def test_a_write_emits_one_event_per_tlp_with_the_tag_when_tracing() -> None:
    """Tracing on: one ``pcie.tlp`` per TLP, with the fields the TLP carries."""
    kernel = mockkernel.boot()
    try:
        assert kernel.pci is not None
        bar = kernel.pci.get(VFIO).bars[0]
        mlx = kernel.pci.get(MLX)
        with kernel.tracer.capture() as events:
            res = kernel.fabric.memory_write(
                mlx, bar.bus_address + 4000, bytes(400), ph=2, steering_tag=0x0112
            )
        tlp_events = [e for e in events if e["event"] == "pcie.tlp"]
        assert [(e["address"], e["length"], e["st"], e["st_ext"]) for e in tlp_events] == [
            (hex(t.address), t.length, t.st, t.st_ext) for t in res.tlps
        ]
        assert [t.length for t in res.tlps] == [96, 256, 48]
        assert {(e["requester"], e["ph"], e["target"], e["status"]) for e in tlp_events} == {
            (MLX, 2, f"{VFIO}:bar0", "ok")
        }
    finally:
        kernel.shutdown()
