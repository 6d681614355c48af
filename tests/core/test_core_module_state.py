"""No module-level mutable state in ``mockkernel/`` or ``plugins/``: every table belongs
to a kernel (a subsystem, a device, a file), so kernels stay independent and a shut-down
kernel is garbage.

Read from the source (AST), so a new offender fails here before it ships:

* a ``global`` statement;
* a module-level name bound to a stateful object (``WeakKeyDictionary``, ``threading.local``
  and its subclasses, ``itertools.count``, a lock, a ``deque``, a ``defaultdict``, ..., or
  an instance of a class of the same module whose ``__init__`` sets attributes);
* a module-level name bound to a mutable container (``{}``, ``[]``, ``set()``, ...) unless
  it is a constant: an UPPER_CASE name the module never mutates (a lookup table);
* a class attribute bound to a mutable container that the module mutates through that
  attribute name (a table shared by every kernel);
* a module-level function memoised with ``functools.cache``/``lru_cache``.

What may stay is listed in :data:`ALLOWED`, each with the reason: process-wide facts
(this Python process's own address space) and caches of immutable facts that hold no
kernel.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    seen = set()
    for rel, module in _sources():
        for name, what in _offences(rel, module):
            seen.add((rel, name))
            if (rel, name) not in ALLOWED:
                found.append(f"{rel}: {name}: {what}")
    assert found == [], "module-level mutable state (give it an owner):\n" + "\n".join(found)
    stale = sorted(set(ALLOWED) - seen)
    assert stale == [], f"allow-list entries that no longer exist: {stale}"


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
