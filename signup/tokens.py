"""Opaque bearer tokens: 32 random bytes to the client, their SHA-256 at rest.

A random 256-bit secret needs no slow or keyed hash (there is nothing to
guess), so the lookup is one equality on a unique index. Expiry and
revocation are columns of that row, checked in the same query.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from signup.models import AccessToken, MfaChallenge, User

TOKEN_BYTES = 32


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Client:
    """Who asks for a token, as the sessions list shows it."""

    description: str = ""  # coarse, from the User-Agent (client_describe)
    ip: str | None = None  # as seen through the trusted proxies


def client_describe(user_agent: str) -> str:
    """A coarse description of a User-Agent ("Firefox on Linux", "curl"):
    enough for a person to recognise a session, no version or build."""
    found = re.search(_BROWSERS, user_agent)
    name = found.group(0) if found else ""
    name = {"Edg": "Edge", "OPR": "Opera", "CriOS": "Chrome", "FxiOS": "Firefox"}.get(name, name)
    system = next((label for key, label in _SYSTEMS if key in user_agent), "")
    if name and system:
        return f"{name} on {system}"
    return name or system or (user_agent.split("/", 1)[0].strip()[:40] or "Unknown client")


_BROWSERS = re.compile(
    r"Edg|OPR|CriOS|FxiOS|Firefox|Chrome|Safari|curl|Wget|python-requests|okhttp|PostmanRuntime"
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def token_issue(*, user: User, client: Client | None = None) -> tuple[str, AccessToken]:
    """A new token for user: (the plaintext, shown once; the stored row)."""
    client = client or Client()
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    token = AccessToken.objects.create(
        user=user,
        key_hash=token_digest(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.ACCESS_TOKEN_TTL_SECONDS),
        client=client.description[:100],
        ip=client.ip,
    )
    return raw, token


def token_authenticate(*, raw: str) -> AccessToken | None:
    """The live token for raw with its user, profile and authenticator (two-factor
    login's state, for re-authentication), in one indexed query.

    None when unknown, expired, revoked or the account is inactive. last_used_at
    is written at most once a minute (a second statement only then).
    """
    if not raw or len(raw) > 256:
        return None
    now = timezone.now()
    token = (
        AccessToken.objects.select_related("user", "user__profile", "user__totp")
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


def user_tokens_revoke(*, user: User, keep: AccessToken | None = None) -> int:
    """Every live token of user stops working at once (one UPDATE), but keep;
    and every unfinished two-factor login (its mfa_token expires now, one
    UPDATE: a DELETE would be wrapped in a transaction): a first factor
    checked before a password change cannot finish after it."""
    now = timezone.now()
    MfaChallenge.objects.filter(user=user, expires_at__gt=now).update(expires_at=now)
    tokens = AccessToken.objects.filter(user=user, revoked_at__isnull=True)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    return tokens.update(revoked_at=now)


def user_token_revoke(*, user: User, token_id: int) -> bool:
    """End one live session of user's (one UPDATE); False if it is not one."""
    now = timezone.now()
    return bool(
        AccessToken.objects.filter(
            pk=token_id, user=user, revoked_at__isnull=True, expires_at__gt=now
        ).update(revoked_at=now)
    )
