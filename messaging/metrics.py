"""Outbox gauges for Prometheus, read from the database at scrape time.

Pending, sending and failed rows, and the age of the oldest unfinished
(pending or sending) row: the lag an operator alerts on. Served by the web's
/metrics (any web process can answer: the numbers are the database's). The
three queries run at most once per METRICS_CACHE_SECONDS in a process
(core.metrics.scrape_cache); the age is still counted from the scrape's now.
"""

from collections.abc import Iterator
from datetime import datetime

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import scrape_cache
from messaging.models import Outbox

STATES = (Outbox.State.PENDING, Outbox.State.SENDING, Outbox.State.FAILED)
UNFINISHED = (Outbox.State.PENDING, Outbox.State.SENDING)


Figures = tuple[dict[str, int], datetime | None]


def read_outbox() -> Figures | None:
    """Rows by state and the oldest unfinished row's creation; None without a database."""
    try:
        # Three indexed queries: unfinished rows (a partial index), their
        # oldest, and failed rows.
        by_state = dict(
            Outbox.objects.filter(state__in=UNFINISHED)
            .values_list("state")
            .annotate(n=Count("id"))
            .order_by()
        )
        oldest = Outbox.objects.filter(state__in=UNFINISHED).aggregate(t=Min("created_at"))["t"]
        by_state[Outbox.State.FAILED] = Outbox.objects.filter(state=Outbox.State.FAILED).count()
    except DatabaseError:
        return None
    return by_state, oldest


class OutboxCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "payshift_outbox_scrape_ok", "1 when the outbox could be read from the database."
        )
        figures: Figures | None = scrape_cache.get("outbox", read_outbox)
        if figures is None:
            up.add_metric([], 0)
            yield up
            return
        by_state, oldest = figures
        up.add_metric([], 1)
        yield up
        rows = GaugeMetricFamily(
            "payshift_outbox_rows",
            "Outbox rows by state (sent rows are not counted).",
            labels=["state"],
        )
        for state in STATES:
            rows.add_metric([state.value], by_state.get(state, 0))
        yield rows
        age = GaugeMetricFamily(
            "payshift_outbox_oldest_unfinished_age_seconds",
            "Age of the oldest pending or sending row; 0 when there is none.",
        )
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield age
