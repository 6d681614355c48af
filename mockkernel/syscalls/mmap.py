"""``mmap(2)`` of a mock file (``mm/mmap.c``: ``do_mmap``'s checks, then the driver's
``->mmap``); ``munmap`` is the returned map's close (or its collection)."""

from __future__ import annotations

from errno import EACCES, EINVAL, ENODEV, EPERM
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_READ, FMODE_WRITE
from ..mm import PAGE_SIZE, MappedFile, Mapping, Vma, build_mapping, page_align

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["sys_mmap"]

PROT_WRITE = 0x2
PROT_EXEC = 0x4
MAP_SHARED = 0x01
MAP_SHARED_VALIDATE = 0x03


def sys_mmap(
    proc: Process, fd: int, length: int, flags: int, prot: int, access: int, offset: int
) -> MappedFile:
    """Map ``length`` bytes of the file at ``fd`` from ``offset``: a real ``mmap.mmap``
    laid from the pieces the driver's ``->mmap`` chose, recorded in ``proc.mappings``
    (``/proc/<pid>/maps``) and holding a file reference until it is unmapped.
    ``access`` is Python's ``mmap.ACCESS_*`` (0: by ``flags``/``prot``)."""
    file = proc.fdget(fd)
    if length <= 0 or offset < 0 or offset % PAGE_SIZE:
        raise kerr(EINVAL)
    # do_mmap's order: EACCES, then EPERM for PROT_EXEC on a noexec mount -- every
    # anonymous file (a dma-buf, a sync_file) lives on a SB_I_NOEXEC pseudo fs --
    # then ENODEV when the file has no ->mmap
    shared = flags & 0x0F in (MAP_SHARED, MAP_SHARED_VALIDATE)
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
    file.get()  # the mapping's reference, dropped on munmap (close or GC)
    kernel = proc.kernel
    pid = proc.pid
    mappings = proc.mappings
    record: list[Mapping] = []

    def munmap() -> None:
        for mp in record:
            mappings.pop(mp.start, None)
        if file.released:
            return  # the kernel shut down first and released the file itself
        if kernel.tracer.enabled:
            kernel.tracer.emit("mm.munmap", pid=pid, file=file.id, length=length)
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
    mappings[mp.start] = mp
    if kernel.tracer.enabled:
        kernel.tracer.emit("mm.mmap", pid=pid, fd=fd, file=file.id, length=length)
    return m
