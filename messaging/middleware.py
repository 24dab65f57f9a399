"""Dramatiq middleware that runs the outbox relay inside each worker process.

Loaded when the broker is built (during app loading), so it imports the
relay, and with it the models, only once the worker has booted.
"""

import threading

import dramatiq
from django.conf import settings


class RelayMiddleware(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker) -> None:
        if settings.OUTBOX_RELAY_INTERVAL_SECONDS <= 0:
            return
        from messaging.relay import relay_forever

        threading.Thread(
            target=relay_forever, args=(self._stop,), name="outbox-relay", daemon=True
        ).start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()
