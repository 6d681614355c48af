"""What an MR is made of: pinned user pages or a dma-buf attachment (``core/umem*.c``).

* :func:`ib_umem_get` -- ``ib_umem_get``: the pages of ``[addr, addr+size)`` of the
  calling task's address space (``current->mm``: uaccess's current mm).  Every page must
  be mapped and readable, and writable when the access flags ask for writes
  (``ib_access_writable``), else ``EFAULT``.  Two address spaces, two ways to pin:

  - this Python process (:data:`~mockkernel.uaccess.LOCAL`): pages of a shared mapping
    are *pinned* -- the kernel keeps a mapping of them (a ``mremap`` duplicate, hidden
    from ``/proc/self/maps``) until :meth:`IbUmem.release`, so, as on Linux, the memory
    outlives the program's ``munmap`` and ``F_SEAL_WRITE`` on a memfd behind it answers
    ``EBUSY`` while the MR lives;
  - a supervised program (:class:`~mockkernel.uaccess.RemoteMemory`): the range is
    checked against ``/proc/<pid>/maps`` (as ``pin_user_pages`` walks the VMAs; a range
    may span several) and the umem keeps the task's address space: a DMA into it
    (:meth:`IbUmem.write`) lands in the program's memory through
    ``process_vm_writev``/``/proc/<pid>/mem``.  Not modelled there: the pages do not
    outlive an ``munmap`` (a DMA into an unmapped page is dropped) nor block
    ``F_SEAL_WRITE``; after the program exits or execs nothing lands anywhere.
* :func:`ib_umem_dmabuf_get` -- ``ib_umem_dmabuf_get``: a *dynamic* attachment to a
  dma-buf (the importer's ``DmaBufAttachOps`` must have ``invalidate_mappings``); the
  driver maps with :meth:`UmemDmabuf.map_pages` under the reservation lock and unmaps
  in its ``invalidate_mappings``.
* :func:`ib_umem_dmabuf_get_pinned` -- the pinned variant (mlx5 data-direct): attach
  with ``allow_peer2peer`` only (not revocable: vfio-pci refuses it), ``dma_buf_pin``
  and map at once.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import os
from dataclasses import dataclass
from errno import EFAULT, EINVAL, ENOMEM
from typing import TYPE_CHECKING, Any

from ..dma_buf import (
    DMA_BIDIRECTIONAL,
    Attachment,
    DmaBuf,
    DmaBufAttachOps,
    SgEntry,
    SgTable,
    dma_buf_detach,
    dma_buf_dynamic_attach,
    dma_buf_get,
    dma_buf_map_attachment,
    dma_buf_pin,
    dma_buf_put,
    dma_buf_unmap_attachment,
    dma_buf_unpin,
)
from ..errors import kerr
from ..mm import PAGE_SIZE, KernelMaps, _load_libc
from ..realfd import REAL
from ..uaccess import LOCAL, UserMemory, current_mm
from ..uapi.rdma.ib_user_ioctl_verbs import (
    IB_UVERBS_ACCESS_LOCAL_WRITE,
    IB_UVERBS_ACCESS_MW_BIND,
    IB_UVERBS_ACCESS_REMOTE_ATOMIC,
    IB_UVERBS_ACCESS_REMOTE_WRITE,
)

if TYPE_CHECKING:
    from ..dma_buf import Device
    from ..process import TaskContext
    from .device import IbDevice

__all__ = [
    "DmaSegment",
    "IbUmem",
    "UmemDmabuf",
    "ib_access_writable",
    "ib_umem_dmabuf_get",
    "ib_umem_dmabuf_get_pinned",
    "ib_umem_get",
]

_U64 = (1 << 64) - 1
_MREMAP_MAYMOVE = 1
_PROT_READ, _PROT_WRITE, _MAP_SHARED = 1, 2, 1
_MAP_FAILED = ctypes.c_void_p(-1).value


def ib_access_writable(access: int) -> bool:
    """``ib_access_writable``: the device may write the memory."""
    return bool(
        access
        & (
            IB_UVERBS_ACCESS_LOCAL_WRITE
            | IB_UVERBS_ACCESS_REMOTE_WRITE
            | IB_UVERBS_ACCESS_REMOTE_ATOMIC
            | IB_UVERBS_ACCESS_MW_BIND
        )
    )


def _page_down(a: int) -> int:
    return a & ~(PAGE_SIZE - 1)


def _page_up(a: int) -> int:
    return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _vmas(mm: UserMemory = LOCAL) -> list[tuple[int, int, str, str]]:
    """``(start, end, perms, what)`` of every mapping of the address space ``mm``, in
    address order; ``what`` is the rest of the line (offset aside): device, inode and
    path.  ``EFAULT`` when the process is gone."""
    out = []
    path = "/proc/self/maps" if mm is LOCAL else f"/proc/{mm.pid}/maps"
    try:
        with REAL.builtin_open(path, "rb") as f:
            text = f.read()
    except OSError:
        raise kerr(EFAULT) from None
    for line in text.decode("utf-8", "replace").splitlines():
        fields = line.split(None, 3)
        if len(fields) < 4 or "-" not in fields[0]:
            continue
        lo, hi = fields[0].split("-")
        rest = fields[3].split(None, 1)  # dev, "inode path"
        out.append((int(lo, 16), int(hi, 16), fields[1], rest[1] if len(rest) > 1 else ""))
    return out


def _mremap() -> Any:
    libc = _load_libc()
    fn = libc.mremap
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
    return fn


class IbUmem:
    """Pinned user memory (``struct ib_umem``).

    ``mm`` is the address space the pages belong to (``umem->owning_mm``): this Python
    process (:data:`~mockkernel.uaccess.LOCAL`) or a supervised program's.  ``pins``
    are the kernel's own mappings of shared pages: ``(user_start, pin_addr, size)``.
    :meth:`write` is where a DMA into the memory lands, :meth:`read` where one from it
    is taken.
    """

    def __init__(
        self,
        address: int,
        length: int,
        writable: bool,
        mm: UserMemory = LOCAL,
        kmaps: KernelMaps | None = None,
    ) -> None:
        self.address = address
        self.length = length
        self.writable = writable
        self.mm = mm
        #: the pinning kernel's own mappings, where each pin is recorded (``LOCAL`` only)
        self.kmaps = kmaps
        self.pins: list[tuple[int, int, int]] = []
        self.released = False

    def __repr__(self) -> str:
        return f"<IbUmem {self.address:#x}+{self.length:#x} pins={len(self.pins)} mm={self.mm}>"

    def _pin(self, start: int, size: int) -> None:
        got = _mremap()(start, 0, size, _MREMAP_MAYMOVE)
        if got in (None, _MAP_FAILED):
            raise kerr(ctypes.get_errno() or ENOMEM)
        self.pins.append((start, int(got), size))
        if self.kmaps is not None:
            self.kmaps.add(int(got), int(got) + size)

    def _pin_task(self, start: int, size: int, vma: int, vma_end: int) -> None:
        """Pin ``[start, start+size)`` of a shared mapping ``[vma, vma_end)`` of a
        supervised program: the same pages mapped into the kernel's process through
        ``/proc/<pid>/map_files`` (a shared writable mapping, as ``_pin``'s, so the memfd
        cannot take ``F_SEAL_WRITE`` while pinned -- ``memfd_wait_for_pins``' ``EBUSY``
        -- and a DMA lands in the pages after the program unmaps them).  Nothing is
        pinned where the host does not let the kernel open ``map_files`` (it needs
        ``CAP_CHECKPOINT_RESTORE``): the program's own mapping is then used."""
        pid = self.mm.pid
        path = f"/proc/{pid}/map_files/{vma:x}-{vma_end:x}"
        offset = _vma_offset(pid, vma)
        try:
            fd = REAL.open(path, os.O_RDWR | os.O_CLOEXEC)
            prot = _PROT_READ | _PROT_WRITE
        except OSError:
            try:
                fd = REAL.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return
            prot = _PROT_READ
        try:
            got = _load_libc().mmap(None, size, prot, _MAP_SHARED, fd, offset + start - vma)
        finally:
            REAL.close(fd)
        if got in (None, _MAP_FAILED):
            return
        self.pins.append((start, int(got), size))
        if self.kmaps is not None:
            self.kmaps.add(int(got), int(got) + size)

    def _pieces(self, offset: int, n: int) -> list[tuple[int, int, int | None]]:
        """``[offset, offset+n)`` of the memory as ``(user_address, length, pin_address)``
        pieces; ``pin_address`` is ``None`` where no pin covers it (the user mapping)."""
        out: list[tuple[int, int, int | None]] = []
        addr, end = self.address + offset, self.address + offset + n
        while addr < end:
            for start, pin, size in self.pins:
                if start <= addr < start + size:
                    take = min(end - addr, start + size - addr)
                    out.append((addr, take, pin + (addr - start)))
                    break
            else:
                nxt = min((p[0] for p in self.pins if p[0] > addr), default=end)
                take = min(end, nxt) - addr
                out.append((addr, take, None))
            addr += take
        return out

    def write(self, offset: int, data: bytes) -> None:
        """Land ``data`` at byte ``offset`` of the memory: the pinned pages if shared,
        else the owning address space's pages (dropped where that page is gone: the
        program unmapped it, exited or exec'd)."""
        if self.released or self.mm.exited:
            return
        view = memoryview(data)
        pos = 0
        for addr, n, pin in self._pieces(offset, len(data)):
            if pin is not None:
                ctypes.memmove(pin, bytes(view[pos : pos + n]), n)
            else:
                with contextlib.suppress(OSError):
                    self.mm.write(addr, view[pos : pos + n])
            pos += n

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at byte ``offset`` of the memory (an RDMA READ's source);
        ``EFAULT`` where a page is gone."""
        if self.released or self.mm.exited:
            raise kerr(EFAULT)
        out = bytearray()
        for addr, take, pin in self._pieces(offset, n):
            if pin is not None:
                out += ctypes.string_at(pin, take)
            else:
                out += self.mm.read(addr, take)
        return bytes(out)

    def release(self) -> None:
        """``ib_umem_release``: unpin."""
        if self.released:
            return
        self.released = True
        munmap = _load_libc().munmap
        for _start, pin, size in self.pins:
            if self.kmaps is not None:
                self.kmaps.remove(pin)
            munmap(pin, size)
        self.pins.clear()


def ib_umem_get(device: IbDevice, addr: int, size: int, access: int) -> IbUmem:
    """Pin ``[addr, addr+size)`` of the calling task's address space for ``device``
    (``ib_umem_get``).

    ``EINVAL`` if the range overflows or has no page; ``EFAULT`` if a page is not mapped, not
    readable, or not writable while ``access`` asks for writes (``pin_user_pages_fast``
    with ``FOLL_LONGTERM``: ``check_vma_flags``), or lies in a mock mapping of the
    calling process (a dma-buf or BAR mapping: ``VM_PFNMAP | VM_IO``, never pinnable;
    ``device`` names the kernel whose ``current`` that is -- Linux's ``ib_device``).  A
    range may span neighbouring VMAs, as on Linux (real Linux 7.2: anonymous into
    shared anonymous or memfd registers; into a read-only VMA with a write access, a
    ``PROT_NONE`` one, a hole or a udmabuf mapping is ``EFAULT``).  In this Python
    process (``LOCAL``) also ``EFAULT`` for a page of the kernel (a ``KernelMap``, a
    pin): the mock kernel's own memory shares that address space.
    """
    if addr + size > _U64 or _page_up(addr + size) > _U64 or addr < 0 or size < 0:
        raise kerr(EINVAL)
    writable = ib_access_writable(access)
    lo, hi = _page_down(addr), _page_up(addr + size)
    if lo == hi:  # ib_umem_num_pages() == 0
        raise kerr(EINVAL)
    for mp in list(device.kernel.current.mappings.values()):
        if mp.start < hi and lo < mp.end:
            raise kerr(EFAULT)  # VM_PFNMAP | VM_IO: check_vma_flags
    mm = current_mm()
    if mm is not LOCAL:
        return _umem_get_task(mm, addr, size, writable, device)
    kernel_maps = device.kernel.subsys(KernelMaps)
    umem = IbUmem(addr, size, writable, LOCAL, kernel_maps)
    shared: list[tuple[int, int]] = []
    cur = lo
    vmas = _vmas()
    starts = [v[0] for v in vmas]
    # the kernel's own mappings (BARs, buffer pages, pins) share the address space
    # of this process but are not the program's memory
    kmaps = kernel_maps.ranges()
    while cur < hi:
        i = bisect.bisect_right(starts, cur) - 1
        if i < 0 or not vmas[i][0] <= cur < vmas[i][1]:
            raise kerr(EFAULT)
        start, end, perms, _what = vmas[i]
        if perms[0] != "r" or (writable and perms[1] != "w"):
            raise kerr(EFAULT)
        top = min(end, hi)
        for k_lo, k_hi in kmaps:
            if k_lo < top and cur < k_hi:
                raise kerr(EFAULT)
        if perms[3] == "s":
            shared.append((cur, top - cur))
        cur = top
    try:
        for start, n in shared:
            umem._pin(start, n)
    except BaseException:
        umem.release()
        raise
    return umem


def _umem_get_task(
    mm: UserMemory, addr: int, size: int, writable: bool, device: IbDevice
) -> IbUmem:
    """``ib_umem_get`` for a supervised program: ``pin_user_pages`` walks its VMAs
    (``/proc/<pid>/maps``); each page must be mapped, readable, and writable when the
    device may write (``check_vma_flags``: no ``FOLL_FORCE``), a range may span VMAs."""
    if mm.exited:
        raise kerr(EFAULT)
    vmas = _vmas(mm)
    starts = [v[0] for v in vmas]
    cur, hi = _page_down(addr), _page_up(addr + size)
    shared: list[tuple[int, int, int, int]] = []
    while cur < hi:
        i = bisect.bisect_right(starts, cur) - 1
        if i < 0 or not vmas[i][0] <= cur < vmas[i][1]:
            raise kerr(EFAULT)
        start, end, perms, _what = vmas[i]
        if perms[0] != "r" or (writable and perms[1] != "w"):
            raise kerr(EFAULT)
        if perms[3] == "s":
            shared.append((cur, min(end, hi) - cur, start, end))
        cur = end
    # a shared page is pinned by mapping its file here: a kernel mapping of this
    # process, recorded in the kernel's KernelMaps (private memory needs none)
    kmaps = device.kernel.subsys(KernelMaps) if shared else None
    umem = IbUmem(addr, size, writable, mm, kmaps)
    for start, n, vma, vma_end in shared:
        umem._pin_task(start, n, vma, vma_end)
    return umem


def _vma_offset(pid: int, vma: int) -> int:
    """The file offset of the mapping that starts at ``vma`` in ``/proc/<pid>/maps``."""
    with contextlib.suppress(OSError), REAL.builtin_open(f"/proc/{pid}/maps", "rb") as f:
        for line in f:
            fields = line.split(None, 3)
            if int(fields[0].split(b"-")[0], 16) == vma:
                return int(fields[2], 16)
    return 0


@dataclass(frozen=True, init=False)
class DmaSegment:
    """A piece of a DMA: the bus address, and the memory the bytes land in."""

    dma_address: int
    length: int
    entry: SgEntry
    entry_offset: int  # offset inside ``entry``

    def __init__(self, dma_address: int, length: int, entry: SgEntry, entry_offset: int) -> None:
        # (the frozen dataclass's __init__ without an object.__setattr__ per field: a
        # device model translates on every DMA)
        d = self.__dict__
        d["dma_address"] = dma_address
        d["length"] = length
        d["entry"] = entry
        d["entry_offset"] = entry_offset


class UmemDmabuf:
    """A dma-buf as MR memory (``struct ib_umem_dmabuf``).

    ``address``/``length``: the byte range of the buffer the MR covers.  ``sgt`` is
    the current mapping (``None`` when unmapped: after an invalidation, until the next
    :meth:`map_pages`); ``revoked`` is final (set at release).  ``private`` is the
    driver's (its MR).
    """

    def __init__(
        self,
        dmabuf: DmaBuf,
        address: int,
        length: int,
        writable: bool,
    ) -> None:
        self.dmabuf = dmabuf
        self.address = address
        self.length = length
        self.writable = writable
        self.attach: Attachment
        self.sgt: SgTable | None = None
        self.pinned = False
        self.revoked = False
        self.private: Any = None
        self.map_count = 0  # how many times it was mapped (re-maps included)
        self._starts: list[int] = []
        self._entries: list[SgEntry] = []

    def __repr__(self) -> str:
        state = "revoked" if self.revoked else ("mapped" if self.sgt is not None else "unmapped")
        return f"<UmemDmabuf dmabuf=#{self.dmabuf.id} {self.address:#x}+{self.length:#x} {state}>"

    @property
    def kernel(self) -> TaskContext:
        return self.dmabuf.kernel

    def map_pages(self) -> None:
        """``ib_umem_dmabuf_map_pages`` (resv held): map if unmapped, wait for the kernel's
        fences.  ``EINVAL`` once revoked; the exporter's errors (``ENODEV``) pass through."""
        resv = self.dmabuf.resv
        resv.assert_held()
        if self.revoked:
            raise kerr(EINVAL)
        if self.sgt is None:
            sgt = dma_buf_map_attachment(self.attach, DMA_BIDIRECTIONAL)
            starts, entries = [], []
            pos = 0
            for e in sgt.entries:
                starts.append(pos)
                entries.append(e)
                pos += e.length
            self._starts, self._entries = starts, entries
            self.sgt = sgt
            self.map_count += 1
        resv.wait(0)  # DMA_RESV_USAGE_KERNEL

    def unmap_pages(self) -> None:
        """``ib_umem_dmabuf_unmap_pages`` (resv held)."""
        self.dmabuf.resv.assert_held()
        sgt = self.sgt
        if sgt is None:
            return
        self.sgt = None
        self._starts, self._entries = [], []
        dma_buf_unmap_attachment(self.attach, sgt, DMA_BIDIRECTIONAL)

    def translate(self, offset: int, n: int) -> list[DmaSegment]:
        """The bus addresses of bytes ``[offset, offset+n)`` of the MR (mapped only)."""
        if self.sgt is None:
            raise kerr(EFAULT)
        pos = self.address + offset
        end = pos + n
        starts, entries = self._starts, self._entries
        i = bisect.bisect_right(starts, pos) - 1
        if n > 0 and 0 <= i < len(entries):  # (most DMAs: inside one entry)
            e = entries[i]
            off = pos - starts[i]
            if off + n <= e.length:
                return [DmaSegment(e.dma_address + off, n, e, off)]
        out = []
        while pos < end and 0 <= i < len(entries):
            e = entries[i]
            off = pos - starts[i]
            take = min(end - pos, e.length - off)
            if take <= 0:
                break
            out.append(DmaSegment(e.dma_address + off, take, e, off))
            pos += take
            i += 1
        if pos < end:
            raise kerr(EFAULT)
        return out

    def release(self) -> None:
        """``ib_umem_dmabuf_release``: revoke (unmap, unpin), detach, put."""
        dmabuf = self.dmabuf
        with dmabuf.resv:
            if not self.revoked:
                self.unmap_pages()
                if self.pinned:
                    dma_buf_unpin(self.attach)
                    self.pinned = False
                self.revoked = True
        dma_buf_detach(dmabuf, self.attach)
        dma_buf_put(dmabuf)


def ib_umem_dmabuf_get(
    ibdev: IbDevice,
    offset: int,
    size: int,
    fd: int,
    access: int,
    ops: DmaBufAttachOps,
    dma_device: Device | None = None,
) -> UmemDmabuf:
    """``ib_umem_dmabuf_get``: attach ``dma_device`` (default ``ibdev.dma_device``) to the
    dma-buf ``fd`` of the calling process.

    In order: ``offset + size`` overflows → ``EINVAL``; ``dma_buf_get`` → ``EBADF`` /
    ``EINVAL``; the range past the buffer's end → ``EINVAL``; no pages → ``EINVAL``;
    then ``dma_buf_dynamic_attach``'s error (vfio-pci: ``ENODEV`` revoked,
    ``EOPNOTSUPP`` not revocable).  Nothing is mapped yet.
    """
    end = offset + size
    if end > _U64 or offset < 0 or size < 0:
        raise kerr(EINVAL)
    dev = dma_device if dma_device is not None else ibdev.dma_device
    if dev is None:
        raise ValueError(f"{ibdev.name} has no dma_device to attach with")
    dmabuf = dma_buf_get(_fd_in_range(fd), ibdev.kernel.current)
    try:
        if dmabuf.size < end:
            raise kerr(EINVAL)
        if _page_up(end) - _page_down(offset) == 0:
            raise kerr(EINVAL)
        umem = UmemDmabuf(dmabuf, offset, size, ib_access_writable(access))
        umem.attach = dma_buf_dynamic_attach(dmabuf, dev, ops, umem)
    except BaseException:
        dma_buf_put(dmabuf)
        raise
    return umem


def ib_umem_dmabuf_get_pinned(
    ibdev: IbDevice,
    offset: int,
    size: int,
    fd: int,
    access: int,
    dma_device: Device | None = None,
) -> UmemDmabuf:
    """``ib_umem_dmabuf_get_pinned_with_dma_device``: attach (p2p, not revocable), pin, map."""
    umem = ib_umem_dmabuf_get(ibdev, offset, size, fd, access, _pinned_ops, dma_device)
    dmabuf = umem.dmabuf
    try:
        with dmabuf.resv:
            dma_buf_pin(umem.attach)
            umem.pinned = True
            try:
                umem.map_pages()
            except BaseException:
                dma_buf_unpin(umem.attach)
                umem.pinned = False
                raise
    except BaseException:
        umem.revoked = True
        dma_buf_detach(dmabuf, umem.attach)
        dma_buf_put(dmabuf)
        raise
    return umem


class _PinnedAttachOps(DmaBufAttachOps):
    """``ib_umem_dmabuf_attach_pinned_ops`` after the revoke series: p2p, no invalidation."""

    allow_peer2peer = True


_pinned_ops = _PinnedAttachOps()


def _fd_in_range(fd: int) -> int:
    """A u32 fd attribute as the ``int`` the kernel passes on (``-1`` for 0xffffffff)."""
    fd &= 0xFFFFFFFF
    return fd - (1 << 32) if fd & 0x8000_0000 else fd
