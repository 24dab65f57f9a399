"""The one percentile used by the bench gates, the load runner and Locust's pacing.

Nearest rank on the sorted values: every reported figure is a time that was
actually measured, and p95 of 300 rounds is the 285th fastest (no
interpolation that could pull a slow top 5 % below the budget). Pure Python:
Locust's process imports it too.
"""

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], pct: float) -> float:
    """The pct-th percentile (0 < pct <= 100) by nearest rank; 0.0 when empty."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def p50_p95_p99(values: Iterable[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99)
