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
* an interface ioctl (``SIOCGIFINDEX`` & co.) on a real fd is the one exception a real
  ioctl pays for: a 32-bit command outside their range (``_dev_ioctl_min`` ..
  ``_dev_ioctl_max``) is the real call at once, any other is judged by its 32 bits
  (``_real_or_sock_ioctl``): on a real socket it is the kernel's, as it would be under
  the supervisor -- never the host's devices;
* locals are few (each costs every call, a real fd's too, at frame entry and exit);
* with tracing off a mock fd's call goes to the syscall layer's function itself
  (``syscalls.fd.sys_close``, ``syscalls.rw.sys_read``, ...: what ``Process.sys_<name>``
  forwards to when untraced), and the ioctl fast branches run in ``m_ioctl``'s frame;
  with tracing on, through ``Process.sys_<name>``, which traces it;
* ``open`` of ``/dev/<name>`` (a str, no ``dir_fd``, no ``O_CREAT``/``O_PATH``/
  ``O_DIRECTORY``, untraced) reads the node from ``Vfs.dev_chrdevs`` (one dict probe by
  the whole path: what earlier opens found in the live ``/dev`` directory, emptied by
  every change to the tree), else from the live directory: a device node opens through
  ``syscalls.namei.open_chrdev`` (no walk), a host device the mock ``/dev`` shows
  (``HOST_DEV``) is the real call; anything else takes ``_open_slow``;
* a TCP socket the kernel made mock (bound to a NIC address) keeps a real, never
  connected socket under its number: a real ``read``/``write`` there fails with
  ``ENOTCONN``/``EPIPE``, and only then is the kernel asked (``_notconn_read``/
  ``_notconn_write``), so a successful real call pays nothing for it.

The module-level values below are placeholders that only type the names; the bound
copies never read them.  The slow paths live with their families (``paths.py``: mock
paths; ``ioctl.py``: every argument kind of ``ioctl``; ``fdcalls.py``: the mock TCP
fallbacks) and are passed in as ``_open_slow`` and friends.  The ioctl fast branch is a
specialised ``vfs_ioctl`` (:mod:`mockkernel.syscalls.ioctl`): one lookup in the file
ops' table of the handlers it may call itself (``_ioctl_tables``, made by
``IoctlCalls.ioctl_table`` without that layer's ``VFS_IOCTL_CMDS``); an
:class:`~mockkernel.fs.IoctlU64` handler gets its ``__u64`` from the caller's
``bytearray`` itself (``struct``, no scratch copy).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Container, Mapping, Sequence
from errno import EBADF, EINVAL, ENOTCONN, EPIPE
from os import O_CLOEXEC, O_CREAT, O_DIRECTORY, O_PATH
from struct import Struct
from struct import error as StructError
from types import MappingProxyType
from typing import Any

from ..errors import kerr
from ..uaccess import LOCAL
from ..vfs import HOST_DEV, HOST_DEV_OPEN, ChrDev, Dir
from .paths import with_name

IOCTL_BUFSZ = 1024
_u64 = Struct("<Q").unpack_from  # (as uaccess.get_user_u64 reads a __u64)
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
#: [the kernel's Vfs], found at the first open of a ``/dev/<name>``: a kernel whose boot
#: is deferred (``boot(lazy=True)``) boots then, not at install
_vfs: Any = (None,)  # (bind gives each redirection its own lists)
_find_vfs: Callable[[], Any] = _unbound
#: [``Vfs.dev_chrdevs``] (``"/dev/<name>"`` -> device node) once ``_vfs`` is found; until
#: then [an empty dict of the redirection's own]
_chrdevs: Any = ()
_notconn_read: Callable[..., bytes] = _unbound
_notconn_write: Callable[..., int] = _unbound
_fileno_ioctl: Callable[..., Any] = _unbound
_general_ioctl: Callable[..., Any] = _unbound
_real_or_sock_ioctl: Callable[..., Any] = _unbound
_do_ioctl: Callable[..., int] = _unbound  # syscalls.ioctl.do_ioctl
#: the least and the greatest interface ioctl (net.dev_ioctl's SIOCGIF*/SIOCSIF* numbers)
_dev_ioctl_min: int = 0
_dev_ioctl_max: int = 0
#: file ops -> {cmd: (handler, IoctlU64's value handler or None)}: the commands m_ioctl
#: may dispatch itself (ioctl.py: IoctlCalls.ioctl_table)
_ioctl_tables: Mapping[Any, dict[int, Any]] = types.MappingProxyType({})
_ioctl_table: Callable[[Any], dict[int, Any]] = _unbound


def m_open(path: Any, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
    try:  # every mock path starts "/d", "/s" or "/p"; a str's second char decides
        maybe_mock = path[1] in "dsp"
    except Exception:  # "", "/", bytes, PathLike, ...: the slow path sorts them out
        maybe_mock = True
    if maybe_mock or dir_fd is not None:
        # "/dev/<name>" of a device node or a host device (/dev/null), untraced: no walk
        # (read from the live /dev directory, or from the Vfs's memo of what was found
        # there, which every change to the tree empties; any other path, flag or kind
        # takes the slow path)
        if (
            type(path) is str
            and dir_fd is None
            and not flags & _OPEN_SLOW_FLAGS
            and not _tracer.enabled
        ):
            node = _chrdevs[0].get(path)
            if node is None and path[:5] == "/dev/":
                vfs = _vfs[0]
                if vfs is None:
                    vfs = _vfs[0] = _find_vfs()
                    _chrdevs[0] = vfs.dev_chrdevs
                dev = vfs.root.entries.get("dev")
                if type(dev) is Dir:
                    name = path[5:]
                    node = dev.entries.get(name)
                    if type(node) is ChrDev:
                        chrdevs = _chrdevs[0]
                        chrdevs[path] = node
                        if dev.entries.get(name) is not node:  # unlinked meanwhile: the
                            chrdevs.pop(path, None)  # unlink's emptying came first
                    elif node is None and name in HOST_DEV and not dev.owned:
                        chrdevs = _chrdevs[0]
                        chrdevs[path] = HOST_DEV_OPEN
                        if name in dev.entries or dev.owned:  # (as above)
                            chrdevs.pop(path, None)
                        return _real_open(path, flags, mode)  # (/dev/null: the walk's answer)
                    else:
                        node = None
            if node is not None:
                if node is HOST_DEV_OPEN:
                    return _real_open(path, flags, mode)
                try:
                    return _open_chrdev(_proc, node, path, flags | O_CLOEXEC)
                except OSError as e:
                    raise with_name(e, path) from None
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
    except IndexError:  # past every mock fd
        file = None
    except TypeError:  # an object with fileno()
        return _fileno_ioctl(fd, request, arg, mutate_flag)
    if file is None:
        # a real fd: a 32-bit command outside the interface ioctls' range is the real
        # call at once (the commonest, below it, after one compare)
        try:
            if -1 < request < _dev_ioctl_min or _dev_ioctl_max < request <= 0xFFFFFFFF:
                return _real_ioctl(fd, request, arg, mutate_flag)
        except TypeError:
            if type(request) is int:
                raise  # the real call's own (raised before it made the syscall)
            # a request that is not an int: the real call below says what is wrong
        return _real_or_sock_ioctl(fd, request, arg, mutate_flag)
    if type(fd) is not int or fd < 0:  # an int subclass, or a negative alias
        return _fileno_ioctl(fd, request, arg, mutate_flag)
    # a mock fd: untraced, the two common argument kinds (a small bytearray, an int) are
    # dispatched here, from the file's ops' table of the commands vfs_ioctl would hand
    # to the driver's default unlocked_ioctl (keyed by the 32-bit command: an int request
    # found there is that command already)
    if not _tracer.enabled and type(request) is int:
        # (few locals: each one costs every call, a real fd's too, at frame entry and exit)
        try:
            entry = _ioctl_tables[file.f_op].get(request)
        except KeyError:  # the first ioctl on a file of these ops
            entry = _ioctl_table(file.f_op).get(request)
        if entry is not None:  # (handler, IoctlU64's value handler or None)
            if type(arg) is bytearray:
                if mutate_flag:
                    if entry[1] is not None:
                        # an IoctlU64: its one __u64 read straight from the caller's
                        # buffer (8 bytes or more: what the scratch copy would hold),
                        # unless a thread has a fail-nth count armed: then the user
                        # copy, a fault point
                        if not LOCAL.armed_cpus:
                            try:
                                value = _u64(arg)[0]
                            except StructError:  # shorter than 8 bytes
                                pass
                            else:
                                return entry[1](file, request, value)
                    else:
                        length = len(arg)
                        if length <= IOCTL_BUFSZ:
                            addr, sview = _scratch.t
                            sview[:length] = arg
                            sview[length] = 0
                            stores = LOCAL.stores
                            try:
                                return entry[0](file, request, addr)
                            finally:
                                if LOCAL.stores != stores:  # the handler wrote: copy back
                                    arg[:] = sview[:length]
            elif type(arg) is int and -1 < arg < 0x80000000:
                return entry[0](file, request, arg)
        elif type(arg) is int and -1 < arg < 0x80000000:
            # not the driver's table: do_vfs_ioctl's (FIOCLEX, ...), an own unlocked_ioctl
            # or ENOTTY, as IoctlCalls.call would reach them untraced (two frames fewer)
            return _do_ioctl(_proc, fd, file, request & 0xFFFFFFFF, arg)
    return _general_ioctl(file, fd, request & 0xFFFFFFFF, arg, mutate_flag)


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
