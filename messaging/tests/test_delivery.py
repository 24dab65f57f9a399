"""Delivery end to end: the API, real Redis, a real `manage.py rundramatiq`
worker subprocess, real PostgreSQL and a real SMTP server.

These start processes and wait for them, so they are marked slow (they stay
in the normal run). Rows must be committed for the worker to see them.
"""

import time

import pytest

from conftest import wait_until
from messaging.models import Notification, Outbox
from messaging.tests.conftest import dead_letter_count, point_broker_at, worker_log
from signup.messages import ANNOUNCE_NEW_USER, VERIFICATION_EMAIL
from signup.models import User

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def worker_env(mail_sink, **extra) -> dict:
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": mail_sink.port,
        **extra,
    }


TOKENS: dict[str, str] = {}  # address -> the verification_token of its signup


def signup(api, email: str) -> float:
    started = time.perf_counter()
    response = api.post_json("/api/v1/signup", {"email": email, "password": PASSWORD})
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.content
    TOKENS[email] = response.json()["verification_token"]
    return elapsed


def verify(api, email: str, code: str):
    body = {"email": email, "code": code, "verification_token": TOKENS[email]}
    return api.post_json("/api/v1/signup/verify", body)


def mail_for(mail_sink, tmp_path, address: str, count: int = 1, timeout: float = 30) -> list:
    try:
        return mail_sink.wait_for(address, count, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{worker_log(tmp_path)}") from None


def wait_for_rows(tmp_path, predicate, timeout: float = 30) -> None:
    try:
        wait_until(predicate, timeout=timeout)
    except AssertionError as exc:
        rows = list(Outbox.objects.values_list("pk", "kind", "state", "attempts", "last_error"))
        log = worker_log(tmp_path)
        raise AssertionError(f"{exc}\nrows: {rows}\n--- worker log ---\n{log}") from None


def timing(name: str, value) -> None:
    """Shown with pytest -rP (or -s): the figures the report quotes."""
    print(f"timing {name}={value}")


def all_sent() -> bool:
    return not Outbox.objects.exclude(state=Outbox.State.SENT).exists()


def test_signup_email_arrives_and_its_code_verifies(
    api, mail_sink, start_worker, tmp_path, make_user
):
    admin = make_user("admin@payshift.test", is_staff=True)
    start_worker(**worker_env(mail_sink))

    # The first signup also waits for the worker to boot.
    posted = time.time()
    signup(api, "first@example.com")
    [first] = mail_for(mail_sink, tmp_path, "first@example.com")
    timing("email_latency_with_worker_boot_seconds", round(first["received_at"] - posted, 3))

    # A second one, with the worker running: the email's own latency.
    posted = time.time()
    signup(api, "ada@example.com")
    [record] = mail_for(mail_sink, tmp_path, "ada@example.com", timeout=10)
    latency = record["received_at"] - posted
    timing("email_latency_seconds", round(latency, 3))
    assert latency < 5, latency

    assert "Payshift" in record["subject"]
    assert record["code"] is not None
    response = verify(api, "ada@example.com", record["code"])
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "verified", "email": "ada@example.com"}
    user = User.objects.get(email="ada@example.com")
    assert user.is_verified

    wait_for_rows(tmp_path, all_sent, timeout=10)
    rows = Outbox.objects.filter(user=user)
    assert sorted(rows.values_list("kind", flat=True)) == sorted(
        [ANNOUNCE_NEW_USER, VERIFICATION_EMAIL]
    )
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
    assert list(Notification.objects.filter(user=user).values_list("kind", flat=True)) == [
        "welcome"
    ]
    assert Notification.objects.filter(user=admin, kind="new_user").count() == 2
    assert len(mail_sink.handler.to("ada@example.com")) == 1


def test_signups_during_a_broker_outage_are_delivered_when_it_is_back(
    api, mail_sink, start_worker, tmp_path, private_redis, monkeypatch, settings
):
    # Redis is the broker and the rate-limit cache: both go down together.
    point_broker_at(monkeypatch, private_redis.url)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    private_redis.stop()

    emails = [f"outage{i}@example.com" for i in range(5)]
    timings = [signup(api, email) for email in emails]
    timing("signup_seconds_broker_down", [round(t, 3) for t in timings])
    assert max(timings) < 0.5, timings

    assert Outbox.objects.count() == 10
    assert set(Outbox.objects.values_list("state", "enqueued_at")) == {(Outbox.State.PENDING, None)}
    health = api.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json() == {"status": "error", "database": "ok", "broker": "error"}

    # Redis comes back (empty); a worker starts; nobody does anything else.
    private_redis.start()
    back = time.monotonic()
    start_worker(
        **worker_env(
            mail_sink,
            REDIS_URL=private_redis.url,
            OUTBOX_GRACE_SECONDS=2,
            OUTBOX_RELAY_INTERVAL_SECONDS=1,
        )
    )
    for email in emails:
        mail_for(mail_sink, tmp_path, email, timeout=max(1, 60 - (time.monotonic() - back)))
    recovery = time.monotonic() - back
    timing("broker_outage_recovery_seconds", round(recovery, 2))
    assert recovery < 60

    wait_for_rows(tmp_path, all_sent, timeout=10)
    assert all(len(mail_sink.handler.to(email)) == 1 for email in emails)
    code = mail_sink.handler.to(emails[0])[0]["code"]
    response = verify(api, emails[0], code)
    assert response.status_code == 200, response.content
    wait_until(lambda: api.get("/api/v1/health").status_code == 200, timeout=5)


def test_an_smtp_outage_delays_the_email_which_then_arrives_once(
    api, mail_sink, start_worker, tmp_path
):
    mail_sink.handler.fail_with = "451 4.3.0 try later"
    start_worker(**worker_env(mail_sink, OUTBOX_MIN_BACKOFF_MS=200, OUTBOX_MAX_BACKOFF_MS=1000))

    signup(api, "patient@example.com")
    row = Outbox.objects.get(kind=VERIFICATION_EMAIL)
    wait_for_rows(tmp_path, lambda: Outbox.objects.get(pk=row.pk).attempts >= 3)
    row.refresh_from_db()
    assert row.state != Outbox.State.FAILED
    assert "451" in row.last_error
    assert mail_sink.handler.messages == []

    mail_sink.handler.fail_with = None
    [record] = mail_for(mail_sink, tmp_path, "patient@example.com", timeout=15)
    wait_for_rows(tmp_path, lambda: Outbox.objects.get(pk=row.pk).state == Outbox.State.SENT)
    time.sleep(1.5)  # longer than the largest backoff: a duplicate would be here by now
    assert len(mail_sink.handler.to("patient@example.com")) == 1
    row.refresh_from_db()
    assert row.last_error == ""

    # Each attempt issued a fresh code; the one delivered is the live one.
    response = verify(api, "patient@example.com", record["code"])
    assert response.status_code == 200, response.content


def test_a_permanent_smtp_refusal_ends_failed_with_the_error(
    api, mail_sink, start_worker, tmp_path
):
    mail_sink.handler.fail_with = "554 5.7.1 relay access denied"
    start_worker(
        **worker_env(
            mail_sink, OUTBOX_MAX_RETRIES=1, OUTBOX_MIN_BACKOFF_MS=200, OUTBOX_MAX_BACKOFF_MS=1000
        )
    )

    signup(api, "doomed@example.com")
    row = Outbox.objects.get(kind=VERIFICATION_EMAIL)
    wait_for_rows(tmp_path, lambda: Outbox.objects.get(pk=row.pk).state == Outbox.State.FAILED)

    row.refresh_from_db()
    assert row.attempts == 1  # 5xx: permanent, failed at once, not retried (issue 10)
    assert row.last_error == "SMTPDataError: 554 5.7.1 relay access denied"
    time.sleep(1.5)  # a retry would have come by now (200 ms backoff)
    row.refresh_from_db()
    assert row.attempts == 1
    assert dead_letter_count("email") == 0  # acked: the row says why, not the broker
    assert mail_sink.handler.messages == []
    # The announcement does not depend on SMTP.
    wait_for_rows(
        tmp_path,
        lambda: Outbox.objects.get(kind=ANNOUNCE_NEW_USER).state == Outbox.State.SENT,
    )
