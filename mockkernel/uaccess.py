"""uaccess: reading and writing the calling program's memory, safely.

Whose memory: the *current task's address space* (``Process.mm``), as Linux's
``copy_from_user`` acts on ``current->mm``.  Each thread of this Python process is
one CPU; :func:`use_mm` makes an address space current on it for a block (the kernel's
``running()`` does it when it serves a process).  Two kinds of address space exist:

* :data:`LOCAL` -- this very Python process (the in-process redirection, and every
  virtual process made by ``kernel.spawn()``).  An ioctl argument is a real address:
  the syscall layer copies the caller's buffer into its thread's scratch buffer (as
  CPython's ``fcntl.ioctl`` does) and passes that address.  Scratch buffers are
  *windows*: an access inside one is a memoryview slice.
* :class:`RemoteMemory` -- another process (a supervised program): every access is a
  ``process_vm_readv``/``_writev`` on that process, or ``/proc/<pid>/mem`` where
  those are forbidden.

Any address outside a window goes through ``process_vm_readv``/``_writev``, which
honour page protections as the kernel's user access does: an unmapped, ``PROT_NONE``
or (for a write) read-only page is ``EFAULT``, never a crash of the interpreter.
``/proc/<pid>/mem`` reports only unmapped addresses (it writes through protections,
as a debugger does).

The only module-level state is the per-CPU (per-thread) record of which address
space is current -- Linux's per-CPU ``current`` -- and :data:`LOCAL`, which stands for
a process-wide fact.  Nothing here holds a kernel.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from errno import E2BIG, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from typing import Any, Protocol, TypeVar

from .errors import kerr

__all__ = [
    "LOCAL",
    "MAX_RW_COUNT",
    "LocalMemory",
    "RemoteMemory",
    "UserBuffer",
    "UserMemory",
    "access_ok",
    "add_window",
    "check_zeroed_user",
    "copy_from_user",
    "copy_from_user_nofault",
    "copy_struct_from_user",
    "copy_to_user",
    "current_mm",
    "drop_window",
    "get_user_struct",
    "get_user_u32",
    "get_user_u64",
    "ioctl_window",
    "put_user_u32",
    "restore_mm",
    "strndup_user",
    "swap_mm",
    "use_mm",
]

_S = TypeVar("_S", bound=ctypes.Structure)
_MAX_ADDR = (1 << 47) - 1  # x86-64 user space ends below 0x0000_8000_0000_0000
_NO_WINDOW: tuple[int, int, memoryview] = (-1, -1, memoryview(b""))  # (read-only)
_u32 = struct.Struct("<I").unpack_from
_u64 = struct.Struct("<Q").unpack_from


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _load_pvm() -> tuple[Any, Any]:
    """libc's ``process_vm_readv``/``process_vm_writev``, typed."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = []
    for name in ("process_vm_readv", "process_vm_writev"):
        fn = getattr(libc, name)
        fn.restype = ctypes.c_ssize_t
        fn.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(_Iovec),
            ctypes.c_ulong,
            ctypes.POINTER(_Iovec),
            ctypes.c_ulong,
            ctypes.c_ulong,
        ]
        out.append(fn)
    return out[0], out[1]


class UserMemory:
    """A user address space as uaccess sees it: ``read``/``write`` raise ``EFAULT``.

    ``pid`` is the process whose memory this is (for ``process_vm_*`` and
    ``/proc/<pid>/mem``); ``stores`` counts writes, so the syscall layer can skip
    copying an ioctl argument back when a handler wrote nothing.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stores = 0
        self._lock = threading.Lock()
        #: (readv, writev), set once whole: an exception while loading leaves it unset
        self._pvm: tuple[Any, Any] | None = None
        self._pvm_forbidden = False
        self._mem_fd = -1
        #: set by :meth:`close`: the address space is gone (its process exited or
        #: exec'd); a pid may be reused, so nothing may be accessed through it any more
        self.exited = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid}>"

    # -- process_vm_* with /proc/<pid>/mem as the fallback --------------------------------
    def _process_vm(self, write: bool, local: int, remote: int, n: int) -> bool:
        """True when done; ``EFAULT`` when the range is not accessible; False when the
        syscalls are not allowed here (seccomp): use ``/proc/<pid>/mem``."""
        if self._pvm_forbidden:
            return False
        pvm = self._pvm
        if pvm is None:
            pvm = self._pvm = _load_pvm()  # one assignment of a finished tuple
        fn = pvm[1 if write else 0]
        lv, rv = _Iovec(local, n), _Iovec(remote, n)
        got = fn(self.pid, ctypes.byref(lv), 1, ctypes.byref(rv), 1, 0)
        if got == n:
            return True
        if got < 0:
            err = ctypes.get_errno()
            if err in (EPERM, ENOSYS):
                self._pvm_forbidden = True
                return False
            if err == ESRCH:
                raise kerr(EFAULT)  # the process is gone: nothing there to access
        raise kerr(EFAULT)

    def _mem(self) -> int:
        """``/proc/<pid>/mem``, opened on first use and kept, on a high number (an address
        space belongs to no one kernel: :data:`LOCAL` is every kernel's of this process)."""
        fd = self._mem_fd
        if fd < 0:
            with self._lock:
                if self._mem_fd < 0:
                    from .realfd import REAL, move_high

                    path = "/proc/self/mem" if self.pid == os.getpid() else f"/proc/{self.pid}/mem"
                    self._mem_fd = move_high(REAL.open(path, os.O_RDWR | os.O_CLOEXEC))
                fd = self._mem_fd
        return fd

    def close(self) -> None:
        """Drop the fds kept for this address space (an exited process's memory)."""
        self.exited = True
        fd, self._mem_fd = self._mem_fd, -1
        if fd >= 0:
            from .realfd import os_close

            os_close(fd)

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` (``EFAULT`` if not readable)."""
        if n == 0:
            return b""
        if addr <= 0 or n < 0 or addr + n > _MAX_ADDR:
            raise kerr(EFAULT)
        buf = ctypes.create_string_buffer(n)
        if self._process_vm(False, ctypes.addressof(buf), addr, n):
            return buf.raw
        try:
            data = os.pread(self._mem(), n, addr)
        except (OSError, OverflowError):
            raise kerr(EFAULT) from None
        if len(data) != n:
            raise kerr(EFAULT)
        return data

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``addr`` (``EFAULT`` if not writable)."""
        self.stores += 1
        n = len(data)
        if n == 0:
            return
        if addr <= 0 or addr + n > _MAX_ADDR:
            raise kerr(EFAULT)
        src = ctypes.create_string_buffer(bytes(data), n)
        if self._process_vm(True, ctypes.addressof(src), addr, n):
            return
        try:
            done = os.pwrite(self._mem(), data, addr)
        except (OSError, OverflowError):
            raise kerr(EFAULT) from None
        if done != n:
            raise kerr(EFAULT)


class LocalMemory(UserMemory):
    """This Python process's own memory, with windows: ranges served by memoryviews.

    Each thread's ioctl scratch buffer is a permanent window; a large argument passed
    in place is a window for one call.
    """

    def __init__(self) -> None:
        super().__init__(os.getpid())
        #: every live window: key -> (base, end, view)
        self.windows: dict[int, tuple[int, int, memoryview]] = {}
        #: how many threads have a ``fail-nth`` count armed (``set_cpu_fault``): while
        #: none has, a hot path may read a user buffer it holds without the per-CPU
        #: check (a thread that ends armed keeps it above 0: slower, never wrong)
        self.armed_cpus = 0

    def _after_fork(self) -> None:
        self.pid = os.getpid()
        self._mem_fd = -1  # (the inherited fd is close-on-exec and still valid; reopen)

    def find(self, addr: int, n: int) -> tuple[int, int, memoryview] | None:
        for w in tuple(self.windows.values()):
            if w[0] <= addr and addr + n <= w[1]:
                return w
        return None

    def read(self, addr: int, n: int) -> bytes:
        w = self.find(addr, n) if n > 0 else None
        if w is not None:
            if _cpu.fault is None:  # (while armed, every access takes the counted path)
                _cpu.hint = w
            return w[2][addr - w[0] : addr - w[0] + n].tobytes()
        return super().read(addr, n)

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        w = self.find(addr, n) if n > 0 else None
        if w is not None:
            self.stores += 1
            if _cpu.fault is None:
                _cpu.hint = w
            w[2][addr - w[0] : addr - w[0] + n] = data
            return
        super().write(addr, data)


class RemoteMemory(UserMemory):
    """Another process's memory (a supervised program), by its pid (the thread group).

    ``like``: another address space whose loaded ``process_vm_*`` functions this one
    shares (a supervised tree makes one per process and exec; loading costs ~0.3 ms).
    """

    def __init__(self, pid: int, like: UserMemory | None = None) -> None:
        super().__init__(pid)
        if like is not None:
            self._pvm = like._pvm

    def peek(self, addr: int, n: int) -> bytes | None:
        """``n`` bytes at ``addr``, or ``None`` when they are not all readable: one
        ``pread`` of ``/proc/<pid>/mem`` and no ctypes (the supervisor's fast path reads
        a path argument of most calls a program's start-up traps; ~1.4 us against
        ~3.5 us for :meth:`read`)."""
        if self.exited:
            return None
        try:
            data = os.pread(self._mem(), n, addr)
        except (OSError, OverflowError):
            return None
        return data if len(data) == n else None


#: This Python process's memory (a process-wide fact, like the real OS functions).
LOCAL = LocalMemory()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=LOCAL._after_fork)


class FaultHook(Protocol):
    """The task's armed ``fail-nth`` count (``mockkernel.fault_inject.FailNth``)."""

    def fail(self, site: str) -> bool: ...


class _Cpu(threading.local):
    """Per-CPU (per-thread) uaccess state: the current address space, the window
    the last fast access hit (only ever a window of ``mm``), and the running task's
    armed ``fail-nth`` count, if any (``fault``: a user copy is a fault point)."""

    def __init__(self) -> None:
        self.mm: UserMemory = LOCAL
        self.hint: tuple[int, int, memoryview] = _NO_WINDOW
        self.fault: FaultHook | None = None


_cpu = _Cpu()


def cpu_fault() -> FaultHook | None:
    """The armed ``fail-nth`` count of the task this thread runs (None: none)."""
    return _cpu.fault


def set_cpu_fault(hook: FaultHook | None) -> None:
    """Arm (or disarm) fault points on this thread (``mockkernel.fault_inject``).

    Armed, the thread forgets its fast window (``hint``) and learns none: every user
    access then takes the slow path, where the fault point is counted, so the fast
    path costs nothing for fault injection."""
    cpu = _cpu
    was = cpu.fault
    cpu.fault = hook
    if hook is not None:
        cpu.hint = _NO_WINDOW
    if (was is None) != (hook is None):
        with LOCAL._lock:
            LOCAL.armed_cpus += 1 if hook is not None else -1


def current_mm() -> UserMemory:
    """The address space uaccess reaches on this thread."""
    return _cpu.mm


@contextmanager
def use_mm(mm: UserMemory) -> Iterator[None]:
    """Make ``mm`` current on this thread for the block (``kthread_use_mm``)."""
    saved = swap_mm(mm)
    try:
        yield
    finally:
        restore_mm(saved)


def swap_mm(mm: UserMemory) -> tuple[UserMemory, tuple[int, int, memoryview]]:
    """Make ``mm`` current on this thread; returns what :func:`restore_mm` puts back
    (``use_mm`` without a generator, for callers on every syscall)."""
    cpu = _cpu
    saved = cpu.mm, cpu.hint
    cpu.mm, cpu.hint = mm, _NO_WINDOW
    return saved


def restore_mm(saved: tuple[UserMemory, tuple[int, int, memoryview]]) -> None:
    cpu = _cpu
    cpu.mm, cpu.hint = saved
    if cpu.fault is not None:  # (armed: no fast window, see set_cpu_fault)
        cpu.hint = _NO_WINDOW


def _mem() -> int:
    """This process's ``/proc/self/mem`` (opened on first use; kept)."""
    return LOCAL._mem()


def add_window(base: int, view: memoryview) -> int:
    """Serve ``[base, base+len(view))`` of this process's memory from ``view``; returns
    a key for ``drop_window``."""
    key = id(view)
    w = (base, base + len(view), view)
    LOCAL.windows[key] = w
    cpu = _cpu
    if cpu.mm is LOCAL and cpu.fault is None:
        cpu.hint = w
    return key


def drop_window(key: int) -> None:
    """Forget a window (its view must not outlive the caller's buffer)."""
    w = LOCAL.windows.pop(key, None)
    cpu = _cpu
    if w is not None and cpu.hint is w:
        cpu.hint = _NO_WINDOW


@contextmanager
def ioctl_window(base: int, view: memoryview) -> Iterator[None]:
    """Make ``view`` the fast path for ``[base, base+len)`` for the duration of the block."""
    key = add_window(base, view)
    try:
        yield
    finally:
        drop_window(key)


def copy_from_user(addr: int, n: int) -> bytes:
    """Read ``n`` bytes at user address ``addr``; ``EFAULT`` if it is not readable (or a
    ``fail-nth`` fault point fails it)."""
    cpu = _cpu
    base, end, view = cpu.hint
    if base <= addr <= end - n and n >= 0:
        return view[addr - base : addr - base + n].tobytes()
    if cpu.fault is not None and cpu.fault.fail("copy_from_user"):
        raise kerr(EFAULT)  # (armed, no access takes the fast branch above)
    return cpu.mm.read(addr, n)


def copy_from_user_nofault(addr: int, n: int) -> bytes:
    """Read ``n`` bytes at user address ``addr`` for an observer (a tracer), as
    ``copy_from_user_nofault`` in ``mm/maccess.c``: ``EFAULT`` if unreadable, and no
    ``fail-nth`` fault point is consumed, so looking does not change what the traced
    call itself meets."""
    base, end, view = _cpu.hint
    if base <= addr <= end - n and n >= 0:
        return view[addr - base : addr - base + n].tobytes()
    return _cpu.mm.read(addr, n)


def copy_to_user(addr: int, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` at user address ``addr``; ``EFAULT`` if it is not writable (or a
    ``fail-nth`` fault point fails it)."""
    cpu = _cpu
    n = len(data)
    base, end, view = cpu.hint
    if base <= addr and addr + n <= end:
        cpu.mm.stores += 1
        view[addr - base : addr - base + n] = data
        return
    if cpu.fault is not None and cpu.fault.fail("copy_to_user"):
        raise kerr(EFAULT)
    cpu.mm.write(addr, data)


def get_user_u64(addr: int) -> int:
    """The u64 at ``addr`` (``get_user``; a fault point, as ``copy_from_user``)."""
    base, end, view = _cpu.hint
    if base <= addr <= end - 8:
        return _u64(view, addr - base)[0]  # type: ignore[no-any-return]
    return int.from_bytes(copy_from_user(addr, 8), "little")


def get_user_u32(addr: int) -> int:
    """The u32 at ``addr`` (``get_user``; a fault point, as ``copy_from_user``)."""
    base, end, view = _cpu.hint
    if base <= addr <= end - 4:
        return _u32(view, addr - base)[0]  # type: ignore[no-any-return]
    return int.from_bytes(copy_from_user(addr, 4), "little")


def put_user_u32(addr: int, value: int) -> None:
    copy_to_user(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))


def get_user_struct(cls: type[_S], addr: int) -> _S:
    """Copy a ctypes struct in from user memory."""
    return cls.from_buffer_copy(copy_from_user(addr, ctypes.sizeof(cls)))


_PAGE = 4096


def check_zeroed_user(addr: int, size: int) -> bool:
    """``check_zeroed_user``: whether ``size`` bytes at ``addr`` are all zero.

    Read a page at a time, as the kernel reads word by word: the first non-zero byte
    answers False at once and the first unreadable page is ``EFAULT`` -- whichever
    comes first -- so a huge ``size`` costs only what is actually there, never a
    buffer of ``size`` bytes.
    """
    end = addr + size
    while addr < end:
        n = min(end - addr, _PAGE - addr % _PAGE)
        if any(copy_from_user(addr, n)):
            return False
        addr += n
    return True


def copy_struct_from_user(ksize: int, addr: int, usize: int) -> bytes:
    """``copy_struct_from_user``: an extensible struct of the kernel's ``ksize`` bytes from
    a user struct of ``usize`` bytes at ``addr``.

    A smaller user struct is zero-filled; a larger one must have only zeros past
    ``ksize`` (``E2BIG``, checked first and piece by piece: :func:`check_zeroed_user`);
    then ``EFAULT`` if the common part cannot be read.
    """
    size = min(ksize, usize)
    if usize > ksize and not check_zeroed_user(addr + ksize, usize - ksize):
        raise kerr(E2BIG)
    return copy_from_user(addr, size) + bytes(ksize - size)


def strndup_user(addr: int, n: int) -> bytes:
    """Read a NUL-terminated string of at most ``n`` bytes including the NUL.

    As the kernel's ``strndup_user``: ``EFAULT`` for a bad address, ``EINVAL``
    when no NUL is found within ``n`` bytes.
    """
    out = bytearray()
    while len(out) < n:
        # read page by page so a string ending just before an unmapped page is fine
        chunk = min(n - len(out), 4096 - ((addr + len(out)) % 4096))
        data = copy_from_user(addr + len(out), chunk)
        nul = data.find(b"\0")
        if nul >= 0:
            out += data[:nul]
            return bytes(out)
        out += data
    raise kerr(EINVAL)


#: x86-64 ``TASK_SIZE_MAX``: ``access_ok`` refuses a range that reaches past it
TASK_SIZE_MAX = (1 << 47) - 4096
#: ``MAX_RW_COUNT``: the most one read or write moves (``INT_MAX & PAGE_MASK``)
MAX_RW_COUNT = 0x7FFFF000
_UIO_MAXIOV = 1024


class UserBuffer:
    """The bytes of a ``write``/``pwrite`` (one range) or ``writev`` (a ``struct iovec``
    array) still in the caller's memory.  Linux hands ``->write`` the user pointer, and
    ``vfs_write``/``vfs_writev`` check the file before they touch it: a front-end that
    has only addresses (a supervisor) passes this, and the syscall layer reads it where
    Linux would -- :meth:`imported` (``import_iovec``: ``EFAULT``/``EINVAL``) after the
    file's mode checks, :meth:`fetch` after ``access_ok`` and the driver's
    ``write_check`` (uverbs' ``EACCES`` comes before a fault)."""

    __slots__ = ("_iovec", "_ranges", "_vec", "_vlen")

    def __init__(self, addr: int, count: int, *, iovec: bool = False) -> None:
        """``count`` bytes at ``addr``; with ``iovec``, ``count`` ``struct iovec`` at
        ``addr`` (read by :meth:`imported`)."""
        self._vec, self._vlen, self._iovec = addr, count, iovec
        self._ranges: list[tuple[int, int]] | None = None

    def imported(self) -> list[tuple[int, int]]:
        """The (address, length) ranges, checked once: ``access_ok`` (``EFAULT`` for a
        kernel address), and for an iovec array ``import_iovec`` (``EINVAL`` past
        ``UIO_MAXIOV`` or an ``ssize_t`` total, ``EFAULT`` for an unreadable array); at
        most ``MAX_RW_COUNT`` bytes in all."""
        if self._ranges is None and not self._iovec:
            n = min(self._vlen, MAX_RW_COUNT)
            if not access_ok(self._vec, n):
                raise kerr(EFAULT)
            self._ranges = [(self._vec, n)]
        elif self._ranges is None:
            vlen = self._vlen
            if vlen < 0 or vlen > _UIO_MAXIOV:
                raise kerr(EINVAL)
            raw = copy_from_user(self._vec, 16 * vlen) if vlen else b""
            ranges, total = [], 0
            for base, n in struct.iter_unpack("<QQ", raw):
                if n > 0x7FFFFFFFFFFFFFFF:
                    raise kerr(EINVAL)
                n = min(n, MAX_RW_COUNT - total)
                if n and not access_ok(base, n):
                    raise kerr(EFAULT)
                ranges.append((base, n))
                total += n
            self._ranges = ranges
        return self._ranges

    def __len__(self) -> int:
        return sum(n for _, n in self.imported())

    def scatter(self, data: bytes) -> None:
        """``copy_to_user`` of ``data`` over the ranges in order (``EFAULT`` where one is
        not writable)."""
        done = 0
        for base, n in self.imported():
            if done >= len(data):
                break
            chunk = data[done : done + n]
            copy_to_user(base, chunk)
            done += len(chunk)

    def fetch(self) -> bytes:
        """``copy_from_user`` of every range (``EFAULT`` where one is unreadable)."""
        ranges = self.imported()
        return b"".join(copy_from_user(base, n) for base, n in ranges if n)


def access_ok(addr: int, n: int) -> bool:
    """``access_ok``: the range lies in the user half of the address space (whether it
    is mapped is ``copy_from_user``'s question)."""
    return addr >= 0 and n <= TASK_SIZE_MAX - addr
