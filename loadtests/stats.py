"""The one percentile of the harness: bench gates, load runner, Locust's pacing, faults.

Method: nearest rank. Sort the n values; the p-th percentile is the value at
rank ceil(p / 100 * n) (1-based). So every reported figure is a time that
was actually measured, p95 of 300 rounds is the 285th fastest, p95 of 20 is
the 19th, and p50 of an even count is the lower middle value (no
interpolation that could pull a slow top 5 % below a budget). No input: 0.0.

Pure Python, standard library only: the Locust virtualenv imports it
(loadtests.pacing, loadtests.record), and benchmarks import it without
Django. Nothing else in benchmarks/ or loadtests/ computes a percentile or
median (loadtests/tests/test_stats.py checks; loadtests/hashcost.py's
statistics.median is the one exception left): use these two functions.
"""

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], pct: float) -> float:
    """The pct-th percentile (0 < pct <= 100) of values by nearest rank; 0.0 when empty."""
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {pct!r}")
    ordered = sorted(values)
    if not ordered:
        return 0.0
    # pct * n / 100, not pct / 100 * n: 7 / 100 * 100 is 7.000000000000001 (rank 8)
    rank = max(1, math.ceil(pct * len(ordered) / 100))
    return ordered[rank - 1]


def p50_p95_p99(values: Iterable[float]) -> tuple[float, float, float]:
    """percentile() at 50, 95 and 99, in that order (the figures every table shows)."""
    ordered = sorted(values)
    return percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99)
