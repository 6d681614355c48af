"""``mmap(2)`` of a mock file (``mm/mmap.c``: ``do_mmap``'s checks, then the driver's
``->mmap``); ``munmap`` is the returned map's close (or its collection).

The rules are written once, in :func:`do_mmap`; where the pieces are laid is the
front-end's business: this Python process (:func:`sys_mmap`, a real ``mmap.mmap``) or a
supervised one (``mockkernel/supervisor/mmap.py``, by syscall injection).
"""

from __future__ import annotations

import os
from errno import EACCES, EBADF, EFAULT, EINVAL, EMFILE, ENODEV, ENOMEM, EOPNOTSUPP, EPERM
from os import O_CLOEXEC
from typing import TYPE_CHECKING

from ..errors import NotMine, kerr
from ..fs import FMODE_READ, FMODE_WRITE, File
from ..mm import PAGE_SIZE, MappedFile, Mapping, Vma, build_mapping, page_align
from ..realfd import REAL
from ..trace import TracePoint
from .attr import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, vfs_fallocate
from .fd import dupfd, sys_dup3

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "LEGACY_MAP_MASK",
    "ProcessMm",
    "add_mapping",
    "do_mmap",
    "find_mapping",
    "keep_mapped_fd",
    "map_vma",
    "mmap_backed",
    "remove_mapping",
    "sys_madvise",
    "sys_mmap",
    "sys_mprotect",
    "sys_msync",
]

trace_mm_mmap = TracePoint("mm.mmap", "pid", "fd", "file", "length")
trace_mm_munmap = TracePoint("mm.munmap", "pid", "file", "length")

PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
#: include/linux/mman.h (x86-64): the flags ``MAP_SHARED_VALIDATE`` accepts on any file
#: (SHARED, PRIVATE, FIXED, ANONYMOUS, 32BIT, ABOVE4G, GROWSDOWN, DENYWRITE, EXECUTABLE,
#: LOCKED, NORESERVE, POPULATE, NONBLOCK, STACK, HUGETLB, UNINITIALIZED, and the
#: MAP_HUGE_2MB/1GB size encodings); ``MAP_SYNC`` needs the file's
#: ``mmap_supported_flags`` (DAX files only: no mock file)
LEGACY_MAP_MASK = (
    0x01 | 0x02 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000
) | (0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x4000000 | (21 << 26) | (30 << 26))

# madvise advice (asm-generic/mman-common.h)
MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 2, 3, 4
MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK = 8, 9, 10, 11
MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 12, 13, 14, 15
MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK = 16, 17, 18, 19
MADV_HWPOISON, MADV_SOFT_OFFLINE = 100, 101
#: what each advice answers on a mock mapping.  Every mapping a mock driver makes is
#: device memory (``VM_IO | VM_PFNMAP | VM_DONTEXPAND``, shared, file-backed): a
#: udmabuf's pages inserted by pfn, a BAR, a doorbell page.  0: accepted (nothing to do
#: for memory the page allocator does not own); None: refused with ``EINVAL``:
#: DONTNEED/FREE (``madvise_dontneed_free_valid_vma``: VM_PFNMAP), COLD/PAGEOUT
#: (``can_madv_lru_vma``), DODUMP/GUARD_* (VM_SPECIAL), DOFORK (VM_IO), WIPEONFORK (a
#: file mapping), POPULATE_*/COLLAPSE (no struct pages), and every unknown number.
_MADV_OK = frozenset(
    (
        MADV_NORMAL,
        MADV_RANDOM,
        MADV_SEQUENTIAL,
        MADV_WILLNEED,
        MADV_DONTFORK,
        MADV_MERGEABLE,
        MADV_UNMERGEABLE,
        MADV_HUGEPAGE,
        MADV_NOHUGEPAGE,
        MADV_DONTDUMP,
        MADV_KEEPONFORK,
    )
)
#: advice whose effect is on the real mapping (what a fork or a core dump sees): the
#: front-end also applies it there once the kernel has accepted it
MADV_REAL_EFFECT = frozenset((MADV_DONTFORK, MADV_KEEPONFORK, MADV_DONTDUMP))
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4


def do_mmap(
    proc: Process, fd: int, length: int, flags: int, prot: int, offset: int
) -> tuple[File, Vma, bool]:
    """The kernel side of ``mmap(2)`` of mock ``fd``: checks, then the driver's op.

    Returns the file (with the mapping's reference taken: :func:`add_mapping` records
    it, :func:`remove_mapping` drops it; a caller that fails to lay the pieces puts it),
    the ``Vma`` the op filled, and whether the mapping is shared.
    """
    file = proc.fdget(fd)
    if length <= 0 or offset < 0 or offset % PAGE_SIZE:
        raise kerr(EINVAL)
    # do_mmap's order: EACCES, then EPERM for PROT_EXEC on a noexec mount -- every
    # anonymous file (a dma-buf, a sync_file) lives on a SB_I_NOEXEC pseudo fs --
    # then ENODEV when the file has no ->mmap
    kind = flags & MAP_TYPE
    if kind not in (MAP_SHARED, MAP_SHARED_VALIDATE, MAP_PRIVATE):
        raise kerr(EINVAL)  # neither shared nor private
    if kind == MAP_SHARED_VALIDATE:
        # every flag must be known to this file (MAP_SYNC: DAX only); then MAP_SHARED
        if flags & ~LEGACY_MAP_MASK:
            raise kerr(EOPNOTSUPP)
        flags = (flags & ~MAP_TYPE) | MAP_SHARED
    shared = kind in (MAP_SHARED, MAP_SHARED_VALIDATE)
    if shared and prot & PROT_WRITE and not file.f_mode & FMODE_WRITE:
        raise kerr(EACCES)  # a shared writable map of a file not open for writing
    if not file.f_mode & FMODE_READ:
        raise kerr(EACCES)
    if prot & PROT_EXEC and file.path is None:
        raise kerr(EPERM)
    op = file.f_op.mmap
    if op is None:
        raise kerr(ENODEV)
    vma = Vma(length, offset // PAGE_SIZE, prot, flags)
    op(file, vma)
    mmap_backed(file, vma)
    return file, vma, shared


def mmap_backed(file: File, vma: Vma) -> None:
    """After the driver's op: the pieces must back the whole mapping (``EINVAL``); then
    the mapping's file reference is taken (:func:`remove_mapping` drops it)."""
    segs = vma.segments
    if not ((len(segs) == 1 and segs[0][2] >= vma.length) or vma.backed()):  # (one piece: no sum)
        raise kerr(EINVAL, "mmap op did not back the whole mapping")
    file.get()


def add_mapping(proc: Process, mp: Mapping) -> None:
    """Record live mapping ``mp`` (its file reference came from :func:`do_mmap`).

    A reader on another thread (``file_mappings`` while a driver revokes) takes a
    snapshot (``list(proc.mappings.values())``) while a supervised process maps."""
    with proc.files_lock:
        proc.mappings[mp.start] = mp


def remove_mapping(proc: Process, mp: Mapping, length: int | None = None) -> None:
    """``munmap``: forget ``mp`` and drop its file reference (``length``: the bytes
    unmapped, for the trace; by default the whole mapping)."""
    with proc.files_lock:
        if proc.mappings.get(mp.start) is mp:
            del proc.mappings[mp.start]
    file = mp.file
    if file.released:
        return  # the kernel shut down first and released the file itself
    tracer = proc.kernel.tracer
    if tracer.enabled:  # (a hot path: no call while off)
        trace_mm_munmap(tracer, proc.pid, file.id, mp.length if length is None else length)
    file.put()


class ProcessMm:
    """The kernel side of the map objects :func:`sys_mmap` makes for ``proc`` (their
    :class:`~mockkernel.mm.MapOwner`): ``munmap`` when one goes, ``madvise``/``msync``
    over it.  A front-end may extend it (the in-process ``mmap.mmap``'s kept fd)."""

    __slots__ = ("proc",)

    def __init__(self, proc: Process) -> None:
        self.proc = proc

    def unmap(self, m: MappedFile) -> None:
        remove_mapping(self.proc, m._mk_map, m._mk_len)

    def madvise(self, addr: int, length: int, advice: int) -> bool:
        self.proc.sys_madvise(addr, length, advice)
        return advice in MADV_REAL_EFFECT

    def msync(self, addr: int, length: int, flags: int) -> None:
        self.proc.sys_msync(addr, length, flags)

    def fstat(self, fd: int) -> os.stat_result:
        return self.proc.sys_fstat(fd)


def sys_mmap(
    proc: Process,
    fd: int,
    length: int,
    flags: int,
    prot: int,
    access: int,
    offset: int,
    direct: bool = False,
    owner: ProcessMm | None = None,
) -> MappedFile:
    """Map ``length`` bytes of the file at ``fd`` from ``offset`` into this Python process:
    a real ``mmap.mmap`` laid from the pieces the driver's ``->mmap`` chose, recorded in
    ``proc.mappings`` (``/proc/<pid>/maps``) and holding a file reference until it is
    unmapped.  ``access`` is Python's ``mmap.ACCESS_*`` (0: by ``flags``/``prot``).

    ``direct`` (the in-process ``mmap.mmap``, untraced): a mapping of one piece is laid by
    one real ``mmap`` of it, and ``m._mk_dupfd`` is the real dup CPython made then, for
    the caller to pass to :func:`keep_mapped_fd` (see :func:`mockkernel.mm.build_mapping`).
    ``owner``: who answers for the map (default: a :class:`ProcessMm` of ``proc``).
    """
    file, vma, shared = do_mmap(proc, fd, length, flags, prot, offset)
    return map_vma(proc, fd, file, vma, shared, access, direct, owner)


def map_vma(
    proc: Process,
    fd: int,
    file: File,
    vma: Vma,
    shared: bool,
    access: int,
    direct: bool = False,
    owner: ProcessMm | None = None,
) -> MappedFile:
    """The rest of :func:`sys_mmap` once :func:`do_mmap` gave the filled ``vma`` (and the
    mapping's reference on ``file``): lay it, record it, trace it."""
    try:
        m = build_mapping(vma, access, file, shared, direct)
    except BaseException:
        file.put()
        raise
    m._mk_len = vma.length
    m._mk_owner = ProcessMm(proc) if owner is None else owner
    add_mapping(proc, m._mk_map)
    tracer = proc.kernel.tracer
    if tracer.enabled:  # (a hot path: no call while off)
        trace_mm_mmap(tracer, proc.pid, fd, file.id, vma.length)
    return m


def keep_mapped_fd(proc: Process, fd: int, taken: int) -> int:
    """The fd a map object of mock ``fd`` keeps (CPython's ``mmap`` keeps a dup of the fd
    it maps: one more number, one more file reference): a new ``F_DUPFD_CLOEXEC`` dup, or,
    when ``sys_mmap(direct=True)`` mapped a piece itself (``taken``: the number CPython's
    real dup of the piece took, the lowest free one, as a dup of ``fd`` would), that
    number made a close-on-exec dup of ``fd`` (``dup3``).  ``EMFILE`` past the fd limit."""
    if taken < 0:
        return dupfd(proc, fd, 0, cloexec=True)
    if taken >= proc.fdt.rlimit:
        REAL.close(taken)
        raise kerr(EMFILE)
    try:
        with proc.files_lock:
            if taken in proc.files:  # (a mock file's number whose real fd was closed)
                return sys_dup3(proc, fd, taken, O_CLOEXEC)
            # do_dup2 onto a number no mock file holds, in one frame (a hot path)
            file = proc.files.get(fd)
            if file is None:
                raise kerr(EBADF)
            file.get()
            try:
                proc.fdt.take_number(taken, True, fd)
            except BaseException:
                file.put()
                raise
            proc.fd_install(taken, file)
            return taken
    except BaseException:
        if taken not in proc.files:
            REAL.close(taken)
        raise


def find_mapping(proc: Process, addr: int, length: int) -> Mapping:
    """The mock mapping that holds ``[addr, addr + length)``; ``NotMine`` when ``addr`` is
    in none (real memory: the real call answers), ``ENOMEM`` when the range runs past it
    (a hole follows: Linux's "range not fully mapped")."""
    for mp in list(proc.mappings.values()):
        if mp.start <= addr < mp.end:
            if addr + length > mp.end:
                raise kerr(ENOMEM)
            return mp
    raise NotMine()


MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4


def sys_mremap(proc: Process, addr: int, old_len: int, new_len: int, flags: int) -> int:
    """``mremap`` of a mock mapping (``mm/mremap.c``): the kernel's refusals, else the
    length of the mapping's records the real call takes from the mock (from ``addr``).

    The arguments are checked first (``check_mremap_params``): bad ones, or ``addr`` in
    no mock mapping, are ``NotMine`` -- the real call answers (``EINVAL``, ``EFAULT``) and
    nothing changes.  Every mock mapping is ``VM_PFNMAP | VM_DONTEXPAND``, so
    ``MREMAP_DONTUNMAP`` is ``EINVAL`` (``vrm_move_only``'s check) and growing it, in place
    or by a move, ``EFAULT`` (``vma_to_resize``), as is an old range past the mapping's end.
    A shrink in place takes the tail ``[addr + new_len, addr + old_len)`` (returns its
    start offset from ``addr``: ``new_len``); a move (``MREMAP_FIXED``: a device mapping
    moves only there, since it never grows) returns 0: the front-end moves the records.
    """
    if flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP):
        raise NotMine()
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE:
        raise NotMine()
    if flags & MREMAP_DONTUNMAP and (not flags & MREMAP_MAYMOVE or old_len != new_len):
        raise NotMine()
    old_len, new_len = page_align(old_len), page_align(new_len)
    if addr % PAGE_SIZE or not new_len:
        raise NotMine()
    mp = next((m for m in list(proc.mappings.values()) if m.start <= addr < m.end), None)
    if mp is None:
        raise NotMine()
    if flags & MREMAP_DONTUNMAP:
        raise kerr(EINVAL)
    if old_len > mp.end - addr and (new_len > old_len or flags & MREMAP_FIXED):
        raise kerr(EFAULT)
    if new_len > old_len:
        raise kerr(EFAULT)  # VM_DONTEXPAND | VM_PFNMAP: a device mapping never grows
    if flags & MREMAP_FIXED or (old_len == new_len and flags & MREMAP_MAYMOVE):
        return 0 if flags & MREMAP_FIXED else old_len  # a move / nothing to do
    return new_len


def sys_madvise(proc: Process, addr: int, length: int, advice: int) -> None:
    """``madvise`` over a mock mapping (``mm/madvise.c``): see ``_MADV_OK``.

    ``MADV_REMOVE`` punches a hole in the file (``vfs_fallocate``): ``EACCES`` on a
    private or read-only mapping, else the file's ``fallocate`` answer (``ENODEV`` for a
    device or a dma-buf).  ``MADV_HWPOISON``/``SOFT_OFFLINE`` need ``CAP_SYS_ADMIN``.
    The front-end applies ``MADV_REAL_EFFECT`` advice to the real mapping afterwards.
    """
    if addr % PAGE_SIZE or length < 0:
        raise kerr(EINVAL)
    if advice in (MADV_HWPOISON, MADV_SOFT_OFFLINE):
        raise kerr(EPERM)
    if length == 0:
        return
    mp = find_mapping(proc, addr, length)
    if advice in _MADV_OK:
        return
    if advice == MADV_REMOVE:
        if not mp.shared or not mp.file.f_mode & FMODE_WRITE:
            raise kerr(EACCES)
        start = mp.pgoff * PAGE_SIZE + (addr - mp.start)
        vfs_fallocate(mp.file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, length)
        return
    raise kerr(EINVAL)


def sys_msync(proc: Process, addr: int, length: int, flags: int) -> None:
    """``msync`` over a mock mapping: ``MS_SYNC`` of a shared mapping is the file's
    ``->fsync`` (``vfs_fsync_range``), ``EINVAL`` for a file without one (every device
    and dma-buf); ``MS_ASYNC`` does nothing."""
    if addr % PAGE_SIZE or flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
        raise kerr(EINVAL)
    if flags & MS_ASYNC and flags & MS_SYNC:
        raise kerr(EINVAL)
    if length == 0:
        return
    mp = find_mapping(proc, addr, page_align(length))
    if flags & MS_SYNC and mp.shared:
        op = mp.file.f_op.fsync
        if op is None:
            raise kerr(EINVAL)
        op(mp.file, False)


def sys_mprotect(proc: Process, addr: int, length: int, prot: int) -> None:
    """``mprotect`` over a mock mapping (``mm/mprotect.c``: ``do_mprotect_pkey``).

    The raw checks in the kernel's order (both grow bits, an unaligned start, a zero
    length, a wrapping range, an unknown ``prot`` bit), then the mapping's
    ``VM_MAY*`` bits: a shared mapping of a file not open for writing may not become
    writable, and a file on a ``noexec`` mount -- every anonymous-inode file, a
    dma-buf included (``SB_I_NOEXEC``) -- may not become executable: ``EACCES``.
    ``NotMine`` for real memory.  The front-end then lets the real call change the
    real pages' protection.
    """
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == PROT_GROWSDOWN | PROT_GROWSUP or addr % PAGE_SIZE:
        raise kerr(EINVAL)
    if length == 0:
        return
    length = page_align(length)
    if addr + length > 1 << 64 or addr + length <= addr:
        raise kerr(ENOMEM)
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):
        raise kerr(EINVAL)
    mp = find_mapping(proc, addr, length)
    if grows:
        raise kerr(EINVAL)  # no mock mapping grows (VM_GROWSDOWN/UP)
    if prot & PROT_WRITE and mp.shared and not mp.file.f_mode & FMODE_WRITE:
        raise kerr(EACCES)  # no VM_MAYWRITE
    if prot & PROT_EXEC and mp.file.path is None:
        raise kerr(EACCES)  # no VM_MAYEXEC: path_noexec()
    if addr == mp.start and length == mp.length:  # (a part: Linux splits the vma)
        mp.prot = mp.map_prot = prot
