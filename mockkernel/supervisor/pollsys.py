"""``poll``/``ppoll`` of a supervised process over mock and real fds together.

With no mock fd in the set the real call runs (``CONTINUE``).  With some, the
supervisor answers: a mock fd's readiness is its file's ``->poll`` (``vfs_poll``);
the real fds are fetched from the child (``pidfd_getfd``: the same open files) and
waited on here, in slices of :data:`SLICE` seconds between two looks at the mock
files -- the scheme of the in-process ``userspace/poll.py`` (the mock kernel has no
wait queues to wake a real ``poll``).  A worker blocked here is handed off by the
pool's watchdog, so other calls of the tree are still served.
"""

from __future__ import annotations

import select
import struct
import time
from errno import EINVAL
from typing import TYPE_CHECKING

from ..errors import kerr
from ..poll import EPOLLERR, EPOLLHUP, EPOLLNVAL, vfs_poll
from ..realfd import REAL
from ..uaccess import copy_from_user, copy_to_user

if TYPE_CHECKING:
    from .handlers import Call, Result

__all__ = ["SLICE", "do_poll", "ppoll_timeout"]

SLICE = 0.005
_POLLFD = struct.Struct("<ihh")


def ppoll_timeout(addr: int) -> float | None:
    """The ``struct timespec`` of ``ppoll`` in seconds (``None``: no timeout)."""
    if addr == 0:
        return None
    sec: int
    nsec: int
    sec, nsec = struct.unpack("<qq", copy_from_user(addr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise kerr(EINVAL)
    return float(sec) + nsec / 1e9


def do_poll(c: Call, addr: int, nfds: int, timeout: float | None) -> Result:
    from .handlers import CONTINUE

    if nfds > c.proc.fdt.rlimit:
        raise kerr(EINVAL)
    raw = copy_from_user(addr, _POLLFD.size * nfds) if nfds else b""
    entries = [_POLLFD.unpack_from(raw, i * _POLLFD.size) for i in range(nfds)]
    files = c.proc.files
    if not any(fd in files for fd, _ev, _rev in entries):
        return CONTINUE
    local: dict[int, int] = {}  # the child's real fd -> our dup of it
    try:
        for fd, _ev, _rev in entries:
            if fd >= 0 and fd not in files and fd not in local:
                try:
                    local[fd] = c.proc.fget_real(fd)
                except OSError:
                    local[fd] = -1  # not open: POLLNVAL
        revents = _wait(c, entries, local, timeout)
    finally:
        for lfd in local.values():
            if lfd >= 0:
                REAL.close(lfd)
    out = b"".join(_POLLFD.pack(fd, ev, r) for (fd, ev, _), r in zip(entries, revents, strict=True))
    if out:
        copy_to_user(addr, out)
    return sum(1 for r in revents if r)


def _wait(
    c: Call, entries: list[tuple[int, int, int]], local: dict[int, int], timeout: float | None
) -> list[int]:
    """The ``revents`` of each entry once one is ready or the time is up."""
    poller = select.poll()
    for fd, ev, _rev in entries:
        lfd = local.get(fd, -1)
        if lfd >= 0:
            poller.register(lfd, ev & 0xFFFF)
    deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
    while True:
        real = {fd: mask for fd, mask in poller.poll(0)}
        revents = _revents(c, entries, local, real)
        left = None if deadline is None else deadline - time.monotonic()
        if any(revents) or (left is not None and left <= 0):
            return revents
        wait = SLICE if left is None else min(SLICE, left)
        if local:
            poller.poll(wait * 1000)
        else:
            time.sleep(wait)


def _revents(
    c: Call, entries: list[tuple[int, int, int]], local: dict[int, int], real: dict[int, int]
) -> list[int]:
    out = []
    files = c.proc.files
    for fd, ev, _rev in entries:
        if fd < 0:
            out.append(0)
        elif fd in files:
            out.append(vfs_poll(files[fd], ev & 0xFFFF) & 0xFFFF)
        elif local.get(fd, -1) < 0:
            out.append(EPOLLNVAL)
        else:
            out.append(real.get(local[fd], 0) & ((ev & 0xFFFF) | EPOLLERR | EPOLLHUP | EPOLLNVAL))
    return out
