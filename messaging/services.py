"""Delivery: claim an outbox row, do its job, record the outcome.

A row is claimed (PENDING -> SENDING) by one UPDATE before any work, so two
workers holding the same message (a retry, a relay re-enqueue, a redelivery
after a crash) cannot both send it. A claim older than the claim timeout is
presumed dead (its worker was killed) and may be taken over.

After the claim, every statement that must not be lost (loading the claimed
row, recording sent or released) is retried once the database connection
dropped under it: lost, the row would stay claimed until the claim timeout,
and if the email had gone, the relay would send it again: a duplicate
(found by the database-blip fault scenario, loadtests/faults).
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from dramatiq.middleware import TimeLimitExceeded

from messaging.kinds import kind_get
from messaging.models import Notification, Outbox
from messaging.smtp import describe_error, permanent_error, send_message

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Seconds between tries: ~16 s in all, through a dropped connection or a
# PostgreSQL restart (fault scenario 7): recording a sent row must not be lost.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _through_blips(func: Callable[[], T], *, outbox_id: int) -> T:
    """Run an idempotent query; if the connection dropped, retry it on a new one."""
    for delay in RETRY_DELAYS:
        try:
            return func()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block:
                raise
            logger.warning("outbox=%s db=retry error=%r", outbox_id, exc)
            connection.close()
            time.sleep(delay)
    return func()


def outbox_claim(*, outbox_id: int) -> Outbox | None:
    """Own the row for sending, or None if it is done or owned by a live worker."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    claimed = Outbox.objects.filter(
        Q(state=Outbox.State.PENDING) | Q(state=Outbox.State.SENDING, claimed_at__lt=stale),
        pk=outbox_id,
    ).update(state=Outbox.State.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        logger.info("deliver outbox=%s outcome=skipped reason=not-claimable", outbox_id)
        return None
    return _through_blips(
        lambda: Outbox.objects.select_related("user").get(pk=outbox_id), outbox_id=outbox_id
    )


def outbox_mark_sent(*, row: Outbox) -> None:
    _through_blips(
        lambda: Outbox.objects.filter(pk=row.pk).update(
            state=Outbox.State.SENT, sent_at=timezone.now(), last_error=""
        ),
        outbox_id=row.pk,
    )


def outbox_release(*, row: Outbox, error: str, final: bool) -> None:
    """Give the row back after a failure: PENDING for a retry, FAILED after the last."""
    state = Outbox.State.FAILED if final else Outbox.State.PENDING
    _through_blips(
        lambda: Outbox.objects.filter(pk=row.pk, state=Outbox.State.SENDING).update(
            state=state, last_error=error[:2000], claimed_at=None, enqueued_at=timezone.now()
        ),
        outbox_id=row.pk,
    )


def outbox_requeue(*, ids: list[int] | None = None, states=(Outbox.State.FAILED,)) -> int:
    """Put failed rows back to pending; the relay (or a caller) enqueues them."""
    rows = Outbox.objects.filter(state__in=states)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(state=Outbox.State.PENDING, enqueued_at=None, claimed_at=None)


def describe(exc: BaseException) -> str:
    """The error a row keeps: the server's answer for a refusal, else the exception."""
    if isinstance(exc, TimeLimitExceeded):
        limit = settings.OUTBOX_TIME_LIMIT_MS
        return f"TimeLimitExceeded: the job ran past its time limit ({limit} ms)"
    return describe_error(exc)


def _run_claimed(row: Outbox, job, *, final_attempt: bool) -> None:
    """Run the job on a claimed row; every way it ends leaves a named state.

    BaseException, not Exception: Dramatiq's TimeLimitExceeded (and its
    Shutdown) derive from BaseException, and a job killed by one must not
    leave its row SENDING with no error (issue 10). A permanent refusal
    (SMTP 5xx) fails the row at once and is not retried; anything else is
    re-raised so the Retries middleware retries it.
    """
    try:
        job(row)
    except BaseException as exc:
        permanent = permanent_error(exc)
        final = final_attempt or permanent
        outbox_release(row=row, error=describe(exc), final=final)
        logger.warning(
            "deliver outbox=%s kind=%s attempt=%s outcome=%s error=%r",
            row.pk,
            row.kind,
            row.attempts,
            "failed" if final else "retry",
            describe(exc),
        )
        if permanent:
            return
        raise
    outbox_mark_sent(row=row)
    logger.info("deliver outbox=%s kind=%s attempt=%s outcome=sent", row.pk, row.kind, row.attempts)


def email_deliver(*, outbox_id: int, final_attempt: bool = False) -> None:
    """Build and send the row's email through Django's email backend (SMTP),
    on the connection this worker thread keeps (messaging.smtp.send_message)."""
    row = outbox_claim(outbox_id=outbox_id)
    if row is None:
        return

    def send(row: Outbox) -> None:
        message = kind_get(row.kind).handler(row.user, row.context)
        if message is not None:
            send_message(message)

    _run_claimed(row, send, final_attempt=final_attempt)


def notifications_deliver(*, outbox_id: int, final_attempt: bool = False) -> None:
    """Write the row's notifications (its kind's handler says which): one INSERT.

    Idempotent by (user, dedupe_key), the key defaulting to the outbox row: a
    second run inserts nothing. Constant queries for up to
    NOTIFICATION_BATCH_SIZE recipients (every admin, say, plus the user).
    """
    row = outbox_claim(outbox_id=outbox_id)
    if row is None:
        return

    def notify(row: Outbox) -> None:
        notifications = kind_get(row.kind).handler(row.user, row.context)
        now = timezone.now()
        for notification in notifications:
            notification.dedupe_key = notification.dedupe_key or f"outbox:{row.pk}"
            notification.created_at = now
        with transaction.atomic():
            Notification.objects.bulk_create(
                notifications,
                batch_size=settings.NOTIFICATION_BATCH_SIZE + 1,
                ignore_conflicts=True,
            )

    _run_claimed(row, notify, final_attempt=final_attempt)
