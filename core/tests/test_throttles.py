"""core.throttles.window_count: the fixed-window counter behind every per-IP and
per-user limit costs one Redis round trip, and its key expires; the cache
(core.cache) builds its Redis client once, not per call."""

import pytest
import redis.connection
from django.core.cache import cache

from core.throttles import window_count


@pytest.fixture
def round_trips(monkeypatch) -> list[bytes]:
    """What each round trip to Redis sent (a pipeline sends all of its commands at once)."""
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(command)
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    return sent


def test_a_count_is_one_round_trip(round_trips):
    cache.get("warm-up")  # the connection's set-up (SELECT db) is not the count's
    round_trips.clear()

    counts = [window_count("rt-test:60:1", 60) for _ in range(3)]

    assert counts == [1, 2, 3]
    assert len(round_trips) == 3


def test_the_key_expires_after_the_window_and_reads_back_through_the_cache():
    window_count("ttl-test:60:1", 61)

    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    assert 0 < client.ttl(cache.make_key("ttl-test:60:1")) <= 61
    assert cache.get("ttl-test:60:1") == 1
    assert cache.decr("ttl-test:60:1") == 0  # a login limit gives one back this way


def test_another_cache_backend_still_counts(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    assert [window_count("locmem:60:1", 60) for _ in range(2)] == [1, 2]


@pytest.mark.parametrize("timeout", [1, 3600])
def test_a_key_left_without_expiry_is_counted_on(timeout):
    """A key that expired between the two commands comes back without expiry:
    harmless, its name says its window is over (the docstring's case)."""
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    client.set(cache.make_key("stale:60:1"), 5)

    assert window_count("stale:60:1", timeout) == 6


def test_the_cache_builds_its_redis_client_once():
    """Django's backend built a redis.Redis (~60 us here) for every call."""
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]

    assert cache._cache.get_client("any-key", write=True) is client  # type: ignore[attr-defined]
    assert cache._cache.get_client("any-key") is client  # type: ignore[attr-defined]
    cache.set("reused", 1)
    assert cache.get("reused") == 1
