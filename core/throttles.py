"""Per-client-IP rate limit for POST endpoints, failing open without Redis.

ninja's AnonRateThrottle keeps a (non-atomic) list of timestamps in the cache:
good enough for a coarse per-IP limit. The per-address limits that must hold
exactly live in the database (signup.limits).
"""

import functools
import ipaddress
import logging

import redis
from django.conf import settings
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


class ClientIPThrottle(AnonRateThrottle):
    """RATE_LIMIT_PER_IP per client IP, counted separately for each endpoint.

    The rate is read from settings on each request, so 'off' and changes
    take effect without a restart of the import-time router.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self._parsed: tuple[str, tuple] = ("", (None, None))

    def get_ident(self, request: HttpRequest) -> str:
        return client_ip(request)

    def get_cache_key(self, request: HttpRequest) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def wait(self) -> float:
        """Seconds until the oldest request on record leaves the window.

        ninja's wait() is None when more requests are on record than the
        rate allows (the rate was lowered), and a 429 must carry Retry-After.
        """
        if not self.history:
            return float(self.duration or 1)
        return max(1.0, self.duration - (self.now - self.history[-1]))

    def allow_request(self, request: HttpRequest) -> bool:
        rate = settings.RATE_LIMIT_PER_IP.strip().lower()
        if rate in OFF:
            return True
        if self._parsed[0] != rate:
            self._parsed = (rate, self.parse_rate(rate))
        self.rate = rate
        self.num_requests, self.duration = self._parsed[1]
        try:
            return cache_breaker.call(
                lambda: super(ClientIPThrottle, self).allow_request(request),
                errors=(redis.RedisError, OSError),
            )
        except (BreakerOpenError, redis.RedisError, OSError):
            logger.warning("throttle=%s state=fail-open reason=cache-unavailable", self.scope)
            return True
