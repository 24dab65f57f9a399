"""--reference-hash-ms: a machine slower than the reference gets the same CPU
work per second, never more; a faster one gets the rate asked for."""

import pytest

from loadtests import run


@pytest.mark.parametrize(
    ("hash_ms", "rate"),
    [
        (12.0, 20.0),  # faster than the reference: the rate as asked
        (15.0, 20.0),
        (30.0, 10.0),  # twice as slow: half the arrivals
        (40.8, 7.4),  # the slowest hash measured on this machine kind
    ],
)
def test_rate_scales_down_on_a_slower_machine_only(hash_ms, rate):
    args = run.parse_args(["--scenario", "mixed", "--rate", "20", "--reference-hash-ms", "15"])

    assert run.rate_for_machine(args, hash_ms) == rate


def test_without_a_reference_the_rate_is_never_scaled():
    args = run.parse_args(["--scenario", "mixed", "--rate", "20"])

    assert run.rate_for_machine(args, 40.0) == 20.0


def test_a_confirming_run_starts_from_the_rate_asked_for():
    args = run.parse_args(["--scenario", "mixed", "--rate", "20", "--reference-hash-ms", "15"])
    args.rate = run.rate_for_machine(args, 30.0)

    assert run.rate_for_machine(args, 15.0) == 20.0
