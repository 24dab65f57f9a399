"""`manage.py idempotency_purge`: delete Idempotency-Key records older than 24 h."""

from django.core.management.base import BaseCommand

from signup.idempotency import idempotency_purge


class Command(BaseCommand):
    help = "Delete Idempotency-Key records past their 24-hour window (run daily)."

    def handle(self, *args, **options):
        self.stdout.write(f"deleted {idempotency_purge()} expired idempotency record(s)")
