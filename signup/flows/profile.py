"""The signed-in user's profile."""

from signup.models import Profile, User


def profile_update(*, user: User, full_name: str) -> Profile:
    """Set the user's full name (one UPDATE; the profile always exists, see user_create)."""
    Profile.objects.filter(user=user).update(full_name=full_name)
    profile = user.profile
    profile.full_name = full_name
    return profile
