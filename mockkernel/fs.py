"""Files: ``File`` + ``FileOperations``, refcounted as the VFS does.

A ``File`` is what an fd points at.  ``FileOperations`` is the ops table a
driver supplies (``struct file_operations``): every member is optional, a
missing one gives the errno Linux gives.  ``unlocked_ioctl`` defaults to a
lookup in the class's ``ioctls`` table (``{cmd: handler}``), which is how the
hot path stays a dict lookup and a call.

Refcounting: ``fget`` takes a reference, ``fput`` drops one, and ``release``
runs on the last ``fput`` -- never earlier, never twice.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from errno import EBADF, EINVAL, ENOTTY, ESPIPE
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol

from .context import Subsystem
from .errors import KernelBug, kerr
from .filelock import FileLocks
from .ioctl import _IOC_DIR, _IOC_SIZE, _IOC_WRITE
from .trace import TracePoint
from .uaccess import UserBuffer, get_user_u64

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    from .mm import Vma
    from .process import TaskContext

    #: what a file's ``private_data`` is (``File[DmaBuf]``); a bare ``File`` is ``File[Any]``
    PrivT = TypeVar("PrivT", default=Any)
else:
    from typing import TypeVar

    PrivT = TypeVar("PrivT")

__all__ = [
    "DT_CHR",
    "DT_DIR",
    "DT_LNK",
    "DT_REG",
    "DT_UNKNOWN",
    "FMODE_LSEEK",
    "FMODE_PATH",
    "FMODE_PREAD",
    "FMODE_PWRITE",
    "FMODE_READ",
    "FMODE_WRITE",
    "DirContext",
    "File",
    "FileOperations",
    "FileTable",
    "Inode",
    "IoctlHandler",
    "IoctlU64",
    "copy_splice_read",
    "iter_file_splice_write",
    "open_flags_to_file",
]

trace_file_release = TracePoint("file.release", "file", "kind")

FMODE_READ = 0x1
FMODE_WRITE = 0x2
FMODE_LSEEK = 0x4
FMODE_PREAD = 0x8
FMODE_PWRITE = 0x10
#: an ``O_PATH`` file: a place in the tree, not open for I/O (``fdget`` refuses it)
FMODE_PATH = 0x4000
O_LARGEFILE = 0o100000
_OPEN_DROP = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_CLOEXEC

IoctlHandler = Callable[["File", int, int], int]


@dataclass(frozen=True, slots=True, eq=False)
class IoctlU64:
    """The handler of an ``_IOW`` command whose argument is one ``__u64`` that the kernel
    only reads (``struct dma_buf_sync``): ``fn(file, cmd, value)`` gets the value.

    As an ``ioctls`` entry it is an ordinary handler ``(file, cmd, arg)``: it reads the
    value at ``arg`` with ``get_user_u64`` (a fault point: ``EFAULT``) and calls ``fn``,
    as the C handler's ``copy_from_user`` of its struct does.  The in-process hot path,
    which holds the caller's buffer itself, reads the value from it and calls ``fn``
    directly: no scratch copy, nothing to copy back (the kernel writes nothing), the
    same answer.  ``FileOperations`` checks the command's direction and size.
    """

    fn: Callable[[Any, int, int], int]

    def __call__(self, file: File, cmd: int, arg: int) -> int:
        return self.fn(file, cmd, get_user_u64(arg))

    def __repr__(self) -> str:
        return f"IoctlU64({getattr(self.fn, '__qualname__', self.fn)!r})"


class Fsnotify(Protocol):
    """What the VFS calls on a watched inode (``IN_ACCESS`` 0x1, ``IN_MODIFY`` 0x2,
    ``IN_CLOSE_WRITE`` 0x8, ``IN_CLOSE_NOWRITE`` 0x10): ``mockkernel.fsnotify``."""

    def notify(self, inode: Inode, mask: int) -> None: ...


@dataclass(eq=False, slots=True)
class Inode:
    """What ``fstat`` reports about a file, and what ``notify_change`` changes: one per
    node of the tree (every open file of the node shares it) or per anonymous file."""

    ino: int
    mode: int  # st_mode, file-type bits included (dma-buf anon inodes have none)
    rdev: int = 0
    size: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    dev: int = 0x0F  # the anon_inodefs / devtmpfs superblock; only needs to be stable
    blksize: int = 4096
    #: ``i_write_hint``: the ``F_SET_RW_HINT`` of the inode (``RWH_WRITE_LIFE_*``)
    i_write_hint: int = 0
    #: ``i_atime``/``i_mtime``/``i_ctime`` in ns since the epoch (``current_time`` when
    #: the inode is made; ``utimensat`` and every attribute change move them)
    atime_ns: int = field(default_factory=time.time_ns)
    mtime_ns: int = 0
    ctime_ns: int = 0
    #: the extended attributes stored on it (``simple_xattrs``: devtmpfs, kernfs)
    xattrs: dict[str, bytes] | None = None
    #: ``i_blocks`` (512-byte units); None: the size's, as a disk or shmem file has.  The
    #: pseudo filesystems' inodes (kernfs, procfs, debugfs) have none: 0
    blocks: int | None = None
    #: its watches and watched parent (``mockkernel.fsnotify.FsnInfo``, which this layer
    #: calls without importing: ``fsn.notify(inode, mask)``); None: unwatched
    fsn: Fsnotify | None = None

    def __post_init__(self) -> None:
        self.mtime_ns = self.mtime_ns or self.atime_ns
        self.ctime_ns = self.ctime_ns or self.atime_ns

    def stat_result(self) -> os.stat_result:
        a, m, c = self.atime_ns, self.mtime_ns, self.ctime_ns
        return os.stat_result(
            (
                *(self.mode, self.ino, self.dev, self.nlink, self.uid, self.gid, self.size),
                *(a // 10**9, m // 10**9, c // 10**9, a / 1e9, m / 1e9, c / 1e9, a, m, c),
                *(
                    self.blksize,
                    (self.size + 511) // 512 if self.blocks is None else self.blocks,
                    self.rdev,
                ),
            )
        )

    @property
    def is_chrdev(self) -> bool:
        return stat.S_ISCHR(self.mode)


class FileOperations:
    """A driver's ops table.  Subclass it and define what the driver supports.

    Each method is called by the core with the file; ``None`` means "absent".
    ``ioctls`` maps a command number to ``handler(file, cmd, arg) -> int`` where
    ``arg`` is the raw ``unsigned long`` argument (a user address for pointer
    commands: read it with :mod:`mockkernel.uaccess`).
    """

    #: Shown in traces, fdinfo and ``/proc/self/fd`` links: "anon_inode:<name>" or a path.
    name: ClassVar[str] = "file"
    #: The per-command dispatch table used by the default ``unlocked_ioctl``.
    ioctls: ClassVar[Mapping[int, IoctlHandler]] = {}

    #: True when ``unlocked_ioctl`` is this default (set per class): the syscall layer
    #: then looks the handler up itself, one call less on the hot path.
    plain_ioctls: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.plain_ioctls = cls.unlocked_ioctl is FileOperations.unlocked_ioctl
        for cmd, handler in cls.ioctls.items():
            if type(handler) is IoctlU64 and (_IOC_DIR(cmd) != _IOC_WRITE or _IOC_SIZE(cmd) != 8):
                raise TypeError(
                    f"{cls.__qualname__}.ioctls[{cmd:#x}]: an IoctlU64 handler needs an _IOW "
                    "command of 8 bytes (its argument is one __u64 the kernel only reads)"
                )

    def open(self, file: File) -> None:
        """Called when a device node is opened (``->open``); raise to fail the open."""

    def release(self, file: File) -> None:
        """Called once, on the last reference (``->release``)."""

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        handler = self.ioctls.get(cmd)
        if handler is None:
            raise kerr(ENOTTY)
        return handler(file, cmd, arg)

    # The remaining ops are absent unless a subclass defines them.
    read: Callable[[File, int, int], bytes] | None = None  # (file, count, pos) -> data
    write: Callable[[File, bytes, int], int] | None = None  # (file, data, pos) -> written
    #: ``(file, count)``: the checks ``->write`` makes before it reads the caller's
    #: buffer (Linux passes it the user pointer; here ``vfs_write`` reads it for
    #: ``write``, after these): uverbs' ``ib_safe_file_access`` (``EACCES``) and its
    #: header size (``EINVAL``), both before a bad pointer's ``EFAULT``
    write_check: Callable[[File, int], None] | None = None
    llseek: Callable[[File, int, int], int] | None = None  # (file, offset, whence) -> pos
    mmap: Callable[[File, Vma], None] | None = None
    show_fdinfo: Callable[[File], str] | None = None
    #: ``d_op->d_dname``: the name of an anonymous file, made when it is asked for (what
    #: ``/proc/self/fd/N`` and ``/proc/self/maps`` show); ``None``: ``anon_inode:<name>``
    dname: Callable[[File], str] | None = None
    #: ``->fsync(file, datasync)``: without it ``fsync``/``fdatasync`` are ``EINVAL``
    fsync: Callable[[File, bool], None] | None = None
    #: ``->poll(file)``: the ``EPOLL*`` bits ready now (``mockkernel.poll``); without it a
    #: file is always readable and writable (``DEFAULT_POLLMASK``)
    poll: Callable[[File], int] | None = None
    #: ``->iterate_shared(file, ctx)``: a directory's entries from ``ctx.pos`` on, each
    #: handed to ``ctx.emit`` until it says stop; without it ``getdents64`` is ``ENOTDIR``
    iterate: Callable[[File, DirContext], None] | None = None
    #: ``->splice_read(file, pos, put, count)``: hand up to ``count`` bytes from ``pos``
    #: to a pipe (``put(data)`` says how many it took); the bytes spliced.  Without it
    #: ``splice`` from the file is ``EINVAL`` (``mockkernel/syscalls/splice.py``)
    splice_read: Callable[[File, int, Callable[[bytes], int], int], int] | None = None
    #: ``->splice_write(file, pos, take, count)``: write what ``take(n)`` gives from a
    #: pipe (up to ``count``) at ``pos``; the bytes spliced.  Without it: ``EINVAL``
    splice_write: Callable[[File, int, Callable[[int], bytes], int], int] | None = None


def copy_splice_read(file: File, pos: int, put: Callable[[bytes], int], count: int) -> int:
    """``copy_splice_read``: ``->read`` into the pipe (what it did not take is read
    again next time: the position moves by what it took)."""
    read = file.f_op.read
    assert read is not None
    data = read(file, count, pos)
    return put(data) if data else 0


def iter_file_splice_write(file: File, pos: int, take: Callable[[int], bytes], count: int) -> int:
    """``iter_file_splice_write``: the pipe's bytes through ``->write``, a page at a
    time (a short write ends it)."""
    write = file.f_op.write
    assert write is not None
    done = 0
    while done < count:
        data = take(min(count - done, 4096))
        if not data:
            break
        try:
            n = write(file, data, pos + done)
        except OSError:
            if done:
                break
            raise
        done += n
        if n < len(data):
            break
    return done


#: ``d_type`` values of ``struct linux_dirent64`` (``DT_*``)
DT_UNKNOWN, DT_CHR, DT_DIR, DT_REG, DT_LNK = 0, 2, 4, 8, 10


class DirContext:
    """``struct dir_context``: where a directory listing stands and who takes the entries.

    ``pos`` is the position of the next entry (``f_pos`` of the directory file while a
    listing runs); an ``iterate`` op calls :meth:`emit` for the entry at ``pos`` and,
    when it was taken, advances ``pos`` itself (as ``dir_emit`` + ``ctx->pos++``).
    """

    __slots__ = ("actor", "pos")

    def __init__(self, actor: Callable[[DirContext, str, int, int], bool], pos: int) -> None:
        self.actor = actor
        self.pos = pos

    def emit(self, name: str, ino: int, d_type: int) -> bool:
        """``dir_emit``: offer one entry; ``False`` means the reader is full: stop."""
        return self.actor(self, name, ino, d_type)


def opener_frame() -> tuple[CodeType, int] | None:
    """The first caller outside mockkernel, as (code, line): formatted only if reported
    (:func:`format_opener`), so recording costs a short frame walk per open."""
    f: FrameType | None = sys._getframe(2)
    while f is not None and f.f_globals.get("__name__", "").startswith("mockkernel"):
        f = f.f_back
    return (f.f_code, f.f_lineno) if f is not None else None


def format_opener(where: tuple[CodeType, int] | None) -> str | None:
    """``file.py:12 in function`` for what :func:`opener_frame` recorded."""
    if where is None:
        return None
    code, line = where
    return f"{os.path.basename(code.co_filename)}:{line} in {code.co_name}"


#: ``File(..., cred=)``'s default: the current task's credentials (``current_cred()``)
CURRENT_CRED: Any = object()


class File(Generic[PrivT]):
    """An open file description (``struct file``).

    ``private_data`` is the driver's (``file->private_data``), typed by the file's kind:
    an op of an ops table whose files carry a ``DmaBuf`` takes ``file: File[DmaBuf]`` and
    reads ``file.private_data`` as one, with no cast; set it when the file is made
    (``File(..., private_data)``) or in the ops' ``open``.  A bare ``File`` is
    ``File[Any]``: code that does not know the kind checks ``file.f_op`` first.
    """

    __slots__ = (
        "__weakref__",
        "f_count",
        "f_cred",
        "f_euid",
        "f_flags",
        "f_mode",
        "f_op",
        "f_owner",
        "f_pos",
        "file_table",
        "id",
        "inode",
        "kernel",
        "opened",
        "path",
        "private_data",
        "released",
    )

    def __init__(
        self,
        kernel: TaskContext,
        f_op: FileOperations,
        inode: Inode,
        f_flags: int,
        f_mode: int,
        private_data: PrivT = None,  # type: ignore[assignment]
        path: str | None = None,
        cred: object = CURRENT_CRED,
    ) -> None:
        self.kernel = kernel
        self.f_op = f_op
        self.inode = inode
        self.f_flags = f_flags
        self.f_mode = f_mode
        self.f_pos = 0
        #: ``f_owner``: who ``SIGIO`` goes to (``F_SETOWN``/``F_SETOWN_EX``/``F_SETSIG``),
        #: ``(owner type, pid, signal)``: ``F_OWNER_PID`` 0 and signal 0 until set
        self.f_owner = (1, 0, 0)
        self.f_count = 1
        #: ``f_cred->euid``, where an open records it (a sysfs binary attribute:
        #: ``pci_read_config`` judges the opener, not the reader), else -1
        self.f_euid = -1
        self.private_data = private_data
        self.path = path
        #: the opener's credentials (``f_cred``): who opened it, for drivers that check;
        #: ``cred``, else the current task's (an opener that knows them passes them)
        if cred is CURRENT_CRED:
            try:  # (current_cred(); inline: an open is a hot path)
                cred = kernel.current.cred
            except AttributeError:  # while the kernel boots (no task yet)
                cred = None
        self.f_cred: object = cred
        self.released = False
        # False while a device's ->open runs: a failed open is put without ->release
        self.opened = True
        self.id = fid = kernel.new_id()
        #: the kernel's :class:`FileTable`, which counts this file until it is released
        #: (kept: a close then needs no subsystem lookup)
        self.file_table = table = kernel.subsys(FileTable)
        table.files[fid] = self
        if table.openers is not None:  # a test fixture asked where files are opened
            table.openers[fid] = opener_frame()

    def __repr__(self) -> str:
        where = self.path or f"anon_inode:{self.f_op.name}"
        return f"<File #{self.id} {where} count={self.f_count}>"

    @property
    def link_name(self) -> str:
        """What ``readlink("/proc/self/fd/N")`` shows."""
        if self.path:
            return self.path
        dname = self.f_op.dname
        if dname is not None:
            return dname(self)
        return f"anon_inode:{self.f_op.name}"

    def get(self) -> File[PrivT]:
        """Take one more reference (``get_file``)."""
        if self.f_count <= 0:
            raise KernelBug(f"get_file on a released {self!r}")
        self.f_count += 1
        return self

    def put(self) -> None:
        """Drop one reference (``fput``); the last one releases the file."""
        if self.f_count <= 0:
            raise KernelBug(f"fput underflow on {self!r}")
        self.f_count -= 1
        if self.f_count == 0:
            self._release()

    def _release(self) -> None:
        table = self.file_table
        self.released = True
        try:
            locks = table.locks
            if locks.contexts:  # (close is a hot path: no call while no file has a lock)
                locks.remove_file(self)  # locks_remove_file
            if self.opened:
                self.f_op.release(self)
            fsn = self.inode.fsn
            if fsn is not None and not self.f_mode & FMODE_PATH:  # fsnotify_close
                fsn.notify(self.inode, 0x8 if self.f_mode & FMODE_WRITE else 0x10)
        finally:
            table.files.pop(self.id, None)
            if table.openers is not None:
                table.openers.pop(self.id, None)
            tracer = self.kernel.tracer
            if tracer.enabled:  # (close is a hot path: no call while off)
                trace_file_release(tracer, self.id, self.f_op.name)

    # -- default VFS behaviour when an op is absent -------------------------------------
    def vfs_read(self, count: int, pos: int | None, to: UserBuffer | None = None) -> bytes:
        """``vfs_read``; ``to``: the caller's buffer (a front-end with addresses only),
        checked by ``access_ok`` before ``->read`` and written before the position
        moves -- a fault there is ``EFAULT`` with ``f_pos`` unchanged, as a driver's
        failed ``copy_to_user`` leaves it on Linux."""
        if pos is not None and not self.f_mode & FMODE_PREAD:
            raise kerr(ESPIPE)
        if not self.f_mode & FMODE_READ:
            raise kerr(EBADF)
        if count < 0:
            raise kerr(EINVAL)
        op = self.f_op.read
        if op is None:
            raise kerr(EINVAL)
        if to is not None:
            to.imported()
        data = op(self, count, self.f_pos if pos is None else pos)
        if to is not None:
            to.scatter(data)
        if pos is None:
            self.f_pos += len(data)
        if data and self.inode.fsn is not None:  # fsnotify_access
            self.inode.fsn.notify(self.inode, 0x1)
        return data

    def vfs_write(self, data: bytes | UserBuffer, pos: int | None) -> int:
        """``vfs_write``: ``ESPIPE``, ``EBADF``, ``EINVAL`` (no ``->write``), then the
        driver's ``write_check``, then the caller's buffer is read (a
        :class:`~mockkernel.uaccess.UserBuffer`: ``EFAULT`` only now), then ``->write``."""
        if pos is not None and not self.f_mode & FMODE_PWRITE:
            raise kerr(ESPIPE)
        if not self.f_mode & FMODE_WRITE:
            raise kerr(EBADF)
        op = self.f_op.write
        if op is None:
            raise kerr(EINVAL)
        check = self.f_op.write_check
        if type(data) is not bytes:
            assert isinstance(data, UserBuffer)
            data.imported()  # access_ok (EFAULT) before the driver's checks
            if check is not None:
                check(self, len(data))
            data = data.fetch()
        elif check is not None:
            check(self, len(data))
        n = op(self, data, self.f_pos if pos is None else pos)
        if pos is None:
            self.f_pos += n
        if n > 0 and self.inode.fsn is not None:  # fsnotify_modify
            self.inode.fsn.notify(self.inode, 0x2)
        return n

    def vfs_llseek(self, offset: int, whence: int) -> int:
        op = self.f_op.llseek
        if op is None or not self.f_mode & FMODE_LSEEK:
            raise kerr(ESPIPE)
        return op(self, offset, whence)


def open_flags_to_file(flags: int) -> tuple[int, int]:
    """(f_flags, f_mode) for an ``open(2)`` with ``flags`` (``build_open_flags`` and
    ``do_dentry_open``): ``O_PATH`` keeps only ``O_PATH|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC``
    and opens for no I/O at all (without ``O_LARGEFILE``: ``build_open_how`` masks it)."""
    if flags & os.O_PATH:
        return flags & (os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW), FMODE_PATH
    return (flags & ~_OPEN_DROP) | O_LARGEFILE, ACC_FMODE[flags & os.O_ACCMODE]


#: ``f_mode`` of a file opened with access mode ``O_RDONLY``/``O_WRONLY``/``O_RDWR``/3 (by
#: index; ``OPEN_FMODE``, and every open file may ``pread``/``pwrite``/``lseek`` until its
#: driver says otherwise).  3 reads and writes nothing (an ``ioctl``-only open).
ACC_FMODE = (
    FMODE_PREAD | FMODE_PWRITE | FMODE_LSEEK | FMODE_READ,
    FMODE_PREAD | FMODE_PWRITE | FMODE_LSEEK | FMODE_WRITE,
    FMODE_PREAD | FMODE_PWRITE | FMODE_LSEEK | FMODE_READ | FMODE_WRITE,
    FMODE_PREAD | FMODE_PWRITE | FMODE_LSEEK,
)


def generic_file_llseek(file: File, offset: int, whence: int) -> int:
    """``SEEK_SET``/``SEEK_CUR``/``SEEK_END`` against ``inode.size``."""
    if whence == os.SEEK_SET:
        new = offset
    elif whence == os.SEEK_CUR:
        new = file.f_pos + offset
    elif whence == os.SEEK_END:
        new = file.inode.size + offset
    else:
        raise kerr(EINVAL)
    if new < 0:
        raise kerr(EINVAL)
    file.f_pos = new
    return new


class FileTable(Subsystem):
    """Every ``File`` of one kernel not yet released, by id (what the leak report checks).

    A file enters when it is made and leaves when its last reference is put.
    """

    name = "files"
    probe_independent = True  # (no driver probe reads or changes it)

    def __init__(self, kernel: TaskContext) -> None:
        super().__init__(kernel)
        self.files: dict[int, File] = {}
        #: the kernel's file locks (``locks_remove_file`` at each release asks them)
        self.locks = kernel.subsys(FileLocks)
        #: file id -> where the program opened it (``file.py:12 in test_x``), recorded
        #: only while set to a dict (the pytest fixture does: leak reports name the line)
        self.openers: dict[int, tuple[CodeType, int] | None] | None = None

    def release_all(self) -> list[str]:
        """Release every file still referenced (by a mapping, or a reference a driver
        never put), as process exit and module unload would: the leak report names
        them, but the real fds and mappings behind them must not leak.  Returns the
        releases that failed."""
        failed: list[str] = []
        for file in list(self.files.values()):
            if file.released:
                continue
            file.f_count = 0
            try:
                file._release()
            except Exception as e:  # a driver's release failing is one more finding
                failed.append(f"release of {file!r} at shutdown failed: {e!r}")
        return failed
