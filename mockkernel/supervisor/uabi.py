"""The x86-64 user ABI the handlers speak: argument decoding, struct stat/statx/iovec."""

from __future__ import annotations

import os
import struct

from ..uaccess import copy_from_user

__all__ = ["i32", "iovecs", "s64", "stat_bytes", "statx_bytes"]

_STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")  # struct stat, 144 bytes
_STATX_HEAD = struct.Struct("<IIQIIIHxxQQQQ")  # up to stx_attributes_mask: 64 bytes
_STATX_TS = struct.Struct("<qI4x")
_STATX_DEV = struct.Struct("<IIII")
STATX_BASIC_STATS = 0x7FF
UIO_MAXIOV = 1024
MAX_RW_COUNT = 0x7FFFF000


def i32(v: int) -> int:
    """An ``int`` argument: the low 32 bits, signed (as the kernel reads it)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def u32(v: int) -> int:
    return v & 0xFFFFFFFF


def s64(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


def stat_bytes(st: os.stat_result) -> bytes:
    """``struct stat`` (x86-64) for ``st``."""
    return _STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0,
        st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
        *divmod(st.st_atime_ns, 10**9), *divmod(st.st_mtime_ns, 10**9),
        *divmod(st.st_ctime_ns, 10**9),
    )  # fmt: skip


def statx_bytes(st: os.stat_result) -> bytes:
    """``struct statx`` (256 bytes) for ``st``: the basic stats, no birth time."""
    head = _STATX_HEAD.pack(
        STATX_BASIC_STATS, st.st_blksize, 0, st.st_nlink, st.st_uid, st.st_gid,
        st.st_mode, st.st_ino, st.st_size, st.st_blocks, 0,
    )  # fmt: skip
    times = (st.st_atime_ns, 0, st.st_ctime_ns, st.st_mtime_ns)  # atime, btime, ctime, mtime
    ts = b"".join(_STATX_TS.pack(*divmod(t, 10**9)) for t in times)
    dev = _STATX_DEV.pack(
        os.major(st.st_rdev), os.minor(st.st_rdev), os.major(st.st_dev), os.minor(st.st_dev)
    )
    out = head + ts + dev
    return out + bytes(256 - len(out))


def iovecs(addr: int, cnt: int) -> list[tuple[int, int]]:
    """The ``struct iovec`` array at ``addr``: ``EINVAL`` past ``UIO_MAXIOV`` or a total
    past ``MAX_RW_COUNT``'s ssize_t, ``EFAULT`` for a bad array (``import_iovec``)."""
    from errno import EINVAL

    from ..errors import kerr

    if cnt < 0 or cnt > UIO_MAXIOV:
        raise kerr(EINVAL)
    if cnt == 0:
        return []
    raw = copy_from_user(addr, 16 * cnt)
    out = list(struct.iter_unpack("<QQ", raw))
    total = 0
    for _base, n in out:
        if n > 0x7FFFFFFFFFFFFFFF:
            raise kerr(EINVAL)
        total += n
        if total > 0x7FFFFFFFFFFFFFFF:
            raise kerr(EINVAL)
    return out
