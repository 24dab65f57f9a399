"""The one module that owns dispatch: write outbox rows, enqueue them on commit.

Services call outbox_add_on_commit inside their transaction; actors call
services; nothing here imports an app that uses it, so imports run one way.
"""

import logging

import dramatiq
import redis
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.breaker import BreakerOpenError, broker_breaker
from core.requestid import current_request_id
from messaging.models import Outbox

logger = logging.getLogger(__name__)

ANNOUNCE_NEW_USER = "announce_new_user"
BROKER_ERRORS = (redis.RedisError, dramatiq.errors.BrokerError, OSError)


def outbox_add_on_commit(*, user, kinds: list[str]) -> list[Outbox]:
    """Write one row per kind (one INSERT) and enqueue them after commit.

    If the broker is down at commit time the rows stay pending with no
    enqueued_at, and the relay enqueues them later. The caller never waits.
    """
    request_id = current_request_id()
    rows = Outbox.objects.bulk_create(
        [Outbox(kind=kind, user=user, request_id=request_id) for kind in kinds]
    )
    transaction.on_commit(lambda: outbox_enqueue_committed(rows), robust=True)
    return rows


def _actor_for(kind: str) -> dramatiq.Actor:
    from messaging import tasks

    return tasks.announce_new_user if kind == ANNOUNCE_NEW_USER else tasks.send_email


def outbox_enqueue_committed(rows: list[Outbox]) -> list[int]:
    """Send one message per committed row (its id only); record enqueued_at.

    Stops at the first broker error and leaves the rest to the relay. Call
    only with committed rows: a worker must be able to load them.
    """
    enqueued: list[int] = []
    for row in rows:
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
            break
        enqueued.append(row.pk)
    if enqueued:
        try:
            Outbox.objects.filter(pk__in=enqueued).update(enqueued_at=timezone.now())
        except DatabaseError:
            # Queued all the same; the relay may enqueue it once more, which
            # the claim in messaging.services makes harmless.
            logger.warning("enqueue outbox=%s outcome=unrecorded", enqueued, exc_info=True)
        logger.info("enqueue outbox=%s outcome=queued", enqueued)
    return enqueued
