"""Processes and their fd tables; the kernel side of the fd syscalls.

Mostly argument checking and bookkeeping, as in ``fs/file.c`` and
``fs/fcntl.c``.  Two fd tables share one interface:

* ``RealBackedFdTable`` -- for the process that *is* this Python process (the
  one the redirection routes to).  Every mock fd number is held by a real fd,
  a dup of a kernel-owned placeholder memfd, so the real OS hands out the
  lowest free number and a later real ``open`` can never collide with a mock
  fd.  ``FD_CLOEXEC`` lives on that real fd too, so ``os.get_inheritable``
  and ``exec`` see the truth.
* ``VirtualFdTable`` -- for extra simulated processes: numbers only.
"""

from __future__ import annotations

import fcntl as _fcntl
import os
from collections.abc import Callable
from errno import EBADF, EINVAL, EMFILE, ENOTTY
from typing import TYPE_CHECKING

from .errors import kerr
from .fs import FMODE_LSEEK, FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE, File
from .mm import PAGE_SIZE, MappedFile, Vma, build_mapping
from .realfd import REAL
from .uaccess import copy_from_user

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["FdTable", "Process", "RealBackedFdTable", "VirtualFdTable"]

FIONBIO = 0x5421
FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIOASYNC = 0x5452
FIOQSIZE = 0x5460

_SETFL_MASK = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_NOATIME | 0o20000  # FASYNC
_OPEN_DROP = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_CLOEXEC
O_LARGEFILE = 0o100000


class FdTable:
    """Which numbers are taken and their close-on-exec bit (``struct fdtable``)."""

    def __init__(self, rlimit: int) -> None:
        self.files: dict[int, File] = {}
        self.rlimit = rlimit

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        raise NotImplementedError

    def free_number(self, fd: int) -> None:
        raise NotImplementedError

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        """Make ``fd`` a mock number (dup2/dup3 target), closing what was there."""
        raise NotImplementedError

    def get_cloexec(self, fd: int) -> bool:
        raise NotImplementedError

    def set_cloexec(self, fd: int, on: bool) -> None:
        raise NotImplementedError

    def is_real_fd(self, fd: int) -> bool:
        """True when ``fd`` is open in the real OS but not a mock fd (never, when virtual)."""
        return False


class RealBackedFdTable(FdTable):
    def __init__(self, rlimit: int, placeholder: Callable[[str], int]) -> None:
        super().__init__(rlimit)
        self._placeholder = placeholder

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        if minfd >= self.rlimit:
            raise kerr(EINVAL)
        cmd = _fcntl.F_DUPFD_CLOEXEC if cloexec else _fcntl.F_DUPFD
        fd: int = REAL.fcntl(self._placeholder(label), cmd, minfd)
        if fd >= self.rlimit:
            REAL.close(fd)
            raise kerr(EMFILE)
        return fd

    def free_number(self, fd: int) -> None:
        REAL.close(fd)

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        REAL.dup2(source, fd, not cloexec)

    def get_cloexec(self, fd: int) -> bool:
        return not os.get_inheritable(fd)

    def set_cloexec(self, fd: int, on: bool) -> None:
        os.set_inheritable(fd, not on)

    def is_real_fd(self, fd: int) -> bool:
        if fd in self.files or fd < 0:
            return False
        try:
            REAL.fcntl(fd, _fcntl.F_GETFD)
        except OSError:
            return False
        return True


class VirtualFdTable(FdTable):
    def __init__(self, rlimit: int) -> None:
        super().__init__(rlimit)
        self.cloexec: set[int] = set()

    def alloc(self, minfd: int, cloexec: bool, label: str) -> int:
        if minfd >= self.rlimit:
            raise kerr(EINVAL)
        fd = minfd
        while fd in self.files:
            fd += 1
        if fd >= self.rlimit:
            raise kerr(EMFILE)
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        return fd

    def free_number(self, fd: int) -> None:
        self.cloexec.discard(fd)

    def take_number(self, fd: int, cloexec: bool, source: int) -> None:
        self.set_cloexec(fd, cloexec)

    def get_cloexec(self, fd: int) -> bool:
        return fd in self.cloexec

    def set_cloexec(self, fd: int, on: bool) -> None:
        if on:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)


class Process:
    """A task with an fd table.  Syscall methods raise ``OSError`` with the kernel's errno."""

    def __init__(self, kernel: Kernel, pid: int, fdt: FdTable, name: str) -> None:
        self.kernel = kernel
        self.pid = pid
        self.fdt = fdt
        self.files = fdt.files  # the hot path looks fds up here
        self.name = name
        self.exited = False

    def __repr__(self) -> str:
        return f"<Process {self.pid} {self.name} fds={sorted(self.files)}>"

    # -- fd table primitives (kernel names) --------------------------------------------
    def get_unused_fd(self, cloexec: bool, label: str = "file", minfd: int = 0) -> int:
        return self.fdt.alloc(minfd, cloexec, label)

    def fd_install(self, fd: int, file: File) -> None:
        """Publish ``file`` at ``fd``; the caller's reference now belongs to the table."""
        self.files[fd] = file
        k = self.kernel
        if k.tracer.enabled:
            k.tracer.emit("fd.install", pid=self.pid, fd=fd, file=file.id, kind=file.f_op.name)

    def install_file(self, file: File, cloexec: bool) -> int:
        """``get_unused_fd_flags`` + ``fd_install``; on failure the caller keeps its ref."""
        fd = self.fdt.alloc(0, cloexec, file.f_op.name)
        self.fd_install(fd, file)
        return fd

    def fget(self, fd: int) -> File:
        """A referenced file for ``fd``; ``EBADF`` when there is none."""
        file = self.files.get(fd)
        if file is None:
            raise kerr(EBADF)
        return file.get()

    def fdget(self, fd: int) -> File:
        """The file for ``fd`` without a reference (the caller must not keep it)."""
        file = self.files.get(fd)
        if file is None:
            raise kerr(EBADF)
        return file

    # -- syscalls --------------------------------------------------------------------------
    def sys_open(self, path: str, flags: int, mode: int = 0o666) -> int:
        file = self.kernel.vfs.open(path, flags, mode)
        try:
            return self.install_file(file, bool(flags & os.O_CLOEXEC))
        except BaseException:
            file.put()
            raise

    def sys_close(self, fd: int) -> None:
        file = self.files.pop(fd, None)
        if file is None:
            raise kerr(EBADF)
        self.fdt.free_number(fd)
        k = self.kernel
        if k.tracer.enabled:
            k.tracer.emit("fd.close", pid=self.pid, fd=fd, file=file.id)
        file.put()

    def forget_fd(self, fd: int) -> None:
        """The real OS reused ``fd`` (a real dup2 onto a mock number): drop the mock file."""
        file = self.files.pop(fd, None)
        if file is not None:
            if self.kernel.tracer.enabled:
                self.kernel.tracer.emit("fd.close", pid=self.pid, fd=fd, file=file.id)
            file.put()

    def sys_dup(self, fd: int) -> int:
        return self._dupfd(fd, 0, cloexec=False)

    def _dupfd(self, fd: int, minfd: int, cloexec: bool) -> int:
        file = self.fget(fd)
        try:
            new = self.fdt.alloc(minfd, cloexec, file.f_op.name)
        except BaseException:
            file.put()
            raise
        self.fd_install(new, file)
        return new

    def sys_dup3(self, oldfd: int, newfd: int, flags: int) -> int:
        if flags & ~os.O_CLOEXEC:
            raise kerr(EINVAL)
        if oldfd == newfd:
            raise kerr(EINVAL)
        return self._dup_to(oldfd, newfd, bool(flags & os.O_CLOEXEC))

    def sys_dup2(self, oldfd: int, newfd: int) -> int:
        if oldfd == newfd:
            self.fdget(oldfd)
            return newfd
        return self._dup_to(oldfd, newfd, False)

    def _dup_to(self, oldfd: int, newfd: int, cloexec: bool) -> int:
        if newfd < 0 or newfd >= self.fdt.rlimit:
            raise kerr(EBADF)
        file = self.fget(oldfd)
        try:
            self.fdt.take_number(newfd, cloexec, oldfd)
        except BaseException:
            file.put()
            raise
        old = self.files.get(newfd)
        self.fd_install(newfd, file)
        if old is not None:
            old.put()
        return newfd

    def sys_fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        file = self.fdget(fd)
        if cmd in (_fcntl.F_DUPFD, _fcntl.F_DUPFD_CLOEXEC):
            if arg < 0:
                raise kerr(EINVAL)
            return self._dupfd(fd, arg, cloexec=cmd == _fcntl.F_DUPFD_CLOEXEC)
        if cmd == _fcntl.F_GETFD:
            return _fcntl.FD_CLOEXEC if self.fdt.get_cloexec(fd) else 0
        if cmd == _fcntl.F_SETFD:
            self.fdt.set_cloexec(fd, bool(arg & _fcntl.FD_CLOEXEC))
            return 0
        if cmd == _fcntl.F_GETFL:
            return file.f_flags
        if cmd == _fcntl.F_SETFL:
            file.f_flags = (file.f_flags & ~_SETFL_MASK) | (arg & _SETFL_MASK)
            return 0
        raise kerr(EINVAL)

    def sys_ioctl(self, fd: int, cmd: int, arg: int) -> int:
        file = self.fdget(fd)
        vfs = _VFS_IOCTLS.get(cmd)
        if vfs is not None:
            return vfs(self, fd, file, arg)
        op = file.f_op
        return op.unlocked_ioctl(file, cmd, arg)

    def sys_read(self, fd: int, count: int) -> bytes:
        return self.fdget(fd).vfs_read(count, None)

    def sys_pread(self, fd: int, count: int, pos: int) -> bytes:
        if pos < 0:
            raise kerr(EINVAL)
        return self.fdget(fd).vfs_read(count, pos)

    def sys_write(self, fd: int, data: bytes) -> int:
        return self.fdget(fd).vfs_write(data, None)

    def sys_pwrite(self, fd: int, data: bytes, pos: int) -> int:
        if pos < 0:
            raise kerr(EINVAL)
        return self.fdget(fd).vfs_write(data, pos)

    def sys_lseek(self, fd: int, offset: int, whence: int) -> int:
        return self.fdget(fd).vfs_llseek(offset, whence)

    def sys_fstat(self, fd: int) -> os.stat_result:
        return self.fdget(fd).inode.stat_result()

    def sys_mmap(
        self, fd: int, length: int, flags: int, prot: int, access: int, offset: int
    ) -> MappedFile:
        file = self.fdget(fd)
        if length <= 0 or offset < 0 or offset % PAGE_SIZE:
            raise kerr(EINVAL)
        op = file.f_op.mmap
        if op is None:
            raise kerr(19)  # ENODEV: do_mmap without ->mmap
        if not file.f_mode & FMODE_READ:
            raise kerr(13)  # EACCES
        vma = Vma(length=length, pgoff=offset // PAGE_SIZE, prot=prot, flags=flags)
        op(file, vma)
        file.get()  # the mapping's reference, dropped on munmap (close or GC)
        try:
            m = build_mapping(vma, access, file.put)
        except BaseException:
            file.put()
            raise
        if self.kernel.tracer.enabled:
            self.kernel.tracer.emit("mm.mmap", pid=self.pid, fd=fd, file=file.id, length=length)
        return m

    def exit(self) -> None:
        """``exit_files``: close every fd, as the kernel does when a process ends."""
        for fd in sorted(self.files):
            self.sys_close(fd)
        self.exited = True


# -- do_vfs_ioctl: commands the core answers before the driver sees them ----------------
def _fioclex(proc: Process, fd: int, file: File, arg: int) -> int:
    proc.fdt.set_cloexec(fd, True)
    return 0


def _fionclex(proc: Process, fd: int, file: File, arg: int) -> int:
    proc.fdt.set_cloexec(fd, False)
    return 0


def _fionbio(proc: Process, fd: int, file: File, arg: int) -> int:
    on = int.from_bytes(copy_from_user(arg, 4), "little", signed=True)
    if on:
        file.f_flags |= os.O_NONBLOCK
    else:
        file.f_flags &= ~os.O_NONBLOCK
    return 0


def _fioasync(proc: Process, fd: int, file: File, arg: int) -> int:
    on = int.from_bytes(copy_from_user(arg, 4), "little", signed=True)
    if on:
        file.f_flags |= 0o20000
    else:
        file.f_flags &= ~0o20000
    return 0


def _fioqsize(proc: Process, fd: int, file: File, arg: int) -> int:
    raise kerr(ENOTTY)  # only directories, links and regular files answer it


_VFS_IOCTLS = {
    FIOCLEX: _fioclex,
    FIONCLEX: _fionclex,
    FIONBIO: _fionbio,
    FIOASYNC: _fioasync,
    FIOQSIZE: _fioqsize,
}


def open_flags_to_file(flags: int) -> tuple[int, int]:
    """(f_flags, f_mode) for an ``open(2)`` of a device node."""
    acc = flags & os.O_ACCMODE
    mode = FMODE_PREAD | FMODE_PWRITE | FMODE_LSEEK
    if acc in (os.O_RDONLY, os.O_RDWR):
        mode |= FMODE_READ
    if acc in (os.O_WRONLY, os.O_RDWR):
        mode |= FMODE_WRITE
    return (flags & ~_OPEN_DROP) | O_LARGEFILE, mode
