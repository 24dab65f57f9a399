"""`manage.py unverified_expire`: delete accounts never verified within the TTL."""

from django.core.management.base import BaseCommand

from signup.flows.expiry import unverified_accounts_expire


class Command(BaseCommand):
    help = (
        "Delete accounts never verified within UNVERIFIED_ACCOUNT_TTL_DAYS (the worker "
        "also does it every hour)."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"deleted {unverified_accounts_expire()} unverified account(s)")
