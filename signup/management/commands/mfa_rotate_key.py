"""`manage.py mfa_rotate_key`: re-encrypt every TOTP secret with the first
MFA_ENCRYPTION_KEY, so that an older key can be dropped (docs/operations.md)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from signup.authenticator import SecretUnreadableError, secret_decrypt, secret_reencrypt
from signup.models import TotpDevice


class Command(BaseCommand):
    help = "Re-encrypt every stored TOTP secret with the first MFA_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        done = unreadable = 0
        for pk in TotpDevice.objects.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                device = TotpDevice.objects.select_for_update().filter(pk=pk).first()
                if device is None:  # deleted meanwhile
                    continue
                try:
                    secret_decrypt(device.secret)
                except SecretUnreadableError:
                    unreadable += 1
                    continue
                TotpDevice.objects.filter(pk=pk).update(secret=secret_reencrypt(device.secret))
                done += 1
        self.stdout.write(f"re-encrypted {done} TOTP secret(s) with the first key")
        if unreadable:
            raise CommandError(
                f"{unreadable} secret(s) no configured key decrypts: keep the key they were "
                "written with in MFA_ENCRYPTION_KEY (after the first) and run this again."
            )
