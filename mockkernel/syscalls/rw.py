"""``read``/``write`` and friends: ``pread``/``pwrite``, ``readv``/``writev`` (and their
``p*v2`` forms), ``lseek``, ``fsync``, ``ftruncate`` (``fs/read_write.c``, ``fs/open.c``).

Data travels as bytes: a front-end copies it to or from the caller's buffers (the
in-process redirection from Python buffers, a supervisor from the tracee's memory).
"""

from __future__ import annotations

import stat as _stat
from errno import EBADF, EINVAL, EOPNOTSUPP, ESPIPE
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE
from ..uaccess import UserBuffer

if TYPE_CHECKING:
    from ..process import Process

__all__ = [
    "sys_fsync",
    "sys_ftruncate",
    "sys_lseek",
    "sys_pread",
    "sys_pwrite",
    "sys_read",
    "sys_readv",
    "sys_write",
    "sys_writev",
]

RWF_HIPRI = 0x1  # the only preadv2/pwritev2 flag a file without ->read_iter accepts


def sys_read(proc: Process, fd: int, count: int | UserBuffer) -> bytes:
    """``read`` of ``count`` bytes; a :class:`~mockkernel.uaccess.UserBuffer` is the
    caller's buffer, written here (``vfs_read``: a fault leaves the position)."""
    if isinstance(count, int):
        return proc.fdget(fd).vfs_read(count, None)
    return proc.fdget(fd).vfs_read(len(count), None, count)


def sys_pread(proc: Process, fd: int, count: int | UserBuffer, pos: int) -> bytes:
    if pos < 0:
        raise kerr(EINVAL)
    if isinstance(count, int):
        return proc.fdget(fd).vfs_read(count, pos)
    return proc.fdget(fd).vfs_read(len(count), pos, count)


def sys_write(proc: Process, fd: int, data: bytes | UserBuffer) -> int:
    """``write``; ``data`` may still be in the caller's memory (read by ``vfs_write``
    after the file's checks, as Linux's ``->write`` reads its user pointer)."""
    return proc.fdget(fd).vfs_write(data, None)


def sys_pwrite(proc: Process, fd: int, data: bytes | UserBuffer, pos: int) -> int:
    if pos < 0:
        raise kerr(EINVAL)
    return proc.fdget(fd).vfs_write(data, pos)


def sys_readv(
    proc: Process, fd: int, total: int | UserBuffer, pos: int | None, flags: int = 0
) -> bytes:
    """``readv``/``preadv2`` of ``total`` bytes: ``vfs_readv``'s checks, then one read
    (a :class:`~mockkernel.uaccess.UserBuffer`: the caller's iovec array, read after
    the file's mode checks, as ``import_iovec``, and the bytes scattered over it).

    A file without ``->read`` fails with ``EINVAL`` even for an empty vector
    (``FMODE_CAN_READ``); ``RWF_*`` flags other than ``RWF_HIPRI`` are
    ``EOPNOTSUPP`` for a file without ``->read_iter`` (every mock file).
    """
    if pos is not None and pos < 0:
        raise kerr(EINVAL)
    file = proc.fdget(fd)
    if pos is not None and not file.f_mode & FMODE_PREAD:
        raise kerr(ESPIPE)
    if not file.f_mode & FMODE_READ:
        raise kerr(EBADF)
    if file.f_op.read is None:
        raise kerr(EINVAL)
    to = None
    if not isinstance(total, int):
        to, total = total, len(total)  # import_iovec: EINVAL, EFAULT
    if total == 0:
        return b""
    if flags & ~RWF_HIPRI:
        raise kerr(EOPNOTSUPP)
    return file.vfs_read(total, pos, to)


def sys_writev(
    proc: Process, fd: int, data: bytes | UserBuffer, pos: int | None, flags: int = 0
) -> int:
    """``writev``/``pwritev2`` of the gathered ``data`` (``vfs_writev``'s checks); a
    :class:`~mockkernel.uaccess.UserBuffer`'s iovec array is read after the file's
    mode checks (``import_iovec``), its bytes by ``vfs_write``."""
    if pos is not None and pos < 0:
        raise kerr(EINVAL)
    file = proc.fdget(fd)
    if pos is not None and not file.f_mode & FMODE_PWRITE:
        raise kerr(ESPIPE)
    if not file.f_mode & FMODE_WRITE:
        raise kerr(EBADF)
    if file.f_op.write is None:
        raise kerr(EINVAL)
    if not len(data):  # (a UserBuffer's iovec array is read here)
        return 0
    if flags & ~RWF_HIPRI:
        raise kerr(EOPNOTSUPP)
    return file.vfs_write(data, pos)


def sys_fsync(proc: Process, fd: int, datasync: bool = False) -> None:
    """``fsync``/``fdatasync``: ``EINVAL`` for a file without ``->fsync``."""
    file = proc.fdget(fd)
    op = file.f_op.fsync
    if op is None:
        raise kerr(EINVAL)
    op(file, datasync)


def sys_ftruncate(proc: Process, fd: int, length: int) -> None:
    """``ftruncate``: ``EINVAL`` unless a regular file open for writing.

    No mock file has a truncatable inode (device nodes, dma-bufs and pseudo
    files are not regular; sysfs/debugfs files open read-only), so that is
    every mock fd.
    """
    if length < 0:
        raise kerr(EINVAL)
    file = proc.fdget(fd)
    if not _stat.S_ISREG(file.inode.mode) or not file.f_mode & FMODE_WRITE:
        raise kerr(EINVAL)
    raise kerr(EINVAL)


def sys_lseek(proc: Process, fd: int, offset: int, whence: int) -> int:
    return proc.fdget(fd).vfs_llseek(offset, whence)
