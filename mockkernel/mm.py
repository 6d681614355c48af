"""Memory mappings: a driver's ``mmap`` op fills a ``Vma`` with real backing.

Userspace gets a real ``mmap.mmap`` object.  A driver describes what backs the
mapping by calling ``vma.remap(fd, offset, length)`` for each piece, in order
(the analogue of ``remap_pfn_range``/``vm_insert_page``): the fd is a *real*
file the kernel holds (a memfd behind a udmabuf, a BAR's memfd, ...).

Every mapping is built the same way: an *anonymous* ``mmap.mmap`` reserves the
address range (so the Python object has the caller's length, protection and
access mode, and -- unlike a file mapping -- no fd of its own), then each piece
is laid over it with ``MAP_FIXED``.  The object the program holds spans them
all and is coherent with every backing file in both directions.

``Mapping`` records a live mapping (what ``/proc/<pid>/maps`` describes with
the mock file's name, inode and offset); :func:`proc_maps` rewrites the real
maps text so that each mock mapping shows as the one line real Linux shows,
instead of the lines of the memfds behind it.

A driver that revokes userspace's access to what it mapped -- vfio-pci when a
device stops decoding memory: ``unmap_mapping_range`` and a fault handler that
answers ``VM_FAULT_SIGBUS`` -- finds the mappings of its files with
:func:`file_mappings` and calls :meth:`Mapping.zap`: the pieces are replaced in
place by a shared mapping of an empty memfd, so any access from now on raises
``SIGBUS`` (in every process that shares the mapping, a forked child included),
exactly as a zapped mapping whose fault handler refuses.  :meth:`Mapping.restore`
lays the driver's pieces back: what the fault handler inserting the pages again
on the next access amounts to, done eagerly.  An ``mmap`` op called while access is
revoked sets ``vma.zapped``: the new mapping starts zapped.

A driver whose pages *moved* (a punch took pinned memfd pages to kernel-private
backing, ``mm/gup.py``) lays the new pieces over its mappings with :meth:`Mapping.remap`,
and its kernel views with :meth:`KernelMap.remap`: both in place, at the same address.
"""

from __future__ import annotations

import ctypes
import functools
import mmap as _mmap
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from errno import EINVAL, ENOMEM
from typing import TYPE_CHECKING, Protocol

from .context import Subsystem
from .errors import kerr
from .realfd import REAL

if TYPE_CHECKING:
    from .context import KernelContext
    from .fs import File
    from .process import TaskContext

__all__ = [
    "PAGE_SIZE",
    "KernelMap",
    "KernelMaps",
    "MapOwner",
    "MappedFile",
    "Mapping",
    "Vma",
    "build_mapping",
    "file_mappings",
    "kernel_map_ranges",
    "page_align",
    "pieces_of",
    "proc_maps",
]

PAGE_SIZE = _mmap.PAGESIZE
_MAP_FIXED = 0x10  # linux/mman.h (x86-64)
_MAP_ANONYMOUS = 0x20
_PROT_RW = _mmap.PROT_READ | _mmap.PROT_WRITE
_RealMmap = _mmap.mmap


def page_align(n: int) -> int:
    """``PAGE_ALIGN``: ``n`` rounded up to a whole number of pages."""
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


@dataclass(slots=True)
class Vma:
    """The mapping request a driver's ``mmap`` op sees (``struct vm_area_struct``)."""

    length: int
    pgoff: int  # offset into the file, in pages
    prot: int
    flags: int
    segments: list[tuple[int, int, int]] = field(default_factory=list)
    #: set by an ``mmap`` op whose fault handler would refuse right now: the mapping
    #: starts zapped (``SIGBUS`` on access) until the driver restores it (``Mapping``)
    zapped: bool = False

    @property
    def offset(self) -> int:
        return self.pgoff * PAGE_SIZE

    @property
    def pages(self) -> int:
        """``vma_pages``: the length in whole pages."""
        return page_align(self.length) // PAGE_SIZE

    def remap(self, fd: int, offset: int, length: int) -> None:
        """Back the next ``length`` bytes of the mapping with ``fd`` at ``offset``."""
        if offset % PAGE_SIZE or length <= 0:
            raise kerr(EINVAL)
        self.segments.append((fd, offset, length))

    def backed(self) -> bool:
        """Whether the op's pieces cover the whole mapping (one piece: no sum to make)."""
        segs = self.segments
        if len(segs) == 1:
            return segs[0][2] >= self.length
        return sum(seg[2] for seg in segs) >= self.length


#: ``(offset in the mapping, fd, offset in the fd, length)``: one piece laid with MAP_FIXED
Piece = tuple[int, int, int, int]


def pieces_of(segments: Iterable[tuple[int, int, int]], length: int) -> tuple[Piece, ...]:
    """The pieces a mapping of ``length`` bytes lays for a driver's ``segments``
    (``Vma.remap`` order), runs contiguous in one file merged into one piece."""
    pieces: list[Piece] = []
    pos = 0
    for fd, off, n in segments:
        take = min(n, length - pos)
        if take <= 0:
            break
        if pieces and pieces[-1][1] == fd and pieces[-1][2] + pieces[-1][3] == off:
            at, _, off0, n0 = pieces[-1]
            pieces[-1] = (at, fd, off0, n0 + take)
        else:
            pieces.append((pos, fd, off, take))
        pos += page_align(take)
    return tuple(pieces)


@dataclass(eq=False, slots=True)
class Mapping:
    """A live userspace mapping of a mock file, as ``/proc/<pid>/maps`` describes it.

    ``pieces`` are what the driver's ``mmap`` op laid over it and ``map_prot``/
    ``map_flags`` the real ``mmap(2)`` arguments they were laid with; :meth:`zap` and
    :meth:`restore` use them.
    """

    start: int
    length: int  # whole pages
    pgoff: int
    prot: int
    shared: bool
    file: File
    pieces: tuple[Piece, ...] = ()
    map_prot: int = _mmap.PROT_READ
    map_flags: int = _mmap.MAP_SHARED
    #: True between :meth:`zap` and :meth:`restore`: every access raises ``SIGBUS``
    zapped: bool = False

    @property
    def end(self) -> int:
        return self.start + self.length

    def zap(self) -> None:
        """Make every access to the mapping raise ``SIGBUS`` until :meth:`restore`.

        ``unmap_mapping_range`` followed by a fault handler that answers
        ``VM_FAULT_SIGBUS``: the whole range is replaced, in place and with the same
        protection, by a mapping of an empty memfd, whose every page lies past its end.
        The address range, the object userspace holds and ``/proc/<pid>/maps`` stay as
        they were.  Idempotent.  ``ValueError`` for a mapping that records no pieces
        (one not made by ``mmap``), which :meth:`restore` could not give back.
        """
        if self.zapped:
            return
        if not self.pieces:
            raise ValueError(f"cannot zap {self!r}: it records no pieces to restore")
        _map_empty(self.start, self.length, self.map_prot, self.map_flags)
        self.zapped = True

    def restore(self) -> None:
        """Lay the driver's pieces over a zapped mapping again (idempotent).

        What the fault handler inserting the pages again on the next access shows,
        done at once.  The fds the driver gave ``Vma.remap`` must still be open.
        """
        if not self.zapped:
            return
        for at, fd, off, length in self.pieces:
            _map_fixed(self.start + at, length, self.map_prot, self.map_flags, fd, off)
        self.zapped = False

    def remap(self, segments: Sequence[tuple[int, int, int]]) -> None:
        """The memory behind the mapping moved: lay ``segments`` (what the driver's
        ``mmap`` op would now give ``Vma.remap`` for this mapping's range) in place.

        What the driver's fault handler inserting the moved pages on the next access
        amounts to (after a punch moved pinned pages, ``mm/gup.py``), done at once:
        only the pieces that changed are laid again.  A zapped mapping only records
        them; :meth:`restore` lays them.
        """
        pieces = pieces_of(segments, self.length)
        old = set(self.pieces)
        self.pieces = pieces
        changed = [p for p in pieces if p not in old]
        if changed and not self.zapped:
            self._lay(changed)

    def _lay(self, pieces: Sequence[Piece]) -> None:
        """Lay ``pieces`` over the mapping with ``MAP_FIXED`` (this process)."""
        for at, fd, off, length in pieces:
            _map_fixed(self.start + at, length, self.map_prot, self.map_flags, fd, off)

    def perms(self) -> str:
        return (
            ("r" if self.prot & _mmap.PROT_READ else "-")
            + ("w" if self.prot & _mmap.PROT_WRITE else "-")
            + ("x" if self.prot & _mmap.PROT_EXEC else "-")
            + ("s" if self.shared else "p")
        )

    def maps_line(self) -> str:
        ino = self.file.inode
        return _maps_line(
            self.start,
            self.end,
            self.perms(),
            self.pgoff * PAGE_SIZE,
            os.major(ino.dev),
            os.minor(ino.dev),
            ino.ino,
            self.file.link_name,
        )


class MapOwner(Protocol):
    """The kernel side of a map object: what its close (or collection), ``madvise``,
    ``flush`` and ``size`` ask.  The syscall layer sets one on each map it makes
    (``syscalls.mmap.ProcessMm``); a front-end may set its own, which extends it."""

    def unmap(self, m: MappedFile) -> None:
        """``m`` was closed or collected: forget its record (``m._mk_map``) and drop what
        it holds.  Called once."""

    def madvise(self, addr: int, length: int, advice: int) -> bool:
        """The kernel's ``madvise``; True: apply the advice to the real mapping too."""

    def msync(self, addr: int, length: int, flags: int) -> None:
        """The kernel's ``msync``."""

    def fstat(self, fd: int) -> os.stat_result:
        """``fstat`` of the fd the map keeps (``m._mk_fd``), for ``size()``."""


class MappedFile(_RealMmap):
    """A mapping of a mock file: the object ``mmap.mmap`` returns for a mock fd.

    Closing it (or its collection) unmaps it and asks its owner (:class:`MapOwner`) to
    drop what the map holds: the front-end closes the fd CPython's mmap keeps (a dup of
    the mapped fd), the kernel forgets the record and drops its file reference.
    """

    #: the mapping's record (``/proc/<pid>/maps``; ``proc.mappings`` once the syscall
    #: layer adds it), set by :func:`build_mapping`
    _mk_map: Mapping
    #: the kernel side (set by the syscall layer); taken from the map when it goes, so
    #: the owner's ``unmap`` runs once whichever comes first, ``close`` or collection
    _mk_owner: MapOwner
    #: the fd CPython's mmap object would hold (a dup of the mapped fd), -1 for none
    _mk_fd: int = -1
    #: set by :func:`build_mapping` with ``direct``: the number of the dup CPython made
    #: when it mapped the piece's fd itself (the map no longer owns it), else -1
    _mk_dupfd: int = -1
    #: the length asked for (what ``munmap`` unmaps)
    _mk_len: int = 0
    #: CPython's ``access`` after ``new_mmap_object`` chose it: ``ACCESS_READ`` for a
    #: read-only ``prot``, ``ACCESS_WRITE`` for a write-only one; it decides ``resize``'s
    #: ``is_resizeable`` and whether ``flush`` makes a call
    _mk_access: int = _mmap.ACCESS_DEFAULT

    @property
    def _mk_addr(self) -> int:
        """The start address of the mapping."""
        return self._mk_map.start

    def madvise(self, option: int, start: int = 0, length: int | None = None, /) -> None:
        """As CPython's (its argument checks), answered by the kernel: a mock mapping is
        device memory, and the real memfd under it must not be advised (``MADV_REMOVE``
        would punch the backing, ``MADV_DONTNEED`` drop it)."""
        if self.closed:
            raise ValueError("mmap closed or invalid")
        owner: MapOwner | None = self.__dict__.get("_mk_owner")
        if owner is None:
            return super().madvise(option, start, *(() if length is None else (length,)))
        size = len(self)
        if start < 0 or start >= size:
            raise ValueError("madvise start out of bounds")
        if length is None:
            length = size - start
        if length < 0:
            raise ValueError("madvise length invalid")
        length = min(length, size - start)
        if owner.madvise(self._mk_map.start + start, length, option):
            super().madvise(option, start, length)
        return None

    def flush(self, offset: int = 0, size: int | None = None, /) -> None:
        """As CPython's: ``msync(MS_SYNC)`` of the range, answered by the kernel."""
        if self.closed:
            raise ValueError("mmap closed or invalid")
        owner: MapOwner | None = self.__dict__.get("_mk_owner")
        if owner is None:
            super().flush(offset, *(() if size is None else (size,)))
            return
        total = len(self)
        if size is None:
            size = total - offset
        if size < 0 or offset < 0 or total - offset < size:
            raise ValueError("flush values out of range")
        if size == 0 or self._mk_access in (_mmap.ACCESS_READ, _mmap.ACCESS_COPY):
            return
        owner.msync(self._mk_map.start + offset, size, 4)  # MS_SYNC

    def close(self) -> None:
        _RealMmap.close(self)  # (not super(): close is a hot path)
        owner = self.__dict__.pop("_mk_owner", None)
        if owner is not None:
            owner.unmap(self)

    def __del__(self) -> None:
        # a collected map is unmapped as a closed one is (the base type's dealloc
        # munmaps after this); the owner's unmap runs once, whichever comes first
        owner = self.__dict__.pop("_mk_owner", None)
        if owner is not None:
            owner.unmap(self)

    def __exit__(self, *exc: object) -> None:
        # CPython's mmap.__exit__ calls the C close, not an override: unmap through ours
        self.close()

    def size(self) -> int:
        """As CPython's: the size of the file behind the map's own fd (``fstat``)."""
        if self.closed:
            raise ValueError("mmap closed or invalid")
        owner: MapOwner | None = self.__dict__.get("_mk_owner")
        if self._mk_fd < 0 or owner is None:
            return super().size()
        return owner.fstat(self._mk_fd).st_size

    def resize(self, newsize: int) -> None:
        """A driver mapping cannot grow or shrink (CPython would ``ftruncate`` the file,
        which a device or dma-buf file refuses with ``EINVAL``)."""
        if self.closed:
            raise ValueError("mmap closed or invalid")
        if self._mk_access not in (_mmap.ACCESS_WRITE, _mmap.ACCESS_DEFAULT):
            raise TypeError("mmap can't resize a readonly or copy-on-write memory map.")
        raise kerr(EINVAL)


@functools.cache
def _load_libc() -> ctypes.CDLL:
    """libc with ``mmap``/``munmap`` typed, loaded once per process (an immutable fact;
    an exception while loading caches nothing, so the next call tries again)."""
    import ctypes.util  # (here: it imports subprocess, shutil and tempfile)

    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.restype = ctypes.c_int
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


def _libc_mmap() -> Callable[..., int]:
    fn: Callable[..., int] = _load_libc().mmap
    return fn


def _libc_munmap() -> Callable[..., int]:
    fn: Callable[..., int] = _load_libc().munmap
    return fn


class _PyBuffer(ctypes.Structure):
    """``Py_buffer`` (``obj`` as a plain pointer: ``PyBuffer_Release`` owns that ref)."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


# the two C-API calls, typed once (immutable function pointers, not per-map set-up)
_PyObject_GetBuffer = ctypes.PYFUNCTYPE(
    ctypes.c_int, ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int
)(("PyObject_GetBuffer", ctypes.pythonapi))
_PyBuffer_Release = ctypes.PYFUNCTYPE(None, ctypes.POINTER(_PyBuffer))(
    ("PyBuffer_Release", ctypes.pythonapi)
)


def _buffer_address(obj: object) -> int:
    """The address of ``obj``'s memory, read-only buffers included (``PyBUF_SIMPLE``).

    ``ctypes.c_char.from_buffer`` would do for writable objects only: a
    ``PROT_READ`` map would raise ``TypeError``.
    """
    view = _PyBuffer()
    ref = ctypes.byref(view)
    if _PyObject_GetBuffer(obj, ref, 0) != 0:  # raises the Python error itself
        raise RuntimeError("PyObject_GetBuffer failed")
    try:
        addr = view.buf
    finally:
        _PyBuffer_Release(ref)
    if not addr:
        raise RuntimeError("PyObject_GetBuffer gave no address")
    return int(addr)


def _prot_flags(flags: int, prot: int, access: int) -> tuple[int, int]:
    """The ``mmap(2)`` flags and prot CPython uses for ``(flags, prot, access)``."""
    if access == _mmap.ACCESS_READ:
        return _mmap.MAP_SHARED, _mmap.PROT_READ
    if access == _mmap.ACCESS_WRITE:
        return _mmap.MAP_SHARED, _mmap.PROT_READ | _mmap.PROT_WRITE
    if access == _mmap.ACCESS_COPY:
        return _mmap.MAP_PRIVATE, _mmap.PROT_READ | _mmap.PROT_WRITE
    return flags, prot


def _reserve(length: int, flags: int, prot: int, access: int) -> MappedFile:
    """An anonymous ``MappedFile`` with the caller's length, flags, prot and access."""
    flags &= ~(_MAP_FIXED | _MAP_ANONYMOUS)
    if access != _mmap.ACCESS_DEFAULT:
        return MappedFile(-1, length, access=access)
    return MappedFile(-1, length, flags, prot)


def _map_fixed(addr: int, length: int, prot: int, flags: int, fd: int, off: int) -> None:
    """``mmap(addr, length, prot, flags | MAP_FIXED, fd, off)``, which must land at ``addr``."""
    got = _libc_mmap()(addr, length, prot, flags | _MAP_FIXED, fd, off)
    if got != addr:
        raise kerr(ctypes.get_errno() or ENOMEM)


def _map_empty(addr: int, length: int, prot: int, flags: int) -> None:
    """Lay a mapping of an empty memfd over ``[addr, addr + length)``: access is ``SIGBUS``."""
    fd = os.memfd_create("mockkernel:zapped", os.MFD_CLOEXEC)
    try:
        _map_fixed(addr, length, prot, flags, fd, 0)
    finally:
        REAL.close(fd)  # the redirection may have replaced os.close


# -- CPython's mmap object, read in place (checked once per interpreter) ------------------
class _MmapObject(ctypes.Structure):
    """The head of CPython's ``mmap_object`` (Modules/mmapmodule.c, Unix, 64-bit): the
    object head, ``data``, size, pos, offset, exports, and the ``fd`` it keeps."""

    _fields_ = [
        ("ob_refcnt", ctypes.c_ssize_t),
        ("ob_type", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("size", ctypes.c_ssize_t),
        ("pos", ctypes.c_ssize_t),
        ("offset", ctypes.c_int64),
        ("exports", ctypes.c_ssize_t),
        ("fd", ctypes.c_int),
    ]


@functools.cache
def _mmap_layout_ok() -> bool:
    """Whether this interpreter's mmap objects hold ``data``, ``size`` and their own
    ``fd`` where :class:`_MmapObject` says (an immutable fact of the interpreter, checked
    on a real map once): only then does :func:`build_mapping` map a single piece
    directly."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return False
    fd = os.memfd_create("mockkernel:layout", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, 2 * PAGE_SIZE)
        m = _RealMmap(fd, PAGE_SIZE, offset=PAGE_SIZE)
        try:
            head = _MmapObject.from_address(id(m))
            kept = head.fd
            if head.data != _buffer_address(m) or kept in (fd, -1) or kept < 0:
                return False
            if (head.size, head.pos, head.offset, head.exports) != (PAGE_SIZE, 0, PAGE_SIZE, 0):
                return False
            st, ours = REAL.fstat(kept), REAL.fstat(fd)
            return (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino)
        finally:
            m.close()
    except (OSError, ValueError):
        return False
    finally:
        REAL.close(fd)


def _cpython_access(access: int, prot: int) -> int:
    """The ``access`` CPython's ``new_mmap_object`` records for ``(access, prot)``."""
    if access != _mmap.ACCESS_DEFAULT:
        return access
    if prot & _mmap.PROT_READ and prot & _mmap.PROT_WRITE:
        return _mmap.ACCESS_DEFAULT
    return _mmap.ACCESS_WRITE if prot & _mmap.PROT_WRITE else _mmap.ACCESS_READ


def build_mapping(
    vma: Vma, access: int, file: File, shared: bool, direct: bool = False
) -> MappedFile:
    """Turn a ``Vma`` the driver's op backed whole (``do_mmap`` checked) into the object
    ``mmap.mmap`` returns: ``m._mk_map`` is the mapping's :class:`Mapping` of ``file``
    (the pieces laid and the real prot and flags they were laid with), for the caller to
    record and to give an owner (``m._mk_owner``: until then a close only unmaps).

    ``direct``: a mapping backed by one piece is laid by CPython's ``mmap`` of the
    piece's fd, one ``mmap(2)`` (the caller takes ``m._mk_dupfd``: the dup CPython made,
    which the map no longer owns; see :func:`keep_mapped_fd`'s use of it); otherwise
    (and always without ``direct``) an anonymous reservation is laid first and each
    piece over it, ``m._mk_dupfd`` -1.
    """
    if access == _mmap.ACCESS_DEFAULT:
        rflags, rprot = vma.flags & ~_MAP_ANONYMOUS, vma.prot
    else:
        rflags, rprot = _prot_flags(vma.flags, vma.prot, access)
        rflags &= ~_MAP_ANONYMOUS
    length = vma.length
    segs = vma.segments
    if direct and len(segs) == 1 and not vma.zapped and _mmap_layout_ok():
        fd, off, n = segs[0]
        m = None
        if n >= length:
            try:  # positional: CPython parses keywords more slowly
                if access != _mmap.ACCESS_DEFAULT:
                    m = MappedFile(fd, length, _mmap.MAP_SHARED, _PROT_RW, access, off)
                else:
                    flags = vma.flags & ~(_MAP_FIXED | _MAP_ANONYMOUS)
                    m = MappedFile(fd, length, flags, vma.prot, access, off)
            except (ValueError, OverflowError, OSError):
                m = None  # (the backing file is shorter than the mapping, ...): lay pieces
        if m is not None:
            head = _MmapObject.from_address(id(m))
            dupfd = head.fd
            head.fd = -1  # (CPython's dup is the caller's now)
            m._mk_dupfd = dupfd
            pieces: tuple[Piece, ...] = ((0, fd, off, length),)
            m._mk_map = Mapping(
                head.data, page_align(length), vma.pgoff, vma.prot, shared, file,
                pieces, rprot, rflags, False,
            )  # fmt: skip
            if access != _mmap.ACCESS_DEFAULT or vma.prot & _PROT_RW != _PROT_RW:
                m._mk_access = _cpython_access(access, vma.prot)
            return m
    m = _reserve(length, vma.flags, vma.prot, access)
    laid: list[Piece] = []
    try:
        base = _buffer_address(m)
        pos = 0
        for fd, off, n in segs:
            take = min(n, length - pos)
            if take <= 0:
                break
            _map_fixed(base + pos, take, rprot, rflags, fd, off)
            laid.append((pos, fd, off, take))
            pos += page_align(take)
        if vma.zapped:
            _map_empty(base, page_align(length), rprot, rflags)
    except BaseException:
        m.close()
        raise
    m._mk_map = Mapping(
        base, page_align(length), vma.pgoff, vma.prot, shared, file,
        tuple(laid), rprot, rflags, vma.zapped,
    )  # fmt: skip
    m._mk_access = _cpython_access(access, vma.prot)
    return m


def file_mappings(kernel: TaskContext, match: Callable[[File], bool]) -> list[Mapping]:
    """Every live userspace mapping, in any process of ``kernel``, of a file ``match`` accepts.

    The vmas ``unmap_mapping_range`` would walk for a driver whose files share one
    ``address_space`` (vfio-pci: every fd of one device).  A driver zaps them with
    :meth:`Mapping.zap` and gives them back with :meth:`Mapping.restore`.
    """
    # snapshots: a supervised process maps and unmaps on other threads meanwhile
    return [
        mp
        for proc in list(kernel.processes)
        for mp in list(proc.mappings.values())
        if match(mp.file)
    ]


# -- /proc/<pid>/maps -------------------------------------------------------------------
def _maps_line(
    start: int, end: int, perms: str, offset: int, major: int, minor: int, ino: int, path: str
) -> str:
    """One line as ``show_map_vma`` prints it (the path starts in column 74)."""
    head = f"{start:08x}-{end:08x} {perms} {offset:08x} {major:02x}:{minor:02x} {ino} "
    if not path:
        return head
    return head.ljust(72) + " " + path


def proc_maps(
    real_text: str,
    mappings: Iterable[Mapping],
    hidden: Iterable[tuple[int, int]] = (),
) -> str:
    """The real ``/proc/self/maps`` text with each mock mapping shown as real Linux does.

    Real lines inside a mock mapping (the memfds laid over its reservation) are
    replaced by the one line of the mapping; lines inside a ``hidden`` range
    (``(start, end)``: the kernel's own memory, :func:`kernel_map_ranges`, which no
    process's maps show) are dropped.  A real line that only partly overlaps
    one (the kernel merged neighbouring areas) keeps its other parts.
    """
    mocks = sorted(mappings, key=lambda mp: mp.start)
    cuts = sorted([(mp.start, mp.end) for mp in mocks] + list(hidden))
    if not cuts:
        return real_text
    out: list[tuple[int, str]] = [(mp.start, mp.maps_line()) for mp in mocks]
    prev = 0
    for line in real_text.splitlines():
        fields = line.split(None, 5)
        try:
            lo_s, hi_s = fields[0].split("-")
            lo, hi = int(lo_s, 16), int(hi_s, 16)
            perms, off, dev, ino = fields[1], int(fields[2], 16), fields[3], int(fields[4])
        except (IndexError, ValueError):
            out.append((prev, line))  # not a mapping line: keep it after the one before
            continue
        prev = lo
        path = fields[5] if len(fields) > 5 else ""
        pieces = [(lo, hi)]
        for cut_lo, cut_hi in cuts:
            nxt = []
            for a, b in pieces:
                if b <= cut_lo or a >= cut_hi:
                    nxt.append((a, b))
                    continue
                if a < cut_lo:
                    nxt.append((a, cut_lo))
                if b > cut_hi:
                    nxt.append((cut_hi, b))
            pieces = nxt
        if pieces == [(lo, hi)]:
            out.append((lo, line))
            continue
        major_s, _, minor_s = dev.partition(":")
        for a, b in pieces:
            shift = a - lo if ino else 0  # only a file mapping's offset moves with its start
            major, minor = int(major_s, 16), int(minor_s, 16)
            out.append((a, _maps_line(a, b, perms, off + shift, major, minor, ino, path)))
    out.sort(key=lambda item: item[0])  # stable: equal keys keep their order
    text = "\n".join(line for _, line in out)
    return text + "\n" if real_text.endswith("\n") else text


class KernelMaps(Subsystem):
    """This kernel's own mappings in this Python process, ``start -> end`` (page-rounded):
    every live :class:`KernelMap` and every ``ib_umem`` pin (Linux's vmap areas).

    Kernel memory: the maps of the program in this process (``/proc/self/maps`` of the
    init process) do not show it, and ``ib_umem_get`` refuses it.  Each kernel keeps its
    own: another kernel booted in the same Python process neither hides nor refuses this
    one's memory.
    """

    name = "kernel_maps"
    boot_independent = True  # (a registry: nothing of a boot to see)

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self._maps: dict[int, int] = {}

    def add(self, start: int, end: int) -> None:
        """Record ``[start, end)`` as kernel memory."""
        self._maps[start] = end

    def remove(self, start: int) -> None:
        """The mapping at ``start`` is gone."""
        self._maps.pop(start, None)

    def ranges(self) -> list[tuple[int, int]]:
        """The ``(start, end)`` of every live kernel mapping."""
        return list(self._maps.copy().items())  # (one C-level copy: safe against threads)


def kernel_map_ranges(kernel: KernelContext) -> list[tuple[int, int]]:
    """The address ranges of ``kernel``'s live mappings (:class:`KernelMaps`)."""
    return kernel.subsys(KernelMaps).ranges()


class KernelMap:
    """A kernel-side mapping of a real fd (the ``kmap``/``memremap`` of this model).

    Unlike ``mmap.mmap`` it takes no fd number (Python's mmap dups the fd, which
    would shift the numbers a program sees), and it is bounds-checked: access
    after ``close`` or outside the mapping raises instead of crashing.  ``kernel``
    records it among that kernel's :class:`KernelMaps` (``None``: memory of an object
    no kernel owns, a device built alone in a unit test).
    """

    __slots__ = ("_addr", "_maps", "_view", "length")

    def __init__(self, kernel: KernelContext | None, fd: int, length: int, offset: int = 0) -> None:
        if length <= 0 or offset % PAGE_SIZE:
            raise kerr(EINVAL)
        got = _libc_mmap()(
            None, length, _mmap.PROT_READ | _mmap.PROT_WRITE, _mmap.MAP_SHARED, fd, offset
        )
        if got in (None, ctypes.c_void_p(-1).value):
            raise kerr(ctypes.get_errno() or ENOMEM)
        self._addr: int | None = got
        self.length = length
        #: the mapping as a writable buffer, made by the first :meth:`write` (a slice
        #: assignment lands the bytes without a ctypes call); dropped by :meth:`close`
        self._view: memoryview | None = None
        self._maps = None if kernel is None else kernel.subsys(KernelMaps)
        if self._maps is not None:
            self._maps.add(got, got + page_align(length))

    def _at(self, off: int, n: int) -> int:
        if self._addr is None:
            raise ValueError("KernelMap used after close")
        if off < 0 or n < 0 or off + n > self.length:
            raise ValueError(f"KernelMap access [{off}, {off + n}) outside [0, {self.length})")
        return self._addr + off

    def read(self, off: int, n: int) -> bytes:
        return ctypes.string_at(self._at(off, n), n)

    def write(self, off: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        view = self._view
        if view is None or off < 0 or off + n > self.length:
            addr = self._at(off, n)  # (ValueError after close or out of bounds)
            if view is None:  # the first write: make the writable view
                mapped = (ctypes.c_char * self.length).from_address(addr - off)
                view = self._view = memoryview(mapped).cast("B")
        if type(data) is not bytes and not (
            type(data) is memoryview and data.format == "B" and data.ndim == 1 and data.contiguous
        ):
            data = bytes(data)[:n]  # (any other buffer: its first n bytes, as before)
        view[off : off + n] = data

    def __len__(self) -> int:
        return self.length

    def _span(self, key: slice) -> tuple[int, int]:
        start, stop, step = key.indices(self.length)
        if step != 1:
            raise ValueError("KernelMap slices must be contiguous")
        return start, max(0, stop - start)

    def __getitem__(self, key: slice) -> bytes:
        off, n = self._span(key)
        return self.read(off, n)

    def __setitem__(self, key: slice, data: bytes | bytearray | memoryview) -> None:
        off, n = self._span(key)
        if len(data) != n:
            raise ValueError("KernelMap slice assignment must keep the size")
        self.write(off, data)

    def read_u32(self, off: int) -> int:
        return int.from_bytes(self.read(off, 4), "little")

    def write_u32(self, off: int, value: int) -> None:
        self.write(off, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def fill(self, off: int, n: int, byte: int = 0) -> None:
        ctypes.memset(self._at(off, n), byte, n)

    def remap(self, off: int, n: int, fd: int, fd_offset: int) -> None:
        """Back bytes ``[off, off + n)`` of the view with ``fd`` at ``fd_offset`` instead,
        in place: the address stays, so every holder of the view (an sg entry, the
        PCI fabric's RAM) sees the new pages (``mm/gup.py``: pinned pages a punch moved)."""
        if off % PAGE_SIZE or fd_offset % PAGE_SIZE:
            raise kerr(EINVAL)
        _map_fixed(
            self._at(off, n),
            n,
            _mmap.PROT_READ | _mmap.PROT_WRITE,
            _mmap.MAP_SHARED,
            fd,
            fd_offset,
        )

    @property
    def closed(self) -> bool:
        return self._addr is None

    def close(self) -> None:
        if self._addr is not None:
            self._view = None
            if self._maps is not None:
                self._maps.remove(self._addr)
            _libc_munmap()(self._addr, self.length)
            self._addr = None
