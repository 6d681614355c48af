"""Plugin discovery: one pluggy manager named ``mockkernel``.

Plugins come from the ``mockkernel`` entry-point group -- the bundled drivers
in ``plugins/`` go through the same path as third-party ones.  Set
``MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD=1`` to load none of them; then only the
plugins passed to ``boot(plugins=...)`` and those named in
``MOCKKERNEL_PLUGINS`` (comma-separated entry-point names) are used.

Discovery reads package metadata, which is slow, so the manager built from the
environment is cached per Python process (:func:`_discovered`, one entry: it holds
code, not kernel state -- each kernel still has its own registry and objects).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Sequence

import pluggy

import mockkernel.hookspecs as hookspecs

__all__ = ["ENTRY_POINT_GROUP", "get_plugin_manager", "plugin_names"]

ENTRY_POINT_GROUP = "mockkernel"
_AUTOLOAD_ENV = "MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD"
_NAMES_ENV = "MOCKKERNEL_PLUGINS"


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("mockkernel")
    pm.add_hookspecs(hookspecs)
    return pm


def _load_named(pm: pluggy.PluginManager, names: Sequence[str]) -> None:
    wanted = {n.strip() for n in names if n.strip()}
    if not wanted:
        return
    found = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in wanted and pm.get_plugin(ep.name) is None:
            pm.register(ep.load(), name=ep.name)
            found.add(ep.name)
    missing = wanted - found - {n for n in wanted if pm.get_plugin(n) is not None}
    if missing:
        raise LookupError(f"mockkernel plugin(s) not installed: {', '.join(sorted(missing))}")


@functools.lru_cache(maxsize=1)
def _discovered(autoload_off: str, names: str) -> pluggy.PluginManager:
    """The plugins the environment asks for (a cache of facts about the installed
    packages: the last environment seen; a failed discovery is not cached)."""
    base = _new_manager()
    if not autoload_off:
        base.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    _load_named(base, names.split(","))
    base.check_pending()
    return base


def get_plugin_manager(extra: Sequence[object] = ()) -> pluggy.PluginManager:
    """The manager for a boot: environment plugins plus ``extra`` objects/modules."""
    base = _discovered(os.environ.get(_AUTOLOAD_ENV, ""), os.environ.get(_NAMES_ENV, ""))
    if not extra:
        return base
    pm = _new_manager()
    for name, plugin in base.list_name_plugin():
        pm.register(plugin, name=name)
    for plugin in extra:
        if pm.is_registered(plugin):
            continue
        pm.register(plugin)
    pm.check_pending()
    return pm


def plugin_names(pm: pluggy.PluginManager) -> list[tuple[str, str]]:
    """(name, where) for each registered plugin, for ``mockkernel plugins``."""
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        dist = dists.get(id(plugin))
        where = f"{dist.project_name} {dist.version}" if dist is not None else "passed to boot()"
        out.append((str(name), where))
    return out
