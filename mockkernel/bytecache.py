"""A bytecode cache of mockkernel's own modules that works whatever the bytecode setting.

Python keeps compiled modules in ``__pycache__`` beside the sources -- unless
``PYTHONDONTWRITEBYTECODE=1`` (tox sets it, so do many CI images and containers) or
``-B`` says not to, or the source tree is read-only.  Then every interpreter compiles
the ~200 modules a boot needs again, which was most of a first test's time.

:func:`install` (run by ``import mockkernel``) puts a finder in front of
``sys.meta_path`` for the modules named ``mockkernel`` / ``mockkernel.*`` and the bundled
drivers (``mockkernel_*``).  It finds them as the path finder does and loads them with
:class:`CachingLoader`, which keeps each module's marshalled code under a cache directory
of the user's instead of ``__pycache__``:

* where: ``$MOCKKERNEL_BYTECODE_CACHE``, else ``$XDG_CACHE_HOME/mockkernel/bytecode``,
  else ``~/.cache/mockkernel/bytecode``; one directory per interpreter
  (``sys.implementation.cache_tag``, and the ``-O`` level), one file per source path;
* valid while the header matches: the interpreter's magic number, the source's
  ``st_mtime_ns`` and size (as a ``__pycache__`` file is); anything else compiles the
  source again and rewrites the entry;
* safe for concurrent writers (xdist workers, parallel tox envs): an entry is written to
  a private temporary file and renamed into place (atomic); a failed write (a read-only
  home) only means no cache;
* off: ``MOCKKERNEL_BYTECODE_CACHE=off`` (or ``0``/``no``) leaves importing to Python.

The methods ``dataclasses`` generates while mockkernel's modules are imported are kept
there too (:func:`import_burst`), and the plugin discovery keeps its answer in the same
directory
(:func:`mockkernel.plugins._entry_points`), and is switched off with it.

Why the dataclass methods are taken this way, and why it is safe.  ``dataclasses`` writes
each class's ``__init__``/``__repr__``/``__eq__``/... as source text and compiles it with
``exec`` at every import (~290 compiles for mockkernel's ~75 dataclasses: the larger part
of executing its modules, paid by every fresh interpreter's first test, whose target is
150 ms; ``benchmarks/run.py``'s "fresh interpreter" rows).  ``dataclasses`` calls
``exec`` as a global name, so for the duration of :func:`import_burst` only, a module
global ``exec`` in ``dataclasses``' namespace (it has none of its own: the builtin is
used) serves those calls from the cache.  What makes that safe:

* transparent: the cache is keyed by the exact source text, and a miss is compiled as the
  builtin would (``compile(text, "<string>", "exec")``, then the builtin ``exec`` with
  the globals and namespace ``dataclasses`` passed), so a class gets the same code
  whether it came from the cache, from a miss or from outside any burst;
* scoped and restored: the name is set when a burst starts and deleted when it ends, in a
  ``finally`` (an exception inside the burst restores it too); a burst inside a burst
  changes nothing; a name some other code put there first is left alone (the burst then
  caches nothing), and one put there during the burst is not deleted;
* threads: setting and deleting one dict entry are atomic under the GIL; a dataclass that
  other code defines in another thread during a burst goes through the same lookup and
  gets the same code (its generated text is kept in the cache file with mockkernel's:
  method text only -- names of fields and types, never values -- and only while a burst
  runs);
* nothing else of ``dataclasses`` is touched, and if a future ``dataclasses`` stops
  looking ``exec`` up as a global, the burst merely caches nothing.

The alternatives were not taken because they mean more to keep in step: methods written
out ahead of time (generated sources to regenerate with every field change), or plain
``__slots__`` classes in place of ~75 dataclasses (the same text by hand).
``tests/core/test_core_bytecache.py`` checks the restore (also after an error and for
nested bursts), the foreign ``exec``, and dataclasses made by another thread during
bursts.

Not cached: ``mockkernel.testing`` (pytest rewrites the asserts of a plugin's modules;
they stay pytest's), and anything that is not a plain source file.  The finder holds only
its directory: no kernel state.
"""

from __future__ import annotations

import _io
import builtins
import contextlib
import gc
import importlib.machinery
import importlib.util
import marshal
import os
import sys
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from types import CodeType, ModuleType

__all__ = [
    "CACHE_ENV",
    "CachingLoader",
    "MockkernelFinder",
    "cache_dir",
    "collector_paused",
    "import_burst",
    "install",
]

CACHE_ENV = "MOCKKERNEL_BYTECODE_CACHE"
_OFF = frozenset({"off", "0", "no", "false"})
#: header of an entry: magic number, then source mtime_ns and size as 8-byte little-endian
_MAGIC = importlib.util.MAGIC_NUMBER
# the real calls, taken before any redirection can replace them (a module imported
# lazily while a kernel is installed must not go through it)
_stat, _open, _close, _write, _replace, _unlink = (
    os.stat,
    os.open,
    os.close,
    os.write,
    os.replace,
    os.unlink,
)


def cache_dir() -> str | None:
    """The directory of this interpreter's entries, or ``None`` when switched off."""
    where = os.environ.get(CACHE_ENV, "")
    if where.lower() in _OFF:
        return None
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "mockkernel", "bytecode")
    tag = sys.implementation.cache_tag or "python"
    if sys.flags.optimize:  # -O strips asserts at compile time: its code is other code
        tag += f"-opt{sys.flags.optimize}"
    return os.path.join(where, tag)


def _header(st: os.stat_result) -> bytes:
    return _MAGIC + st.st_mtime_ns.to_bytes(8, "little") + st.st_size.to_bytes(8, "little")


class CachingLoader(importlib.machinery.SourceFileLoader):
    """A source loader whose code objects come from, and go to, the cache directory."""

    def __init__(self, fullname: str, path: str, directory: str) -> None:
        super().__init__(fullname, path)
        self.directory = directory

    def entry(self, source_path: str) -> str:
        """The cache file of ``source_path``: its absolute path, ``/`` spelled ``%``."""
        if not os.path.isabs(source_path):  # (from a relative sys.path entry)
            source_path = os.path.abspath(source_path)
        name = source_path.replace("%", "%%").replace(os.sep, "%")
        if len(name) > 240:  # a file name's limit is 255 bytes: keep the end, hash the rest
            import zlib

            name = f"{zlib.crc32(name.encode()):08x}{name[-230:]}"
        return os.path.join(self.directory, name + "c")

    def get_code(self, fullname: str) -> CodeType | None:
        source_path = self.get_filename(fullname)
        try:
            st = _stat(source_path)
        except OSError:
            return super().get_code(fullname)
        header = _header(st)
        entry = self.entry(source_path)
        try:
            with _io.FileIO(entry, "r") as f:
                data = f.readall()
        except OSError:
            data = b""
        if data[: len(header)] == header:
            try:
                code = marshal.loads(memoryview(data)[len(header) :])
            except (EOFError, ValueError, TypeError):
                pass
            else:
                if isinstance(code, CodeType):
                    return code
        code = self.source_to_code(self.get_data(source_path), source_path)
        self._store(entry, header + marshal.dumps(code))
        return code

    def _store(self, entry: str, data: bytes) -> None:
        _store(entry, data)


def _store(entry: str, data: bytes) -> None:
    """Write ``entry`` atomically: a private temporary file renamed into place (an
    error, a read-only directory, only means nothing is stored)."""
    tmp = f"{entry}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        fd = _open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[_write(fd, view) :]
        finally:
            _close(fd)
        _replace(tmp, entry)
    except OSError:
        with contextlib.suppress(OSError):
            _unlink(tmp)


def _ours(fullname: str) -> bool:
    if fullname == "mockkernel.testing" or fullname.startswith("mockkernel.testing."):
        return False
    return fullname.startswith("mockkernel")


class MockkernelFinder:
    """The meta-path finder of mockkernel's modules (see the module docstring)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not _ours(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        origin = spec.origin
        if origin is None:
            return spec
        loader = CachingLoader(fullname, origin, self.directory)
        spec.loader = loader
        spec.cached = loader.entry(origin)
        return spec

    def invalidate_caches(self) -> None:
        """Nothing of its own to forget (``importlib.invalidate_caches``)."""


def install() -> MockkernelFinder | None:
    """Put the finder first in ``sys.meta_path`` (once); ``None`` when switched off."""
    for finder in sys.meta_path:
        if isinstance(finder, MockkernelFinder):
            return finder
    directory = cache_dir()
    if directory is None:
        return None
    finder = MockkernelFinder(directory)
    sys.meta_path.insert(0, finder)
    return finder


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a burst of imports (``import mockkernel``,
    the plugins' first import): they make tens of thousands of objects that all stay
    alive (classes, functions, tables), so a collection in between finds nothing and
    the collections cost ~7 % of a fresh interpreter's first test.  Restored after,
    whatever the block did; a collector already off stays off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _DataclassCode:
    """The methods ``dataclasses`` writes for each dataclass (``__init__``, ``__repr__``,
    ``__eq__``, ...), compiled once and kept in the cache: ``dataclasses`` makes them by
    ``exec`` of source text at every import, which was the larger part of executing
    mockkernel's modules (~75 dataclasses, ~290 small compiles).  Used only inside
    :func:`import_burst`, as the ``exec`` that ``dataclasses`` calls."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stored: dict[str, CodeType] = {}
        try:
            with _io.FileIO(path, "r") as f:
                data = f.readall()
            if data[: len(_MAGIC)] == _MAGIC:
                loaded = marshal.loads(memoryview(data)[len(_MAGIC) :])
                if isinstance(loaded, dict):
                    self.stored = loaded
        except (OSError, EOFError, ValueError, TypeError):
            pass
        #: the entries this burst used: what the file will hold (it does not grow stale)
        self.used: dict[str, CodeType] = {}

    def exec(self, source: object, globals: object = None, locals: object = None, /) -> None:
        """``exec`` as ``dataclasses`` calls it: ``(text, globals, namespace)``."""
        if globals is None:  # (not how dataclasses calls it: the caller's namespaces)
            frame = sys._getframe(1)
            globals, locals = frame.f_globals, frame.f_locals if locals is None else locals
        if isinstance(source, str):
            code = self.stored.get(source)
            if code is None:
                code = compile(source, "<string>", "exec", dont_inherit=True)
            self.used[source] = code
            source = code
        builtins.exec(source, globals, locals)  # type: ignore[arg-type]

    def save(self) -> None:
        if self.used.keys() == self.stored.keys():
            return
        _store(self.path, _MAGIC + marshal.dumps(self.used))


@contextlib.contextmanager
def import_burst(label: str) -> Iterator[None]:
    """A burst of imports of mockkernel's modules (``import mockkernel``; the plugins'
    first import): the collector paused (:func:`collector_paused`) and, while the cache
    is on, the code ``dataclasses`` generates taken from it (``<label>.dataclasses``).
    ``dataclasses`` finds the cache's ``exec`` as a module global for the burst only;
    the code is what its own ``exec`` of the same text makes."""
    directory = cache_dir()
    with collector_paused():
        import dataclasses

        ns = vars(dataclasses)
        if directory is None or "exec" in ns:  # (off, or a burst inside a burst)
            yield
            return
        cache = _DataclassCode(os.path.join(directory, f"{label}.dataclasses"))
        ns["exec"] = cache.exec
        try:
            yield
        finally:
            if ns.get("exec") == cache.exec:
                del ns["exec"]
        cache.save()
