"""Re-authentication: a signed-in user proves it is still them before a
sensitive change (email change, closing the account, two-factor changes).

The body carries the account's current password, or, for a user who logs in
by code, a fresh login code (POST /api/v1/auth/code). Either counts as a
login attempt for the address and the client IP, reserved before the check
(signup.limits: 429 past the limits); a wrong one is 400
invalid_credentials and stays counted, a right one is given back.

Where two-factor login is on, the proof also carries mfa_code: a TOTP code
or a recovery code, checked once the first factor is right, counted on the
account's second-factor count (signup.flows.mfa_login; 429 past it).
"""

import logging
from dataclasses import dataclass

from django.contrib.auth.hashers import check_password
from django.db import transaction

from core.errors import ApiError
from signup import limits
from signup.flows.codes import account_code_check
from signup.flows.login import login_attempt_reserve
from signup.flows.mfa_login import second_factor_check_any, totp_on
from signup.models import User, VerificationCode

logger = logging.getLogger(__name__)

REAUTH_REFUSED = (
    "Confirm it is you: send the account's current password, or a fresh login code "
    "from POST /api/v1/auth/code."
)


MFA_CODE_MISSING = (
    "Two-factor login is on for this account: send mfa_code too, the code your "
    "authenticator app shows or one of your recovery codes."
)


@dataclass(frozen=True)
class Proof:
    """What a request offers as proof that it is still the account's owner."""

    ip: str  # the client's, as seen through the trusted proxies: the login limits'
    password: str | None = None
    code: str | None = None  # a fresh login code
    mfa_code: str | None = None  # a TOTP or recovery code, where two-factor login is on


def reauthenticate(*, user: User, proof: Proof, refused: str = REAUTH_REFUSED) -> None:
    """Return if the proof is right for user: the password (or a live login
    code of user's address), and the second factor where it is on; raise
    otherwise (400 invalid_credentials, or 429 past the limits)."""
    hold = login_attempt_reserve(email=user.email, ip=proof.ip)
    if proof.password is not None:
        right = check_password(proof.password, user.password)
    elif proof.code is not None:
        with transaction.atomic():  # a right code is used up; a wrong one counted
            checked = account_code_check(
                email=user.email, code=proof.code, purpose=VerificationCode.Purpose.LOGIN
            )
        right = isinstance(checked, User) and checked.pk == user.pk
    else:
        right = False
    if not right:  # the reservations stand: a failed login
        logger.info("reauth user=%s outcome=invalid", user.pk)
        raise ApiError(400, "invalid_credentials", refused)
    limits.login_address_clear(email=user.email)
    limits.login_ip_release(hold)
    if totp_on(user):
        if not proof.mfa_code:
            raise ApiError(400, "invalid_credentials", MFA_CODE_MISSING)
        second_factor_check_any(user=user, mfa_code=proof.mfa_code, refusal="invalid_credentials")
