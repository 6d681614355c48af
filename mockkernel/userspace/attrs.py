"""The redirection's attribute family: ``os.chmod``, ``os.chown``/``os.lchown``,
``os.utime``, ``os.truncate`` and ``os.setxattr``/``getxattr``/``listxattr``/
``removexattr`` on a mock path or fd.

Each turns Python's calling convention (a path or an fd in one argument, ``dir_fd=``,
``follow_symlinks=``, float or ns times) into the plain arguments of the syscall layer
(``Process.sys_fchmodat``, ``sys_utimensat``, ``sys_setxattrat``, ...) and makes the
real call when the path is not the mock's (``NotMine``).  A relative path from the
current directory is made absolute first (``PathCalls.change_at``), so a change is
judged by the mock when the current directory is in its tree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotMine
from ..syscalls import AT_SYMLINK_NOFOLLOW
from ..syscalls.xattr import XATTR_SIZE_MAX
from .paths import with_name

if TYPE_CHECKING:
    from .paths import PathCalls
    from .redirect import Redirection

__all__ = ["KEYS", "AttrCalls"]

#: the ``os`` functions this family replaces (``redirect._TARGETS`` keys, same names)
KEYS = (
    "chmod",
    "chown",
    "lchown",
    "utime",
    "truncate",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
)


def _name(attribute: Any) -> str:
    return attribute if isinstance(attribute, str) else os.fsdecode(attribute)


def _timespec(t: float) -> tuple[int, int]:
    """A time in seconds as ``(sec, nsec)``, rounded down as CPython's ``os.utime``."""
    if isinstance(t, int):
        return t, 0
    ns = math.floor(t * 1e9)
    return ns // 10**9, ns % 10**9


class AttrCalls:
    """The attribute-family replacements of one redirection (bound methods)."""

    def __init__(self, redir: Redirection, paths: PathCalls) -> None:
        self.proc = redir.proc
        self.files = redir.proc.files
        self.paths = paths
        self.real: Mapping[str, Any] = redir.real_more  # the real functions, by key

    def _run(self, path: Any, dir_fd: Any, call: Callable[[int, str | None], Any]) -> Any:
        """``call(dirfd, path)`` on a mock fd (``path`` None) or a path that may be the
        mock's; ``NotMine`` when the real call must run."""
        if isinstance(path, int):
            if path not in self.files:
                raise NotMine()
            return call(path, None)
        at = self.paths.change_at(path, dir_fd)
        if at is None:
            raise NotMine()
        return call(at[1], at[0])

    def _call(self, key: str, path: Any, dir_fd: Any, call: Callable[[int, str | None], Any],
              *real_args: Any, **real_kw: Any) -> Any:  # fmt: skip
        try:
            return self._run(path, dir_fd, call)
        except NotMine:
            pass
        except OSError as e:
            raise with_name(e, path) from None
        if dir_fd is not None:
            real_kw["dir_fd"] = dir_fd
        return self.real[key](path, *real_args, **real_kw)

    def chmod(
        self, path: Any, mode: int, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> None:
        if not follow_symlinks:  # (lchmod: the real os.chmod says what Linux's CPython says)
            self.real["chmod"](path, mode, dir_fd=dir_fd, follow_symlinks=False)
            return

        def call(d: int, p: str | None) -> None:
            if p is None:
                self.proc.sys_fchmod(d, mode)
            else:
                self.proc.sys_fchmodat(d, p, mode, 0)

        self._call("chmod", path, dir_fd, call, mode)

    def chown(
        self,
        path: Any,
        uid: int,
        gid: int,
        *,
        dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        flags = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW

        def call(d: int, p: str | None) -> None:
            if p is None:
                self.proc.sys_fchown(d, uid, gid)
            else:
                self.proc.sys_fchownat(d, p, uid, gid, flags)

        kw = {} if follow_symlinks else {"follow_symlinks": False}
        self._call("chown", path, dir_fd, call, uid, gid, **kw)

    def lchown(self, path: Any, uid: int, gid: int) -> None:
        def call(d: int, p: str | None) -> None:
            self.proc.sys_fchownat(d, p or "", uid, gid, AT_SYMLINK_NOFOLLOW)

        if isinstance(path, int):  # as os.lchown: an fd is not a path
            self.real["lchown"](path, uid, gid)
            return
        self._call("lchown", path, None, call, uid, gid)

    def utime(
        self,
        path: Any,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        kw: dict[str, Any] = {"follow_symlinks": follow_symlinks}
        if times is not None:
            kw["times"] = times
        if ns is not None:
            kw["ns"] = ns
        if times is not None and ns is not None:
            self.real["utime"](path, dir_fd=dir_fd, **kw)  # (its ValueError)
            return
        spec: tuple[tuple[int, int], tuple[int, int]] | None = None
        if times is not None:
            spec = (_timespec(times[0]), _timespec(times[1]))
        elif ns is not None:
            spec = (divmod(ns[0], 10**9), divmod(ns[1], 10**9))
        flags = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW

        def call(d: int, p: str | None) -> None:
            self.proc.sys_utimensat(d, p, spec, 0 if p is None else flags)

        self._call("utime", path, dir_fd, call, **kw)

    def truncate(self, path: Any, length: int) -> None:
        def call(d: int, p: str | None) -> None:
            if p is None:
                self.proc.sys_ftruncate(d, length)
            else:
                self.proc.sys_truncate(p if p.startswith("/") else os.path.abspath(p), length)

        self._call("truncate", path, None, call, length)

    def setxattr(
        self,
        path: Any,
        attribute: Any,
        value: bytes,
        flags: int = 0,
        *,
        follow_symlinks: bool = True,
    ) -> None:
        at = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
        name = _name(attribute)

        def call(d: int, p: str | None) -> None:
            self.proc.sys_setxattrat(d, p, at, name, bytes(value), flags)

        self._call(
            "setxattr", path, None, call, attribute, value, flags, follow_symlinks=follow_symlinks
        )

    def getxattr(self, path: Any, attribute: Any, *, follow_symlinks: bool = True) -> bytes:
        at = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
        name = _name(attribute)

        def call(d: int, p: str | None) -> bytes:
            return self.proc.sys_getxattrat(d, p, at, name, XATTR_SIZE_MAX)

        value: bytes = self._call(
            "getxattr", path, None, call, attribute, follow_symlinks=follow_symlinks
        )
        return value

    def listxattr(self, path: Any = None, *, follow_symlinks: bool = True) -> list[str]:
        at = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW

        def call(d: int, p: str | None) -> list[str]:
            raw = self.proc.sys_listxattrat(d, p, at, XATTR_SIZE_MAX)
            return [os.fsdecode(n) for n in raw.split(b"\0") if n]

        if path is None:
            return self.real["listxattr"](follow_symlinks=follow_symlinks)  # type: ignore[no-any-return]
        names: list[str] = self._call(
            "listxattr", path, None, call, follow_symlinks=follow_symlinks
        )
        return names

    def removexattr(self, path: Any, attribute: Any, *, follow_symlinks: bool = True) -> None:
        at = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
        name = _name(attribute)

        def call(d: int, p: str | None) -> None:
            self.proc.sys_removexattrat(d, p, at, name)

        self._call("removexattr", path, None, call, attribute, follow_symlinks=follow_symlinks)
