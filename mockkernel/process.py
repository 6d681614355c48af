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

import contextlib
import fcntl as _fcntl
import functools
import inspect
import os
import stat as _stat
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from errno import EBADF, EINVAL, EMFILE, ENOTTY, EOPNOTSUPP, EPERM, ESPIPE, errorcode
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from .context import KernelContext
from .errors import kerr
from .fs import FMODE_LSEEK, FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE, File
from .mm import PAGE_SIZE, MappedFile, Mapping, Vma, build_mapping, page_align
from .realfd import REAL, kernel_dup
from .uaccess import LOCAL, UserMemory, copy_from_user, put_user_u32
from .vfs import Vfs

__all__ = ["FdTable", "Process", "RealBackedFdTable", "TaskContext", "VirtualFdTable"]

FIONBIO = 0x5421
FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIOASYNC = 0x5452
FIOQSIZE = 0x5460
FIGETBSZ = 0x2  # _IO(0x00, 2)
FASYNC = 0o20000
_RWF_HIPRI = 0x1
_PROT_EXEC = 0x4
_PROT_WRITE = 0x2
_MAP_SHARED = 0x01
_MAP_SHARED_VALIDATE = 0x03
_MAP_PRIVATE = 0x02
_MAP_TYPE = 0x0F

# fs/fcntl.c: what F_SETFL may change.  FASYNC is not in it: only a file's ->fasync op
# sets that bit, and no mock file has one (so F_SETFL O_ASYNC is a silent no-op).
_SETFL_MASK = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_NOATIME
_OPEN_DROP = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_CLOEXEC
O_LARGEFILE = 0o100000


class TaskContext(KernelContext, Protocol):
    """The kernel context as layers that deal with tasks see it: the context plus the
    processes and the task each thread (CPU) runs (:class:`mockkernel.Kernel` is one)."""

    #: every process of the kernel, the init process first
    processes: list[Process]
    #: the process that is this Python process
    init_process: Process
    #: the process an installed redirection serves (``/proc/self`` is its), if any
    installed_process: Process | None

    @property
    def current(self) -> Process:
        """The task this thread runs in the kernel (``current``)."""

    def running(self, proc: Process, tid: int | None = None) -> AbstractContextManager[Process]:
        """Make ``proc`` the current task on this thread for a block (``tid``: which of
        its threads, for a supervised program)."""

    @property
    def current_tid(self) -> int | None:
        """The thread of the current task this CPU serves, when the front-end knows it."""

    def spawn(self, name: str = "task") -> Process:
        """A further simulated process with its own (virtual) fd table."""

    def fdinfo(self, proc: Process, fd: int) -> str:
        """``/proc/<pid>/fdinfo/<fd>``."""


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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _shown(value: object) -> object:
    """How an argument or result appears in a trace event: small and JSON-friendly."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    return f"<{type(value).__name__}>"


def _syscall(
    fn: Callable[Concatenate[Process, _P], _R],
) -> Callable[Concatenate[Process, _P], _R]:
    """Trace a syscall as ``sys.<name>`` with its arguments, ``ret`` or ``errno``, and
    ``nested``: how many events the call emitted (they precede it: a syscall's event is
    emitted when it returns), so a viewer can nest them under it.

    With tracing off this is one attribute check and the call.
    """
    event = "sys." + fn.__name__.removeprefix("sys_")
    params = list(inspect.signature(fn).parameters)[1:]

    @functools.wraps(fn)
    def syscall(self: Process, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        tracer = self.kernel.tracer
        if not tracer.enabled:
            return fn(self, *args, **kwargs)
        fields: dict[str, object] = {"pid": self.pid}
        tid = self.kernel.current_tid
        if tid is not None:
            fields["tid"] = tid
        fields.update(zip(params, map(_shown, args), strict=False))
        fields.update((k, _shown(v)) for k, v in kwargs.items())
        if event == "sys.ioctl":
            fields["cmd"] = hex(int(fields["cmd"]))  # type: ignore[call-overload]
            file = self.files.get(int(fields["fd"]))  # type: ignore[call-overload]
            if file is not None:
                fields["file"] = file.id
        began = tracer.seq
        try:
            ret = fn(self, *args, **kwargs)
        except OSError as e:
            fields["nested"] = tracer.seq - began
            tracer.emit(event, **fields, errno=errorcode.get(e.errno or 0, e.errno))
            raise
        fields["nested"] = tracer.seq - began
        tracer.emit(event, **fields, ret=_shown(ret))
        return ret

    return syscall  # type: ignore[return-value]


class Process:
    """A task with an fd table.  Syscall methods raise ``OSError`` with the kernel's errno."""

    def __init__(
        self, kernel: TaskContext, pid: int, fdt: FdTable, name: str, mm: UserMemory = LOCAL
    ) -> None:
        self.kernel = kernel
        self.pid = pid
        #: the address space uaccess reaches while this task is current (``current->mm``)
        self.mm = mm
        self.fdt = fdt
        self.files = fdt.files
        #: ``slots[fd]`` is ``files.get(fd)`` for every fd >= 0 below ``len(slots)``, and no
        #: mock fd is beyond it: the redirection's real-fd path is one list index (cheaper
        #: than a dict probe), an IndexError meaning "real".  Grown in place, never rebound.
        self.slots: list[File | None] = [None] * 64
        #: real fds whose readiness the kernel answers: sockets that became mock when bound
        #: to a mock NIC address (``net/socket.py``); ``select``/``poll`` ask these
        self.fd_pollers: dict[int, Callable[[], int]] = {}
        #: and what ``os.read`` on them reads (their real socket never connects: ENOTCONN)
        self.fd_readers: dict[int, Callable[[int], bytes]] = {}
        self.fd_writers: dict[int, Callable[[bytes], int]] = {}
        self.name = name
        self.exited = False
        # ``files_lock``: serialises changes to the table (lookups are lock-free dict reads)
        self.files_lock = threading.RLock()
        #: live mappings of mock files, by start address (``/proc/<pid>/maps`` shows them)
        self.mappings: dict[int, Mapping] = {}

    def __repr__(self) -> str:
        return f"<Process {self.pid} {self.name} fds={sorted(self.files)}>"

    # -- fd table primitives (kernel names) --------------------------------------------
    def get_unused_fd(self, cloexec: bool, label: str = "file", minfd: int = 0) -> int:
        return self.fdt.alloc(minfd, cloexec, label)

    def fd_install(self, fd: int, file: File) -> None:
        """Publish ``file`` at ``fd``; the caller's reference now belongs to the table."""
        self.files[fd] = file
        slots = self.slots
        if fd >= len(slots):
            slots.extend([None] * (max(fd + 1, 2 * len(slots)) - len(slots)))
        slots[fd] = file
        k = self.kernel
        if k.tracer.enabled:
            k.tracer.emit("fd.install", pid=self.pid, fd=fd, file=file.id, kind=file.f_op.name)

    def install_file(self, file: File, cloexec: bool) -> int:
        """``get_unused_fd_flags`` + ``fd_install``; on failure the caller keeps its ref."""
        with self.files_lock:
            fd = self.fdt.alloc(0, cloexec, file.f_op.name)
            self.fd_install(fd, file)
        return fd

    def fget(self, fd: int) -> File:
        """A referenced file for ``fd``; ``EBADF`` when there is none."""
        file = self.files.get(fd)
        if file is None:
            raise kerr(EBADF)
        return file.get()

    def fget_real(self, fd: int) -> int:
        """A kernel-held real fd for the *real* file at ``fd`` in this process (an eventfd,
        a memfd a program hands a driver); the caller closes it.  ``EBADF`` when ``fd`` is
        a mock fd or not open.  In-process that is a dup; a supervised process's table is
        reached by its front-end (``fget_real_hook``)."""
        if fd in self.files or fd < 0:
            raise kerr(EBADF)
        hook = self.fget_real_hook
        if hook is not None:
            return hook(fd)
        if not self.fdt.is_real_fd(fd):
            raise kerr(EBADF)
        try:
            return kernel_dup(fd)
        except OSError:
            raise kerr(EBADF) from None

    #: set by a front-end whose processes are not this Python process (the supervisor)
    fget_real_hook: Callable[[int], int] | None = None

    @contextlib.contextmanager
    def fdget_real(self, fd: int) -> Iterator[int]:
        """The *real* file at ``fd`` as a real fd of this Python process, for a block
        (``fdget``: no fd is kept).  In-process that is ``fd`` itself, so it needs no
        free fd number (a driver's ``EMFILE`` order stays Linux's); a supervised
        process's file is fetched with :meth:`fget_real` and closed after the block."""
        if self.fget_real_hook is None:
            # this Python process's fds (a virtual process's real fds are its too)
            if fd in self.files or fd < 0:
                raise kerr(EBADF)
            try:
                REAL.fcntl(fd, _fcntl.F_GETFD)
            except OSError:
                raise kerr(EBADF) from None
            yield fd
            return
        real = self.fget_real(fd)
        try:
            yield real
        finally:
            REAL.close(real)

    def fdget(self, fd: int) -> File:
        """The file for ``fd`` without a reference (the caller must not keep it)."""
        file = self.files.get(fd)
        if file is None:
            raise kerr(EBADF)
        return file

    # -- syscalls --------------------------------------------------------------------------
    @_syscall
    def sys_open(self, path: str, flags: int, mode: int = 0o666) -> int:
        k = self.kernel
        if k.current is self:
            file = k.subsys(Vfs).open(path, flags, mode)
        else:
            with k.running(self):  # a driver's ->open sees the caller as current
                file = k.subsys(Vfs).open(path, flags, mode)
        try:
            return self.install_file(file, bool(flags & os.O_CLOEXEC))
        except BaseException:
            file.put()
            raise

    @_syscall
    def sys_close(self, fd: int) -> None:
        with self.files_lock:
            file = self.files.pop(fd, None)
            if file is None:
                raise kerr(EBADF)
            self.slots[fd] = None
            self.fdt.free_number(fd)
        k = self.kernel
        if k.tracer.enabled:
            k.tracer.emit("fd.close", pid=self.pid, fd=fd, file=file.id)
        file.put()

    def forget_fd(self, fd: int) -> None:
        """The real OS reused ``fd`` (a real dup2 onto a mock number): drop the mock file."""
        with self.files_lock:
            file = self.files.pop(fd, None)
            if file is not None:
                self.slots[fd] = None
        if file is not None:
            if self.kernel.tracer.enabled:
                self.kernel.tracer.emit("fd.close", pid=self.pid, fd=fd, file=file.id)
            file.put()

    @_syscall
    def sys_dup(self, fd: int) -> int:
        return self._dupfd(fd, 0, cloexec=False)

    def _dupfd(self, fd: int, minfd: int, cloexec: bool) -> int:
        with self.files_lock:
            file = self.fget(fd)
            try:
                new = self.fdt.alloc(minfd, cloexec, file.f_op.name)
            except BaseException:
                file.put()
                raise
            self.fd_install(new, file)
        return new

    @_syscall
    def sys_dup3(self, oldfd: int, newfd: int, flags: int) -> int:
        if flags & ~os.O_CLOEXEC:
            raise kerr(EINVAL)
        if oldfd == newfd:
            raise kerr(EINVAL)
        return self._dup_to(oldfd, newfd, bool(flags & os.O_CLOEXEC))

    @_syscall
    def sys_dup2(self, oldfd: int, newfd: int) -> int:
        if oldfd == newfd:
            self.fdget(oldfd)
            return newfd
        return self._dup_to(oldfd, newfd, False)

    def _dup_to(self, oldfd: int, newfd: int, cloexec: bool) -> int:
        if newfd < 0 or newfd >= self.fdt.rlimit:
            raise kerr(EBADF)
        with self.files_lock:
            file = self.fget(oldfd)
            try:
                self.fdt.take_number(newfd, cloexec, oldfd)
            except BaseException:
                file.put()
                raise
            old = self.files.get(newfd)
            self.fd_install(newfd, file)
        if old is not None:
            if self.kernel.tracer.enabled:
                self.kernel.tracer.emit("fd.close", pid=self.pid, fd=newfd, file=old.id)
            old.put()
        return newfd

    @_syscall
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
            # setfl(): O_NOATIME needs the owner (or CAP_FOWNER); O_DIRECT needs
            # FMODE_CAN_ODIRECT, which no mock file has
            if arg & os.O_NOATIME and not file.f_flags & os.O_NOATIME:
                euid = os.geteuid()
                if euid not in (0, file.inode.uid):
                    raise kerr(EPERM)
            if arg & os.O_DIRECT:
                raise kerr(EINVAL)
            file.f_flags = (file.f_flags & ~_SETFL_MASK) | (arg & _SETFL_MASK)
            return 0
        raise kerr(EINVAL)

    @_syscall
    def sys_ioctl(self, fd: int, cmd: int, arg: int) -> int:
        file = self.fdget(fd)
        vfs = _VFS_IOCTLS.get(cmd)
        if vfs is not None:
            return vfs(self, fd, file, arg)
        op = file.f_op
        k = self.kernel
        if k.current is self:
            return op.unlocked_ioctl(file, cmd, arg)
        with k.running(self):  # the driver installs new fds (dma_buf_fd) into the caller
            return op.unlocked_ioctl(file, cmd, arg)

    @_syscall
    def sys_read(self, fd: int, count: int) -> bytes:
        return self.fdget(fd).vfs_read(count, None)

    @_syscall
    def sys_pread(self, fd: int, count: int, pos: int) -> bytes:
        if pos < 0:
            raise kerr(EINVAL)
        return self.fdget(fd).vfs_read(count, pos)

    @_syscall
    def sys_write(self, fd: int, data: bytes) -> int:
        return self.fdget(fd).vfs_write(data, None)

    @_syscall
    def sys_pwrite(self, fd: int, data: bytes, pos: int) -> int:
        if pos < 0:
            raise kerr(EINVAL)
        return self.fdget(fd).vfs_write(data, pos)

    @_syscall
    def sys_readv(self, fd: int, total: int, pos: int | None, flags: int = 0) -> bytes:
        """``readv``/``preadv2`` of ``total`` bytes: ``vfs_readv``'s checks, then one read.

        A file without ``->read`` fails with ``EINVAL`` even for an empty vector
        (``FMODE_CAN_READ``); ``RWF_*`` flags other than ``RWF_HIPRI`` are
        ``EOPNOTSUPP`` for a file without ``->read_iter`` (every mock file).
        """
        if pos is not None and pos < 0:
            raise kerr(EINVAL)
        file = self.fdget(fd)
        if pos is not None and not file.f_mode & FMODE_PREAD:
            raise kerr(ESPIPE)
        if not file.f_mode & FMODE_READ:
            raise kerr(EBADF)
        if file.f_op.read is None:
            raise kerr(EINVAL)
        if total == 0:
            return b""
        if flags & ~_RWF_HIPRI:
            raise kerr(EOPNOTSUPP)
        return file.vfs_read(total, pos)

    @_syscall
    def sys_writev(self, fd: int, data: bytes, pos: int | None, flags: int = 0) -> int:
        """``writev``/``pwritev2`` of the gathered ``data`` (``vfs_writev``'s checks)."""
        if pos is not None and pos < 0:
            raise kerr(EINVAL)
        file = self.fdget(fd)
        if pos is not None and not file.f_mode & FMODE_PWRITE:
            raise kerr(ESPIPE)
        if not file.f_mode & FMODE_WRITE:
            raise kerr(EBADF)
        if file.f_op.write is None:
            raise kerr(EINVAL)
        if not data:
            return 0
        if flags & ~_RWF_HIPRI:
            raise kerr(EOPNOTSUPP)
        return file.vfs_write(data, pos)

    @_syscall
    def sys_fsync(self, fd: int, datasync: bool = False) -> None:
        """``fsync``/``fdatasync``: ``EINVAL`` for a file without ``->fsync``."""
        file = self.fdget(fd)
        op = file.f_op.fsync
        if op is None:
            raise kerr(EINVAL)
        op(file, datasync)

    @_syscall
    def sys_ftruncate(self, fd: int, length: int) -> None:
        """``ftruncate``: ``EINVAL`` unless a regular file open for writing.

        No mock file has a truncatable inode (device nodes, dma-bufs and pseudo
        files are not regular; sysfs/debugfs files open read-only), so that is
        every mock fd.
        """
        if length < 0:
            raise kerr(EINVAL)
        file = self.fdget(fd)
        if not _stat.S_ISREG(file.inode.mode) or not file.f_mode & FMODE_WRITE:
            raise kerr(EINVAL)
        raise kerr(EINVAL)

    @_syscall
    def sys_lseek(self, fd: int, offset: int, whence: int) -> int:
        return self.fdget(fd).vfs_llseek(offset, whence)

    @_syscall
    def sys_fstat(self, fd: int) -> os.stat_result:
        return self.fdget(fd).inode.stat_result()

    # -- mmap: the rules are the kernel's; laying the pieces is the front-end's ---------
    def do_mmap(
        self, fd: int, length: int, flags: int, prot: int, offset: int
    ) -> tuple[File, Vma, bool]:
        """The kernel side of ``mmap(2)`` of mock ``fd``: checks, then the driver's op.

        Returns the file (with the mapping's reference taken: :meth:`add_mapping`
        records it, :meth:`remove_mapping` drops it; a caller that fails to lay
        the pieces puts it), the ``Vma`` the op filled, and whether the mapping
        is shared.  Where the pieces are laid is the caller's business: this
        process (``sys_mmap``) or a supervised one (``supervisor/mmap.py``).
        """
        file = self.fdget(fd)
        if length <= 0 or offset < 0 or offset % PAGE_SIZE:
            raise kerr(EINVAL)
        # do_mmap's order: EACCES, then EPERM for PROT_EXEC on a noexec mount -- every
        # anonymous file (a dma-buf, a sync_file) lives on a SB_I_NOEXEC pseudo fs --
        # then ENODEV when the file has no ->mmap
        kind = flags & _MAP_TYPE
        if kind not in (_MAP_SHARED, _MAP_SHARED_VALIDATE, _MAP_PRIVATE):
            raise kerr(EINVAL)  # do_mmap: neither shared nor private
        shared = kind in (_MAP_SHARED, _MAP_SHARED_VALIDATE)
        if shared and prot & _PROT_WRITE and not file.f_mode & FMODE_WRITE:
            raise kerr(13)  # EACCES: a shared writable map of a file not open for writing
        if not file.f_mode & FMODE_READ:
            raise kerr(13)  # EACCES
        if prot & _PROT_EXEC and file.path is None:
            raise kerr(EPERM)
        op = file.f_op.mmap
        if op is None:
            raise kerr(19)  # ENODEV: do_mmap without ->mmap
        vma = Vma(length=length, pgoff=offset // PAGE_SIZE, prot=prot, flags=flags)
        op(file, vma)
        if sum(seg[2] for seg in vma.segments) < vma.length:
            raise kerr(EINVAL, "mmap op did not back the whole mapping")
        file.get()  # the mapping's reference, dropped on munmap (remove_mapping)
        return file, vma, shared

    def add_mapping(self, mp: Mapping) -> None:
        """Record live mapping ``mp`` (its file reference came from :meth:`do_mmap`).

        A reader on another thread (``file_mappings`` while a driver revokes) takes a
        snapshot (``list(proc.mappings.values())``, one step under the GIL) while a
        supervised process maps and unmaps."""
        with self.files_lock:
            self.mappings[mp.start] = mp

    def remove_mapping(self, mp: Mapping, length: int | None = None) -> None:
        """``munmap``: forget ``mp`` and drop its file reference (``length``: the bytes
        unmapped, for the trace; by default the whole mapping)."""
        with self.files_lock:
            if self.mappings.get(mp.start) is mp:
                del self.mappings[mp.start]
        file = mp.file
        if file.released:
            return  # the kernel shut down first and released the file itself
        tracer = self.kernel.tracer
        if tracer.enabled:
            tracer.emit(
                "mm.munmap",
                pid=self.pid,
                file=file.id,
                length=mp.length if length is None else length,
            )
        file.put()

    @_syscall
    def sys_mmap(
        self, fd: int, length: int, flags: int, prot: int, access: int, offset: int
    ) -> MappedFile:
        file, vma, shared = self.do_mmap(fd, length, flags, prot, offset)
        record: list[Mapping] = []

        def munmap() -> None:
            if record:
                self.remove_mapping(record[0], length)
            elif not file.released:
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
        self.add_mapping(mp)
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
    if bool(on) != bool(file.f_flags & FASYNC):
        raise kerr(ENOTTY)  # a change needs the file's ->fasync op; no mock file has one
    return 0


def _figetbsz(proc: Process, fd: int, file: File, arg: int) -> int:
    put_user_u32(arg, file.inode.blksize)  # the superblock's block size
    return 0


def _fioqsize(proc: Process, fd: int, file: File, arg: int) -> int:
    raise kerr(ENOTTY)  # only directories, links and regular files answer it


_VFS_IOCTLS = {
    FIOCLEX: _fioclex,
    FIONCLEX: _fionclex,
    FIONBIO: _fionbio,
    FIOASYNC: _fioasync,
    FIOQSIZE: _fioqsize,
    FIGETBSZ: _figetbsz,
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
