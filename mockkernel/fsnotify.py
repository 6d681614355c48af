"""fsnotify and inotify on mock nodes (``fs/notify/fsnotify.c``,
``fs/notify/inotify/``): what a watcher of a mock node reads.

A watch is a mark on an inode (``Inode.fsn``); a directory's watch also marks its
children (``FsnInfo.parent``, Linux's ``DCACHE_FSNOTIFY_PARENT_WATCHED``), so an event
on a child is reported to the directory with the child's name, and first, as Linux
does.  The VFS calls :func:`fsnotify` where Linux's hooks are: an open (``IN_OPEN``),
a read or write that moved bytes (``IN_ACCESS``, ``IN_MODIFY``), the last close
(``IN_CLOSE_WRITE``/``IN_CLOSE_NOWRITE``), ``notify_change`` and the xattr calls
(``IN_ATTRIB``; a truncate ``IN_MODIFY``), ``mkdir``/create (``IN_CREATE``), a rename
(``IN_MOVED_FROM``/``IN_MOVED_TO`` with one cookie, ``IN_MOVE_SELF``), a removal
(``IN_DELETE_SELF``, ``IN_IGNORED``, then the parent's ``IN_DELETE``).  Changes made
inside the kernel (a driver updating an attribute's value) send nothing, as on Linux.

Each check on a path that is not watched is one attribute test (``inode.fsn``).
Checked on Linux 7.2: ``tests/supervisor/c/inotifyprobe.c``.
"""

from __future__ import annotations

import stat as _stat
import struct
import threading
from collections import deque
from errno import EAGAIN, EEXIST, EINVAL, ENOTTY
from typing import TYPE_CHECKING

from .errors import kerr
from .fs import FMODE_READ, File, FileOperations, Inode
from .poll import EPOLLIN, EPOLLRDNORM
from .trace import TracePoint

if TYPE_CHECKING:
    from .process import TaskContext

__all__ = [
    "ALL_INOTIFY_BITS",
    "IN_ACCESS",
    "IN_ATTRIB",
    "IN_CLOSE_NOWRITE",
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_DELETE_SELF",
    "IN_DONT_FOLLOW",
    "IN_IGNORED",
    "IN_ISDIR",
    "IN_MASK_ADD",
    "IN_MASK_CREATE",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_MOVE_SELF",
    "IN_ONLYDIR",
    "IN_OPEN",
    "FsnInfo",
    "InotifyGroup",
    "child_added",
    "fsnotify",
    "fsnotify_name",
    "fsnotify_self",
    "inode_removed",
    "inotify_file",
    "is_inotify",
    "moved",
]

trace_inotify_event = TracePoint("inotify.event", "group", "wd", "mask", "name")

IN_ACCESS = 0x1
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_CLOSE_NOWRITE = 0x10
IN_OPEN = 0x20
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_MASK_CREATE = 0x10000000
IN_MASK_ADD = 0x20000000
IN_ISDIR = 0x40000000
IN_ONESHOT = 0x80000000
IN_ALL_EVENTS = 0xFFF
ALL_INOTIFY_BITS = (
    IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_ADD
    | IN_MASK_CREATE | IN_ISDIR | IN_ONESHOT
)  # fmt: skip
#: the events a directory's watch hears about its children (``FS_EVENTS_POSS_ON_CHILD``)
ON_CHILD = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_OPEN
#: ``/proc/sys/fs/inotify/max_queued_events``
MAX_QUEUED_EVENTS = 16384
_EVENT = struct.Struct("<iIII")  # struct inotify_event: wd, mask, cookie, len
FIONREAD = 0x541B


class Mark:
    """One watch: a group's ``wd`` on an inode, for the events in ``mask``."""

    __slots__ = ("group", "inode", "mask", "wd")

    def __init__(self, group: InotifyGroup, wd: int, mask: int, inode: Inode) -> None:
        self.group, self.wd, self.mask, self.inode = group, wd, mask, inode


class FsnInfo:
    """An inode's fsnotify state (``inode->i_fsnotify_marks``, and whether its parent
    directory is watched: ``parent`` and the name it has there)."""

    __slots__ = ("marks", "name", "parent")

    def __init__(self) -> None:
        self.marks: list[Mark] = []
        self.parent: Inode | None = None
        self.name = ""

    def notify(self, inode: Inode, mask: int) -> None:
        """The VFS's call (``fs.Fsnotify``): :func:`fsnotify`."""
        fsnotify(inode, mask)


def _fsn(inode: Inode) -> FsnInfo | None:
    """The inode's :class:`FsnInfo` (``Inode.fsn``, typed there by what the VFS calls)."""
    info = inode.fsn
    return info if isinstance(info, FsnInfo) else None


def _info(inode: Inode) -> FsnInfo:
    info = _fsn(inode)
    if info is None:
        info = FsnInfo()
        inode.fsn = info
    return info


def _tidy(inode: Inode) -> None:
    info = _fsn(inode)
    if info is not None and not info.marks and info.parent is None:
        inode.fsn = None


def watch_children(parent: Inode, children: dict[str, Inode]) -> None:
    """A watched directory's children report to it (their names in it)."""
    for name, child in children.items():
        info = _info(child)
        info.parent, info.name = parent, name


def unwatch_children(parent: Inode, children: dict[str, Inode]) -> None:
    for child in children.values():
        info = _fsn(child)
        if info is not None and info.parent is parent:
            info.parent = None
            _tidy(child)


def child_added(parent: Inode, name: str, child: Inode) -> None:
    """A new name in a watched directory (create, mkdir, the target of a rename)."""
    pinfo = _fsn(parent)
    if pinfo is not None and pinfo.marks:
        info = _info(child)
        info.parent, info.name = parent, name


def fsnotify(inode: Inode, mask: int, cookie: int = 0) -> None:
    """Report ``mask`` on ``inode``: to its watched parent (with its name) first, then to
    its own watches.  The caller checked ``inode.fsn`` (nothing to do without it)."""
    info = _fsn(inode)
    if info is None:
        return
    isdir = IN_ISDIR if _stat.S_ISDIR(inode.mode) else 0
    parent = info.parent
    pinfo = _fsn(parent) if parent is not None and mask & ON_CHILD else None
    if pinfo is not None:
        for mark in list(pinfo.marks):
            if mark.mask & mask:
                mark.group.queue(mark.wd, mask | isdir, 0, info.name)
    for mark in list(info.marks):
        if mark.mask & mask:
            mark.group.queue(mark.wd, mask | isdir, cookie, "")


def fsnotify_name(parent: Inode, mask: int, name: str, child: Inode, cookie: int = 0) -> None:
    """Report a directory event about ``name`` (create, delete, a move) to ``parent``'s
    watches."""
    info = _fsn(parent)
    if info is None:
        return
    isdir = IN_ISDIR if _stat.S_ISDIR(child.mode) else 0
    for mark in list(info.marks):
        if mark.mask & mask:
            mark.group.queue(mark.wd, mask | isdir, cookie, name)


def inode_removed(inode: Inode, children: dict[str, Inode] | None = None) -> None:
    """The inode is gone (``fsnotify_inoderemove`` then its marks' end): ``IN_DELETE_SELF``
    and ``IN_IGNORED`` to each watch of it."""
    info = _fsn(inode)
    if info is None:
        return
    fsnotify_self(inode, IN_DELETE_SELF)
    for mark in list(info.marks):
        mark.group.drop(mark, ignored=True)
    if children:
        unwatch_children(inode, children)


def fsnotify_self(inode: Inode, mask: int) -> None:
    """An event of the inode itself only (``IN_DELETE_SELF``, ``IN_MOVE_SELF``)."""
    info = _fsn(inode)
    if info is None:
        return
    for mark in list(info.marks):  # (no IN_ISDIR on these, as Linux reports them)
        if mark.mask & mask:
            mark.group.queue(mark.wd, mask, 0, "")


def moved(
    kernel: TaskContext, old_parent: Inode, old: str, new_parent: Inode, new: str, node: Inode
) -> None:
    """A rename: ``IN_MOVED_FROM`` and ``IN_MOVED_TO`` with one new cookie, then the moved
    inode's ``IN_MOVE_SELF``; it now reports to its new directory (if watched)."""
    if _fsn(old_parent) is None and _fsn(new_parent) is None and _fsn(node) is None:
        return
    cookie = kernel.new_id()
    fsnotify_name(old_parent, IN_MOVED_FROM, old, node, cookie)
    fsnotify_name(new_parent, IN_MOVED_TO, new, node, cookie)
    fsnotify_self(node, IN_MOVE_SELF)
    info = _fsn(node)
    if info is not None and info.parent is not None:
        info.parent = None
        _tidy(node)
    child_added(new_parent, new, node)


class InotifyGroup:
    """An inotify instance (``struct fsnotify_group``): its watches by ``wd`` and its
    event queue; readers wait on ``cond``."""

    def __init__(self, kernel: TaskContext) -> None:
        self.kernel = kernel
        self.id = kernel.new_id()
        self.marks: dict[int, Mark] = {}
        self.events: deque[tuple[int, int, int, bytes]] = deque()
        self.cond = threading.Condition()
        self.next_wd = 1
        self.released = False
        #: the directory children each directory watch marked (for its removal)
        self.children: dict[int, dict[str, Inode]] = {}

    def queue(self, wd: int, mask: int, cookie: int, name: str) -> None:
        """``inotify_handle_inode_event``: queue one event, merged with an identical
        last one (``inotify_merge``); past the limit one ``IN_Q_OVERFLOW``."""
        raw = name.encode("utf-8", "surrogateescape")
        event = (wd, mask, cookie, raw)
        with self.cond:
            if self.events and self.events[-1] == event:
                return
            if len(self.events) >= MAX_QUEUED_EVENTS:
                event = (-1, IN_Q_OVERFLOW, 0, b"")
                if self.events[-1] == event:
                    return
            self.events.append(event)
            self.cond.notify_all()
        tracer = self.kernel.tracer
        if tracer.enabled:
            trace_inotify_event(tracer, self.id, wd, mask, name)

    def add_watch(self, inode: Inode, mask: int, children: dict[str, Inode] | None) -> int:
        """``inotify_update_watch``: a new watch, or the inode's watch updated (its
        ``wd``); ``children``: a directory's, which then report to it."""
        for mark in _info(inode).marks:
            if mark.group is self:
                if mask & IN_MASK_CREATE:
                    raise kerr(EEXIST)
                mark.mask = (mark.mask if mask & IN_MASK_ADD else 0) | mask & ~IN_MASK_ADD
                return mark.wd
        wd = self.next_wd
        self.next_wd += 1
        mark = Mark(self, wd, mask & ~(IN_MASK_ADD | IN_MASK_CREATE), inode)
        _info(inode).marks.append(mark)
        self.marks[wd] = mark
        if children is not None:
            watch_children(inode, children)
            self.children[wd] = children
        return wd

    def rm_watch(self, wd: int) -> None:
        """``inotify_rm_watch``: ``EINVAL`` for a ``wd`` the group lacks; ``IN_IGNORED``."""
        mark = self.marks.get(wd)
        if mark is None:
            raise kerr(EINVAL)
        self.drop(mark, ignored=True)

    def drop(self, mark: Mark, ignored: bool) -> None:
        self.marks.pop(mark.wd, None)
        info = _fsn(mark.inode)
        if info is not None and mark in info.marks:
            info.marks.remove(mark)
            if not info.marks:
                children = self.children.get(mark.wd)
                if children is not None:
                    unwatch_children(mark.inode, children)
            _tidy(mark.inode)
        self.children.pop(mark.wd, None)
        if ignored:
            self.queue(mark.wd, IN_IGNORED, 0, "")

    def release(self) -> None:
        """The last close: every watch goes (no event: nobody can read it)."""
        for mark in list(self.marks.values()):
            self.drop(mark, ignored=False)
        with self.cond:
            self.released = True
            self.cond.notify_all()

    def pending(self) -> int:
        """``FIONREAD``: the bytes the queued events take."""
        with self.cond:
            return sum(_event_size(e[3]) for e in self.events)

    def read(self, count: int, nonblock: bool) -> bytes:
        """``inotify_read``: whole events while they fit; ``EINVAL`` when the first
        does not; ``EAGAIN`` when none is queued and the file is non-blocking, else
        wait for one (not interruptible here: see docs/supervisor.md)."""
        out = bytearray()
        with self.cond:
            while not self.events:
                if nonblock or self.released:
                    raise kerr(EAGAIN)
                self.cond.wait()
            while self.events:
                wd, mask, cookie, raw = self.events[0]
                size = _event_size(raw)
                if size > count - len(out):
                    if not out:
                        raise kerr(EINVAL)
                    break
                self.events.popleft()
                pad = size - _EVENT.size
                out += _EVENT.pack(wd, mask, cookie, pad) + raw + bytes(pad - len(raw))
        return bytes(out)


def _event_size(raw: bytes) -> int:
    """``struct inotify_event`` plus the name, NUL-padded to a multiple of 16."""
    return _EVENT.size + (0 if not raw else (len(raw) + 1 + 15) // 16 * 16)


class InotifyOps(FileOperations):
    """``inotify_fops``: ``read``, ``poll``, ``FIONREAD``, ``release``."""

    name = "inotify"

    def read(self, file: File[InotifyGroup], count: int, pos: int) -> bytes:
        import os

        return file.private_data.read(count, bool(file.f_flags & os.O_NONBLOCK))

    def poll(self, file: File[InotifyGroup]) -> int:
        return EPOLLIN | EPOLLRDNORM if file.private_data.events else 0

    def release(self, file: File[InotifyGroup]) -> None:
        file.private_data.release()

    def unlocked_ioctl(self, file: File[InotifyGroup], cmd: int, arg: int) -> int:
        from .uaccess import copy_to_user

        if cmd != FIONREAD:
            raise kerr(ENOTTY)
        copy_to_user(arg, struct.pack("<i", file.private_data.pending()))
        return 0


inotify_fops = InotifyOps()


def inotify_file(kernel: TaskContext, f_flags: int) -> File[InotifyGroup]:
    """A new inotify instance as an open file (``inotify_init1``); ``f_flags`` keeps
    ``O_NONBLOCK``."""
    import os

    inode = Inode(kernel.new_id(), 0o600, dev=0x0F)
    flags = os.O_RDONLY | (f_flags & os.O_NONBLOCK)
    return File(kernel, inotify_fops, inode, flags, FMODE_READ, InotifyGroup(kernel))


def is_inotify(file: File) -> bool:
    return file.f_op is inotify_fops
