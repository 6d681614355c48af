"""The redirection's real-fd/host-path fast dispatchers beyond ``hotpath.py``'s six:
``os.lseek``, ``os.dup``, ``fcntl.fcntl``, ``os.stat``, ``os.lstat`` and ``os.access``.

A program calls these on its real fds and host paths far more often than on mock ones,
and the real calls cost 0.15-0.8 us, so the redirection's share must be one test and a
call (issue 10: at most 15 %):

* an fd: one membership test (``fd in _files``: the process's fd table; ``_held``: the
  real fds the kernel keeps for itself, ``EBADF`` for the program's ``dup``);
* a path: a ``str`` with no ``dir_fd`` whose second character is not that of a mock
  root (``/dev``, ``/sys``, ``/proc``: ``d``, ``s``, ``p``; one index, cheaper than a
  ``startswith``) is the host's (``PathCalls.at`` answers so for it); anything else
  (bytes, PathLike, an fd, a ``dir_fd``, ``/d...``, ...) takes the family's slow path,
  which decides as before.

The real call is made with the caller's arguments as given (an omitted ``fcntl``
argument stays omitted: CPython parses a passed ``0`` as a buffer first and fails).
As in ``hotpath.py``, each redirection gets copies of these functions whose globals
hold its own state (:func:`bind`); the module-level values only type the names.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Container, Mapping
from types import MappingProxyType
from typing import Any, Final

__all__ = ["NO_ARG", "bind"]

#: ``fcntl.fcntl``'s third argument not given (the slow path reads it as 0)
NO_ARG: Final = object()


def _unbound(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("mockkernel.userspace.fastcalls: use the copies bind() returns")


_files: Container[Any] = frozenset()  # Process.files
_held: Container[int] = frozenset()  # realfd's held numbers
_real_lseek: Callable[[int, int, int], int] = _unbound
_real_dup: Callable[[int], int] = _unbound
_real_fcntl: Callable[..., Any] = _unbound
_real_stat: Callable[..., Any] = _unbound
_real_lstat: Callable[..., Any] = _unbound
_real_access: Callable[..., bool] = _unbound
_lseek_slow: Callable[[int, int, int], int] = _unbound  # FdCalls.lseek
_dup_slow: Callable[[int], int] = _unbound  # FdCalls.dup
_fcntl_slow: Callable[..., Any] = _unbound  # FdCalls.fcntl
_stat_slow: Callable[..., Any] = _unbound  # PathCalls.stat_slow
_lstat_slow: Callable[..., Any] = _unbound  # PathCalls.lstat
_access_slow: Callable[..., bool] = _unbound  # PathCalls.access


def m_lseek(fd: int, position: int, whence: int, /) -> int:
    if fd in _files:
        return _lseek_slow(fd, position, whence)
    return _real_lseek(fd, position, whence)


def m_dup(fd: int, /) -> int:
    if fd in _files or fd in _held:
        return _dup_slow(fd)
    return _real_dup(fd)


def m_fcntl(fd: Any, cmd: int, arg: Any = NO_ARG, /) -> Any:
    if type(fd) is int and fd not in _files:
        if arg is NO_ARG:
            return _real_fcntl(fd, cmd)
        return _real_fcntl(fd, cmd, arg)
    return _fcntl_slow(fd, cmd, arg)


def m_stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
    if type(path) is str and dir_fd is None:
        try:  # every mock root starts "/d", "/s" or "/p": a str's second char decides
            host = path[1] not in "dsp"
        except IndexError:  # "", "/": the slow path's answer is the real call too
            host = False
        if host:
            if follow_symlinks:
                return _real_stat(path)
            return _real_stat(path, follow_symlinks=False)
    return _stat_slow(path, dir_fd, follow_symlinks)


def m_lstat(path: Any, *, dir_fd: int | None = None) -> Any:
    if type(path) is str and dir_fd is None:
        try:  # (as m_stat)
            host = path[1] not in "dsp"
        except IndexError:
            host = False
        if host:
            return _real_lstat(path)
    return _lstat_slow(path, dir_fd=dir_fd)


def m_access(
    path: Any,
    mode: int,
    *,
    dir_fd: int | None = None,
    effective_ids: bool = False,
    follow_symlinks: bool = True,
) -> bool:
    if type(path) is str and dir_fd is None and not effective_ids and follow_symlinks:
        try:  # (as m_stat)
            host = path[1] not in "dsp"
        except IndexError:
            host = False
        if host:
            return _real_access(path, mode)
    return _access_slow(
        path, mode, dir_fd=dir_fd, effective_ids=effective_ids, follow_symlinks=follow_symlinks
    )


#: the redirection's keys (``redirect._TARGETS``) these serve
_FAST: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "lseek": m_lseek,
        "dup": m_dup,
        "fcntl": m_fcntl,
        "stat": m_stat,
        "lstat": m_lstat,
        "access": m_access,
    }
)


def bind(**names: Any) -> dict[str, Any]:
    """Copies of the dispatchers whose globals are this module's plus ``names`` (by the
    redirection's key)."""
    ns = dict(globals())
    unknown = set(names) - set(ns)
    if unknown:
        raise TypeError(f"fastcalls.bind: unknown names {sorted(unknown)}")
    ns.update(names)
    out: dict[str, Any] = {}
    for key, fn in _FAST.items():
        copy = types.FunctionType(fn.__code__, ns, fn.__name__, fn.__defaults__)
        copy.__kwdefaults__ = fn.__kwdefaults__
        copy.__qualname__ = fn.__qualname__
        copy.__doc__ = fn.__doc__
        copy.__module__ = fn.__module__
        out[key] = copy
    return out
