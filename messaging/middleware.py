"""Dramatiq middleware of the outbox: the relay inside each worker process,
and Retries that hands a row to the relay when its retry cannot be enqueued.

Loaded when the broker is built (during app loading), so they import the
relay, and with it the models, only once the worker has booted.
"""

import logging
import threading

import dramatiq
from django.conf import settings
from dramatiq.middleware import Retries

from messaging.outage import install_outage_log

logger = logging.getLogger(__name__)
OUTBOX_ACTORS = {"send_email", "notify", "announce_new_user"}  # each takes an outbox id


RELAY_STOP_TIMEOUT_SECONDS = 30  # a pass in progress at shutdown: at most one batch


class RelayMiddleware(dramatiq.Middleware):
    """The relay thread of a worker process. On SIGTERM Dramatiq stops the
    process's threads (finishing the messages in hand, giving back the ones
    fetched): the relay is told to stop with them, and the process waits for
    its pass in progress before the broker is closed, so a stop never cuts a
    pass between stamping rows and enqueueing them (they would wait for the
    stale rule, 5 minutes).
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        install_outage_log(broker or dramatiq.get_broker())
        if settings.OUTBOX_RELAY_INTERVAL_SECONDS <= 0:
            return
        from messaging.relay import relay_forever

        self._thread = threading.Thread(
            target=relay_forever, args=(self._stop,), name="outbox-relay", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker, worker) -> None:
        if self._thread is None:
            return
        self._thread.join(RELAY_STOP_TIMEOUT_SECONDS)
        outcome = "still-running" if self._thread.is_alive() else "stopped"
        logger.info("relay outcome=%s", outcome)


class OutboxRetries(Retries):
    """Dramatiq's Retries; when the broker refuses the retry itself (Redis
    went away at that moment), the row is handed to the relay, not lost.

    Dramatiq logs that failure and acks the message all the same: the retry
    was gone, and its row (PENDING, recently released) waited for the
    relay's stale rule, 5 minutes (found by the Redis-restart fault
    scenario, loadtests/faults). Its enqueued_at is cleared instead, so the
    relay's never-enqueued rule sends it on its next pass.
    """

    def after_process_message(self, broker, message, *, result=None, exception=None):
        try:
            super().after_process_message(broker, message, result=result, exception=exception)
        except Exception:
            if exception is not None and message.actor_name in OUTBOX_ACTORS and message.args:
                from messaging.relay import relay_retry_lost

                relay_retry_lost(outbox_id=message.args[0])
            raise
