"""`manage.py queue_status`: what an on-call person asks first.

Queue depths (ready, delayed, in flight, dead-letter) from the Redis broker,
live workers, and the outbox by state with the oldest unfinished row's age
and the last delivery. Works (with a note) while Redis is down.
"""

import dramatiq
from django.core.management.base import BaseCommand
from django.db.models import Count, Max, Min
from django.utils import timezone

from messaging.models import Outbox

QUEUES = ("email", "notifications")
COLUMNS = ("ready", "delayed", "in flight", "retrying", "dead")


def broker_figures(broker) -> tuple[list[tuple], int | None]:
    """Per queue (core.broker, either broker): ready, delayed, in flight, retrying, dead."""
    rows = []
    for queue in QUEUES:
        counts = broker.queue_counts(queue)
        rows.append((queue, *(counts[c] for c in COLUMNS)))
    return rows, broker.live_workers()


def _line(first: str, cells) -> str:
    return f"  {first:<15}" + "".join(f"{cell:>11}" for cell in cells)


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
            kind = type(broker).__name__.removeprefix("FastFail").removesuffix("Broker")
            live = "?" if workers is None else workers
            out(f"broker: {kind}, {live} live worker process(es)")
            out(_line("queue", COLUMNS))
            for queue, *counts in rows:
                out(_line(queue, ["-" if n is None else str(n) for n in counts]))

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
