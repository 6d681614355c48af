"""No module-level mutable state in ``mockkernel/`` or ``plugins/``: every table belongs
to a kernel (a subsystem, a device, a file), so kernels stay independent and a shut-down
kernel is garbage.

Checked twice.  :func:`test_no_module_level_mutable_state` reads the source (AST), so a
new offender fails here before it ships:

* a ``global`` statement;
* a module-level name bound to a stateful object (``WeakKeyDictionary``, ``threading.local``
  and its subclasses, ``itertools.count``, a lock, a ``deque``, a ``defaultdict``, ..., or
  an instance of a class of the same module whose ``__init__`` sets attributes);
* a module-level name bound to a mutable container (``{}``, ``[]``, ``set()``, ...) unless
  it is a constant: an UPPER_CASE name the module never mutates (a lookup table);
* a class attribute bound to a mutable container that the module mutates through that
  attribute name (a table shared by every kernel);
* a module-level function memoised with ``functools.cache``/``lru_cache``.

And :func:`test_no_mutable_value_is_bound_at_module_level` imports every module of
``mockkernel`` and of the bundled plugins and looks at what each name the module binds at
its top level holds: a mutable container (``dict``, ``list``, ``set``, ``bytearray``,
``deque``, weak collections, ...) or an instance holding state is an offence whatever the
name's case; constants are immutable: ``tuple``/``frozenset``/``MappingProxyType``
(checked inside: a tuple of lists is not a constant), frozen dataclasses (their fields
checked), enums, ``TracePoint``s, ``struct.Struct`` codecs, compiled patterns, typing
objects, ctypes prototypes, classes and functions, and stateless singletons (an ops table
instance or a sentinel: no instance attributes).

What may stay is listed in :data:`ALLOWED`, each with the reason: process-wide facts
(this Python process's own address space) and caches of immutable facts that hold no
kernel.  Every entry must still be found by one of the two checks.
"""

from __future__ import annotations

import ast
import collections
import ctypes
import dataclasses
import enum
import importlib
import pkgutil
import re
import struct
import threading
import types
import typing
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockkernel.trace import TracePoint

ROOT = Path(__file__).resolve().parents[2]
TREES = ("mockkernel", "plugins")

#: (path relative to the repository, name) -> why it may stay
ALLOWED: dict[tuple[str, str], str] = {
    ("mockkernel/uaccess.py", "_cpu"): (
        "per-CPU (per-thread) record of the current address space: Linux's per-CPU current"
    ),
    ("mockkernel/uaccess.py", "LOCAL"): (
        "this Python process's own address space: a process-wide fact, holds no kernel"
    ),
    ("mockkernel/mm.py", "_load_libc"): "libc's handle, loaded once: an immutable fact",
    ("mockkernel/mm.py", "_mmap_layout_ok"): (
        "whether this interpreter's mmap objects have the layout the direct map reads: "
        "an immutable fact of the interpreter, checked once"
    ),
    ("mockkernel/pci/dev.py", "_CONFIG_IMAGES"): (
        "bounded memo of a pure function (power-on config images): bytes, no kernel"
    ),
    ("mockkernel/lifecycle.py", "_parse_default"): (
        "the default topology parsed once: deeply frozen, shared by kernels, holds none"
    ),
    ("mockkernel/process.py", "_bytes_shown"): (
        "bounded memo of a pure function (a trace event's '<n bytes>'): strings, no kernel"
    ),
    ("mockkernel/process.py", "_shown_kind"): (
        "bounded memo of a pure function (how a trace event shows a type): strings, no kernel"
    ),
    ("mockkernel/rdma/uverbs.py", "_uapi_for"): (
        "bounded memo of a pure function (a device's uAPI from the ops it has): frozen "
        "method tables and handler functions, no device, no kernel"
    ),
    ("mockkernel/plugins.py", "_discovered"): (
        "plugin discovery from package metadata, once per environment: code, no kernel"
    ),
    ("mockkernel/userspace/rebind.py", "_SCAN"): (
        "which loaded modules bind which real functions: facts about this interpreter's "
        "modules, cached so an installation does not rescan them; holds no kernel"
    ),
    ("mockkernel/traceview/decode.py", "_names"): (
        "ioctl numbers and flag/enum names read from mockkernel.uapi and the host's os/"
        "fcntl/mmap once, kept in read-only mappings: immutable facts, no kernel"
    ),
    ("plugins/mockkernel_vfio_pci/config.py", "UNASSIGNED_PERMS"): (
        "Linux's static perm_bits (vfio_pci_config.c): built at import, never changed"
    ),
    ("plugins/mockkernel_vfio_pci/config.py", "DIRECT_RO_PERMS"): (
        "Linux's static perm_bits (vfio_pci_config.c): built at import, never changed"
    ),
    ("mockkernel/dma_buf/fence.py", "_STUB"): (
        "Linux's dma_fence_stub: signalled at import, after which no call changes it "
        "(signal does nothing, set_error is refused, deadlines are ignored): a constant"
    ),
    ("plugins/mockkernel_vfio_pci/config.py", "CAP_PERMS"): (
        "Linux's static perm_bits by capability id (read-only mapping of Perm tables "
        "built at import, never changed)"
    ),
    ("plugins/mockkernel_vfio_pci/config.py", "ECAP_PERMS"): (
        "Linux's static perm_bits by extended capability id (as CAP_PERMS)"
    ),
    ("plugins/mockkernel_vfio_pci/config.py", "PERMS"): (
        "CAP_PERMS, ECAP_PERMS and UNASSIGNED_PERMS by name (read-only mappings)"
    ),
}

_STATEFUL_CALLS = {
    "WeakKeyDictionary",
    "WeakValueDictionary",
    "WeakSet",
    "local",
    "count",
    "Lock",
    "RLock",
    "Condition",
    "Event",
    "Semaphore",
    "deque",
    "defaultdict",
    "OrderedDict",
    "Counter",
    "ChainMap",
}
_CONTAINER_CALLS = {"dict", "list", "set", "bytearray"}
_MUTATORS = {
    "append",
    "extend",
    "insert",
    "pop",
    "popitem",
    "remove",
    "clear",
    "update",
    "setdefault",
    "add",
    "discard",
    "sort",
    "reverse",
    "__setitem__",
    "__delitem__",
}
_MEMO = {"cache", "lru_cache"}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            yield rel, ast.parse(path.read_text(), rel)


def _call_name(node: ast.expr) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _is_container(node: ast.expr) -> bool:
    if isinstance(node, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    return _call_name(node) in _CONTAINER_CALLS


def _stateful_classes(module: ast.Module) -> set[str]:
    """Classes of this module whose instances hold state: subclasses of
    ``threading.local``, and classes (or same-module bases) whose ``__init__`` sets
    attributes on ``self``.  Ops tables (no ``__init__``) are not state."""
    classes = {n.name: n for n in module.body if isinstance(n, ast.ClassDef)}

    def base_names(cls: ast.ClassDef) -> list[str]:
        return [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in cls.bases]

    def sets_self(cls: ast.ClassDef) -> bool:
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                for node in ast.walk(fn):
                    if (
                        isinstance(node, ast.Attribute)
                        and isinstance(node.ctx, ast.Store)
                        and isinstance(node.value, ast.Name)
                        and node.value.id == "self"
                    ):
                        return True
        return False

    def stateful(name: str, seen: frozenset[str] = frozenset()) -> bool:
        cls = classes.get(name)
        if cls is None or name in seen:
            return False
        bases = base_names(cls)
        if "local" in bases or sets_self(cls):
            return True
        return any(stateful(b, seen | {name}) for b in bases)

    return {name for name in classes if stateful(name)}


def _top_level(module: ast.Module) -> Iterator[ast.stmt]:
    """Statements run at import: the module body, including its ``if``/``try`` blocks."""
    todo = list(module.body)
    while todo:
        node = todo.pop(0)
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            todo[:0] = [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                todo[:0] = handler.body


def _bindings(stmts: Iterator[ast.stmt] | list[ast.stmt]) -> Iterator[tuple[str, ast.expr]]:
    for node in stmts:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and isinstance(node.target, ast.Name)
        ):
            yield node.target.id, node.value


def _mutated(module: ast.Module, name: str, *, attribute: bool) -> bool:
    """Whether the module mutates ``name`` (a bare name, or ``x.name`` for ``attribute``)."""

    def refers(node: ast.expr) -> bool:
        if attribute:
            return isinstance(node, ast.Attribute) and node.attr == name
        return isinstance(node, ast.Name) and node.id == name

    for node in ast.walk(module):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, (ast.Store, ast.Del))
            and refers(node.value)
        ):
            return True
        if isinstance(node, ast.AugAssign) and refers(node.target):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MUTATORS
            and refers(node.func.value)
        ):
            return True
    return False


def _offences(rel: str, module: ast.Module) -> Iterator[tuple[str, str]]:
    """(name, what) for each piece of module-level mutable state in one source file."""
    for node in ast.walk(module):
        if isinstance(node, ast.Global):
            for name in node.names:
                yield name, "a global statement"
    stateful = _stateful_classes(module)
    for name, value in _bindings(_top_level(module)):
        if name == "__all__":
            continue
        call = _call_name(value)
        if call in _STATEFUL_CALLS or call in stateful:
            yield name, f"module-level stateful object ({call}())"
        elif _is_container(value):
            if not name.lstrip("_").isupper():
                yield name, "module-level mutable container"
            elif _mutated(module, name, attribute=False):
                yield name, "module-level table that the module mutates"
    for node in _top_level(module):
        if isinstance(node, ast.ClassDef):
            for name, value in _bindings(node.body):
                if _is_container(value) and _mutated(module, name, attribute=True):
                    yield f"{node.name}.{name}", "class-level table that the module mutates"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                attr = target.attr if isinstance(target, ast.Attribute) else None
                if (attr or getattr(target, "id", None)) in _MEMO:
                    yield node.name, "a memoised module-level function (a hidden cache)"


def test_no_module_level_mutable_state() -> None:
    found = []
    for rel, module in _sources():
        for name, what in _offences(rel, module):
            if (rel, name) not in ALLOWED:
                found.append(f"{rel}: {name}: {what}")
    assert found == [], "module-level mutable state (give it an owner):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "offender"),
    [
        ("_cores = {}\n", "_cores"),
        ("import weakref\n_c = weakref.WeakKeyDictionary()\n", "_c"),
        ("TABLE = {}\ndef f(k):\n    TABLE[k] = 1\n", "TABLE"),
        ("CACHE: list[int] = []\ndef f():\n    CACHE.append(1)\n", "CACHE"),
        ("x = None\ndef f():\n    global x\n    x = 1\n", "x"),
        ("import itertools\n_ids = itertools.count()\n", "_ids"),
        ("import threading\nclass C(threading.local):\n    pass\n_cpu = C()\n", "_cpu"),
        ("import functools\n@functools.cache\ndef f():\n    return 1\n", "f"),
        ("class Ops:\n    seen = {}\n    def f(self):\n        self.seen[1] = 2\n", "Ops.seen"),
        ("try:\n    _m = []\nexcept ImportError:\n    pass\n", "_m"),
        (
            "class T:\n    def __init__(self):\n        self.n = 0\n"
            + "class U(T):\n    pass\n_t = U()\n",
            "_t",
        ),
    ],
)
def test_the_check_catches(source: str, offender: str) -> None:
    names = [name for name, _ in _offences("x.py", ast.parse(source))]
    assert offender in names


@pytest.mark.parametrize(
    "source",
    [
        "__all__ = ['a']\n",
        "TABLE = {1: 2}\ndef f(k):\n    return TABLE[k]\n",
        "class Ops:\n    ioctls = {1: print}\n",
        "def f():\n    cache = {}\n    cache[1] = 2\n",
        "_NAMES = ('a', 'b')\n",
        "class Ops:\n    name = 'x'\nops = Ops()\n",
    ],
)
def test_the_check_allows_constants_and_locals(source: str) -> None:
    assert list(_offences("x.py", ast.parse(source))) == []


# -- the same, at run time: what each module-level name holds ---------------------------------

#: what is never state: code, immutable scalars, typing objects (their members are checked
#: where they have any: see :func:`_mutable`)
_CODE_OR_SCALAR: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    range,
    type,  # classes (their class attributes are the AST check's)
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    staticmethod,
    classmethod,
    property,
    enum.Enum,
    struct.Struct,  # a codec: its format is fixed
    re.Pattern,
    TracePoint,  # a declaration: name and field names
    ctypes._CFuncPtr,  # a C function's prototype bound to a library: code
    typing.TypeVar,
    typing.ParamSpec,
    types.GenericAlias,
    types.UnionType,
    type(typing.Any),
    type(typing.Union[int, str]),  # noqa: UP007 (the typing._UnionGenericAlias type)
    type(typing.Callable[[], None]),
    type(collections.abc.Callable[[], None]),
)
#: mutable containers, whatever the name's case
_CONTAINERS: tuple[type, ...] = (
    dict,
    list,
    set,
    bytearray,
    memoryview,
    collections.deque,
    weakref.WeakKeyDictionary,
    weakref.WeakValueDictionary,
    weakref.WeakSet,
    threading.local,
)
#: objects of libraries the package binds at module level that hold no kernel state:
#: pluggy's hook markers (a project name), pytest's stash keys (identity only)
_LIBRARY_MARKERS = ("pluggy._decorators", "_pytest.stash")


def _package_modules() -> Iterator[types.ModuleType]:
    """Every module of ``mockkernel`` and of the bundled plugins, imported."""
    plugins = (p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file())
    names = ["mockkernel", *sorted(plugins)]
    for name in names:
        pkg = importlib.import_module(name)
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, name + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # (runs the CLI when imported)
            yield importlib.import_module(info.name)


def _bound_names(module: ast.Module) -> set[str]:
    """The names a module binds at its top level (imports excluded: the owner checks those)."""
    names = set()
    for node in _top_level(module):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names - {"__all__"}


def _mutable(value: object, depth: int = 0) -> str | None:
    """Why ``value`` is state (``None``: a constant)."""
    if depth > 6 or isinstance(value, _CODE_OR_SCALAR):
        return None
    if isinstance(value, memoryview) and value.readonly:
        return None
    if isinstance(value, _CONTAINERS) or type(value).__module__ == "collections":
        return f"a mutable {type(value).__name__}"
    if type(value).__module__ in _LIBRARY_MARKERS:
        return None
    members: typing.Iterable[object] = ()
    if isinstance(value, (tuple, frozenset)):
        members = value
    elif isinstance(value, types.MappingProxyType):
        members = [*value.keys(), *value.values()]
    elif dataclasses.is_dataclass(value):
        if not value.__dataclass_params__.frozen:  # type: ignore[union-attr]
            return f"an instance of the mutable dataclass {type(value).__qualname__}"
        members = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        state = getattr(value, "__dict__", None)
        slots = [
            s
            for cls in type(value).__mro__
            for s in getattr(cls, "__slots__", ())
            if s != "__dict__"
        ]
        if state or any(hasattr(value, s) for s in slots):
            return f"an instance of {type(value).__qualname__} holding state"
        return None  # a stateless singleton: an ops table, a sentinel
    for member in members:
        why = _mutable(member, depth + 1)
        if why is not None:
            return f"{why} inside a {type(value).__name__}"
    return None


def _runtime_offences() -> Iterator[tuple[str, str, str]]:
    """(path, name, what) for each module-level name bound to state, at run time."""
    for module in _package_modules():
        path = Path(module.__file__ or "").resolve()
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), rel)
        for name in sorted(_bound_names(tree)):
            if name not in vars(module):
                continue  # (deleted after use)
            why = _mutable(vars(module)[name])
            if why is not None:
                yield rel, name, why


def test_no_mutable_value_is_bound_at_module_level() -> None:
    found = [
        f"{rel}: {name}: {what}"
        for rel, name, what in _runtime_offences()
        if (rel, name) not in ALLOWED
    ]
    assert found == [], "module-level mutable state (give it an owner):\n" + "\n".join(found)


def test_every_allowed_entry_is_still_needed() -> None:
    seen = {(rel, name) for rel, module in _sources() for name, _ in _offences(rel, module)}
    seen |= {(rel, name) for rel, name, _ in _runtime_offences()}
    assert sorted(set(ALLOWED) - seen) == []


@pytest.mark.parametrize(
    "value",
    [
        {},
        [1],
        {1},
        bytearray(2),
        collections.deque(),
        collections.defaultdict(list),
        weakref.WeakKeyDictionary(),
        threading.local(),
        (1, [2]),
        types.MappingProxyType({1: {2: 3}}),
        ((1, types.MappingProxyType({1: [2]})),),
    ],
)
def test_the_runtime_check_catches_containers(value: object) -> None:
    assert _mutable(value) is not None


def test_the_runtime_check_catches_instances_holding_state() -> None:
    @dataclasses.dataclass
    class Loose:
        n: int = 0

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        table: dict[int, int]

    class Counter:
        def __init__(self) -> None:
            self.n = 0

    class Slotted:
        __slots__ = ("n",)

        def __init__(self) -> None:
            self.n = 0

    for value in (Loose(), Frozen({}), Counter(), Slotted()):
        assert _mutable(value) is not None, value


def test_the_runtime_check_allows_constants() -> None:
    @dataclasses.dataclass(frozen=True)
    class Frozen:
        names: tuple[str, ...]

    class Ops:
        name = "x"

    class Color(enum.Enum):
        RED = 1

    for value in (
        (1, "a", b"b"),
        frozenset({1}),
        types.MappingProxyType({1: (2, 3)}),
        Frozen(("a",)),
        Ops(),
        object(),
        Color.RED,
        struct.Struct("<I"),
        re.compile("x"),
        TracePoint("x.y", "a"),
        typing.TypeVar("T"),
        dict[int, str],
        int | None,
        len,
        Ops,
    ):
        assert _mutable(value) is None, value
