"""``SCM_RIGHTS`` of mock fds between supervised processes (``sendmsg``/``recvmsg``).

A mock fd is a placeholder memfd shared by every mock file of its kind, so the real
kernel cannot carry *which* mock file a passed fd is.  The supervisor does:

* ``sendmsg`` with a mock fd in an ``SCM_RIGHTS`` message: the send is made here, on
  the caller's socket (``pidfd_getfd``), with each mock fd replaced by a fresh *token*
  memfd; the token's inode maps to the mock ``File``, which holds one reference while
  the message is in flight (as ``scm_fp_dup``'s ``get_file``).  Without a mock fd the
  real call runs (``CONTINUE``).
* ``recvmsg`` with room for an fd in its control buffer (else the real call: Linux
  drops the files; a token's reference then goes at the end of the tree) on an
  ``AF_UNIX`` socket (another family: the real call): the supervisor
  waits for the next message and peeks at it (``MSG_PEEK``; a receiver may block before
  any token is sent, so this cannot depend on tokens being in flight); without a token
  the real call runs (it finds the message at once); with one the receive is made
  here and each token becomes the mock file at a new fd of the receiver
  (``install_file``: Linux's lowest free number), each real fd is installed with
  ``ADDFD``; the data, the control message (the receiver's numbers) and
  ``msg_flags`` are written back.  A blocking receive waits in slices, giving up when
  the caller is gone or interrupted (``SECCOMP_IOCTL_NOTIF_ID_VALID``).

``sendmmsg``/``recvmmsg`` are these, message by message (:func:`do_sendmmsg`,
:func:`do_recvmmsg`): on a mock socket each is the socket's own ``sendmsg``/``recvmsg``;
on a real one a vector with a mock fd in any ``SCM_RIGHTS`` message is sent here, each
message as ``sendmsg`` does; a receive on an AF_UNIX socket with room for an fd in any
message is made here, message by message as ``recvmsg`` (each waits unless
``MSG_DONTWAIT``; after the first, not with ``MSG_WAITFORONE``; a ``timeout`` is not
applied).  Otherwise the real call runs.
"""

from __future__ import annotations

import _socket
import array
import os
import select
import struct
import threading
from collections.abc import Callable
from errno import EAGAIN, EBADF, EINTR, EINVAL, ENOTSOCK
from typing import TYPE_CHECKING

from ..errors import kerr
from ..realfd import REAL
from ..uaccess import copy_from_user, copy_to_user
from .uabi import i32, iovecs

if TYPE_CHECKING:
    from ..fs import File
    from ..process import Process
    from .handlers import Call, Result

__all__ = ["ScmTokens", "do_recvmsg", "do_sendmsg", "quick_recvmsg", "quick_sendmsg"]

SOL_SOCKET, SCM_RIGHTS = 1, 1
MSG_PEEK, MSG_CTRUNC, MSG_DONTWAIT, MSG_CMSG_CLOEXEC = 0x2, 0x8, 0x40, 0x40000000
AF_UNIX, SO_DOMAIN = 1, 39
#: struct user_msghdr: name, namelen, iov, iovlen, control, controllen, flags
_MSGHDR = struct.Struct("<QI4xQQQQi4x")
_CMSGHDR = struct.Struct("<Qii")
#: how often a waiting receive looks whether its caller is still there (data wakes it
#: at once; a signal to the caller ends its wait at once, the worker's within a slice)
_SLICE = 0.05
_MAX_CONTROL = 1 << 16


def _align(n: int) -> int:
    return (n + 7) & ~7


class ScmTokens:
    """The mock files in flight in ``SCM_RIGHTS`` messages, by their token's inode."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inflight: dict[int, File] = {}

    def token(self, file: File) -> int:
        """A fresh real memfd standing for ``file`` in one message (the caller closes
        it once sent); ``file`` gets one reference, held until received."""
        fd = os.memfd_create("mockkernel:scm-rights", os.MFD_CLOEXEC)
        ino = REAL.fstat(fd).st_ino
        with self.lock:
            self.inflight[ino] = file.get()
        return fd

    def lookup(self, fd: int, take: bool) -> File | None:
        """The mock file a received real ``fd`` stands for (``take``: its in-flight
        reference goes to the caller; else a new reference), ``None``: a real fd."""
        if not self.inflight:
            return None
        ino = REAL.fstat(fd).st_ino
        with self.lock:
            file = self.inflight.pop(ino, None) if take else self.inflight.get(ino)
            if file is not None and not take:
                file = file.get()
        return file

    def is_token(self, fd: int) -> bool:
        """Does the real ``fd`` stand for a mock file in flight?"""
        return REAL.fstat(fd).st_ino in self.inflight

    def forget(self, fd: int) -> None:
        """A token that was never sent: its reference goes."""
        file = self.lookup(fd, take=True)
        if file is not None:
            file.put()

    def release_all(self) -> None:
        """At the end of the tree: messages never received drop their references."""
        with self.lock:
            files = list(self.inflight.values())
            self.inflight.clear()
        for file in files:
            file.put()


def _cmsgs(raw: bytes) -> list[tuple[int, int, bytes]]:
    """``(level, type, data)`` of each control message in ``raw`` (``CMSG_NXTHDR``)."""
    out = []
    at = 0
    while at + _CMSGHDR.size <= len(raw):
        length, level, type_ = _CMSGHDR.unpack_from(raw, at)
        if length < _CMSGHDR.size or at + length > len(raw):
            raise kerr(EINVAL)
        out.append((level, type_, raw[at + _CMSGHDR.size : at + length]))
        at += _align(length)
    return out


def _sock(c: Call, fd: int, name: str) -> int:
    """Our dup of the caller's real socket ``fd`` (the caller closes it)."""
    if fd in c.proc.files:
        raise c.unsupported(name, fd, ENOTSOCK)
    try:
        return c.proc.fget_real(fd)
    except OSError:
        raise kerr(EBADF) from None


def quick_sendmsg(proc: Process, args: tuple[int, ...]) -> bool:
    """Surely the real call (before any handler): a real socket and a message whose
    control buffer holds no mock fd in an ``SCM_RIGHTS`` message (most have none)."""
    if i32(args[0]) in proc.files:
        return False
    try:
        *_, control, controllen, _f = _MSGHDR.unpack(proc.mm.read(args[1], _MSGHDR.size))
        if not control or controllen < _CMSGHDR.size:
            return True
        files = proc.files
        if not files:
            return True  # no mock fd to pass
        for level, type_, data in _cmsgs(proc.mm.read(control, min(controllen, _MAX_CONTROL))):
            fds = array.array("i", data[: len(data) // 4 * 4])
            if level == SOL_SOCKET and type_ == SCM_RIGHTS and any(n in files for n in fds):
                return False
    except OSError:
        return False  # the handler gives the errno
    return True


def quick_recvmsg(proc: Process, args: tuple[int, ...]) -> bool:
    """Surely the real call: a real socket and no room for an fd in the control buffer
    (Linux then drops passed files; a token's reference goes at the end of the tree)."""
    if i32(args[0]) in proc.files:
        return False
    try:
        control, controllen = struct.unpack("<QQ", proc.mm.read(args[1] + 32, 16))
    except OSError:
        return False
    return not control or controllen < _CMSGHDR.size + 4


#: struct mmsghdr: a msghdr and msg_len (padded to 64 bytes)
MMSGHDR_SIZE = 64
UIO_MAXIOV = 1024
MSG_WAITFORONE = 0x10000


def quick_sendmmsg(proc: Process, args: tuple[int, ...]) -> bool:
    """As :func:`quick_sendmsg` for each message of the vector."""
    if i32(args[0]) in proc.files:
        return False  # a mock socket (an empty vector included)
    vlen = min(args[2] & 0xFFFFFFFF, UIO_MAXIOV)
    return all(
        quick_sendmsg(proc, (args[0], args[1] + MMSGHDR_SIZE * i, args[3])) for i in range(vlen)
    )


def quick_recvmmsg(proc: Process, args: tuple[int, ...]) -> bool:
    """Surely the real call: a real socket and no message with room for an fd."""
    if i32(args[0]) in proc.files:
        return False
    vlen = min(args[2] & 0xFFFFFFFF, UIO_MAXIOV)
    return all(quick_recvmsg(proc, (args[0], args[1] + MMSGHDR_SIZE * i)) for i in range(vlen))


def _vector(c: Call, one: Callable[[Call], Result], name: str) -> Result:
    """``sendmmsg``/``recvmmsg`` as ``one`` (``sendmsg``/``recvmsg``) per message: the
    count done, or the first message's error (``___sys_sendmsg``'s loop); each done
    message's ``msg_len`` written back.  ``MSG_WAITFORONE``: only the first waits."""
    from .handlers import CONTINUE, Call

    vec, vlen, flags = c.args[1], min(c.args[2] & 0xFFFFFFFF, UIO_MAXIOV), i32(c.args[3])
    done = 0
    for i in range(vlen):
        if done and name == "recvmmsg" and flags & MSG_WAITFORONE:
            flags |= MSG_DONTWAIT
        at = vec + MMSGHDR_SIZE * i
        sub = Call(c.sv, c.proc, c.tid, c.nid, (c.args[0], at, flags & 0xFFFFFFFF, 0, 0, 0))
        try:
            n = one(sub)
        except OSError:
            if done:
                break  # the count so far (a later error is Linux's sk_err, not returned)
            raise
        if n is CONTINUE:  # a real message in a real vector: sent here all the same
            raise kerr(EINVAL)
        assert isinstance(n, int)
        copy_to_user(at + 56, struct.pack("<I", n))
        done += 1
    return done


def do_sendmmsg(c: Call, tokens: ScmTokens) -> Result:
    """``sendmmsg``: see the module text."""
    from . import netsock
    from .handlers import CONTINUE

    if i32(c.args[0]) in c.proc.files:
        return _vector(c, netsock.sys_sendmsg, "sendmmsg")
    if quick_sendmmsg(c.proc, c.args):
        return CONTINUE
    return _vector(c, lambda sub: _sendmsg(sub, tokens, force=True), "sendmmsg")


def do_recvmmsg(c: Call, tokens: ScmTokens) -> Result:
    """``recvmmsg``: see the module text."""
    from . import netsock
    from .handlers import CONTINUE

    fd = i32(c.args[0])
    if fd in c.proc.files:
        return _vector(c, netsock.sys_recvmsg, "recvmmsg")
    if quick_recvmmsg(c.proc, c.args):
        return CONTINUE
    local = _sock(c, fd, "recvmmsg")
    try:
        s = _socket.socket(fileno=local)
        try:
            if s.getsockopt(SOL_SOCKET, SO_DOMAIN) != AF_UNIX:
                return CONTINUE
        finally:
            s.detach()
    finally:
        REAL.close(local)
    # any message may carry a token, sent before or while this waits: all served here
    return _vector(c, lambda sub: _recvmsg(sub, tokens, force=True), "recvmmsg")


def do_sendmsg(c: Call, tokens: ScmTokens) -> Result:
    return _sendmsg(c, tokens, force=False)


def _sendmsg(c: Call, tokens: ScmTokens, force: bool) -> Result:
    """``sendmsg`` of a message with a mock fd (``force``: of any message) made here."""
    from .handlers import CONTINUE

    fd, msg, flags = i32(c.args[0]), c.args[1], i32(c.args[2])
    if fd in c.proc.files:
        raise c.unsupported("sendmsg", fd, ENOTSOCK)
    name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(
        copy_from_user(msg, _MSGHDR.size)
    )
    has_control = bool(control) and controllen >= _CMSGHDR.size
    if not has_control and not force:
        return CONTINUE
    cmsgs = _cmsgs(copy_from_user(control, min(controllen, _MAX_CONTROL))) if has_control else []
    files = c.proc.files
    rights = [
        array.array("i", data[: len(data) // 4 * 4]).tolist()
        for level, type_, data in cmsgs
        if level == SOL_SOCKET and type_ == SCM_RIGHTS
    ]
    if not force and not any(n in files for fds in rights for n in fds):
        return CONTINUE
    local = _sock(c, fd, "sendmsg")
    held: list[int] = []  # our fds to close once sent
    sent_tokens: list[int] = []
    try:
        anc: list[tuple[int, int, bytes]] = []
        for level, type_, data in cmsgs:
            if level == SOL_SOCKET and type_ == SCM_RIGHTS:
                out = array.array("i")
                for n in array.array("i", data[: len(data) // 4 * 4]):
                    if n in files:
                        t = tokens.token(files[n])
                        sent_tokens.append(t)
                    else:
                        try:
                            t = c.proc.fget_real(n)
                        except OSError:
                            raise kerr(EBADF) from None
                    held.append(t)
                    out.append(t)
                anc.append((level, type_, out.tobytes()))
            else:
                anc.append((level, type_, data))
        vec = iovecs(iov, int(iovlen))
        data = b"".join(copy_from_user(base, n) for base, n in vec if n)
        addr = copy_from_user(name, namelen) if name and namelen else None
        s = _socket.socket(fileno=local)
        try:
            if addr is not None:
                # AF_UNIX (the only family that passes fds): sun_path after sun_family
                path = addr[2:]
                path = path if path.startswith(b"\0") else path.split(b"\0", 1)[0]
                n_sent = s.sendmsg([data], anc, flags & ~MSG_CMSG_CLOEXEC, path)
            else:
                n_sent = s.sendmsg([data], anc, flags)
        finally:
            s.detach()
        sent_tokens.clear()  # in flight now: the receiver takes their references
        return n_sent
    finally:
        for t in sent_tokens:
            tokens.forget(t)
        for t in held:
            REAL.close(t)
        REAL.close(local)


def do_recvmsg(c: Call, tokens: ScmTokens) -> Result:
    return _recvmsg(c, tokens, force=False)


def _recvmsg(c: Call, tokens: ScmTokens, force: bool) -> Result:
    """``recvmsg`` of a message carrying a token made here (``force``: of any message;
    a socket of another family is then ``EINVAL``: a vector is never split)."""
    from .handlers import CONTINUE

    fd, msg, flags = i32(c.args[0]), c.args[1], i32(c.args[2])
    if fd in c.proc.files:
        raise c.unsupported("recvmsg", fd, ENOTSOCK)
    control, controllen = struct.unpack("<QQ", copy_from_user(msg + 32, 16))
    if not force and (not control or controllen < _CMSGHDR.size + 4):
        return CONTINUE  # no room for an fd: Linux drops passed files (MSG_CTRUNC)
    local = _sock(c, fd, "recvmsg")
    try:
        s = _socket.socket(fileno=local)
        try:
            if s.getsockopt(SOL_SOCKET, SO_DOMAIN) != AF_UNIX:
                if force:
                    raise kerr(EINVAL)
                return CONTINUE
            if not _next_has_token(c, s, tokens, flags) and not force:
                return CONTINUE
            return _receive(c, s, tokens, msg, flags)
        finally:
            s.detach()
    finally:
        REAL.close(local)


def _next_has_token(c: Call, s: _socket.socket, tokens: ScmTokens, flags: int) -> bool:
    """Peek at the next message (waiting for one, in slices, unless non-blocking)."""
    while True:
        try:
            _d, anc, _f, _a = s.recvmsg(1, 4096, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            if flags & MSG_DONTWAIT:
                return False  # the real call says EAGAIN
            waiter = select.poll()
            waiter.register(s.fileno(), select.POLLIN)
            waiter.poll(_SLICE * 1000)
            if not c.sv.id_valid(c.nid):
                raise kerr(EINTR) from None  # gone or interrupted: the answer is dropped
            continue
        found = False
        for level, type_, data in anc:
            if level == SOL_SOCKET and type_ == SCM_RIGHTS:
                for n in array.array("i", data[: len(data) // 4 * 4]):
                    found = found or tokens.is_token(n)
                    REAL.close(n)
        return found


def _receive(c: Call, s: _socket.socket, tokens: ScmTokens, msg: int, flags: int) -> Result:
    name, _namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(
        copy_from_user(msg, _MSGHDR.size)
    )
    vec = iovecs(iov, int(iovlen))
    size = sum(n for _, n in vec)
    peek = bool(flags & MSG_PEEK)
    cloexec = bool(flags & MSG_CMSG_CLOEXEC)
    try:
        data, anc, mflags, _addr = s.recvmsg(
            size, min(controllen, _MAX_CONTROL), flags | MSG_CMSG_CLOEXEC
        )
    except BlockingIOError:
        raise kerr(EAGAIN) from None
    ctl = bytearray()
    for level, type_, raw in anc:
        if level == SOL_SOCKET and type_ == SCM_RIGHTS:
            out = array.array("i")
            for n in array.array("i", raw[: len(raw) // 4 * 4]):
                try:
                    file = tokens.lookup(n, take=not peek)
                    if file is not None:
                        try:
                            out.append(c.proc.install_file(file, cloexec))
                        except BaseException:
                            file.put()
                            raise
                    else:
                        assert c.sv.listener is not None
                        out.append(c.sv.listener.addfd(n, None, cloexec))
                finally:
                    REAL.close(n)
            raw = out.tobytes()
        length = _CMSGHDR.size + len(raw)
        ctl += _CMSGHDR.pack(length, level, type_) + raw + bytes(_align(length) - length)
    done = 0
    for base, n in vec:
        if done >= len(data):
            break
        chunk = data[done : done + n]
        copy_to_user(base, chunk)
        done += len(chunk)
    if len(ctl) > controllen:
        ctl = ctl[:controllen]
        mflags |= MSG_CTRUNC
    if ctl:
        copy_to_user(control, bytes(ctl))
    if name:  # msg_namelen: the peer's address is not reported (an unnamed peer's is 0)
        copy_to_user(msg + 8, struct.pack("<I", 0))
    copy_to_user(msg + 40, struct.pack("<Q", len(ctl)))
    copy_to_user(msg + 48, struct.pack("<i", mflags))
    return len(data)
