"""Emailed codes, for every purpose: the request (resend, login code, reset
code) and the check (verify, code login, reset confirm).

One mechanism for the three purposes (signup.messages.CODE_EMAILS says which
email and which accounts each one is for), with equal work for every
address: a request runs the same statements and one enqueue whether or not
the address has an account (the worker decides: resend_code), and a check
runs the same statements and one HMAC. The 5th wrong code for an address
kills its live code.
"""

import enum
import logging

import dramatiq
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.breaker import BreakerOpenError, broker_breaker
from core.broker import BROKER_ERRORS
from core.errors import ApiError, rate_limited
from messaging.outbox import outbox_add_on_commit
from signup.codes import NO_CODE_HASH, code_matches, codes_kill_for_address
from signup.limits import (
    LimitResult,
    address_code_ask,
    code_attempt_release,
    code_attempt_reserve,
)
from signup.messages import CODE_EMAILS
from signup.models import User, VerificationCode
from signup.selectors import LiveCode, live_code_for_address, user_by_email

logger = logging.getLogger(__name__)

INVALID_CODE = "Invalid or expired code."


class CodeCheck(enum.Enum):
    """Why a code was refused (a match returns the code itself)."""

    INVALID = "invalid"  # wrong, expired, used, or no such (eligible) account: one answer
    LOCKED = "locked"  # too many wrong codes for this address since the last request


# What to do after too many wrong codes, by purpose (verification names resend).
LOCKED_DETAIL: dict[str, str] = {
    VerificationCode.Purpose.VERIFY_EMAIL: "Too many wrong codes for this address. "
    "Request a new code with /api/v1/signup/resend, then try again.",
}
LOCKED_DEFAULT = (
    "Too many wrong codes for this address: the code no longer works. "
    "Ask for a new code, then try again."
)


def code_refused(outcome: CodeCheck, *, purpose: str) -> ApiError:
    """The answer to a refused code: one 400 for every reason, or the 429."""
    if outcome is CodeCheck.LOCKED:
        return rate_limited(
            LOCKED_DETAIL.get(purpose, LOCKED_DEFAULT),
            settings.SIGNUP_CODE_COOLDOWN_SECONDS,
            code="too_many_attempts",
        )
    return ApiError(400, "invalid_code", INVALID_CODE)


def code_request_refused(limit: LimitResult) -> ApiError:
    """The 429 of a code request (resend, login code, reset) its limits hold back."""
    return rate_limited(
        "A code was asked for this address recently. Check your inbox, "
        f"or try again in {limit.retry_after} seconds.",
        limit.retry_after,
    )


# --- the request -----------------------------------------------------------------------


@transaction.atomic
def code_email_request(*, email: str, purpose: str) -> None:
    """Record a request for a code by email; a worker sends it if the address
    has an account the purpose allows (CODE_EMAILS). Raises the 429.

    The 429 depends only on earlier requests of this address for this
    purpose (signup.limits): the owner's signup does not show in it; an
    answered request restarts the purpose's wrong-code count, known address
    or not. Whether the address has an eligible account is decided by the
    worker (resend_code), so the request runs the same statements and one
    enqueue for every address (looking the account up here made login-code
    and reset requests ~2 ms slower for accounts that exist). If the broker
    is down the enqueue fails fast and the request does the work itself (the
    timing differs only then). Enqueued before commit: the job reads only
    the account, never the limit row, so it does not matter whether it runs
    before the commit or after a rollback.
    """
    limit = address_code_ask(email=email, purpose=purpose)
    if not limit.allowed:
        raise code_request_refused(limit)
    # Enqueued even when the hourly code limit (which counts the owner's
    # signup) holds the email back: the enqueue must not tell them apart.
    try:
        broker_breaker.call(
            lambda: resend_code.send(email, limit.send, purpose), errors=BROKER_ERRORS
        )
    except (BreakerOpenError, *BROKER_ERRORS) as exc:
        logger.warning(
            "code-request purpose=%s outcome=inline reason=%s", purpose, type(exc).__name__
        )
        if limit.send:
            code_email_dispatch(email=email, purpose=purpose)


@transaction.atomic
def code_email_dispatch(*, email: str, purpose: str) -> None:
    """Queue the purpose's code email if email has an account it allows.

    Runs in the worker (resend_code), after the request's limits let the
    request through.
    """
    kind, _, eligible = CODE_EMAILS[purpose]
    user = user_by_email(email=email)
    if user is not None and eligible(user):
        outbox_add_on_commit(user=user, kinds=[kind])
        logger.info("code-request user=%s purpose=%s outcome=queued", user.pk, purpose)


@dramatiq.actor(queue_name="signup", max_retries=5, min_backoff=1000, time_limit=60_000)
def resend_code(
    email: str, send: bool = True, purpose: str = VerificationCode.Purpose.VERIFY_EMAIL
) -> None:
    """A code request answered 202: the worker decides whether to email.

    send is False when the code limits held the email back (the job is
    enqueued anyway: equal work). Loaded by the worker through signup.tasks.
    """
    if send:
        code_email_dispatch(email=email, purpose=purpose)


# --- the check -------------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def address_code_check(
    *, email: str, code: str, purpose: str, owner_id: int | None = None
) -> LiveCode | CodeCheck:
    """The address's live code of purpose if code matches it, else why not.

    With owner_id, the code must also be that user's (verify: the user the
    presented signup token belongs to; 0 when it names no signup); a
    mismatch is a wrong answer like any other.

    Equal work for every address (docs/api.md): reserve one attempt on the
    address's wrong-code count (one statement, created for unknown
    addresses too; its row stays locked), one query for the live code
    (plain values, see live_code_for_address), one HMAC (against a stand-in
    hash when there is no code). A wrong answer keeps its reservation, and
    the 5th kills the live code; a right one gives it back (one UPDATE).
    The caller uses the code (its row locked) in the same transaction.
    """
    hold = code_attempt_reserve(email=email, purpose=purpose)
    if not hold.allowed:
        return CodeCheck.LOCKED
    now = timezone.now()
    row = live_code_for_address(email=email, purpose=purpose)
    matched = code_matches(
        code,
        row.code_hash if row is not None else NO_CODE_HASH,
        user_id=row.user_id if row is not None else 0,
        purpose=purpose,
    )
    owned = owner_id is None or (row is not None and row.user_id == owner_id)
    if row is None or row.expires_at <= now or not matched or not owned:
        if hold.count >= settings.SIGNUP_CODE_MAX_ATTEMPTS:
            # The live code dies with the last allowed failure: a later
            # request resets the count but must not bring it back. One
            # statement by address, for every address (0 rows where none).
            codes_kill_for_address(email=email, purpose=purpose, now=now)
        logger.info("code-check purpose=%s outcome=invalid attempts=%s", purpose, hold.count)
        return CodeCheck.INVALID
    code_attempt_release(email=email, purpose=purpose)
    VerificationCode.objects.filter(pk=row.pk).update(used_at=now)  # locked: single use
    return row


@transaction.atomic(savepoint=False)
def account_code_check(*, email: str, code: str, purpose: str) -> User | CodeCheck:
    """The account a right code of purpose belongs to, the code used; else why not.

    The same check, statements and equal work as verification. Whether the
    account may still use the code (the purpose's rule in CODE_EMAILS:
    active; verified for login) is asked only once the code matched: a
    wrong code costs the same for every address. Call inside the
    transaction that acts on the result, and raise code_refused(...) after
    it commits (the wrong attempt must be counted).
    """
    checked = address_code_check(email=email, code=code, purpose=purpose)
    if isinstance(checked, CodeCheck):
        return checked
    user = User.objects.select_related("totp").get(pk=checked.user_id)  # login_result reads it
    if not CODE_EMAILS[purpose].eligible(user):  # deactivated (or unverified) since it was sent
        return CodeCheck.INVALID
    return user
