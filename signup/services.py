"""Signup business rules: one transaction each, every cost visible here.

No signals: a signup's whole cost is the password hash plus the queries in
user_signup. Email and notifications are outbox rows, delivered by workers.
"""

import enum
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.breaker import BreakerOpenError, broker_breaker
from core.broker import BROKER_ERRORS
from messaging.outbox import outbox_add_on_commit
from signup.codes import NO_CODE_HASH, code_generate, code_hash, code_matches
from signup.limits import (
    LimitResult,
    address_attempt_failed,
    address_attempts_begin,
    address_code_ask,
    address_code_request,
)
from signup.models import PendingSignup, Profile, User, VerificationCode, Wallet
from signup.selectors import LiveCode, live_code_for_address, user_by_email
from signup.verification_tokens import pending_signup_add, pending_signup_for_token

logger = logging.getLogger(__name__)

VERIFICATION_EMAIL = "signup.verification"
SIGNUP_NOTICE_EMAIL = "signup.attempt_notice"
ANNOUNCE_NEW_USER = "announce_new_user"  # signup.notifications


class VerifyOutcome(enum.Enum):
    VERIFIED = "verified"
    INVALID = "invalid"  # wrong, expired, used, or unknown address: one answer
    LOCKED = "locked"  # too many wrong attempts: the code is dead


def user_signup(
    *,
    email: str,
    password: str,
    verification_token: str,
    full_name: str = "",
    record_answer: Callable[[str], None] | None = None,
) -> None:
    """Create the account, or quietly email the owner of an existing one.

    The password is hashed on every path (equal work), and the caller gets
    the same answer either way. email must already be normalized. Every
    path records this signup under verification_token (the client's, see
    signup.verification_tokens): only a verify that presents it gives the
    account this password. record_answer (the Idempotency-Key record) runs
    first in whichever transaction does the work, so the answer and the
    effects commit together; it gets the password's hash (Argon2id),
    computed once here.
    """
    password_hash = make_password(password)
    pending = partial(
        pending_signup_add,
        token=verification_token,
        password_hash=password_hash,
        full_name=full_name,
    )
    try:
        with transaction.atomic():
            if record_answer is not None:
                record_answer(password_hash)
            user = user_create(email=email, password_hash=password_hash, full_name=full_name)
            pending(user_id=user.pk)
            address_code_request(email=email, force=True)
            outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER])
    except IntegrityError:
        # Taken, possibly by a concurrent signup that just committed.
        _signup_existing(
            email=email,
            record_pending=pending,
            record_answer=None if record_answer is None else partial(record_answer, password_hash),
        )
        return
    logger.info("signup user=%s outcome=created", user.pk)


@transaction.atomic
def _signup_existing(
    *,
    email: str,
    record_pending: Callable[..., None],
    record_answer: Callable[[], None] | None = None,
) -> None:
    """Same 202 outside: a fresh code if unverified, a notice if verified.

    This signup is recorded for any existing account (one INSERT: equal
    work; it can only ever complete an unverified one's verification), and
    the account's password stays as it is: it changes only when a verify
    presents this signup's token. Subject to the per-address limits, silently.
    """
    if record_answer is not None:
        record_answer()
    user = user_by_email(email=email)
    if user is None:
        return
    record_pending(user_id=user.pk)
    if not user.is_active:
        return
    if not address_code_request(email=email).send:
        logger.info("signup user=%s outcome=existing-limited", user.pk)
        return
    kind = SIGNUP_NOTICE_EMAIL if user.is_verified else VERIFICATION_EMAIL
    outbox_add_on_commit(user=user, kinds=[kind])
    logger.info("signup user=%s outcome=existing kind=%s", user.pk, kind)


# purpose -> (the code email's kind, which accounts may get it). Verification
# here; signup.accounts registers login and reset (code_email_register).
CODE_EMAILS: dict[str, tuple[str, Callable[[User], bool]]] = {}


def code_email_register(purpose: str, *, kind: str, eligible: Callable[[User], bool]) -> None:
    CODE_EMAILS[purpose] = (kind, eligible)


code_email_register(
    VerificationCode.Purpose.VERIFY_EMAIL,
    kind=VERIFICATION_EMAIL,
    eligible=lambda user: user.is_active and not user.is_verified,
)


@transaction.atomic
def code_email_request(*, email: str, purpose: str) -> LimitResult:
    """Record a request for a code by email; a worker sends it if the address
    has an account the purpose allows (CODE_EMAILS): resend, login, reset.

    The 429 depends only on earlier requests of this address for this
    purpose (signup.limits): the owner's signup does not show in it; an
    answered request restarts the purpose's wrong-code count, known address
    or not. Whether the address has an eligible account is decided by the
    worker (signup.tasks.resend_code), so the request runs the same
    statements and one enqueue for every address (issue 8, point 3; looking
    the account up here made login-code and reset requests ~2 ms slower for
    accounts that exist). If the broker is down the enqueue fails fast and
    the request does the work itself (the timing differs only then).
    Enqueued before commit: the job reads only the account, never the limit
    row, so it does not matter whether it runs before the commit or after a
    rollback.
    """
    from signup.tasks import resend_code  # signup.tasks imports this module

    limit = address_code_ask(email=email, purpose=purpose)
    if not limit.allowed:
        return limit
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
    return limit


def email_code_resend(*, email: str) -> LimitResult:
    """A new verification code, for an active, unverified account."""
    return code_email_request(email=email, purpose=VerificationCode.Purpose.VERIFY_EMAIL)


@transaction.atomic
def code_email_dispatch(*, email: str, purpose: str) -> None:
    """Queue the purpose's code email if email has an account it allows.

    Runs in the worker (signup.tasks.resend_code), after the request's
    limits let the request through.
    """
    kind, eligible = CODE_EMAILS[purpose]
    user = user_by_email(email=email)
    if user is not None and eligible(user):
        outbox_add_on_commit(user=user, kinds=[kind])
        logger.info("code-request user=%s purpose=%s outcome=queued", user.pk, purpose)


@transaction.atomic(savepoint=False)
def address_code_check(
    *, email: str, code: str, purpose: str, owner_id: int | None = None
) -> LiveCode | VerifyOutcome:
    """The address's live code of purpose if code matches it, else why not.

    With owner_id, the code must also be that user's (verify: the user the
    presented signup token belongs to; 0 when it names no signup); a
    mismatch is a wrong answer like any other.

    Equal work for every address (docs/api.md): lock the address's attempt
    count (created for unknown addresses too), one query for the live code
    (plain values, see live_code_for_address), one HMAC (against a stand-in
    hash when there is no code), and one UPDATE of the count on any wrong
    answer. The 5th wrong answer kills the live code. The caller uses the
    code (the row stays locked) in the same transaction.
    """
    budget = address_attempts_begin(email=email, purpose=purpose)
    if budget.exhausted:
        return VerifyOutcome.LOCKED
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
        address_attempt_failed(budget)
        if budget.failures + 1 >= settings.SIGNUP_CODE_MAX_ATTEMPTS:
            # The live code dies with the last allowed failure: a later
            # request resets the count but must not bring it back. One
            # statement by address, for every address (0 rows where none).
            codes_kill_for_address(email=email, purpose=purpose, now=now)
        logger.info(
            "code-check purpose=%s outcome=invalid attempts=%s", purpose, budget.failures + 1
        )
        return VerifyOutcome.INVALID
    VerificationCode.objects.filter(pk=row.pk).update(used_at=now)  # locked: single use
    return row


@transaction.atomic
def email_code_verify(*, email: str, code: str, verification_token: str) -> VerifyOutcome:
    """Check the address's live verification code and the signup's token;
    on a match, verify the account with that signup's password and name.

    The token is looked up on every path (one indexed query: equal work).
    A token of another address, of an expired signup, or none at all is a
    wrong answer, counted like a wrong code. Every signup of the account
    dies with the verification: whoever else signed the address up holds
    nothing afterwards (signup.verification_tokens).
    """
    pending = pending_signup_for_token(verification_token)
    checked = address_code_check(
        email=email,
        code=code,
        purpose=VerificationCode.Purpose.VERIFY_EMAIL,
        owner_id=0 if pending is None else pending[0],
    )
    if isinstance(checked, VerifyOutcome):
        return checked
    assert pending is not None  # owner_id matched the code's user
    _, password_hash, full_name = pending
    verified = User.objects.filter(pk=checked.user_id, email_verified_at__isnull=True).update(
        email_verified_at=timezone.now(), password=password_hash
    )
    if verified:
        Profile.objects.filter(user_id=checked.user_id).update(full_name=full_name)
    PendingSignup.objects.filter(user_id=checked.user_id).delete()
    logger.info("verify user=%s outcome=verified", checked.user_id)
    return VerifyOutcome.VERIFIED


def codes_kill_for_address(*, email: str, purpose: str, now) -> None:
    """Mark every live code of purpose for email's account used (any address)."""
    owners = User.objects.filter(**User.objects.email_lookup(email)).values("pk")
    VerificationCode.objects.filter(user__in=owners, purpose=purpose, used_at__isnull=True).update(
        used_at=now
    )


@transaction.atomic
def verification_code_issue(*, user: User, purpose: str) -> str:
    """A new code for user; every older live code of that purpose dies.

    Called by the worker as it sends the email, so the plaintext exists only
    in that process and in the email (see README, "Why the worker makes the code").
    """
    now = timezone.now()
    VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True).update(
        used_at=now
    )
    code = code_generate()
    VerificationCode.objects.create(
        user=user,
        purpose=purpose,
        code_hash=code_hash(code, user_id=user.pk, purpose=purpose),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.SIGNUP_CODE_TTL_SECONDS),
    )
    return code


@transaction.atomic(savepoint=False)
def user_create(
    *,
    email: str,
    password: str | None = None,
    password_hash: str | None = None,
    full_name: str = "",
    **fields,
) -> User:
    """The one way to create a user: the user, its profile and its wallet, atomically.

    Signup, UserManager.create_user (createsuperuser, the shell) and the admin
    all call it. Give password (hashed here), password_hash (hashed already,
    e.g. outside the caller's transaction), or neither (an unusable password).
    No savepoint: inside signup's transaction it costs exactly its 3 INSERTs,
    and an IntegrityError (the address is taken) aborts the caller's block.
    """
    user = User(email=User.objects.normalize_email(email), **fields)
    if password_hash is not None:
        user.password = password_hash
    else:
        user.set_password(password)
    user.save(force_insert=True)
    Profile.objects.create(user=user, full_name=full_name)
    Wallet.objects.create(user=user)
    return user
