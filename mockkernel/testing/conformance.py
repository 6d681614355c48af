"""The dma-buf importer conformance suite: what any importer plugin must get right.

An importer (an RDMA NIC's MRs, a NIC's devmem binding, an accelerator's buffer import)
runs against :class:`ConformanceExporter`, an instrumented exporter that counts every
attach, map, unmap and TPH query, can revoke like vfio-pci, and keeps its memory on the
PCIe fabric as system RAM so a device's DMA really lands in it.  The checks:

``attach_detach_symmetry``
    every attachment is detached and every mapping unmapped once the import is released;
``unmap_within_invalidation``
    a revocable importer has unmapped when its ``invalidate_mappings`` returns (the
    exporter's revoke does not wait for anyone here: it checks);
``no_dma_after_revoke``
    while revoked, a DMA is refused and no byte lands; after un-revoke the next DMA maps
    again and lands;
``tph_requery_after_remap``
    the exporter's steering tag is asked for again after each invalidation, and a TLP
    after the re-map carries the new tag, not the old one;
``eopnotsupp_fallback``
    an exporter without TPH (``EOPNOTSUPP``) still works, without TPH; an importer that is
    not revocable is refused by a revocable-only exporter with ``EOPNOTSUPP`` and leaves
    nothing behind;
``nothing_leaked``
    after everything is released no attachment, dma-buf, file, held lock or kernel
    warning remains.

An importer takes part through an :class:`ImporterHarness` -- four methods that do, in
the importer's own way, "import this dma-buf fd", "DMA these bytes into it", "release"
-- and ``revocable`` (does it pass ``invalidate_mappings``).  :func:`run_conformance`
returns a :class:`ConformanceReport`; ``report.assert_ok()`` fails a test with every
finding.  ``CHECKS`` lists the check names for ``pytest.mark.parametrize``.

What the harness may assume, and must provide:

* every call runs with the kernel installed (``os``/``fcntl`` reach it) and the calling
  process current; ``setup`` runs before each check and ``teardown`` after it, even
  when the check failed, so a check starts from the state ``setup`` makes;
* ``import_fd(fd, length)`` gets a fresh dma-buf fd of ``length`` (16 KiB) bytes that
  the suite closes itself; it may keep the fd (dup it) for as long as the import lives;
* ``dma_write`` is asked only for offsets and lengths inside the import, and must report
  a refused DMA as ``ok=False`` rather than raise;
* ``revocable`` must say what the importer really does: ``True`` only if its attachment
  passes ``DmaBufAttachOps.invalidate_mappings`` *and* ``allow_peer2peer`` (a
  revocable-only exporter refuses anything else with ``EOPNOTSUPP``, reported as such).

Anything the harness raises (other than an expected refusal) is recorded as that
check's failure, naming where it was raised; the other checks still run.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from errno import ENODEV, EOPNOTSUPP
from types import MappingProxyType
from typing import Any, Protocol

from ..dma_buf import (
    Attachment,
    DmaBuf,
    DmaBufOps,
    SgEntry,
    SgTable,
    dma_buf_attach_revocable,
    dma_buf_export,
    dma_buf_fd,
    dma_buf_invalidate_mappings,
    dma_buf_subsys,
)
from ..errors import kerr
from ..kernel import Kernel
from ..mm import KernelMap
from ..realfd import hide, kernel_close

__all__ = [
    "CHECKS",
    "ConformanceExporter",
    "ConformanceReport",
    "DmaResult",
    "ImporterHarness",
    "run_check",
    "run_conformance",
]

CHECKS = (
    "attach_detach_symmetry",
    "unmap_within_invalidation",
    "no_dma_after_revoke",
    "tph_requery_after_remap",
    "eopnotsupp_fallback",
    "nothing_leaked",
)
_RAM_BASE = 0x6000_0000_0000
SIZE = 4 * 4096


@dataclass(frozen=True)
class DmaResult:
    """How a device's DMA into an import went: ``ok``, and the TLPs it made
    (``mockkernel.pci.fabric.Tlp``: ``th``, ``ph``, ``steering_tag``, ``target``)."""

    ok: bool
    tlps: Sequence[Any] = ()


class ImporterHarness(Protocol):
    """One importer (in one mode) as the suite drives it.

    The calls run with the kernel installed and the calling process current: use the
    importer's uAPI (ioctls on its device node) or, for an in-kernel importer, its API.
    """

    #: shown in reports
    name: str
    #: the importer passes ``invalidate_mappings`` (dynamic) rather than pinning
    revocable: bool

    def setup(self, kernel: Kernel) -> None:
        """Before the checks (open the device, allocate a context...)."""

    def import_fd(self, fd: int, length: int) -> Any:
        """Import ``length`` bytes of the dma-buf ``fd``; raise ``OSError`` to refuse."""

    def dma_write(self, handle: Any, offset: int, data: bytes) -> DmaResult:
        """The device DMAs ``data`` at ``offset`` of the import (never raises for a
        revoked buffer: ``ok=False``)."""

    def release(self, handle: Any) -> None:
        """Drop the import (its attachment goes)."""

    def teardown(self) -> None:
        """After the checks."""


@dataclass
class _Priv:
    memfd: int
    mem: KernelMap
    base: int
    revoked: bool = False
    tph: tuple[int, int, int] | None = None  # (xst, st, ph)


class ConformanceExporter(DmaBufOps):
    """An instrumented exporter: RAM on the fabric, counters, vfio-like revocation.

    ``revocable_only``: refuse importers without ``invalidate_mappings`` (and non-p2p
    ones) with ``EOPNOTSUPP``, as vfio-pci does.  ``tph=(xst, st, ph)`` answers
    ``get_pci_tph``/``get_tph``; ``None`` answers ``EOPNOTSUPP``.
    """

    def __init__(
        self,
        kernel: Kernel,
        revocable_only: bool = True,
        tph: tuple[int, int, int] | None = None,
    ) -> None:
        self.kernel = kernel
        self.revocable_only = revocable_only
        self.default_tph = tph
        self.attaches = 0
        self.detaches = 0
        self.maps = 0
        self.unmaps = 0
        self.tph_queries = 0
        self.live_maps: dict[int, int] = {}  # attachment id -> mappings
        self.findings: list[str] = []
        self.buffers: list[DmaBuf] = []

    # -- the ops ------------------------------------------------------------------------
    def attach(self, dmabuf: DmaBuf, attach: Attachment) -> None:
        priv: _Priv = dmabuf.priv
        if self.revocable_only and not attach.peer2peer:
            raise kerr(EOPNOTSUPP)
        if priv.revoked:
            raise kerr(ENODEV)
        if self.revocable_only and not dma_buf_attach_revocable(attach):
            raise kerr(EOPNOTSUPP)
        self.attaches += 1

    def detach(self, dmabuf: DmaBuf, attach: Attachment) -> None:
        self.detaches += 1
        if self.live_maps.pop(attach.id, 0):
            self.findings.append(f"{attach!r} detached while still mapped")

    def map_dma_buf(self, attach: Attachment, direction: int) -> SgTable:
        attach.dmabuf.resv.assert_held()
        priv: _Priv = attach.dmabuf.priv
        if priv.revoked:
            raise kerr(ENODEV)
        self.maps += 1
        self.live_maps[attach.id] = self.live_maps.get(attach.id, 0) + 1
        return SgTable([SgEntry(priv.base, attach.dmabuf.size, priv.mem, 0)])

    def unmap_dma_buf(self, attach: Attachment, sgt: SgTable, direction: int) -> None:
        self.unmaps += 1
        self.live_maps[attach.id] = self.live_maps.get(attach.id, 0) - 1

    def release(self, dmabuf: DmaBuf) -> None:
        priv: _Priv = dmabuf.priv
        self.kernel.fabric.remove_ram(priv.base)
        priv.mem.close()
        kernel_close(self.kernel, priv.memfd)

    def get_pci_tph(self, dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
        dmabuf.resv.assert_held()
        return self._tph(dmabuf, extended)

    def get_tph(self, dmabuf: DmaBuf, st_width: int) -> tuple[int, int]:
        return self._tph(dmabuf, st_width >= 16)

    def _tph(self, dmabuf: DmaBuf, extended: bool) -> tuple[int, int]:
        self.tph_queries += 1
        priv: _Priv = dmabuf.priv
        if priv.tph is None:
            raise kerr(EOPNOTSUPP)
        xst, st, ph = priv.tph
        return (xst if extended else st), ph

    # -- driving it ---------------------------------------------------------------------
    def export(self, size: int = SIZE) -> tuple[int, DmaBuf]:
        """A new buffer of ``size`` bytes, its fd installed in the current process."""
        memfd = hide(self.kernel, os.memfd_create("mockkernel:conformance", os.MFD_CLOEXEC))
        os.ftruncate(memfd, size)
        mem = KernelMap(self.kernel, memfd, size)
        base = _RAM_BASE + self.kernel.new_id() * (1 << 32)
        self.kernel.fabric.add_ram(base, size, mem)
        priv = _Priv(memfd, mem, base, tph=self.default_tph)
        dmabuf = dma_buf_export(self.kernel, self, size, priv, "conformance", os.O_RDWR)
        self.buffers.append(dmabuf)
        return dma_buf_fd(dmabuf, os.O_CLOEXEC), dmabuf

    def revoke(self, dmabuf: DmaBuf) -> None:
        """vfio-pci's revoke: under resv invalidate; then every mapping must be gone."""
        priv: _Priv = dmabuf.priv
        with dmabuf.resv:
            priv.revoked = True
            dma_buf_invalidate_mappings(dmabuf)
        for a in list(dmabuf.attachments):
            if dma_buf_attach_revocable(a) and self.live_maps.get(a.id, 0):
                self.findings.append(f"{a!r} still mapped after its invalidate_mappings returned")

    def unrevoke(self, dmabuf: DmaBuf) -> None:
        priv: _Priv = dmabuf.priv
        with dmabuf.resv:
            priv.revoked = False

    def set_tph(self, dmabuf: DmaBuf, tph: tuple[int, int, int] | None) -> None:
        priv: _Priv = dmabuf.priv
        with dmabuf.resv:
            priv.tph = tph

    def bytes_of(self, dmabuf: DmaBuf, offset: int, n: int) -> bytes:
        priv: _Priv = dmabuf.priv
        return priv.mem.read(offset, n)


@dataclass
class ConformanceReport:
    """``results[check]`` is ``"pass"``, ``"n/a: <why>"`` or ``"FAIL: <why>"``."""

    importer: str
    results: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, str]:
        return {k: v for k, v in self.results.items() if v.startswith("FAIL")}

    def assert_ok(self) -> None:
        if self.failures:
            lines = [f"  {k}: {v}" for k, v in self.failures.items()]
            raise AssertionError(
                f"{self.importer} fails the importer conformance suite:\n" + "\n".join(lines)
            )

    def __str__(self) -> str:
        return "\n".join([self.importer, *(f"  {k}: {v}" for k, v in self.results.items())])


class _Fail(Exception):
    pass


def _expect(cond: bool, why: str) -> None:
    if not cond:
        raise _Fail(why)


@contextlib.contextmanager
def _buffer(exp: ConformanceExporter) -> Iterator[tuple[int, DmaBuf]]:
    fd, dmabuf = exp.export()
    try:
        yield fd, dmabuf
    finally:
        os.close(fd)


def _check_symmetry(k: Kernel, h: ImporterHarness) -> str:
    exp = ConformanceExporter(k, revocable_only=h.revocable)
    with _buffer(exp) as (fd, dmabuf):
        handle = h.import_fd(fd, SIZE)
        try:
            _expect(exp.attaches == 1, f"{exp.attaches} attach calls for one import")
            _expect(len(dmabuf.attachments) == 1, "the import is not attached")
            res = h.dma_write(handle, 0, b"symmetry")
            _expect(res.ok, "a DMA into a live import failed")
            _expect(exp.bytes_of(dmabuf, 0, 8) == b"symmetry", "the DMA did not land")
        finally:
            h.release(handle)
        _expect(not dmabuf.attachments, "the attachment outlived the import")
        _expect(exp.detaches == exp.attaches, f"{exp.attaches} attaches, {exp.detaches} detaches")
        _expect(exp.unmaps == exp.maps, f"{exp.maps} maps, {exp.unmaps} unmaps")
    _expect(not exp.findings, "; ".join(exp.findings))
    return "pass"


def _check_unmap_in_invalidation(k: Kernel, h: ImporterHarness) -> str:
    if not h.revocable:
        return "n/a: the importer pins (no invalidate_mappings)"
    exp = ConformanceExporter(k)
    with _buffer(exp) as (fd, dmabuf):
        handle = h.import_fd(fd, SIZE)
        try:
            h.dma_write(handle, 0, b"x")  # make sure it is mapped
            exp.revoke(dmabuf)
            _expect(not exp.findings, "; ".join(exp.findings))
            _expect(all(n == 0 for n in exp.live_maps.values()), "mappings left after revoke")
        finally:
            h.release(handle)
    return "pass"


def _check_no_dma_after_revoke(k: Kernel, h: ImporterHarness) -> str:
    if not h.revocable:
        return "n/a: a pinned import is never revoked"
    exp = ConformanceExporter(k)
    with _buffer(exp) as (fd, dmabuf):
        handle = h.import_fd(fd, SIZE)
        try:
            _expect(h.dma_write(handle, 0, b"before").ok, "a DMA before revoke failed")
            exp.revoke(dmabuf)
            res = h.dma_write(handle, 64, b"revoked!")
            _expect(not res.ok, "a DMA was accepted while the buffer was revoked")
            _expect(exp.bytes_of(dmabuf, 64, 8) == bytes(8), "bytes landed while revoked")
            _expect(not any(t.status == "ok" for t in res.tlps), "TLPs reached revoked memory")
            exp.unrevoke(dmabuf)
            res = h.dma_write(handle, 64, b"re-mapped")
            _expect(res.ok, "no DMA after un-revoke (no re-map)")
            _expect(
                exp.bytes_of(dmabuf, 64, 9) == b"re-mapped", "the DMA after re-map did not land"
            )
        finally:
            h.release(handle)
    _expect(not exp.findings, "; ".join(exp.findings))
    return "pass"


def _check_tph_requery(k: Kernel, h: ImporterHarness) -> str:
    if not h.revocable:
        return "n/a: a pinned import is never re-mapped"
    exp = ConformanceExporter(k, tph=(0x0A11, 0x11, 1))
    with _buffer(exp) as (fd, dmabuf):
        handle = h.import_fd(fd, SIZE)
        try:
            first = h.dma_write(handle, 0, b"a")
            uses_tph = any(t.th for t in first.tlps)
            queries = exp.tph_queries
            if not queries and not uses_tph:
                return "n/a: the importer does not use the exporter's TPH"
            exp.set_tph(dmabuf, (0x0B22, 0x22, 2))
            exp.revoke(dmabuf)
            exp.unrevoke(dmabuf)
            second = h.dma_write(handle, 0, b"b")
            _expect(second.ok, "no DMA after re-map")
            _expect(exp.tph_queries > queries, "the TPH was not asked for again after the re-map")
            if uses_tph:
                tags = {t.steering_tag for t in second.tlps if t.th}
                phs = {t.ph for t in second.tlps if t.th}
                _expect(
                    bool(tags) and tags <= {0x0B22, 0x22}, f"TLPs after re-map carry tags {tags}"
                )
                _expect(phs == {2}, f"TLPs after re-map carry PH {phs}")
        finally:
            h.release(handle)
    return "pass"


def _check_fallback(k: Kernel, h: ImporterHarness) -> str:
    exp = ConformanceExporter(k, revocable_only=False, tph=None)
    with _buffer(exp) as (fd, dmabuf):
        handle = h.import_fd(fd, SIZE)
        try:
            res = h.dma_write(handle, 0, b"no tph")
            _expect(res.ok, "DMA failed on an exporter without TPH")
            _expect(not any(t.th for t in res.tlps), "TPH on TLPs although the exporter has none")
        finally:
            h.release(handle)
    if not h.revocable:
        strict = ConformanceExporter(k, revocable_only=True)
        with _buffer(strict) as (fd, dmabuf):
            try:
                handle = h.import_fd(fd, SIZE)
            except OSError as e:
                _expect(e.errno == EOPNOTSUPP, f"refused with errno {e.errno}, not EOPNOTSUPP")
            else:
                h.release(handle)
                raise _Fail("a pinned import of a revocable-only buffer was accepted")
            _expect(not dmabuf.attachments, "a refused import left an attachment")
    return "pass"


def _check_leaks(k: Kernel, h: ImporterHarness) -> str:
    before_files = set(k.live_files)
    exp = ConformanceExporter(k, revocable_only=h.revocable)
    with _buffer(exp) as (fd, _dmabuf):
        handle = h.import_fd(fd, SIZE)
        h.dma_write(handle, 0, b"x")
        h.release(handle)
    dma = dma_buf_subsys(k)
    _expect(not dma.attachments, f"attachments left: {list(dma.attachments.values())}")
    left = [d for d in exp.buffers if d.id in dma.dmabufs]
    _expect(not left, f"dma-bufs left: {left}")
    _expect(set(k.live_files) <= before_files, "files left behind")
    _expect(not k.held_locks, f"locks held: {list(k.held_locks.values())}")
    _expect(not k.warnings, f"kernel warnings: {k.warnings}")
    return "pass"


_RUNNERS: Mapping[str, Callable[[Kernel, ImporterHarness], str]] = MappingProxyType(
    {
        "attach_detach_symmetry": _check_symmetry,
        "unmap_within_invalidation": _check_unmap_in_invalidation,
        "no_dma_after_revoke": _check_no_dma_after_revoke,
        "tph_requery_after_remap": _check_tph_requery,
        "eopnotsupp_fallback": _check_fallback,
        "nothing_leaked": _check_leaks,
    }
)


def run_check(kernel: Kernel, harness: ImporterHarness, check: str) -> str:
    """Run one check (installing ``kernel`` if it is not): ``"pass"``, ``"n/a: ..."`` or
    ``"FAIL: ..."``.  An unexpected exception is a failure too."""
    redir = kernel.install() if kernel.installed_process is None else contextlib.nullcontext()
    with redir:
        try:
            harness.setup(kernel)
        except Exception as e:
            return f"FAIL: the harness's setup raised {_where(e)}"
        result = "FAIL: not run"
        try:
            result = _RUNNERS[check](kernel, harness)
        except _Fail as e:
            result = f"FAIL: {e}"
        except OSError as e:
            result = f"FAIL: unexpected {type(e).__name__}: {e}"
            if e.errno == EOPNOTSUPP and harness.revocable:
                result += (
                    " -- the harness says revocable=True, but the exporter found no "
                    "invalidate_mappings (or no allow_peer2peer) on the importer's "
                    "DmaBufAttachOps: is the op misspelled?"
                )
        except Exception as e:  # a bug in the harness (or the importer) fails this check only
            result = f"FAIL: the harness raised {_where(e)}"
        finally:
            try:
                harness.teardown()
            except Exception as e:
                if not result.startswith("FAIL"):
                    result = f"FAIL: the harness's teardown raised {_where(e)}"
        return result


def _where(e: BaseException) -> str:
    """``KeyError: 'x' (at harness.py:12 in import_fd)``: the innermost frame outside the kit."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != __file__]
    at = ""
    if frames:
        f = frames[-1]
        at = f" (at {os.path.basename(f.filename)}:{f.lineno} in {f.name})"
    return f"{type(e).__name__}: {e}{at}"


def run_conformance(kernel: Kernel, harness: ImporterHarness) -> ConformanceReport:
    """Every check, in order."""
    report = ConformanceReport(harness.name)
    for check in CHECKS:
        report.results[check] = run_check(kernel, harness, check)
    return report
