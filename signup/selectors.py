"""Reads for the signup app; the API layer never builds querysets itself."""

from signup.models import User


def user_by_email(*, email: str) -> User | None:
    """The account for email, case-insensitively (uses the Lower(email) index)."""
    return User.objects.filter(**User.objects.email_lookup(email)).first()
