"""The load runner's p95 gates judge the exact per-request times, not Locust's buckets.

Locust rounds response times into buckets (10 ms steps above 100 ms) before
its percentiles, so near the 100 ms bound its p95 can be a bucket edge on
either side of the real one. The locustfile's events.request listener writes
every exact time (requests.csv, loadtests.record); the runner gates on those.
"""

import pytest

from loadtests import run
from loadtests.record import Row
from loadtests.report import LOGIN, SIGNUP, LocustRow, fmt_ms


def requests(name: str, times: list[float], kind: str = "signup_new") -> list[Row]:
    return [
        Row(
            start=1000.0 + i,
            type="POST",
            name=name,
            kind=kind,
            status=202,
            ms=ms,
            ok=True,
            email=f"a{i}@example.com",
            emails=1,
            error="",
        )
        for i, ms in enumerate(times)
    ]


def locust_row(name: str, p95: float) -> LocustRow:
    return LocustRow(
        type="POST", name=name, count=100, failures=0, rps=5.0, p50=40, p95=p95, p99=p95
    )


def args(scenario: str = "mixed"):
    return run.parse_args(["--scenario", scenario, "--rate", "5"])


def test_exact_times_under_the_bound_pass_where_locusts_bucket_says_100():
    times = [40.0] * 94 + [99.6] * 6  # p95 (the 95th) = 99.6, Locust rounds it to 100
    check = run.p95_check(args(), locust_row(SIGNUP, 100.0), requests(SIGNUP, times))
    assert check.ok, check.detail
    assert "exact p95 99.6 ms" in check.detail


def test_exact_times_over_the_bound_fail_whatever_locust_says():
    times = [40.0] * 90 + [130.0] * 10
    check = run.p95_check(args(), locust_row(SIGNUP, 90.0), requests(SIGNUP, times))
    assert not check.ok
    assert check.name == "signup p95"
    assert "exact p95 130.0 ms" in check.detail
    assert "Locust (bucketed) p95 90" in check.detail


def test_no_exact_signup_times_fail():
    check = run.p95_check(args(), locust_row(SIGNUP, 10.0), [])
    assert (check.ok, check.detail) == (False, "no signup requests recorded")


def test_without_locusts_stats_the_exact_times_still_decide():
    check = run.p95_check(args(), None, requests(SIGNUP, [50.0] * 30))
    assert check.ok
    assert "Locust" not in check.detail


@pytest.mark.parametrize(("slow_ms", "ok"), [(99.9, True), (100.0, False)])
def test_login_p95_is_exact_too(slow_ms, ok):
    times = [30.0] * 18 + [slow_ms] * 2  # 20 logins: p95 is the 19th
    check = run.login_p95_check(args(), locust_row(LOGIN, 50.0), requests(LOGIN, times, "login"))
    assert check.ok is ok


def test_a_few_logins_are_reported_not_gated():
    check = run.login_p95_check(args(), None, requests(LOGIN, [500.0] * 5, "login"))
    assert check.ok
    assert "only 5 logins" in check.detail


def test_fmt_ms_is_the_same_figures_as_a_table_or_a_line():
    values = [float(n) for n in range(1, 101)]
    assert fmt_ms(values) == "    50.0    95.0    99.0"
    assert fmt_ms(values, width=0, sep="/") == "50.0/95.0/99.0"
    assert fmt_ms([], width=0, sep="/") == "-/-/-"
