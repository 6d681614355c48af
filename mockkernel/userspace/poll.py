"""``select.select``, ``select.poll`` and ``select.epoll`` over mock and real fds together.

A mock fd's readiness is its file's ``->poll`` (:func:`mockkernel.poll.vfs_poll`); real
fds go to the real calls.  With no mock fd among the arguments the real function runs
unchanged.  With some, the wait is sliced: the real fds are waited on for at most
``SLICE`` seconds at a time and the mock files asked again after each slice, so a mock
file made ready by another thread is seen within a slice (the mock kernel has no wait
queues to wake a real ``poll``).  A ready mock fd makes the real fds be polled without
waiting, so one call reports both.

Conventions are CPython's (argument checks, the order of results, ``select``'s
``FD_SETSIZE`` limit, ``poll``'s ``POLLNVAL`` for a bad fd, ``epoll``'s errnos).  Not
modelled: ``EPOLLET`` and ``EPOLLEXCLUSIVE`` on a mock fd (``EOPNOTSUPP``: there are no
wake-up events to be edge-triggered on); an epoll fd added to another epoll with mock
fds inside it sees only its real fds.
"""

from __future__ import annotations

import functools
import math
import select
import time
from collections.abc import Callable, Mapping
from errno import EEXIST, EINVAL, ENOENT, EOPNOTSUPP
from typing import TYPE_CHECKING, Any

from ..errors import kerr
from ..fs import File
from ..poll import (
    EPOLLERR,
    EPOLLHUP,
    EPOLLIN,
    EPOLLOUT,
    EPOLLPRI,
    EPOLLRDBAND,
    EPOLLRDNORM,
    EPOLLWRBAND,
    EPOLLWRNORM,
)
from ..syscalls.poll import pollmask
from .hotpath import as_fd

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["SLICE", "make_poll_functions"]

#: the longest real wait between two looks at the mock files (seconds)
SLICE = 0.005
FD_SETSIZE = 1024
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EPOLLEXCLUSIVE = 1 << 28
# fs/select.c: what select() counts as readable, writable, exceptional
_POLLIN_SET = EPOLLRDNORM | EPOLLRDBAND | EPOLLIN | EPOLLHUP | EPOLLERR
_POLLOUT_SET = EPOLLWRBAND | EPOLLWRNORM | EPOLLOUT | EPOLLERR
_POLLEX_SET = EPOLLPRI


def _fileno(obj: Any) -> int:
    """``as_fd``, and a negative int refused as ``select``/``poll`` refuse it."""
    fd = as_fd(obj)
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _left(deadline: float | None) -> float | None:
    """Seconds of the next real wait: at most a slice, 0 once the deadline passed."""
    if deadline is None:
        return SLICE
    return max(0.0, min(SLICE, deadline - time.monotonic()))


class PollCtx:
    """What the waits of one process look at: its mock files, the kernel's pollers of
    real fds (``Process.fd_pollers``), its tracer, and the real calls."""

    def __init__(self, proc: Process | None, real: Mapping[str, Any]) -> None:
        self.files: dict[int, File] = proc.files if proc is not None else {}
        self.pollers: dict[int, Callable[[], int]] = proc.fd_pollers if proc is not None else {}
        self.tracer = proc.kernel.tracer if proc is not None else None
        self.pid = proc.pid if proc is not None else 0
        self.real_select: Callable[..., Any] = real["select"]
        self.real_poll: Callable[[], Any] = real["poll"]
        self.real_epoll: type[select.epoll] = real["epoll"]

    def source(self, fd: int) -> Any:
        """What answers for ``fd``: its mock file, a kernel poller, or None (real)."""
        file = self.files.get(fd)
        return file if file is not None else self.pollers.get(fd)

    @staticmethod
    def ready(src: Any, events: int) -> int:
        return pollmask(src, events)  # the syscall layer's rule

    def trace(self, event: str, **fields: Any) -> None:
        tracer = self.tracer
        if tracer is not None and tracer.enabled:  # (per poll call: no call while off)
            tracer.emit(event, pid=self.pid, **fields)


def _current_ctx() -> PollCtx:
    """The installed redirection's context (only reachable while one is installed; a
    stale reference after ``uninstall`` sees no mock fds)."""
    redir = _redirect.Redirection.active
    return redir.poll_ctx if redir is not None else PollCtx(None, _redirect._REAL_MORE)


def _poll_timeout_ms(timeout: Any) -> float | None:
    if timeout is None:
        return None
    try:
        ms = float(timeout)
    except (TypeError, ValueError):
        raise TypeError("timeout must be an integer or None") from None
    return None if ms < 0 else ms / 1000.0


class MockPoll:
    """``select.poll()``: a registry of fds; mock ones asked through ``->poll``."""

    def __init__(self) -> None:
        self._c = c = _current_ctx()
        self._events: dict[int, int] = {}
        #: a real poll object mirroring ``_events`` (every fd, mock ones too: it is
        #: used only while none of them is mock, and then it is the whole answer)
        self._real = c.real_poll()

    def register(self, fd: Any, eventmask: int = EPOLLIN | EPOLLPRI | EPOLLOUT, /) -> None:
        n = fd if type(fd) is int and fd >= 0 else _fileno(fd)
        if type(eventmask) is not int or not 0 <= eventmask <= 0xFFFF:
            eventmask = _ushort(eventmask)
        self._real.register(n, eventmask)  # (first: its OverflowError leaves no entry)
        self._events[n] = eventmask

    def modify(self, fd: Any, eventmask: int, /) -> None:
        n = _fileno(fd)
        mask = _ushort(eventmask)
        if n not in self._events:
            raise kerr(ENOENT)
        self._real.modify(n, mask)
        self._events[n] = mask

    def unregister(self, fd: Any, /) -> None:
        n = _fileno(fd)
        if n not in self._events:
            raise KeyError(n)
        del self._events[n]
        self._real.unregister(n)

    def poll(self, timeout: Any = None, /) -> list[tuple[int, int]]:
        c = self._c
        files, pollers = c.files, c.pollers
        for fd in self._events:
            if fd in files or fd in pollers:
                break
        else:  # every fd real: the real poll of the same registrations
            result: list[tuple[int, int]] = self._real.poll(timeout)
            return result
        seconds = _poll_timeout_ms(timeout)
        deadline = _deadline(seconds)
        while True:
            mock: dict[int, int] = {}
            p = self._c.real_poll()
            for fd, ev in self._events.items():
                src = self._c.source(fd)
                if src is None:
                    p.register(fd, ev)
                else:
                    mask = self._c.ready(src, ev)
                    if mask:
                        mock[fd] = mask
            wait = 0.0 if mock else _left(deadline)
            got = dict(p.poll(None if wait is None else wait * 1000.0))
            if mock or got or (deadline is not None and time.monotonic() >= deadline):
                out = [
                    (fd, mock.get(fd) or got.get(fd, 0))
                    for fd in self._events
                    if fd in mock or fd in got
                ]
                self._c.trace("sys.poll", nfds=len(self._events), ret=len(out))
                return out


class MockEpoll:
    """``select.epoll``: a real epoll for the real fds plus the mock fds' interest list
    (level-triggered, ``EPOLLONESHOT`` honoured)."""

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        self._c = _current_ctx()
        self._real = self._c.real_epoll(sizehint, flags)
        #: mock fd -> [events, the file registered]: a closed fd drops out, as the
        #: real epoll forgets a file once its last reference is gone
        self._mock: dict[int, list[Any]] = {}

    @classmethod
    def fromfd(cls, fd: int, /) -> Any:
        return _current_ctx().real_epoll.fromfd(fd)

    @property
    def closed(self) -> bool:
        return bool(self._real.closed)

    def fileno(self) -> int:
        return int(self._real.fileno())

    def close(self) -> None:
        self._mock.clear()
        self._real.close()

    def __enter__(self) -> MockEpoll:
        if self._real.closed:
            raise ValueError("I/O operation on closed epoll object")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self) -> None:
        if self._real.closed:
            raise ValueError("I/O operation on closed epoll object")

    def _live(self, fd: int) -> Any:
        entry = self._mock.get(fd)
        if entry is None:
            return None
        src = self._c.source(fd)
        if src is None or src is not entry[1]:  # closed (maybe reused): forgotten
            del self._mock[fd]
            return None
        return src

    def register(self, fd: Any, eventmask: int = EPOLLIN | EPOLLPRI | EPOLLOUT) -> None:
        self._check()
        n = _fileno(fd)
        src = self._c.source(n)
        if src is None:
            self._real.register(n, eventmask)
            return
        if eventmask & (EPOLLET | EPOLLEXCLUSIVE):
            self._c.trace("poll.unsupported", fd=n, what="EPOLLET/EPOLLEXCLUSIVE on a mock fd")
            raise kerr(EOPNOTSUPP, "edge-triggered/exclusive epoll on a mock fd: not modelled")
        if self._live(n) is not None:
            raise kerr(EEXIST)
        self._mock[n] = [eventmask & 0xFFFFFFFF, src]

    def modify(self, fd: Any, eventmask: int) -> None:
        self._check()
        n = _fileno(fd)
        if self._c.source(n) is None:
            self._real.modify(n, eventmask)
            return
        if self._live(n) is None:
            raise kerr(ENOENT)
        if eventmask & (EPOLLET | EPOLLEXCLUSIVE):
            raise kerr(EINVAL if eventmask & EPOLLEXCLUSIVE else EOPNOTSUPP)
        self._mock[n][0] = eventmask & 0xFFFFFFFF

    def unregister(self, fd: Any) -> None:
        self._check()
        n = _fileno(fd)
        if self._c.source(n) is None:
            self._real.unregister(n)
            return
        if self._live(n) is None:
            raise kerr(ENOENT)
        del self._mock[n]

    def poll(self, timeout: Any = None, maxevents: int = -1) -> list[tuple[int, int]]:
        self._check()
        if maxevents == -1:
            maxevents = FD_SETSIZE - 1
        elif maxevents < 1:
            raise ValueError(f"maxevents must be greater than 0, got {maxevents}")
        for fd in list(self._mock):
            self._live(fd)
        if not self._mock:
            result: list[tuple[int, int]] = self._real.poll(timeout, maxevents)
            return result
        if timeout is not None:
            try:
                timeout = float(timeout)
            except (TypeError, ValueError):
                raise TypeError("timeout must be an integer or None") from None
            if timeout < 0:
                timeout = None
        deadline = _deadline(timeout)
        while True:
            out: list[tuple[int, int]] = []
            for fd, entry in list(self._mock.items()):
                if len(out) >= maxevents:
                    break
                events, src = entry
                if self._live(fd) is None or not events & ~EPOLLONESHOT:
                    continue
                mask = self._c.ready(src, events)
                if mask:
                    out.append((fd, mask))
                    if events & EPOLLONESHOT:
                        entry[0] = 0  # disarmed until modify()
            room = maxevents - len(out)
            if room > 0:
                wait = 0.0 if out else _left(deadline)
                out += self._real.poll(wait, room)
            if out or (deadline is not None and time.monotonic() >= deadline):
                self._c.trace("sys.epoll_wait", nfds=len(self._mock), ret=len(out))
                return out


def make_poll_functions(ctx: PollCtx) -> dict[str, Any]:
    """The replacements of ``select.select``/``poll``/``epoll`` for ``ctx``'s process.

    ``poll`` and ``epoll`` are classes made once (they find the context of the installed
    redirection when an object is made); classes rather than functions because
    ``selectors`` keeps them as class attributes, where a function would bind."""

    files, pollers, real_select = ctx.files, ctx.pollers, ctx.real_select

    # -- select ---------------------------------------------------------------------------
    def m_select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None, /) -> Any:
        if type(rlist) is list and type(wlist) is list and type(xlist) is list:
            # the usual call: lists of real fds go to the real select at once
            # (the three loops written out: no tuple, no outer loop)
            for o in rlist:
                fd = o if type(o) is int else _fileno(o)
                if fd in files or fd in pollers:
                    return select_slow(rlist, wlist, xlist, timeout)
            for o in wlist:
                fd = o if type(o) is int else _fileno(o)
                if fd in files or fd in pollers:
                    return select_slow(rlist, wlist, xlist, timeout)
            for o in xlist:
                fd = o if type(o) is int else _fileno(o)
                if fd in files or fd in pollers:
                    return select_slow(rlist, wlist, xlist, timeout)
            return real_select(rlist, wlist, xlist, timeout)
        return select_slow(rlist, wlist, xlist, timeout)

    def select_slow(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None, /) -> Any:
        lists = [list(rlist), list(wlist), list(xlist)]
        if not any(
            ctx.source(o if type(o) is int else _fileno(o)) is not None
            for lst in lists
            for o in lst
        ):
            return ctx.real_select(lists[0], lists[1], lists[2], timeout)
        if timeout is not None:
            try:
                timeout = float(timeout)
            except (TypeError, ValueError):
                raise TypeError("timeout must be a float or None") from None
            if math.isnan(timeout):
                raise ValueError("Invalid value NaN (not a number)")
            if timeout < 0:
                raise ValueError("timeout must be non-negative")
        fds = [[_fileno(o) for o in lst] for lst in lists]
        for lst in fds:
            for fd in lst:
                if fd >= FD_SETSIZE:
                    raise ValueError("filedescriptor out of range in select()")
        sets = (_POLLIN_SET, _POLLOUT_SET, _POLLEX_SET)
        deadline = _deadline(timeout)
        while True:
            hits: list[set[int]] = [set(), set(), set()]
            real_in: list[list[Any]] = [[], [], []]
            for i, lst in enumerate(fds):
                for obj, fd in zip(lists[i], lst, strict=True):
                    src = ctx.source(fd)
                    if src is None:
                        real_in[i].append(obj)
                    elif ctx.ready(src, sets[i]) & sets[i]:
                        hits[i].add(fd)
            wait = 0.0 if any(hits) else _left(deadline)
            got = ctx.real_select(real_in[0], real_in[1], real_in[2], wait)
            for i in range(3):
                hits[i].update(_fileno(o) for o in got[i])
            if any(hits) or (deadline is not None and time.monotonic() >= deadline):
                out = tuple(
                    [o for o, fd in zip(lists[i], fds[i], strict=True) if fd in hits[i]]
                    for i in range(3)
                )
                ctx.trace("sys.select", nfds=sum(map(len, fds)), ret=sum(map(len, out)))
                return out

    return {
        "select": m_select,
        # SelectSelector._select: a partial does not bind as a method (a function would)
        "select_method": functools.partial(m_select),
        "poll": MockPoll,
        "epoll": MockEpoll,
    }


def _ushort(mask: Any) -> int:
    """CPython's ``unsigned short`` converter of ``poll`` event masks."""
    if not isinstance(mask, int):
        raise TypeError("an integer is required")
    if mask < 0:
        raise ValueError("value must be positive")
    if mask > 0xFFFF:
        raise OverflowError("Python int too large for C unsigned short")
    return int(mask)


# (circular: redirect.py builds on this module; the names are read at call time only)
from . import redirect as _redirect  # noqa: E402
