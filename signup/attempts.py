"""Failed password logins, per address and per IP.

Per address (the canonical key, signup.addresses) in the database, for
known and unknown addresses alike, so a 429 tells nothing about who has an
account. Per client IP in the Redis cache, failing open like the per-IP
throttle (core.throttles): a coarse guard against one client trying many
addresses.

Wrong codes are counted in signup.limits (per address and purpose, with
the code requests that reset the count); this module keeps the rest.
"""

import logging
import math
from datetime import timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.breaker import BreakerOpenError, cache_breaker
from signup.addresses import address_key
from signup.models import AddressCounter

logger = logging.getLogger(__name__)

LOGIN = "login"
_CACHE_ERRORS = (redis.RedisError, OSError)


# --- per address (database) ----------------------------------------------------


def address_counter_get(*, email: str, kind: str, lock: bool = False) -> AddressCounter | None:
    rows = AddressCounter.objects.filter(key=address_key(email), kind=kind)
    if lock:
        rows = rows.select_for_update()
    return rows.first()


@transaction.atomic(savepoint=False)
def address_failure_record(*, email: str, kind: str, window_seconds: int | None = None) -> int:
    """One more failure for (address, kind); the count after it.

    With window_seconds, a count older than the window starts again at 1.
    """
    now = timezone.now()
    row, created = AddressCounter.objects.select_for_update().get_or_create(
        key=address_key(email), kind=kind, defaults={"failures": 1, "window_started_at": now}
    )
    if created:
        return 1
    if window_seconds is not None and row.window_started_at <= now - timedelta(
        seconds=window_seconds
    ):
        row.failures, row.window_started_at = 1, now
    else:
        row.failures += 1
    row.save(update_fields=["failures", "window_started_at"])
    return row.failures


def address_failures_clear(*, email: str, kind: str) -> None:
    """Forget the failures of (address, kind): one DELETE."""
    AddressCounter.objects.filter(key=address_key(email), kind=kind).delete()


def login_address_retry_after(counter: AddressCounter | None) -> int:
    """Seconds until password login for this address is allowed again (0: now)."""
    if counter is None or counter.failures < settings.LOGIN_FAILURES_PER_ADDRESS:
        return 0
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    left = (counter.window_started_at + timedelta(seconds=window) - timezone.now()).total_seconds()
    return max(0, math.ceil(left))


# --- per client IP (cache, fails open) ---------------------------------------------


def _ip_key(ip: str) -> tuple[str, int]:
    """A fixed window: the key names the window, so incr is atomic and expiry exact."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    now = timezone.now().timestamp()
    bucket = int(now // window)
    return f"login-failures:{ip}:{bucket}", max(1, math.ceil((bucket + 1) * window - now))


def login_ip_retry_after(*, ip: str) -> int:
    key, left = _ip_key(ip)
    try:
        failures = cache_breaker.call(lambda: cache.get(key, 0), errors=_CACHE_ERRORS)
    except (BreakerOpenError, *_CACHE_ERRORS):
        logger.warning("login-limit=ip state=fail-open reason=cache-unavailable")
        return 0
    return left if failures >= settings.LOGIN_FAILURES_PER_IP else 0


def login_ip_failure_record(*, ip: str) -> None:
    key, left = _ip_key(ip)

    def incr() -> None:
        cache.add(key, 0, timeout=left + 1)
        cache.incr(key)

    try:
        cache_breaker.call(incr, errors=_CACHE_ERRORS)
    except (BreakerOpenError, *_CACHE_ERRORS, ValueError):  # ValueError: expired between
        logger.warning("login-limit=ip state=unrecorded")
