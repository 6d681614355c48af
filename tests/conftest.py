"""Suite-wide settings: Hypothesis runs without per-example deadlines; lockdep is on.

CI machines are small and shared (2 cores, other jobs): a slow example is not a failure
here -- speed is measured by ``benchmarks/``, never by tests.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("mockkernel", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mockkernel")

# the lock validator's order checks in every kernel the suite boots (docs/reliability.md)
os.environ.setdefault("MOCKKERNEL_LOCKDEP", "1")
