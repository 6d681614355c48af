"""MkDocs hooks for the docs site (``hooks:`` in mkdocs.yml): pages generated from the code.

Two markers in a page's Markdown are replaced before it is rendered, so the reference
cannot drift from the code:

* ``<!-- mockkernel-cli -->``: the ``--help`` of ``mockkernel`` and of each subcommand,
  as argparse prints it (``mockkernel.cli.main``).
* ``<!-- mockkernel-driver-api -->``: one mkdocstrings block per module that
  ``mockkernel/driver.py`` re-exports from, listing exactly the names it re-exports (read
  from its ``from .x import ...`` statements), so every name of the driver API is on the
  page under the module that defines it.

The docstrings are written for Sphinx-style readers (``:class:`X```); mkdocstrings leaves
the role name in front of the code span, so the rendered pages drop it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI_MARKER = "<!-- mockkernel-cli -->"
DRIVER_API_MARKER = "<!-- mockkernel-driver-api -->"


def _help(argv: list[str]) -> str:
    """What ``mockkernel ARGV`` prints (``--help`` exits through SystemExit)."""
    from mockkernel.cli import main

    out = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal: the same page everywhere
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return out.getvalue().rstrip()


def cli_reference() -> str:
    """The CLI reference: top-level help, then each subcommand's, in argparse's order."""
    top = _help(["--help"])
    m = re.search(r"\{([a-z,_-]+)\}", top)
    subcommands = m.group(1).split(",") if m else []
    parts = ["```text", f"$ mockkernel --help\n{top}", "```"]
    for sub in subcommands:
        parts += [f"\n## `mockkernel {sub}`\n", "```text", _help([sub, "--help"]), "```"]
    return "\n".join(parts)


def driver_api_imports() -> dict[str, list[str]]:
    """``mockkernel.driver``'s re-exports: module -> the names taken from it, in file order."""
    tree = ast.parse((ROOT / "mockkernel" / "driver.py").read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names = [a.asname or a.name for a in node.names]
            out.setdefault(f"mockkernel.{node.module}", []).extend(names)
    return out


def driver_api_reference() -> str:
    """One mkdocstrings block per re-exported module, restricted to the re-exported names."""
    parts: list[str] = []
    for module, names in driver_api_imports().items():
        members = ", ".join(names)
        parts.append(
            f"## `{module}`\n\n::: {module}\n"
            "    options:\n"
            "      show_root_heading: false\n"
            "      show_root_toc_entry: false\n"
            "      show_if_no_docstring: true\n"
            "      heading_level: 3\n"
            f"      members: [{members}]\n"
        )
    return "\n".join(parts)


#: ``:class:`` and friends in front of a rendered code span (mkdocstrings keeps the role)
SPHINX_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):(?=<code)")


def on_page_content(html: str, **_: Any) -> str:
    """Drop the Sphinx role names mkdocstrings left in front of code spans."""
    return SPHINX_ROLE.sub("", html)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Fill the generated sections of a page (mkdocs calls this for every page)."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if DRIVER_API_MARKER in markdown:
        markdown = markdown.replace(DRIVER_API_MARKER, driver_api_reference())
    return markdown
