"""The redirection's ``mmap.mmap``: a mock fd maps through its driver
(``Process.sys_mmap``), any other fd maps for real.

``mmap.mmap`` is a class, so its replacement is one too: a subclass of the real type
made once per interpreter (``isinstance`` checks keep working), which finds the
installed redirection when a map is made.
"""

from __future__ import annotations

import fcntl
import mmap
import stat as _stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..mm import MappedFile
from ..realfd import REAL
from ..syscalls.mmap import keep_mapped_fd, sys_mmap

if TYPE_CHECKING:
    from .redirect import Redirection

__all__ = ["MmapCalls", "RedirectedMmap"]


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
        return REAL.mmap(fileno, length, flags, prot, access, offset, **kw)


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


class MmapCalls:
    """``mmap.mmap`` of a mock fd for one redirection."""

    def __init__(self, redir: Redirection) -> None:
        self.redir = redir
        self.proc = redir.proc

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
        flags, prot = _access_to_flags(flags, prot, access)
        proc = self.proc
        file = proc.fdget(fd)
        st = file.inode
        if _stat.S_ISREG(st.mode):
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
        else:  # a piece mapped directly: its real dup becomes the kept dup (same number)
            m = sys_mmap(proc, fd, length, flags, prot, access, offset, direct=True)
            try:
                hidden = keep_mapped_fd(proc, fd, m._mk_dupfd)
            except BaseException:
                m.close()
                raise
        m._mk_fd = hidden
        m._mk_fstat = self.redir.funcs["fstat"]
        m._mk_hooks.insert(0, self.closer(hidden, file))
        return m

    def closer(self, hidden: int, file: Any) -> Callable[[], None]:
        """What CPython does with its dup when the map goes: ``close()`` that number.

        While this redirection is installed the number is closed whatever it now
        holds, as CPython would (a program may have closed or reused it); afterwards
        only if it is still the dup this map made (the kernel may have closed it).
        """
        redir = self.redir
        proc = self.proc

        def close_hidden() -> None:
            if redir.installed:
                try:  # (as CPython's close(fd): an error is ignored)  # noqa: SIM105
                    redir.funcs["close"](hidden)
                except OSError:
                    pass
            elif proc.files.get(hidden) is file:
                proc.sys_close(hidden)

        return close_hidden


# (circular: redirect.py builds on this module; the name is read at call time only)
from . import redirect as _redirect  # noqa: E402
