"""The latency gate itself, on made-up rounds: it must judge p95, against 100 ms.

Found by mutation: a gate comparing p50, or allowing 1000 ms, passed every
other test (BENCH_SLOW_MS slows every request, so it cannot tell p50 from p95).
"""

from types import SimpleNamespace

import pytest

from benchmarks.gate import P95_BUDGET_MS, gate
from loadtests.stats import percentile


def fake_benchmark(ms: list[float]) -> SimpleNamespace:
    stats = SimpleNamespace(stats=SimpleNamespace(data=[m / 1000 for m in ms]))
    return SimpleNamespace(name="test_signup", group="requests", stats=stats, extra_info={})


def rounds(fast_ms: float, slow_ms: float, slow_share: float, n: int = 300) -> list[float]:
    slow = round(n * slow_share)
    return [fast_ms] * (n - slow) + [slow_ms] * slow


def test_the_budget_is_the_contract_p95_of_100_ms():
    assert P95_BUDGET_MS == 100.0


def test_a_fast_median_with_a_slow_top_five_percent_fails():
    data = rounds(20.0, 150.0, 0.06)  # p50 20 ms, p95 150 ms
    with pytest.raises(pytest.fail.Exception, match=r"p95 150\.0 ms >= budget 100 ms"):
        gate(fake_benchmark(data), [], p95_budget_ms=P95_BUDGET_MS)


def test_a_slow_tail_under_five_percent_passes():
    data = rounds(20.0, 150.0, 0.04)  # p95 is still a fast round
    row = gate(fake_benchmark(data), [], p95_budget_ms=P95_BUDGET_MS)
    assert row.gate == "pass"
    assert row.p95 == pytest.approx(20.0)
    assert row.p99 == pytest.approx(150.0)


@pytest.mark.parametrize(("p95_ms", "verdict"), [(99.9, "pass"), (100.0, "FAIL"), (100.1, "FAIL")])
def test_just_under_and_just_over_the_budget(p95_ms, verdict):
    data = rounds(10.0, p95_ms, 0.5)
    if verdict == "pass":
        assert gate(fake_benchmark(data), [], p95_budget_ms=P95_BUDGET_MS).gate == "pass"
    else:
        with pytest.raises(pytest.fail.Exception):
            gate(fake_benchmark(data), [], p95_budget_ms=P95_BUDGET_MS)


def test_ungated_rows_are_recorded_not_judged():
    table: list = []
    row = gate(fake_benchmark(rounds(20.0, 5000.0, 0.5)), table)
    assert row.gate == "-"
    assert table == [row]


def test_one_percentile_definition_for_gate_and_load_runner():
    data = [float(ms) for ms in range(1, 301)]
    row = gate(fake_benchmark(data), [])
    assert (row.p50, row.p95, row.p99) == pytest.approx(
        (percentile(data, 50), percentile(data, 95), percentile(data, 99))
    )
    assert row.p95 == pytest.approx(285.0)  # nearest rank: an observed round, the 285th
