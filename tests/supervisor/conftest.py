"""Fixtures of the supervisor tests: C programs built with the system ``cc``, a kernel."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mockkernel
from mockkernel.kernel import Kernel

HERE = Path(__file__).parent
REPO = HERE.parent.parent
SOURCES = {p.stem: p for p in [*(HERE / "c").glob("*.c"), *(REPO / "examples" / "c").glob("*.c")]}


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``build(name)``: the path of ``tests/supervisor/c/<name>.c`` (or ``examples/c``)
    compiled with the system ``cc`` against the system's uAPI headers."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on this machine: the supervisor's C tests need one")
    out = tmp_path_factory.mktemp("cbin")
    built: dict[str, str] = {}

    def build(name: str) -> str:
        if name not in built:
            exe = out / name
            subprocess.run(
                [cc, "-O1", "-Wall", "-pthread", f"-I{HERE / 'c'}", "-o", str(exe),
                 str(SOURCES[name])],
                check=True,
            )  # fmt: skip
            built[name] = str(exe)
        return built[name]

    return build


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    """A kernel no redirection is installed for: only the supervised tree uses it."""
    k = mockkernel.boot()
    try:
        yield k
    finally:
        k.shutdown(check=True)
