"""Per-client-IP rate limit for POST endpoints, failing open without Redis.

A fixed-window counter per (endpoint, client IP, window) in the cache:
SET NX EX then INCR in one round trip (window_count), atomic across
processes, so parallel requests cannot all read the same count (ninja's own
AnonRateThrottle reads a list of timestamps and writes it back apart: 22 of
40 parallel requests passed a limit of 20). The key names its window, so a
key is never reused after it expires. The per-address limits live in the
database (signup.limits).
"""

import functools
import ipaddress
import logging
import math
import time

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from ninja.throttling import AnonRateThrottle

from core.breaker import BreakerOpenError, cache_breaker

logger = logging.getLogger(__name__)

OFF = {"off", "", "0", "none"}


DEFAULT_PROXY_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def proxy_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """TRUSTED_PROXY_IPS as networks (an address is a /32 or /128); ValueError if one is not."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_proxy(address: str) -> bool:
    """True for a peer whose forwarded headers are believed (TRUSTED_PROXY_IPS)."""
    entries = tuple(settings.TRUSTED_PROXY_IPS) or DEFAULT_PROXY_NETWORKS
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxy_networks(entries))


def client_ip(request: HttpRequest) -> str:
    """The client's address for the per-IP limit.

    REMOTE_ADDR, unless it is a trusted proxy (TRUSTED_PROXY_IPS; unset:
    loopback and private networks). Only then is X-Forwarded-For read, from
    the right: at most TRUSTED_PROXY_COUNT hops (all of them when it is 0 and
    TRUSTED_PROXY_IPS is set), stopping at the first hop that is not a
    trusted proxy. Entries further left are client-supplied. A client that
    reaches gunicorn directly cannot pick its address with a forged header.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    limit = settings.TRUSTED_PROXY_COUNT or (len(hops) if settings.TRUSTED_PROXY_IPS else 0)
    if limit <= 0 or not hops or not trusted_proxy(peer):
        return peer
    client = peer
    for hop in reversed(hops[-limit:]):
        client = hop
        if not trusted_proxy(hop):
            break
    return client


def fixed_window(seconds: int, now: float | None = None) -> tuple[int, int]:
    """The current window of `seconds` (aligned to the epoch): its number, and
    the whole seconds until it ends (at least 1)."""
    now = time.time() if now is None else now
    bucket = int(now // seconds)
    return bucket, max(1, math.ceil((bucket + 1) * seconds - now))


def window_count(key: str, timeout: int) -> int:
    """One more in the counter at key; the count after it, this one included.

    On Redis one round trip (Django's add then incr took three: SET NX,
    EXISTS, INCRBY): SET NX EX creates the key at 0 with its expiry where it
    is absent and INCR counts, in one MULTI/EXEC, atomic across processes.
    The key is the cache's (KEY_PREFIX, version): cache.get and cache.decr
    read it. A key found without expiry is counted on: harmless, its name
    says its window. Raises the cache's errors.
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return _window_count_any(backend, key, timeout)
    cache_key = backend.make_and_validate_key(key)
    pipe = backend._cache.get_client(cache_key, write=True).pipeline()
    pipe.set(cache_key, 0, ex=timeout, nx=True)
    pipe.incr(cache_key)
    return pipe.execute()[1]


def _window_count_any(backend: BaseCache, key: str, timeout: int) -> int:
    """window_count on any other cache backend: add, then incr."""
    backend.add(key, 0, timeout=timeout)
    try:
        return backend.incr(key)
    except ValueError:  # gone between the two (expired or evicted): start it again
        backend.add(key, 0, timeout=timeout)
        return backend.incr(key)


class ClientIPThrottle(AnonRateThrottle):
    """RATE_LIMIT_PER_IP per client IP, counted separately for each endpoint.

    The rate is read from settings on each request, so 'off' and changes
    take effect without a restart of the import-time router.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self._parsed: tuple[str, tuple] = ("", (None, None))
        self.num_requests, self.duration = None, None

    def get_ident(self, request: HttpRequest) -> str:
        return client_ip(request)

    def get_cache_key(self, request: HttpRequest) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def wait(self) -> float:
        """Seconds until the current window ends: when the next request passes.

        The same for every client of a rate (windows are aligned), so nothing
        of one request is kept on this object, which every thread shares.
        """
        return float(fixed_window(self.duration or 1)[1])

    def allow_request(self, request: HttpRequest) -> bool:
        rate = settings.RATE_LIMIT_PER_IP.strip().lower()
        if rate in OFF:
            return True
        if self._parsed[0] != rate:
            self._parsed = (rate, self.parse_rate(rate))
        self.rate = rate
        num_requests, duration = self._parsed[1]
        self.num_requests, self.duration = num_requests, duration
        if num_requests is None or duration is None:  # parse_rate(None): no limit
            return True
        bucket, left = fixed_window(duration)
        key = f"{self.get_cache_key(request)}:{duration}:{bucket}"
        try:
            count = cache_breaker.call(
                lambda: window_count(key, left + 1), errors=(redis.RedisError, OSError)
            )
        except (BreakerOpenError, redis.RedisError, OSError, ValueError):
            logger.warning("throttle=%s state=fail-open reason=cache-unavailable", self.scope)
            return True
        return count <= num_requests
