"""The kernel object: boot, the object tables, and shutdown with a leak report.

One ``Kernel`` is one machine.  Nothing lives at module level, so kernels are
independent and tests can boot as many as they like in parallel.  What a
kernel owns:

* ``tracer`` -- trace events (see :mod:`mockkernel.trace`);
* ``vfs`` -- the mock file tree: device nodes, sysfs, debugfs, procfs;
* ``pci`` -- the PCI devices of the topology;
* ``init_process`` -- the process that is *this* Python process (its mock fds
  are real fd numbers, held by placeholders); ``spawn()`` makes more;
* the live-object tables (files, held locks) that ``shutdown()`` checks, and the
  subsystems (``subsys()``), which report their own (dma-bufs, attachments, ...).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pluggy

from . import topology as _topology
from .errors import LeakError
from .fs import File, FileOperations
from .process import Process, RealBackedFdTable, VirtualFdTable
from .profiles import UapiProfile, UapiProfiles
from .realfd import REAL, hide
from .subsys import Subsystem
from .topology import Topology, default_topology
from .trace import Tracer
from .uaccess import restore_mm, swap_mm
from .vfs import Vfs

if TYPE_CHECKING:
    from .net import NetState
    from .pci import PciBus, PciDev
    from .pci.fabric import Fabric

__all__ = ["DriverRegistry", "Kernel", "PciDriver", "Subsystem", "boot"]

_T = TypeVar("_T", bound="Subsystem")

MISC_MAJOR = 10
_MFD_SEALING = 2  # MFD_ALLOW_SEALING
_F_ADD_SEALS = 1033
_SEALS = 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL | SHRINK | GROW | WRITE


class PciDriver(Protocol):
    """A PCI driver a plugin registers: matched to topology devices by ``name``."""

    name: str

    def probe(self, kernel: Kernel, pdev: PciDev) -> None:
        """Bind to ``pdev``; raise ``OSError`` to refuse (the device stays unbound)."""

    def remove(self, kernel: Kernel, pdev: PciDev) -> None:
        """Unbind from ``pdev`` at shutdown."""


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


@dataclass
class _Module:
    name: str
    init: Callable[[Kernel], None]
    exit: Callable[[Kernel], None] | None


@dataclass
class DriverRegistry:
    """What plugins register into during ``mockkernel_register``."""

    kernel: Kernel
    pci_drivers: dict[str, PciDriver] = field(default_factory=dict)
    modules: list[_Module] = field(default_factory=list)

    def add_pci_driver(self, driver: PciDriver) -> None:
        if driver.name in self.pci_drivers:
            raise ValueError(f"PCI driver {driver.name!r} registered twice")
        self.pci_drivers[driver.name] = driver

    def add_module(
        self,
        name: str,
        init: Callable[[Kernel], None],
        exit: Callable[[Kernel], None] | None = None,
    ) -> None:
        self.modules.append(_Module(name, init, exit))


class Kernel:
    """A booted mock kernel.  Use :func:`boot` to make one."""

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
        self._ids = itertools.count(1)
        self.topology = topology
        self.tracer = Tracer()
        self.plugin_manager = pm
        self.live_files: dict[int, File] = {}
        self.held_locks: dict[int, str] = {}
        self.warnings: list[str] = []
        self._placeholders: dict[str, int] = {}
        self._placeholder_companions: list[int] = []
        self._misc_minor = itertools.count(120)
        self._pids = itertools.count(1000)
        self.vfs = Vfs(self)
        self.processes: list[Process] = []
        self.init_process = Process(
            self,
            os.getpid(),
            RealBackedFdTable(topology.kernel.rlimit_nofile, self.placeholder),
            "init",
        )
        self.processes.append(self.init_process)
        self._cpu = _Cpu()
        #: the subsystems, in the order they were made (see :meth:`subsys`)
        self.subsystems: dict[type[Subsystem], Subsystem] = {}
        self.installed_process: Process | None = None
        self.registry = DriverRegistry(self)
        self.bound: dict[str, PciDriver] = {}
        self.pci: PciBus | None = None
        self.fabric: Fabric
        self.is_shut_down = False
        #: the network state (netlink, genl families, net devices), made on first use
        self.net: NetState | None = None

    def new_id(self) -> int:
        return next(self._ids)

    @property
    def current(self) -> Process:
        """The task this thread (CPU) runs in this kernel: the one a :meth:`running` block
        made current, else the init process (this Python process)."""
        return self._cpu.task or self.init_process

    def subsys(self, cls: type[_T]) -> _T:
        """The kernel's one ``cls`` subsystem, made on first use as ``cls(kernel)``."""
        sub = self.subsystems.get(cls)
        if sub is None:
            sub = self.subsystems[cls] = cls(self)
        return sub  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<Kernel uapi={self.uapi} files={len(self.live_files)}>"

    # -- boot -----------------------------------------------------------------------------
    def _boot(self) -> None:
        from . import sysfs
        from .dma_buf import dma_buf_init
        from .pci import PciBus
        from .pci.fabric import Fabric

        self.pci = PciBus.from_topology(self.topology, tracer=self.tracer)
        self.fabric = Fabric(self.pci, self.tracer)
        dma_buf_init(self)
        sysfs.populate_pci(self)
        hook = self.plugin_manager.hook
        hook.mockkernel_register(registry=self.registry)
        for module in self.registry.modules:
            module.init(self)
            self._trace("module.init", module=module.name)
        for pdev in self.pci.devices:
            name = pdev.driver_name
            if name is None:
                continue
            driver = self.registry.pci_drivers.get(name)
            if driver is None:
                self._trace("pci.no_driver", bdf=pdev.bdf, driver=name)
                continue
            driver.probe(self, pdev)
            self.bound[pdev.bdf] = driver
            sysfs.bind_driver(self, pdev, name)
            self._trace("pci.probe", bdf=pdev.bdf, driver=name)
        hook.mockkernel_boot(kernel=self)

    def _trace(self, event: str, **fields: Any) -> None:
        if self.tracer.enabled:
            self.tracer.emit(event, **fields)

    # -- services for drivers ---------------------------------------------------------------
    def placeholder(self, label: str) -> int:
        """The real memfd whose dups hold the numbers of mock fds of this kind."""
        fd = self._placeholders.get(label)
        if fd is None:
            fd = hide(os.memfd_create(f"mockkernel:{label}", os.MFD_CLOEXEC | _MFD_SEALING))
            # sealed: a write that escapes the redirection fails instead of landing here
            REAL.fcntl(fd, _F_ADD_SEALS, _SEALS)
            self._placeholders[label] = fd
        return fd

    def add_placeholder(self, label: str, fd: int, *companions: int) -> None:
        """Make the real ``fd`` the placeholder of mock fds labelled ``label``.

        For files whose real-fd behaviour must differ from a memfd's: ``select``/``poll``
        on a mock fd see its placeholder, so an empty pipe's read end (with its write end
        as a ``companion``, kept open so it never reports ``POLLHUP``) polls as "no
        events", like an event file with nothing queued.  The kernel owns the fds from
        now on and closes them at shutdown.  ``ValueError`` if ``label`` has one already.
        """
        if label in self._placeholders:
            raise ValueError(f"placeholder {label!r} exists already")
        self._placeholders[label] = hide(fd)
        self._placeholder_companions += [hide(c) for c in companions]

    def misc_register(self, name: str, fops: FileOperations, perm: int = 0o666) -> int:
        """``misc_register``: create ``/dev/<name>`` (major 10, a dynamic minor); returns rdev."""
        rdev = os.makedev(MISC_MAJOR, next(self._misc_minor))
        self.vfs.register_chrdev(f"/dev/{name}", fops, rdev, perm)
        self._trace("chrdev.register", path=f"/dev/{name}", rdev=rdev)
        return rdev

    def misc_deregister(self, name: str) -> None:
        self.vfs.unlink(f"/dev/{name}")

    def warn(self, message: str) -> None:
        """``WARN()``: record a broken kernel rule; ``shutdown()`` reports it."""
        self.warnings.append(message)
        self._trace("kernel.warn", message=message)

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

    def fdinfo(self, proc: Process, fd: int) -> str:
        """``/proc/<pid>/fdinfo/<fd>``.

        Like ``seq_show`` in ``fs/proc/fd.c`` it holds a reference on the file while
        it prints, which ``show_fdinfo`` ops see (dma-buf's ``count:`` is
        ``file_count - 1``: 1 for a buffer with one fd, as on real Linux).
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

    def run(self, args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run any program (a C binary, a script, ``python3``) and every process it makes
        as a supervised tree served by this kernel; ``subprocess.run``'s arguments
        (``stdin``/``input``/``stdout``/``stderr``/``capture_output``/``text``/``check``/
        ``timeout``/``env``/``cwd``).  See ``docs/supervisor.md``."""
        from .supervisor.run import run

        return run(self, args, **kwargs)

    # -- redirection ----------------------------------------------------------------------
    def install(self, **kwargs: Any) -> Any:
        """Route this process's syscalls to the kernel (a context manager)."""
        from .userspace.redirect import Redirection

        return Redirection(self, **kwargs)

    # -- shutdown -------------------------------------------------------------------------
    def leaks(self) -> list[str]:
        """Everything still alive that a clean shutdown would not expect."""
        out: list[str] = []
        for proc in self.processes:
            for fd, file in sorted(proc.files.items()):
                out.append(f"fd {fd} of pid {proc.pid} ({proc.name}) still open: {file!r}")
        held = {id(f) for p in self.processes for f in p.files.values()}
        for file in self.live_files.values():
            if id(file) not in held:
                out.append(f"file still referenced (not by an fd: a mapping or a driver): {file!r}")
        for sub in self.subsystems.values():
            out += sub.leaks()
        out += [f"lock still held: {name}" for name in self.held_locks.values()]
        out += [f"kernel warning: {w}" for w in self.warnings]
        return out

    def shutdown(self, check: bool = True) -> list[str]:
        """Stop the kernel: drivers out, everything released, real fds closed.

        Returns the leaks found (see :meth:`leaks`); with ``check`` (the default)
        a non-empty list raises :class:`LeakError` instead -- after cleaning up,
        so a failed check never leaks real file descriptors.
        """
        if self.is_shut_down:
            return []
        self.is_shut_down = True
        self.plugin_manager.hook.mockkernel_shutdown(kernel=self)
        found = self.leaks()
        for proc in self.processes:
            if not proc.exited:
                proc.exit()
        # Files still referenced now (by a mapping, or a reference a driver never put)
        # are released anyway, as process exit and module unload would: the leak is
        # reported above, but the real fds and mappings behind them must not leak.
        for file in list(self.live_files.values()):
            if file.released:
                continue
            file.f_count = 0
            try:
                file._release()
            except Exception as e:  # a driver's release failing is one more finding
                found.append(f"release of {file!r} at shutdown failed: {e!r}")
        for bdf, driver in reversed(list(self.bound.items())):
            assert self.pci is not None
            driver.remove(self, self.pci.get(bdf))
        self.bound.clear()
        for module in reversed(self.registry.modules):
            if module.exit is not None:
                module.exit(self)
        for sub in reversed(list(self.subsystems.values())):
            try:
                sub.shutdown()
            except Exception as e:
                found.append(f"shutdown of subsystem {sub.name} failed: {e!r}")
        if self.pci is not None:
            self.pci.close()
        for fd in [*self._placeholders.values(), *self._placeholder_companions]:
            REAL.close(fd)
        self._placeholders.clear()
        self._placeholder_companions.clear()
        self._trace("kernel.shutdown", leaks=len(found))
        if found and check:
            raise LeakError(found)
        return found


_default_cache: list[tuple[object, str, Topology]] = []


def _default_topology() -> Topology:
    """``default_topology()``, parsed once per process rather than at every boot.

    Parsing the TOML was more than half of a boot.  A ``Topology`` is deeply frozen,
    so kernels can share one.  A monkeypatched ``default_topology`` (here) or
    ``DEFAULT_TOPOLOGY_TOML`` (in :mod:`mockkernel.topology`) is honoured.
    """
    fn, text = default_topology, _topology.DEFAULT_TOPOLOGY_TOML
    if _default_cache:
        cached_fn, cached_text, topo = _default_cache[0]
        if cached_fn is fn and cached_text is text:
            return topo
    topo = fn()
    _default_cache[:] = [(fn, text, topo)]
    return topo


def boot(
    topology: Topology | str | os.PathLike[str] | None = None,
    *,
    plugins: Sequence[object] = (),
    uapi: str | None = None,
) -> Kernel:
    """Boot a kernel on ``topology`` (a ``Topology``, a TOML path or text; default built in).

    :param plugins: extra plugin objects or modules (beyond the entry-point ones).
    :param uapi: override the topology's uAPI profile (a name of ``kernel.uapi_profiles``:
        a built-in profile or one a plugin registered; ``UnknownUapiProfile`` otherwise).
    """
    from .plugins import get_plugin_manager
    from .topology import load_topology

    pm = get_plugin_manager(plugins)
    profiles = UapiProfiles.from_plugins(pm)
    if topology is None:
        topo = _default_topology()
    elif isinstance(topology, Topology):
        topo = topology
    else:
        topo = load_topology(topology, uapi_profiles=profiles)
    if uapi is not None:
        import dataclasses

        topo = dataclasses.replace(topo, kernel=dataclasses.replace(topo.kernel, uapi=uapi))
    kernel = Kernel(topo, pm, profiles)
    try:
        kernel._boot()
    except BaseException:
        kernel.shutdown(check=False)
        raise
    return kernel
