"""Re-authentication: a signed-in user proves it is still them before a
sensitive change (email change, closing the account, two-factor changes).

The body carries the account's current password, or, for a user who logs in
by code, a fresh login code (POST /api/v1/auth/code). Either counts as a
login attempt for the address and the client IP, reserved before the check
(signup.limits: 429 past the limits); a wrong one is 400
invalid_credentials and stays counted, a right one is given back.
"""

import logging

from django.contrib.auth.hashers import check_password
from django.db import transaction

from core.errors import ApiError
from signup import limits
from signup.flows.codes import account_code_check
from signup.flows.login import login_attempt_reserve
from signup.models import User, VerificationCode

logger = logging.getLogger(__name__)

REAUTH_REFUSED = (
    "Confirm it is you: send the account's current password, or a fresh login code "
    "from POST /api/v1/auth/code."
)


def reauthenticate(
    *,
    user: User,
    ip: str,
    password: str | None = None,
    code: str | None = None,
    refused: str = REAUTH_REFUSED,
):
    """Return if password (or a live login code of user's address) is right;
    raise otherwise (400 with the refused wording, or 429 past the limits)."""
    hold = login_attempt_reserve(email=user.email, ip=ip)
    if password is not None:
        right = check_password(password, user.password)
    elif code is not None:
        with transaction.atomic():  # a right code is used up; a wrong one counted
            checked = account_code_check(
                email=user.email, code=code, purpose=VerificationCode.Purpose.LOGIN
            )
        right = isinstance(checked, User) and checked.pk == user.pk
    else:
        right = False
    if not right:  # the reservations stand: a failed login
        logger.info("reauth user=%s outcome=invalid", user.pk)
        raise ApiError(400, "invalid_credentials", refused)
    limits.login_address_clear(email=user.email)
    limits.login_ip_release(hold)
