"""``mmap(2)`` of a mock file (``mm/mmap.c``: ``do_mmap``'s checks, then the driver's
``->mmap``); ``munmap`` is the returned map's close (or its collection).

The rules are written once, in :func:`do_mmap`; where the pieces are laid is the
front-end's business: this Python process (:func:`sys_mmap`, a real ``mmap.mmap``) or a
supervised one (``mockkernel/supervisor/mmap.py``, by syscall injection).
"""

from __future__ import annotations

from errno import EACCES, EINVAL, ENODEV, EPERM
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_READ, FMODE_WRITE, File
from ..mm import PAGE_SIZE, MappedFile, Mapping, Vma, build_mapping, page_align

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["add_mapping", "do_mmap", "remove_mapping", "sys_mmap"]

PROT_WRITE = 0x2
PROT_EXEC = 0x4
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F


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
    vma = Vma(length=length, pgoff=offset // PAGE_SIZE, prot=prot, flags=flags)
    op(file, vma)
    if sum(seg[2] for seg in vma.segments) < vma.length:
        raise kerr(EINVAL, "mmap op did not back the whole mapping")
    file.get()  # the mapping's reference, dropped on munmap (remove_mapping)
    return file, vma, shared


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
    if tracer.enabled:
        tracer.emit(
            "mm.munmap",
            pid=proc.pid,
            file=file.id,
            length=mp.length if length is None else length,
        )
    file.put()


def sys_mmap(
    proc: Process, fd: int, length: int, flags: int, prot: int, access: int, offset: int
) -> MappedFile:
    """Map ``length`` bytes of the file at ``fd`` from ``offset`` into this Python process:
    a real ``mmap.mmap`` laid from the pieces the driver's ``->mmap`` chose, recorded in
    ``proc.mappings`` (``/proc/<pid>/maps``) and holding a file reference until it is
    unmapped.  ``access`` is Python's ``mmap.ACCESS_*`` (0: by ``flags``/``prot``)."""
    file, vma, shared = do_mmap(proc, fd, length, flags, prot, offset)
    record: list[Mapping] = []

    def munmap() -> None:
        if record:
            remove_mapping(proc, record[0], length)
        elif not file.released:
            file.put()

    try:
        m = build_mapping(vma, access, munmap)
    except BaseException:
        file.put()
        raise
    mp = Mapping(
        m._mk_addr,
        page_align(length),
        vma.pgoff,
        prot,
        shared,
        file,
        pieces=m._mk_pieces,
        map_prot=m._mk_map_prot,
        map_flags=m._mk_map_flags,
        zapped=vma.zapped,
    )
    record.append(mp)
    add_mapping(proc, mp)
    tracer = proc.kernel.tracer
    if tracer.enabled:
        tracer.emit("mm.mmap", pid=proc.pid, fd=fd, file=file.id, length=length)
    return m
