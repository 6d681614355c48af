"""Boot: from a topology to a running kernel, and the module loader drivers register with.

:func:`boot` (``mockkernel.boot``) makes the :class:`~mockkernel.kernel.Kernel` context
and runs :func:`start_kernel`, which brings the machine up in the order Linux does:

1. the PCI core scans the bus (:class:`~mockkernel.pci.core.PciCore`): config spaces,
   BARs, the fabric; sysfs gets ``/sys/bus/pci`` and the device directories;
2. the dma-buf core is made (``dma_buf_init``: its debugfs ``bufinfo`` too);
3. the module loader (:class:`ModuleLoader`) asks every plugin to register
   (``mockkernel_register``), runs each module's ``init``, and probes every PCI
   function whose topology entry names a registered driver;
4. the ``mockkernel_boot`` hook runs.

``boot(lazy=True)`` makes the ``Kernel`` and leaves :func:`start_kernel` to the kernel's
first use (:meth:`~mockkernel.kernel.Kernel.defer_start`): the pytest fixture's kernels
after a topology's first boot in the session.

After boot, the module loader is also the driver core of the PCI bus (``PciBusOps``):
the sysfs files ``bind``, ``unbind``, ``driver_override``, ``remove`` and ``rescan``
probe and remove drivers as ``drivers/base/dd.c`` does (docs/reliability.md).

Shutdown is ``Kernel.shutdown()``: tasks exit, files are released, then the subsystems
shut down in reverse order -- for the module loader that is every bound driver's
``remove`` (reverse probe order) and every module's ``exit`` (reverse order).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from errno import EBUSY, ENODEV
from typing import TYPE_CHECKING, Protocol

from .context import Subsystem
from .errors import kerr
from .kernel import Kernel
from .locks import Mutex
from .pci.core import PciCore
from .plugins import AUTOLOAD_ENV, PluginError, did_you_mean, get_plugin_manager
from .profiles import UapiProfiles
from .sysfs import (
    bind_driver,
    pci_driver_sysfs,
    pci_sysfs_add_device,
    pci_sysfs_remove_device,
    populate_pci,
    unbind_driver,
)
from .topology import (
    DEFAULT_TOPOLOGY_TOML,
    Topology,
    TopologyError,
    load_topology,
    topology_file,
)
from .trace import TracePoint

if TYPE_CHECKING:
    from pluggy import PluginManager

    from .pci import PciDev

__all__ = ["DriverRegistry", "ModuleLoader", "PciDriver", "boot", "start_kernel"]

trace_module_init = TracePoint("module.init", "module")
trace_pci_no_driver = TracePoint("pci.no_driver", "bdf", "driver")
trace_pci_probe = TracePoint("pci.probe", "bdf", "driver")
trace_pci_unbind = TracePoint("pci.unbind", "bdf", "driver")
trace_pci_probe_failed = TracePoint("pci.probe_failed", "bdf", "driver", "errno")
trace_pci_remove_device = TracePoint("pci.remove_device", "bdf")
trace_pci_rescan = TracePoint("pci.rescan", "found")


class PciDriver(Protocol):
    """A PCI driver a plugin registers: matched to topology devices by ``name``."""

    name: str

    def probe(self, kernel: Kernel, pdev: PciDev) -> None:
        """Bind to ``pdev``; raise ``OSError`` to refuse (the device stays unbound)."""

    def remove(self, kernel: Kernel, pdev: PciDev) -> None:
        """Unbind from ``pdev``: at shutdown, or from sysfs (``unbind``, ``remove``) while
        programs may still hold its files -- the driver decides what becomes of them
        (vfio-pci waits for its device fds, as ``vfio_unregister_group_dev`` does)."""


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
    #: the plugin whose ``mockkernel_register`` runs now (named in registration errors)
    plugin: str | None = None

    def add_pci_driver(self, driver: PciDriver) -> None:
        """Register ``driver``; a driver that could not work (no ``name``, no ``probe`` or
        ``remove`` taking ``(kernel, pdev)``) is a one-line :class:`PluginError` now,
        rather than an ``AttributeError`` at teardown."""
        check_pci_driver(driver, self.plugin)
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


def check_pci_driver(driver: object, plugin: str | None = None) -> None:
    """Raise :class:`PluginError` naming the plugin, the class and the mistake if
    ``driver`` is not a usable :class:`PciDriver`."""
    cls = type(driver)
    who = f"plugin {plugin!r}: " if plugin else ""
    who += f"PciDriver {cls.__module__}.{cls.__qualname__}"
    name = getattr(driver, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(driver, f"{who}: 'name' must be a non-empty string, got {name!r}")
    for method in ("probe", "remove"):
        fn = getattr(driver, method, None)
        if not callable(fn):
            public = [a for a in dir(driver) if not a.startswith("_")]
            raise PluginError(
                driver,
                f"{who}: no {method}(kernel, pdev) method{did_you_mean(method, public)}",
            )
        if _takes_two(fn):
            continue
        try:
            inspect.signature(fn).bind(None, None)
        except TypeError:
            params = ", ".join(inspect.signature(fn).parameters)
            raise PluginError(
                driver, f"{who}: {method}({params}) cannot be called as {method}(kernel, pdev)"
            ) from None
        except ValueError:  # no signature to read (a builtin): trust it
            pass


def _takes_two(fn: object) -> bool:
    """Whether ``fn`` is plainly a method ``(self, a, b)`` -- read off its code object, as
    ``inspect.signature`` would conclude, at a fraction of the cost (every boot checks
    every driver); anything less plain goes to ``inspect.signature``."""
    func = getattr(fn, "__func__", None)
    code = getattr(func, "__code__", None)
    if code is None or getattr(fn, "__self__", None) is None:
        return False
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return False
    kwonly_required = code.co_kwonlyargcount - len(getattr(func, "__kwdefaults__", None) or ())
    return bool(code.co_argcount == 3 and kwonly_required == 0)


class ModuleLoader(Subsystem):
    """The modules and PCI drivers the plugins registered, loaded and bound at boot.

    Made at boot after the PCI core, so it is shut down before it: drivers are removed
    while their devices still exist.
    """

    name = "modules"

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.kernel: Kernel = kernel
        self.registry = DriverRegistry(kernel)
        #: serialises binding, unbinding, removal and rescans of the bus (``device_lock``
        #: of every function and ``pci_rescan_remove_lock``, as one lock)
        self.device_lock = Mutex(kernel, "pci device_lock")

    def load(self) -> None:
        """Plugins register, modules initialise, the drivers get their sysfs directories;
        then :meth:`probe_all` probes the PCI functions (:func:`start_kernel` calls it)."""
        kernel = self.kernel
        hook = kernel.plugin_manager.hook.mockkernel_register
        impls = hook.get_hookimpls()
        if any(i.hookwrapper or i.wrapper for i in impls):
            hook(registry=self.registry)
        else:  # pluggy's call order, one plugin at a time: errors name the plugin
            for impl in reversed(impls):
                label = impl.plugin_name  # pluggy names an unnamed plugin by its id()
                if label.isdigit():
                    label = getattr(impl.plugin, "__name__", type(impl.plugin).__qualname__)
                self.registry.plugin = label
                impl.function(**{a: self.registry for a in impl.argnames})
            self.registry.plugin = None
        for module in self.registry.modules:
            module.init(kernel)
            trace_module_init(kernel.tracer, module.name)
        pci = kernel.subsys(PciCore)
        self._check_driver_names()
        for drv_name in self.registry.pci_drivers:
            pci_driver_sysfs(kernel, drv_name)
        pci.bus_ops = self

    def probe_all(self) -> None:
        """Every PCI function whose topology entry names a registered driver is probed
        (topology order): the last step of :meth:`load`, which a boot may defer
        (:meth:`Kernel.defer_probes`)."""
        kernel = self.kernel
        pci = kernel.subsys(PciCore)
        for pdev in pci.bus.devices:
            name = pdev.driver_name
            if name is None:
                continue
            driver = self.registry.pci_drivers.get(name)
            if driver is None:
                trace_pci_no_driver(kernel.tracer, pdev.bdf, name)
                continue
            self.driver_probe_device(driver, pdev)

    # -- the driver core (drivers/base/dd.c, bus.c; drivers/pci/pci-driver.c) ---------------
    def pci_match(self, name: str, pdev: PciDev) -> bool:
        """``pci_match_device``: a ``driver_override`` names the one driver that matches;
        otherwise the driver's id table does -- here, the topology's ``driver``."""
        if pdev.driver_override is not None:
            return pdev.driver_override == name
        return pdev.driver_name == name

    def driver_probe_device(self, driver: PciDriver, pdev: PciDev) -> None:
        """``__driver_probe_device``/``really_probe``: ``EBUSY`` if a driver is bound; the
        probe's error leaves the function unbound."""
        pci = self.kernel.subsys(PciCore)
        if pdev.bdf in pci.bound:
            raise kerr(EBUSY)
        driver.probe(self.kernel, pdev)
        pci.bound[pdev.bdf] = driver
        bind_driver(self.kernel, pdev, driver.name)
        trace_pci_probe(self.kernel.tracer, pdev.bdf, driver.name)

    def device_release_driver(self, pdev: PciDev) -> None:
        """``device_release_driver``: the bound driver's ``remove`` (which may wait for
        the driver's files to be closed), then the links go.  Nothing if unbound."""
        pci = self.kernel.subsys(PciCore)
        bound = pci.bound.get(pdev.bdf)
        if bound is None:
            return
        self.registry.pci_drivers[bound.name].remove(self.kernel, pdev)
        del pci.bound[pdev.bdf]
        unbind_driver(self.kernel, pdev, bound.name)
        trace_pci_unbind(self.kernel.tracer, pdev.bdf, bound.name)

    def device_attach(self, pdev: PciDev) -> None:
        """``device_attach``: the first registered driver that matches is probed; a probe
        that fails leaves the function unbound (the error goes to the kernel log)."""
        if pdev.bdf in self.kernel.subsys(PciCore).bound:
            return
        for name, driver in self.registry.pci_drivers.items():
            if self.pci_match(name, pdev):
                try:
                    self.driver_probe_device(driver, pdev)
                except OSError as e:
                    trace_pci_probe_failed(self.kernel.tracer, pdev.bdf, name, e.errno)
                return

    def _find(self, bdf: str) -> PciDev:
        """``bus_find_device_by_name``; ``ENODEV`` when no function has that name."""
        bus = self.kernel.subsys(PciCore).bus
        if bdf not in bus:
            raise kerr(ENODEV)
        return bus.get(bdf)

    def bind_store(self, driver: str, bdf: str) -> None:
        """``bind_store``: ``ENODEV`` unless the function exists and ``driver`` matches it
        (``driver_override``), ``EBUSY`` if it has a driver, else the probe's error."""
        with self.device_lock:
            pdev = self._find(bdf)
            if not self.pci_match(driver, pdev):
                raise kerr(ENODEV)
            self.driver_probe_device(self.registry.pci_drivers[driver], pdev)

    def unbind_store(self, driver: str, bdf: str) -> None:
        """``unbind_store``: ``ENODEV`` unless the function is bound to ``driver``."""
        with self.device_lock:
            pdev = self._find(bdf)
            bound = self.kernel.subsys(PciCore).bound.get(bdf)
            if bound is None or bound.name != driver:
                raise kerr(ENODEV)
            self.device_release_driver(pdev)

    def drivers_probe(self, bdf: str) -> None:
        """``drivers_probe_store``: ``ENODEV`` for an unknown name; else attach if unbound."""
        with self.device_lock:
            self.device_attach(self._find(bdf))

    def remove_device(self, bdf: str) -> None:
        """``pci_stop_and_remove_bus_device_locked``: the driver removed, the function off
        the bus and out of sysfs.  A second write to a removed function's (still open)
        file does nothing."""
        with self.device_lock:
            bus = self.kernel.subsys(PciCore).bus
            if bdf not in bus:
                return
            pdev = bus.get(bdf)
            self.device_release_driver(pdev)
            pci_sysfs_remove_device(self.kernel, pdev)
            bus.remove_device(bdf)
            trace_pci_remove_device(self.kernel.tracer, bdf)

    def rescan(self) -> None:
        """``pci_rescan_bus``: removed functions are found again and probed."""
        with self.device_lock:
            found = self.kernel.subsys(PciCore).bus.rescan()
            trace_pci_rescan(self.kernel.tracer, [p.bdf for p in found])
            for pdev in found:
                pci_sysfs_add_device(self.kernel, pdev)
                self.device_attach(pdev)

    def _check_driver_names(self) -> None:
        """A topology ``driver`` no plugin registered is an error (all of them at once,
        with the names registered) -- unless plugin autoload is off, where running
        without some drivers is the point: such a device stays unbound."""
        if os.environ.get(AUTOLOAD_ENV):
            return
        check = driver_check(self.registry.pci_drivers)
        errors = tuple(
            TopologyError(f"devices[{i}].driver", problem)
            for i, dev in enumerate(self.kernel.topology.devices)
            if dev.driver is not None and (problem := check(dev.driver)) is not None
        )
        if errors:
            raise TopologyError(errors[0].key, errors[0].problem, errors=errors)

    def shutdown(self) -> None:
        """Bound drivers removed (reverse probe order), then modules exit (reverse order)."""
        kernel = self.kernel
        pci = kernel.subsys(PciCore)
        pci.bus_ops = None
        for bdf, bound in reversed(list(pci.bound.items())):
            self.registry.pci_drivers[bound.name].remove(kernel, pci.bus.get(bdf))
        pci.bound.clear()
        for module in reversed(self.registry.modules):
            if module.exit is not None:
                module.exit(kernel)


def start_kernel(kernel: Kernel, probe_ids: int | None = None) -> None:
    """Bring ``kernel`` up: PCI, sysfs, debugfs, modules and drivers, the boot hook.

    With ``probe_ids`` (how many ids the probes took at an eager boot of the same
    topology: its :attr:`Kernel.probe_ids`) the driver probes and the boot hook are
    deferred until something could see them (:meth:`Kernel.defer_probes`): a test that
    only opens ``/dev/udmabuf`` never builds the RDMA core, the network stack or a vfio
    device.  Without, they run now and :attr:`Kernel.probe_ids` records their ids."""
    from .dma_buf import dma_buf_init

    kernel.subsys(PciCore)
    dma_buf_init(kernel)
    populate_pci(kernel)
    loader = kernel.subsys(ModuleLoader)
    loader.load()

    def probes() -> None:
        loader.probe_all()
        kernel.plugin_manager.hook.mockkernel_boot(kernel=kernel)

    if probe_ids is not None:
        kernel.defer_probes(probes, probe_ids)
        return
    first = kernel.id_mark()
    probes()
    kernel.probe_ids = kernel.id_mark() - first


def driver_check(registered: Collection[str]) -> Callable[[str], str | None]:
    """What is wrong with a topology ``driver`` name, given the registered PCI drivers."""
    known = sorted(registered)

    def check(name: str) -> str | None:
        if name in registered:
            return None
        return (
            f"{name!r} is no registered PCI driver{did_you_mean(name, known)}; "
            f"registered: {', '.join(known) or 'none'}"
        )

    return check


def _registered_pci_drivers(pm: PluginManager, profiles: UapiProfiles) -> list[str] | None:
    """The PCI drivers the plugins register, from a kernel with no devices (only when a
    topology file has errors: so that an unknown driver is reported with them); None
    where plugin autoload is off (drivers may be missing on purpose) or that fails."""
    if os.environ.get(AUTOLOAD_ENV):
        return None
    base = _parse_default(DEFAULT_TOPOLOGY_TOML)
    kernel = Kernel(dataclasses.replace(base, root_ports=(), devices=()), pm, profiles)
    try:
        start_kernel(kernel)
        return list(kernel.subsys(ModuleLoader).registry.pci_drivers)
    except Exception:
        return None
    finally:
        kernel.shutdown(check=False)


@functools.lru_cache(maxsize=1)
def _parse_default(text: str) -> Topology:
    """The default topology parsed once per process rather than at every boot (parsing
    the TOML was more than half of a boot).  A cache of an immutable fact: a
    ``Topology`` is deeply frozen, kernels share it, and it holds no kernel."""
    return load_topology(text)


def boot(
    topology: Topology | str | os.PathLike[str] | None = None,
    *,
    plugins: Sequence[object] = (),
    uapi: str | None = None,
    lazy: bool = False,
    probe_ids: int | None = None,
) -> Kernel:
    """Boot a kernel on ``topology`` (a ``Topology``, a TOML path or text; default built in).

    :param plugins: extra plugin objects or modules (beyond the entry-point ones).
    :param uapi: override the topology's uAPI profile (a name of ``kernel.uapi_profiles``:
        a built-in profile or one a plugin registered; ``UnknownUapiProfile`` otherwise).
    :param lazy: bring the machine up at its first use rather than now
        (:meth:`Kernel.defer_start`): a kernel nobody uses costs next to nothing, and one
        that is used is the same as if booted now -- except that an error of the boot
        (a driver's probe failing) is raised by that first use.  The pytest fixture
        boots lazily a topology that already booted in the session.
    :param probe_ids: with ``lazy``, also defer the driver probes until something could
        see them (:meth:`Kernel.defer_probes`): the number of ids they took at an eager
        boot of the same topology (that kernel's :attr:`Kernel.probe_ids`), which is
        what makes every id the same as an eager boot's.
    """
    pm = get_plugin_manager(plugins)
    profiles = UapiProfiles.from_plugins(pm)
    file: str | None = None  # (named in the errors boot finds: an unknown driver)
    if topology is None:
        topo = _parse_default(DEFAULT_TOPOLOGY_TOML)
    elif isinstance(topology, Topology):
        topo = topology
    else:
        try:
            topo = load_topology(topology, uapi_profiles=profiles)
        except TopologyError:  # every error at once: unknown drivers too
            names = _registered_pci_drivers(pm, profiles)
            if names is None:
                raise
            load_topology(topology, uapi_profiles=profiles, check_driver=driver_check(names))
            raise  # (not reached: the same errors again, and more)
        file = topology_file(topology)
    if uapi is not None:
        topo = dataclasses.replace(topo, kernel=dataclasses.replace(topo.kernel, uapi=uapi))
    kernel = Kernel(topo, pm, profiles)
    if lazy:
        if probe_ids is None:
            kernel.defer_start(start_kernel)
        else:
            kernel.defer_start(functools.partial(start_kernel, probe_ids=probe_ids))
        return kernel
    try:
        start_kernel(kernel)
    except TopologyError as e:
        kernel.shutdown(check=False)
        if file is None or e.file is not None:
            raise
        raise TopologyError(e.key, e.problem, file=file, errors=e.errors) from None
    except BaseException:
        kernel.shutdown(check=False)
        raise
    return kernel
