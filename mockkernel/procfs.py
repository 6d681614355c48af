"""procfs for mock processes: ``/proc/<pid>/fd/N``, ``/proc/<pid>/fdinfo/N``,
``/proc/<pid>/maps`` and the directories that list them (``fs/proc/fd.c``,
``fs/proc/task_mmu.c``), owned by the VFS (``Vfs.procfs``).

``<pid>`` is any process of the kernel (``kernel.processes``); ``self`` and
``thread-self`` are the *current* task (``kernel.current``, per thread), so a syscall
made for a process (``Process.sys_openat``) sees that process's files.

A process whose pid is a real one (this Python process; one run under a supervisor:
``Process.real_pid``) has a real ``/proc/<pid>``: only its mock fds and its mock
mappings are answered here, everything else (``/proc/<pid>/fd/`` listing its
placeholders, a real fd's link) stays the real OS's.  A simulated process
(``kernel.spawn()``) has no real counterpart: its ``/proc/<pid>``, ``fd/`` and
``fdinfo/`` directories are made here, and a number it has not open is ``ENOENT``.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from errno import EINVAL, ENOENT, ENOTDIR, ERANGE
from typing import TYPE_CHECKING, NoReturn

from .errors import kerr
from .fs import FMODE_READ, FMODE_WRITE
from .mm import KernelMaps, proc_maps
from .realfd import REAL
from .uaccess import LOCAL

if TYPE_CHECKING:
    from .fs import File
    from .process import Process
    from .vfs import Node, Vfs

__all__ = ["ProcFs", "fdinfo"]

#: what ``kstrtouint`` with base 0 takes: hex after 0x, octal after 0, else decimal
_UINT = re.compile(r"0[xX]([0-9a-fA-F]+)|0[0-7]*|[1-9][0-9]*")
_PID_PATH = re.compile(r"^/proc/(self|thread-self|\d+)(?:/(.*))?$")


def _kstrtouint(data: bytes) -> int:
    """``kstrtouint_from_user(buf, count, 0, &n)``: one unsigned int, base prefix allowed,
    one trailing newline; ``EINVAL`` otherwise, ``ERANGE`` past 32 bits."""
    text = data.decode("ascii", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    if text.startswith("+"):
        text = text[1:]
    m = _UINT.fullmatch(text)
    if m is None:
        raise kerr(EINVAL)
    if m.group(1) is not None:
        n = int(m.group(1), 16)
    elif text.startswith("0"):
        n = int(text, 8)
    else:
        n = int(text)
    if n > 0xFFFFFFFF:
        raise kerr(ERANGE)
    return n


def _fail_nth_thread(who: str, proc: Process, parts: list[str], tid: int | None) -> int | None:
    """The thread whose ``fail-nth`` the path names (``self/fail-nth``: the leader, the
    main thread here; ``thread-self/fail-nth`` and ``task/<tid>/fail-nth``: that thread,
    the calling one's tid or the leader's), or None when it names none.  ``tid``: the
    caller's thread when a front-end serves another real process (the supervisor),
    whose threads are keyed by their tids."""
    if tid is not None:
        if parts == ["fail-nth"]:
            return tid if who == "thread-self" else proc.pid
        named = parts[1] if len(parts) == 3 and parts[0] == "task" else ""
        if parts[2:] == ["fail-nth"] and named.isdigit():
            return int(named) if int(named) in (tid, proc.pid) else None
        return None
    if parts == ["fail-nth"]:
        if who == "thread-self":
            return threading.get_ident()
        main = threading.main_thread().ident
        return main if main is not None else threading.get_ident()
    if len(parts) == 3 and parts[0] == "task" and parts[2] == "fail-nth" and parts[1].isdigit():
        tid = int(parts[1])
        if tid == threading.get_native_id():
            return threading.get_ident()
        if tid == proc.pid:
            main = threading.main_thread().ident
            return main if main is not None else threading.get_ident()
    return None


def fdinfo(proc: Process, fd: int) -> str:
    """``/proc/<pid>/fdinfo/<fd>``.

    Like ``seq_show`` in ``fs/proc/fd.c`` it holds a reference on the file while it
    prints, which ``show_fdinfo`` ops see (dma-buf's ``count:`` is ``file_count - 1``:
    1 for a buffer with one fd, as on real Linux).
    """
    file = proc.files[fd].get()
    try:
        flags = file.f_flags | (os.O_CLOEXEC if proc.fdt.get_cloexec(fd) else 0)
        out = f"pos:\t{file.f_pos}\nflags:\t0{flags:o}\nmnt_id:\t15\nino:\t{file.inode.ino}\n"
        show = file.f_op.show_fdinfo
        if show is not None:
            out += show(file)
        return out
    finally:
        file.put()


class ProcFs:
    """The mock part of ``/proc``: what :meth:`lookup` answers, ``None`` being "real"."""

    def __init__(self, vfs: Vfs) -> None:
        self.vfs = vfs
        #: each process's ``maps`` node, kept while the process lives: its inode (times
        #: set by ``utimensat``) stays, as the dentry's does on Linux
        self._maps: weakref.WeakKeyDictionary[Process, Node] = weakref.WeakKeyDictionary()

    def task(self, who: str) -> Process | None:
        """The mock process ``self``/``thread-self``/``<pid>`` names, if any."""
        kernel = self.vfs.kernel
        if not who.isdigit():
            return kernel.current
        pid = int(who)
        for proc in kernel.processes:
            if proc.pid == pid and not proc.exited:
                return proc
        return None

    def lookup(self, path: str, follow: bool) -> Node | None:
        """The node at ``path`` (under ``/proc/``), ``None`` for the real ``/proc``."""
        m = _PID_PATH.match(path)
        if m is None:
            return None
        proc = self.task(m.group(1))
        if proc is None:
            return None
        rest = (m.group(2) or "").rstrip("/")
        slash = path.endswith("/")
        parts = rest.split("/") if rest else []
        if parts == ["maps"]:
            if slash:
                raise kerr(ENOTDIR)
            return self.maps(proc)
        if len(parts) == 2 and parts[0] in ("fd", "fdinfo") and parts[1].isdigit():
            return self.fd_entry(proc, parts[0], int(parts[1]), follow, slash)
        ident = _fail_nth_thread(m.group(1), proc, parts, self.vfs.kernel.current_tid)
        if ident is not None:
            if slash:
                raise kerr(ENOTDIR)
            return self.fail_nth(proc, ident)
        if proc.real_pid or len(parts) > 1:
            return None if proc.real_pid else self.missing()
        return self.task_dir(proc, parts[0] if parts else None)

    @staticmethod
    def missing() -> NoReturn:
        """What a simulated process's ``/proc/<pid>`` says for anything it lacks."""
        raise kerr(ENOENT)

    def fd_entry(self, proc: Process, kind: str, fd: int, follow: bool, slash: bool) -> Node | None:
        """``fd/N`` (a magic link: followed, the open file itself) or ``fdinfo/N``."""
        from .vfs import Attr, Symlink, _FdTarget

        file = proc.files.get(fd)
        if file is None:
            return None if proc.real_pid else self.missing()
        if slash:
            raise kerr(ENOTDIR)  # neither a mock file nor an fdinfo file is a directory
        if kind == "fdinfo":
            return Attr(file.inode.ino, lambda: fdinfo(proc, fd), 0o444, 0)
        if follow:
            return _FdTarget(file)
        # proc_fd_link: r-x for a readable file, -wx for a writable one
        perm = (0o500 if file.f_mode & FMODE_READ else 0) | (
            0o300 if file.f_mode & FMODE_WRITE else 0
        )
        return Symlink(file.inode.ino, file.link_name, perm, size=64)

    def fail_nth(self, proc: Process, ident: int) -> Node:
        """``fail-nth`` of one task (``proc_fail_nth_operations``, mode 0644, the task's
        own): write N to fail its Nth fault point, read what is left of the count."""
        from .fault_inject import FaultInject
        from .vfs import BinAttr

        faults = self.vfs.kernel.subsys(FaultInject)

        def read(file: File, pos: int, count: int) -> bytes:
            return f"{faults.remaining(proc, ident)}\n".encode()[pos : pos + count]

        def write(file: File, pos: int, data: bytes) -> int:
            faults.arm(proc, _kstrtouint(data), ident)
            return len(data)

        node = BinAttr(self.vfs.kernel.new_id(), 0o644, 0, read=read, write=write)
        node.task_owned = True
        return node

    def maps(self, proc: Process) -> Node:
        """``/proc/<pid>/maps``: the real text (none for a simulated process), with each
        mapping of a mock file shown as one line with its own name, inode and offset."""
        from .vfs import Attr

        node = self._maps.get(proc)
        if node is not None:
            return node
        real_path = f"/proc/{proc.pid}/maps" if proc.real_pid else None
        # this kernel's own memory (KernelMaps) lives in this Python process: only its
        # maps hide it
        kmaps = self.vfs.kernel.subsys(KernelMaps) if proc.mm is LOCAL else None

        def show() -> str:
            real = ""
            if real_path is not None:
                with REAL.builtin_open(real_path, "rb") as f:
                    real = f.read().decode("utf-8", "replace")
            hidden = () if kmaps is None else kmaps.ranges()
            return proc_maps(real, list(proc.mappings.values()), hidden)

        ino = REAL.stat(real_path).st_ino if real_path is not None else proc.pid
        node = self._maps[proc] = Attr(ino, show, 0o444, 0)
        return node

    def task_dir(self, proc: Process, name: str | None) -> Node | None:
        """``/proc/<pid>``, ``fd/`` and ``fdinfo/`` of a simulated process, made afresh;
        ``fd/`` and ``fdinfo/`` are filled when first listed (an open directory fd of
        its own shows up in it, as on Linux)."""
        from .vfs import Dir

        kernel = self.vfs.kernel
        d = Dir(kernel.new_id(), owned=True)
        if name is None:
            d.entries["fd"] = self.task_dir(proc, "fd")  # type: ignore[assignment]
            d.entries["fdinfo"] = self.task_dir(proc, "fdinfo")  # type: ignore[assignment]
            d.entries["maps"] = self.maps(proc)
            return d
        if name not in ("fd", "fdinfo"):
            self.missing()

        def fill() -> None:
            for fd in sorted(proc.files):
                node = self.fd_entry(proc, name, fd, False, False)
                if node is not None:
                    d.entries[str(fd)] = node

        d.populate = fill
        return d
