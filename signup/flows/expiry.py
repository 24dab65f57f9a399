"""Accounts that were never verified expire, so no one holds an address hostage.

Whoever signs an address up without owning it leaves an unverified account
behind; after SIGNUP_UNVERIFIED_TTL_SECONDS (7 days by default) it is
deleted with its profile, wallet, codes and pending signups, and the address
can be signed up afresh. Run by every worker once an hour
(settings.WORKER_PERIODIC_JOBS) and by `manage.py unverified_expire`.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from signup.models import PendingSignup, User

logger = logging.getLogger(__name__)
BATCH = 500


def unverified_accounts_expire(*, batch: int = BATCH) -> int:
    """Delete expired unverified accounts and signups; returns how many accounts.

    Staff accounts, accounts staff deactivated or closed, and a wallet
    holding money are never deleted. Batches
    are locked with SKIP LOCKED: several workers may run this at once, and
    a verify in flight keeps its row.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.SIGNUP_UNVERIFIED_TTL_SECONDS)
    expired = User.objects.filter(
        email_verified_at__isnull=True,
        date_joined__lt=cutoff,
        is_active=True,  # deactivated or closed by staff: kept, as the business keeps them
        is_staff=False,
        wallet__balance=0,
    )
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                expired.select_for_update(skip_locked=True, of=("self",)).values_list(
                    "pk", flat=True
                )[:batch]
            )
            if ids:
                User.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            break
    PendingSignup.objects.filter(created_at__lt=cutoff).delete()
    if deleted:
        logger.info("expiry unverified-accounts=%s", deleted)
    return deleted
