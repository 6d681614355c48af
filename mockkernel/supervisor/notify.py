"""The seccomp listener: receive trapped syscalls, answer them, install fds (ADDFD).

One :class:`Listener` per supervised tree.  A worker thread that received a
notification owns it until it answers; :meth:`Listener.addfd` installs an fd into
the task of *this thread's* notification (the per-CPU "current syscall"), which is
what the fd table needs to hand out Linux's fd numbers in the child.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from errno import ENOENT, EOPNOTSUPP

from ..errors import kerr
from .host import libc
from .seccomp import (
    SECCOMP_ADDFD_FLAG_SETFD,
    SECCOMP_IOCTL_NOTIF_ADDFD,
    SECCOMP_IOCTL_NOTIF_ID_VALID,
    SECCOMP_IOCTL_NOTIF_RECV,
    SECCOMP_IOCTL_NOTIF_SEND,
    SECCOMP_IOCTL_NOTIF_SET_FLAGS,
    SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
    SECCOMP_USER_NOTIF_FLAG_CONTINUE,
    SeccompNotif,
    SeccompNotifAddfd,
    SeccompNotifResp,
)

__all__ = ["Listener"]

#: ``struct seccomp_notif``: id, pid, flags, then ``seccomp_data`` (nr, arch,
#: instruction_pointer, args[6])
_NOTIF = struct.Struct("<QIIiIQ6Q")
_ZEROS = bytes(_NOTIF.size)


class _Cpu(threading.local):
    """Per worker thread: the notification being served and the fds it installed."""

    def __init__(self) -> None:
        self.notif_id: int | None = None
        self.added: list[int] = []
        #: the notification in progress turned out to be gone (``Listener.lost``)
        self.lost = False
        self.recv = SeccompNotif()
        self.resp = SeccompNotifResp()
        #: a CONTINUE answer made once: only its id changes (the most common answer)
        self.cont = SeccompNotifResp(flags=SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        self.addfd = SeccompNotifAddfd()
        self.id = ctypes.c_uint64()
        #: the receive buffer as bytes (zeroed and unpacked without ctypes attributes)
        self.recv_view = memoryview(self.recv).cast("B")
        self.recv_ptr = ctypes.c_void_p(ctypes.addressof(self.recv))
        self.cont_ptr = ctypes.c_void_p(ctypes.addressof(self.cont))


class Listener:
    """The listener fd of one filter and the calls made on it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.cpu = _Cpu()
        self._lib = libc()
        self._raw = self._lib.ioctl_raw
        self._req_recv = ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_RECV)
        self._req_send = ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_SEND)

    def _ioctl(self, req: int, arg: ctypes._CData) -> int:
        r: int = self._lib.ioctl(self.fd, req, ctypes.byref(arg))
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return r

    def sync_wake_up(self) -> bool:
        """``SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`` (Linux 6.6): the trapped thread hands its
        CPU to the receiver, which saves a scheduler round trip per call.  False where
        the host does not have it (nothing else changes)."""
        cell = self.cpu.id
        cell.value = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
        try:
            self._ioctl(SECCOMP_IOCTL_NOTIF_SET_FLAGS, cell)
        except OSError:
            return False
        return True

    def recv(self) -> SeccompNotif:
        """The next notification (this thread's buffer: valid until the next recv)."""
        n = self.cpu.recv
        ctypes.memset(ctypes.byref(n), 0, ctypes.sizeof(n))
        self._ioctl(SECCOMP_IOCTL_NOTIF_RECV, n)
        return n

    def recv_call(self) -> tuple[int, int, int, tuple[int, ...]]:
        """The next notification as ``(id, tid, nr, args)``: :meth:`recv` at the least
        cost (one untyped ioctl, one ``struct`` unpack; it runs for every trapped call)."""
        cpu = self.cpu
        view = cpu.recv_view
        view[:] = _ZEROS  # (the kernel refuses a receive buffer that is not zeroed)
        if self._raw(self.fd, self._req_recv, cpu.recv_ptr) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        n = _NOTIF.unpack_from(view)
        return n[0], n[1], n[3], n[6:]

    def send(self, nid: int, val: int = 0, error: int = 0, cont: bool = False) -> None:
        """Answer notification ``nid``: ``val``, ``-error``, or let the real kernel run it.
        ``ENOENT``: the task is gone or its syscall was interrupted."""
        r = self.cpu.resp
        r.id, r.val, r.error = nid, val, -error if error else 0
        r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE if cont else 0
        if cont:
            r.val = r.error = 0
        self._ioctl(SECCOMP_IOCTL_NOTIF_SEND, r)

    def send_continue(self, nid: int) -> None:
        """``send(nid, cont=True)`` for a call no handler ran for (nothing installed):
        the per-thread answer made once, one ioctl.  ``ENOENT`` as :meth:`send`."""
        cpu = self.cpu
        cpu.cont.id = nid
        if self._raw(self.fd, self._req_send, cpu.cont_ptr) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def id_valid(self, nid: int) -> bool:
        """Is the task that made ``nid`` still waiting for its answer (no pid reuse)?"""
        cell = self.cpu.id
        cell.value = nid
        try:
            self._ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID, cell)
        except OSError:
            if nid == self.cpu.notif_id:
                self.cpu.lost = True
            return False
        return True

    def addfd(self, srcfd: int, newfd: int | None, cloexec: bool) -> int:
        """Install a dup of our ``srcfd`` into the task of this thread's notification:
        at the lowest free number, or exactly at ``newfd`` (closing what was there, as
        ``dup2``).  Returns the number in the task."""
        cpu = self.cpu
        if cpu.notif_id is None:
            raise kerr(EOPNOTSUPP, "no supervised syscall in progress on this thread")
        a = cpu.addfd
        a.id, a.srcfd = cpu.notif_id, srcfd
        a.flags = SECCOMP_ADDFD_FLAG_SETFD if newfd is not None else 0
        a.newfd = newfd or 0
        a.newfd_flags = os.O_CLOEXEC if cloexec else 0
        try:
            fd = self._ioctl(SECCOMP_IOCTL_NOTIF_ADDFD, a)
        except OSError as e:
            cpu.lost = cpu.lost or e.errno == ENOENT
            raise
        cpu.added.append(fd)
        return fd

    def begin(self, nid: int) -> None:
        self.cpu.notif_id = nid
        self.cpu.added.clear()
        self.cpu.lost = False

    def lost(self) -> bool:
        """Did this thread's handler find its caller no longer waiting (``id_valid``
        false, ``ADDFD`` ``ENOENT``), so that its answer is a give-up, not a result?"""
        return self.cpu.lost

    def end(self) -> list[int]:
        """Done with this thread's notification; the fds it installed."""
        cpu = self.cpu
        cpu.notif_id = None
        added, cpu.added = cpu.added, []
        return added
