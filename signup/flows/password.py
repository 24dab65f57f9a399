"""Password reset: a code by email, then a new password with it.

A completed reset proves the mailbox: it verifies the address and ends
every pending signup of it (the owner's way out of a pre-hijacked account).
"""

import logging

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from signup import limits
from signup.flows.codes import account_code_check, code_email_request, code_refused
from signup.models import AccessToken, PendingSignup, User, VerificationCode
from signup.tokens import token_issue, user_tokens_revoke

logger = logging.getLogger(__name__)


def password_reset_request(*, email: str) -> None:
    """A reset code by email, to an active account only (decided by the worker)."""
    code_email_request(email=email, purpose=VerificationCode.Purpose.RESET)


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
        checked = account_code_check(email=email, code=code, purpose=VerificationCode.Purpose.RESET)
        if isinstance(checked, User):
            user = checked
            user.password = password_hash
            fields = ["password"]
            if user.email_verified_at is None:
                user.email_verified_at = timezone.now()
                fields.append("email_verified_at")
            user.save(update_fields=fields)
            PendingSignup.objects.filter(user=user).delete()
            user_tokens_revoke(user=user)
            limits.address_failures_clear(email=email, kind=limits.LOGIN)
            raw, token = token_issue(user=user)
    if not isinstance(checked, User):
        raise code_refused(
            checked, purpose=VerificationCode.Purpose.RESET
        )  # after the commit: the wrong attempt is counted
    logger.info("password-reset user=%s outcome=done", user.pk)
    return raw, token
