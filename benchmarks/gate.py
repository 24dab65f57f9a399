"""Percentiles from raw rounds, the p95 gate, and per-call query counts.

pytest-benchmark's own table shows min/mean/median; the contract speaks of
p95, so the gate computes p50/p95/p99 itself from every round's time.
"""

from dataclasses import dataclass

import pytest

from loadtests.stats import p50_p95_p99

# docs/api.md: "Latency: p95 under 100 ms, measured with the production
# password hasher on PostgreSQL."
P95_BUDGET_MS = 100.0


@dataclass(frozen=True)
class Row:
    """One line of the end-of-session table (and of results/*.json extra_info)."""

    name: str
    group: str
    rounds: int | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    queries: str = "-"
    gate: str = "-"


class QueryCounter:
    """Counts SQL statements per call of a function, for connection.execute_wrapper.

    Cheaper than CaptureQueriesContext (no SQL text kept, no debug cursor), so
    it can stay on during timed rounds; setup queries are not counted.
    """

    def __init__(self) -> None:
        self.per_call: list[int] = []
        self._count = 0

    def __call__(self, execute, sql, params, many, context):
        self._count += 1
        return execute(sql, params, many, context)

    def wrap(self, func):
        def counted(*args, **kwargs):
            self._count = 0
            try:
                return func(*args, **kwargs)
            finally:
                self.per_call.append(self._count)

        return counted

    @property
    def label(self) -> str:
        if not self.per_call:
            return "-"
        low, high = min(self.per_call), max(self.per_call)
        return str(low) if low == high else f"{low}-{high}"


def gate(benchmark, rows: list[Row], *, queries: str = "-", p95_budget_ms: float | None = None):
    """Record the figures; fail the test when p95 reaches the budget.

    Returns None under --benchmark-disable (the code ran once, untimed).
    """
    if benchmark.stats is None:
        return None
    data = benchmark.stats.stats.data  # seconds per round
    p50, p95, p99 = p50_p95_p99(s * 1000 for s in data)  # loadtests.stats: nearest rank
    failed = p95_budget_ms is not None and p95 >= p95_budget_ms
    verdict = "-" if p95_budget_ms is None else ("FAIL" if failed else "pass")
    row = Row(
        name=benchmark.name,
        group=benchmark.group or "",
        rounds=len(data),
        p50=p50,
        p95=p95,
        p99=p99,
        queries=queries,
        gate=verdict,
    )
    rows.append(row)
    benchmark.extra_info.update(
        p50_ms=round(p50, 3), p95_ms=round(p95, 3), p99_ms=round(p99, 3), queries=queries
    )
    if p95_budget_ms is not None:
        benchmark.extra_info["p95_budget_ms"] = p95_budget_ms
    if failed:
        pytest.fail(
            f"{benchmark.name}: p95 {p95:.1f} ms >= budget {p95_budget_ms:.0f} ms "
            f"(p50 {p50:.1f}, p99 {p99:.1f} ms over {len(data)} rounds)",
            pytrace=False,
        )
    return row


def format_table(rows: list[Row]) -> list[str]:
    """Plain columns for the CI log: benchmark, rounds, p50, p95, p99 (ms), queries."""
    header = ("benchmark", "group", "rounds", "p50 ms", "p95 ms", "p99 ms", "queries", "gate")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = [header] + [
        (
            r.name,
            r.group,
            "-" if r.rounds is None else str(r.rounds),
            ms(r.p50),
            ms(r.p95),
            ms(r.p99),
            r.queries,
            r.gate,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
