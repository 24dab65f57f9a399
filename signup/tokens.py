"""Opaque bearer tokens: 32 random bytes to the client, their SHA-256 at rest.

A random 256-bit secret needs no slow or keyed hash (there is nothing to
guess), so the lookup is one equality on a unique index. Expiry and
revocation are columns of that row, checked in the same query.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from signup.models import AccessToken, User

TOKEN_BYTES = 32


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(*, user: User) -> tuple[str, AccessToken]:
    """A new token for user: (the plaintext, shown once; the stored row)."""
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    token = AccessToken.objects.create(
        user=user,
        key_hash=token_digest(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.ACCESS_TOKEN_TTL_SECONDS),
    )
    return raw, token


def token_authenticate(*, raw: str) -> AccessToken | None:
    """The live token for raw with its user and profile, in one indexed query.

    None when unknown, expired, revoked or the account is inactive. last_used_at
    is written at most once a minute (a second statement only then).
    """
    if not raw or len(raw) > 256:
        return None
    now = timezone.now()
    token = (
        AccessToken.objects.select_related("user", "user__profile")
        .filter(
            key_hash=token_digest(raw),
            revoked_at__isnull=True,
            expires_at__gt=now,
            user__is_active=True,
        )
        .first()
    )
    if token is None:
        return None
    touch_before = now - timedelta(seconds=settings.ACCESS_TOKEN_TOUCH_SECONDS)
    if token.last_used_at is None or token.last_used_at < touch_before:
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, token: AccessToken) -> None:
    AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@transaction.atomic(savepoint=False)
def user_tokens_revoke(*, user: User) -> int:
    """Every live token of user stops working at once (one UPDATE)."""
    return AccessToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
