"""Per-address limits on codes, for every code purpose, in the database.

One row per (canonical address, purpose), for every address asked about,
known or not (signup.models.AddressLimit), locked while it is read and
updated: atomic across processes (two resends at once may not both pass),
and they hold while Redis is down. Three things, kept apart so that what an
outsider can observe depends only on what an outsider can do:

- recent: every code allowed (signups and asks): at most one per
  SIGNUP_CODE_COOLDOWN_SECONDS and SIGNUP_CODES_PER_HOUR per hour. It only
  decides, silently, whether a code is actually sent.
- asks: requests anyone can make for any address (resend; the login-code and
  reset-code requests). Only these decide the 429 and its Retry-After, so
  the owner's signup never shows there (issue 8, point 2).
- failures: wrong codes since the last answered ask, counted for every
  address (verify, login code, reset code), so the 429 for too many wrong
  attempts appears for any address, and never tells whether it has an account.
"""

import json
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from signup.models import AddressLimit

HOUR = 3600
VERIFY_EMAIL = "verify_email"

# One statement for a known and an unknown address alike (equal work): insert
# the row or lock the existing one. LOWER(%s) is signup.addresses.address_key
# in SQL: the canonical address is computed by the database, as for the
# Lower(email) unique index on users. Works on PostgreSQL and SQLite >= 3.35.
_LOCK_ROW = """
    INSERT INTO signup_addresslimit (email, purpose, recent, asks, failures)
    VALUES (LOWER(%s), %s, '[]', '[]', 0)
    ON CONFLICT (email, purpose) DO UPDATE SET failures = signup_addresslimit.failures
    RETURNING id, recent, asks, failures
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
    failures: int


def _load(value) -> list[float]:
    return json.loads(value) if isinstance(value, str | bytes) else list(value)


def _lock(*, email: str, purpose: str) -> _Row:
    """Create or lock the row of (address_key(email), purpose): one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_ROW, [email, purpose])
        pk, recent, asks, failures = cursor.fetchone()
    return _Row(id=pk, recent=_load(recent), asks=_load(asks), failures=failures)


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
    AddressLimit.objects.filter(pk=row.id).update(
        asks=_keep([*asks, now]), recent=recent, failures=0
    )
    return LimitResult(allowed=True, send=send)


@dataclass(frozen=True)
class AttemptBudget:
    """The wrong-code count of one address and purpose, its row locked."""

    row_id: int
    failures: int

    @property
    def exhausted(self) -> bool:
        return self.failures >= settings.SIGNUP_CODE_MAX_ATTEMPTS


def address_attempts_begin(*, email: str, purpose: str = VERIFY_EMAIL) -> AttemptBudget:
    """Lock the address's count before checking a code; call inside a transaction.

    Every address, known or not, gets a row and a count: one statement.
    When budget.exhausted, answer 429 without checking the code.
    """
    row = _lock(email=email, purpose=purpose)
    return AttemptBudget(row_id=row.id, failures=row.failures)


def address_attempt_failed(budget: AttemptBudget) -> None:
    """Count one wrong code (one UPDATE); call on every wrong answer."""
    AddressLimit.objects.filter(pk=budget.row_id).update(failures=budget.failures + 1)
