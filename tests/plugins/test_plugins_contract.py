"""The plugin contract, checked statically.

* every hookspec in :mod:`mockkernel.hookspecs` says when it is called and what its
  return value means, documents its parameters, and has a heading in
  ``docs/plugins.md`` (the hook reference);
* the bundled plugins in ``plugins/`` use only the surface a third-party plugin has:
  ``mockkernel`` (its public names), ``mockkernel.driver``, ``mockkernel.uapi.*``, the
  standard library and their own package -- and ``mockkernel.ioctl``, the
  ``asm-generic/ioctl.h`` codec (``_IO``/``_IOR``/``_IOW``/``_IOWR``/``_IOC_NR``) that
  the uapi modules are written with and that ``docs/plugins.md`` tells drivers to use
  for their own command numbers; it is uapi in all but its place in the tree.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mockkernel
from mockkernel import hookspecs

REPO = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO / "plugins"
DOCS = REPO / "docs" / "plugins.md"

ALLOWED_MOCKKERNEL = ("mockkernel.driver", "mockkernel.uapi", "mockkernel.ioctl")


def _hookspecs() -> list[Callable[..., Any]]:
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return [
        fn
        for _, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, marker) and fn.__module__ == hookspecs.__name__
    ]


SPECS = _hookspecs()


def test_there_are_hookspecs() -> None:
    assert {fn.__name__ for fn in SPECS} >= {
        "mockkernel_register",
        "mockkernel_boot",
        "mockkernel_shutdown",
    }


@pytest.mark.parametrize("spec", SPECS, ids=lambda fn: fn.__name__)
def test_hookspec_is_documented(spec: Callable[..., Any]) -> None:
    doc = inspect.getdoc(spec)
    assert doc, f"{spec.__name__} has no docstring"
    assert "Called" in doc, f"{spec.__name__}: say when it is called ('Called ...')"
    assert "Return" in doc, f"{spec.__name__}: say what the return value means ('Return ...')"
    params = [p for p in inspect.signature(spec).parameters if p != "self"]
    for name in params:
        assert f":param {name}:" in doc, f"{spec.__name__}: ':param {name}:' is missing"
    documented = set(re.findall(r":param (\w+):", doc))
    assert documented <= set(params), f"{spec.__name__}: documents unknown {documented}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda fn: fn.__name__)
def test_hookspec_is_in_the_plugin_docs(spec: Callable[..., Any]) -> None:
    if not DOCS.exists():
        pytest.skip(f"{DOCS.relative_to(REPO)} is not written yet")
    text = DOCS.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert any(spec.__name__ in h for h in headings), (
        f"{spec.__name__} has no heading in {DOCS.relative_to(REPO)} (the hook reference)"
    )


def test_the_docs_describe_no_hook_that_does_not_exist() -> None:
    if not DOCS.exists():
        pytest.skip(f"{DOCS.relative_to(REPO)} is not written yet")
    # a hook is written as a call in the docs: `mockkernel_boot(kernel)`
    called = set(re.findall(r"\b(mockkernel_[a-z_]+)\(", DOCS.read_text(encoding="utf-8")))
    unknown = called - {fn.__name__ for fn in SPECS}
    assert not unknown, f"docs/plugins.md describes hooks that do not exist: {sorted(unknown)}"


# -- bundled plugins use the public driver API only ---------------------------------------------
def _plugin_packages() -> list[Path]:
    if not PLUGINS_DIR.is_dir():
        return []
    return sorted(p for p in PLUGINS_DIR.iterdir() if p.is_dir() and any(p.glob("*.py")))


def _plugin_files() -> list[Path]:
    return [f for pkg in _plugin_packages() for f in sorted(pkg.rglob("*.py"))]


def _imports(tree: ast.AST) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names imported from it); relative imports come as ``.x``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            yield node.lineno, module, [a.name for a in node.names]


def _mockkernel_attributes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``mockkernel.X`` attribute chains: ``import mockkernel`` then reaching inside."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "mockkernel"
        ):
            yield node.lineno, node.attr


def _problems(path: Path, own: str, root: Path = REPO) -> list[str]:
    """What ``path`` (a module of the plugin package ``own``) imports that it may not."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    public = set(mockkernel.__all__)
    name = path.relative_to(root)
    out = []
    for line, module, names in _imports(tree):
        where = f"{name}:{line}"
        top = module.split(".")[0]
        if module.startswith(".") or top == own:
            continue  # the plugin's own modules
        if top in sys.stdlib_module_names:
            continue
        if module == "mockkernel":
            bad = [n for n in names if n not in public]
            if bad:
                out.append(f"{where}: from mockkernel import {', '.join(bad)} (not public)")
            continue
        if any(module == m or module.startswith(m + ".") for m in ALLOWED_MOCKKERNEL):
            continue
        out.append(f"{where}: imports {module}")
    for line, attr in _mockkernel_attributes(tree):
        if attr not in public and attr not in ("driver", "uapi", "ioctl", "__version__"):
            out.append(f"{name}:{line}: reaches mockkernel.{attr}")
    return out


def test_there_are_bundled_plugins() -> None:
    assert "mockkernel_udmabuf" in {p.name for p in _plugin_packages()}


@pytest.mark.parametrize("path", _plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS_DIR)))
def test_bundled_plugin_uses_only_the_driver_api(path: Path) -> None:
    own = path.relative_to(PLUGINS_DIR).parts[0]
    assert _problems(path, own) == []


def test_the_import_check_catches_a_core_import(tmp_path: Path) -> None:
    """The checker itself: a plugin reaching into the core is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\n"
        "import pluggy\n"
        "import mockkernel\n"
        "from mockkernel import hookimpl, dma_buf\n"
        "from mockkernel.driver import File\n"
        "from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE\n"
        "from mockkernel.process import Process\n"
        "from .sibling import x\n"
        "x = mockkernel.kernel.Kernel\n"
        "y = mockkernel.driver.File\n"
    )
    found = [p.split(": ", 1)[1] for p in _problems(bad, "bad_plugin", tmp_path)]
    assert found == [
        "imports pluggy",
        "from mockkernel import dma_buf (not public)",
        "imports mockkernel.process",
        "reaches mockkernel.kernel",
    ]
