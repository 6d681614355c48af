"""Fixtures of the supervisor tests: C programs built with the system ``cc``, a kernel."""

from __future__ import annotations

import os
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


def _compiler(
    tmp_path_factory: pytest.TempPathFactory, includes: list[str]
) -> Callable[[str], str]:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on this machine: the supervisor's C tests need one")
    out = tmp_path_factory.mktemp("cbin")
    built: dict[str, str] = {}

    def build(name: str) -> str:
        if name not in built:
            exe = out / name
            subprocess.run(
                [cc, "-O1", "-Wall", "-pthread", f"-I{HERE / 'c'}", *includes, "-o", str(exe),
                 str(SOURCES[name])],
                check=True,
            )  # fmt: skip
            built[name] = str(exe)
        return built[name]

    return build


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``build(name)``: the path of ``tests/supervisor/c/<name>.c`` (or ``examples/c``)
    compiled with the system ``cc`` against the system's uAPI headers."""
    return _compiler(tmp_path_factory, [])


#: what the C twins of the VFIO and RDMA demos need from linux/vfio.h (Linux 6.19+)
NEEDED_UAPI = "VFIO_DEVICE_FEATURE_DMA_BUF"


@pytest.fixture(scope="session")
def build_uapi(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``build`` against the newest uAPI headers: ``$MOCKKERNEL_UAPI_INCLUDE`` (an
    installed ``make headers_install`` tree) when set, else the system's; skipped when
    those headers have no ``VFIO_DEVICE_FEATURE_DMA_BUF``."""
    inc = os.environ.get("MOCKKERNEL_UAPI_INCLUDE") or _fetched_uapi_headers()
    vfio_h = Path(inc or "/usr/include") / "linux" / "vfio.h"
    if not vfio_h.is_file() or NEEDED_UAPI not in vfio_h.read_text(errors="replace"):
        pytest.skip(f"{vfio_h} has no {NEEDED_UAPI}: set MOCKKERNEL_UAPI_INCLUDE to newer headers")
    includes = [] if inc is None else [f"-I{inc}", f"-I{Path(inc) / 'x86_64-linux-gnu'}"]
    return _compiler(tmp_path_factory, includes)


def _fetched_uapi_headers() -> str | None:
    """The project's own ``tools/fetch-uapi-headers.sh`` (cached; the ABI test uses it
    too), unless ``MOCKKERNEL_UAPI_FETCH=0``; ``None`` when it cannot fetch."""
    tool = Path(__file__).resolve().parents[2] / "tools" / "fetch-uapi-headers.sh"
    if os.environ.get("MOCKKERNEL_UAPI_FETCH") == "0" or not tool.exists():
        return None
    try:
        proc = subprocess.run(
            ["bash", str(tool)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if proc.returncode == 0 and lines else None


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    """A kernel no redirection is installed for: only the supervised tree uses it."""
    k = mockkernel.boot()
    try:
        yield k
    finally:
        k.shutdown(check=True)
