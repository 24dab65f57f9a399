"""Argon2id at OWASP's minimum: m=19 MiB, t=2, p=1 (~25-35 ms on this machine)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.hashers import Argon2PasswordHasher

from core.metrics import PASSWORD_HASH_CPU_SECONDS


class Argon2idHasher(Argon2PasswordHasher):
    """Django's Argon2 hasher with cheaper-but-still-OWASP parameters.

    Django's stock settings (t=2, m=100 MiB, p=8) take ~140 ms here; the
    signup p95 budget is 100 ms. Same algorithm name, so hashes are
    interchangeable and `must_update` upgrades stored ones when these change.

    Each hash, made or checked, reports the CPU its thread spent on it
    (core.metrics.PASSWORD_HASH_CPU_SECONDS): the signup's biggest cost as
    it runs under the traffic of the moment, not on a quiet machine. One
    series for both directions, so the metric cannot count logins to
    existing accounts apart from the others.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1

    def encode(self, password, salt):
        with _cpu_observed():
            return super().encode(password, salt)

    def verify(self, password, encoded):
        with _cpu_observed():
            return super().verify(password, encoded)


@contextmanager
def _cpu_observed() -> Iterator[None]:
    """Observe the CPU this thread spends inside the block, even if it raises."""
    started = time.thread_time()
    try:
        yield
    finally:
        PASSWORD_HASH_CPU_SECONDS.observe(time.thread_time() - started)
