"""The plugin contract, checked statically.

* every hookspec in :mod:`mockkernel.hookspecs` says when it is called and what its
  return value means, documents its parameters, and has a heading in
  ``docs/plugins.md`` (the hook reference);
* the bundled plugins in ``plugins/`` use only the surface a third-party plugin has:
  ``mockkernel`` (its public names), ``mockkernel.driver``, ``mockkernel.uapi.*``, the
  standard library and their own package -- and ``mockkernel.ioctl``, the
  ``asm-generic/ioctl.h`` codec (``_IO``/``_IOR``/``_IOW``/``_IOWR``/``_IOC_NR``) that
  the uapi modules are written with and that ``docs/plugins.md`` tells drivers to use
  for their own command numbers; it is uapi in all but its place in the tree;
* and of a ``Kernel`` object they touch only the documented attributes
  (:data:`ALLOWED_KERNEL_ATTRS`), of a task only :data:`ALLOWED_TASK_ATTRS`: device
  nodes, sysfs, the current task's fds, PCI lookups and the rest are driver-API
  functions (``misc_register``, ``fdget``...).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
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

#: What a plugin may use of a ``Kernel`` object itself ("The Kernel object" in
#: docs/plugins.md); ``uapi`` is the booted ``UapiProfile``.
ALLOWED_KERNEL_ATTRS = frozenset({"tracer", "new_id", "warn", "topology", "uapi"})
#: ... and of a task (``current_task(kernel)``, a ``Process``): who it is, nothing of its
#: fd table or memory (``fdget``, ``fd_install``, uaccess are the API for those)
ALLOWED_TASK_ATTRS = frozenset({"pid", "name"})

#: API constant names a bundled plugin defines itself on purpose, with a different value
KNOWN_SHADOWS = {
    # vfio-pci's config permission tables: Linux 7.2's pci_regs.h has 0x14 (PCI_CAP_ID_EA)
    # and 0x31 (PCI_EXT_CAP_ID_PL_64GT); left to the vfio-pci owners to reconcile
    "PCI_CAP_ID_MAX",
    "PCI_EXT_CAP_ID_MAX",
}

#: the modules whose functions make up the driver API's services (each one documented)
SERVICE_MODULES = (
    "mockkernel.chrdev",
    "mockkernel.cpumask",
    "mockkernel.file",
    "mockkernel.pci.dev",
    "mockkernel.pci.search",
    "mockkernel.sysfs",
)


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


def _is_annotation(node: ast.expr | None, cls: str) -> bool:
    """``cls``, ``driver.cls``, ``"cls"``, ``cls | None``."""
    if isinstance(node, ast.Name):
        return node.id == cls
    if isinstance(node, ast.Attribute):
        return node.attr == cls
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return cls in re.findall(r"\w+", node.value)
    if isinstance(node, ast.BinOp):
        return _is_annotation(node.left, cls) or _is_annotation(node.right, cls)
    return False


def _is_kernel_annotation(node: ast.expr | None) -> bool:
    return _is_annotation(node, "Kernel")


def _through_topology(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        if node.attr == "topology":
            return True
        node = node.value
    return False


def _is_kernel(node: ast.expr, names: set[str]) -> bool:
    """Is ``node`` a kernel object: a name known to hold one, the ``Kernel`` class, or
    any ``x.kernel`` (a file's, a device's, the registry's) -- but not the
    ``[kernel]`` section of the topology, nor the module ``mockkernel.kernel`` (the
    import check reports that one)."""
    if isinstance(node, ast.Name):
        return node.id in names or node.id == "Kernel"
    if isinstance(node, ast.Attribute):
        module = isinstance(node.value, ast.Name) and node.value.id == "mockkernel"
        return node.attr == "kernel" and not module and not _through_topology(node.value)
    return False


def _kernel_names(tree: ast.AST) -> set[str]:
    """Names that hold a kernel: ``kernel``/``k``, anything annotated ``Kernel``, and
    (to a fixed point) names assigned from a kernel expression."""
    names = {"kernel", "k"}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _is_kernel_annotation(node.annotation):
            names.add(node.arg)
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and _is_kernel_annotation(node.annotation)
        ):
            names.add(node.target.id)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.NamedExpr | ast.AnnAssign):
                value = node.value
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            elif isinstance(node, ast.withitem):
                value, targets = node.context_expr, [node.optional_vars]
            else:
                continue
            if value is None or not _is_kernel(value, names):
                continue
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in names:
                    names.add(t.id)
                    changed = True
    return names


def _task_attributes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Attributes of tasks outside :data:`ALLOWED_TASK_ATTRS`: ``current_task(k).X``,
    ``proc = current_task(k); proc.X``, a ``Process``-annotated ``p.X``."""

    def is_task(node: ast.expr, names: set[str]) -> bool:
        if isinstance(node, ast.Name):
            return node.id in names
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            == "current_task"
        )

    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _is_annotation(node.annotation, "Process"):
            names.add(node.arg)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and is_task(node.value, names):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id not in names:
                        names.add(t.id)
                        changed = True
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and is_task(node.value, names)
            and node.attr not in ALLOWED_TASK_ATTRS
        ):
            yield node.lineno, node.attr


def _kernel_attributes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Attributes of kernel objects outside :data:`ALLOWED_KERNEL_ATTRS`: ``kernel.X``,
    ``self.kernel.X``, ``k = file.kernel; k.X``, ``getattr(kernel, "X")``."""
    names = _kernel_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_kernel(node.value, names):
            if node.attr not in ALLOWED_KERNEL_ATTRS:
                yield node.lineno, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr", "vars")
            and node.args
            and _is_kernel(node.args[0], names)
        ):
            arg = node.args[1] if len(node.args) > 1 else None
            attr = arg.value if isinstance(arg, ast.Constant) else None
            if not isinstance(attr, str) or attr not in ALLOWED_KERNEL_ATTRS:
                yield node.lineno, f"{node.func.id}(...)" if attr is None else str(attr)


@functools.cache
def _api_constants() -> dict[str, str]:
    """Integer constants a plugin can import, by name: where each one comes from."""
    import mockkernel.driver
    import mockkernel.uapi

    out: dict[str, str] = {}
    modules = [mockkernel.driver] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(mockkernel.uapi.__path__, "mockkernel.uapi.")
    ]
    for mod in modules:
        for name, value in vars(mod).items():
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool):
                out.setdefault(name, mod.__name__)
    return out


def _int_constant(node: ast.expr) -> bool:
    """A literal integer expression (``10``, ``1 << 4``, ``0x2 | 0x8``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _int_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _int_constant(node.left) and _int_constant(node.right)
    return False


def _redeclared_constants(tree: ast.Module) -> Iterator[tuple[int, str, str]]:
    """Module-level integer constants named like one the API has (``MISC_MAJOR = 10``,
    ``_DMA_RESV_USAGE_BOOKKEEP = 3``): a plugin imports those instead."""
    api = _api_constants()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not _int_constant(value):
            continue
        for t in targets:
            if isinstance(t, ast.Name):
                name = t.id.lstrip("_")
                if name in api and name not in KNOWN_SHADOWS:
                    yield node.lineno, t.id, api[name]


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
    for line, attr in sorted(_kernel_attributes(tree)):
        out.append(f"{name}:{line}: reaches kernel.{attr}")
    for line, attr in sorted(_task_attributes(tree)):
        out.append(f"{name}:{line}: reaches task.{attr}")
    for line, const, where in _redeclared_constants(tree):
        out.append(f"{name}:{line}: re-declares {const} (import it from {where})")
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


def test_the_kernel_check_catches_internals(tmp_path: Path) -> None:
    """The checker itself: every way of reaching a kernel's internals is reported, the
    documented attributes are not, and neither is a same-named attribute elsewhere."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from mockkernel.driver import Kernel, misc_register\n"
        "def init(kernel: Kernel) -> None:\n"
        "    kernel.vfs.mkdir('/dev/x')\n"  # 3
        "    if kernel.tracer.enabled:\n"
        "        kernel.tracer.emit('x', id=kernel.new_id())\n"
        "    kernel.warn('fine')\n"
        "    n = kernel.topology.kernel.nr_cpus\n"  # the topology's [kernel] section
        "def ioctl(file, cmd, arg):\n"
        "    k = file.kernel\n"
        "    return k.current.files\n"  # 10
        "def probe(kern: 'Kernel | None', pdev):\n"
        "    return kern.bound\n"  # 12
        "class Drv:\n"
        "    def remove(self):\n"
        "        self.kernel.net = None\n"  # 15
        "        getattr(self.kernel, 'pci')\n"  # 16
        "        getattr(self.kernel, 'tracer')\n"
        "        alias = self.dev.kernel\n"
        "        alias.fabric.add_ram(0, 1, None)\n"  # 19
        "        Kernel.misc_register(self.kernel, 'x', None)\n"  # 20
        "        self.fops.vfs.lookup('/dev/x')\n"  # not a kernel
        "        return pdev.kernel_name\n"
        "def task(kernel, p: Process):\n"
        "    t = current_task(kernel)\n"
        "    return t.files, t.pid, current_task(kernel).fdt, p.mm, p.name\n"  # 25
    )
    found = [p.split(": ", 1)[1] for p in _problems(bad, "bad_plugin", tmp_path)]
    lines = [int(p.split(":")[1]) for p in _problems(bad, "bad_plugin", tmp_path)]
    assert found == [
        "reaches kernel.vfs",
        "reaches kernel.current",
        "reaches kernel.bound",
        "reaches kernel.net",
        "reaches kernel.pci",
        "reaches kernel.fabric",
        "reaches kernel.misc_register",
        "reaches task.fdt",
        "reaches task.files",
        "reaches task.mm",
    ]
    assert lines == [3, 10, 12, 15, 16, 19, 20, 25, 25, 25]


def test_the_kernel_attributes_allowed_are_documented() -> None:
    """Each attribute plugins may use of a kernel is in the plugin docs' Kernel section."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## The Kernel object", 1)[1].split("\n## ", 1)[0]
    for attr in sorted(ALLOWED_KERNEL_ATTRS):
        assert f"`kernel.{attr}" in section, f"kernel.{attr} is not documented"
    for attr in sorted(ALLOWED_TASK_ATTRS):
        assert f"`task.{attr}`" in section, f"task.{attr} is not documented"


def _service_functions() -> list[str]:
    import mockkernel.driver as driver

    return [
        name
        for name in driver.__all__
        if inspect.isfunction(getattr(driver, name))
        and getattr(driver, name).__module__ in SERVICE_MODULES
    ]


def test_there_are_service_functions() -> None:
    assert {"misc_register", "fdget", "sysfs_create_file", "pci_get_drvdata"} <= set(
        _service_functions()
    )


@pytest.mark.parametrize("name", _service_functions())
def test_service_function_is_documented(name: str) -> None:
    """Each driver-API service says what it does in its docstring and is in the API
    reference of docs/plugins.md."""
    import mockkernel.driver as driver

    doc = inspect.getdoc(getattr(driver, name))
    assert doc is not None and len(doc) > 40, f"{name}: no docstring to speak of"
    assert f"`{name}(" in DOCS.read_text(encoding="utf-8"), f"{name} is not in docs/plugins.md"


def test_the_constant_check_catches_a_redeclared_api_constant(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "MISC_MAJOR = 10\n"
        "_DMA_RESV_USAGE_BOOKKEEP: int = 3\n"
        "_PCI_COMMAND_MEMORY = 0x1 << 1\n"
        "MY_OWN_LIMIT = 1 << 20\n"  # not an API name
        "PAGE_SIZE = 'not an int'\n"
        "def f():\n"
        "    MISC_MAJOR = 10\n"  # a local, not a module constant
        "    return MISC_MAJOR\n"
    )
    found = [p.split(": ", 1)[1] for p in _problems(bad, "bad_plugin", tmp_path)]
    assert found == [
        "re-declares MISC_MAJOR (import it from mockkernel.driver)",
        "re-declares _DMA_RESV_USAGE_BOOKKEEP (import it from mockkernel.driver)",
        "re-declares _PCI_COMMAND_MEMORY (import it from mockkernel.uapi.linux.pci_regs)",
    ]
