"""The kernel context: one machine's ids, tracer, warnings, tasks and subsystems.

One ``Kernel`` is one machine.  Nothing lives at module level, so kernels are
independent and tests can boot as many as they like in parallel.  The kernel itself
is a thin context -- what every layer may reach:

* ``new_id()``, ``tracer`` (see :mod:`mockkernel.trace`), ``warn()``/``warnings``;
* ``topology``, ``uapi`` and ``uapi_profiles``: the machine booted, the uAPI profile it
  speaks and the profiles it knows;
* the tasks: ``processes``, ``init_process`` (the process that is *this* Python
  process: its mock fds are real fd numbers, held by placeholders), ``spawn()`` for
  more, and ``current`` (per thread) with ``running(proc)``;
* ``plugin_manager``: the plugins of this boot;
* ``subsys(Cls)``: the subsystems, each owning its state -- the VFS
  (:class:`~mockkernel.vfs.Vfs`), the live files (:class:`~mockkernel.fs.FileTable`),
  held locks (:class:`~mockkernel.locks.HeldLocks`), the placeholder fds
  (:class:`~mockkernel.realfd.Placeholders`), dma-buf (``DmaBufSubsystem``),
  PCI (:class:`~mockkernel.pci.core.PciCore`),
  net (:class:`~mockkernel.net.NetState`), RDMA (:class:`~mockkernel.rdma.device.IbCore`),
  the module loader (:class:`~mockkernel.lifecycle.ModuleLoader`).

Boot and the module loader live in :mod:`mockkernel.lifecycle` (``mockkernel.boot()``);
``shutdown()`` here tears the context down: tasks, then subsystems, each of which adds
its own lines to the leak report.  Layers below the kernel type against
:class:`~mockkernel.context.KernelContext` and never import this module.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from .context import Subsystem
from .errors import LeakError
from .fs import FileOperations, FileTable, format_opener
from .locks import HeldLocks
from .mm import KernelMaps
from .pci.core import BoundDriver, PciCore
from .process import Cred, Process, RealBackedFdTable, VirtualFdTable
from .profiles import UapiProfile, UapiProfiles
from .realfd import HeldFds, Placeholders
from .topology import Topology
from .trace import TracePoint, Tracer
from .uaccess import cpu_fault, restore_mm, set_cpu_fault, swap_mm
from .vfs import Vfs

if TYPE_CHECKING:
    import subprocess

    from .fs import File
    from .net import NetState
    from .pci import PciBus
    from .pci.fabric import Fabric
    from .userspace.redirect import Redirection

__all__ = ["Kernel", "Subsystem"]

trace_kernel_warn = TracePoint("kernel.warn", "message")
trace_kernel_shutdown = TracePoint("kernel.shutdown", "leaks")

_T = TypeVar("_T", bound=Subsystem)


class _Cpu(threading.local):
    """Per-CPU (per-thread) state of one kernel: the task it is running, if any, and the
    thread of that task (a supervised program's tid; ``None`` in-process)."""

    task: Process | None = None
    tid: int | None = None


class _Running:
    """``with kernel.running(proc, tid):`` -- a class rather than a generator: the
    supervisor enters one for every syscall it serves."""

    __slots__ = ("_cpu", "_proc", "_saved", "_tid")

    def __init__(self, cpu: _Cpu, proc: Process, tid: int | None) -> None:
        self._cpu, self._proc, self._tid = cpu, proc, tid

    def __enter__(self) -> Process:
        cpu, proc = self._cpu, self._proc
        self._saved = cpu.task, cpu.tid, swap_mm(proc.mm)
        cpu.task, cpu.tid = proc, self._tid
        return proc

    def __exit__(self, *exc: object) -> None:
        cpu = self._cpu
        cpu.task, cpu.tid, mm = self._saved
        restore_mm(mm)


def _move_to_end(
    table: dict[type[Subsystem], Subsystem], late: dict[type[Subsystem], Subsystem]
) -> None:
    """Put the subsystems made while a boot or its probes waited (``late``) after the
    boot's in ``table``: an eager boot would have made them after it (creation order is
    the reverse of shutdown order)."""
    for cls, sub in late.items():
        table.pop(cls, None)
        table[cls] = sub


class _ProbeIds:
    """``Kernel._ids`` while deferred probes run: their thread takes the ids set aside
    for them (:meth:`Kernel.defer_probes`), any other thread the kernel's own count."""

    __slots__ = ("_end", "_kernel")

    def __init__(self, kernel: Kernel, end: int) -> None:
        self._kernel = kernel
        self._end = end

    def __iter__(self) -> _ProbeIds:
        return self

    def __next__(self) -> int:
        kernel = self._kernel
        if kernel._probing != threading.get_ident():
            return next(kernel._ids_taken)
        n = next(kernel._probe_ids)
        if n == self._end:  # the set-aside ids are the count's own from here on
            kernel.warn(
                f"deferred probes took more ids than an eager boot's (id {n} is not theirs)"
            )
        return n


class _PendingIds:
    """``Kernel._ids`` while a boot is deferred: the first id asked for finishes the boot
    (which takes its ids first, as it would have) and is then taken from the real count."""

    __slots__ = ("_kernel",)

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    def __iter__(self) -> _PendingIds:
        return self

    def __next__(self) -> int:
        kernel = self._kernel
        if kernel._booting == threading.get_ident():  # the boot itself takes its ids
            return next(kernel._ids_taken)
        kernel.finish_start()
        return kernel.new_id()


class Kernel:
    """A booted mock kernel.  Use :func:`mockkernel.boot` to make one."""

    def __init__(
        self,
        topology: Topology,
        pm: pluggy.PluginManager,
        uapi_profiles: UapiProfiles | None = None,
    ) -> None:
        #: the uAPI profiles this kernel knows: the built-in ones and its plugins'
        self.uapi_profiles = (
            uapi_profiles if uapi_profiles is not None else UapiProfiles.from_plugins(pm)
        )
        #: the profile it speaks (``[kernel] uapi``); ``UnknownUapiProfile`` if none such
        self.uapi: UapiProfile = self.uapi_profiles.get(topology.kernel.uapi)
        self._ids: Iterator[int] = itertools.count(1)
        self.topology = topology
        self.tracer = Tracer()
        self.plugin_manager = pm
        self.warnings: list[str] = []
        #: the subsystems, in the order they were made (see :meth:`subsys`, :attr:`subsystems`)
        self._subsys: dict[type[Subsystem], Subsystem] = {}
        #: while a deferred boot waits (:meth:`defer_start`): the subsystems made so far
        #: (``_subsys`` is empty then, so the first :meth:`subsys` finishes the boot)
        self._early: dict[type[Subsystem], Subsystem] | None = None
        self._start: Callable[[Kernel], None] | None = None
        self._ids_taken: Iterator[int] = self._ids
        #: the thread running the deferred boot, while it runs; the others wait on the lock
        self._booting: int | None = None
        self._start_lock: threading.Lock | None = None
        #: deferred driver probes (:meth:`defer_probes`): what runs them, while they wait
        self._probes: Callable[[], None] | None = None
        #: while probes wait: every subsystem made (``_subsys`` shows the probe-independent
        #: ones), and those made since the boot (after the probes' in an eager boot)
        self._hidden: dict[type[Subsystem], Subsystem] | None = None
        self._late: dict[type[Subsystem], Subsystem] = {}
        #: the ids the probes take (reserved: an id taken meanwhile is an eager boot's)
        self._probe_ids: Iterator[int] = self._ids
        self._probe_ids_end = 0
        #: the thread running the deferred probes, while they run
        self._probing: int | None = None
        self._probe_lock = threading.Lock()
        #: how many ids the driver probes (and the boot hook) of this kernel's boot took,
        #: recorded by an eager :func:`~mockkernel.lifecycle.start_kernel`: what a later
        #: boot of the same topology reserves when it defers them
        self.probe_ids: int | None = None
        self.is_shut_down = False
        self._pids = itertools.count(1000)
        # made first, so shut down last: the kernel's real fds and mappings, then the
        # placeholders' real fds close at the very end
        held = self.subsys(HeldFds)
        self.subsys(KernelMaps)
        placeholders = self.subsys(Placeholders)
        self.subsys(Vfs)
        self.subsys(FileTable)
        self.processes: list[Process] = []
        self.init_process = Process(
            self,
            os.getpid(),
            RealBackedFdTable(topology.kernel.rlimit_nofile, placeholders.get, held),
            "init",
        )
        self.processes.append(self.init_process)
        self._cpu = _Cpu()
        self.installed_process: Process | None = None

    def new_id(self) -> int:
        return next(self._ids)

    # -- a deferred boot ---------------------------------------------------------------
    def defer_start(self, start: Callable[[Kernel], None]) -> None:
        """Run ``start`` (``start_kernel``) at this kernel's first use rather than now.

        The first use is whatever could see what a boot makes: any :meth:`subsys` call
        (every syscall, driver service and compatibility accessor goes through it),
        :attr:`subsystems`, :meth:`new_id` (a boot takes ids), a sink or capture turning
        tracing on (the boot runs first, untraced, as it would have), :meth:`leaks`.
        A kernel never used is shut down without ever having been brought up: nothing of
        that boot could have been seen.  ``boot(..., lazy=True)`` makes such a kernel;
        the pytest fixture does, for a topology that already booted in the session.
        """
        self._early, self._subsys = self._subsys, {}
        self._start = start
        self._ids_taken, self._ids = self._ids, _PendingIds(self)
        self._start_lock = threading.Lock()
        # (and the probes, if the boot defers them: tracing sees neither)
        self.tracer.before_enable = self.finish_probes

    @property
    def start_pending(self) -> bool:
        """Whether the boot is still deferred (:meth:`defer_start`) or running."""
        return self._early is not None

    def finish_start(self) -> None:
        """Run the deferred boot now, if it has not run (a no-op otherwise).

        One thread runs it; another that needs the kernel meanwhile waits for the end
        (while it runs, the subsystem table everyone else sees stays empty, so every
        lookup comes here).  The boot's own calls are served from its table."""
        lock = self._start_lock
        if lock is None or self._early is None or self._booting == threading.get_ident():
            return
        with lock:
            start, early = self._start, self._early
            if start is None or early is None:  # another thread finished it meanwhile
                return
            self._start = None
            self._booting = threading.get_ident()
            try:
                start(self)
            finally:
                self._early = None
                self._ids = self._ids_taken
                self.tracer.before_enable = None
                if self._probes is not None:  # (``_late`` waits for the probes)
                    self._hide_for_probes(early)
                else:
                    _move_to_end(early, self._late)
                    self._late = {}
                    self._subsys = early
                self._booting = None

    # -- deferred driver probes ----------------------------------------------------------
    def id_mark(self) -> int:
        """The id the next :meth:`new_id` gives (none is taken): the boot measures with it
        how many ids its probes take."""
        old = self._ids_taken
        n = next(old)
        self._ids_taken = itertools.count(n)
        if self._ids is old:
            self._ids = self._ids_taken
        return n

    def defer_probes(self, probes: Callable[[], None], ids: int) -> None:
        """Run ``probes`` (the boot's driver probes and boot hook) when something could
        first see what they make, rather than now; called by the boot itself.

        ``ids`` is how many ids they take (:attr:`probe_ids` of an eager boot of the
        same topology): those are set aside now, so every id (file, inode, dma-buf) the
        kernel gives meanwhile is the one an eager boot would have given.  Until they
        run, ``subsys()`` shows only the probe-independent subsystems
        (``Subsystem.probe_independent``: the VFS, the file and lock tables); asking for
        any other one runs them first, as do a lookup, listing or change of the file tree
        (``Vfs.before_walk``: ``/dev``, ``/sys``, ``/proc``), :attr:`subsystems`,
        :meth:`leaks`, tracing turned on (the probes run first, untraced, as at an eager
        boot) and :meth:`run`.  A kernel shut down before any of it never probes."""
        start = next(self._ids_taken)
        self._probe_ids = itertools.count(start)
        self._probe_ids_end = start + ids
        self._ids_taken = itertools.count(start + ids)
        self._probes = probes

    def _hide_for_probes(self, table: dict[type[Subsystem], Subsystem]) -> None:
        """The boot is over with its probes deferred: show the probe-independent part of
        ``table`` and make everything else wait for :meth:`finish_probes`."""
        self._hidden = table
        self._subsys = {c: s for c, s in table.items() if c.probe_independent or c.boot_independent}
        self.tracer.before_enable = self.finish_probes
        self.subsys(Vfs).before_walk = self.finish_probes

    @property
    def probes_pending(self) -> bool:
        """Whether deferred driver probes (:meth:`defer_probes`) wait or run."""
        return self._hidden is not None

    def finish_probes(self) -> None:
        """Run the deferred probes now, if they wait (a no-op otherwise).

        One thread runs them; another that needs the kernel meanwhile waits for the end.
        They run with no ``fail-nth`` count armed (an eager boot was over before any
        could be) and take the ids set aside for them."""
        if self._early is not None:  # (the boot first; a no-op on its own thread)
            self.finish_start()
        if self._hidden is None or self._probing == threading.get_ident():
            return
        with self._probe_lock:
            probes, hidden = self._probes, self._hidden
            if probes is None or hidden is None:  # another thread ran them meanwhile
                return
            self._probes = None
            self._probing = threading.get_ident()
            runtime, self._ids = self._ids, _ProbeIds(self, self._probe_ids_end)
            armed = cpu_fault()
            set_cpu_fault(None)
            try:
                probes()
            finally:
                set_cpu_fault(armed)
                _move_to_end(hidden, self._late)
                self._subsys, self._hidden, self._late = hidden, None, {}
                self._ids = runtime
                self.tracer.before_enable = None
                vfs = hidden.get(Vfs)
                if isinstance(vfs, Vfs):
                    vfs.before_walk = None
                self._probing = None

    def _subsys_while_probes_pending(self, cls: type[_T]) -> _T:
        """:meth:`subsys` of a subsystem not shown while probes wait: the probes' own
        thread is served from the whole table; a probe-independent one is made (after
        the probes' in the table, as an eager boot would order it); any other use runs
        the probes (or waits for them) first."""
        hidden = self._hidden
        if hidden is None:
            return self.subsys(cls)
        if self._probing == threading.get_ident():
            sub = hidden.get(cls)
            if sub is None:
                sub = hidden[cls] = cls(self)
            return sub  # type: ignore[return-value]
        if (cls.probe_independent or cls.boot_independent) and cls not in hidden:
            with self._probe_lock:
                if self._hidden is not None:
                    sub = self._late.get(cls)
                    if sub is None:
                        sub = self._late[cls] = cls(self)
                    self._subsys[cls] = sub
                    return sub  # type: ignore[return-value]
            return self.subsys(cls)
        self.finish_probes()
        return self.subsys(cls)

    def _subsys_while_pending(self, cls: type[_T]) -> _T:
        """:meth:`subsys` while the boot is deferred: the boot's own thread is served from
        the table it fills; any other use finishes the boot (or waits for it) first."""
        early = self._early
        if early is not None and cls.boot_independent:  # (nothing of the boot to see)
            got = early.get(cls)
            if got is None:
                got = early.setdefault(cls, cls(self))
                if self._booting != threading.get_ident():  # (after the boot's, once up)
                    self._late.setdefault(cls, got)
            return got  # type: ignore[return-value]
        if early is None or self._booting != threading.get_ident():
            self.finish_start()
            return self.subsys(cls)
        sub = early.get(cls)
        if sub is None:
            sub = early[cls] = cls(self)
        return sub  # type: ignore[return-value]

    @property
    def current(self) -> Process:
        """The task this thread (CPU) runs in this kernel: the one a :meth:`running` block
        made current, else the init process (this Python process)."""
        return self._cpu.task or self.init_process

    def subsys(self, cls: type[_T]) -> _T:
        """The kernel's one ``cls`` subsystem, made on first use as ``cls(kernel)``."""
        sub = self._subsys.get(cls)
        if sub is None:
            if self._early is not None:  # a deferred boot: its first use, or the boot
                return self._subsys_while_pending(cls)
            if self._hidden is not None:  # deferred probes: their first use, or them
                return self._subsys_while_probes_pending(cls)
            sub = self._subsys[cls] = cls(self)
        return sub  # type: ignore[return-value]

    @property
    def subsystems(self) -> dict[type[Subsystem], Subsystem]:
        """The subsystems, in the order they were made (a deferred boot runs first)."""
        early = self._early
        if early is not None:
            if self._booting == threading.get_ident():
                return early  # (the boot itself)
            self.finish_start()
        if self._hidden is not None:
            if self._probing == threading.get_ident():
                return self._hidden
            self.finish_probes()
        return self._subsys

    def __repr__(self) -> str:
        return f"<Kernel uapi={self.uapi} files={len(self.live_files)}>"

    # -- compatibility accessors --------------------------------------------------------------
    # Read-only views of what subsystems own, kept because drivers, tools and tests across
    # the tree use these names.  New code asks the subsystem: ``kernel.subsys(Vfs)``.

    @property
    def vfs(self) -> Vfs:
        """Compatibility accessor: the VFS subsystem (``subsys(Vfs)``)."""
        return self.subsys(Vfs)

    @property
    def pci(self) -> PciBus | None:
        """Compatibility accessor: the PCI bus (``subsys(PciCore).bus``); ``None`` before boot."""
        core = self.subsystems.get(PciCore)
        return core.bus if isinstance(core, PciCore) else None

    @property
    def fabric(self) -> Fabric:
        """Compatibility accessor: the PCIe fabric (``subsys(PciCore).fabric``)."""
        return self.subsys(PciCore).fabric

    @property
    def bound(self) -> dict[str, BoundDriver]:
        """Compatibility accessor: BDF -> bound driver (``subsys(PciCore).bound``)."""
        return self.subsys(PciCore).bound

    @property
    def net(self) -> NetState | None:
        """Compatibility accessor: the network state, or ``None`` while none was made."""
        from .net import NetState

        state = self.subsystems.get(NetState)
        return state if isinstance(state, NetState) else None

    @property
    def live_files(self) -> dict[int, File]:
        """Compatibility accessor: files not yet released (``subsys(FileTable).files``)."""
        return self.subsys(FileTable).files

    @property
    def held_locks(self) -> dict[int, str]:
        """Compatibility accessor: locks held now (``subsys(HeldLocks).held``)."""
        return self.subsys(HeldLocks).held

    def placeholder(self, label: str) -> int:
        """Compatibility accessor: ``subsys(Placeholders).get(label)``."""
        return self.subsys(Placeholders).get(label)

    def add_placeholder(self, label: str, fd: int, *companions: int) -> None:
        """Compatibility accessor: ``subsys(Placeholders).add(label, fd, *companions)``."""
        self.subsys(Placeholders).add(label, fd, *companions)

    def misc_register(self, name: str, fops: FileOperations, perm: int = 0o666) -> int:
        """``misc_register`` with a dynamic minor; returns rdev.  Drivers call
        :func:`mockkernel.chrdev.misc_register` (the driver API), which this forwards to."""
        from .chrdev import misc_register

        return misc_register(self, name, fops, mode=perm)

    def misc_deregister(self, name: str) -> None:
        """:func:`mockkernel.chrdev.misc_deregister`."""
        from .chrdev import misc_deregister

        misc_deregister(self, name)

    def warn(self, message: str) -> None:
        """``WARN()``: record a broken kernel rule; ``shutdown()`` reports it."""
        self.warnings.append(message)
        trace_kernel_warn(self.tracer, message)

    # -- processes ------------------------------------------------------------------------
    def spawn(self, name: str = "task") -> Process:
        """A further simulated process with its own (virtual) fd table."""
        proc = Process(
            self, next(self._pids), VirtualFdTable(self.topology.kernel.rlimit_nofile), name
        )
        self.processes.append(proc)
        return proc

    def running(self, proc: Process, tid: int | None = None) -> _Running:
        """Make ``proc`` the current task on this thread for a ``with`` block: drivers
        install fds into its table, and uaccess reaches its address space (``proc.mm``).
        ``tid`` names the thread of ``proc`` (a supervised program's), which syscall
        trace events carry."""
        return _Running(self._cpu, proc, tid)

    @property
    def current_tid(self) -> int | None:
        """The thread of the current task this CPU serves, when the front-end knows it."""
        return self._cpu.tid

    def run(self, args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run any program (a C binary, a script, ``python3``) and every process it makes
        as a supervised tree served by this kernel; ``subprocess.run``'s arguments
        (``stdin``/``input``/``stdout``/``stderr``/``capture_output``/``text``/``check``/
        ``timeout``/``env``/``cwd``).  See ``docs/supervisor.md``."""
        from .supervisor.run import run

        self.finish_probes()  # (a program may look at anything)
        return run(self, args, **kwargs)

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: Any) -> None:
        """Shut down; with the leak check unless the block raised (its error is the news:
        the leaks are then cleaned up without a second report).  A redirection of this
        kernel still installed (``kernel.install()`` without ``uninstall()``) is removed."""
        if self.installed_process is not None:
            from .userspace.redirect import Redirection

            active = Redirection.active
            if active is not None and active.kernel is self:
                active.uninstall()
        self.shutdown(check=t is None)

    # -- redirection ----------------------------------------------------------------------
    def install(self, **kwargs: Any) -> Redirection:
        """Route this process's syscalls to the kernel now; returns the installed
        :class:`~mockkernel.userspace.redirect.Redirection` (``uninstall()`` it, or use
        it as a context manager: ``with kernel.install():``).

        Keywords go to ``Redirection``: ``rebind`` (default ``"loaded"``: names bound in
        every loaded module, but the standard library's, mockkernel's own and those in
        ``skip``), ``skip`` (module names not to touch), ``modules`` (modules to rebind
        whatever the skip list says).
        """
        from .userspace.redirect import Redirection

        kwargs.setdefault("rebind", "loaded")
        redir = Redirection(self, **kwargs)
        redir.install()
        redir.preinstalled = True
        return redir

    @contextmanager
    def installed(self, **kwargs: Any) -> Iterator[Redirection]:
        """``with kernel.installed():`` -- the redirection for the block (see :meth:`install`)."""
        redir = self.install(**kwargs)
        redir.preinstalled = False
        try:
            yield redir
        finally:
            redir.uninstall()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """``with kernel.paused():`` -- the real OS functions for the block, while this
        kernel's redirection is installed (``RuntimeError`` if it is not)."""
        from .userspace.redirect import Redirection

        redir = Redirection.active
        if redir is None or redir.kernel is not self:
            raise RuntimeError("this kernel's redirection is not installed")
        with redir.paused():
            yield

    # -- shutdown -------------------------------------------------------------------------
    @property
    def record_openers(self) -> bool:
        """Whether each file remembers the line that opened it, for the leak report (the
        pytest fixture turns it on; it costs a frame walk per open)."""
        return self._file_table().openers is not None

    @record_openers.setter
    def record_openers(self, on: bool) -> None:
        table = self._file_table()
        if on != (table.openers is not None):
            table.openers = {} if on else None

    def _file_table(self) -> FileTable:
        """The file table, made in ``__init__``: asking for it is no use of a deferred boot
        (the fixture's ``record_openers``)."""
        table = (self._early if self._early is not None else self._subsys)[FileTable]
        return table  # type: ignore[return-value]

    def opened_at(self, file: File) -> str | None:
        """Where ``file`` was opened (``prog.py:12 in main``), if :attr:`record_openers`."""
        openers = self.subsys(FileTable).openers
        return format_opener(openers.get(file.id)) if openers is not None else None

    def _opened_at(self, file: File) -> str:
        where = self.opened_at(file)
        if where:
            return f", opened at {where}"
        cred = file.f_cred  # another process's file (a supervised tree's): which one
        if isinstance(cred, Cred) and cred is not self.init_process.cred:
            return f", opened by pid {cred.pid}"
        return ""

    def leaks(self) -> list[str]:
        """Everything still alive that a clean shutdown would not expect: the tasks' open
        fds and files, then each subsystem's own report, then every ``WARN()``."""
        out: list[str] = []
        for proc in self.processes:
            for fd, file in sorted(proc.files.items()):
                out.append(
                    f"fd {fd} of pid {proc.pid} ({proc.name}) still open: {file!r}"
                    f"{self._opened_at(file)}"
                )
        held = {id(f) for p in self.processes for f in p.files.values()}
        for file in self.live_files.values():
            if id(file) not in held:
                out.append(
                    f"file still referenced (not by an fd: a mapping or a driver): {file!r}"
                    f"{self._opened_at(file)}"
                )
        for sub in list(self.subsystems.values()):
            out += sub.leaks()
        out += [f"kernel warning: {w}" for w in self.warnings]
        return out

    def shutdown(self, check: bool = True) -> list[str]:
        """Stop the kernel: every task exits, every file is released, then the subsystems
        are shut down in the reverse order of their creation (drivers out and modules
        unloaded by the module loader, BAR memory freed, real fds closed).

        Returns the leaks found (see :meth:`leaks`); with ``check`` (the default)
        a non-empty list raises :class:`LeakError` instead -- after cleaning up,
        so a failed check never leaks real file descriptors.  Afterwards nothing
        outside holds the kernel: it is garbage once its last user lets go.
        """
        if self.is_shut_down:
            return []
        if self._early is not None and self._booting is None:  # never used: not booted
            self._subsys, self._early, self._start = self._early, None, None
            self._ids = self._ids_taken
            self.tracer.before_enable = None
        hidden = self._hidden
        if hidden is not None and self._probing is None:  # probes never needed: dropped
            _move_to_end(hidden, self._late)
            self._subsys, self._hidden, self._late, self._probes = hidden, None, {}, None
            self.tracer.before_enable = None
            vfs = hidden.get(Vfs)
            if isinstance(vfs, Vfs):
                vfs.before_walk = None
        self.is_shut_down = True
        self.plugin_manager.hook.mockkernel_shutdown(kernel=self)
        found = self.leaks()
        for proc in self.processes:
            if not proc.exited:
                proc.exit()
        found += self.subsys(FileTable).release_all()
        for sub in reversed(list(self._subsys.values())):
            try:
                sub.shutdown()
            except Exception as e:
                found.append(f"shutdown of subsystem {sub.name} failed: {e!r}")
        trace_kernel_shutdown(self.tracer, len(found))
        if found and check:
            raise LeakError(found)
        return found
