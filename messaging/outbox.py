"""The one module that owns dispatch: write outbox rows, enqueue them on commit.

Services call outbox_add_on_commit inside their transaction; actors call
services; nothing here imports an app that uses it, so imports run one way.
"""

import logging
from datetime import datetime

import dramatiq
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.breaker import BreakerOpenError, broker_breaker
from core.broker import BROKER_ERRORS
from core.requestid import current_request_id
from messaging.kinds import kind_get
from messaging.models import Outbox

logger = logging.getLogger(__name__)


def outbox_add_on_commit(*, user, kinds: list[str], context: dict | None = None) -> list[Outbox]:
    """Write one row per kind (one INSERT) and enqueue them, together, after commit.

    context goes to every row (each kind's handler reads what it needs): a
    small JSON dict, never a secret.

    Every kind must be registered (messaging.kinds): an unknown one raises
    here, inside the caller's transaction, so nothing of it commits.

    The rows are written already stamped as enqueued (enqueued_at): the
    enqueue after commit nearly always succeeds, and stamping then cost a
    second transaction on every request (issue 23). If the broker is down at
    commit time the stamp is taken back and the relay enqueues the rows
    later; the caller never waits.
    """
    for kind in kinds:
        kind_get(kind)
    request_id = current_request_id()
    now = timezone.now()
    rows = Outbox.objects.bulk_create(
        [
            Outbox(
                kind=kind, user=user, request_id=request_id, context=context or {}, enqueued_at=now
            )
            for kind in kinds
        ]
    )
    transaction.on_commit(lambda: outbox_enqueue_committed(rows), robust=True)
    return rows


def _actor_for(kind: str) -> dramatiq.Actor:
    from messaging import tasks

    return {"email": tasks.send_email, "notifications": tasks.notify}[kind_get(kind).channel]


def outbox_enqueue_committed(rows: list[Outbox]) -> list[int]:
    """Send one message for rows written stamped (outbox_add_on_commit): all their
    ids, on the first row's queue. Call only after their transaction committed.

    When the broker does not take it, the stamps are taken back (the relay's
    never-enqueued rule then sends the rows after its grace). A web process
    killed between the commit and the send leaves them stamped: the relay's
    stale rule sends them, after OUTBOX_STALE_SECONDS.
    """
    if not rows:
        return []
    ids = [row.pk for row in rows]
    reason = "BreakerOpenError"
    if not broker_breaker.is_open:  # the broker failed a moment ago: not even a try
        actor = _actor_for(rows[0].kind)
        message = ids if len(ids) > 1 else ids[0]
        try:
            broker_breaker.call(lambda: actor.send(message), errors=BROKER_ERRORS)
        except (BreakerOpenError, *BROKER_ERRORS) as exc:
            reason = type(exc).__name__
        else:
            logger.info("enqueue outbox=%s outcome=queued", ids)
            return ids
    logger.warning("enqueue outbox=%s outcome=deferred reason=%s", ids, reason)
    _unstamp(rows, dict.fromkeys(ids))
    return []


def outbox_enqueue(rows: list[Outbox]) -> list[int]:
    """Stamp enqueued_at (one UPDATE), then send one message per row: rows
    written earlier and put back to pending (manage.py outbox_requeue). No
    transaction may be open. If the stamp fails nothing is sent, and the
    relay's never-enqueued rule takes the rows.
    """
    if not rows or broker_breaker.is_open:
        return []
    try:
        previous = outbox_stamp_enqueued(rows)
    except DatabaseError as exc:
        logger.warning(
            "enqueue outbox=%s outcome=deferred reason=%s", [r.pk for r in rows], type(exc).__name__
        )
        return []
    return outbox_send_stamped(rows, previous)


def outbox_stamp_enqueued(rows: list[Outbox]) -> dict[int, datetime | None]:
    """Set enqueued_at to now (one UPDATE); returns each row's previous value."""
    now = timezone.now()
    previous = {row.pk: row.enqueued_at for row in rows}
    Outbox.objects.filter(pk__in=previous).update(enqueued_at=now)
    for row in rows:
        row.enqueued_at = now
    return previous


def outbox_send_stamped(rows: list[Outbox], previous: dict[int, datetime | None]) -> list[int]:
    """Send the stamped rows' messages; no database transaction may be open.

    Stops at the first broker error: the rows not sent get their previous
    enqueued_at back, so the relay takes them as before.
    """
    enqueued: list[int] = []
    for index, row in enumerate(rows):
        actor = _actor_for(row.kind)
        try:
            broker_breaker.call(lambda: actor.send(row.pk), errors=BROKER_ERRORS)  # noqa: B023
        except (BreakerOpenError, *BROKER_ERRORS) as exc:
            logger.warning(
                "enqueue outbox=%s kind=%s outcome=deferred reason=%s",
                row.pk,
                row.kind,
                type(exc).__name__,
            )
            _unstamp(rows[index:], previous)
            break
        enqueued.append(row.pk)
    if enqueued:
        logger.info("enqueue outbox=%s outcome=queued", enqueued)
    return enqueued


def _unstamp(rows: list[Outbox], previous: dict[int, datetime | None]) -> None:
    try:
        for row in rows:
            Outbox.objects.filter(pk=row.pk, enqueued_at=row.enqueued_at).update(
                enqueued_at=previous[row.pk]
            )
            row.enqueued_at = previous[row.pk]
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        # Left stamped: the relay's stale rule takes them after OUTBOX_STALE_SECONDS.
        logger.warning("enqueue outbox=%s outcome=unstamped", [r.pk for r in rows], exc_info=True)
