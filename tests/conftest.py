"""Suite-wide settings: Hypothesis runs without per-example deadlines; lockdep is on.

CI machines are small and shared (2 cores, other jobs): a slow example is not a failure
here -- speed is measured by ``benchmarks/``, never by tests.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

settings.register_profile("mockkernel", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mockkernel")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line for the ABI test's skips: how many, why, and how to enable them.

    Without the real uapi headers (``tests/test_abi.py``: ``$MOCKKERNEL_UAPI_INCLUDE`` or
    ``tools/fetch-uapi-headers.sh``) or a C compiler, every per-name C comparison skips
    with the same reason; this says it once instead of leaving a bare "N skipped".
    """
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if not report.nodeid.startswith("tests/test_abi.py") or not isinstance(longrepr, tuple):
            continue
        reason = str(longrepr[-1]).removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"ABI test: {count} tests skipped, {reason}", yellow=True)


# the lock validator's order checks in every kernel the suite boots (docs/reliability.md)
os.environ.setdefault("MOCKKERNEL_LOCKDEP", "1")
