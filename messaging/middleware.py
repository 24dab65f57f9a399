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


class RelayMiddleware(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker) -> None:
        install_outage_log(broker or dramatiq.get_broker())
        if settings.OUTBOX_RELAY_INTERVAL_SECONDS <= 0:
            return
        from messaging.relay import relay_forever

        threading.Thread(
            target=relay_forever, args=(self._stop,), name="outbox-relay", daemon=True
        ).start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()


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
