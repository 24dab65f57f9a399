"""Idempotency-Key for POST /api/v1/signup (docs/api.md).

The same key with the same body within 24 hours answers what the first
request answered and does nothing more; with another body, 422. The body
is fingerprinted with a keyed hash (it holds a password: never stored
plain, and the key makes the hash useless without SECRET_KEY).
"""

import json
import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from signup.models import IdempotencyKey

KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
WINDOW = timedelta(hours=24)
_SALT = "payshift.signup.idempotency"


class IdempotencyReplayError(Exception):
    """Another request recorded this key first; answer from its record."""


def idempotency_key_valid(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None


def request_fingerprint(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return salted_hmac(_SALT, canonical, algorithm="sha256").hexdigest()


def idempotency_lookup(*, key: str) -> IdempotencyKey | None:
    """The live record for key; an expired one is deleted so the key is free."""
    record = IdempotencyKey.objects.filter(key=key).first()
    if record is not None and record.created_at <= timezone.now() - WINDOW:
        record.delete()
        return None
    return record


def idempotency_record(*, key: str, fingerprint: str, status_code: int, response: dict) -> None:
    """Record the answer inside the caller's transaction.

    A concurrent request with the same key waits on the unique index until
    the first commits, then gets IdempotencyReplayError and replays.
    """
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                key=key, fingerprint=fingerprint, status_code=status_code, response=response
            )
    except IntegrityError:
        raise IdempotencyReplayError(key) from None


def idempotency_purge() -> int:
    """Delete records past the window (run from cron: manage.py idempotency_purge)."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=timezone.now() - WINDOW).delete()
    return deleted
