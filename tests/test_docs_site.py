"""The docs site (``mkdocs.yml``, ``docs/``) stays complete as the code and the pages grow.

* Every hook in ``mockkernel/hookspecs.py`` has a reference entry: it is a listed member
  of the mkdocstrings block of ``docs/reference/hooks.md`` (so the built page renders its
  docstring) and has a docstring to render.
* Every ``docs/**/*.md`` page is in the ``nav`` of ``mkdocs.yml``, and every page the nav
  names exists: a page outside the nav is built but unreachable from the menus.
* The README's count of the tests that need the uapi headers is the ABI test's count.

``mkdocs build --strict`` itself runs in ``.ci/run`` (it needs the ``docs`` extra); these
checks need only the standard library.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import mockkernel.hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS_PAGE = DOCS / "reference" / "hooks.md"


def hookspec_names() -> list[str]:
    """The hooks pluggy knows from ``mockkernel.hookspecs`` (its spec marker sets the attr)."""
    return [
        name
        for name, obj in vars(mockkernel.hookspecs).items()
        if inspect.isfunction(obj) and hasattr(obj, "mockkernel_spec")
    ]


def documented_hooks(page: str) -> set[str]:
    """The hooks the hooks page renders: members of its ``::: mockkernel.hookspecs`` block."""
    m = re.search(r"^::: mockkernel\.hookspecs\n((?:[ \t]+.*\n?)*)", page, re.M)
    assert m is not None, f"{HOOKS_PAGE.relative_to(ROOT)} has no '::: mockkernel.hookspecs'"
    return set(re.findall(r"^\s+- (\w+)\s*$", m.group(1), re.M))


def nav_pages(mkdocs_yml: str) -> list[str]:
    """The ``.md`` files the ``nav:`` of mkdocs.yml names (``Title: page.md`` or ``- page.md``)."""
    nav = mkdocs_yml.split("\nnav:\n", 1)
    assert len(nav) == 2, "mkdocs.yml has no top-level nav:"
    return re.findall(r"^\s+-\s+(?:[^:\n]+:\s+)?([\w./-]+\.md)\s*$", nav[1], re.M)


def test_the_hookspecs_are_found() -> None:
    assert {"mockkernel_register", "mockkernel_boot", "mockkernel_shutdown"} <= set(
        hookspec_names()
    )


def test_every_hook_has_a_reference_entry() -> None:
    documented = documented_hooks(HOOKS_PAGE.read_text(encoding="utf-8"))
    missing = [name for name in hookspec_names() if name not in documented]
    assert not missing, (
        f"hooks without an entry in {HOOKS_PAGE.relative_to(ROOT)} "
        f"(add them to the members of '::: mockkernel.hookspecs'): {missing}"
    )
    unknown = documented - set(hookspec_names())
    assert not unknown, f"{HOOKS_PAGE.relative_to(ROOT)} lists hooks that do not exist: {unknown}"


def test_every_hook_has_a_docstring() -> None:
    bare = [n for n in hookspec_names() if not inspect.getdoc(getattr(mockkernel.hookspecs, n))]
    assert not bare, f"hookspecs without a docstring (the reference would be empty): {bare}"


def test_the_documented_hook_list_is_read_from_the_members() -> None:
    page = "::: mockkernel.hookspecs\n    options:\n      members:\n        - a_hook\n        - b\n"
    assert documented_hooks(page) == {"a_hook", "b"}
    assert documented_hooks(page.replace("        - b\n", "")) == {"a_hook"}


def test_every_docs_page_is_in_the_nav() -> None:
    nav = nav_pages((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    missing = [p for p in pages if p not in nav]
    assert not missing, f"docs pages not in the nav of mkdocs.yml: {missing}"
    absent = [p for p in nav if p not in pages]
    assert not absent, f"mkdocs.yml's nav names pages that do not exist in docs/: {absent}"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_the_nav_parser_sees_titled_and_bare_entries() -> None:
    yml = "site_name: x\nnav:\n  - Home: index.md\n  - Guides:\n      - a/b.md\n"
    yml += "      - C d: c-d.md\n"
    assert nav_pages(yml) == ["index.md", "a/b.md", "c-d.md"]


def test_the_readme_counts_the_abi_tests() -> None:
    """The README's fresh-clone note says how many tests need the headers: keep it true."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("_docs_abi", ROOT / "tests" / "test_abi.py")
    assert spec is not None and spec.loader is not None
    abi = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = abi  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(abi)
    finally:
        del sys.modules[spec.name]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"([\d,]+) of them are the ABI test", readme)
    assert m is not None, "README.md lost its note on the ABI test"
    n = len(abi.ALL_CHECKS)
    assert int(m.group(1).replace(",", "")) == n, f"the ABI test has {n} per-name tests"
    assert f"ABI test: {n} tests skipped" in readme
    skipped = re.search(r"those ([\d,]+) tests are skipped", readme)
    assert skipped is not None and int(skipped.group(1).replace(",", "")) == n


def test_the_lifecycle_pages_name_real_trace_events() -> None:
    """Each ``→ `event``` of the numbered lifecycles is an event the code emits."""
    source = " ".join(
        p.read_text(encoding="utf-8")
        for d in ("mockkernel", "plugins")
        for p in (ROOT / d).rglob("*.py")
    )
    unknown = []
    for page in ("dma-buf.md", "dma-buf-tph.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        for run in re.findall(r"→((?:\s*`[\w.]+`,?)+)", text):
            names = [n for n in re.findall(r"`([\w.]+)`", run) if "." in n]
            unknown += [f"{page}: {n}" for n in names if f'"{n}"' not in source]
    assert not unknown, f"trace events the code never emits: {unknown}"


#: What a reader of the shipped docs cannot open: the development machine's files.
OUTSIDE = re.compile(r"\.\./shared/|/work/|\bkernel\.md\b|\bdesign-notes\.md\b")


def test_the_docs_cite_shipped_files_or_upstream_sources_only() -> None:
    """A page names files of this project or upstream sources (``net/core/devmem.c``),
    never a file of the machine it was written on."""
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md", ROOT / "CHANGELOG.md"]
    found = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in pages
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_readme_links_work_on_a_package_index() -> None:
    """README.md is the package's long description: a relative link (``docs/x.md``) would
    be broken on a package index, so every link and image is absolute (or a fragment)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)", readme) + re.findall(r"<img [^>]*src=\"([^\"]+)", readme)
    relative = [t for t in targets if not re.match(r"(https?://|mailto:|#)", t)]
    assert not relative, relative
