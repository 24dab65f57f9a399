"""The arrival grid: Poisson by default, evenly spaced on request, at the offered rate."""

import itertools
import statistics

import pytest

from loadtests.pacing import Grid, Schedule
from loadtests.stats import percentile


def gaps(grid: Grid, count: int) -> list[float]:
    times = [grid.due(i) for i in range(count)]
    return [b - a for a, b in itertools.pairwise(times)]


def test_poisson_is_the_default_and_its_gaps_are_exponential():
    grid = Grid(schedule=Schedule.steady(20.0), users=20, seed=7)
    assert grid.arrivals_process == "poisson"
    g = gaps(grid, 20_001)
    mean = statistics.fmean(g)
    assert mean == pytest.approx(1 / 20, rel=0.03)
    # Exponential: standard deviation equals the mean, and clumps happen
    # (a tenth of the gaps under ~0.105 of the mean): the tail comes from them.
    assert statistics.pstdev(g) == pytest.approx(mean, rel=0.05)
    assert percentile(g, 10) == pytest.approx(0.105 * mean, rel=0.1)


def test_uniform_arrivals_are_evenly_spaced():
    grid = Grid(schedule=Schedule.steady(20.0), users=20, arrivals_process="uniform")
    assert set(round(gap, 9) for gap in gaps(grid, 100)) == {0.05}


def test_poisson_follows_a_rate_change():
    grid = Grid(schedule=Schedule.spike(10.0, at=20, seconds=20, factor=10), users=100, seed=3)
    times = [grid.due(i) for i in range(1200)]
    during = sum(20 <= t < 40 for t in times)
    before = sum(t < 20 for t in times)
    assert (
        during == pytest.approx(2000 * 0.5, rel=0.1) or during > 900
    )  # 100/s for 20 s, cut at 1200
    assert before == pytest.approx(200, rel=0.2)


def test_users_keep_their_phases_and_late_turns_are_counted():
    grid = Grid(schedule=Schedule.steady(10.0), users=2, seed=1)
    first, second = grid.join(now=0.0), grid.join(now=0.0)
    assert (first.index, second.index) == (0, 1)
    first.started(now=grid.due(0))
    assert first.index == 2
    # far behind: stale turns are skipped and counted as missed
    first.started(now=grid.due(40))
    assert grid.missed > 0
    assert grid.summary()["arrivals_process"] == "poisson"


def test_an_unknown_process_is_refused():
    with pytest.raises(ValueError, match="arrivals must be one of"):
        Grid(schedule=Schedule.steady(1.0), users=1, arrivals_process="bursty")
