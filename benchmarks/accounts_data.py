"""Rows the accounts benchmarks need: a verified user with many notifications,
tokens and admins around it, made in bulk (setup time is not measured)."""

import secrets
from datetime import timedelta

from django.utils import timezone

from benchmarks.data import fresh_email
from messaging.models import Notification
from signup.models import AccessToken, Profile, User, Wallet
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
