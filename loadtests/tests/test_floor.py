"""loadtests.floor's arrivals: Poisson, bounded by the duration."""

import random
import time

from loadtests.floor import arrivals


def test_arrivals_come_at_about_the_rate_and_stop_at_the_duration():
    random.seed(7)
    started = time.monotonic()
    count = sum(1 for _ in arrivals(2000.0, 0.1))
    assert 120 <= count <= 280  # 200 expected; Poisson's spread, a busy machine's lag
    assert time.monotonic() - started < 0.5
