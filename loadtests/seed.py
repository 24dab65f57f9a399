"""Returning users for the load run: verified accounts with notifications.

    python -m loadtests.seed --accounts 200 --out results/load/mixed/accounts.json

Run by loadtests.run in the stack's environment (its fresh database), before
the load: the `Returning` scenario logs in to existing accounts, and they
must not spend their per-address code limits on signing up (a login code
can then be asked at once). Every account goes through the one creation
service (signup.flows.signup.user_create) with one shared Argon2id hash.
"""

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

NOTIFICATIONS_EACH = 30


def seed(count: int, out: Path) -> list[dict]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from messaging.models import Notification
    from signup.flows.signup import user_create

    password = secrets.token_urlsafe(16)
    password_hash = make_password(password)  # the production hasher, once
    run = secrets.token_hex(4)
    accounts = []
    with transaction.atomic():
        users = [
            user_create(
                email=f"returning-{run}-{n}@example.com",
                password_hash=password_hash,
                full_name=f"Returning {n}",
                email_verified_at=timezone.now(),
            )
            for n in range(count)
        ]
        Notification.objects.bulk_create(
            [
                Notification(user=user, kind="welcome", title=f"Notice {i}", dedupe_key=f"seed:{i}")
                for user in users
                for i in range(NOTIFICATIONS_EACH)
            ],
            batch_size=5000,
        )
    accounts = [{"email": user.email, "password": password} for user in users]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(accounts))
    return accounts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.seed", description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    seed(args.accounts, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
