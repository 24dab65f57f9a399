"""The outbox relay: enqueue again the rows that a broker outage left behind.

It runs by itself in every worker process (messaging.middleware starts a
thread at worker boot), so `manage.py rundramatiq` is all a deployment runs. Several
relays at once are safe: rows are picked with SELECT ... FOR UPDATE SKIP
LOCKED, and a row sent twice is harmless (workers claim before sending).

Which rows:
- pending and never enqueued (enqueued_at NULL) after a grace period: the
  enqueue failed, or the web process died between commit and enqueue;
- pending and enqueued longer ago than OUTBOX_STALE_SECONDS: the message was
  lost (Redis restarted empty); a merely slow queue is younger than that;
- sending with a claim older than the claim timeout: the worker died; once,
  not on every pass: only if no message was sent since the claim (or that
  one is stale too), so a deep queue does not fill with copies of it.
"""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.models import Outbox
from messaging.outbox import outbox_enqueue_committed

logger = logging.getLogger(__name__)


def relay_due_rows() -> Q:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    return (
        Q(
            state=Outbox.State.PENDING,
            enqueued_at__isnull=True,
            created_at__lt=now - timedelta(seconds=settings.OUTBOX_GRACE_SECONDS),
        )
        | Q(state=Outbox.State.PENDING, enqueued_at__lt=stale)
        | Q(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("claimed_at"))
            | Q(enqueued_at__lt=stale),
            state=Outbox.State.SENDING,
            claimed_at__lt=now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS),
        )
    )


def relay_once(*, batch: int | None = None) -> int:
    """Enqueue one batch of due rows; returns how many were enqueued."""
    batch = batch or settings.OUTBOX_RELAY_BATCH
    with transaction.atomic():
        rows = list(
            Outbox.objects.select_for_update(skip_locked=True)
            .filter(relay_due_rows())
            .order_by("pk")[:batch]
        )
        if not rows:
            return 0
        enqueued = outbox_enqueue_committed(rows)
    if enqueued:
        logger.info("relay enqueued=%s due=%s", len(enqueued), len(rows))
    return len(enqueued)


def relay_forever(stop: threading.Event) -> None:
    interval = settings.OUTBOX_RELAY_INTERVAL_SECONDS
    while not stop.wait(interval):
        try:
            close_old_connections()
            while relay_once() >= settings.OUTBOX_RELAY_BATCH and not stop.is_set():
                pass
        except Exception:
            logger.exception("relay outcome=error")
        finally:
            connection.close()
