"""Suite-wide settings: Hypothesis runs without per-example deadlines.

CI machines are small and shared (2 cores, other jobs): a slow example is not a failure
here -- speed is measured by ``benchmarks/``, never by tests.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("mockkernel", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mockkernel")
