"""Plugin discovery: one pluggy manager named ``mockkernel``.

Plugins come from the ``mockkernel`` entry-point group -- the bundled drivers
in ``plugins/`` go through the same path as third-party ones.  Set
``MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD=1`` to load none of them; then only the
plugins passed to ``boot(plugins=...)`` and those named in
``MOCKKERNEL_PLUGINS`` (comma-separated entry-point names) are used.

Discovery reads package metadata, which is slow, so the manager built from the
environment is cached per Python process (:func:`_discovered`, one entry: it holds
code, not kernel state -- each kernel still has its own registry and objects).

Plugins are checked when registered (:func:`check_plugin`): a ``mockkernel_*`` function
that is no hook (a typo), or a hook asking for an argument the hook does not have, is a
:class:`PluginError` whose one-line message names the plugin, the class and the mistake.
An entry-point plugin that fails to import or to register is skipped -- the others load
-- with one warning line, and ``mockkernel plugins`` lists it as not loaded
(:func:`plugin_failures`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import pluggy

import mockkernel.hookspecs as hookspecs

__all__ = [
    "AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PluginError",
    "check_plugin",
    "get_plugin_manager",
    "plugin_failures",
    "plugin_names",
]

ENTRY_POINT_GROUP = "mockkernel"
AUTOLOAD_ENV = "MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD"
_NAMES_ENV = "MOCKKERNEL_PLUGINS"


class PluginError(pluggy.PluginValidationError):
    """A plugin that cannot work as written; the message is one line naming the plugin,
    the class (or module) and what is wrong."""

    def __init__(self, plugin: object, message: str) -> None:
        super().__init__(plugin, message)


#: the hook names of :mod:`mockkernel.hookspecs`, with their argument names
_HOOKS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(fn).parameters)
    for name, fn in vars(hookspecs).items()
    if name.startswith("mockkernel_") and callable(fn)
}


def describe(plugin: object, name: str | None = None) -> str:
    """``plugin 'udmabuf' (module mockkernel_udmabuf)`` / ``plugin (class mymod.Typo)``."""
    if isinstance(plugin, ModuleType):
        what = f"module {plugin.__name__}"
    else:
        cls = type(plugin) if not isinstance(plugin, type) else plugin
        what = f"class {cls.__module__}.{cls.__qualname__}"
    return f"plugin {name!r} ({what})" if name else f"plugin ({what})"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    import difflib  # (only on the error path: it costs import time)

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_plugin(plugin: object, name: str | None = None) -> None:
    """Raise :class:`PluginError` for a ``mockkernel_*`` function that is no hook, or a
    hook implementation asking for an argument the hook does not pass."""
    who = describe(plugin, name)
    for attr in dir(plugin):
        if not attr.startswith("mockkernel_"):
            continue
        fn = getattr(plugin, attr, None)
        if not callable(fn) or isinstance(fn, type):
            continue
        if attr not in _HOOKS:
            hint = did_you_mean(attr, list(_HOOKS))
            raise PluginError(plugin, f"{who}: unknown hook {attr!r}{hint}")
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        allowed = _HOOKS[attr]
        for p in params.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name not in allowed:
                raise PluginError(
                    plugin,
                    f"{who}: {attr}() asks for argument {p.name!r}, the hook passes only "
                    f"{', '.join(allowed)}{did_you_mean(p.name, allowed)}",
                )


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> None:
    """Check, then register ``plugin``; pluggy's own refusals become one-line errors."""
    check_plugin(plugin, name)
    try:
        pm.register(plugin, name=name)
    except PluginError:
        raise
    except pluggy.PluginValidationError as e:
        line = " ".join(str(e).split())
        raise PluginError(plugin, f"{describe(plugin, name)}: {line}") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if not isinstance(e, PluginError) else text


@dataclass(frozen=True)
class _Discovery:
    """What the environment's plugins are: the manager, where each came from, failures."""

    pm: pluggy.PluginManager
    where: dict[str, str]
    failures: tuple[tuple[str, str], ...]


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("mockkernel")
    pm.add_hookspecs(hookspecs)
    return pm


def _load_entry_points(
    pm: pluggy.PluginManager,
    wanted: set[str] | None,
    where: dict[str, str],
    failures: list[tuple[str, str]],
) -> set[str]:
    """Load the group's entry points (all, or those ``wanted``); a failing one is
    recorded in ``failures`` and skipped.  Returns the names seen."""
    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        seen.add(ep.name)
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            _register(pm, ep.load(), ep.name)
        except Exception as e:  # one broken plugin must not break the others
            failures.append((ep.name, _one_line(e)))
            continue
        dist = ep.dist
        where[ep.name] = f"{dist.name} {dist.version}" if dist is not None else ep.value
    return seen


class PluginNotLoaded(UserWarning):
    """A plugin an entry point names failed to load (it is skipped, the others load)."""


@functools.lru_cache(maxsize=1)
def _discovered(autoload_off: str, names: str) -> _Discovery:
    """The plugins the environment asks for (a cache of facts about the installed
    packages: the last environment seen; a failed discovery is not cached)."""
    base = _new_manager()
    where: dict[str, str] = {}
    failures: list[tuple[str, str]] = []
    if not autoload_off:
        _load_entry_points(base, None, where, failures)
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    if wanted:
        seen = _load_entry_points(base, wanted, where, failures)
        missing = wanted - seen
        if missing:
            raise LookupError(f"mockkernel plugin(s) not installed: {', '.join(sorted(missing))}")
    base.check_pending()
    for name, why in failures:  # one line each: no source line of ours under it
        warnings.warn_explicit(
            f"mockkernel plugin {name!r} not loaded: {why}",
            PluginNotLoaded,
            filename=f"<mockkernel plugin {name}>",
            lineno=0,
        )
    return _Discovery(base, where, tuple(failures))


def _discovery() -> _Discovery:
    return _discovered(os.environ.get(AUTOLOAD_ENV, ""), os.environ.get(_NAMES_ENV, ""))


def get_plugin_manager(extra: Sequence[object] = ()) -> pluggy.PluginManager:
    """The manager for a boot: environment plugins plus ``extra`` objects/modules."""
    base = _discovery().pm
    if not extra:
        return base
    pm = _new_manager()
    for name, plugin in base.list_name_plugin():
        pm.register(plugin, name=name)
    for plugin in extra:
        if pm.is_registered(plugin):
            continue
        _register(pm, plugin)
    try:
        pm.check_pending()
    except PluginError:
        raise
    except pluggy.PluginValidationError as e:
        raise PluginError(e.plugin, f"{describe(e.plugin)}: {' '.join(str(e).split())}") from None
    return pm


def plugin_names(pm: pluggy.PluginManager) -> list[tuple[str, str]]:
    """(name, where) for each registered plugin, for ``mockkernel plugins``."""
    where = _discovery().where
    return [
        (str(name), where.get(str(name), "passed to boot()")) for name, _ in pm.list_name_plugin()
    ]


def plugin_failures() -> list[tuple[str, str]]:
    """(entry-point name, one-line reason) for each plugin of the environment that was
    skipped because it failed to import or to register."""
    return list(_discovery().failures)
