"""``getdents64(2)`` (``fs/readdir.c``): a directory's entries as ``struct
linux_dirent64`` records, produced by the file's ``iterate`` op.

Each record is ``d_ino`` (u64), ``d_off`` (s64: the position of the *next* entry, what
``lseek``/``seekdir`` take), ``d_reclen`` (u16), ``d_type`` (u8) and the NUL-terminated
name, padded to a multiple of 8 bytes.  A listing resumes at the file's ``f_pos``.
"""

from __future__ import annotations

import struct
from errno import EINVAL, ENOTDIR
from typing import TYPE_CHECKING

from ..errors import kerr
from ..fs import DirContext

if TYPE_CHECKING:
    from ..process import Process

__all__ = ["DIRENT64_HEAD", "parse_dirents64", "sys_getdents64"]

#: ``struct linux_dirent64`` up to ``d_name``: d_ino, d_off, d_reclen, d_type
DIRENT64_HEAD = struct.Struct("<QqHB")


def sys_getdents64(proc: Process, fd: int, count: int) -> bytes:
    """``getdents64(fd, buf, count)``: as many whole records as fit in ``count`` bytes
    (``b""`` at the end of the directory).

    ``EBADF`` for a bad or ``O_PATH`` fd; ``ENOTDIR`` when the file has no ``iterate``
    op; ``EINVAL`` when not even the next entry fits in ``count``.
    """
    file = proc.fdget(fd)
    iterate = file.f_op.iterate
    if iterate is None:
        raise kerr(ENOTDIR)
    out = bytearray()
    last = -1  # where the previous record starts: its d_off is patched to the next pos
    error = 0
    head = DIRENT64_HEAD

    def filldir64(ctx: DirContext, name: str, ino: int, d_type: int) -> bool:
        nonlocal last, error
        raw = name.encode("utf-8", "surrogateescape")
        reclen = (head.size + len(raw) + 1 + 7) & ~7
        if len(out) + reclen > count:
            error = EINVAL
            return False
        if last >= 0:
            struct.pack_into("<q", out, last + 8, ctx.pos)
        last = len(out)
        out.extend(head.pack(ino, 0, reclen, d_type))
        out.extend(raw)
        out.extend(bytes(reclen - head.size - len(raw)))
        return True

    ctx = DirContext(filldir64, file.f_pos)
    iterate(file, ctx)
    file.f_pos = ctx.pos
    if last >= 0:
        struct.pack_into("<q", out, last + 8, ctx.pos)
        return bytes(out)
    if error:
        raise kerr(error)
    return b""


def parse_dirents64(data: bytes) -> list[tuple[int, int, int, str]]:
    """``(d_ino, d_off, d_type, name)`` of each record in a ``getdents64`` result."""
    out = []
    pos = 0
    while pos < len(data):
        ino, off, reclen, d_type = DIRENT64_HEAD.unpack_from(data, pos)
        raw = data[pos + DIRENT64_HEAD.size : pos + reclen]
        name = raw[: raw.index(0)].decode("utf-8", "surrogateescape")
        out.append((ino, off, d_type, name))
        pos += reclen
    return out
