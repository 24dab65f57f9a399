"""Reads for the signup app; the API layer never builds querysets itself."""

from signup.models import User, Wallet


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
