"""Per-client-IP rate limit for POST endpoints, failing open without Redis.

ninja's AnonRateThrottle keeps a (non-atomic) list of timestamps in the cache:
good enough for a coarse per-IP limit. The per-address limits that must hold
exactly live in the database (signup.limits).
"""

import logging

import redis
from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import AnonRateThrottle

from core.breaker import BreakerOpenError, cache_breaker

logger = logging.getLogger(__name__)

OFF = {"off", "", "0", "none"}


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT proxies in from the right
    of X-Forwarded-For (entries further left are client-supplied, not trusted)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "")


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
