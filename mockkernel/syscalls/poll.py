"""``poll(2)``'s per-fd rule (``do_pollfd`` in ``fs/select.c``), without the waiting.

The waiting belongs to the front-end, which also has real fds to wait on (the
in-process ``select``/``poll``/``epoll`` in :mod:`mockkernel.userspace.poll`; a
supervisor's own loop): it asks :func:`sys_poll` for one scan and waits between scans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..fs import File
from ..poll import EPOLLERR, EPOLLHUP, EPOLLNVAL, vfs_poll

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["do_pollfd", "pollmask", "sys_poll"]


def pollmask(src: File | Callable[[], int], events: int) -> int:
    """The ready bits among ``events`` (plus ``EPOLLERR``/``EPOLLHUP``, always reported)
    of a mock file, or of a real fd the kernel answers for (its poller)."""
    if isinstance(src, File):
        return vfs_poll(src, events)
    mask: int = src() & (events | EPOLLERR | EPOLLHUP)
    return mask


def do_pollfd(proc: Process, fd: int, events: int) -> int | None:
    """``do_pollfd``: the ``revents`` of one ``struct pollfd``; ``None`` for a real fd
    (the front-end asks the real OS).  A negative fd is ignored (0); a number open
    nowhere is ``POLLNVAL`` when the process's real table is known."""
    if fd < 0:
        return 0
    src: File | Callable[[], int] | None = proc.files.get(fd) or proc.fd_pollers.get(fd)
    if src is not None:
        return pollmask(src, events)
    if proc.fdt.knows_real_fds and not proc.fdt.is_real_fd(fd):
        return EPOLLNVAL
    return None


def sys_poll(proc: Process, fds: Sequence[tuple[int, int]]) -> list[int | None]:
    """One scan of ``poll(fds, n, 0)``: each ``(fd, events)``'s ``revents``, ``None``
    for the real fds among them."""
    return [do_pollfd(proc, fd, events) for fd, events in fds]
