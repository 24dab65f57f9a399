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
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

# Row created -> sent: seconds to minutes normally, up to ~15 min of retries.
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600)


_delivery: Any = None  # the histogram, once a worker process booted


def delivery_observe(kind: str, created_at: datetime, sent_at: datetime) -> None:
    """Called by the delivery service as it marks an email sent: the times are
    in hand there (reading the row back after the job cost a query a job)."""
    if _delivery is not None:
        _delivery.labels(kind).observe(max((sent_at - created_at).total_seconds(), 0.0))


class WorkerMetrics(dramatiq.Middleware):
    def __init__(self) -> None:
        self.jobs: Any = None

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        from dramatiq.middleware.prometheus import DB_PATH

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = DB_PATH
        import prometheus_client as prom

        self.jobs = prom.Counter(
            "payshift_worker_jobs_total",
            "Jobs a worker finished, by actor and outcome (ok, error, skipped).",
            ["actor", "outcome"],
        )
        global _delivery
        _delivery = prom.Histogram(
            "payshift_outbox_delivery_seconds",
            "From an outbox row's creation to its email being sent, by kind.",
            ["kind"],
            buckets=DELIVERY_BUCKETS,
        )

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result=None, exception=None
    ) -> None:
        if self.jobs is None:
            return
        self.jobs.labels(message.actor_name, "ok" if exception is None else "error").inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self.jobs is not None:
            self.jobs.labels(message.actor_name, "skipped").inc()
