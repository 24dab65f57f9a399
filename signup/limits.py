"""Per-address limits on codes: 60 s cooldown and 5 per hour, in the database.

They must be atomic (two resends at once may not both pass) and must hold
while Redis is down, so they are a locked row per address, not a cache entry.
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from signup.addresses import address_key
from signup.models import AddressLimit

HOUR = 3600


@dataclass(frozen=True)
class LimitResult:
    allowed: bool
    retry_after: int = 0  # seconds, when not allowed


@transaction.atomic(savepoint=False)
def address_code_request(*, email: str, force: bool = False) -> LimitResult:
    """Record a request for a code to email, unless a limit forbids it.

    force records it whatever the limits say (a brand-new account always gets
    its first code). Constant queries: lock-or-create the row, update it.
    """
    now = time.time()
    row, created = AddressLimit.objects.select_for_update().get_or_create(
        email=address_key(email), defaults={"recent": [now]}
    )
    if created:
        return LimitResult(allowed=True)

    recent = [t for t in row.recent if t > now - HOUR]
    retry_after = 0.0
    if recent and now - recent[-1] < settings.SIGNUP_CODE_COOLDOWN_SECONDS:
        retry_after = recent[-1] + settings.SIGNUP_CODE_COOLDOWN_SECONDS - now
    if len(recent) >= settings.SIGNUP_CODES_PER_HOUR:
        retry_after = max(retry_after, recent[-settings.SIGNUP_CODES_PER_HOUR] + HOUR - now)

    allowed = force or retry_after <= 0
    if allowed:
        row.recent = [*recent, now][-settings.SIGNUP_CODES_PER_HOUR :]
        row.save(update_fields=["recent"])
    return LimitResult(
        allowed=allowed, retry_after=0 if allowed else max(1, math.ceil(retry_after))
    )
