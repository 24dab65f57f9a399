"""Fixtures and helpers for the signup tests (the shared ones live in /conftest.py)."""

import json

import pytest

from core.breaker import cache_breaker
from messaging.models import Notification, Outbox
from signup.codes import verification_code_issue
from signup.hashers import Argon2idHasher
from signup.models import (
    AddressCounter,
    AddressLimit,
    PendingSignup,
    Profile,
    User,
    VerificationCode,
    Wallet,
)
from signup.tokens import token_digest

SIGNUP = "/api/v1/signup"
VERIFY = "/api/v1/signup/verify"
RESEND = "/api/v1/signup/resend"

PASSWORD = "correct horse battery staple"
INVALID_CODE = {"detail": "Invalid or expired code.", "code": "invalid_code"}


@pytest.fixture(autouse=True)
def _no_ip_limit(settings):
    """The per-IP limit is tested on its own (test_rate_limit.py); elsewhere it
    would make a test depend on how many requests it happens to send."""
    settings.RATE_LIMIT_PER_IP = "off"


@pytest.fixture
def cache_down(settings):
    """The limits' cache pointed at a closed port (the broker stays up): Redis
    down for every cache call, however a limit talks to it."""
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    assert not cache_breaker.is_open


def make_user(email: str, *, verified: bool = False, password: str = PASSWORD, **extra) -> User:
    """An account as the manager makes it (profile and wallet, no limit row);
    an unverified one with the pending signup a signup leaves (its token:
    signup_token(email))."""
    if verified:
        from django.utils import timezone

        extra["email_verified_at"] = timezone.now()
    user = User.objects.create_user(email, password, **extra)
    if not verified:
        PendingSignup.objects.create(
            user=user,
            token_hash=token_digest(signup_token(email)),
            password=user.password,
            full_name=user.profile.full_name,
        )
    return user


def signup_token(email: str) -> str:
    """The verification token of make_user's unverified account (tests only)."""
    return f"test-token-{email.lower()}"


def verify_body(email: str, code: str, token: str | None = None) -> dict:
    """A POST /signup/verify body with the account's signup token (make_user's)."""
    return {"email": email, "code": code, "verification_token": token or signup_token(email)}


def issue_code(user: User) -> str:
    """What the worker does when it sends the verification email."""
    return verification_code_issue(user=user, purpose=VerificationCode.Purpose.VERIFY_EMAIL)


def run_queued_resends() -> int:
    """Do what a worker does with the code-request jobs waiting in the real
    broker (signup.tasks.resend_code); returns how many ran."""
    import dramatiq

    from signup.tasks import resend_code

    broker = dramatiq.get_broker()
    consumer = broker.consume(resend_code.queue_name, prefetch=100, timeout=50)
    ran = 0
    try:
        for message in consumer:
            if message is None:
                break
            resend_code.fn(*message.args, **message.kwargs)
            consumer.ack(message)
            ran += 1
    finally:
        consumer.close()
    return ran


def outbox_kinds(user: User | None = None) -> list[str]:
    """Outbox rows' kinds, after the queued resend jobs have run."""
    run_queued_resends()
    rows = Outbox.objects.order_by("pk")
    if user is not None:
        rows = rows.filter(user=user)
    return list(rows.values_list("kind", flat=True))


def row_counts() -> dict[str, int]:
    """Every table a signup request may write to."""
    return {
        model.__name__: model.objects.count()
        for model in (
            User,
            Profile,
            Wallet,
            VerificationCode,
            AddressLimit,
            AddressCounter,
            Outbox,
            Notification,
        )
    }


FIELD_ERROR_CODES = {"validation_error", "idempotency_key_invalid", "idempotency_key_reused"}


def error_detail_is_list_of_field_errors(body: dict) -> bool:
    """The documented 422 shape: {"detail": [{"loc": [...], "msg": str, "type": str}, ...],
    "code": "validation_error" or an idempotency_key_* code}."""
    detail = body.get("detail")
    return (
        set(body) == {"detail", "code"}
        and body["code"]
        in {"validation_error", "idempotency_key_invalid", "idempotency_key_reused"}
        and isinstance(detail, list)
        and len(detail) > 0
        and all(
            isinstance(item, dict)
            and isinstance(item.get("loc"), list)
            and isinstance(item.get("msg"), str)
            and item["msg"]
            and isinstance(item.get("type"), str)
            and item["type"]
            for item in detail
        )
    )


ERROR_CODES = {
    400: {"invalid_json", "invalid_code"},
    413: {"body_too_large"},
    415: {"unsupported_media_type"},
    429: {"rate_limited", "too_many_attempts"},
    503: {"service_unavailable"},
}


def is_plain_detail(response) -> bool:
    """The documented 400/413/415/429/503 shape: {"detail": "<for people>", "code": "<for
    programs>"}, with a code the Errors table of docs/api.md gives for that status."""
    body = json.loads(response.content)
    return (
        set(body) == {"detail", "code"}
        and isinstance(body["detail"], str)
        and body["detail"] != ""
        and body["code"] in ERROR_CODES.get(response.status_code, ())
    )


class Clock:
    """A stand-in for the time module in signup.limits: now only moves when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    """Freeze the clock of the per-address limits (signup.limits)."""
    import time

    fake = Clock(float(int(time.time())))  # whole seconds: exact arithmetic at boundaries
    monkeypatch.setattr("signup.limits.time", fake)
    return fake


class HasherSpy:
    def __init__(self) -> None:
        self.calls = 0


@pytest.fixture
def hasher_spy(monkeypatch):
    """Counts calls to the production hasher's encode; the real one still runs."""
    spy = HasherSpy()
    original = Argon2idHasher.encode

    def encode(self, password, salt):
        spy.calls += 1
        return original(self, password, salt)

    monkeypatch.setattr(Argon2idHasher, "encode", encode)
    return spy
