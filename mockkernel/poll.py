"""``poll``: what a file says is ready (``vfs_poll``, ``include/uapi/asm-generic/poll.h``).

A driver's ``FileOperations.poll(file)`` returns the ``EPOLL*`` bits that are ready
now; a file without one is always readable and writable (``DEFAULT_POLLMASK``).
``vfs_poll`` keeps the bits the caller asked for plus ``EPOLLERR``/``EPOLLHUP``, which
are always reported.  The waiting (``select``, ``poll``, ``epoll``) is in
:mod:`mockkernel.userspace.poll`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .fs import File

__all__ = [
    "DEFAULT_POLLMASK",
    "EPOLLERR",
    "EPOLLHUP",
    "EPOLLIN",
    "EPOLLNVAL",
    "EPOLLOUT",
    "EPOLLPRI",
    "EPOLLRDBAND",
    "EPOLLRDHUP",
    "EPOLLRDNORM",
    "EPOLLWRBAND",
    "EPOLLWRNORM",
    "vfs_poll",
]

EPOLLIN = 0x001
EPOLLPRI = 0x002
EPOLLOUT = 0x004
EPOLLERR = 0x008
EPOLLHUP = 0x010
EPOLLNVAL = 0x020
EPOLLRDNORM = 0x040
EPOLLRDBAND = 0x080
EPOLLWRNORM = 0x100
EPOLLWRBAND = 0x200
EPOLLRDHUP = 0x2000

#: ``DEFAULT_POLLMASK``: what a file without ``->poll`` reports
DEFAULT_POLLMASK = EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM


def vfs_poll(file: File, events: int) -> int:
    """The ready bits of ``file`` among ``events`` (plus ``EPOLLERR``/``EPOLLHUP``)."""
    op = file.f_op.poll
    mask = DEFAULT_POLLMASK if op is None else op(file)
    return mask & (events | EPOLLERR | EPOLLHUP)
