"""Worker metrics: jobs by actor and outcome, delivery time (outbox row to sent).

Next to Dramatiq's own Prometheus middleware (messages, errors, retries,
dead-lettered, durations by actor), which also serves both on
WORKER_METRICS_PORT (on WORKER_METRICS_HOST, loopback by default: the
outbox figures tell real accounts from unknown addresses) from a fork of
the worker. Values go to files in
Dramatiq's metrics directory, where that fork reads them: prometheus-client
picks its multiprocess mode when first imported, so the directory is set
here before the import (Dramatiq runs after_process_boot hooks in reverse
order: this one before its own).
"""

import os
import threading
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

# Row created -> sent: seconds to minutes normally, up to ~15 min of retries.
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600)


class WorkerMetrics(dramatiq.Middleware):
    def __init__(self) -> None:
        self.jobs: Any = None
        self.delivery: Any = None
        self._local = threading.local()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        from dramatiq.middleware.prometheus import DB_PATH

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = DB_PATH
        import prometheus_client as prom

        self.jobs = prom.Counter(
            "payshift_worker_jobs_total",
            "Jobs a worker finished, by actor and outcome (ok, error, skipped).",
            ["actor", "outcome"],
        )
        self.delivery = prom.Histogram(
            "payshift_outbox_delivery_seconds",
            "From an outbox row's creation to its email being sent, by kind.",
            ["kind"],
            buckets=DELIVERY_BUCKETS,
        )

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._local.started = datetime.now(UTC)

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result=None, exception=None
    ) -> None:
        if self.jobs is None:
            return
        self.jobs.labels(message.actor_name, "ok" if exception is None else "error").inc()
        if exception is None and message.actor_name == "send_email" and message.args:
            self._observe_delivery(message.args[0])

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self.jobs is not None:
            self.jobs.labels(message.actor_name, "skipped").inc()

    def _observe_delivery(self, outbox_id: int) -> None:
        from django.db import DatabaseError

        from messaging.models import Outbox

        try:
            row = (
                Outbox.objects.filter(pk=outbox_id, state=Outbox.State.SENT)
                .values("kind", "created_at", "sent_at")
                .first()
            )
        except DatabaseError:
            return
        started = getattr(self._local, "started", None)
        # Only a row this job sent: a duplicate message finds it sent long ago.
        if row and row["sent_at"] and (started is None or row["sent_at"] >= started):
            seconds = (row["sent_at"] - row["created_at"]).total_seconds()
            self.delivery.labels(row["kind"]).observe(max(seconds, 0.0))
