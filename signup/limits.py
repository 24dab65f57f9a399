"""Every per-address, per-IP and per-user counter: code requests, wrong codes,
failed logins, data exports.

A new limit goes here. All of them are atomic across processes and count
known and unknown addresses alike (a 429 tells nothing about who has an
account); the per-IP ones live in Redis and fail open, the per-address ones
in the database and hold while Redis is down.

Codes, per canonical address and purpose: one row per (canonical address,
purpose), for every address asked about, known or not
(signup.models.AddressLimit), locked while it is read and updated: two
resends at once may not both pass. Three things, kept apart so that what an
outsider can observe depends only on what an outsider can do:

- recent: every code allowed (signups and asks): at most one per
  SIGNUP_CODE_COOLDOWN_SECONDS and SIGNUP_CODES_PER_HOUR per hour. It only
  decides, silently, whether a code is actually sent.
- asks: requests anyone can make for any address (resend; the login-code and
  reset-code requests). Only these decide the 429 and its Retry-After, so
  the owner's signup never shows there (issue 8, point 2).
Wrong codes and failed logins are one mechanism: a count per (address,
kind) in signup.models.AddressCounter (kind "login", or "code:<purpose>"),
reserved atomically before the check (address_attempt_reserve) and given
back when the attempt was no failure. A code's count restarts with each
answered ask; a login's with its window. Counted for every address, so the
429 for too many wrong attempts appears for any address, and never tells
whether it has an account.
"""

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.breaker import BreakerOpenError, cache_breaker
from core.throttles import fixed_window, window_count
from signup.addresses import address_key
from signup.models import AddressCounter, AddressLimit

logger = logging.getLogger(__name__)

HOUR = 3600
VERIFY_EMAIL = "verify_email"

# One statement for a known and an unknown address alike (equal work): insert
# the row or lock the existing one. LOWER(%s) is signup.addresses.address_key
# in SQL: the canonical address is computed by the database, as for the
# Lower(email) unique index on users. Works on PostgreSQL and SQLite >= 3.35.
_LOCK_ROW = """
    INSERT INTO signup_addresslimit (email, purpose, recent, asks)
    VALUES (LOWER(%s), %s, '[]', '[]')
    ON CONFLICT (email, purpose) DO UPDATE SET recent = signup_addresslimit.recent
    RETURNING id, recent, asks
"""


@dataclass(frozen=True)
class LimitResult:
    allowed: bool  # the request is answered (202), not refused (429)
    retry_after: int = 0  # seconds, when not allowed
    send: bool = True  # a code may be sent now (always False when not allowed)


@dataclass
class _Row:
    id: int
    recent: list[float]
    asks: list[float]


def _load(value) -> list[float]:
    return json.loads(value) if isinstance(value, str | bytes) else list(value)


def _lock(*, email: str, purpose: str) -> _Row:
    """Create or lock the row of (address_key(email), purpose): one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_ROW, [email, purpose])
        pk, recent, asks = cursor.fetchone()
    return _Row(id=pk, recent=_load(recent), asks=_load(asks))


def _wait(times: list[float], now: float) -> float:
    """Seconds until one more request fits the cooldown and the hourly cap."""
    wait = 0.0
    if times and now - times[-1] < settings.SIGNUP_CODE_COOLDOWN_SECONDS:
        wait = times[-1] + settings.SIGNUP_CODE_COOLDOWN_SECONDS - now
    if len(times) >= settings.SIGNUP_CODES_PER_HOUR:
        wait = max(wait, times[-settings.SIGNUP_CODES_PER_HOUR] + HOUR - now)
    return wait


def _last_hour(times: list[float], now: float) -> list[float]:
    return [t for t in times if t > now - HOUR]


def _keep(times: list[float]) -> list[float]:
    return times[-settings.SIGNUP_CODES_PER_HOUR :]


@transaction.atomic(savepoint=False)
def address_code_request(
    *, email: str, force: bool = False, purpose: str = VERIFY_EMAIL
) -> LimitResult:
    """May a code be sent to email now? Records it if so (signup's paths).

    force records it whatever the limits say (a brand-new account always gets
    its first code). Silent: the caller answers the same either way. Two
    statements for every address: lock-or-create, update.
    """
    now = time.time()
    row = _lock(email=email, purpose=purpose)
    recent = _last_hour(row.recent, now)
    send = force or _wait(recent, now) <= 0
    if send:
        recent = _keep([*recent, now])
    AddressLimit.objects.filter(pk=row.id).update(recent=recent)
    return LimitResult(allowed=True, send=send)


@transaction.atomic(savepoint=False)
def address_code_ask(*, email: str, purpose: str = VERIFY_EMAIL) -> LimitResult:
    """A request for a code that anyone can make for any address (resend).

    allowed (202) or not (429, with retry_after) depends only on earlier asks
    for this address, never on whether it has an account or signed up; an
    allowed ask resets the wrong-code count (the caller sends a new code),
    and send says whether a code may actually go out (the limits of
    address_code_request, silently). Two statements for every address.
    """
    now = time.time()
    row = _lock(email=email, purpose=purpose)
    asks = _last_hour(row.asks, now)
    wait = _wait(asks, now)
    if wait > 0:
        return LimitResult(allowed=False, retry_after=max(1, math.ceil(wait)), send=False)
    recent = _last_hour(row.recent, now)
    send = _wait(recent, now) <= 0
    if send:
        recent = _keep([*recent, now])
    AddressLimit.objects.filter(pk=row.id).update(asks=_keep([*asks, now]), recent=recent)
    # The wrong-code count restarts (a new code is coming): one UPDATE, 0 rows
    # where nothing was counted.
    AddressCounter.objects.filter(key=address_key(email), kind=code_kind(purpose)).update(
        failures=0
    )
    return LimitResult(allowed=True, send=send)


def code_kind(purpose: str) -> str:
    """The AddressCounter kind of purpose's wrong codes."""
    return f"code:{purpose}"


def code_attempt_reserve(*, email: str, purpose: str) -> "Hold":
    """Count one code check for (address, purpose) before it is made: one
    statement; not allowed past SIGNUP_CODE_MAX_ATTEMPTS since the last ask.

    Call inside the check's transaction: the count's row stays locked until
    it commits, so two checks of one address run one after the other.
    """
    return address_attempt_reserve(
        email=email, kind=code_kind(purpose), limit=settings.SIGNUP_CODE_MAX_ATTEMPTS
    )


def code_attempt_release(*, email: str, purpose: str) -> None:
    """The reserved check was a right code: no failure."""
    address_attempt_release(email=email, kind=code_kind(purpose))


# --- failed password logins (per address in the database, per IP in Redis) ---------
#
# Every login attempt is counted before its password is hashed, atomically,
# and given back when the password was right: a reservation. Counting after
# the hash (as this module once did) let parallel attempts all read the same
# count and all get a password check past the limit (issue 18).
#
# Per address (the canonical key, signup.addresses) in the database, for
# known and unknown addresses alike, so a 429 tells nothing about who has an
# account: one INSERT ... ON CONFLICT DO UPDATE ... RETURNING reserves the
# attempt (window logic included) and returns the count. Per client IP in
# the Redis cache, a fixed-window counter (core.throttles.window_count),
# failing open like the per-IP throttle: a coarse guard against one client
# trying many addresses.

LOGIN = "login"
NO_WINDOW = datetime(2000, 1, 1, tzinfo=UTC)  # a count with no window: nothing is older
_CACHE_ERRORS = (redis.RedisError, OSError)


@dataclass(frozen=True)
class Hold:
    """One reserved attempt: counted now, given back if it was no failure."""

    allowed: bool  # within the limit: check the password
    count: int = 0  # attempts in the window, this one included (0: not counted)
    retry_after: int = 0  # seconds, when not allowed
    key: str | None = None  # the cache key it was counted in (per IP)


# --- attempts per address (database): wrong codes and failed logins ----------------

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


def address_attempt_reserve(
    *, email: str, kind: str, limit: int, window_seconds: int | None = None
) -> Hold:
    """Count one attempt for (address, kind) before it is made: one statement.

    Allowed while the count, this attempt included, is at most limit in a
    window of window_seconds (started by the first attempt counted; None: no
    window, the count only restarts when cleared). A refused attempt is
    counted too, and does not move the window. The row stays locked until
    the transaction commits (in autocommit: at once).
    """
    now = timezone.now()
    window = timedelta(seconds=window_seconds) if window_seconds else now - NO_WINDOW
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _RESERVE, [email, kind, adapt(now), adapt(now - window), adapt(now - window)]
        )
        count, started = cursor.fetchone()
    if count <= limit:
        return Hold(allowed=True, count=count)
    if not window_seconds:
        return Hold(allowed=False, count=count)
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


def address_failures_reset(*, email: str, kind: str) -> None:
    """No failures left for (address, kind), a reservation's included: one
    UPDATE (the next reservation starts a new window); not
    address_failures_clear, whose DELETE Django wraps in a transaction
    (BEGIN, DELETE, COMMIT)."""
    AddressCounter.objects.filter(key=address_key(email), kind=kind).update(failures=0)


def login_address_clear(*, email: str) -> None:
    """A right login: no failures left, this reservation's included."""
    address_failures_reset(email=email, kind=LOGIN)


def login_address_release(*, email: str) -> None:
    """The reserved login was no failure (a right password, unverified account)."""
    address_attempt_release(email=email, kind=LOGIN)


# --- logins per client IP (cache, fails open) -------------------------------------


def login_ip_reserve(*, ip: str) -> Hold:
    """Reserve a password login for this client IP (LOGIN_FAILURES_PER_IP per window).

    A fixed window: the key names it, so the count is one atomic INCR and
    its expiry exact. Without the cache: allowed, and nothing to give back.
    """
    # Kept a minute past its window, so a release never meets an expired key.
    return _window_reserve(
        f"login-failures:{ip}",
        window=settings.LOGIN_FAILURE_WINDOW_SECONDS,
        limit=settings.LOGIN_FAILURES_PER_IP,
        keep=60,
        what="login-limit=ip",
    )


def _window_reserve(prefix: str, *, window: int, limit: int, keep: int, what: str) -> Hold:
    """One more in prefix's current fixed window (one atomic INCR on a key
    that names the window, so its expiry is exact): allowed up to limit.
    Without the cache: allowed, and nothing to give back."""
    bucket, left = fixed_window(window)
    key = f"{prefix}:{bucket}"
    try:
        count = cache_breaker.call(lambda: window_count(key, left + keep), errors=_CACHE_ERRORS)
    except (BreakerOpenError, *_CACHE_ERRORS, ValueError):
        logger.warning("%s state=fail-open reason=cache-unavailable", what)
        return Hold(allowed=True)
    if count > limit:
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


# --- data exports per user (cache, fails open) --------------------------------------


def export_reserve(*, user_id: int) -> Hold:
    """Count one data export for this user before it is built (EXPORTS_PER_HOUR
    in a fixed hour): one atomic INCR, as login_ip_reserve. Without the
    cache: allowed (an export only reads what the user may read anyway)."""
    return _window_reserve(
        f"exports:{user_id}",
        window=HOUR,
        limit=settings.EXPORTS_PER_HOUR,
        keep=1,
        what="export-limit=user",
    )
