"""Verification: the code proves the mailbox, the token the signup (verify,
resend, and the tokens that bind a verification to its signup).

Pre-account hijacking (Sudhodanan and Paverd, USENIX Security 2022): the
code proves the mailbox, but not which of the address's signups the owner
made. So every signup answer carries an opaque token, and verify takes it
back with the code: the account's password and name become those of the
signup whose token was presented, and every other signup of the address dies
with the verification. An attacker who signed the address up first, or right
after the owner, holds a token the owner never presents.

At rest only the SHA-256 of a token (signup.models.PendingSignup): 32 random
bytes need no slow or keyed hash. With an Idempotency-Key the token is
derived instead (a keyed hash of the key's scope, the key and the password),
so a replay of the same request answers the same token without it being
stored anywhere in clear.
"""

import base64
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from signup.flows.codes import CodeCheck, address_code_check, code_email_request, code_refused
from signup.models import PendingSignup, Profile, User, VerificationCode
from signup.tokens import TOKEN_BYTES, token_digest

logger = logging.getLogger(__name__)

_SALT = "payshift.signup.verification-token"


def verification_token_new() -> str:
    """A fresh random token: 43 URL-safe characters."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def verification_token_for_key(*, email: str, key: str, password: str) -> str:
    """The token of an Idempotency-Key signup: the same for the same key,
    address and password (a replay: its body matched the record's, so the
    normalized address is the same string), of the same form as a random
    one, and unguessable without SECRET_KEY and the password."""
    message = "\x00".join((email, key, password))
    digest = salted_hmac(_SALT, message, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pending_signup_add(*, user_id: int, token: str, password_hash: str, full_name: str) -> None:
    """Record one signup of user's address (one statement), on every signup path.

    An upsert: an Idempotency-Key signup sent again once its 24-hour record
    is gone derives the same token, and that signup is simply renewed.
    """
    row = PendingSignup(
        user_id=user_id, token_hash=token_digest(token), password=password_hash, full_name=full_name
    )
    PendingSignup.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["token_hash"],
        update_fields=["user", "password", "full_name", "created_at"],
    )


def pending_signup_for_token(token: str) -> tuple[int, str, str] | None:
    """(user id, password hash, full name) of the live signup token names, or None.

    One indexed query, run for every verify (equal work); the caller checks
    the user id against the address's code.
    """
    if not token or len(token) > 256:
        token = ""
    born_after = timezone.now() - timedelta(seconds=settings.SIGNUP_UNVERIFIED_TTL_SECONDS)
    row = (
        PendingSignup.objects.filter(token_hash=token_digest(token), created_at__gt=born_after)
        .values_list("user_id", "password", "full_name")
        .first()
    )
    return row


def email_verify(*, email: str, code: str, verification_token: str) -> None:
    """Check the address's live verification code and the signup's token;
    on a match, verify the account with that signup's password and name.

    The token is looked up on every path (one indexed query: equal work).
    A token of another address, of an expired signup, or none at all is a
    wrong answer, counted like a wrong code. Every signup of the account
    dies with the verification: whoever else signed the address up holds
    nothing afterwards. A refusal is raised after the commit (the wrong
    attempt must be counted).
    """
    with transaction.atomic():
        checked = _verify(email=email, code=code, verification_token=verification_token)
    if isinstance(checked, CodeCheck):
        raise code_refused(checked, purpose=VerificationCode.Purpose.VERIFY_EMAIL)


def _verify(*, email: str, code: str, verification_token: str) -> CodeCheck | None:
    pending = pending_signup_for_token(verification_token)
    checked = address_code_check(
        email=email,
        code=code,
        purpose=VerificationCode.Purpose.VERIFY_EMAIL,
        owner_id=0 if pending is None else pending[0],
    )
    if isinstance(checked, CodeCheck):
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
    return None


def email_code_resend(*, email: str) -> None:
    """A new verification code, for an active, unverified account (429 if asked too often)."""
    code_email_request(email=email, purpose=VerificationCode.Purpose.VERIFY_EMAIL)
