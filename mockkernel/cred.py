"""Credentials as the permission checks read them (``include/linux/cred.h``,
``fs/namei.c`` ``generic_permission``, ``fs/inode.c`` ``inode_owner_or_capable``).

``Ids`` are the numbers of a task's ``struct cred``: its uids and gids (real,
effective, saved, filesystem), supplementary groups and effective capabilities.  The
caller's are :func:`current_ids`: the current task's, as its front-end knows them --
in-process, this Python process's own (``os.geteuid`` & co.; the capabilities of euid 0
are all of them, of any other none); a supervised process's, read from its
``/proc/<tid>/status`` when a check needs them (``Process.ids_hook``), so a child
that dropped to an unprivileged uid is judged as one.
"""

from __future__ import annotations

import os
import stat as _stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .fs import Inode
    from .process import TaskContext

__all__ = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_SYS_ADMIN",
    "Ids",
    "current_ids",
    "generic_permission",
    "host_ids",
    "inode_owner_or_capable",
    "status_ids",
]

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_SYS_ADMIN = 21
#: every capability Linux 7.2 knows (CAP_LAST_CAP 40)
CAP_FULL = (1 << 41) - 1
MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4


@dataclass(frozen=True)
class Ids:
    """The numbers of a ``struct cred``."""

    uid: int
    euid: int
    fsuid: int
    gid: int
    egid: int
    fsgid: int
    groups: frozenset[int]
    cap_effective: int

    def capable(self, cap: int) -> bool:
        """``capable(cap)``: the effective set holds it."""
        return bool(self.cap_effective >> cap & 1)

    def in_group_p(self, gid: int) -> bool:
        """``in_group_p``: the filesystem gid or a supplementary group."""
        return gid == self.fsgid or gid in self.groups


def host_ids() -> Ids:
    """This Python process's credentials (the in-process front-end's caller)."""
    uid, euid, gid, egid = os.getuid(), os.geteuid(), os.getgid(), os.getegid()
    caps = CAP_FULL if euid == 0 else 0
    return Ids(uid, euid, euid, gid, egid, egid, frozenset(os.getgroups()), caps)


def _field(data: bytes, key: bytes) -> list[bytes]:
    at = data.find(b"\n" + key + b":")
    if at < 0:
        return []
    start = at + len(key) + 2
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)].split()


def status_ids(data: bytes) -> Ids:
    """The credentials a ``/proc/<tid>/status`` shows (``Uid:``/``Gid:`` are real,
    effective, saved and filesystem ids; ``Groups:``; ``CapEff:`` in hex)."""
    uids = [int(v) for v in _field(data, b"Uid")] or [0, 0, 0, 0]
    gids = [int(v) for v in _field(data, b"Gid")] or [0, 0, 0, 0]
    groups = frozenset(int(v) for v in _field(data, b"Groups"))
    caps = int((_field(data, b"CapEff") or [b"0"])[0], 16)
    return Ids(uids[0], uids[1], uids[3], gids[0], gids[1], gids[3], groups, caps)


def current_ids(kernel: TaskContext) -> Ids:
    """The current task's credentials (``current_cred()``)."""
    hook = kernel.current.ids_hook
    return host_ids() if hook is None else hook()


def generic_permission(ids: Ids, inode: Inode, mask: int) -> bool:
    """``generic_permission``: may ``ids`` access ``inode`` for ``mask`` (``MAY_READ``,
    ``MAY_WRITE``, ``MAY_EXEC`` = ``R_OK``, ``W_OK``, ``X_OK``)?  The owner's, the
    group's or the others' bits, then ``CAP_DAC_OVERRIDE`` (anything but executing a
    file no one may execute) and ``CAP_DAC_READ_SEARCH`` (reading; searching a
    directory)."""
    mode = inode.mode
    if ids.fsuid == inode.uid:
        bits = mode >> 6 & 7
    elif ids.in_group_p(inode.gid):
        bits = mode >> 3 & 7
    else:
        bits = mode & 7
    if mask & ~bits & 7 == 0:
        return True
    is_dir = _stat.S_ISDIR(mode)
    if ids.capable(CAP_DAC_OVERRIDE) and (is_dir or not mask & MAY_EXEC or mode & 0o111):
        return True
    read_search = mask == MAY_READ or (is_dir and not mask & MAY_WRITE)
    return read_search and ids.capable(CAP_DAC_READ_SEARCH)


def inode_owner_or_capable(ids: Ids, inode: Inode) -> bool:
    """``inode_owner_or_capable``: the filesystem uid owns it, or ``CAP_FOWNER``."""
    return ids.fsuid == inode.uid or ids.capable(CAP_FOWNER)
