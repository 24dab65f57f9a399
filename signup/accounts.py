"""Accounts after signup: log in (password or emailed code), reset a password,
log out, edit the profile, and staff's status changes. One transaction each.

Answers that must not tell whether an account exists are decided here with
equal work on every path: Django's ModelBackend hashes the password for an
unknown address, and the code check runs the same queries and HMAC for a
known and an unknown address. Errors are ApiError (core.errors).
"""

import enum
import logging

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from core.errors import ApiError
from messaging.outbox import outbox_add_on_commit
from signup import attempts
from signup.limits import LimitResult
from signup.models import AccessToken, PendingSignup, Profile, User, VerificationCode
from signup.services import (
    CODE_EMAILS,
    VerifyOutcome,
    address_code_check,
    code_email_register,
    code_email_request,
)
from signup.tokens import token_issue, user_tokens_revoke

logger = logging.getLogger(__name__)
_PASSWORD_BACKEND = ModelBackend()

LOGIN_CODE_EMAIL = "accounts.login_code"
RESET_CODE_EMAIL = "accounts.password_reset"
DEACTIVATED_EMAIL = "accounts.deactivated.email"
DEACTIVATED_NOTICE = "accounts.deactivated.notify"
REACTIVATED_EMAIL = "accounts.reactivated.email"
REACTIVATED_NOTICE = "accounts.reactivated.notify"

INVALID_CREDENTIALS = "Invalid email or password."
INVALID_CODE = "Invalid or expired code."


class CodeOutcome(enum.Enum):
    OK = "ok"
    INVALID = "invalid"  # wrong, expired, used, or no such (eligible) account: one answer
    LOCKED = "locked"  # too many wrong codes for this address since the last request


def _rate_limited(detail: str, retry_after: int, code: str = "rate_limited") -> ApiError:
    return ApiError(429, code, detail, headers={"Retry-After": str(max(1, retry_after))})


# --- password login ----------------------------------------------------------------


def user_login(*, email: str, password: str, ip: str) -> tuple[str, AccessToken]:
    """A new token for a right password on a verified, active account.

    One 400 for an unknown address, a wrong password and a deactivated
    account, after the same Argon2id work. Failed logins are limited per IP
    and per canonical address; the address limit stops password login only
    (a login code or a reset still works, so the owner is never locked out).

    Each attempt is counted (reserved) atomically before the hash, per IP
    and per address, so parallel attempts cannot pass the limits together;
    a wrong password keeps its reservations (they are the failure), a right
    one gives them back. Not in a transaction: each count commits at once.
    """
    ip_hold = attempts.login_ip_reserve(ip=ip)
    if not ip_hold.allowed:
        raise _rate_limited(
            "Too many failed logins from your network. Try again in "
            f"{ip_hold.retry_after} seconds.",
            ip_hold.retry_after,
        )
    hold = attempts.login_address_reserve(email=email)
    if not hold.allowed:
        attempts.login_ip_release(ip_hold)  # no password was checked
        raise _rate_limited(
            "Too many failed logins for this address. Try again in "
            f"{hold.retry_after} seconds, or log in with a code sent by email "
            "(POST /api/v1/auth/code), or reset the password.",
            hold.retry_after,
        )

    # ModelBackend: the Lower(email) lookup, Argon2id check, is_active; for an
    # unknown address it hashes the password anyway (equal work). Called
    # directly, not through authenticate(): the other backend (django-axes)
    # guards the admin's login form only, and the API has its own limits.
    user = _PASSWORD_BACKEND.authenticate(None, username=email, password=password)
    if user is None:  # the reservations stand: they count this failure
        logger.info("login outcome=invalid")
        raise ApiError(400, "invalid_credentials", INVALID_CREDENTIALS)
    if not user.is_verified:  # the right password: no failure (docs/api.md)
        attempts.login_address_release(email=email)
        attempts.login_ip_release(ip_hold)
        raise ApiError(
            403,
            "email_not_verified",
            "Verify your email address before logging in: enter the code we emailed you "
            "(POST /api/v1/signup/verify), or ask for a new one (POST /api/v1/signup/resend).",
        )
    attempts.login_address_clear(email=email)  # the failures, and this reservation
    attempts.login_ip_release(ip_hold)
    raw, token = token_issue(user=user)
    logger.info("login user=%s outcome=token method=password", user.pk)
    return raw, token


# --- emailed codes: login and reset ------------------------------------------------------


def _can_log_in(user: User) -> bool:
    return user.is_active and user.is_verified


def _can_reset(user: User) -> bool:
    return user.is_active


code_email_register(VerificationCode.Purpose.LOGIN, kind=LOGIN_CODE_EMAIL, eligible=_can_log_in)
code_email_register(VerificationCode.Purpose.RESET, kind=RESET_CODE_EMAIL, eligible=_can_reset)


def login_code_request(*, email: str) -> LimitResult:
    """A login code by email, to a verified, active account only (decided by
    the worker: the request does the same work for every address)."""
    return code_email_request(email=email, purpose=VerificationCode.Purpose.LOGIN)


def password_reset_request(*, email: str) -> LimitResult:
    """A reset code by email, to an active account only (decided by the worker)."""
    return code_email_request(email=email, purpose=VerificationCode.Purpose.RESET)


@transaction.atomic(savepoint=False)
def account_code_check(*, email: str, code: str, purpose: str) -> tuple[CodeOutcome, User | None]:
    """Match code against the address's live code of this purpose, and use it.

    The same check, statements and equal work as verification
    (services.address_code_check). Whether the account may still use the
    code (the purpose's rule in CODE_EMAILS: active; verified for login) is
    asked only once the code matched: a wrong code costs the same for every
    address. Call inside the transaction that acts on the result.
    """
    checked = address_code_check(email=email, code=code, purpose=purpose)
    if checked is VerifyOutcome.LOCKED:
        return CodeOutcome.LOCKED, None
    if isinstance(checked, VerifyOutcome):
        return CodeOutcome.INVALID, None
    user = User.objects.get(pk=checked.user_id)
    _, eligible = CODE_EMAILS[purpose]
    if not eligible(user):  # deactivated (or, for login, unverified) since it was sent
        return CodeOutcome.INVALID, None
    return CodeOutcome.OK, user


def _code_refused(outcome: CodeOutcome) -> ApiError:
    if outcome is CodeOutcome.LOCKED:
        return _rate_limited(
            "Too many wrong codes for this address: the code no longer works. "
            "Ask for a new code, then try again.",
            settings.SIGNUP_CODE_COOLDOWN_SECONDS,
            code="too_many_attempts",
        )
    return ApiError(400, "invalid_code", INVALID_CODE)


def login_code_verify(*, email: str, code: str) -> tuple[str, AccessToken]:
    """A token for a right login code; clears the address's failed password logins.

    The refusal is raised after the commit: the wrong attempt must be counted.
    """
    with transaction.atomic():
        outcome, user = account_code_check(
            email=email, code=code, purpose=VerificationCode.Purpose.LOGIN
        )
        if outcome is CodeOutcome.OK:
            assert user is not None  # OK always comes with its user
            attempts.address_failures_clear(email=email, kind=attempts.LOGIN)
            raw, token = token_issue(user=user)
    if outcome is not CodeOutcome.OK or user is None:
        raise _code_refused(outcome)
    logger.info("login user=%s outcome=token method=code", user.pk)
    return raw, token


def password_reset_confirm(*, email: str, code: str, password: str) -> tuple[str, AccessToken]:
    """Set a new password with a reset code: every older token dies, a new one is given.

    The password is hashed before the transaction (and on every path: equal
    work), so no row stays locked through Argon2id. A reset code proves the
    address is the user's, so an unverified account becomes verified, and
    every pending signup of the address dies (their tokens could otherwise
    still verify it later with another password: pre-account hijacking).
    """
    password_hash = make_password(password)
    with transaction.atomic():
        outcome, user = account_code_check(
            email=email, code=code, purpose=VerificationCode.Purpose.RESET
        )
        if outcome is CodeOutcome.OK:
            assert user is not None  # OK always comes with its user
            user.password = password_hash
            fields = ["password"]
            if user.email_verified_at is None:
                user.email_verified_at = timezone.now()
                fields.append("email_verified_at")
            user.save(update_fields=fields)
            PendingSignup.objects.filter(user=user).delete()
            user_tokens_revoke(user=user)
            attempts.address_failures_clear(email=email, kind=attempts.LOGIN)
            raw, token = token_issue(user=user)
    if outcome is not CodeOutcome.OK or user is None:
        raise _code_refused(outcome)  # after the commit: the wrong attempt is counted
    logger.info("password-reset user=%s outcome=done", user.pk)
    return raw, token


# --- the signed-in user --------------------------------------------------------------------


def profile_update(*, user: User, full_name: str) -> Profile:
    """Set the user's full name (one UPDATE; the profile always exists, see user_create)."""
    Profile.objects.filter(user=user).update(full_name=full_name)
    profile = user.profile
    profile.full_name = full_name
    return profile


# --- account status changes (staff) -------------------------------------------------------


@transaction.atomic
def user_deactivate(*, user: User) -> bool:
    """Deactivate: tokens revoked at once; the user emailed and notified, every
    admin notified (one INSERT), all through the outbox. False if it already was."""
    return _status_change(user=user, active=False)


@transaction.atomic
def user_reactivate(*, user: User) -> bool:
    """Reactivate: the user emailed and notified, every admin notified."""
    return _status_change(user=user, active=True)


_STATUS_KINDS = {
    False: [DEACTIVATED_EMAIL, DEACTIVATED_NOTICE],
    True: [REACTIVATED_EMAIL, REACTIVATED_NOTICE],
}


def _status_change(*, user: User, active: bool) -> bool:
    """Lock the row (two staff at once change it once), flip it, tell everyone."""
    locked = User.objects.select_for_update().only("pk", "is_active").get(pk=user.pk)
    if locked.is_active == active:
        return False
    User.objects.filter(pk=user.pk).update(is_active=active)
    user.is_active = active
    if not active:
        user_tokens_revoke(user=user)
    outbox_add_on_commit(user=user, kinds=_STATUS_KINDS[active])
    logger.info("account user=%s outcome=%s", user.pk, "reactivated" if active else "deactivated")
    return True
