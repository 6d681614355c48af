"""The redirection's ``fcntl.ioctl`` beyond its fast path (``hotpath.m_ioctl``): every
argument kind with CPython's exact conventions, and tracing.

An ``int`` is a C ``int``; a buffer of at most 1024 bytes is copied into the calling
thread's scratch buffer with a NUL after it (copied back for a mutable buffer with
``mutate_flag``); an immutable buffer gives back ``bytes``; a larger mutable buffer is
passed in place.  The dispatch itself is the syscall layer's
(:func:`mockkernel.syscalls.ioctl.do_ioctl`; ``Process.sys_ioctl`` when tracing).
"""

from __future__ import annotations

import ctypes
import operator
import stat
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..fs import IoctlU64
from ..net.dev_ioctl import DEV_IOCTL_CMDS, capable_net_admin, is_dev_ioctl, sock_dev_ioctl
from ..syscalls.ioctl import VFS_IOCTL_CMDS, do_ioctl
from ..uaccess import add_window, drop_window
from .hotpath import IOCTL_BUFSZ, as_fd

if TYPE_CHECKING:
    from ..fs import FileOperations, IoctlHandler
    from .redirect import Redirection

    #: an ``IoctlCalls.ioctl_table`` entry: the handler, and an IoctlU64's value handler
    IoctlEntry = tuple[IoctlHandler, Callable[[Any, int, int], int] | None]

__all__ = ["IOCTL_BUFSZ", "SCRATCH_LEN", "IoctlCalls", "Scratch"]

SCRATCH_LEN = IOCTL_BUFSZ + 1  # the scratch buffer: the argument and a NUL


class _ScratchBuf:
    """One thread's copy of an ioctl argument (CPython's ``char buf[IOCTL_BUFSZ+1]``).

    It is a permanent uaccess window while the thread lives, so handlers read it
    with memoryview slices and the syscall path never sets or restores anything.
    """

    __slots__ = ("__weakref__", "addr", "buf", "view")

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(SCRATCH_LEN)
        self.addr = ctypes.addressof(self.buf)
        self.view = memoryview(self.buf).cast("B")
        weakref.finalize(self, drop_window, add_window(self.addr, self.view))


class Scratch(threading.local):
    """The calling thread's scratch buffer: ``t`` is its (address, view)."""

    def __init__(self) -> None:
        self.buf = _ScratchBuf()
        self.t = (self.buf.addr, self.buf.view)


def int_overflow(value: int) -> OverflowError:
    """What CPython's "i" argument format says for a value outside a C int."""
    if not -(2**63) <= value < 2**63:  # it goes through a C long first
        return OverflowError("Python int too large to convert to C long")
    if value > 0:
        return OverflowError("signed integer is greater than maximum")
    return OverflowError("signed integer is less than minimum")


#: ``general_ioctl``'s ``file`` for an interface ioctl on a real socket (``sock_ioctl``)
_REAL_SOCKET: Any = object()


class IoctlCalls:
    """The slow paths ``hotpath.m_ioctl`` hands over to (bound methods)."""

    def __init__(self, redir: Redirection) -> None:
        self.proc = redir.proc
        self.files = redir.proc.files
        self.tracer = redir.kernel.tracer
        self.scratch = redir.scratch
        self.real_ioctl = redir.real.ioctl
        self.real_fstat = redir.real.fstat
        self.kernel = redir.kernel
        #: ``hotpath``'s bound ``m_ioctl`` (set once the hot functions are made)
        self.m_ioctl: Any = None
        #: file ops -> the commands ``m_ioctl`` may dispatch itself (:meth:`ioctl_table`)
        self.tables: dict[FileOperations, dict[int, IoctlEntry]] = {}

    def ioctl_table(self, fop: FileOperations) -> dict[int, IoctlEntry]:
        """The handlers ``m_ioctl`` may call itself for a file of ``fop``, by command:
        what ``vfs_ioctl`` would find in the ops' default ``unlocked_ioctl`` (its
        ``ioctls`` table), less the commands ``do_vfs_ioctl`` answers first
        (``VFS_IOCTL_CMDS``); empty for ops with an ``unlocked_ioctl`` of their own.
        Each entry is ``(handler, value_handler)``: an :class:`~mockkernel.fs.IoctlU64`'s
        ``fn`` (which takes the ``__u64`` itself), else None.  Made on a file's first
        ioctl and kept for the redirection's life (an ops table is fixed when its class
        is made)."""
        table = self.tables.get(fop)
        if table is None:
            table = {}
            if fop.plain_ioctls:
                for cmd, handler in fop.ioctls.items():
                    if cmd not in VFS_IOCTL_CMDS:
                        value = handler.fn if type(handler) is IoctlU64 else None
                        table[cmd] = (handler, value)
            self.tables[fop] = table
        return table

    def real_or_sock_ioctl(self, fd: Any, request: int, arg: Any, mutate_flag: bool) -> Any:
        """A real fd's ioctl whose command may be an interface ioctl (``SIOCGIFINDEX``
        & co., by its 32 bits as the real call reads it): the kernel's on a socket."""
        try:
            dev = request & 0xFFFFFFFF in DEV_IOCTL_CMDS
        except TypeError:  # (the real call says what is wrong with it)
            dev = False
        if dev:
            return self.sock_ioctl(fd, request, arg, mutate_flag)
        return self.real_ioctl(fd, request, arg, mutate_flag)

    def call(self, file: Any, fd: int, cmd: int, arg: int) -> int:
        """One ioctl with its final argument: traced through ``Process.sys_ioctl`` when
        tracing is on, else straight into the layer's dispatch."""
        if file is _REAL_SOCKET:
            return sock_dev_ioctl(self.kernel, cmd, arg, admin=capable_net_admin())
        if self.tracer.enabled:
            return self.proc.sys_ioctl(fd, cmd, arg)
        return do_ioctl(self.proc, fd, file, cmd, arg)

    def fileno_ioctl(self, fd: Any, request: int, arg: Any, mutate_flag: bool) -> Any:
        """``fcntl.ioctl`` of an object with ``fileno()`` (or an int subclass)."""
        n = as_fd(fd)
        if n in self.files:
            return self.m_ioctl(n, request, arg, mutate_flag)
        if type(request) is int and is_dev_ioctl(request & 0xFFFFFFFF):
            return self.sock_ioctl(n, request, arg, mutate_flag)
        return self.real_ioctl(fd, request, arg, mutate_flag)

    def sock_ioctl(self, fd: int, request: int, arg: Any, mutate_flag: bool) -> Any:
        """An interface ioctl (``SIOCGIFINDEX`` & co.) on real fd ``fd``: on a socket it is
        ``sock_ioctl``'s ``dev_ioctl`` of *this* kernel (``net/dev_ioctl.py``, as under the
        supervisor), never the host's devices; on anything else the real call's answer
        (``ENOTTY``, ``EBADF``).  The argument is taken with CPython's conventions."""
        try:
            is_socket = stat.S_ISSOCK(self.real_fstat(fd).st_mode)
        except (OSError, TypeError, ValueError, OverflowError):
            is_socket = False
        if not is_socket:
            return self.real_ioctl(fd, request, arg, mutate_flag)
        return self.general_ioctl(_REAL_SOCKET, fd, request & 0xFFFFFFFF, arg, mutate_flag)

    def general_ioctl(self, file: Any, n: int, cmd: int, arg: Any, mutate_flag: bool) -> Any:
        """Every argument kind, with CPython's exact conventions; tracing."""
        if type(arg) is int:
            if not -0x80000000 <= arg <= 0x7FFFFFFF:
                raise int_overflow(arg)
            return self.call(file, n, cmd, arg & 0xFFFFFFFF)
        if isinstance(arg, str):
            arg = arg.encode()
        try:
            mv = memoryview(arg)
            if not mv.c_contiguous:  # CPython's "w*"/"s*" refuse it: then "i"
                raise TypeError
        except TypeError:
            value = operator.index(arg)
            if not -0x80000000 <= value <= 0x7FFFFFFF:
                raise int_overflow(value) from None
            return self.call(file, n, cmd, value & 0xFFFFFFFF)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        return self.buffer_ioctl(file, n, cmd, mv, mutate_flag)

    def buffer_ioctl(self, file: Any, n: int, cmd: int, mv: memoryview, mutate_flag: bool) -> Any:
        """A buffer argument: through the scratch buffer, or in place when large."""
        length = mv.nbytes
        addr, sview = self.scratch.t
        if not mv.readonly:
            if mutate_flag:
                if length <= IOCTL_BUFSZ:
                    sview[:length] = mv
                    sview[length] = 0
                    try:
                        return self.call(file, n, cmd, addr)
                    finally:
                        mv[:] = sview[:length]
                # A large buffer is passed in place, as CPython does.  No uaccess window
                # for it: the program's buffer may have PROT_NONE parts (an mmap it
                # mprotect'ed), so its bytes are reached as any user memory is
                # (process_vm_*: EFAULT, never a fault in the interpreter).
                pinned = ctypes.c_char.from_buffer(mv)  # (held: the buffer stays put)
                return self.call(file, n, cmd, ctypes.addressof(pinned))
            if length > IOCTL_BUFSZ:
                raise ValueError("ioctl string arg too long")
        elif length > IOCTL_BUFSZ:
            raise ValueError("ioctl string arg too long")
        sview[:length] = mv
        sview[length] = 0
        self.call(file, n, cmd, addr)
        return bytes(sview[:length])
