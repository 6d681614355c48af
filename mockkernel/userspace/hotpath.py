"""The redirection's hot dispatchers: ``os.open/close/read/write/fstat`` and ``fcntl.ioctl``.

Each function here decides "mock fd or real fd" and, for a real fd, makes the real call
at once.  That decision is the whole cost the redirection adds to a program's real
syscalls, so these six are written for CPython's call path:

* plain positional parameters (a keyword-only parameter disables the call
  specialisation: ``os.open``'s ``dir_fd`` is accepted positionally here);
* the per-redirection state is read from *globals*, not closure cells: a function's
  free variables are copied into its frame on every call, globals are not.  Each
  :class:`~mockkernel.userspace.redirect.Redirection` gets its own copies of these
  functions bound to a private globals dict (:func:`bind`), so kernels stay independent;
* mock-or-real is one list index: ``slots[fd]`` (``Process.slots``) is the mock file or
  None; an IndexError (past every mock fd) or TypeError (not an int) means "not a mock
  fd" too.  A negative fd indexes from the end of the list, so the mock branch
  re-checks ``fd >= 0``;
* an interface ioctl (``SIOCGIFINDEX`` & co., ``_dev_ioctls``) on a real fd is the one
  exception a real ioctl pays for (one set lookup): on a real socket it is the kernel's
  (``_sock_ioctl``), as it would be under the supervisor -- never the host's devices;
* with tracing off a mock fd's call goes to the syscall layer's function itself
  (``syscalls.fd.sys_close``, ``syscalls.rw.sys_read``, ...: what ``Process.sys_<name>``
  forwards to when untraced), and the ioctl fast branches run in ``m_ioctl``'s frame;
  with tracing on, through ``Process.sys_<name>``, which traces it;
* ``open`` of ``/dev/<name>`` (a str, no ``dir_fd``, no ``O_CREAT``/``O_PATH``/
  ``O_DIRECTORY``, untraced) reads the node from the live ``/dev`` directory: a device
  node opens through ``syscalls.namei.open_chrdev`` (no walk), a host device the mock
  ``/dev`` shows (``HOST_DEV``) is the real call; anything else takes ``_open_slow``;
* a TCP socket the kernel made mock (bound to a NIC address) keeps a real, never
  connected socket under its number: a real ``read``/``write`` there fails with
  ``ENOTCONN``/``EPIPE``, and only then is the kernel asked (``_notconn_read``/
  ``_notconn_write``), so a successful real call pays nothing for it.

The module-level values below are placeholders that only type the names; the bound
copies never read them.  The slow paths live with their families (``paths.py``: mock
paths; ``ioctl.py``: every argument kind of ``ioctl``; ``fdcalls.py``: the mock TCP
fallbacks) and are passed in as ``_open_slow`` and friends.  The ioctl fast branch is a
specialised ``vfs_ioctl`` (:mod:`mockkernel.syscalls.ioctl`); ``_vfs_ioctls`` is that
layer's ``VFS_IOCTL_CMDS``: the commands it must leave to ``do_vfs_ioctl``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Container, Sequence
from errno import EBADF, EINVAL, ENOTCONN, ENOTTY, EPIPE
from os import O_CLOEXEC, O_CREAT, O_DIRECTORY, O_PATH
from types import MappingProxyType
from typing import Any

from ..errors import kerr
from ..uaccess import LOCAL
from ..vfs import HOST_DEV, ChrDev, Dir
from .paths import with_name

IOCTL_BUFSZ = 1024
#: ``open`` flags whose rules only the slow path knows (for a device node found at once)
_OPEN_SLOW_FLAGS = O_PATH | O_DIRECTORY | O_CREAT


def as_fd(obj: Any) -> int:
    """CPython's ``PyObject_AsFileDescriptor`` for an object with ``fileno()`` (an int is
    returned as is: the callers' real functions judge a negative one)."""
    if isinstance(obj, int):
        return int(obj)
    get = getattr(obj, "fileno", None)
    if get is None:
        raise TypeError("argument must be an int, or have a fileno() method.")
    n = get()
    if not isinstance(n, int):
        raise TypeError("fileno() returned a non-integer")
    if n < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({n})")
    return n


# -- per-redirection names (placeholders; see bind()) --------------------------------------
def _unbound(*args: Any) -> Any:
    raise RuntimeError("mockkernel.userspace.hotpath: use the copies bind() returns")


_slots: Sequence[Any] = ()
_proc: Any = None
_tracer: Any = None
_scratch: Any = None
_vfs_ioctls: frozenset[int] = frozenset()  # syscalls.ioctl.VFS_IOCTL_CMDS
_held: Container[int] = frozenset()  # realfd's held numbers: the kernel's, not the program's
_real_open: Callable[..., int] = _unbound
_real_close: Callable[[int], None] = _unbound
_real_read: Callable[[int, int], bytes] = _unbound
_real_write: Callable[[int, Any], int] = _unbound
_real_fstat: Callable[[int], Any] = _unbound
_real_ioctl: Callable[..., Any] = _unbound
_open_slow: Callable[..., int] = _unbound
_open_chrdev: Callable[..., int] = _unbound  # syscalls.namei.open_chrdev
# the syscall layer's functions that Process.sys_<name> calls (untraced: called directly,
# one frame for the kernel's side as with any syscall; traced: through Process.sys_<name>)
_sys_close: Callable[..., None] = _unbound  # syscalls.fd.sys_close
_sys_read: Callable[..., bytes] = _unbound  # syscalls.rw.sys_read
_sys_write: Callable[..., int] = _unbound  # syscalls.rw.sys_write
_sys_fstat: Callable[..., Any] = _unbound  # syscalls.stat.sys_fstat
#: [the Vfs root directory (its "dev" entry: /dev)], filled at the first open: a kernel
#: whose boot is deferred (``boot(lazy=True)``) boots then, not at install
_vfs_root: Any = (None,)  # (bind gives each redirection its own list)
_find_vfs_root: Callable[[], Any] = _unbound
_notconn_read: Callable[..., bytes] = _unbound
_notconn_write: Callable[..., int] = _unbound
_fileno_ioctl: Callable[..., Any] = _unbound
_general_ioctl: Callable[..., Any] = _unbound
_dev_ioctls: Container[int] = frozenset()  # net.dev_ioctl's SIOCGIF*/SIOCSIF* numbers
_sock_ioctl: Callable[..., Any] = _unbound


def m_open(path: Any, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
    try:  # every mock path starts "/d", "/s" or "/p"; a str's second char decides
        maybe_mock = path[1] in "dsp"
    except Exception:  # "", "/", bytes, PathLike, ...: the slow path sorts them out
        maybe_mock = True
    if maybe_mock or dir_fd is not None:
        # "/dev/<name>" of a device node, untraced: no walk (the node is read from the live
        # /dev directory; any other path, flag or kind takes the slow path's rules)
        if (
            type(path) is str
            and path[:5] == "/dev/"
            and dir_fd is None
            and not flags & _OPEN_SLOW_FLAGS
            and not _tracer.enabled
        ):
            root = _vfs_root[0]
            if root is None:
                root = _vfs_root[0] = _find_vfs_root()
            dev = root.entries.get("dev")
            if type(dev) is Dir:
                name = path[5:]
                node = dev.entries.get(name)
                if type(node) is ChrDev:
                    try:
                        return _open_chrdev(_proc, node, path, flags | O_CLOEXEC)
                    except OSError as e:
                        raise with_name(e, path) from None
                if node is None and name in HOST_DEV and not dev.owned:
                    return _real_open(path, flags, mode)  # (/dev/null: the walk's answer)
        return _open_slow(path, flags, mode, dir_fd)
    return _real_open(path, flags, mode)


def m_close(fd: int) -> None:
    try:
        file = _slots[fd]
    except IndexError:
        if fd in _held:  # a real fd the kernel holds: not the program's to close
            raise kerr(EBADF) from None
        return _real_close(fd)
    except TypeError:
        return _real_close(fd)
    if file is None or fd < 0:
        if fd in _held:
            raise kerr(EBADF)
        return _real_close(fd)
    if _tracer.enabled:
        _proc.sys_close(fd)
    else:  # (Process.sys_close untraced is this call)
        _sys_close(_proc, fd)
    return None


def m_read(fd: int, n: int) -> bytes:
    try:
        file = _slots[fd]
    except (IndexError, TypeError):
        return _real_read(fd, n)
    if file is None or fd < 0:
        try:
            return _real_read(fd, n)
        except OSError as e:  # (free when nothing is raised)
            if e.errno != ENOTCONN:
                raise
            return _notconn_read(fd, n, e)
    if n < 0:
        raise kerr(EINVAL)
    if _tracer.enabled:
        data: bytes = _proc.sys_read(fd, n)
        return data
    return _sys_read(_proc, fd, n)  # (Process.sys_read untraced is this call)


def m_write(fd: int, data: Any) -> int:
    try:
        file = _slots[fd]
    except (IndexError, TypeError):
        return _real_write(fd, data)
    if file is None or fd < 0:
        try:
            return _real_write(fd, data)
        except OSError as e:  # (free when nothing is raised)
            if e.errno != EPIPE:
                raise
            return _notconn_write(fd, data, e)
    if _tracer.enabled:
        written: int = _proc.sys_write(fd, bytes(data))
        return written
    return _sys_write(_proc, fd, bytes(data))  # (Process.sys_write untraced)


def m_fstat(fd: int) -> Any:
    try:
        file = _slots[fd]
    except (IndexError, TypeError):
        return _real_fstat(fd)
    if file is None or fd < 0:
        return _real_fstat(fd)
    if _tracer.enabled:
        return _proc.sys_fstat(fd)
    return _sys_fstat(_proc, fd)  # (Process.sys_fstat untraced)


def m_ioctl(fd: Any, request: int, arg: Any = 0, mutate_flag: bool = True, /) -> Any:
    try:
        file = _slots[fd]
    except IndexError:
        if request in _dev_ioctls:  # SIOCGIFINDEX & co.: the kernel's devices if a socket
            return _sock_ioctl(fd, request, arg, mutate_flag)
        return _real_ioctl(fd, request, arg, mutate_flag)
    except TypeError:  # an object with fileno()
        return _fileno_ioctl(fd, request, arg, mutate_flag)
    if file is None:
        if request in _dev_ioctls:
            return _sock_ioctl(fd, request, arg, mutate_flag)
        return _real_ioctl(fd, request, arg, mutate_flag)
    if type(fd) is not int or fd < 0:  # an int subclass, or a negative alias
        return _fileno_ioctl(fd, request, arg, mutate_flag)
    # a mock fd: the mock ioctl, its two fast branches in this frame (one call less)
    cmd = request & 0xFFFFFFFF
    # the two common argument kinds (a small bytearray, an int) are dispatched inline
    if not _tracer.enabled and cmd not in _vfs_ioctls:
        targ = type(arg)
        fop = file.f_op
        if targ is bytearray:
            length = len(arg)
            if mutate_flag and length <= IOCTL_BUFSZ and fop.plain_ioctls:
                handler = fop.ioctls.get(cmd)
                if handler is None:
                    raise kerr(ENOTTY)  # (the copy back would change nothing)
                addr, sview = _scratch.t
                sview[:length] = arg
                sview[length] = 0
                stores = LOCAL.stores
                try:
                    return handler(file, cmd, addr)
                finally:
                    if LOCAL.stores != stores:  # the handler wrote: copy back
                        arg[:] = sview[:length]
        elif targ is int and -0x80000000 <= arg <= 0x7FFFFFFF and fop.plain_ioctls:
            handler = fop.ioctls.get(cmd)
            if handler is None:
                raise kerr(ENOTTY)
            return handler(file, cmd, arg & 0xFFFFFFFF)
    return _general_ioctl(file, fd, cmd, arg, mutate_flag)


_HOT = MappingProxyType(
    {
        "open": m_open,
        "close": m_close,
        "read": m_read,
        "write": m_write,
        "fstat": m_fstat,
        "ioctl": m_ioctl,
    }
)


def bind(**names: Any) -> dict[str, Any]:
    """Copies of the hot dispatchers whose globals are this module's plus ``names``."""
    ns = dict(globals())
    unknown = set(names) - set(ns)
    if unknown:
        raise TypeError(f"hotpath.bind: unknown names {sorted(unknown)}")
    ns.update(names)
    out: dict[str, Any] = {}
    for key, fn in _HOT.items():
        copy = types.FunctionType(fn.__code__, ns, fn.__name__, fn.__defaults__)
        copy.__qualname__ = fn.__qualname__
        copy.__doc__ = fn.__doc__
        copy.__module__ = fn.__module__
        out[key] = copy
    ns.update({fn.__name__: out[key] for key, fn in _HOT.items()})  # calls among them
    return out
