"""The redirection's path family: ``os.open`` (its slow path), ``os.stat/lstat/access/
readlink/listdir/scandir``, and ``listdir``/``scandir`` of a mock directory fd.

Each function decides "may this be the mock's?" cheaply (an absolute path under
``/dev``, ``/sys`` or ``/proc``, or a ``dir_fd`` that is a mock fd), asks the syscall
layer (``Process.sys_openat``, ``sys_newfstatat``, ...), and makes the real call when
the layer answers :class:`~mockkernel.errors.NotMine`.  An overlay directory (``/dev``)
lists the real entries and the mock ones together.
"""

from __future__ import annotations

import os
import stat as _stat
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ForkedKernelError, NotMine
from ..fs import DT_DIR, DT_LNK, DT_REG
from ..syscalls import AT_EACCESS, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from ..syscalls.namei import AT_REMOVEDIR, lookup_open_at
from ..syscalls.readdir import parse_dirents64
from ..vfs import _ROOTS, Attr, Dir, Vfs, d_type

if TYPE_CHECKING:
    from .redirect import Redirection

__all__ = ["PathCalls", "as_str", "mockable", "with_name"]

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DENTS_CHUNK = 32768


def as_str(path: Any) -> str | None:
    """A path argument as a str (``None``: not a path, e.g. an fd number)."""
    if type(path) is str:
        return path
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if isinstance(path, os.PathLike):
        q = os.fspath(path)
        return q if isinstance(q, str) else os.fsdecode(q)
    return None


def mockable(path: Any) -> str | None:
    """The path as a str if it could name a mock file, else None (real at once)."""
    p = as_str(path)
    return p if p is not None and p.startswith(_ROOTS) else None


def _absolute(path: str) -> str:
    """A host path for the layer: relative ones are made absolute (the real cwd)."""
    return path if path.startswith("/") else os.path.join(os.getcwd(), path)


def with_name(e: OSError, path: Any) -> OSError:
    """``e`` with the caller's path as its ``filename`` (as the real call reports it)."""
    if isinstance(e, ForkedKernelError):
        e.filename = path
        return e
    return OSError(e.errno, e.strerror, path)


class DirEntry:
    """What ``os.scandir`` yields for a mock entry (the real ``DirEntry`` cannot be built):
    the type comes from ``d_type``; ``stat()`` asks the layer (through the dir fd for a
    listing by fd, as CPython's ``fstatat``)."""

    def __init__(
        self, stat: Callable[..., os.stat_result], path: str, name: str, ino: int, dtype: int
    ) -> None:
        self._stat = stat
        self.name = name
        self.path = path
        self._ino = ino
        self._dtype = dtype

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"

    def inode(self) -> int:
        return self._ino

    def is_symlink(self) -> bool:
        return self._dtype == DT_LNK

    def _is(self, dtype: int, test: Callable[[int], bool], follow_symlinks: bool) -> bool:
        if self._dtype != DT_LNK or not follow_symlinks:
            return self._dtype == dtype
        try:
            return test(self.stat().st_mode)
        except OSError:
            return False

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(DT_DIR, _stat.S_ISDIR, follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(DT_REG, _stat.S_ISREG, follow_symlinks)

    def is_junction(self) -> bool:
        return False

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return self._stat(follow_symlinks)


class ScandirIterator:
    def __init__(self, entries: list[Any], done: Callable[[], None] | None = None) -> None:
        self._it = iter(entries)
        self._done = done

    def __iter__(self) -> ScandirIterator:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        self._it = iter(())
        done, self._done = self._done, None
        if done is not None:
            done()

    def __enter__(self) -> ScandirIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PathCalls:
    """The path-family replacements of one redirection (bound methods)."""

    def __init__(self, redir: Redirection) -> None:
        self.proc = proc = redir.proc
        self.files = proc.files
        self.kernel = redir.kernel
        self.real: Any = redir.real
        self.real_more: Mapping[str, Any] = redir.real_more
        # the real functions the fast paths call (a host path: one prefix test, then these)
        self._real_stat: Callable[..., os.stat_result] = redir.real.stat
        self._real_lstat: Callable[..., os.stat_result] = redir.real.lstat
        self._real_access: Callable[..., bool] = redir.real.access
        self._real_listdir: Callable[..., list[Any]] = redir.real.listdir
        self._real_scandir: Callable[..., Any] = redir.real.scandir

    @property
    def vfs(self) -> Vfs:
        """The kernel's VFS, asked for when a listing needs it (not at install: a kernel
        whose boot is deferred is not used by installing its redirection)."""
        return self.kernel.subsys(Vfs)

    def at(self, path: Any, dir_fd: Any) -> tuple[str, int] | None:
        """``(path, dirfd)`` for the layer, or None: the real call at once."""
        if dir_fd is None:
            p = mockable(path)
            return None if p is None else (p, AT_FDCWD)
        if type(dir_fd) is int and dir_fd in self.files:  # relative to a mock directory
            p = as_str(path)
            return None if p is None else (p, dir_fd)
        p = mockable(path)  # an absolute path ignores a real dirfd
        return None if p is None else (p, dir_fd)

    # -- open -------------------------------------------------------------------------
    def snapshot(self, node: Attr, path: str, flags: int) -> int:
        """An ``Attr`` opens as a real memfd holding its text (read at real-file speed)."""
        if flags & os.O_DIRECTORY:
            raise OSError(20, os.strerror(20), path)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise OSError(13, os.strerror(13), path)
        fd = os.memfd_create(path.rsplit("/", 1)[-1], os.MFD_CLOEXEC)
        try:
            data = node.show().encode()
            if data:
                self.real.pwrite(fd, data, 0)
            # opened again read-only, as the program asked: F_GETFL, and EBADF for a
            # write (a splice or tee into it too), are Linux's
            return int(self.real.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC))
        finally:
            self.real.close(fd)

    def open_at(self, p: str, dirfd: int, flags: int, mode: int, name: Any) -> int:
        """``openat`` through the layer (``NotMine`` passes through); an ``Attr`` opened
        for reading is a snapshot.  ``name`` is what errors carry."""
        proc = self.proc
        try:
            node = None if flags & os.O_PATH else lookup_open_at(proc, dirfd, p, flags)
            if isinstance(node, Attr):
                return self.snapshot(node, p, flags)
            flags |= os.O_CLOEXEC
            if dirfd == AT_FDCWD:  # os.open without dir_fd: open(2), traced as sys.open
                return proc.sys_open(p, flags, mode, found=node)
            return proc.sys_openat(dirfd, p, flags, mode, found=node)
        except OSError as e:
            raise with_name(e, name) from None

    def open_slow(self, path: Any, flags: int, mode: int, dir_fd: int | None) -> int:
        """``os.open`` of a path that may be mock (hotpath.m_open took the rest)."""
        at = self.at(path, dir_fd)
        if at is not None:
            try:
                return self.open_at(at[0], at[1], flags, mode, path)
            except NotMine as e:
                if e.path is not None:
                    return int(self.real.open(e.path, flags, mode))
        if dir_fd is None:
            return int(self.real.open(path, flags, mode))
        return int(self.real.open(path, flags, mode, dir_fd=dir_fd))

    # -- mkdir, rmdir, unlink, rename: never on the host's files in the mock's trees ------
    def change_at(self, path: Any, dir_fd: Any) -> tuple[str, int] | None:
        """``at`` for a call that changes the tree: a relative path from the current
        directory is made absolute first, so ``os.unlink("null")`` with ``/dev`` the
        current directory is judged by the mock too."""
        if dir_fd is None and not isinstance(path, int):
            p = as_str(path)
            if p is not None and not p.startswith("/"):
                full = os.path.join(os.getcwd(), p)
                return (full, AT_FDCWD) if full.startswith(_ROOTS) else None
        return self.at(path, dir_fd)

    def _change(self, call: Callable[[str, int], None], path: Any, dir_fd: Any) -> bool:
        """Run ``call(path, dirfd)`` if the path may be the mock's; False if the real
        call must run (not the mock's, or ``NotMine``)."""
        at = self.change_at(path, dir_fd)
        if at is None:
            return False
        try:
            call(at[0], at[1])
        except NotMine:
            return False
        except OSError as e:
            raise with_name(e, path) from None
        return True

    def mkdir(self, path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if not self._change(lambda p, d: self.proc.sys_mkdirat(d, p, mode), path, dir_fd):
            self.real_more["mkdir"](path, mode, dir_fd=dir_fd)

    def rmdir(self, path: Any, *, dir_fd: int | None = None) -> None:
        flag = AT_REMOVEDIR
        if not self._change(lambda p, d: self.proc.sys_unlinkat(d, p, flag), path, dir_fd):
            self.real_more["rmdir"](path, dir_fd=dir_fd)

    def unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        if not self._change(lambda p, d: self.proc.sys_unlinkat(d, p, 0), path, dir_fd):
            self.real_more["unlink"](path, dir_fd=dir_fd)

    def remove(self, path: Any, *, dir_fd: int | None = None) -> None:
        self.unlink(path, dir_fd=dir_fd)

    def rename(
        self,
        src: Any,
        dst: Any,
        *,
        src_dir_fd: int | None = None,
        dst_dir_fd: int | None = None,
        key: str = "rename",
    ) -> None:
        a, b = self.change_at(src, src_dir_fd), self.change_at(dst, dst_dir_fd)
        if a is not None or b is not None:
            # a side that cannot be the mock's is given to the layer as a host path
            # (absolute, or relative to the real dirfd: never the mock's)
            sa = a if a is not None else (as_str(src) or "", AT_FDCWD)
            sb = b if b is not None else (as_str(dst) or "", AT_FDCWD)
            try:
                self.proc.sys_renameat2(sa[1], _absolute(sa[0]), sb[1], _absolute(sb[0]))
            except NotMine:
                pass
            except OSError as e:
                raise OSError(e.errno, e.strerror, src, None, dst) from None
            else:
                return
        self.real_more[key](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def replace(
        self, src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
    ) -> None:
        self.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, key="replace")

    # -- stat, access, readlink ----------------------------------------------------------
    def stat(
        self, path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> os.stat_result:
        # a str that is no mock root's, no dir_fd: the real call at once (``at``'s answer)
        if type(path) is str and dir_fd is None and not path.startswith(_ROOTS):
            if follow_symlinks:
                return self._real_stat(path)
            return self._real_stat(path, follow_symlinks=False)
        return self.stat_slow(path, dir_fd, follow_symlinks)

    def stat_slow(self, path: Any, dir_fd: int | None, follow_symlinks: bool) -> os.stat_result:
        """``stat`` of what may be the mock's (an fd, a mock root, a ``dir_fd``, bytes, ...)."""
        if isinstance(path, int) and path in self.files:
            return self.proc.sys_fstat(path)
        at = self.at(path, dir_fd)
        if at is not None:
            flags = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
            try:
                return self.proc.sys_newfstatat(at[1], at[0], flags)
            except NotMine as e:
                if e.path is not None:
                    path, dir_fd = e.path, None
            except OSError as e:
                raise with_name(e, path) from None
        result: os.stat_result = self.real.stat(
            path, dir_fd=dir_fd, follow_symlinks=follow_symlinks
        )
        return result

    def lstat(self, path: Any, *, dir_fd: int | None = None) -> os.stat_result:
        if type(path) is str and dir_fd is None and not path.startswith(_ROOTS):
            return self._real_lstat(path)  # (as stat's fast path)
        if isinstance(path, int):  # as os.lstat: an fd is not a path
            return self.real.lstat(path, dir_fd=dir_fd)  # type: ignore[no-any-return]
        return self.stat_slow(path, dir_fd, False)

    def access(
        self,
        path: Any,
        mode: int,
        *,
        dir_fd: int | None = None,
        effective_ids: bool = False,
        follow_symlinks: bool = True,
    ) -> bool:
        if (
            type(path) is str
            and dir_fd is None
            and not path.startswith(_ROOTS)
            and not effective_ids
            and follow_symlinks
        ):
            return self._real_access(path, mode)  # (as stat's fast path)
        at = None if isinstance(path, int) else self.at(path, dir_fd)
        if at is not None:
            flags = (AT_EACCESS if effective_ids else 0) | (
                0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
            )
            try:
                self.proc.sys_faccessat(at[1], at[0], mode, flags)
            except NotMine as e:
                if e.path is not None:
                    path, dir_fd = e.path, None
            except OSError:
                return False  # os.access never raises
            else:
                return True
        return bool(
            self.real.access(
                path,
                mode,
                dir_fd=dir_fd,
                effective_ids=effective_ids,
                follow_symlinks=follow_symlinks,
            )
        )

    def readlink(self, path: Any, *, dir_fd: int | None = None) -> Any:
        at = None if isinstance(path, int) else self.at(path, dir_fd)
        if at is not None:
            try:
                target = self.proc.sys_readlinkat(at[1], at[0])
            except NotMine as e:
                if e.path is not None:
                    path, dir_fd = e.path, None
            except OSError as e:
                raise with_name(e, path) from None
            else:
                return target if isinstance(path, bytes) else os.fsdecode(target)
        return self.real.readlink(path, dir_fd=dir_fd)

    # -- directories ---------------------------------------------------------------------
    def dents(self, fd: int) -> list[tuple[int, int, int, str]]:
        """Every remaining entry of the mock directory at ``fd`` (``.``/``..`` dropped),
        then back to its start, as CPython's ``listdir(fd)``/``scandir(fd)`` leave it
        (``rewinddir`` on its dup)."""
        proc = self.proc
        out: list[tuple[int, int, int, str]] = []
        while True:
            chunk = proc.sys_getdents64(fd, _DENTS_CHUNK)
            if not chunk:
                break
            out += [d for d in parse_dirents64(chunk) if d[3] not in (".", "..")]
        proc.sys_lseek(fd, 0, os.SEEK_SET)
        return out

    def open_dir(self, path: Any) -> int | None:
        """A mock directory fd for ``path`` (owned directories), None when not the mock's:
        an overlay, or a real path."""
        p = mockable(path)
        if p is None:
            return None
        try:
            return self.open_at(p, AT_FDCWD, _O_DIR, 0, path)
        except NotMine:
            return None

    def listdir(self, path: Any = None) -> list[Any]:
        if type(path) is str and not path.startswith(_ROOTS):
            return self._real_listdir(path)  # (a host path: open_dir and the overlay say so)
        if type(path) is int and path in self.files:
            try:
                return [d[3] for d in self.dents(path)]
            except OSError as e:
                raise with_name(e, path) from None
        if path is None:
            return self.real.listdir()  # type: ignore[no-any-return]
        fd = self.open_dir(path)
        if fd is not None:
            try:
                names = [d[3] for d in self.dents(fd)]
            finally:
                self.proc.sys_close(fd)
            return [os.fsencode(n) for n in names] if isinstance(path, bytes) else names
        p = mockable(path)
        if p is not None:
            try:
                merged = self.vfs.listdir(p)  # an overlay: the real entries and ours
            except OSError as e:
                raise with_name(e, path) from None
            if merged is not None:
                return [os.fsencode(n) for n in merged] if isinstance(path, bytes) else merged
        return self.real.listdir(path)  # type: ignore[no-any-return]

    def scandir(self, path: Any = None) -> Any:
        if type(path) is str and not path.startswith(_ROOTS):
            return self._real_scandir(path)  # (as listdir's fast path)
        if type(path) is int and path in self.files:
            return self.scandir_fd(path)
        if path is None:
            return self.real.scandir()
        fd = self.open_dir(path)
        if fd is not None:
            try:
                dents = self.dents(fd)
            finally:
                self.proc.sys_close(fd)
            where = as_str(path) or ""
            return ScandirIterator([self.entry(where, d) for d in dents])
        p = mockable(path)
        if p is not None:
            return self.scandir_overlay(p, path)
        return self.real.scandir(path)

    def entry(self, dirpath: str, d: tuple[int, int, int, str]) -> DirEntry:
        full = dirpath.rstrip("/") + "/" + d[3]

        def stat(follow: bool) -> os.stat_result:
            return self.stat(full, follow_symlinks=follow)

        return DirEntry(stat, full, d[3], d[0], d[2])

    def scandir_fd(self, fd: int) -> ScandirIterator:
        try:
            dents = self.dents(fd)
        except OSError as e:
            raise with_name(e, fd) from None
        entries = []
        for ino, _off, dtype, name in dents:

            def stat(follow: bool, name: str = name) -> os.stat_result:
                return self.stat(name, dir_fd=fd, follow_symlinks=follow)

            entries.append(DirEntry(stat, name, name, ino, dtype))
        return ScandirIterator(entries)

    def scandir_overlay(self, p: str, path: Any) -> Any:
        """``scandir`` of an overlay directory (``/dev``): the real entries and ours."""
        try:
            node = self.vfs.lookup(p)
        except OSError as e:
            raise with_name(e, path) from None
        if node is None:
            return self.real.scandir(path)
        if not isinstance(node, Dir):
            raise OSError(20, os.strerror(20), path)
        entries: dict[str, Any] = {}
        try:
            with self.real.scandir(p) as it:
                entries = {e.name: e for e in it if self.vfs.host_visible(p, e.name)}
        except OSError:
            pass
        for name, child in node.children.items():
            entries[name] = self.entry(p, (child.ino, 0, d_type(child), name))
        return ScandirIterator([entries[n] for n in sorted(entries)])
