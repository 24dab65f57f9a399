"""`manage.py queue_status`: what an on-call person asks first.

Queue depths from the broker (core.broker, Redis or RabbitMQ): ready,
retrying (a failed message waiting for its backoff: in the delay queue
`<queue>.DQ`, or already fetched by a worker that holds it until its time,
on Redis in `__acks__.<worker>.<queue>.DQ`), in flight, dead-letter; the
live worker processes (each worker's relay registers itself: web processes,
which also heartbeat on Dramatiq's own key when they enqueue, do not count;
on RabbitMQ, the queues' consumers); the outbox
by state, the oldest unfinished row, the last errors of rows still being
retried, and the failed ones.

Exit status, for cron and monitoring: 0 all well; 1 rows have failed;
2 the broker is unreachable.
"""

import dramatiq
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Min
from django.utils import timezone

from messaging.models import Outbox

QUEUES = ("email", "notifications")
BROKER_DOWN, ROWS_FAILED = 2, 1


def broker_figures(broker) -> tuple[list[tuple], int | None]:
    """(queue, ready, retrying, in flight, dead) per queue; None where the broker cannot say."""
    rows = []
    for queue in QUEUES:
        counts = broker.queue_counts(queue)
        held = counts["retrying"] or 0  # None on RabbitMQ: only its management API knows
        rows.append(
            (queue, counts["ready"], counts["delayed"] + held, counts["in flight"], counts["dead"])
        )
    return rows, broker.live_workers()


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _age(value) -> str:
    if value is None:
        return "-"
    seconds = int((timezone.now() - value).total_seconds())
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


class Command(BaseCommand):
    help = "Show broker queue depths and outbox state; exit 1 if rows failed, 2 if no broker."

    def handle(self, *args, **options):
        out = self.stdout.write
        broker = dramatiq.get_broker()
        broker_ok = True
        try:
            rows, workers = broker_figures(broker)
        except Exception as exc:
            broker_ok = False
            out(self.style.ERROR(f"broker: unreachable ({type(exc).__name__}: {exc})"))
        else:
            kind = type(broker).__name__.removeprefix("FastFail").removesuffix("Broker")
            out(f"broker: {kind}, {_n(workers)} live worker process(es)")
            out(f"  {'queue':<15}{'ready':>8}{'retrying':>10}{'in flight':>11}{'dead':>7}")
            for queue, ready, retrying, in_flight, dead in rows:
                out(f"  {queue:<15}{ready:>8}{retrying:>10}{_n(in_flight):>11}{dead:>7}")

        out("outbox:")
        counts = dict(Outbox.objects.values_list("state").annotate(n=Count("pk")))
        out("  " + "  ".join(f"{state}={counts.get(state, 0)}" for state in Outbox.State.values))
        unfinished = Outbox.objects.filter(state__in=[Outbox.State.PENDING, Outbox.State.SENDING])
        figures = unfinished.aggregate(oldest=Min("created_at"))
        never = unfinished.filter(enqueued_at__isnull=True).count()
        out(f"  oldest unfinished: {_age(figures['oldest'])}; never enqueued: {never}")
        out(f"  last delivery: {_age(Outbox.objects.aggregate(last=Max('sent_at'))['last'])}")
        retrying = unfinished.exclude(last_error="").order_by("-pk")[:5]
        for row in retrying:
            out(f"  retrying #{row.pk} {row.kind} attempts={row.attempts}: {row.last_error[:100]}")
        failed = counts.get(Outbox.State.FAILED, 0)
        for row in Outbox.objects.filter(state=Outbox.State.FAILED).order_by("-pk")[:5]:
            out(f"  failed #{row.pk} {row.kind} attempts={row.attempts}: {row.last_error[:100]}")

        if not broker_ok:
            raise CommandError("the broker is unreachable", returncode=BROKER_DOWN)
        if failed:
            raise CommandError(
                f"{failed} outbox row(s) failed: see above; `manage.py outbox_requeue"
                " --all-failed` sends them again",
                returncode=ROWS_FAILED,
            )
