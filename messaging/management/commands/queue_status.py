"""`manage.py queue_status`: what an on-call person asks first.

Queue depths (ready, delayed, in flight, dead-letter) from the Redis broker,
live workers, and the outbox by state with the oldest unfinished row's age
and the last delivery. Works (with a note) while Redis is down.
"""

import time

import dramatiq
from django.core.management.base import BaseCommand
from django.db.models import Count, Max, Min
from django.utils import timezone

from messaging.models import Outbox

QUEUES = ("email", "notifications")


def broker_figures(broker) -> tuple[list[tuple], int]:
    client, ns = broker.client, broker.namespace
    rows = []
    for queue in QUEUES:
        in_flight = sum(
            client.scard(key) for key in client.scan_iter(f"{ns}:__acks__.*.{queue}", count=500)
        )
        rows.append(
            (
                queue,
                client.llen(f"{ns}:{queue}"),
                client.llen(f"{ns}:{queue}.DQ"),
                in_flight,
                client.zcard(f"{ns}:{queue}.XQ"),
            )
        )
    cutoff_ms = int(time.time() * 1000) - broker.heartbeat_timeout
    workers = client.zcount(f"{ns}:__heartbeats__", cutoff_ms, "+inf")
    return rows, workers


def _age(value) -> str:
    if value is None:
        return "-"
    seconds = int((timezone.now() - value).total_seconds())
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


class Command(BaseCommand):
    help = "Show broker queue depths and outbox state."

    def handle(self, *args, **options):
        out = self.stdout.write
        broker = dramatiq.get_broker()
        try:
            rows, workers = broker_figures(broker)
        except Exception as exc:
            out(self.style.ERROR(f"broker: unreachable ({type(exc).__name__}: {exc})"))
        else:
            out(f"broker: {broker.namespace} on Redis, {workers} live worker process(es)")
            out(f"  {'queue':<15}{'ready':>8}{'delayed':>9}{'in flight':>11}{'dead':>7}")
            for queue, ready, delayed, in_flight, dead in rows:
                out(f"  {queue:<15}{ready:>8}{delayed:>9}{in_flight:>11}{dead:>7}")

        out("outbox:")
        counts = dict(Outbox.objects.values_list("state").annotate(n=Count("pk")))
        out("  " + "  ".join(f"{state}={counts.get(state, 0)}" for state in Outbox.State.values))
        unfinished = Outbox.objects.filter(state__in=[Outbox.State.PENDING, Outbox.State.SENDING])
        figures = unfinished.aggregate(oldest=Min("created_at"))
        never = unfinished.filter(enqueued_at__isnull=True).count()
        out(f"  oldest unfinished: {_age(figures['oldest'])}; never enqueued: {never}")
        out(f"  last delivery: {_age(Outbox.objects.aggregate(last=Max('sent_at'))['last'])}")
        for row in Outbox.objects.filter(state=Outbox.State.FAILED).order_by("-pk")[:5]:
            out(f"  failed #{row.pk} {row.kind} attempts={row.attempts}: {row.last_error[:100]}")
