"""Failed password logins, per address and per IP.

Every login attempt is counted before its password is hashed, atomically,
and given back when the password was right: a reservation. Counting after
the hash (as this module once did) let parallel attempts all read the same
count and all get a password check past the limit.

Per address (the canonical key, signup.addresses) in the database, for
known and unknown addresses alike, so a 429 tells nothing about who has an
account: one INSERT ... ON CONFLICT DO UPDATE ... RETURNING reserves the
attempt (window logic included) and returns the count. Per client IP in
the Redis cache, a fixed-window counter (core.throttles.window_count),
failing open like the per-IP throttle: a coarse guard against one client
trying many addresses.

Wrong codes are counted in signup.limits (per address and purpose, with
the code requests that reset the count); this module keeps the rest.
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.breaker import BreakerOpenError, cache_breaker
from core.throttles import fixed_window, window_count
from signup.addresses import address_key
from signup.models import AddressCounter

logger = logging.getLogger(__name__)

LOGIN = "login"
_CACHE_ERRORS = (redis.RedisError, OSError)


@dataclass(frozen=True)
class Hold:
    """One reserved login attempt: counted now, given back if it was no failure."""

    allowed: bool  # within the limit: check the password
    count: int = 0  # attempts in the window, this one included (0: not counted)
    retry_after: int = 0  # seconds, when not allowed
    key: str | None = None  # the cache key it was counted in (per IP)


# --- per address (database) ----------------------------------------------------

# One statement for a known and an unknown address alike (equal work): one
# more attempt for (address, kind), or 1 in a new window when the last one
# is over (or nothing is counted), and the count after it. LOWER(%s) is
# signup.addresses.address_key in SQL. Run in autocommit, the row is locked
# for this statement only: parallel attempts queue on it, each one counted,
# and no lock is held through the hash. PostgreSQL and SQLite >= 3.35.
_RESERVE = """
    INSERT INTO signup_addresscounter ("key", kind, failures, window_started_at)
    VALUES (LOWER(%s), %s, 1, %s)
    ON CONFLICT ("key", kind) DO UPDATE SET
        failures = CASE
            WHEN signup_addresscounter.failures = 0
                OR signup_addresscounter.window_started_at <= %s THEN 1
            ELSE signup_addresscounter.failures + 1 END,
        window_started_at = CASE
            WHEN signup_addresscounter.failures = 0
                OR signup_addresscounter.window_started_at <= %s THEN excluded.window_started_at
            ELSE signup_addresscounter.window_started_at END
    RETURNING failures, window_started_at
"""


def _aware(value: datetime | str) -> datetime:
    """A window_started_at from RETURNING (SQLite gives its stored text)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        assert parsed is not None, value
        value = parsed
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def address_attempt_reserve(*, email: str, kind: str, limit: int, window_seconds: int) -> Hold:
    """Count one attempt for (address, kind) before it is made: one statement.

    Allowed while the count, this attempt included, is at most limit in a
    window of window_seconds (started by the first attempt counted). A
    refused attempt is counted too, and does not move the window. Call
    outside a transaction (the row stays locked until it commits).
    """
    now = timezone.now()
    window = timedelta(seconds=window_seconds)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _RESERVE, [email, kind, adapt(now), adapt(now - window), adapt(now - window)]
        )
        count, started = cursor.fetchone()
    if count <= limit:
        return Hold(allowed=True, count=count)
    left = (_aware(started) + window - now).total_seconds()
    return Hold(allowed=False, count=count, retry_after=max(1, math.ceil(left)))


def address_attempt_release(*, email: str, kind: str) -> None:
    """Give one reserved attempt back (it was no failure): one UPDATE, never below 0."""
    AddressCounter.objects.filter(key=address_key(email), kind=kind, failures__gt=0).update(
        failures=F("failures") - 1
    )


def address_failures_clear(*, email: str, kind: str) -> None:
    """Forget the failures of (address, kind): one DELETE."""
    AddressCounter.objects.filter(key=address_key(email), kind=kind).delete()


def login_address_reserve(*, email: str) -> Hold:
    """Reserve a password login for this address (LOGIN_FAILURES_PER_ADDRESS per window)."""
    return address_attempt_reserve(
        email=email,
        kind=LOGIN,
        limit=settings.LOGIN_FAILURES_PER_ADDRESS,
        window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
    )


def login_address_clear(*, email: str) -> None:
    """A right login: no failures left, this reservation's included. One UPDATE
    (the next reservation starts a new window); not address_failures_clear,
    whose DELETE Django wraps in a transaction (BEGIN, DELETE, COMMIT)."""
    AddressCounter.objects.filter(key=address_key(email), kind=LOGIN).update(failures=0)


def login_address_release(*, email: str) -> None:
    """The reserved login was no failure (a right password, unverified account)."""
    address_attempt_release(email=email, kind=LOGIN)


# --- per client IP (cache, fails open) ---------------------------------------------


def login_ip_reserve(*, ip: str) -> Hold:
    """Reserve a password login for this client IP (LOGIN_FAILURES_PER_IP per window).

    A fixed window: the key names it, so the count is one atomic INCR and
    its expiry exact. Without the cache: allowed, and nothing to give back.
    """
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    bucket, left = fixed_window(window)
    key = f"login-failures:{ip}:{bucket}"
    try:
        # Kept a minute past its window, so a release never meets an expired key.
        count = cache_breaker.call(lambda: window_count(key, left + 60), errors=_CACHE_ERRORS)
    except (BreakerOpenError, *_CACHE_ERRORS, ValueError):
        logger.warning("login-limit=ip state=fail-open reason=cache-unavailable")
        return Hold(allowed=True)
    if count > settings.LOGIN_FAILURES_PER_IP:
        return Hold(allowed=False, count=count, retry_after=left, key=key)
    return Hold(allowed=True, count=count, key=key)


def login_ip_release(hold: Hold) -> None:
    """Give a reserved login back to its IP's count (it was no failure)."""
    key = hold.key
    if key is None:
        return
    try:
        cache_breaker.call(lambda: cache.decr(key), errors=_CACHE_ERRORS)
    except (BreakerOpenError, *_CACHE_ERRORS, ValueError):  # ValueError: expired since
        logger.warning("login-limit=ip state=unreleased")
