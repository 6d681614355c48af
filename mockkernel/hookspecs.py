"""Hook specifications: the few points where plugins meet the kernel.

Plugins are discovered through the ``mockkernel`` entry-point group (the
bundled drivers too) and implement any of the hooks below with
``@mockkernel.hookimpl``.  Hooks run at boot and shutdown only: nothing on the
syscall path goes through pluggy.  Per-object behaviour lives in ops tables
(``FileOperations``, ``DmaBufOps``, ``DmaBufAttachOps``, ``PciDriver``).

Hooks are called with keyword arguments, so a plugin may accept only the
arguments it needs.  A plugin is checked when registered
(:func:`mockkernel.plugins.check_plugin`): a ``mockkernel_*`` function that is none of
these hooks, or one asking for an argument its hook does not pass, is a one-line
:class:`mockkernel.plugins.PluginError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel import Kernel
    from .lifecycle import DriverRegistry
    from .profiles import UapiProfile

hookspec = pluggy.HookspecMarker("mockkernel")
hookimpl = pluggy.HookimplMarker("mockkernel")

# -------------------------------------------------------------------------------------------
# boot
# -------------------------------------------------------------------------------------------


@hookspec
def mockkernel_register(registry: DriverRegistry) -> None:
    """Register this plugin's drivers with a kernel that is booting.

    Called once per ``mockkernel.boot()``, before any device is probed.  Add
    PCI drivers with ``registry.add_pci_driver(driver)`` (they are matched to
    topology devices by name and probed in topology order) and boot-time
    modules with ``registry.add_module(name, init, exit)`` (``init(kernel)``
    runs after registration, ``exit(kernel)`` at shutdown, in reverse order),
    e.g. to create a misc device such as ``/dev/udmabuf``.

    :param registry: the booting kernel's registry; ``registry.kernel`` is the kernel.

    Return value ignored; every implementation is called.
    """


@hookspec
def mockkernel_register_uapi_profiles(register: Callable[[UapiProfile], None]) -> None:
    """Add uAPI profiles a kernel can boot with, beside the built-in ones.

    Called once per ``mockkernel.boot()``, before the topology's ``[kernel] uapi`` is
    looked up (so a topology, ``--uapi`` or ``boot(uapi=...)`` may name the new
    profile), and once by ``mockkernel run`` to check ``--uapi``.  Call
    ``register(profile)`` with a :class:`mockkernel.driver.UapiProfile` for each
    profile; the kernel's registry (``kernel.uapi_profiles``) then has it and
    ``kernel.uapi`` is it when booted with its name.  A name that is already taken
    (a built-in one included) fails the boot with ``ValueError``.  See
    ``docs/uapi-profiles.md`` for what a profile says.

    :param register: adds one profile to the booting kernel's registry.

    Return value ignored; every implementation is called.
    """


@hookspec
def mockkernel_boot(kernel: Kernel) -> None:
    """The kernel is up: modules initialised and devices probed.

    Called once per boot, after every ``init`` and every ``probe``.  Use it to
    observe the kernel (e.g. attach a trace sink) or to create objects that
    need other drivers to exist.

    :param kernel: the booted kernel.

    Return value ignored; every implementation is called.
    """


# -------------------------------------------------------------------------------------------
# shutdown
# -------------------------------------------------------------------------------------------


@hookspec
def mockkernel_shutdown(kernel: Kernel) -> None:
    """The kernel is shutting down, before drivers are removed and leaks are checked.

    Called once per kernel, by the first ``kernel.shutdown()`` (a second call does
    nothing), before the leak check, before every process's fds are closed, and
    before PCI ``remove`` and module ``exit`` run.  Use it to release what the plugin
    made at ``mockkernel_boot``.

    :param kernel: the kernel being shut down.

    Return value ignored; every implementation is called.
    """
