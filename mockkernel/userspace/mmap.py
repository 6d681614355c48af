"""The redirection's ``mmap.mmap``: a mock fd maps through its driver
(``Process.sys_mmap``), any other fd maps for real.

``mmap.mmap`` is a class, so its replacement is one too: a subclass of the real type
made once per interpreter (``isinstance`` checks keep working), which finds the
installed redirection when a map is made.

A shared map of a real file open for writing (a memfd, a tmpfs file, ...) is a
:class:`ShmemMmap`: its ``madvise(MADV_REMOVE)`` punches a hole in the file, and a
udmabuf may hold pinned pages of a memfd there (``mm/gup.py``).  Before the real call
runs, the pinned pages of the range move to kernel-private backing, as the supervisor
does for a trapped ``madvise`` (``supervisor/punch.py``): the dma-buf keeps the old data,
as on Linux.  Making one costs no syscall (a real fd's map is as cheap as the real call):
which file it maps is looked up only when such a ``madvise`` runs while something is
pinned (the seals then too: ``PinnedPages.sealed_for_write``); a shared map that does not
ask for ``PROT_WRITE`` costs one ``F_GETFL``.  Any other real map (private, anonymous, of
a read-only open) is the real type itself.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import stat as _stat
from typing import TYPE_CHECKING, Any

from ..fs import FMODE_READ, FMODE_WRITE
from ..gup import PinnedPages
from ..mm import PAGE_SIZE, MappedFile, Vma, _PyBuffer, build_mapping, page_align
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
        if redir is None:  # a reference kept past uninstall: the real type
            return REAL.mmap(fileno, length, flags, prot, access, offset, **kw)
        if fileno in redir.proc.files:
            return redir.mmaps.mock_mmap(fileno, length, flags, prot, access, offset)
        if type(fileno) is int and fileno >= 0:  # (-1: anonymous)
            if access == _ACCESS_DEFAULT:
                shared = flags & _MAP_SHARED and (prot & _PROT_WRITE or _may_write(fileno))
            else:
                shared = access == _ACCESS_WRITE or (access == _ACCESS_READ and _may_write(fileno))
            if shared:
                if kw:
                    return ShmemMmap(fileno, length, flags, prot, access, offset, **kw)
                return ShmemMmap(fileno, length, flags, prot, access, offset)
        return REAL.mmap(fileno, length, flags, prot, access, offset, **kw)


def _may_write(fd: Any) -> bool:
    """Is ``fd`` open for writing (``VM_MAYWRITE`` for a shared map that does not ask for
    ``PROT_WRITE``: its ``madvise(MADV_REMOVE)`` may punch)?  False for a bad fd: the real
    ``mmap`` gives the answer."""
    try:
        return bool(REAL.fcntl(fd, _F_GETFL) & _O_ACCMODE != _O_RDONLY)
    except (OSError, TypeError, ValueError, OverflowError):
        return False


_ACCESS_WRITE, _ACCESS_READ, _ACCESS_DEFAULT = (
    mmap.ACCESS_WRITE,
    mmap.ACCESS_READ,
    mmap.ACCESS_DEFAULT,
)
_F_GETFL, _O_ACCMODE, _O_RDONLY = fcntl.F_GETFL, os.O_ACCMODE, os.O_RDONLY
_MAP_SHARED, _PROT_WRITE = mmap.MAP_SHARED, mmap.PROT_WRITE
_MADV_REMOVE = 9
_PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
_S_IFMT, _S_IFREG = 0o170000, _stat.S_IFREG


def buffer_address(obj: Any) -> int:
    """The address of ``obj``'s buffer (a read-only one too: ``ctypes.from_buffer``
    wants a writable one); the view is released at once."""
    view = _PyBuffer()
    api = ctypes.pythonapi
    if api.PyObject_GetBuffer(ctypes.py_object(obj), ctypes.byref(view), 0) != 0:
        raise BufferError("no buffer")
    try:
        return view.buf or 0
    finally:
        api.PyBuffer_Release(ctypes.byref(view))


def mapped_file_key(address: int) -> tuple[tuple[int, int], int] | None:
    """``((st_dev, st_ino), file offset)`` of the real file mapped at ``address`` (from
    ``/proc/self/maps``: the ``dev`` and ``inode`` columns are the file's ``st_dev`` and
    ``st_ino``), or None when no file map holds it."""
    with REAL.builtin_open("/proc/self/maps", "rb") as f:
        for line in f:
            span, _perms, off, dev, ino = line.split(None, 5)[:5]
            start, _, end = span.partition(b"-")
            if int(start, 16) <= address < int(end, 16):
                if ino == b"0":
                    return None
                major, _, minor = dev.partition(b":")
                st_dev = os.makedev(int(major, 16), int(minor, 16))
                return (st_dev, int(ino)), int(off, 16) + address - int(start, 16)
    return None


class ShmemMmap(_real_mmap_type):  # type: ignore[misc,valid-type]
    """A real shared map of a file open for writing, made while a redirection was
    installed: its
    ``madvise(MADV_REMOVE)`` moves pinned pages out of the way first (the module's
    docstring).  Everything else is the real type's."""

    __slots__ = ()

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
        if start % PAGE_SIZE or length == 0:
            return  # EINVAL, nothing to do: the real call says so
        pins = redir.kernel.subsys(PinnedPages)
        if not pins.has_pins():
            return  # (the common case: no lookup of the file)
        found = mapped_file_key(buffer_address(self))
        if found is None:
            return
        key, base = found
        if not pins.pinned(key) or pins.sealed_for_write(key):
            return  # nothing pinned; or shmem_fallocate's EPERM
        # madvise rounds the length up to whole pages (PAGE_ALIGN(len_in)) before the punch
        pins.punch_hole(key, base + start, page_align(length))


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
