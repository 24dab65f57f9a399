"""Reads for the signup app; the API layer never builds querysets itself."""

from django.db.models.functions import Lower

from signup.addresses import address_key
from signup.models import User, VerificationCode, Wallet


def user_by_email(*, email: str) -> User | None:
    """The account for email, case-insensitively (uses the Lower(email) index)."""
    return User.objects.filter(**User.objects.email_lookup(email)).first()


def admin_ids(*, exclude: int | None = None) -> list[int]:
    """Ids of every active staff account (the is_staff index), in one query."""
    admins = User.objects.filter(is_staff=True, is_active=True)
    if exclude is not None:
        admins = admins.exclude(pk=exclude)
    return list(admins.values_list("pk", flat=True))


def user_wallet(*, user_id: int) -> Wallet:
    """The user's wallet (one indexed query; every user has one, see user_create)."""
    return Wallet.objects.only("balance", "currency").get(user_id=user_id)


def live_code_for_address(*, email: str, purpose: str) -> VerificationCode | None:
    """The newest unused code of purpose for email's account, its row locked.

    One query whether or not the address has an account (equal work in
    verify); the user comes with it.
    """
    return (
        VerificationCode.objects.select_for_update(of=("self",))
        .select_related("user")
        .alias(user_email_lower=Lower("user__email"))
        .filter(user_email_lower=address_key(email), purpose=purpose, used_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
