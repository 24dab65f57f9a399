"""The outbox relay: enqueue again the rows that a broker outage left behind.

It runs by itself in every worker process (messaging.middleware starts a
thread at worker boot), so `manage.py rundramatiq` is all a deployment runs. Several
relays at once are safe: rows are picked with SELECT ... FOR UPDATE SKIP
LOCKED, and a row sent twice is harmless (workers claim before sending).

Which rows:
- pending and never enqueued (enqueued_at NULL) after a grace period: the
  enqueue failed, or the web process died between commit and enqueue;
- pending and enqueued longer ago than OUTBOX_STALE_SECONDS: the message was
  lost (e.g. a delayed retry that a worker held in memory when its Redis
  connection dropped); a merely slow queue is younger than that;
- sending with a claim older than the claim timeout: the worker died; once,
  not on every pass: only if no message was sent since the claim (or that
  one is stale too), so a deep queue does not fill with copies of it;
- every pending row that was enqueued, at once, when the broker came back
  without its data (Redis restarted without persistence, flushed, failed
  over to an empty replica): the relay keeps a marker key in Redis, and
  finding it gone means the queues went with it. Without this, those rows
  waited OUTBOX_STALE_SECONDS (5 min) for the stale rule (found by the
  broker-outage fault scenario, loadtests/faults).

Each pass also asks the broker to give a dead worker's fetched messages back
to their queues (core.broker.FastFailRedisBroker.requeue_dead_workers).
"""

import logging
import os
import socket
import threading
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.breaker import broker_breaker
from core.broker import BROKER_ERRORS
from messaging.models import Outbox
from messaging.outage import outage_log
from messaging.outbox import outbox_send_stamped, outbox_stamp_enqueued
from messaging.periodic import PeriodicJobs

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


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
    """Enqueue one batch of due rows; returns how many were enqueued.

    The rows are picked and stamped (enqueued_at: no longer due) in one short
    transaction; the broker is talked to only after it commits, so a slow or
    unreachable broker never holds row locks.
    """
    batch = batch or settings.OUTBOX_RELAY_BATCH
    if broker_breaker.is_open:
        return 0
    with transaction.atomic():
        rows = list(
            Outbox.objects.select_for_update(skip_locked=True)
            .filter(relay_due_rows())
            .order_by("pk")[:batch]
        )
        if not rows:
            return 0
        previous = outbox_stamp_enqueued(rows)
    enqueued = outbox_send_stamped(rows, previous)
    if enqueued:
        logger.info("relay enqueued=%s due=%s", len(enqueued), len(rows))
    return len(enqueued)


def broker_data_lost() -> bool:
    """True once each time the broker answers without the relay's mark
    (core.broker: a key on Redis, a durable queue on RabbitMQ); also on a
    brand-new broker: relaying its pending rows once more is harmless. False
    while the broker is unreachable (it cannot tell yet).
    """
    try:
        return dramatiq.get_broker().data_lost()
    except BROKER_ERRORS:
        return False


def relay_after_broker_loss(reason: str = "new-or-emptied") -> int:
    """The broker lost its queues, or this worker lost its connection: count
    the pending rows as never enqueued.

    The grace rule then relays them (on this pass, or once they are older
    than the grace). A row whose message survived is sent once all the
    same: workers claim.
    """
    count = Outbox.objects.filter(state=Outbox.State.PENDING, enqueued_at__isnull=False).update(
        enqueued_at=None
    )
    if count:
        logger.warning("relay broker=%s rows-to-relay=%s", reason, count)
    return count


def relay_retry_lost(*, outbox_id: int) -> None:
    """The retry of a pending row could not be enqueued: relay it on the next pass."""
    try:
        count = Outbox.objects.filter(pk=outbox_id, state=Outbox.State.PENDING).update(
            enqueued_at=None
        )
    except Exception:
        logger.warning("relay outbox=%s retry=lost outcome=unrecorded", outbox_id, exc_info=True)
        return
    logger.warning("relay outbox=%s retry=lost outcome=to-relay rows=%s", outbox_id, count)


def relay_dead_worker_messages() -> None:
    """Requeue now what dead workers had fetched (a no-op on brokers without it)."""
    requeue = getattr(dramatiq.get_broker(), "requeue_dead_workers", None)
    if requeue is None:
        return
    try:
        requeue()
    except BROKER_ERRORS:
        logger.info("relay dead-workers=unchecked reason=broker-unavailable")


def worker_present() -> bool:
    """Register this worker process as live (queue_status counts these, not
    Dramatiq's heartbeats, which web processes also write when they enqueue).
    False when the broker did not answer."""
    try:
        dramatiq.get_broker().worker_alive(WORKER_ID)
    except BROKER_ERRORS:
        return False
    return True


def relay_forever(stop: threading.Event) -> None:
    interval = settings.OUTBOX_RELAY_INTERVAL_SECONDS
    broker_was_down = not worker_present()
    housekeeping = PeriodicJobs()
    while not stop.wait(interval):
        try:
            close_old_connections()
            reachable = worker_present()
            if reachable and (broker_was_down or outage_log.down):
                # Back after this worker lost its connection. Dramatiq's
                # consumers drop the retries they held in memory then, and
                # after a Redis restart that kept its data (AOF) some stayed
                # held and unsent until the stale rule, 5 minutes later
                # (Redis-restart fault scenario, 1 run in 3): relay them now.
                outage_log.broker_up()
                relay_after_broker_loss("reconnected")
            broker_was_down = not reachable
            if broker_data_lost():
                relay_after_broker_loss()
            relay_dead_worker_messages()
            while relay_once() >= settings.OUTBOX_RELAY_BATCH and not stop.is_set():
                pass
        except Exception:
            logger.exception("relay outcome=error")
        try:
            housekeeping.run_due()  # logs its own errors
        finally:
            connection.close()
