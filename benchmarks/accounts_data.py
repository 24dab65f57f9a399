"""Rows the accounts benchmarks need: a verified user with many notifications,
tokens and admins around it, made in bulk (setup time is not measured); an
account with two-factor login on, and its current TOTP code."""

import secrets
from datetime import timedelta

import pyotp
from django.conf import settings
from django.utils import timezone

from benchmarks.data import fresh_email
from messaging.models import Notification
from signup.authenticator import (
    TOTP_DIGITS,
    TOTP_PERIOD,
    recovery_code_hash,
    recovery_code_new,
    secret_encrypt,
    totp_secret_new,
)
from signup.models import AccessToken, Profile, RecoveryCode, TotpDevice, User, Wallet
from signup.tokens import token_digest, token_issue

FEED_SIZE = 10_000


def verified_account(*, password_hash: str, email: str | None = None) -> User:
    """A verified user with profile and wallet (three INSERTs, no hash)."""
    user = User.objects.create(
        email=email or fresh_email("member"),
        password=password_hash,
        email_verified_at=timezone.now(),
    )
    Profile.objects.create(user=user, full_name="Bench Member")
    Wallet.objects.create(user=user)
    return user


def notifications_for(user: User, count: int, *, read_every: int = 3) -> None:
    """count notifications, one a second back in time, every read_every-th one read."""
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(
                user=user,
                kind="welcome",
                title=f"Notification {n}",
                body="Something happened in your account.",
                dedupe_key=f"bench:{n}",
                created_at=now - timedelta(seconds=count - n),
                read_at=now if n % read_every == 0 else None,
            )
            for n in range(count)
        ],
        batch_size=5000,
    )


def tokens_for(user: User, count: int) -> None:
    """count other live tokens of the same user (their secrets are thrown away)."""
    expires = timezone.now() + timedelta(days=1)
    AccessToken.objects.bulk_create(
        [
            AccessToken(
                user=user, key_hash=token_digest(secrets.token_urlsafe(32)), expires_at=expires
            )
            for _ in range(count)
        ],
        batch_size=5000,
    )


def touched_token(user: User) -> str:
    """A token whose last_used_at is fresh, so a request runs only its lookup."""
    raw, token = token_issue(user=user)
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return raw


def totp_on_for(user: User) -> str:
    """Turn two-factor login on for user, as a confirmed enrolment leaves it
    (the secret encrypted, nothing used yet: last_step 0), with a set of
    recovery codes; the base32 secret, for totp_code."""
    secret = totp_secret_new()
    TotpDevice.objects.create(user=user, secret=secret_encrypt(secret), confirmed_at=timezone.now())
    RecoveryCode.objects.bulk_create(
        [
            RecoveryCode(
                user=user, code_hash=recovery_code_hash(recovery_code_new(), user_id=user.pk)
            )
            for _ in range(settings.MFA_RECOVERY_CODES)
        ]
    )
    return secret


def recovery_code_for(user: User) -> str:
    """One more live recovery code of user (its plaintext)."""
    code = recovery_code_new()
    RecoveryCode.objects.create(user=user, code_hash=recovery_code_hash(code, user_id=user.pk))
    return code


def totp_code(secret: str) -> str:
    """The code the authenticator app shows now (each works once per account:
    a fresh account, or a later step, for the next one)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).now()


def totp_account(*, password_hash: str) -> tuple[User, str]:
    """A verified account with two-factor login on; (user, its TOTP secret)."""
    user = verified_account(password_hash=password_hash, email=fresh_email("totp"))
    return user, totp_on_for(user)
