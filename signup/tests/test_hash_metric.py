"""The production hasher reports each hash's CPU (core.metrics.PASSWORD_HASH_CPU_SECONDS)."""

from prometheus_client import REGISTRY

from signup.hashers import Argon2idHasher

COUNT = "payshift_password_hash_cpu_seconds_count"
SUM = "payshift_password_hash_cpu_seconds_sum"


def _observed() -> tuple[float, float]:
    return REGISTRY.get_sample_value(COUNT) or 0.0, REGISTRY.get_sample_value(SUM) or 0.0


def test_making_and_checking_a_hash_each_observe_its_cpu_in_one_series():
    hasher = Argon2idHasher()
    count, seconds = _observed()
    encoded = hasher.encode("correct horse battery staple", hasher.salt())
    assert hasher.verify("correct horse battery staple", encoded)
    assert not hasher.verify("wrong horse battery staple", encoded)
    new_count, new_seconds = _observed()
    assert new_count == count + 3
    # Three Argon2id runs at m=19 MiB, t=2: CPU, not zero, and not absurd.
    assert 0.001 < new_seconds - seconds < 10


def test_a_hash_that_raises_is_still_observed():
    hasher = Argon2idHasher()
    count, _ = _observed()
    assert not hasher.verify("x", "argon2$argon2id$not-a-hash")
    assert _observed()[0] == count + 1
