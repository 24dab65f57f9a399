"""Idempotency-Key for POST /api/v1/signup (docs/api.md): the records, and
the protocol around the signup flow (signup_once).

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

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.errors import ApiError
from signup.addresses import address_key
from signup.flows.signup import user_signup_hashed
from signup.flows.verification import verification_token_for_key
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


def signup_once(*, key: str, email: str, password: str, full_name: str) -> dict:
    """POST /signup with an Idempotency-Key: the 202 body, the first answer's
    on a retry (the same verification_token, derived again: never stored);
    a malformed key or another body under the same key is a 422.

    The record is written first, in the transaction that does the signup's
    work, so the answer and the effects commit together, and a concurrent
    request with the same key waits on the record's unique index, then
    replays. One Argon2id hash on every path, as a signup without a key.
    """
    if not idempotency_key_valid(key):
        raise key_error("Idempotency-Key must be 1 to 255 printable ASCII characters.", "invalid")
    token = verification_token_for_key(email=email, key=key, password=password)
    answer = {"status": "verification_pending", "email": email}
    fingerprint = request_fingerprint({"email": email, "full_name": full_name})
    record = idempotency_lookup(key=key, email=email)
    if record is None:
        password_hash = make_password(password)
        try:
            with transaction.atomic():
                idempotency_record(
                    password_hash,
                    key=key,
                    email=email,
                    fingerprint=fingerprint,
                    status_code=202,
                    response=answer,
                )
                user_signup_hashed(
                    email=email,
                    password_hash=password_hash,
                    verification_token=token,
                    full_name=full_name,
                )
            return {**answer, "verification_token": token}
        except IdempotencyReplayError:
            record = idempotency_lookup(key=key, email=email)
    if record is None or not idempotency_matches(
        record, fingerprint=fingerprint, password=password
    ):
        raise key_error(
            "This Idempotency-Key was already used with a different request body. "
            "Use a new key for a new request.",
            "reused",
        )
    return {**record.response, "verification_token": token}


def key_error(message: str, kind: str) -> ApiError:
    """A 422 in the field-error shape, located at the header."""
    code = f"idempotency_key_{kind}"
    return ApiError(
        422, code, [{"type": code, "loc": ["header", "Idempotency-Key"], "msg": message}]
    )


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
