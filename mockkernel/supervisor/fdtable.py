"""RemoteFdTable: a supervised process's fd table, numbered by real fds in the child.

A mock fd is a real fd in the child too: a dup of the kernel's placeholder memfd for
its kind, installed with ``SECCOMP_IOCTL_NOTIF_ADDFD`` while the child waits in the
syscall that made it.  So the child's real kernel hands out the lowest free number
(Linux's numbering), a later real ``open`` never collides with a mock fd, ``exec``
closes the ``O_CLOEXEC`` ones, and ``/proc/<pid>/fd`` lists them.  The table mirrors
close-on-exec; the real bit is set by the same syscall, which the supervisor lets
the real kernel run after the mock one (``F_SETFD``, ``FIOCLEX``).
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable
from errno import EBADF, EINVAL

from ..errors import kerr
from ..fs import File
from ..process import FdTable, Process
from ..realfd import REAL
from .notify import Listener

__all__ = ["RemoteFdTable"]


def real_fd_open(pid: int, fd: int) -> bool:
    """Is ``fd`` open in the real process ``pid`` (the real ``/proc``, never the mock's)?"""
    try:
        REAL.lstat(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return False
    return True


def real_fd_is_dir(pid: int, fd: int) -> bool:
    """Is ``fd`` of the real process ``pid`` an open directory?"""
    try:
        return stat.S_ISDIR(REAL.stat(f"/proc/{pid}/fd/{fd}").st_mode)
    except OSError:
        return False


class RemoteFdTable(FdTable):
    """An fd table whose numbers live in another process (a supervised child)."""

    def __init__(
        self, rlimit: int, pid: int, listener: Listener, placeholder: Callable[[str], int]
    ) -> None:
        super().__init__(rlimit)
        self.pid = pid
        self.listener = listener
        self._placeholder = placeholder
        self.cloexec: set[int] = set()
        #: the processes sharing this table (``CLONE_FILES`` without ``CLONE_THREAD``:
        #: one ``files_struct``, several users); ``pid`` is a live one of them
        self.users: set[int] = {pid}
        #: ``closer(pid, fd)`` closes ``fd`` in process ``pid`` (an injected ``close``,
        #: set by the supervisor): for a reserved number given back (:meth:`put_unused`)
        self.closer: Callable[[int, int], None] | None = None

    def copy(self, pid: int) -> RemoteFdTable:
        """The table a ``fork`` gives the child ``pid``: the same files, one more
        reference each (``dup_fd``).  The caller installs the files."""
        t = RemoteFdTable(self.rlimit, pid, self.listener, self._placeholder)
        t.cloexec = set(self.cloexec)
        t.closer = self.closer
        return t

    def _lowest_free(self, minfd: int) -> int:
        try:
            used = {int(n) for n in REAL.listdir(f"/proc/{self.pid}/fd")}
        except OSError:
            raise kerr(EBADF) from None
        fd = minfd
        while fd in used or fd in self.files:
            fd += 1
        return fd

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        if minfd >= self.rlimit:
            raise kerr(EINVAL)
        src = self._placeholder(label)
        want = None if minfd == 0 else self._lowest_free(minfd)
        fd = self.listener.addfd(src, want, cloexec)
        self.set_mirror(fd, cloexec)
        return fd

    def free_number(self, fd: int) -> None:
        """The real number is closed by the child's own syscall (the supervisor lets
        ``close`` continue to the real kernel) or by its exit."""
        self.cloexec.discard(fd)

    def put_unused(self, fd: int) -> None:
        """A reserved number given back: the placeholder :meth:`alloc` installed in the
        child at once (no other thread may take the number meanwhile, as Linux's
        ``open_fds`` bit says) is closed there, so the number is free again."""
        self.cloexec.discard(fd)
        if self.closer is not None:
            # (the process is gone, or no thread of it could run the close)
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.closer(self.pid, fd)

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        file: File | None = self.files.get(source)
        label = file.f_op.name if file is not None else "file"
        self.listener.addfd(self._placeholder(label), fd, cloexec)
        self.set_mirror(fd, cloexec)

    def install_over(self, fd: int, cloexec: bool, label: str) -> None:
        """Put a placeholder of ``label`` at ``fd``, closing the real file there (ADDFD
        with SETFD): a real socket that became a mock one keeps its number."""
        self.listener.addfd(self._placeholder(label), fd, cloexec)
        self.set_mirror(fd, cloexec)

    def get_cloexec(self, fd: int) -> bool:
        return fd in self.cloexec

    def set_cloexec(self, fd: int, on: bool) -> None:
        """Mirror only: the syscall that asked is then run by the real kernel too."""
        self.set_mirror(fd, on)

    def set_mirror(self, fd: int, on: bool) -> None:
        if on:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)

    def is_real_fd(self, fd: int) -> bool:
        if fd in self.files or fd < 0:
            return False
        return real_fd_open(self.pid, fd)


def install_over(proc: Process, fd: int, file: File, cloexec: bool) -> None:
    """Publish mock ``file`` at the child's *real* fd ``fd`` (a host socket or inotify
    instance that becomes the mock's under the same number): the placeholder is laid
    over the real file (``ADDFD``) and the mock table takes ``file``'s reference."""
    with proc.files_lock:
        fdt = proc.fdt
        assert isinstance(fdt, RemoteFdTable)
        fdt.install_over(fd, cloexec, file.f_op.name)
        proc.fd_install(fd, file)
