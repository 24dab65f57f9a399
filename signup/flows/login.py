"""Log in: by password, or by a code sent by email.

Equal work on every path: Django's ModelBackend hashes the password for an
unknown address, and the code check runs the same statements and HMAC for a
known and an unknown address. Failed logins are limited per IP and per
canonical address (signup.limits), counted before the hash.
"""

import logging

from django.contrib.auth.backends import ModelBackend
from django.db import transaction

from core.errors import ApiError, rate_limited
from signup import limits
from signup.flows.codes import account_code_check, code_email_request, code_refused
from signup.flows.mfa_login import LoginResult, login_result
from signup.models import User, VerificationCode
from signup.tokens import Client

logger = logging.getLogger(__name__)
_PASSWORD_BACKEND = ModelBackend()

INVALID_CREDENTIALS = "Invalid email or password."


def user_login(*, email: str, password: str, client: Client) -> LoginResult:
    """A new token for a right password on a verified, active account (or,
    with two-factor login on, an mfa_token for the second step).

    One 400 for an unknown address, a wrong password and a deactivated
    account, after the same Argon2id work. Failed logins are limited per IP
    and per canonical address; the address limit stops password login only
    (a login code or a reset still works, so the owner is never locked out).

    Each attempt is counted (reserved) atomically before the hash, per IP
    and per address, so parallel attempts cannot pass the limits together;
    a wrong password keeps its reservations (they are the failure), a right
    one gives them back. Not in a transaction: each count commits at once.
    """
    ip_hold = login_attempt_reserve(email=email, ip=client.ip or "")
    # ModelBackend: the Lower(email) lookup, Argon2id check, is_active; for an
    # unknown address it hashes the password anyway (equal work). Called
    # directly, not through authenticate(): the other backend (django-axes)
    # guards the admin's login form only, and the API has its own limits.
    user = _PASSWORD_BACKEND.authenticate(None, username=email, password=password)
    if user is None:  # the reservations stand: they count this failure
        logger.info("login outcome=invalid")
        raise ApiError(400, "invalid_credentials", INVALID_CREDENTIALS)
    if not user.is_verified:  # the right password: no failure (docs/api.md)
        limits.login_address_release(email=email)
        limits.login_ip_release(ip_hold)
        raise ApiError(
            403,
            "email_not_verified",
            "Verify your email address before logging in: enter the code we emailed you "
            "(POST /api/v1/signup/verify), or ask for a new one (POST /api/v1/signup/resend).",
        )
    limits.login_address_clear(email=email)  # the failures, and this reservation
    limits.login_ip_release(ip_hold)
    result = login_result(user=user, client=client)  # the user's device was joined: no query
    if result.access_token:
        logger.info("login user=%s outcome=token method=password", user.pk)
    return result


def login_attempt_reserve(*, email: str, ip: str) -> limits.Hold:
    """Count this attempt per IP, then per address (429 past either limit);
    the IP's hold, to give back if the password is right."""
    ip_hold = limits.login_ip_reserve(ip=ip)
    if not ip_hold.allowed:
        raise rate_limited(
            "Too many failed logins from your network. Try again in "
            f"{ip_hold.retry_after} seconds.",
            ip_hold.retry_after,
        )
    hold = limits.login_address_reserve(email=email)
    if not hold.allowed:
        limits.login_ip_release(ip_hold)  # no password was checked
        raise rate_limited(
            "Too many failed logins for this address. Try again in "
            f"{hold.retry_after} seconds, or log in with a code sent by email "
            "(POST /api/v1/auth/code), or reset the password.",
            hold.retry_after,
        )
    return ip_hold


def login_code_request(*, email: str) -> None:
    """A login code by email, to a verified, active account only (decided by
    the worker: the request does the same work for every address)."""
    code_email_request(email=email, purpose=VerificationCode.Purpose.LOGIN)


def login_code_verify(*, email: str, code: str, client: Client) -> LoginResult:
    """A token for a right login code (or the second step, with two-factor
    login on); clears the address's failed password logins.

    The refusal is raised after the commit: the wrong attempt must be counted.
    """
    with transaction.atomic():
        checked = account_code_check(email=email, code=code, purpose=VerificationCode.Purpose.LOGIN)
        if isinstance(checked, User):
            limits.address_failures_clear(email=email, kind=limits.LOGIN)
            result = login_result(user=checked, client=client)
    if not isinstance(checked, User):
        raise code_refused(checked, purpose=VerificationCode.Purpose.LOGIN)
    if result.access_token:
        logger.info("login user=%s outcome=token method=code", checked.pk)
    return result
