"""The redirection's ``open()`` (``builtins.open``/``io.open``): a mock fd or mock path
becomes a Python file object whose I/O and close go to the syscall layer.

As CPython's ``io.open``: the arguments are checked first (``_pyio.open``'s checks),
then the raw file is made and buffered/wrapped by the mode; opening a directory is
``IsADirectoryError`` (``FileIO`` refuses it after the open); a failure while wrapping
closes the raw file.
"""

from __future__ import annotations

import io
import os
import stat as _stat
from collections.abc import Callable
from errno import EISDIR
from typing import TYPE_CHECKING, Any

from ..errors import NotMine
from ..syscalls import AT_FDCWD
from ..vfs import _ROOTS
from .paths import mockable

if TYPE_CHECKING:
    from ..process import Process
    from .redirect import Redirection

__all__ = ["OpenCalls", "check_open_args", "mode_flags"]


def check_open_args(mode: Any, buffering: Any, encoding: Any, errors: Any, newline: Any) -> None:
    """The argument checks ``open()`` makes before it opens anything (as ``_pyio.open``)."""
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    if not isinstance(buffering, int):
        raise TypeError(f"'{type(buffering).__name__}' object cannot be interpreted as an integer")
    for name, value in (("encoding", encoding), ("errors", errors), ("newline", newline)):
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"open() argument '{name}' must be str or None, not {type(value).__name__}"
            )
    modes = set(mode)
    if modes - set("axrwb+t") or len(mode) > len(modes):
        raise ValueError(f"invalid mode: '{mode}'")
    n_rwxa = sum(c in modes for c in "xrwa")
    if n_rwxa > 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    if n_rwxa == 0:
        raise ValueError(
            "Must have exactly one of create/read/write/append mode and at most one plus"
        )
    if "t" in modes and "b" in modes:
        raise ValueError("can't have text and binary mode at once")
    if "b" in modes:
        for name, value in (
            ("an encoding", encoding),
            ("an errors", errors),
            ("a newline", newline),
        ):
            if value is not None:
                raise ValueError(f"binary mode doesn't take {name} argument")


def mode_flags(mode: str) -> tuple[int, str]:
    """(open flags, raw FileIO mode) for an ``open()`` mode string."""
    plus = "+" in mode
    if "r" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_RDONLY), "r"
    elif "w" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_TRUNC, "w"
    elif "a" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_APPEND, "a"
    elif "x" in mode:
        flags, raw = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_EXCL, "x"
    else:
        raise ValueError(f"invalid mode: {mode!r}")
    return flags, raw + ("+" if plus else "") + "b"


class MockFileIO(io.FileIO):
    """``open()`` of a mock fd: a FileIO whose I/O and close go to the kernel."""

    _mk_proc: Process
    _mk_fd: int
    _mk_closefd: bool

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._mk_proc.sys_read(self._mk_fd, len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._mk_proc.sys_read(self._mk_fd, size)

    def readall(self) -> bytes:
        out = bytearray()
        while True:
            chunk = self._mk_proc.sys_read(self._mk_fd, 65536)
            if not chunk:
                return bytes(out)
            out += chunk

    def write(self, b: Any) -> int:
        return self._mk_proc.sys_write(self._mk_fd, bytes(b))

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._mk_proc.sys_lseek(self._mk_fd, pos, whence)

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def seekable(self) -> bool:
        try:
            self.tell()
        except OSError:
            return False
        return True

    def close(self) -> None:
        if not self.closed and self._mk_closefd and self._mk_fd in self._mk_proc.files:
            try:
                self._mk_proc.sys_close(self._mk_fd)
            finally:
                super().close()
        else:
            super().close()


def wrap_raw(
    raw: MockFileIO,
    mode: str,
    buffering: int,
    encoding: str | None,
    errors: str | None,
    newline: str | None,
) -> Any:
    """Buffer and wrap ``raw`` as ``io.open`` does for ``mode``."""
    binary = "b" in mode
    line_buffering = buffering == 1 and not binary
    if buffering in (1, -1):
        buffering = io.DEFAULT_BUFFER_SIZE
    if buffering == 0:
        if not binary:
            raise ValueError("can't have unbuffered text I/O")
        return raw
    buf: Any
    if "+" in mode:
        buf = io.BufferedRandom(raw, buffering)
    elif "r" in mode:
        buf = io.BufferedReader(raw, buffering)
    else:
        buf = io.BufferedWriter(raw, buffering)
    if binary:
        return buf
    return io.TextIOWrapper(buf, encoding, errors, newline, line_buffering)


class OpenCalls:
    """``builtins.open`` for one redirection (a bound method)."""

    def __init__(self, redir: Redirection) -> None:
        self.proc = redir.proc
        self.files = redir.proc.files
        self.paths = redir.paths
        self.real: Any = redir.real
        self._real_open: Callable[..., Any] = redir.real.builtin_open

    def wrap_fd(self, fd: int, mode: str, args: tuple[Any, ...], closefd: bool, name: Any) -> Any:
        """A file object over the mock fd ``fd``; ``args``: buffering, encoding, errors,
        newline."""
        _flags, rawmode = mode_flags(mode)
        raw = MockFileIO(fd, rawmode, closefd=False)
        raw._mk_proc = self.proc
        raw._mk_fd = fd
        raw._mk_closefd = closefd
        raw.name = name
        try:
            if _stat.S_ISDIR(self.proc.sys_fstat(fd).st_mode):
                raise IsADirectoryError(EISDIR, os.strerror(EISDIR), name)
            return wrap_raw(raw, mode, *args)
        except BaseException:
            raw.close()  # as io.open does: the raw file it made is closed on failure
            raise

    def open_path(self, p: str, file: Any, mode: str, args: tuple[Any, ...]) -> Any:
        """``open(path)`` of a path that may be mock; ``NotMine`` when it is not."""
        flags, _ = mode_flags(mode)
        fd = self.paths.open_at(p, AT_FDCWD, flags, 0o666, file)
        if fd not in self.files:  # a snapshot of an attribute: a real memfd
            f = self.real.builtin_open(fd, mode, *args, True)
            raw: Any = getattr(getattr(f, "buffer", f), "raw", f)
            raw.name = file
            return f
        return self.wrap_fd(fd, mode, args, True, file)

    def builtin_open(
        self,
        file: Any,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        closefd: bool = True,
        opener: Callable[[str, int], int] | None = None,
    ) -> Any:
        if type(file) is str and not file.startswith(_ROOTS):  # a host path: ``mockable``'s
            return self._real_open(  # answer, in one test
                file, mode, buffering, encoding, errors, newline, closefd, opener
            )
        if opener is None:
            args = (buffering, encoding, errors, newline)
            if isinstance(file, int):
                if file in self.files:
                    check_open_args(mode, *args)
                    return self.wrap_fd(file, mode, args, closefd, file)
            else:
                p = mockable(file)
                if p is not None:
                    check_open_args(mode, *args)
                    try:
                        return self.open_path(p, file, mode, args)
                    except NotMine as e:
                        if e.path is not None:
                            file = e.path
        return self.real.builtin_open(
            file, mode, buffering, encoding, errors, newline, closefd, opener
        )
