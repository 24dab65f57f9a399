"""Passwords: reset (a code by email, then a new password with it) and change
(signed in, with the current password).

A completed reset proves the mailbox: it verifies the address and ends
every pending signup of it (the owner's way out of a pre-hijacked account).
A change is told to the address: "your password was changed" is how an
account takeover gets noticed.
"""

import logging

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from messaging.outbox import outbox_add_on_commit
from signup import limits
from signup.flows.codes import account_code_check, code_email_request, code_refused
from signup.flows.email_change import email_change_cancel
from signup.flows.mfa_login import LoginResult, login_result
from signup.flows.reauth import Proof, reauthenticate
from signup.messages import PASSWORD_CHANGED_EMAIL, notice_time
from signup.models import AccessToken, PendingSignup, User, VerificationCode
from signup.tokens import Client, user_tokens_revoke

logger = logging.getLogger(__name__)

CURRENT_REFUSED = (
    "The current password is not right. Forgot it? Log out and reset it "
    "(POST /api/v1/auth/password/reset)."
)


def password_reset_request(*, email: str) -> None:
    """A reset code by email, to an active account only (decided by the worker)."""
    code_email_request(email=email, purpose=VerificationCode.Purpose.RESET)


def password_reset_confirm(*, email: str, code: str, password: str, client: Client) -> LoginResult:
    """Set a new password with a reset code: every older token dies, a new one
    is given (or, with two-factor login on, the login's second step: a reset
    proves the mailbox, not the second factor, and leaves it on).

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
            email_change_cancel(user=user)
            user_tokens_revoke(user=user)
            limits.address_failures_clear(email=email, kind=limits.LOGIN)
            result = login_result(user=user, client=client)
    if not isinstance(checked, User):  # after the commit: the wrong attempt is counted
        raise code_refused(checked, purpose=VerificationCode.Purpose.RESET)
    logger.info("password-reset user=%s outcome=done", user.pk)
    return result


def password_change(*, token: AccessToken, proof: Proof, new_password: str) -> None:
    """Set a new password, re-authenticated with the current one (the new one
    has passed the validators); every other session ends, this one stays.

    A wrong current password is a failed login for the address and the IP
    (the same limits, counted before the hash, 429 past them). Two Argon2id
    operations on success: the check and the new hash, both before the
    transaction, so no row stays locked through them.
    """
    user = token.user
    reauthenticate(user=user, proof=proof, refused=CURRENT_REFUSED)
    password_hash = make_password(new_password)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(password=password_hash)
        email_change_cancel(user=user)
        user_tokens_revoke(user=user, keep=token)
        context = {"at": notice_time()}
        outbox_add_on_commit(user=user, kinds=[PASSWORD_CHANGED_EMAIL], context=context)
    user.password = password_hash
    logger.info("password-change user=%s outcome=done", user.pk)
