"""`manage.py outbox_requeue`: put failed (or stuck) outbox rows back to pending.

    manage.py outbox_requeue --all-failed [--kind K] [--dry-run]
    manage.py outbox_requeue --id 12 --id 13
    manage.py outbox_requeue --stuck   # sending rows whose worker died

The rows are enqueued at once when the broker answers; otherwise the relay
picks them up once it does.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from messaging.models import Outbox
from messaging.outbox import outbox_enqueue
from messaging.services import outbox_requeue


class Command(BaseCommand):
    help = "Re-queue failed or stuck outbox rows (with --dry-run to see which)."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", help="a row id")
        parser.add_argument("--all-failed", action="store_true", help="every failed row")
        parser.add_argument("--stuck", action="store_true", help="sending rows with a dead claim")
        parser.add_argument("--kind", help="only rows of this kind")
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")

    def handle(self, *args, ids=None, all_failed=False, stuck=False, kind=None, dry_run=False, **_):
        if not (ids or all_failed or stuck):
            raise CommandError("Say which rows: --id N (repeatable), --all-failed or --stuck.")
        states = [Outbox.State.FAILED]
        rows = Outbox.objects.filter(state=Outbox.State.FAILED)
        if stuck:
            cutoff = timezone.now() - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
            states.append(Outbox.State.SENDING)
            rows = rows | Outbox.objects.filter(state=Outbox.State.SENDING, claimed_at__lt=cutoff)
        if ids:
            rows = rows.filter(pk__in=ids)
        if kind:
            rows = rows.filter(kind=kind)
        selected = list(rows.order_by("pk"))
        for row in selected:
            self.stdout.write(
                f"#{row.pk} {row.kind} {row.state} attempts={row.attempts} {row.last_error[:80]}"
            )
        if dry_run:
            self.stdout.write(f"dry run: {len(selected)} row(s) would be re-queued")
            return
        count = outbox_requeue(ids=[row.pk for row in selected], states=states)
        enqueued = outbox_enqueue(list(Outbox.objects.filter(pk__in=[r.pk for r in selected])))
        self.stdout.write(
            self.style.SUCCESS(
                f"{count} row(s) back to pending; {len(enqueued)} enqueued now, "
                "the relay sends the rest when the broker answers"
            )
        )
