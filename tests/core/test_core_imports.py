"""The import graph of ``mockkernel/`` has no cycle through the kernel context.

Every import counts -- module-level, function-level and ``TYPE_CHECKING`` ones -- as a
reader (and a type checker) follows them all.  Layers below :mod:`mockkernel.kernel` type
against :class:`mockkernel.context.KernelContext` (or ``process.TaskContext``) instead of
importing it, so ``kernel.py`` sits on top of what it composes, and ``context.py`` at the
bottom imports nothing of the package.

``from . import x`` is an edge to the package as well as to ``x`` (the package's
``__init__`` runs first), as Python executes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "mockkernel"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (packages by their
    ``__init__``)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imported(current: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Every module name an import statement may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = current.split(".")
        base = parts if is_package else parts[:-1]
        base = base[: len(base) - node.level + 1]
        stem = ".".join([*base, node.module] if node.module else base)
    else:
        stem = node.module or ""
    return [stem] + [f"{stem}.{alias.name}" for alias in node.names]


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the package's modules it imports (any import anywhere in the file)."""
    files = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(
                    m for m in _imported(name, is_package, node) if m in files and m != name
                )
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, todo = work[-1]
            if todo:
                w = todo.pop()
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, sorted(graph[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def cycle_through(graph: dict[str, set[str]], module: str) -> set[str]:
    """The modules on an import cycle with ``module`` (empty: none)."""
    for comp in strongly_connected(graph):
        if module in comp and len(comp) > 1:
            return comp
    return set()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, PACKAGE)


@pytest.mark.parametrize("hub", ["mockkernel.kernel", "mockkernel.context"])
def test_no_import_cycle_through_the_kernel_context(graph: dict[str, set[str]], hub: str) -> None:
    assert hub in graph
    assert cycle_through(graph, hub) == set()


def test_the_context_imports_nothing_at_run_time_but_leaves() -> None:
    """``context.py`` is the bottom of the graph: whatever it names for the type checker,
    it imports no module that imports it back (checked above), and nothing at run time."""
    tree = ast.parse((ROOT / "mockkernel" / "context.py").read_text())
    runtime = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level and node.module != "__future__"
    ]
    assert runtime == []


def test_no_layer_below_the_kernel_imports_it(graph: dict[str, set[str]]) -> None:
    """What ``kernel.py`` builds on (all it reaches) never names it, not even for types."""
    below: set[str] = set()
    todo = ["mockkernel.kernel"]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in below:
                below.add(dep)
                todo.append(dep)
    assert sorted(m for m in below if "mockkernel.kernel" in graph[m]) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_check_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/kernel.py": "from .vfs import Vfs\n",
            "pkg/vfs.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from .fs import File\n"
                "def f():\n    from .leaf import x\n"
            ),
            "pkg/fs.py": "def g():\n    from . import kernel\n",
            "pkg/leaf.py": "x = 1\n",
        },
    )
    g = import_graph(tmp_path, "pkg")
    assert cycle_through(g, "pkg.kernel") == {"pkg.kernel", "pkg.vfs", "pkg.fs"}
    assert cycle_through(g, "pkg.leaf") == set()


def test_the_check_sees_a_package_import(tmp_path: Path) -> None:
    """``from .. import x`` runs the package's ``__init__``, which imports the kernel."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .kernel import Kernel\n",
            "pkg/kernel.py": "from .sub.mod import f\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/mod.py": "from .. import leaf\n",
            "pkg/leaf.py": "",
        },
    )
    g = import_graph(tmp_path, "pkg")
    assert cycle_through(g, "pkg.kernel") == {"pkg", "pkg.kernel", "pkg.sub.mod"}
