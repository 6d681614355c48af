"""The rdma-core 59 build of ``.ci/build-rdma-core``: what later tests run on the mock.

Skips (one line) when the build is absent: it is not part of the default run (run
``.ci/build-rdma-core --install-deps`` once; it is cached).  The programs cannot reach
the mock kernel from this process (they make real syscalls); this only checks that the
build has what issue 14 needs: the ``ibv_*`` tools, libibverbs with DMAH, the mlx5 and
rxe providers, and pyverbs.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "build-rdma-core"


def _build_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    base = Path(os.environ.get("MOCKKERNEL_RDMA_CORE_DIR", default / "mockkernel" / "rdma-core-59"))
    return base / "src" / "rdma-core" / "build"


BUILD = _build_dir()
pytestmark = pytest.mark.skipif(
    not (BUILD.parent.parent.parent / ".built").exists(),
    reason=f"rdma-core 59 is not built ({SCRIPT.relative_to(REPO)} builds it)",
)


def test_script_reports_the_cached_build() -> None:
    out = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=60, check=True)
    report = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert report["RDMA_CORE_BIN"] == str(BUILD / "bin")
    assert report["RDMA_CORE_LIB"] == str(BUILD / "lib")
    assert report["RDMA_CORE_PYTHON"] == str(BUILD / "python")
    assert "cached" in out.stderr


def test_build_has_the_tools_providers_dmah_and_pyverbs() -> None:
    for tool in ("ibv_devices", "ibv_devinfo", "rdma_server"):
        assert os.access(BUILD / "bin" / tool, os.X_OK), tool
    for provider in ("libmlx5-rdmav59.so", "librxe-rdmav59.so"):
        assert (BUILD / "lib" / provider).exists(), provider
    verbs = ctypes.CDLL(str(BUILD / "lib" / "libibverbs.so.1"))
    assert hasattr(verbs, "ibv_alloc_dmah") and hasattr(verbs, "ibv_reg_mr_ex")
    assert (BUILD / "python" / "pyverbs" / "__init__.py").exists()
