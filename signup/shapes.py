"""How a user's own data looks to them: one shape per kind of record.

The /me routers answer with these, and the data export writes the same
shapes, so the export is what the API shows, field for field, and never a
secret (no password hash, no token or its hash).
"""

from typing import Any

from messaging.models import Notification
from signup.models import AccessToken, User, Wallet


def profile_shape(user: User) -> dict:
    return {
        "id": user.pk,
        "email": user.email,
        "full_name": user.profile.full_name,
        "verified": user.is_verified,
        "date_joined": user.date_joined,
    }


def wallet_shape(wallet: Wallet) -> dict:
    return {"balance": f"{wallet.balance:.2f}", "currency": wallet.currency}


def session_shape(token: AccessToken | Any) -> dict:
    """An AccessToken, or a row of signup.selectors.user_sessions."""
    return {
        "id": token.id,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "expires_at": token.expires_at,
        "client": token.client,
        "ip": token.ip,
    }


def notification_shape(notification: Notification | Any) -> dict:
    """A Notification, or a row of messaging.feed (the same attributes)."""
    return {
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "created_at": notification.created_at,
        "read": notification.read_at is not None,
    }
