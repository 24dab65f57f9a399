"""loadtests.stats.percentile: nearest rank, the one method of every gate and table."""

import ast
import sys
from pathlib import Path

import pytest

from loadtests import stats
from loadtests.stats import p50_p95_p99, percentile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        # the nearest-rank examples usually quoted for the method
        ([15, 20, 35, 40, 50], 5, 15),
        ([15, 20, 35, 40, 50], 30, 20),
        ([15, 20, 35, 40, 50], 40, 20),
        ([15, 20, 35, 40, 50], 50, 35),
        ([15, 20, 35, 40, 50], 100, 50),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 25, 7),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 50, 8),  # lower middle, not 9 (no averaging)
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 75, 15),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 100, 20),
        # the bench gate: 300 rounds
        (range(1, 301), 50, 150),
        (range(1, 301), 95, 285),
        (range(1, 301), 99, 297),
        # the load runner's smallest gated sample (MIN_GATED_SAMPLES): the 19th of 20
        (range(1, 21), 95, 19),
        (range(1, 101), 7, 7),  # 7 / 100 * 100 is 7.000000000000001 in floats: still rank 7
        ([42.5], 1, 42.5),
        ([42.5], 100, 42.5),
    ],
)
def test_known_values(values, pct, expected):
    assert percentile(values, pct) == expected


def test_order_of_the_input_does_not_matter():
    assert percentile([50, 15, 40, 20, 35], 50) == 35
    assert percentile(iter([50, 15, 40, 20, 35]), 50) == 35  # any iterable, read once


def test_no_interpolation_a_slow_top_five_percent_is_the_p95():
    assert percentile([10.0] * 95 + [200.0] * 5, 95) == 10.0
    assert percentile([10.0] * 94 + [200.0] * 6, 95) == 200.0
    assert percentile([10.0, 20.0], 50) == 10.0  # always a measured value


def test_no_values_give_zero():
    assert percentile([], 95) == 0.0
    assert p50_p95_p99([]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("pct", [0, -1, 100.1, 200])
def test_a_percentile_outside_0_to_100_is_an_error(pct):
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile([1.0, 2.0], pct)


def test_p50_p95_p99_is_percentile_three_times():
    data = [float(n) for n in range(300, 0, -1)]
    assert p50_p95_p99(data) == (percentile(data, 50), percentile(data, 95), percentile(data, 99))
    assert p50_p95_p99(data) == (150.0, 285.0, 297.0)


def test_stats_needs_only_the_standard_library():
    """Locust's virtualenv (requirements/load.txt) imports it: no Django, no project."""
    tree = ast.parse(Path(stats.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


# Outside this change's files; it still takes statistics.median (interpolated
# for an even count). Switch it to loadtests.stats and empty this set.
NOT_YET_ON_STATS = {"loadtests/hashcost.py"}


def harness_modules():
    for folder in ("benchmarks", "loadtests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def test_no_second_percentile_method_in_the_harness():
    """statistics' median and quantiles interpolate, as numpy's quantile does by default."""
    other_methods = {"median", "median_low", "median_high", "quantiles", "quantile"}
    found = []
    for name, tree in harness_modules():
        for node in ast.walk(tree):
            is_def = isinstance(node, ast.FunctionDef) and "percentile" in node.name
            is_def = is_def and not node.name.startswith("test_")
            if is_def and name != "loadtests/stats.py":
                found.append(f"{name}:{node.lineno}: def {node.name}")
            is_call = isinstance(node, ast.Attribute) and node.attr in other_methods
            if is_call and name not in NOT_YET_ON_STATS:
                found.append(f"{name}:{node.lineno}: .{node.attr}")
    assert not found


def test_no_harness_function_over_60_lines():
    """Helpers and runners stay readable steps (test functions are scenarios: not counted)."""
    long = []
    for name, tree in harness_modules():
        if Path(name).name.startswith("test_"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - first + 1 > 60:
                    long.append(f"{name}:{node.lineno} {node.name}")
    assert not long
