"""The in-app notifications the signup app queues, registered by outbox kind."""

from messaging.kinds import notification_kind
from messaging.models import Notification
from signup.selectors import admin_ids
from signup.services import ANNOUNCE_NEW_USER


@notification_kind(ANNOUNCE_NEW_USER)
def new_user_announcement(user) -> list[Notification]:
    """A welcome for the new user and a notice for every active admin."""
    key = f"new_user:{user.pk}"
    welcome = Notification(
        user_id=user.pk,
        kind="welcome",
        title="Welcome to Payshift",
        body="Your account is ready. Verify your email to start using it.",
        dedupe_key=key,
    )
    notices = [
        Notification(
            user_id=admin_id,
            kind="new_user",
            title="New signup",
            body=f"{user.email} signed up.",
            dedupe_key=key,
        )
        for admin_id in admin_ids(exclude=user.pk)
    ]
    return [welcome, *notices]
