"""Account status changes by staff: deactivate and reactivate.

In one transaction: the tokens revoked (on deactivation), and the outbox rows
that email and notify the user and notify every admin (one INSERT for them
all, however many).
"""

import logging

from django.db import transaction

from messaging.outbox import outbox_add_on_commit
from signup.flows.closing import tombstone
from signup.messages import (
    DEACTIVATED_EMAIL,
    DEACTIVATED_NOTICE,
    REACTIVATED_EMAIL,
    REACTIVATED_NOTICE,
)
from signup.models import User
from signup.tokens import user_tokens_revoke

logger = logging.getLogger(__name__)


@transaction.atomic
def user_deactivate(*, user: User) -> bool:
    """Deactivate: tokens revoked at once; the user emailed and notified, every
    admin notified (one INSERT), all through the outbox. False if it already was."""
    return _status_change(user=user, active=False)


@transaction.atomic
def user_reactivate(*, user: User) -> bool:
    """Reactivate: the user emailed and notified, every admin notified."""
    return _status_change(user=user, active=True)


_STATUS_KINDS = {
    False: [DEACTIVATED_EMAIL, DEACTIVATED_NOTICE],
    True: [REACTIVATED_EMAIL, REACTIVATED_NOTICE],
}


def _status_change(*, user: User, active: bool) -> bool:
    """Lock the row (two staff at once change it once), flip it, tell everyone."""
    locked = User.objects.select_for_update().only("pk", "is_active", "email").get(pk=user.pk)
    if locked.is_active == active or (active and locked.email == tombstone(user.pk)):
        return False  # no change, or a closed account: it stays closed
    User.objects.filter(pk=user.pk).update(is_active=active)
    user.is_active = active
    if not active:
        user_tokens_revoke(user=user)
    outbox_add_on_commit(user=user, kinds=_STATUS_KINDS[active])
    logger.info("account user=%s outcome=%s", user.pk, "reactivated" if active else "deactivated")
    return True
