"""Pinned pages: ``memfd_pin_folios``/``unpin_folios`` (``mm/gup.c``), and a punch.

A driver that pins the pages of a memfd (udmabuf) keeps *those pages* for as long as
it holds the pin, whatever later happens to the memfd.  On Linux, punching a hole in
the memfd -- ``fallocate(FALLOC_FL_PUNCH_HOLE)``, or ``madvise(MADV_REMOVE)`` of a
shared mapping of it -- takes the pages out of the memfd's page cache, but a pinned
page lives on with its data, in the driver's hands only: from then on the driver and
the memfd are no longer coherent in that range (a write to the memfd lands in a new
page the driver does not see, and the driver's writes no longer reach the memfd).
The memfd's size and every page outside the range stay shared.

The mock has no pages of its own: what a driver pins is a range of a *real* memfd,
which it maps -- its kernel view (:attr:`PinnedFolios.view`, a :class:`~.mm.KernelMap`
at a fixed address: sg tables and the PCI fabric read and write through it) and the
pieces it lays in every userspace mapping (:meth:`PinnedFolios.segments`).  A real
punch would empty all of those.  So a front-end that sees a punch coming calls
:meth:`PinnedPages.punch_hole` *before* letting the real call run: every whole pinned
page in the range is copied into kernel-private backing (a memfd of the kernel's
own, one per punch, shared by every pin of those pages so that two buffers pinning
one page still share it), the pin's view is switched to the copy in place, and the
pin's owner is told (``on_move``) so it lays its userspace mappings over the copy
(``Mapping.remap``).  The real punch then takes the memfd's pages only.  A page only
partly in the range is zeroed in place by Linux (the pinned page is still the
memfd's): it is not copied, and the real punch zeroes that part for both.

Who calls :meth:`PinnedPages.punch_hole`: the supervisor, which traps ``fallocate``
and ``madvise(MADV_REMOVE)`` (``supervisor/punch.py``), and the in-process front-end
for ``mmap.madvise(MADV_REMOVE)`` of a real shared map of a shmem file
(``userspace/mmap.py``: ``ShmemMmap``).  Python has no ``fallocate`` with a mode
(``os.posix_fallocate`` is mode 0, which punches nothing), so in-process only a call
through ``ctypes`` punches unseen: the driver's view empties too (``docs/fidelity.md``).

State lives in the kernel's :class:`PinnedPages` subsystem: the pins by memfd
``(st_dev, st_ino)``, and the copies, each closed with its last pin.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from errno import EINVAL

from .context import KernelContext, Subsystem
from .errors import KernelBug, kerr
from .mm import PAGE_SIZE, KernelMap
from .realfd import hide, kernel_close
from .trace import TracePoint

__all__ = [
    "MemfdKey",
    "PinnedFolios",
    "PinnedPages",
    "memfd_pin_folios",
    "unpin_folios",
]

trace_mm_punch_pinned = TracePoint(
    "mm.punch_pinned", "dev", "ino", "offset", "length", "moved", "pins"
)

#: one memfd, whatever fd names it: ``(st_dev, st_ino)``
MemfdKey = tuple[int, int]
_F_GET_SEALS = 1034
_F_SEAL_WRITE, _F_SEAL_FUTURE_WRITE = 0x0008, 0x0010
_COPY_CHUNK = 1 << 20


class _Copy:
    """Kernel-private backing of pages a punch took from a memfd while they were pinned:
    a memfd of the kernel's own, closed when the last extent using it goes."""

    __slots__ = ("fd", "kernel", "refs")

    def __init__(self, kernel: KernelContext, size: int) -> None:
        self.kernel = kernel
        fd = os.memfd_create("mockkernel:pinned", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self.fd = hide(kernel, fd)
        self.refs = 0

    def put(self) -> None:
        self.refs -= 1
        if self.refs == 0:
            kernel_close(self.kernel, self.fd)
            self.fd = -1


@dataclass
class _Extent:
    """A run of a pin's pages and where their data lives now."""

    start: int  # offset in the pin (page-aligned)
    size: int
    fd: int  # the memfd (the pinner's fd) or a copy's
    offset: int  # offset in ``fd``
    copy: _Copy | None = None  # None: still the memfd's pages


class PinnedFolios:
    """The pages ``memfd_pin_folios`` pinned: ``size`` bytes of a memfd from ``offset``.

    ``view`` is the kernel's mapping of them (its address never changes, even when a
    punch moves the pages); :meth:`segments` says what backs any part of them now, as
    ``Vma.remap`` pieces.  ``on_move`` (if any) runs after a punch moved some of them,
    outside every lock: the owner re-lays its userspace mappings there.
    """

    def __init__(
        self,
        pins: PinnedPages,
        key: MemfdKey,
        fd: int,
        offset: int,
        size: int,
        on_move: Callable[[], None] | None,
    ) -> None:
        self.pins = pins
        self.key = key
        self.offset = offset
        self.size = size
        self.on_move = on_move
        #: the pinner's own fd of the memfd (open until the pin goes)
        self.fd = fd
        self.view = KernelMap(pins.kernel, fd, size, offset)
        self._extents = [_Extent(0, size, fd, offset)]
        self.pinned = True

    def __repr__(self) -> str:
        return f"<PinnedFolios {self.key} [{self.offset:#x}, +{self.size:#x})>"

    def segments(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """``(fd, offset, length)`` of what backs bytes ``[start, end)`` of the pin now,
        in order: what a driver's ``mmap`` op gives ``Vma.remap``."""
        out = []
        # no lock: a punch replaces the list (``_move``) and never changes one, so this
        # reads what backs the pin just before or just after any punch, as under the lock
        for e in self._extents:
            e_start = e.start
            e_end = e_start + e.size
            lo = start if start > e_start else e_start
            hi = end if end < e_end else e_end
            if lo < hi:
                out.append((e.fd, e.offset + (lo - e_start), hi - lo))
        return out

    def moved(self) -> int:
        """How many of the pinned bytes live in kernel-private copies (0: none punched)."""
        with self.pins.lock:
            return sum(e.size for e in self._extents if e.copy is not None)

    def _on_memfd(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The memfd offsets ``[a, b)`` within ``[lo, hi)`` whose pages are still the
        memfd's (not yet moved)."""
        out = []
        for e in self._extents:
            if e.copy is None:
                a, b = max(lo, self.offset + e.start), min(hi, self.offset + e.start + e.size)
                if a < b:
                    out.append((a, b))
        return out

    def _move(self, lo: int, hi: int, copy: _Copy, base: int) -> None:
        """Switch the pages at memfd offsets ``[lo, hi)`` that are still the memfd's to
        ``copy`` (memfd offset ``x`` is at ``x - base`` in it), the view in place."""
        out: list[_Extent] = []
        for e in self._extents:
            a = max(lo - self.offset, e.start)
            b = min(hi - self.offset, e.start + e.size)
            if e.copy is not None or a >= b:
                out.append(e)
                continue
            if e.start < a:
                out.append(_Extent(e.start, a - e.start, e.fd, e.offset))
            moved = _Extent(a, b - a, copy.fd, self.offset + a - base, copy)
            copy.refs += 1
            self.view.remap(a, b - a, copy.fd, moved.offset)
            out.append(moved)
            end = e.start + e.size
            if b < end:
                out.append(_Extent(b, end - b, e.fd, e.offset + (b - e.start)))
        self._extents = out

    def _release(self) -> None:
        self.view.close()
        for e in self._extents:
            if e.copy is not None:
                e.copy.put()
        self._extents = []
        self.pinned = False


class PinnedPages(Subsystem):
    """The kernel's pins of memfd pages, by memfd, and the copies punches made of them."""

    name = "pinned pages"

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        #: guards the pins and their extents (held briefly; never while an owner runs)
        self.lock = threading.Lock()
        #: one punch at a time, its owners' ``on_move`` included (see :meth:`punch_hole`)
        self.punching = threading.Lock()
        #: memfd -> its pins, in pinning order (a dict as an ordered set: unpinning one of
        #: thousands of buffers made from one memfd is O(1), not a list search)
        self._pins: dict[MemfdKey, dict[PinnedFolios, None]] = {}

    def pinned(self, key: MemfdKey) -> bool:
        """Does any pin hold pages of memfd ``key``?  (A front-end's cheap first test.)"""
        return key in self._pins

    def sealed_for_write(self, key: MemfdKey) -> bool:
        """Does memfd ``key`` carry ``F_SEAL_WRITE``/``F_SEAL_FUTURE_WRITE`` (so a punch
        of it fails, ``shmem_fallocate``'s ``EPERM``)?  False when nothing pins it."""
        with self.lock:
            pin = next(iter(self._pins.get(key, ())), None)
            if pin is None:
                return False
            try:
                seals = fcntl.fcntl(pin.fd, _F_GET_SEALS)
            except OSError:
                return False
        return bool(seals & (_F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE))

    def has_pins(self) -> bool:
        """Does any pin hold pages at all?  (Lock-free: a front-end's quick test.)"""
        return bool(self._pins)

    def add(self, pin: PinnedFolios) -> None:
        with self.lock:
            self._pins.setdefault(pin.key, {})[pin] = None

    def remove(self, pin: PinnedFolios) -> None:
        with self.lock:
            pins = self._pins.get(pin.key)
            if pins is not None and pins.pop(pin, 0) is None and not pins:
                del self._pins[pin.key]
            if pin.pinned:
                pin._release()

    def punch_hole(self, key: MemfdKey, offset: int, length: int) -> int:
        """A hole is about to be punched in memfd ``key`` at ``[offset, offset + length)``:
        move every pinned page wholly inside it to kernel-private backing first.

        The pinned pages are copied (once, however many pins hold them), each pin's view
        is switched to the copy, then each owner's ``on_move`` runs (outside the lock).
        Returns the bytes moved (0: nothing pinned there, or only partial pages).  Call
        it only for a punch that will succeed: the memfd and its pins part for good.

        Punches are serialised, each with its owners' callbacks: it returns only once
        every mapping follows the copy, and a punch of the same pages meanwhile waits,
        then finds nothing left to move.  (The supervisor relies on that: laying a
        mapping again injects into the calling thread, whose trapped call then restarts
        -- the restarted call must not let the real punch run before every mapping,
        in every process, was laid again.)
        """
        lo = -(-max(offset, 0) // PAGE_SIZE) * PAGE_SIZE
        hi = (offset + length) // PAGE_SIZE * PAGE_SIZE
        if lo >= hi:
            return 0
        with self.punching:
            return self._punch(key, offset, length, lo, hi)

    def _punch(self, key: MemfdKey, offset: int, length: int, lo: int, hi: int) -> int:
        owners: dict[Callable[[], None], None] = {}
        with self.lock:
            pins = list(self._pins.get(key, ()))
            want = sorted(r for p in pins for r in p._on_memfd(lo, hi))
            if not want:
                return 0
            runs: list[list[int]] = []  # the union of the ranges to copy
            for a, b in want:
                if runs and a <= runs[-1][1]:
                    runs[-1][1] = max(runs[-1][1], b)
                else:
                    runs.append([a, b])
            base, top = runs[0][0], runs[-1][1]
            copy = _Copy(self.kernel, top - base)
            try:
                src = next(p for p in pins if p._on_memfd(lo, hi))._extents
                memfd = next(e.fd for e in src if e.copy is None)
                for a, b in runs:
                    _copy_range(memfd, copy.fd, a, b - a, a - base)
                for p in pins:
                    if p._on_memfd(lo, hi):
                        p._move(lo, hi, copy, base)
                        if p.on_move is not None:
                            owners[p.on_move] = None
            finally:
                if copy.refs == 0:
                    copy.refs = 1
                    copy.put()
            moved = sum(b - a for a, b in runs)
        trace_mm_punch_pinned(self.kernel.tracer, key[0], key[1], offset, length, moved, len(pins))
        for on_move in owners:
            try:
                on_move()
            except Exception as e:  # the punch goes ahead: the owner's mappings lag
                self.kernel.warn(f"pinned pages: {on_move!r} failed after a punch: {e!r}")
        return moved

    def live(self) -> list[PinnedFolios]:
        """Every pin still held."""
        with self.lock:
            return [pin for v in self._pins.values() for pin in v]

    def leaks(self) -> list[str]:
        """Nothing of its own: a pin belongs to its owner (a buffer), whose leak the
        owner's subsystem reports (``dma-buf still alive``); one line per pinned slice
        would only repeat it.  A pin left after every file was released is a driver
        that never unpinned: :meth:`shutdown` reports that."""
        return []

    def shutdown(self) -> None:
        """Let go of what is still pinned; ``KernelBug`` (in the leak report) if anything
        was: by now every file was released, so its owner never unpinned it."""
        pins = self.live()
        with self.lock:
            self._pins.clear()
        for pin in pins:
            pin._release()
        if pins:
            raise KernelBug(f"{len(pins)} pin(s) never unpinned: {pins[:3]!r}")


def _copy_range(src: int, dst: int, offset: int, length: int, to: int) -> None:
    """Copy ``length`` bytes of real fd ``src`` at ``offset`` into ``dst`` at ``to``."""
    done = 0
    while done < length:
        chunk = os.pread(src, min(_COPY_CHUNK, length - done), offset + done)
        if not chunk:
            break  # past the end of the memfd (it cannot shrink: F_SEAL_SHRINK)
        os.pwrite(dst, chunk, to + done)
        done += len(chunk)


def memfd_pin_folios(
    kernel: KernelContext,
    fd: int,
    offset: int,
    size: int,
    on_move: Callable[[], None] | None = None,
) -> PinnedFolios:
    """Pin ``size`` bytes of the memfd at real fd ``fd`` from ``offset`` (page-aligned).

    ``fd`` is the caller's own (kernel-held) fd of the memfd; it must stay open until
    :func:`unpin_folios`.  ``on_move`` runs after a punch moved some of the pages to
    kernel-private backing (see the module's docstring).  The checks on the memfd
    (seals, range) are the caller's.
    """
    if offset < 0 or offset % PAGE_SIZE or size <= 0 or size % PAGE_SIZE:
        raise kerr(EINVAL)
    st = os.fstat(fd)
    pins = kernel.subsys(PinnedPages)
    pin = PinnedFolios(pins, (st.st_dev, st.st_ino), fd, offset, size, on_move)
    pins.add(pin)
    return pin


def unpin_folios(pin: PinnedFolios) -> None:
    """Let go of ``pin``'s pages (its view, and its share of any copy).  Idempotent."""
    pin.pins.remove(pin)
