"""The syscall layer: the one implementation of every syscall on a mock fd or mock path.

Each function takes the calling :class:`~mockkernel.process.Process` and the plain
arguments Linux takes (fd numbers, ``dirfd`` + path, ``AT_*`` flags, a user address for
``ioctl``) and raises ``OSError`` with the errno Linux gives.  ``Process.sys_<name>``
is the public face of each (traced); the front-ends call those: the in-process
redirection (``mockkernel.userspace``) and a supervisor of other processes.

A path-based syscall whose path is not the mock's raises
:class:`~mockkernel.errors.NotMine`: the front-end then makes the real call.

By family, as the kernel's files:

* :mod:`.fd` -- ``close``, ``dup``/``dup2``/``dup3``, ``fcntl`` (record and OFD locks,
  leases, owner, hints), ``flock`` (``fs/file.c``, ``fs/fcntl.c``, ``fs/locks.c``)
* :mod:`.attr` -- ``fchmod``/``fchmodat2``, ``fchown``/``fchownat``, ``utimensat``,
  ``truncate``, ``fallocate``, ``fstatfs`` (``fs/open.c``, ``fs/utimes.c``, ``fs/statfs.c``)
* :mod:`.xattr` -- ``setxattr``/``getxattr``/``listxattr``/``removexattr`` by path or
  fd (``fs/xattr.c``)
* :mod:`.notify` -- ``inotify_add_watch``/``inotify_rm_watch`` (``fs/notify/inotify``;
  the events are :mod:`mockkernel.fsnotify`'s)
* :mod:`.rw` -- ``read``/``write``/``pread``/``pwrite``/``readv``/``writev``, ``lseek``,
  ``fsync``, ``ftruncate`` (``fs/read_write.c``)
* :mod:`.ioctl` -- ``ioctl``: ``do_vfs_ioctl``, then the driver (``fs/ioctl.c``)
* :mod:`.namei` -- ``openat`` and path resolution with a ``dirfd`` (``fs/namei.c``, ``fs/open.c``)
* :mod:`.stat` -- ``fstat``, ``newfstatat``, ``statx``, ``faccessat``, ``readlinkat``
  (``fs/stat.c``)
* :mod:`.readdir` -- ``getdents64`` over a directory's ``iterate`` op (``fs/readdir.c``)
* :mod:`.mmap` -- ``mmap``, ``madvise`` and ``msync`` of a mock mapping (``mm/mmap.c``,
  ``mm/madvise.c``, ``mm/msync.c``)
"""

from __future__ import annotations

__all__ = [
    "AT_EACCESS",
    "AT_EMPTY_PATH",
    "AT_FDCWD",
    "AT_NO_AUTOMOUNT",
    "AT_STATX_SYNC_TYPE",
    "AT_SYMLINK_FOLLOW",
    "AT_SYMLINK_NOFOLLOW",
]

#: ``dirfd`` meaning "the current directory" (``linux/fcntl.h``)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000
