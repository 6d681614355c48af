"""``epoll_ctl`` of a mock fd in a supervised process's (real) epoll instance.

The real epoll instance cannot watch a mock file, and ``epoll_wait`` must stay
untrapped (event loops call it constantly).  So for each mock file registered in an
instance the supervisor registers, in that same instance (its own dup of the epoll
fd: ``pidfd_getfd``), an eventfd of its own with the caller's events and data, and
keeps the eventfd's readiness equal to the mock file's ``->poll``: counter 1 is
readable and writable, the maximum (``2**64 - 2``) readable only, 0 writable only.
The real ``epoll_wait`` then reports the caller's data, with the real kernel's
level/edge/one-shot rules, when the mock file is ready.  A watcher thread refreshes the
eventfds after each served mock call (:meth:`EpollMirrors.settle`) and every
:data:`SLICE` seconds while any registration exists (the mock kernel has no wait
queues for the changes it makes on its own); a registration goes when its mock file is released, as
``eventpoll_release`` does.  ``EPOLLPRI``/``EPOLLERR``/``EPOLLHUP`` of a mock file are
not carried (an eventfd has only IN and OUT).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import threading
from errno import EBADF, EEXIST, EINVAL, ENOENT
from typing import TYPE_CHECKING

from ..errors import kerr
from ..poll import EPOLLIN, EPOLLOUT, vfs_poll
from ..realfd import REAL
from ..uaccess import copy_from_user
from .host import libc
from .uabi import i32

if TYPE_CHECKING:
    from ..fs import File
    from .handlers import Call, Result

__all__ = ["EpollMirrors", "do_epoll_ctl"]

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
_EVENT = struct.Struct("<IQ")  # struct epoll_event is packed on x86-64
_NR_KCMP, _KCMP_FILE, _NR_EPOLL_CTL = 312, 0, 233
_MAX = 0xFFFFFFFFFFFFFFFE
SLICE = 0.01


class _Mirror:
    __slots__ = ("epfd", "evfd", "file", "mask")

    def __init__(self, epfd: int, evfd: int, file: File) -> None:
        self.epfd, self.evfd, self.file, self.mask = epfd, evfd, file, -1


class EpollMirrors:
    """The eventfds standing for mock files in supervised processes' epoll instances."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mirrors: list[_Mirror] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshing = threading.Lock()  # (the watcher and a served call's settle)

    def find(self, tid: int, epfd: int, file: File) -> _Mirror | None:
        """The mirror of ``file`` in the epoll instance the caller ``tid`` has at
        ``epfd`` (``kcmp(KCMP_FILE)`` against each mirror's dup of an instance)."""
        sys = libc().syscall
        me = os.getpid()
        for m in self.mirrors:
            if m.file is file:
                same = sys(ctypes.c_long(_NR_KCMP), ctypes.c_long(me), ctypes.c_long(tid),
                           ctypes.c_long(_KCMP_FILE), ctypes.c_long(m.epfd),
                           ctypes.c_long(epfd))  # fmt: skip
                if same == 0:
                    return m
        return None

    def add(self, m: _Mirror) -> None:
        with self.lock:
            self.mirrors.append(m)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="mockkernel-epoll", daemon=True
                )
                self._thread.start()
        self.refresh(m)

    def drop(self, m: _Mirror) -> None:
        with self.lock:
            if m in self.mirrors:
                self.mirrors.remove(m)
        REAL.close(m.evfd)  # (the last reference: epoll forgets it)
        REAL.close(m.epfd)

    def released(self, file: File) -> None:
        """``eventpoll_release``: ``file``'s last reference went; its mirrors go."""
        with self.lock:
            gone = [m for m in self.mirrors if m.file is file]
        for m in gone:
            self.drop(m)

    def refresh(self, m: _Mirror) -> None:
        """Make the eventfd's readiness the mock file's ``->poll`` (IN and OUT)."""
        with self._refreshing:
            mask = vfs_poll(m.file, EPOLLIN | EPOLLOUT) & (EPOLLIN | EPOLLOUT)
            if mask == m.mask:
                return
            value = {EPOLLIN | EPOLLOUT: 1, EPOLLIN: _MAX, EPOLLOUT: 0, 0: 0}[mask]
            with contextlib.suppress(BlockingIOError):
                REAL.read(m.evfd, 8)  # reset to 0 (EAGAIN when already 0)
            if value:
                REAL.write(m.evfd, value.to_bytes(8, "little"))
            m.mask = mask

    def settle(self) -> None:
        """Refresh every mirror now: called after each served mock call, before its
        answer, so that what the call changed (a netlink request queueing its reply, a
        write making a peer readable) is what the caller's next ``epoll_wait`` sees,
        even with a timeout of 0 -- as Linux's wake-ups are done when the call returns.
        Changes made by the kernel on its own (a timer, a fence signalled by a driver)
        still reach the mirrors within the watcher's :data:`SLICE`."""
        with self.lock:
            mirrors = list(self.mirrors)
        for m in mirrors:
            if not m.file.released:
                self.refresh(m)

    def _watch(self) -> None:
        while not self._stop.wait(SLICE):
            with self.lock:
                mirrors = list(self.mirrors)
            for m in mirrors:
                if m.file.released:
                    self.drop(m)  # eventpoll_release: the file's last close
                else:
                    self.refresh(m)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.lock:
            mirrors = list(self.mirrors)
        for m in mirrors:
            self.drop(m)


def _epoll_ctl(epfd: int, op: int, fd: int, event: bytes | None) -> None:
    buf = ctypes.create_string_buffer(event or bytes(_EVENT.size), _EVENT.size)
    r = libc().syscall(ctypes.c_long(_NR_EPOLL_CTL), ctypes.c_long(epfd), ctypes.c_long(op),
                       ctypes.c_long(fd), buf)  # fmt: skip
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def do_epoll_ctl(c: Call, mirrors: EpollMirrors) -> Result:
    """``epoll_ctl(epfd, op, fd, event)``: the real call unless ``fd`` is a mock fd."""
    from .handlers import CONTINUE

    epfd, op, fd, event = i32(c.args[0]), i32(c.args[1]), i32(c.args[2]), c.args[3]
    files = c.proc.files
    if epfd in files:
        raise kerr(EINVAL)  # a mock fd is never an epoll instance
    if fd not in files:
        return CONTINUE
    if epfd == fd:
        raise kerr(EINVAL)
    file = files[fd]
    raw = copy_from_user(event, _EVENT.size) if op != EPOLL_CTL_DEL else None
    try:
        ours = c.proc.fget_real(epfd)
    except OSError:
        raise kerr(EBADF) from None
    keep = False
    try:
        m = mirrors.find(c.tid, epfd, file)
        if op == EPOLL_CTL_ADD:
            if m is not None:
                raise kerr(EEXIST)
            evfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            try:
                _epoll_ctl(ours, EPOLL_CTL_ADD, evfd, raw)  # EINVAL: not an epoll fd
            except BaseException:
                REAL.close(evfd)
                raise
            mirrors.add(_Mirror(ours, evfd, file))
            keep = True
        elif op in (EPOLL_CTL_MOD, EPOLL_CTL_DEL):
            if m is None:
                raise kerr(ENOENT)
            if op == EPOLL_CTL_MOD:
                _epoll_ctl(m.epfd, EPOLL_CTL_MOD, m.evfd, raw)
                m.mask = -1
                mirrors.refresh(m)  # a MOD re-arms: report the current state again
            else:
                mirrors.drop(m)
        else:
            raise kerr(EINVAL)
        return 0
    finally:
        if not keep:
            REAL.close(ours)
