"""Idempotency-Key for POST /api/v1/signup (docs/api.md).

The same key with the same body within 24 hours answers what the first
request answered and does nothing more; with another body, 422.

A key is scoped to the canonical address of the body (signup.addresses): the
same key sent for another address is another record, so one client cannot
replay or probe another's. Within a scope, the body minus the password is
fingerprinted with a keyed hash, and the password is checked against the
Argon2id hash the signup computed anyway: answering "same" or "different"
costs a slow hash, as a signup does, and no fast hash of a password is
stored (issue 8, point 7).
"""

import json
import re
from datetime import timedelta

from django.contrib.auth.hashers import check_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from signup.addresses import address_key
from signup.models import IdempotencyKey

KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
WINDOW = timedelta(hours=24)
_SALT = "payshift.signup.idempotency"
SECRET_FIELDS = frozenset({"password"})


class IdempotencyReplayError(Exception):
    """Another request recorded this key first; answer from its record."""


def idempotency_key_valid(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None


def request_fingerprint(payload: dict) -> str:
    """Keyed hash of the body without its secrets (they are checked with a slow hash)."""
    public = {name: value for name, value in payload.items() if name not in SECRET_FIELDS}
    canonical = json.dumps(public, sort_keys=True, separators=(",", ":"))
    return salted_hmac(_SALT, canonical, algorithm="sha256").hexdigest()


def idempotency_lookup(*, key: str, email: str) -> IdempotencyKey | None:
    """The live record for key in email's scope; an expired one is deleted."""
    record = IdempotencyKey.objects.filter(scope=address_key(email), key=key).first()
    if record is not None and record.created_at <= timezone.now() - WINDOW:
        record.delete()
        return None
    return record


def idempotency_matches(record: IdempotencyKey, *, fingerprint: str, password: str) -> bool:
    """Is this the request the record answered? Always one slow hash (equal work)."""
    password_ok = check_password(password, record.password_hash)
    return password_ok and record.fingerprint == fingerprint


def idempotency_record(
    password_hash: str,
    *,
    key: str,
    email: str,
    fingerprint: str,
    status_code: int,
    response: dict,
) -> None:
    """Record the answer inside the caller's transaction.

    A concurrent request with the same key and address waits on the unique
    index until the first commits, then gets IdempotencyReplayError and
    replays (after the same body check as any retry).
    """
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                scope=address_key(email),
                key=key,
                fingerprint=fingerprint,
                password_hash=password_hash,
                status_code=status_code,
                response=response,
            )
    except IntegrityError:
        raise IdempotencyReplayError(key) from None


def idempotency_purge() -> int:
    """Delete records past the window (run from cron: manage.py idempotency_purge)."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=timezone.now() - WINDOW).delete()
    return deleted
