"""A user's notification feed: newest first, keyset-paged, and marking read.

Keyset on (created_at, id), both descending, over an index of the same
order (notification_feed_idx, or notification_unread_idx for unread=true):
one query per page however many notifications a user has, and no OFFSET.
A worker writes one batch with one created_at, so id breaks the ties.

A page holds FeedItem rows (named tuples of the fields a feed shows), not
model instances: building 500 deferred-field models cost more than the
query and the JSON together (the export's first piece, issue 21's CI run).
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import Notification

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.created_at - EPOCH) // MICROSECOND  # exact, unlike a float
        raw = f"{micros}.{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> "Cursor":
        """ValueError for anything encode() did not make."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
            micros, ident = raw.split(".")
            if not (micros.isdigit() and ident.isdigit()):
                raise ValueError
            created_at = EPOCH + int(micros) * MICROSECOND
            ident_int = int(ident)
        except (binascii.Error, UnicodeError, ValueError, OverflowError, OSError):
            raise ValueError("not a cursor from this API") from None
        if not 0 < ident_int < 2**63:
            raise ValueError("not a cursor from this API")
        return cls(created_at=created_at, id=ident_int)


FEED_FIELDS = ("id", "kind", "title", "body", "created_at", "read_at")


def notification_feed(
    *, user_id: int, limit: int, unread: bool = False, cursor: Cursor | None = None
) -> tuple[list[Any], Cursor | None]:
    """One page, newest first, and the cursor of the next page (None at the end):
    rows with the attributes FEED_FIELDS (named tuples)."""
    rows = Notification.objects.filter(user_id=user_id)
    if unread:
        rows = rows.filter(read_at__isnull=True)
    if cursor is not None:
        rows = rows.filter(
            Q(created_at__lt=cursor.created_at) | Q(created_at=cursor.created_at, id__lt=cursor.id),
            created_at__lte=cursor.created_at,
        )
    page = list(
        rows.order_by("-created_at", "-id").values_list(*FEED_FIELDS, named=True)[: limit + 1]
    )
    if len(page) <= limit:
        return page, None
    page = page[:limit]
    return page, Cursor(created_at=page[-1].created_at, id=page[-1].id)


def notification_mark_read(*, user_id: int, notification_id: int) -> bool:
    """Mark one of the user's notifications read (idempotent); False if not theirs."""
    updated = Notification.objects.filter(pk=notification_id, user_id=user_id).update(
        read_at=Coalesce("read_at", Value(timezone.now()))
    )
    return updated == 1


def notifications_mark_all_read(*, user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )
