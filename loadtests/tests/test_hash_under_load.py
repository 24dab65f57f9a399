"""The runner's second yardstick: one web hash's CPU under the run's own load."""

from loadtests import cpu, dbstats
from loadtests.run import Measured

EXPOSITION = """\
# HELP payshift_password_hash_cpu_seconds CPU time of one password hash.
# TYPE payshift_password_hash_cpu_seconds histogram
payshift_password_hash_cpu_seconds_bucket{le="0.02"} 3.0
payshift_password_hash_cpu_seconds_bucket{le="+Inf"} 10.0
payshift_password_hash_cpu_seconds_count 10.0
payshift_password_hash_cpu_seconds_sum 0.25
# HELP payshift_signups_total Signup requests by outcome.
# TYPE payshift_signups_total counter
payshift_signups_total{outcome="accepted"} 10.0
"""


def test_hash_totals_reads_count_and_sum():
    assert dbstats.hash_totals(EXPOSITION) == (10.0, 0.25)


def test_hash_totals_is_none_without_the_metric():
    assert dbstats.hash_totals("# nothing here\n") is None


def test_hash_under_load_is_the_mean_over_the_run():
    before = dbstats.Counters(hashes=(10.0, 0.25))
    after = dbstats.Counters(hashes=(110.0, 2.65))
    assert dbstats.hash_under_load_ms(before, after) == (24.0, 100)


def test_hash_under_load_is_none_when_unread_or_idle():
    read = dbstats.Counters(hashes=(10.0, 0.25))
    assert dbstats.hash_under_load_ms(dbstats.Counters(), read) is None
    assert dbstats.hash_under_load_ms(read, read) is None


def test_per_signup_line_gives_both_yardsticks():
    cpu_ms = {"web": 30.0, "worker": 9.0, "postgres": 4.5, "redis": 0.5, "total": 44.0}
    line = cpu.per_signup_line(cpu_ms, 20.0, 1000, (22.0, 1000))
    assert "total 44.0 = 2.20 hashes (one Argon2id hash 20.0 ms, measured in this run)" in line
    assert "one hash took 22.0 ms of CPU in the web (mean of 1000)" in line
    assert line.endswith("so the total is 2.00 of those")
    assert "under this load" not in cpu.per_signup_line(cpu_ms, 20.0, 1000)


def test_the_quiet_yardstick_is_the_lower_of_before_and_after():
    assert Measured(hash_ms=25.9, hash_ms_after=19.6).yardstick_ms == 19.6
    assert Measured(hash_ms=18.4, hash_ms_after=20.4).yardstick_ms == 18.4
    assert Measured(hash_ms=20.0).yardstick_ms == 20.0  # not measured after (--host)
    assert Measured().yardstick_ms == 0.0
