"""uaccess: reading and writing the calling program's memory, safely.

The user address space is this very Python process.  An ioctl argument is a
real address: the syscall layer copies the caller's buffer into its thread's
scratch buffer (as CPython's ``fcntl.ioctl`` does) and passes that address.
The scratch buffers are *windows*: an access inside one is a memoryview
slice.  Any other address -- a pointer stored inside a struct, an address
made up by a buggy program -- goes through ``process_vm_readv``/``_writev``,
which honour page protections as the kernel's user access does: an unmapped,
``PROT_NONE`` or (for a write) read-only page is ``EFAULT``, never a crash of
the interpreter.  Where those syscalls are forbidden (seccomp) it falls back to
``/proc/self/mem``, which reports only unmapped addresses (it writes through
protections, as a debugger does).
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from errno import EFAULT, EINVAL, ENOSYS, EPERM
from typing import Any, TypeVar

from .errors import kerr

__all__ = [
    "add_window",
    "copy_from_user",
    "copy_to_user",
    "drop_window",
    "get_user_struct",
    "get_user_u32",
    "get_user_u64",
    "ioctl_window",
    "put_user_u32",
    "strndup_user",
]

_S = TypeVar("_S", bound=ctypes.Structure)
_MAX_ADDR = (1 << 47) - 1  # x86-64 user space ends below 0x0000_8000_0000_0000


#: Every live window: ``id`` -> (base, end, view).  Each thread's ioctl scratch buffer
#: is a permanent window; a large argument passed in place is a window for one call.
_windows: dict[int, tuple[int, int, memoryview]] = {}
#: The window the last fast access hit (a cache shared by threads: a miss just looks
#: the address up in ``_windows``, so a stale hint is never wrong, only slower).
_NO_WINDOW: tuple[int, int, memoryview] = (-1, -1, memoryview(b""))
_hint: tuple[int, int, memoryview] = _NO_WINDOW
#: Counts writes to user memory: the syscall layer skips copying an ioctl argument
#: back when a handler wrote nothing (the bytes would be the same).
_stores = 0
_u32 = struct.Struct("<I").unpack_from
_u64 = struct.Struct("<Q").unpack_from
_mem_fd: list[int] = []  # the process's /proc/self/mem, opened on first use
_mem_lock = threading.Lock()  # two threads' first use must not open it twice


def _mem() -> int:
    if not _mem_fd:
        with _mem_lock:
            if not _mem_fd:
                from .realfd import REAL, hide

                _mem_fd.append(hide(REAL.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)))
    return _mem_fd[0]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


#: ``process_vm_readv``/``process_vm_writev``; emptied for good when they are forbidden
_pvm: list[Any] = []


def _process_vm(write: bool, local: int, remote: int, n: int) -> bool:
    """Copy ``n`` bytes between this process's ``local`` and ``remote`` addresses with
    ``process_vm_{readv,writev}``.  True when done; ``EFAULT`` when the remote range is not
    accessible; False when the syscalls are not allowed here (use ``/proc/self/mem``)."""
    if not _pvm:
        with _mem_lock:
            if not _pvm:
                libc = ctypes.CDLL(None, use_errno=True)
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
                    _pvm.append(fn)
    fn = _pvm[1 if write else 0]
    if fn is None:
        return False
    lv, rv = _Iovec(local, n), _Iovec(remote, n)
    got = fn(os.getpid(), ctypes.byref(lv), 1, ctypes.byref(rv), 1, 0)
    if got == n:
        return True
    if got < 0 and ctypes.get_errno() in (EPERM, ENOSYS):
        _pvm[:] = [None, None]  # forbidden (seccomp): /proc/self/mem from now on
        return False
    raise kerr(EFAULT)


def _read_mem(addr: int, n: int) -> bytes:
    """``n`` bytes at ``addr``, outside every window (``n > 0``, ``addr`` in range)."""
    buf = ctypes.create_string_buffer(n)
    if _process_vm(False, ctypes.addressof(buf), addr, n):
        return buf.raw
    try:
        data = os.pread(_mem(), n, addr)
    except (OSError, OverflowError):
        raise kerr(EFAULT) from None
    if len(data) != n:
        raise kerr(EFAULT)
    return data


def _write_mem(addr: int, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` at ``addr``, outside every window (``data`` not empty, in range)."""
    n = len(data)
    src = ctypes.create_string_buffer(bytes(data), n)
    if _process_vm(True, ctypes.addressof(src), addr, n):
        return
    try:
        done = os.pwrite(_mem(), data, addr)
    except (OSError, OverflowError):
        raise kerr(EFAULT) from None
    if done != n:
        raise kerr(EFAULT)


def add_window(base: int, view: memoryview) -> int:
    """Serve ``[base, base+len(view))`` from ``view``; returns a key for ``drop_window``."""
    global _hint
    key = id(view)
    _windows[key] = _hint = (base, base + len(view), view)
    return key


def drop_window(key: int) -> None:
    """Forget a window (its view must not outlive the caller's buffer)."""
    global _hint
    w = _windows.pop(key, None)
    if w is not None and _hint is w:
        _hint = _NO_WINDOW


@contextmanager
def ioctl_window(base: int, view: memoryview) -> Iterator[None]:
    """Make ``view`` the fast path for ``[base, base+len)`` for the duration of the block."""
    key = add_window(base, view)
    try:
        yield
    finally:
        drop_window(key)


def _find(addr: int, n: int) -> tuple[int, int, memoryview] | None:
    global _hint
    for w in tuple(_windows.values()):
        if w[0] <= addr and addr + n <= w[1]:
            _hint = w
            return w
    return None


def copy_from_user(addr: int, n: int) -> bytes:
    """Read ``n`` bytes at user address ``addr``; ``EFAULT`` if it is not readable."""
    base, end, view = _hint
    if base <= addr <= end - n and n >= 0:
        return view[addr - base : addr - base + n].tobytes()
    w = _find(addr, n) if n > 0 else None
    if w is not None:
        return w[2][addr - w[0] : addr - w[0] + n].tobytes()
    if n == 0:
        return b""
    if addr <= 0 or n < 0 or addr + n > _MAX_ADDR:
        raise kerr(EFAULT)
    return _read_mem(addr, n)


def copy_to_user(addr: int, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` at user address ``addr``; ``EFAULT`` if it is not writable."""
    global _stores
    _stores += 1
    n = len(data)
    base, end, view = _hint
    if base <= addr and addr + n <= end:
        view[addr - base : addr - base + n] = data
        return
    w = _find(addr, n) if n > 0 else None
    if w is not None:
        w[2][addr - w[0] : addr - w[0] + n] = data
        return
    if n == 0:
        return
    if addr <= 0 or addr + n > _MAX_ADDR:
        raise kerr(EFAULT)
    _write_mem(addr, data)


def get_user_u64(addr: int) -> int:
    """The u64 at ``addr`` (``get_user``)."""
    base, end, view = _hint
    if base <= addr <= end - 8:
        return _u64(view, addr - base)[0]  # type: ignore[no-any-return]
    return int.from_bytes(copy_from_user(addr, 8), "little")


def get_user_u32(addr: int) -> int:
    """The u32 at ``addr`` (``get_user``)."""
    base, end, view = _hint
    if base <= addr <= end - 4:
        return _u32(view, addr - base)[0]  # type: ignore[no-any-return]
    return int.from_bytes(copy_from_user(addr, 4), "little")


def put_user_u32(addr: int, value: int) -> None:
    copy_to_user(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))


def get_user_struct(cls: type[_S], addr: int) -> _S:
    """Copy a ctypes struct in from user memory."""
    return cls.from_buffer_copy(copy_from_user(addr, ctypes.sizeof(cls)))


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
