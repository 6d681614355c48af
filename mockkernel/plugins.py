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

import contextlib
import functools
import importlib
import inspect
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, ModuleType

import pluggy

import mockkernel.hookspecs as hookspecs

from .bytecache import import_burst

__all__ = [
    "AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "NAMES_ENV",
    "PluginError",
    "check_plugin",
    "get_plugin_manager",
    "plugin_failures",
    "plugin_names",
]

ENTRY_POINT_GROUP = "mockkernel"
AUTOLOAD_ENV = "MOCKKERNEL_DISABLE_PLUGIN_AUTOLOAD"
NAMES_ENV = "MOCKKERNEL_PLUGINS"


class PluginError(pluggy.PluginValidationError):
    """A plugin that cannot work as written; the message is one line naming the plugin,
    the class (or module) and what is wrong."""

    def __init__(self, plugin: object, message: str) -> None:
        super().__init__(plugin, message)


#: the hook names of :mod:`mockkernel.hookspecs`, with their argument names
_HOOKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        name: tuple(inspect.signature(fn).parameters)
        for name, fn in vars(hookspecs).items()
        if name.startswith("mockkernel_") and callable(fn)
    }
)


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
    for ep in _entry_points():
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
        where[ep.name] = ep.where
    return seen


@dataclass(frozen=True)
class _EntryPoint:
    """One entry point of the group: its name, ``module[:attr]`` value and where from."""

    name: str
    value: str
    #: ``"<distribution> <version>"`` (``value`` when no distribution is known)
    where: str

    def load(self) -> object:
        """Import the module and follow the attributes, as ``EntryPoint.load`` does."""
        module, _, attrs = self.value.partition("[")[0].partition(":")
        obj: object = importlib.import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def _entry_points() -> list[_EntryPoint]:
    """The group's entry points, as ``importlib.metadata.entry_points`` lists them.

    Importing ``importlib.metadata`` (it brings ``email``, ``zipfile``, ``csv``,
    ``importlib.resources``, ``tempfile``...) and scanning every distribution was a
    sixth of a fresh interpreter's first test, so the answer is kept beside the bytecode
    cache (:mod:`mockkernel.bytecache`; off with it) with what it depends on: ``sys.path``,
    the metadata directories in each of its entries (a distribution installed, removed
    or upgraded there changes them) and the modification time of the
    ``entry_points.txt`` of each distribution listed.  An ``entry_points.txt`` rewritten
    in place that did not list the group before is not noticed until a reinstall under
    another version (or ``MOCKKERNEL_BYTECODE_CACHE=off``)."""
    cache = _entry_points_cache()
    if cache is not None:
        found = _read_entry_points(cache)
        if found is not None:
            return found
    import importlib.metadata

    records: list[_EntryPoint] = []
    sources: list[str] | None = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        where = f"{dist.name} {dist.version}" if dist is not None else ep.value
        records.append(_EntryPoint(ep.name, ep.value, where))
        path = getattr(dist, "_path", None)  # (a dist-info directory; else: no cache)
        if sources is not None and isinstance(path, (str, os.PathLike)):
            sources.append(os.path.join(os.fspath(path), "entry_points.txt"))
        else:
            sources = None
    if cache is not None and sources is not None:
        _write_entry_points(cache, records, sources)
    return records


def _entry_points_cache() -> str | None:
    from .bytecache import cache_dir

    directory = cache_dir()
    if directory is None:
        return None
    import zlib

    try:  # ('' on sys.path is the current directory: one file per directory)
        cwd = os.getcwd() if "" in sys.path else ""
    except OSError:
        return None
    key = zlib.crc32(repr((sys.path, cwd)).encode())
    return os.path.join(directory, f"entry-points-{ENTRY_POINT_GROUP}-{key:08x}.json")


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return None


def _distributions_in(entry: str) -> list[str] | int | None:
    """What a ``sys.path`` entry says about the distributions installed in it: the names
    of its metadata directories (a directory; not its mtime, which any file written
    there changes: the current directory's), else its mtime (a zip), else ``None``."""
    try:
        names = os.listdir(entry or ".")
    except NotADirectoryError:
        return _mtime(entry)
    except OSError:
        return None
    return sorted(n for n in names if n.endswith((".dist-info", ".egg-info", ".egg")))


def _fingerprint(sources: Sequence[str]) -> list[list[object]]:
    out: list[list[object]] = [[p, _distributions_in(p)] for p in sys.path]
    return out + [[p, _mtime(p)] for p in sources]


def _read_entry_points(cache: str) -> list[_EntryPoint] | None:
    import json

    try:
        with open(cache, "rb") as f:
            data = json.loads(f.read())
        if data["path"] != sys.path or data["fingerprint"] != _fingerprint(data["sources"]):
            return None
        return [_EntryPoint(str(n), str(v), str(w)) for n, v, w in data["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_entry_points(cache: str, records: list[_EntryPoint], sources: list[str]) -> None:
    """Written as the bytecode cache's entries are: a private file renamed into place."""
    import json

    data = {
        "path": sys.path,
        "sources": sources,
        "fingerprint": _fingerprint(sources),
        "entry_points": [[r.name, r.value, r.where] for r in records],
    }
    tmp = f"{cache}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(data))
        os.replace(tmp, cache)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


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
        with import_burst("plugins"):  # (the plugins' first import: see bytecache.py)
            _load_entry_points(base, None, where, failures)
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    if wanted:
        with import_burst("plugins"):
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
    return _discovered(os.environ.get(AUTOLOAD_ENV, ""), os.environ.get(NAMES_ENV, ""))


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
