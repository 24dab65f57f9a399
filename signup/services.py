"""Signup business rules: one transaction each, every cost visible here.

No signals: a signup's whole cost is the password hash plus the queries in
user_signup. Email and notifications are outbox rows, delivered by workers.
"""

import enum
import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.outbox import outbox_add_on_commit
from signup.codes import code_generate, code_hash, code_matches
from signup.limits import LimitResult, address_code_request
from signup.models import Profile, User, VerificationCode, Wallet
from signup.selectors import user_by_email

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
    full_name: str = "",
    record_answer: Callable[[], None] | None = None,
) -> None:
    """Create the account, or quietly email the owner of an existing one.

    The password is hashed on every path (equal work), and the caller gets
    the same answer either way. email must already be normalized.
    record_answer (the Idempotency-Key record) runs first in whichever
    transaction does the work, so the answer and the effects commit together.
    """
    password_hash = make_password(password)
    try:
        with transaction.atomic():
            if record_answer is not None:
                record_answer()
            user = user_create(email=email, password_hash=password_hash, full_name=full_name)
            address_code_request(email=email, force=True)
            outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER])
    except IntegrityError:
        # Taken, possibly by a concurrent signup that just committed.
        _signup_existing(email=email, record_answer=record_answer)
        return
    logger.info("signup user=%s outcome=created", user.pk)


@transaction.atomic
def _signup_existing(*, email: str, record_answer: Callable[[], None] | None = None) -> None:
    """Same 202 outside: a fresh code if unverified, a notice if verified.

    Subject to the per-address limits, silently.
    """
    if record_answer is not None:
        record_answer()
    user = user_by_email(email=email)
    if user is None or not user.is_active:
        return
    if not address_code_request(email=email).allowed:
        logger.info("signup user=%s outcome=existing-limited", user.pk)
        return
    kind = SIGNUP_NOTICE_EMAIL if user.is_verified else VERIFICATION_EMAIL
    outbox_add_on_commit(user=user, kinds=[kind])
    logger.info("signup user=%s outcome=existing kind=%s", user.pk, kind)


@transaction.atomic
def email_code_resend(*, email: str) -> LimitResult:
    """Queue a fresh code for an unverified account; limits apply to any address."""
    limit = address_code_request(email=email)
    if not limit.allowed:
        return limit
    user = user_by_email(email=email)
    if user is not None and user.is_active and not user.is_verified:
        outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL])
        logger.info("resend user=%s outcome=queued", user.pk)
    return limit


@transaction.atomic
def email_code_verify(*, email: str, code: str) -> VerifyOutcome:
    """Check the latest live code; count wrong attempts; verify on a match."""
    purpose = VerificationCode.Purpose.VERIFY_EMAIL
    user = user_by_email(email=email)
    if user is None:
        return VerifyOutcome.INVALID
    now = timezone.now()
    row = (
        VerificationCode.objects.select_for_update()
        .filter(user=user, purpose=purpose, used_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    if row is None or row.expires_at <= now:
        return VerifyOutcome.INVALID
    if row.attempts >= settings.SIGNUP_CODE_MAX_ATTEMPTS:
        return VerifyOutcome.LOCKED
    if not code_matches(code, row.code_hash, user_id=user.pk, purpose=purpose):
        row.attempts += 1
        row.save(update_fields=["attempts"])
        logger.info("verify user=%s outcome=wrong-code attempts=%s", user.pk, row.attempts)
        return VerifyOutcome.INVALID
    row.used_at = now
    row.save(update_fields=["used_at"])
    if user.email_verified_at is None:
        user.email_verified_at = now
        user.save(update_fields=["email_verified_at"])
    logger.info("verify user=%s outcome=verified", user.pk)
    return VerifyOutcome.VERIFIED


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
