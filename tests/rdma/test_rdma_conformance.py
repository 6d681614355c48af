"""The bundled importers pass the importer conformance suite (``mockkernel.testing``)."""

from __future__ import annotations

import pytest

from mockkernel import Kernel
from mockkernel.testing.conformance import CHECKS, run_check, run_conformance
from mockkernel.testing.rdma import UverbsImporter

IMPORTERS = {
    "mlx5-dynamic": lambda: UverbsImporter("mlx5_0"),
    "mlx5-data-direct": lambda: UverbsImporter("mlx5_0", data_direct=True),
}


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("importer", sorted(IMPORTERS))
def test_bundled_importer_conforms(mock_kernel: Kernel, importer: str, check: str) -> None:
    result = run_check(mock_kernel, IMPORTERS[importer](), check)
    assert not result.startswith("FAIL"), f"{importer} {check}: {result}"


def test_report_says_what_applies(mock_kernel: Kernel) -> None:
    dynamic = run_conformance(mock_kernel, UverbsImporter("mlx5_0"))
    dynamic.assert_ok()
    assert set(dynamic.results.values()) == {"pass"}
    pinned = run_conformance(mock_kernel, UverbsImporter("mlx5_0", data_direct=True))
    pinned.assert_ok()
    assert pinned.results["no_dma_after_revoke"].startswith("n/a")
    assert pinned.results["eopnotsupp_fallback"] == "pass"


def test_a_broken_importer_fails(mock_kernel: Kernel) -> None:
    """An importer that keeps its mapping across an invalidation is caught."""
    from mockkernel_mlx5 import mlx5_dev

    ops = mlx5_dev(mock_kernel, "mlx5_0").ops
    ops.dmabuf_invalidate = lambda attach: None  # type: ignore[method-assign]
    report = run_conformance(mock_kernel, UverbsImporter("mlx5_0"))
    assert report.results["unmap_within_invalidation"].startswith("FAIL")
    assert report.results["no_dma_after_revoke"].startswith("FAIL")
    with pytest.raises(AssertionError, match="unmap_within_invalidation"):
        report.assert_ok()
    mock_kernel.warnings.clear()
