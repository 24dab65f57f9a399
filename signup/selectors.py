"""Reads for the signup app; the API layer never builds querysets itself."""

from django.db.models.functions import Lower

from signup.addresses import address_key
from signup.models import User, VerificationCode


def user_by_email(*, email: str) -> User | None:
    """The account for email, case-insensitively (uses the Lower(email) index)."""
    return User.objects.filter(**User.objects.email_lookup(email)).first()


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
