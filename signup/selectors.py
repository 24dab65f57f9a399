"""Reads for the signup app; the API layer never builds querysets itself."""

from datetime import datetime
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from signup.addresses import address_key
from signup.models import AccessToken, User, VerificationCode, Wallet


def user_by_email(*, email: str) -> User | None:
    """The account for email, case-insensitively (uses the Lower(email) index)."""
    return User.objects.filter(**User.objects.email_lookup(email)).first()


SESSION_FIELDS = ("id", "created_at", "last_used_at", "expires_at", "client", "ip")


def user_sessions(*, user_id: int) -> list[Any]:
    """The user's live tokens (sessions), newest first: one indexed query.

    Rows with the attributes SESSION_FIELDS (named tuples), not models: a user
    with a hundred sessions made the export's first piece pay ~100 model
    instantiations (issue 21's CI run)."""
    return list(
        AccessToken.objects.filter(
            user_id=user_id, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-created_at", "-pk")
        .values_list(*SESSION_FIELDS, named=True)
    )


def admins(*, exclude: int | None = None) -> QuerySet[User]:
    """Every active staff account (the is_staff index) but exclude, unevaluated.

    A notice's audience (messaging.kinds.Copies): the worker's INSERT selects
    from it, so no id is read into Python (issue 23)."""
    found = User.objects.filter(is_staff=True, is_active=True)
    return found.exclude(pk=exclude) if exclude is not None else found


def user_wallet(*, user_id: int) -> Wallet:
    """The user's wallet (one indexed query; every user has one, see user_create)."""
    return Wallet.objects.only("balance", "currency").get(user_id=user_id)


class LiveCode(NamedTuple):
    pk: int
    user_id: int
    code_hash: str
    expires_at: datetime


def live_code_for_address(*, email: str, purpose: str) -> LiveCode | None:
    """The newest unused code of purpose for email's account, its row locked.

    One query whether or not the address has an account (equal work in
    verify), and plain values, not model instances: building a code and a
    user object only where a code exists cost a measurable ~0.1 ms that
    told a live code apart (benchmarks.timing_oracle on a quiet machine).
    """
    found = (
        VerificationCode.objects.select_for_update(of=("self",))
        .alias(user_email_lower=Lower("user__email"))
        .filter(user_email_lower=address_key(email), purpose=purpose, used_at__isnull=True)
        .order_by("-created_at")
        .values_list("pk", "user_id", "code_hash", "expires_at")
        .first()
    )
    return LiveCode(*found) if found is not None else None
