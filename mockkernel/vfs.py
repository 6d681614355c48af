"""The mock file tree: device nodes, sysfs/debugfs/procfs files, directories, symlinks.

Two kinds of sysfs file: an ``Attr`` (text, produced when opened and read from that
snapshot, like a ``seq_file``) and a ``BinAttr`` (a binary attribute: every ``read``,
``write`` and ``mmap`` reaches the object at that moment, like sysfs ``bin_attribute``).

Paths are looked up component by component from ``/``.  A directory is either
an *overlay* (``/``, ``/dev``, ``/sys``: it exists only to lead to mock nodes,
and any name it does not know belongs to the real filesystem) or *owned*
(``/dev/vfio``, ``/sys/bus/pci/devices``: everything below is mock, a missing
name is ``ENOENT``).  Symlinks inside the tree are followed like the real
ones, so ``os.path.realpath`` and sysfs walks work.

``lookup`` answers ``None`` for "not ours: ask the real OS".
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable
from errno import (
    EACCES,
    EBADF,
    EEXIST,
    EFBIG,
    EINVAL,
    EIO,
    EISDIR,
    ELOOP,
    ENODEV,
    ENOENT,
    ENOTDIR,
    ENXIO,
    EROFS,
)
from os import O_ACCMODE
from typing import TYPE_CHECKING

from .context import Subsystem
from .cred import current_ids, generic_permission, host_ids
from .errors import KernelBug, NotMine, kerr
from .fs import (
    _OPEN_DROP,
    ACC_FMODE,
    DT_CHR,
    DT_DIR,
    DT_LNK,
    DT_REG,
    DT_UNKNOWN,
    FMODE_PATH,
    FMODE_READ,
    FMODE_WRITE,
    O_LARGEFILE,
    DirContext,
    File,
    FileOperations,
    Inode,
    copy_splice_read,
    generic_file_llseek,
    iter_file_splice_write,
    open_flags_to_file,
)
from .fsnotify import IN_MODIFY, IN_OPEN, fsnotify
from .mm import PAGE_SIZE, Vma
from .procfs import ProcFs
from .realfd import REAL
from .trace import TracePoint

if TYPE_CHECKING:
    from .process import Process, TaskContext

__all__ = [
    "HOST_DEV",
    "HOST_DEV_OPEN",
    "HOST_READ_ONLY",
    "Attr",
    "BinAttr",
    "ChrDev",
    "Dir",
    "Node",
    "ShmemFile",
    "Symlink",
    "Vfs",
    "open_chrdev",
]

trace_vfs_open = TracePoint("vfs.open", "path", "file")
trace_vfs_create = TracePoint("vfs.create", "path")
#: a ``/dev`` name the mock's devtmpfs lacks: a device the mock does not model
#: (``/dev/dma_heap``, ``/dev/dri``) or the host's own; the lookup is ``ENOENT``
trace_vfs_dev_absent = TracePoint("vfs.dev_absent", "path")


class Node:
    """A node of the tree.  Its inode is made on first use and kept: every open file of
    the node shares it, so a ``chmod``, ``chown``, ``utimensat`` or ``setxattr`` of the
    path is what ``fstat`` of an fd shows, and the other way round."""

    kind = "node"

    def __init__(self, ino: int) -> None:
        self.ino = ino
        self._inode: Inode | None = None

    def inode(self) -> Inode:
        inode = self._inode
        if inode is None:
            inode = self._inode = self.make_inode()
        return inode

    def make_inode(self) -> Inode:
        raise NotImplementedError


class Dir(Node):
    kind = "dir"

    def __init__(self, ino: int, owned: bool) -> None:
        super().__init__(ino)
        self.owned = owned
        self.entries: dict[str, Node] = {}  # as built (building never fills a lazy dir)
        #: for a lazy directory (sysfs: dozens of attributes per device), what fills it
        #: the first time anyone looks inside
        self.populate: Callable[[], None] | None = None

    @property
    def children(self) -> dict[str, Node]:
        """The entries, a lazy directory filled on the first look."""
        fill = self.populate
        if fill is not None:
            self.populate = None
            fill()
        return self.entries

    def make_inode(self) -> Inode:
        return Inode(self.ino, stat.S_IFDIR | 0o755, nlink=2, size=0)


class ChrDev(Node):
    kind = "chr"

    def __init__(self, ino: int, fops: FileOperations, rdev: int, perm: int) -> None:
        super().__init__(ino)
        self.fops = fops
        self.rdev = rdev
        self._perm0 = perm  # the mode the node is made with (devtmpfs' one inode keeps it)

    @property
    def perm(self) -> int:
        """The permission bits, as the node's one inode has them now (an ``fchmod``
        through any open, or a ``chmod`` of the path, holds for every open and ``stat``)."""
        return self.inode().mode & 0o7777

    def make_inode(self) -> Inode:
        return Inode(self.ino, stat.S_IFCHR | self._perm0, rdev=self.rdev, dev=0x6)


class Symlink(Node):
    kind = "lnk"

    def __init__(self, ino: int, target: str, perm: int = 0o777, size: int = 0) -> None:
        super().__init__(ino)
        self.target = target
        self.perm = perm
        #: ``st_size``: 0 for a kernfs link (sysfs sets no ``i_size``), 64 for a procfs
        #: fd link (``proc_pid_make_inode``'s)
        self.size = size

    def make_inode(self) -> Inode:
        return Inode(self.ino, stat.S_IFLNK | self.perm, size=self.size, blocks=0)


class Attr(Node):
    """A read-only pseudo-file whose content is produced when it is opened (``seq_file``)."""

    kind = "file"

    def __init__(self, ino: int, show: Callable[[], str], perm: int, size: int) -> None:
        super().__init__(ino)
        self.show = show
        self.perm = perm
        self.size = size

    def make_inode(self) -> Inode:
        return Inode(self.ino, stat.S_IFREG | self.perm, size=self.size, blocks=0)


#: ``BinAttr`` ops: ``read(file, pos, count) -> bytes``, ``write(file, pos, data) -> int``,
#: ``mmap(file, vma)``; the core has clamped ``pos``/``count`` to the attribute's size
BinRead = Callable[[File, int, int], bytes]
BinWrite = Callable[[File, int, bytes], int]
BinMmap = Callable[[File, Vma], None]


class BinAttr(Node):
    """A binary sysfs attribute (``struct bin_attribute``): no snapshot, every access is live.

    ``size`` is its ``i_size`` (0: unbounded).  Owned by root like every sysfs file;
    opening checks the mode bits and, as ``kernfs_fop_open``, refuses reading without a
    ``read`` or ``mmap`` op and writing without a ``write`` or ``mmap`` op (``EACCES``).
    """

    kind = "file"
    #: a task's own procfs file (``fail-nth``): the task may open it whatever its uid
    task_owned = False

    def __init__(
        self,
        ino: int,
        perm: int,
        size: int,
        read: BinRead | None = None,
        write: BinWrite | None = None,
        mmap: BinMmap | None = None,
    ) -> None:
        super().__init__(ino)
        self.perm = perm
        self.size = size
        self.read = read
        self.write = write
        self.mmap = mmap

    def make_inode(self) -> Inode:
        return Inode(self.ino, stat.S_IFREG | self.perm, size=self.size, blocks=0)


class ShmemFile(BinAttr):
    """A regular file root created in ``/dev`` (devtmpfs is a tmpfs: ``shmem_create``):
    its bytes live in the mock tree, never on the host."""

    kind = "file"

    def __init__(self, ino: int, perm: int) -> None:
        super().__init__(ino, perm, 0, read=self._read, write=self._write)
        self.data = bytearray()

    def make_inode(self) -> Inode:
        return Inode(self.ino, stat.S_IFREG | self.perm)

    def inode(self) -> Inode:
        inode = super().inode()
        inode.size = len(self.data)
        return inode

    def _read(self, file: File, pos: int, count: int) -> bytes:
        return bytes(self.data[pos : pos + count])

    def _write(self, file: File, pos: int, data: bytes) -> int:
        if pos > len(self.data):
            self.data.extend(bytes(pos - len(self.data)))
        self.data[pos : pos + len(data)] = data
        inode = self.inode()  # (its size follows the data)
        inode.mtime_ns = inode.ctime_ns = time.time_ns()
        return len(data)


class BinAttrOps(FileOperations):
    """``sysfs_bin_kfops_mmap`` over kernfs: ``sysfs_kf_bin_read``/``_write``/``_mmap``."""

    name = "sysfs"

    def read(self, file: File[BinAttr], count: int, pos: int) -> bytes:
        node = file.private_data
        if count > PAGE_SIZE:
            count = PAGE_SIZE  # kernfs_file_read_iter: one page per call
        if not count:
            return b""
        size = node.size
        if size:
            if pos >= size:
                return b""
            if count > size - pos:
                count = size - pos
        if node.read is None:
            raise kerr(EIO)
        return node.read(file, pos, count)

    def write(self, file: File[BinAttr], data: bytes, pos: int) -> int:
        node = file.private_data
        data = data[:PAGE_SIZE]  # kernfs_fop_write_iter: one page per call
        if node.size:
            if pos >= node.size:
                raise kerr(EFBIG)
            data = data[: node.size - pos]
        if not data:
            return 0
        if node.write is None:
            raise kerr(EIO)
        return node.write(file, pos, data)

    #: ``generic_file_llseek`` itself (no method frame: a seek is a hot path)
    llseek = staticmethod(generic_file_llseek)
    #: ``kernfs_file_fops``: a sysfs file splices through its ``read``/``write``
    splice_read = staticmethod(copy_splice_read)
    splice_write = staticmethod(iter_file_splice_write)

    def mmap(self, file: File[BinAttr], vma: Vma) -> None:
        node = file.private_data
        if node.mmap is None:
            raise kerr(ENODEV)  # kernfs_fop_mmap without KERNFS_HAS_MMAP
        node.mmap(file, vma)


_bin_fops = BinAttrOps()


def _may_open(kernel: TaskContext, inode: Inode, want: int) -> None:
    """``may_open``'s ``inode_permission`` for the caller: ``want`` is ``R_OK``/``W_OK``
    bits; ``EACCES`` when the node's mode, owner and group do not allow it."""
    if want & ~inode.mode & 7:  # (else the others' bits allow it: no credentials to read)
        may_open(kernel.current, inode, want)


def may_open(task: Process, inode: Inode, want: int) -> None:
    """:func:`_may_open` for ``task``, the current task, past its first test (the node's
    others' bits do not allow ``want``)."""
    hook = task.ids_hook
    if hook is None:
        if os.geteuid() == 0:  # (looked up each time: tests stand in for it)
            return  # (in-process root: CAP_DAC_OVERRIDE reads and writes anything)
        ids = host_ids()
    else:
        ids = hook()
    if not generic_permission(ids, inode, want):
        raise kerr(EACCES)


def _want(f_mode: int) -> int:
    return (os.R_OK if f_mode & FMODE_READ else 0) | (os.W_OK if f_mode & FMODE_WRITE else 0)


#: ``_want`` of an open's ``f_mode``, by its access mode (``flags & O_ACCMODE``)
_ACC_WANT = tuple(_want(open_flags_to_file(acc)[1]) for acc in range(4))


def open_chrdev(task: Process, node: ChrDev, path: str, flags: int) -> File:
    """``do_dentry_open`` of device node ``node`` at ``path`` (looked up by the caller;
    ``flags`` without ``O_PATH``/``O_DIRECTORY``/``O_CREAT``) for ``task``, the current
    task: the file (its credentials ``task``'s), its driver's ``->open`` run.  A failed
    ``->open`` puts the file without ``->release``.  (A module function rather than a
    :class:`Vfs` method: the redirection's ``/dev/<name>`` fast path calls it with no
    subsystem lookup; ``open_flags_to_file`` and ``_may_open`` are inline.)"""
    inode = node.inode()
    acc = flags & O_ACCMODE
    want = _ACC_WANT[acc]
    if want & ~inode.mode & 7 and (task.ids_hook is not None or os.geteuid() != 0):
        may_open(task, inode, want)  # (in-process root passes here: no call)
    kernel = task.kernel
    fops = node.fops
    file = File(
        kernel,
        fops,
        inode,
        (flags & ~_OPEN_DROP) | O_LARGEFILE,
        ACC_FMODE[acc],
        None,
        path,
        task.cred,
    )
    file.opened = False
    try:
        fops.open(file)
    except BaseException:
        file.put()  # FMODE_OPENED never set: no ->release, as in do_dentry_open
        raise
    file.opened = True
    tracer = kernel.tracer
    if tracer.enabled:  # (a hot path: no call while off)
        trace_vfs_open(tracer, path, file.id)
    return file


class SeqFileOps(FileOperations):
    """A snapshot taken at open, read like a regular file."""

    name = "seq_file"

    def read(self, file: File[bytes], count: int, pos: int) -> bytes:
        data = file.private_data
        return data[pos : pos + count]

    def llseek(self, file: File, offset: int, whence: int) -> int:
        return generic_file_llseek(file, offset, whence)


_seq_fops = SeqFileOps()


def d_type(node: Node) -> int:
    """The ``DT_*`` of a node, as ``getdents64`` reports it."""
    if isinstance(node, Dir):
        return DT_DIR
    if isinstance(node, ChrDev):
        return DT_CHR
    if isinstance(node, Symlink):
        return DT_LNK
    if isinstance(node, (Attr, BinAttr)):
        return DT_REG
    return DT_UNKNOWN


class DirOps(FileOperations):
    """An open mock directory (``simple_dir_operations``): ``private_data`` is the
    ``(Dir, parent inode number)`` it lists."""

    name = "dir"

    def iterate(self, file: File[tuple[Dir, int]], ctx: DirContext) -> None:
        """``dcache_readdir``: ``.`` at 0, ``..`` at 1, then the entries in their order."""
        node = file.private_data[0]
        if ctx.pos == 0:
            if not ctx.emit(".", node.ino, DT_DIR):
                return
            ctx.pos = 1
        if ctx.pos == 1:
            if not ctx.emit("..", file.private_data[1], DT_DIR):
                return
            ctx.pos = 2
        entries = list(node.children.items())
        for name, child in entries[ctx.pos - 2 :]:
            if not ctx.emit(name, child.ino, d_type(child)):
                return
            ctx.pos += 1

    def read(self, file: File, count: int, pos: int) -> bytes:
        raise kerr(EISDIR)  # generic_read_dir

    def fsync(self, file: File, datasync: bool) -> None:
        """``noop_fsync``: nothing to write back."""

    def llseek(self, file: File, offset: int, whence: int) -> int:
        """``dcache_dir_lseek``: ``SEEK_SET``/``SEEK_CUR`` to any position >= 0."""
        if whence == os.SEEK_CUR:
            offset += file.f_pos
        elif whence != os.SEEK_SET:
            raise kerr(EINVAL)
        if offset < 0:
            raise kerr(EINVAL)
        file.f_pos = offset
        return offset


class PathOps(FileOperations):
    """``empty_fops`` of an ``O_PATH`` file: a place in the tree, no I/O at all."""

    name = "path"

    def unlocked_ioctl(self, file: File, cmd: int, arg: int) -> int:
        raise kerr(EBADF)  # (ioctl's fdget refuses O_PATH files before this is reached)


_dir_fops = DirOps()
_path_fops = PathOps()


#: The host's own ``/dev`` entries a program under the mock still reaches (the mock
#: machine has them too, and they act on nothing): any other name in ``/dev`` that the
#: mock tree lacks does not exist (``ENOENT``), and ``O_CREAT`` makes it in the mock tree.
#: ``Vfs.dev_chrdevs``'s mark of a ``HOST_DEV`` name: the real ``open`` answers it
HOST_DEV_OPEN = object()

HOST_DEV = frozenset(
    {
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "ptmx",
        "pts",
        "shm",
        "mqueue",
        "hugepages",
        "fd",
        "stdin",
        "stdout",
        "stderr",
        "console",
    }
)

#: Where the host's files are read-only to a program under the mock (``EROFS`` for a
#: write, a create or a truncate, as in a container whose ``/sys`` and ``/proc/sys`` are
#: mounted read-only): the host's sysfs beside the mock's nodes, and the machine-wide
#: knobs of procfs (a process's own ``/proc/self`` files stay its own).
HOST_READ_ONLY = (
    "/sys/",
    "/proc/sys/",
    "/proc/bus/",
    "/proc/irq/",
    "/proc/sysrq-trigger",
    "/proc/sysvipc/",
    "/proc/fs/",
    "/proc/driver/",
)

#: Prefixes under which a path may be mock; anything else is real at once.  No trailing
#: slash: ``/dev`` itself is an overlay directory (``os.listdir("/dev")`` shows the mock
#: nodes); ``/devices`` and the like pass the prefix test and are found real by the walk.
_ROOTS = ("/dev", "/sys", "/proc")
#: the parts of ``/proc`` that are trees of the mock (``/proc/bus/pci``: the mock's bus)
_PROC_MOCK = ("/proc/bus/pci/", "/proc/bus/pci")


class Vfs(Subsystem):
    """The mock file tree of one kernel (``kernel.subsys(Vfs)``)."""

    name = "vfs"
    probe_independent = True  # (its lookups run deferred probes first: before_walk)

    def __init__(self, kernel: TaskContext) -> None:
        super().__init__(kernel)
        self.kernel: TaskContext = kernel
        self.root = Dir(kernel.new_id(), owned=False)
        # directory path -> Dir, so building a large tree does not walk it again and again
        self._dirs: dict[str, Dir] = {}
        #: ``/proc/<pid>`` of the mock processes
        self.procfs = ProcFs(self)
        #: ``"/dev/<name>"`` -> its device node, or :data:`HOST_DEV_OPEN` for a host
        #: device the mock ``/dev`` shows (``HOST_DEV``), for the names the redirection's
        #: fast ``open`` found there (it fills this); every change to the tree empties it,
        #: after the change (so a fill racing an unlink is either seen by it or undone)
        self.dev_chrdevs: dict[str, ChrDev | object] = {}
        #: what must run before the tree is looked at or changed (a lookup, a listing, a
        #: node added or removed): the kernel's deferred driver probes
        #: (``Kernel.defer_probes``), whose nodes an eager boot would have made by now;
        #: ``None`` once they ran (the redirection's fast ``/dev/<name>`` open of a node
        #: the tree already has does not come here: no probe changes such a node)
        self.before_walk: Callable[[], None] | None = None

    # -- building the tree ----------------------------------------------------------------
    def _parent(self, path: str, owned_leaf_dirs: bool = False) -> tuple[Dir, str]:
        if self.before_walk is not None:
            self.before_walk()
        head, sep, last = path.rpartition("/")
        if sep and last and not owned_leaf_dirs:
            cached = self._dirs.get(head)
            if cached is not None:
                return cached, last
            canonical = "//" not in path and "/./" not in path and "/../" not in path
            if head[:1] == "/" and canonical:
                # the parent from its own (cached) parent: each directory walked once
                pdir, pname = self._parent(head)
                d = pdir.entries.get(pname)
                if d is None:
                    d = pdir.entries[pname] = Dir(self.kernel.new_id(), owned=pdir.owned)
                if not isinstance(d, Dir):
                    raise ValueError(f"{path!r}: {pname!r} is not a directory")
                self._dirs[head] = d
                return d, last
        parts = [p for p in path.split("/") if p]
        if not parts or not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path!r}")
        d = self.root
        for name in parts[:-1]:
            child = d.entries.get(name)
            if child is None:
                child = Dir(self.kernel.new_id(), owned=d.owned or owned_leaf_dirs)
                d.entries[name] = child
            if not isinstance(child, Dir):
                raise ValueError(f"{path!r}: {name!r} is not a directory")
            d = child
        if sep and last and "//" not in path and "/./" not in path and "/../" not in path:
            self._dirs[head] = d
        return d, parts[-1]

    def _add(self, path: str, node: Node) -> Node:
        d, name = self._parent(path)
        if name in d.entries:
            raise FileExistsError(path)
        d.entries[name] = node
        self.dev_chrdevs.clear()
        return node

    def mkdir(
        self, path: str, owned: bool = True, populate: Callable[[], None] | None = None
    ) -> Dir:
        """Create (or return) a directory; ``owned`` makes everything below it mock.

        ``populate``, for a new directory, fills it when it is first looked into
        (lookup, listing): the nodes it adds may also be added earlier by others.
        """
        d, name = self._parent(path)
        node = d.entries.get(name)
        if isinstance(node, Dir):
            node.owned = node.owned or owned
            self.dev_chrdevs.clear()  # (an owned /dev shows no host device)
            return node
        if node is not None:
            raise FileExistsError(path)
        new = Dir(self.kernel.new_id(), owned=owned or d.owned)
        new.populate = populate
        d.entries[name] = new
        self.dev_chrdevs.clear()
        return new

    def register_chrdev(
        self, path: str, fops: FileOperations, rdev: int, perm: int = 0o666
    ) -> ChrDev:
        node = ChrDev(self.kernel.new_id(), fops, rdev, perm)
        self._add(path, node)
        return node

    def symlink(self, target: str, path: str) -> Symlink:
        node = Symlink(self.kernel.new_id(), target)
        self._add(path, node)
        return node

    def attr(self, path: str, show: Callable[[], str], perm: int = 0o444, size: int = 4096) -> Attr:
        node = Attr(self.kernel.new_id(), show, perm, size)
        self._add(path, node)
        return node

    def bin_attr(
        self,
        path: str,
        perm: int,
        size: int,
        *,
        read: BinRead | None = None,
        write: BinWrite | None = None,
        mmap: BinMmap | None = None,
    ) -> BinAttr:
        """``sysfs_create_bin_file``: a binary attribute of ``size`` bytes with these ops."""
        node = BinAttr(self.kernel.new_id(), perm, size, read, write, mmap)
        self._add(path, node)
        return node

    def unlink(self, path: str) -> None:
        d, name = self._parent(path)
        gone = d.entries.pop(name, None)
        self.dev_chrdevs.clear()
        if isinstance(gone, Dir):  # forget the cached directories below it
            prefix = path.rstrip("/")
            self._dirs.pop(prefix, None)
            if any(isinstance(n, Dir) for n in gone.entries.values()):
                for key in [k for k in self._dirs if k.startswith(prefix + "/")]:
                    del self._dirs[key]

    def rename(self, old: str, new: str) -> None:
        """Move the node at ``old`` to ``new`` (replacing what is there): ``rename`` in
        the mock tree.  The caller checked both (``mockkernel.syscalls.namei``)."""
        node = self.peek(old)
        if node is None:
            raise KernelBug(f"rename of {old!r}, which is not in the mock tree")
        self.unlink(old)
        if self.peek(new) is not None:
            self.unlink(new)
        d, name = self._parent(new)
        d.entries[name] = node
        self.dev_chrdevs.clear()

    def peek(self, path: str) -> Node | None:
        """The node added at the absolute ``path``, or ``None``: no lookup rules (no
        symlink followed, no ``/proc``), and no directory on the way is populated."""
        node: Node | None = self.root
        for name in path.split("/")[1:]:
            if not name:
                continue
            node = node.entries.get(name) if isinstance(node, Dir) else None
        return node

    # -- lookup ---------------------------------------------------------------------------
    def lookup(self, path: str, follow: bool = True) -> Node | None:
        """The node at ``path``, ``None`` if the path is not mock; ``ENOENT``/``ENOTDIR``."""
        if self.before_walk is not None:
            self.before_walk()
        if not path.startswith(_ROOTS):
            return None
        if path.startswith("/proc/") and not path.startswith(_PROC_MOCK):
            return self.procfs.lookup(path, follow)
        return self._walk(path, follow, 0)

    def lookup_open(self, path: str, flags: int) -> Node | None:
        """``lookup`` as ``open(2)`` does it (a final symlink followed unless
        ``O_NOFOLLOW``, ``O_CREAT`` rules).

        ``O_CREAT`` of a missing name in a mock directory is ``EACCES`` (sysfs and
        debugfs directories have no ``create``), in ``/dev`` a new mock file for root;
        ``O_CREAT|O_EXCL`` of an existing mock node is ``EEXIST``; opening a host path
        under ``HOST_READ_ONLY`` to change it is ``EROFS``.  ``O_CREAT|O_DIRECTORY`` is
        ``EINVAL`` before any of it (``build_open_flags``: nothing is looked up or made).
        """
        if flags & os.O_CREAT and flags & os.O_DIRECTORY:
            raise kerr(EINVAL)
        try:
            node = self.lookup(path, not flags & os.O_NOFOLLOW)
        except OSError as e:
            if e.errno != ENOENT or not flags & os.O_CREAT:
                raise
            try:
                parent = self.lookup(os.path.dirname(path.rstrip("/")) or "/")
            except OSError:
                raise e from None
            if parent is self.peek("/dev") and os.path.dirname(path.rstrip("/")) == "/dev":
                return self._dev_create(path)
            if isinstance(parent, Dir):
                raise kerr(EACCES) from None
            raise
        if node is not None and flags & os.O_CREAT and flags & os.O_EXCL:
            raise kerr(EEXIST)
        if (
            node is None
            and path.startswith(HOST_READ_ONLY)
            and flags & (os.O_ACCMODE | os.O_CREAT | os.O_TRUNC)
            and not flags & os.O_PATH
        ):
            raise kerr(EROFS)  # the host's sysfs/procfs knobs are not the program's
        return node

    def _dev_create(self, path: str) -> Node:
        """``O_CREAT`` of a new name in ``/dev``: a regular file in the mock devtmpfs, as
        root may make one (mode 0644 under the usual umask); ``EACCES`` for anyone else
        (``/dev`` is ``drwxr-xr-x root``)."""
        parent = self.peek("/dev")
        ids = current_ids(self.kernel)
        if parent is None or not generic_permission(ids, parent.inode(), os.W_OK | os.X_OK):
            raise kerr(EACCES)
        node = ShmemFile(self.kernel.new_id(), 0o644)
        self._add(path.rstrip("/"), node)
        trace_vfs_create(self.kernel.tracer, path)
        return node

    def _walk(self, path: str, follow: bool, depth: int, must_dir: bool = False) -> Node | None:
        if depth > 40:
            raise kerr(ELOOP)
        # a trailing slash: the result must be a directory, and a final symlink is followed
        must_dir = must_dir or path.endswith("/")
        parts = [p for p in path.split("/") if p and p != "."]
        stack: list[Dir] = [self.root]
        names: list[str] = []
        node: Node = self.root
        for i, name in enumerate(parts):
            d = stack[-1]
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                    names.pop()
                node = stack[-1]
                continue
            child = d.children.get(name)
            if child is None:
                if d.owned:
                    raise kerr(ENOENT)
                if names == ["dev"] and name not in HOST_DEV:
                    # the mock's devtmpfs: no host device shows, an unmodelled one is absent
                    trace_vfs_dev_absent(self.kernel.tracer, "/dev/" + name)
                    raise kerr(ENOENT)
                return None
            last = i == len(parts) - 1
            if isinstance(child, Symlink) and (follow or not last or must_dir):
                target = child.target
                if not target.startswith("/"):
                    target = "/" + "/".join([*names, target])
                rest = "/".join(parts[i + 1 :])
                full = os.path.normpath(target + ("/" + rest if rest else ""))
                if not full.startswith(_ROOTS):
                    return None
                return self._walk(full, follow, depth + 1, must_dir)
            if not last and not isinstance(child, Dir):
                raise kerr(ENOTDIR)
            if isinstance(child, Dir):
                stack.append(child)
                names.append(name)
            node = child
        if must_dir and not isinstance(node, Dir):
            raise kerr(ENOTDIR)
        return node

    def _canonical(self, path: str, depth: int = 0) -> str:
        """``path`` (an existing mock node) with every symlink and ``..`` resolved."""
        if self.before_walk is not None:
            self.before_walk()
        parts = [p for p in path.split("/") if p and p != "."]
        stack: list[Dir] = [self.root]
        names: list[str] = []
        for i, name in enumerate(parts):
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                    names.pop()
                continue
            child = stack[-1].children.get(name)
            if isinstance(child, Symlink) and depth <= 40:
                target = child.target
                if not target.startswith("/"):
                    target = "/" + "/".join([*names, target])
                rest = "/".join(parts[i + 1 :])
                return self._canonical(
                    os.path.normpath(target + ("/" + rest if rest else "")), depth + 1
                )
            if not isinstance(child, Dir):
                return "/" + "/".join([*names, *parts[i:]])
            stack.append(child)
            names.append(name)
        return "/" + "/".join(names)

    # -- operations -----------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int, found: Node | None = None) -> File:
        """``do_filp_open`` of an absolute path: a new open file; ``NotMine`` when the
        path is not the mock's (the real OS answers it).  ``found``: what
        :meth:`lookup_open` just returned for ``path`` and ``flags`` to the caller, who
        looked first (the redirection, to snapshot an attribute): not walked again.
        A watched node hears ``IN_OPEN`` (and ``IN_MODIFY`` for an ``O_TRUNC``)."""
        file = self._open(path, flags, mode, found)
        inode = file.inode
        if inode.fsn is not None and not file.f_mode & FMODE_PATH:
            fsnotify(inode, IN_OPEN)  # fsnotify_open
            if flags & os.O_TRUNC and file.f_mode & FMODE_WRITE and stat.S_ISREG(inode.mode):
                fsnotify(inode, IN_MODIFY)  # handle_truncate
        return file

    def _open(self, path: str, flags: int, mode: int, found: Node | None = None) -> File:
        if flags & os.O_CREAT and flags & os.O_DIRECTORY:
            raise kerr(EINVAL)  # build_open_flags: O_CREAT|O_DIRECTORY is refused
        node = found if found is not None else self.lookup_open(path, flags)
        if node is None or (isinstance(node, Dir) and not node.owned):
            raise NotMine()  # (an overlay directory is the real one)
        if flags & os.O_PATH:
            return self._open_path(node, path, flags)
        if isinstance(node, _FdTarget):
            # opening /proc/self/fd/N opens the file's path afresh (a new, independent
            # open file); an anonymous file (a dma-buf) has no path to open: ENXIO
            if node.file.path is None:
                raise kerr(ENXIO)
            return self._open(node.file.path, flags, mode)
        if flags & os.O_DIRECTORY and not isinstance(node, Dir):
            raise kerr(ENOTDIR)  # do_open's test comes before may_open's ELOOP
        if isinstance(node, Symlink):
            raise kerr(ELOOP)  # O_NOFOLLOW and the last component is a symlink
        if isinstance(node, Dir):
            if flags & os.O_CREAT or flags & os.O_ACCMODE != os.O_RDONLY:
                raise kerr(EISDIR)  # do_open / may_open
            return self._open_dir(node, path, flags)
        if isinstance(node, Attr):
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise kerr(EACCES)
            _may_open(self.kernel, node.inode(), os.R_OK)
            return File(
                self.kernel,
                _seq_fops,
                node.inode(),
                flags & os.O_ACCMODE,
                FMODE_READ | 0x4,
                node.show().encode(),
                path,
            )
        if isinstance(node, BinAttr):
            return self._open_bin_attr(node, path, flags)
        if isinstance(node, ChrDev):
            return self.open_chrdev(node, path, flags)
        raise kerr(ENOENT)

    def open_chrdev(self, node: ChrDev, path: str, flags: int) -> File:
        """``do_dentry_open`` of device node ``node`` at ``path`` (:func:`open_chrdev`)."""
        return open_chrdev(self.kernel.current, node, path, flags)

    def _open_dir(self, node: Dir, path: str, flags: int) -> File:
        """An open owned directory: ``getdents64`` lists it (:class:`DirOps`)."""
        path = self._canonical(path)
        parent = self.lookup(os.path.dirname(path) or "/")
        parent_ino = parent.ino if parent is not None else node.ino
        f_flags, f_mode = open_flags_to_file(flags)
        file = File(self.kernel, _dir_fops, node.inode(), f_flags, f_mode, (node, parent_ino), path)
        trace_vfs_open(self.kernel.tracer, path, file.id)
        return file

    def _open_path(self, node: Node, path: str, flags: int) -> File:
        """``O_PATH``: a file that only names ``node`` (no ``->open``, no I/O)."""
        if flags & os.O_DIRECTORY and not isinstance(node, Dir):
            raise kerr(ENOTDIR)
        f_flags, _ = open_flags_to_file(flags)
        if isinstance(node, _FdTarget):
            inode, where = node.file.inode, node.file.path
        else:
            inode = node.inode()
            where = path if isinstance(node, Symlink) else self._canonical(path)
        file = File(self.kernel, _path_fops, inode, f_flags, FMODE_PATH, node, where)
        trace_vfs_open(self.kernel.tracer, path, file.id)
        return file

    def _open_bin_attr(self, node: BinAttr, path: str, flags: int) -> File:
        f_flags, f_mode = open_flags_to_file(flags)
        perm = node.inode().mode
        if not node.task_owned:
            _may_open(self.kernel, node.inode(), _want(f_mode))
        if f_mode & FMODE_WRITE and (not perm & 0o222 or (node.write or node.mmap) is None):
            raise kerr(EACCES)
        if f_mode & FMODE_READ and (not perm & 0o444 or (node.read or node.mmap) is None):
            raise kerr(EACCES)
        if isinstance(node, ShmemFile) and flags & os.O_TRUNC and f_mode & FMODE_WRITE:
            node.data.clear()  # (the inode's size follows in node.inode())
        path = self._canonical(path)  # what /proc/self/fd/N shows: d_path, links resolved
        file = File(self.kernel, _bin_fops, node.inode(), f_flags, f_mode, node, path)
        file.f_euid = current_ids(self.kernel).euid
        if self.kernel.tracer.enabled:  # (a hot path: no call while off)
            trace_vfs_open(self.kernel.tracer, path, file.id)
        return file

    def host_visible(self, dirpath: str, name: str) -> bool:
        """Whether the host's entry ``name`` of the overlay directory ``dirpath`` shows
        through (in ``/dev`` only ``HOST_DEV``: the mock machine has no host devices)."""
        return name in HOST_DEV or os.path.normpath(dirpath) != "/dev"

    def listdir(self, path: str) -> list[str] | None:
        """Names in a mock directory; ``None`` if the directory is not mock."""
        node = self.lookup(path)
        if node is None:
            return None
        if not isinstance(node, Dir):
            raise kerr(ENOTDIR)
        names = list(node.children)
        if not node.owned:
            with contextlib.suppress(OSError):
                real = {n for n in REAL.listdir(path) if self.host_visible(path, n)}
                names = sorted(real | set(names))
        return names


class _FdTarget(Node):
    """What ``/proc/self/fd/N`` resolves to for a mock fd: the open file itself."""

    kind = "fdtarget"

    def __init__(self, file: File) -> None:
        super().__init__(file.inode.ino)
        self.file = file

    def inode(self) -> Inode:
        return self.file.inode
