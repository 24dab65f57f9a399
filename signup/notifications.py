"""The in-app notifications the signup app queues, registered by outbox kind."""

from messaging.kinds import notification_kind
from messaging.models import Notification
from signup.selectors import admin_ids
from signup.services import ANNOUNCE_NEW_USER

WELCOME_BODY = (
    "Your Payshift account has been created. If you have not verified your email "
    "address yet, enter the code we emailed you (you can ask for a new one)."
)


@notification_kind(ANNOUNCE_NEW_USER)
def new_user_announcement(user) -> list[Notification]:
    """A welcome for the new user and a notice for every active admin."""
    key = f"new_user:{user.pk}"
    welcome = Notification(
        user_id=user.pk,
        kind="welcome",
        title="Welcome to Payshift",
        # Stored and read later, maybe after the user verified: no claim
        # about the address's state, so it stays true whenever it is read.
        body=WELCOME_BODY,
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
