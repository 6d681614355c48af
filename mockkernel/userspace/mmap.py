"""The redirection's ``mmap.mmap``: a mock fd maps through its driver
(``Process.sys_mmap``), any other fd maps for real.

``mmap.mmap`` is a class, so its replacement is one too: a subclass of the real type
made once per interpreter (``isinstance`` checks keep working), which finds the
installed redirection when a map is made.

A shared map of a real shmem file (a memfd, a tmpfs file: ``F_GET_SEALS`` answers) is a
:class:`ShmemMmap`: its ``madvise(MADV_REMOVE)`` punches a hole in the file, and a
udmabuf may hold pinned pages there (``mm/gup.py``).  Before the real call runs, the
pinned pages of the range move to kernel-private backing, as the supervisor does for a
trapped ``madvise`` (``supervisor/punch.py``): the dma-buf keeps the old data, as on
Linux.  Any other real map is the real type itself.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import stat as _stat
from typing import TYPE_CHECKING, Any

from ..fs import FMODE_READ, FMODE_WRITE
from ..gup import PinnedPages
from ..mm import PAGE_SIZE, MappedFile, Vma, build_mapping, page_align
from ..realfd import REAL
from ..syscalls.fd import sys_close
from ..syscalls.mmap import (
    ProcessMm,
    add_mapping,
    keep_mapped_fd,
    mmap_backed,
    remove_mapping,
    sys_mmap,
)

if TYPE_CHECKING:
    from .redirect import Redirection

__all__ = ["MmapCalls", "RedirectedMmap", "ShmemMmap"]


class _MmapMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, REAL.mmap)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, REAL.mmap)


_real_mmap_type: type[mmap.mmap] = REAL.mmap


class RedirectedMmap(_real_mmap_type, metaclass=_MmapMeta):  # type: ignore[misc,valid-type]
    """``mmap.mmap`` while a redirection is installed (see the module's docstring)."""

    def __new__(
        cls,
        fileno: int,
        length: int,
        flags: int = mmap.MAP_SHARED,
        prot: int = mmap.PROT_WRITE | mmap.PROT_READ,
        access: int = mmap.ACCESS_DEFAULT,
        offset: int = 0,
        **kw: Any,
    ) -> Any:
        redir = _redirect.Redirection.active
        if redir is not None and fileno in redir.proc.files:
            return redir.mmaps.mock_mmap(fileno, length, flags, prot, access, offset)
        if redir is not None and type(fileno) is int and fileno >= 0:
            shmem = _shmem_key(fileno, flags, access)
            if shmem is not None:
                m = ShmemMmap(fileno, length, flags, prot, access, offset, **kw)
                m._mk_key, m._mk_writable = shmem
                m._mk_offset = offset
                return m
        return REAL.mmap(fileno, length, flags, prot, access, offset, **kw)


_F_GET_SEALS = 1034
_F_SEAL_WRITE, _F_SEAL_FUTURE_WRITE = 0x0008, 0x0010
_MADV_REMOVE = 9
_PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
_S_IFMT, _S_IFREG = 0o170000, _stat.S_IFREG


def _shmem_key(fd: int, flags: int, access: int) -> tuple[tuple[int, int], bool] | None:
    """For a shared map of a shmem file: its ``(st_dev, st_ino)`` and whether the map may
    write (``VM_MAYWRITE``: the file open for writing, no write seal); else None."""
    if access == mmap.ACCESS_COPY or (
        access == mmap.ACCESS_DEFAULT and not flags & mmap.MAP_SHARED
    ):
        return None
    try:
        seals = fcntl.fcntl(fd, _F_GET_SEALS)  # EINVAL: not shmem
        accmode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        st = os.fstat(fd)
    except (OSError, TypeError, ValueError, OverflowError):
        return None  # (the real mmap gives the answer)
    writable = accmode != os.O_RDONLY and not seals & (_F_SEAL_WRITE | _F_SEAL_FUTURE_WRITE)
    return (st.st_dev, st.st_ino), writable


class ShmemMmap(_real_mmap_type):  # type: ignore[misc,valid-type]
    """A real shared map of a shmem file made while a redirection was installed: its
    ``madvise(MADV_REMOVE)`` moves pinned pages out of the way first (the module's
    docstring).  Everything else is the real type's."""

    _mk_key: tuple[int, int] = (0, 0)
    _mk_writable = False
    _mk_offset = 0

    def madvise(self, option: int, start: int = 0, length: int | None = None, /) -> None:
        if option == _MADV_REMOVE:
            self._before_remove(start, length)
        super().madvise(option, start, *(() if length is None else (length,)))

    def _before_remove(self, start: int, length: int | None) -> None:
        """``madvise_remove`` of ``[start, start + length)`` of this map is about to run:
        if it will punch (CPython's and the kernel's checks pass) and a pin holds pages
        of the file, move them first (``PinnedPages.punch_hole``)."""
        redir = _redirect.Redirection.active
        if redir is None or self.closed:
            return
        size = len(self)
        if not 0 <= start < size or (length is not None and length < 0):
            return  # CPython's ValueError
        length = size - start if length is None else min(length, size - start)
        if start % PAGE_SIZE or length == 0 or not self._mk_writable:
            return  # EINVAL, nothing to do, EACCES: the real call says so
        pins = redir.kernel.subsys(PinnedPages)
        if not pins.pinned(self._mk_key) or pins.sealed_for_write(self._mk_key):
            return  # nothing pinned; or shmem_fallocate's EPERM
        # madvise rounds the length up to whole pages (PAGE_ALIGN(len_in)) before the punch
        pins.punch_hole(self._mk_key, self._mk_offset + start, page_align(length))


def _access_to_flags(flags: int, prot: int, access: int) -> tuple[int, int]:
    """``flags``/``prot`` for ``mmap.mmap``'s ``access``, with its argument checks."""
    if access != mmap.ACCESS_DEFAULT and (
        flags != mmap.MAP_SHARED or prot != (mmap.PROT_WRITE | mmap.PROT_READ)
    ):
        raise ValueError("mmap can't specify both access and flags, prot.")
    if access == mmap.ACCESS_READ:
        return mmap.MAP_SHARED, mmap.PROT_READ
    if access == mmap.ACCESS_WRITE:
        return mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
    if access == mmap.ACCESS_COPY:
        return mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE
    if access != mmap.ACCESS_DEFAULT:
        raise ValueError("mmap invalid access parameter.")
    return flags, prot


class MmapCalls(ProcessMm):
    """``mmap.mmap`` of a mock fd for one redirection, and the owner of the maps it makes
    (:class:`~mockkernel.mm.MapOwner`: the kernel's, plus the fd each map keeps)."""

    __slots__ = ("redir",)

    def __init__(self, redir: Redirection) -> None:
        super().__init__(redir.proc)
        self.redir = redir

    def mock_mmap(
        self, fd: int, length: int, flags: int, prot: int, access: int, offset: int
    ) -> MappedFile:
        """``mmap.mmap(fd, ...)`` of a mock fd, step for step as CPython's ``new_mmap_object``.

        Like CPython, the map object keeps its own ``F_DUPFD_CLOEXEC`` dup of the fd
        while it lives (one more fd number, one more file reference) and closes that
        number when it is closed or collected; the mapping holds the file as well.
        """
        if length < 0:
            raise OverflowError("memory mapped length must be positive")
        if offset < 0:
            raise OverflowError("memory mapped offset must be positive")
        if access:  # (ACCESS_DEFAULT: flags and prot as given)
            flags, prot = _access_to_flags(flags, prot, access)
        proc = self.proc
        file = proc.fdget(fd)
        st = file.inode
        if st.mode & _S_IFMT == _S_IFREG:
            if length == 0:
                if st.size == 0:
                    raise ValueError("cannot mmap an empty file")
                if offset >= st.size:
                    raise ValueError("mmap offset is greater than file size")
                length = st.size - offset
            elif offset > st.size or st.size - offset < length:
                raise ValueError("mmap length is greater than file size")
        if proc.kernel.tracer.enabled:  # CPython's order, each call traced
            hidden = proc.sys_fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)  # CPython's _Py_dup(fd)
            try:
                m = proc.sys_mmap(fd, length, flags, prot, access, offset)
            except BaseException:
                proc.sys_close(hidden)
                raise
            m._mk_owner = self
        else:  # a piece mapped directly: its real dup becomes the kept dup (same number)
            f_mode = file.f_mode
            op = file.f_op.mmap
            if (
                flags == mmap.MAP_SHARED
                and length
                and not offset % PAGE_SIZE
                and not prot & ~_PROT_RW
                and f_mode & FMODE_READ
                and (f_mode & FMODE_WRITE or not prot & mmap.PROT_WRITE)
                and op is not None
            ):
                # every check of do_mmap passes for these: its steps from the driver's op
                # on (any other call takes sys_mmap, whose checks give the errno)
                vma = Vma(length, offset // PAGE_SIZE, prot, flags)
                op(file, vma)
                mmap_backed(file, vma)
                try:  # (map_vma's steps, untraced)
                    m = build_mapping(vma, access, file, True, True)
                except BaseException:
                    file.put()
                    raise
                m._mk_len = length
                m._mk_owner = self
                add_mapping(proc, m._mk_map)
            else:
                m = sys_mmap(proc, fd, length, flags, prot, access, offset, True, self)
            try:
                hidden = keep_mapped_fd(proc, fd, m._mk_dupfd)
            except BaseException:
                m.close()
                raise
        m._mk_fd = hidden
        return m

    def unmap(self, m: MappedFile) -> None:
        """What CPython does with its dup when the map goes, ``close()`` that number,
        then the kernel's ``munmap``.

        While this redirection is installed the number is closed whatever it now
        holds, as CPython would (a program may have closed or reused it); afterwards
        only if it is still the dup this map made (the kernel may have closed it).
        """
        hidden = m._mk_fd
        proc = self.proc
        try:
            if hidden < 0:
                pass
            elif self.redir.installed:
                try:
                    if hidden in proc.files and not proc.kernel.tracer.enabled:
                        sys_close(proc, hidden)  # (what the redirection's close calls)
                    else:
                        self.redir.funcs["close"](hidden)
                except OSError:
                    pass  # (as CPython's close(fd): an error is ignored)
            elif proc.files.get(hidden) is m._mk_map.file:
                proc.sys_close(hidden)
        finally:
            remove_mapping(proc, m._mk_map, m._mk_len)

    def fstat(self, fd: int) -> os.stat_result:
        """``size()``'s ``fstat`` of the kept fd, as the program's ``os.fstat`` makes it."""
        st: os.stat_result = self.redir.funcs["fstat"](fd)
        return st


# (circular: redirect.py builds on this module; the name is read at call time only)
from . import redirect as _redirect  # noqa: E402
