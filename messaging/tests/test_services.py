"""Delivery services called directly: real PostgreSQL, a real SMTP server."""

import smtplib
from datetime import timedelta

import psycopg
import pytest
from django.apps import apps
from django.core.mail.backends.smtp import EmailBackend
from django.db import connection, models
from django.utils import timezone

from core.testing import free_port
from messaging.models import Outbox
from messaging.services import email_deliver, outbox_claim, outbox_requeue
from messaging.sink import code_in
from signup.flows.verification import pending_signup_add
from signup.messages import SIGNUP_NOTICE_EMAIL
from signup.models import VerificationCode

pytestmark = pytest.mark.django_db


def test_email_deliver_sends_once_and_marks_sent(mail_sink, make_row):
    row = make_row()
    before = timezone.now()

    email_deliver(outbox_id=row.pk)

    assert len(mail_sink.handler.to(row.user.email)) == 1
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT
    assert row.sent_at is not None
    assert row.sent_at >= before
    assert row.attempts == 1
    assert row.last_error == ""


def test_a_sent_row_is_not_sent_again(mail_sink, make_row):
    row = make_row()
    email_deliver(outbox_id=row.pk)
    row.refresh_from_db()
    sent_at = row.sent_at

    email_deliver(outbox_id=row.pk)  # the same message delivered twice

    assert len(mail_sink.handler.to(row.user.email)) == 1
    row.refresh_from_db()
    assert (row.state, row.sent_at, row.attempts) == (Outbox.State.SENT, sent_at, 1)
    assert VerificationCode.objects.filter(user=row.user).count() == 1


def test_a_row_claimed_by_a_live_worker_is_skipped(mail_sink, make_row):
    claimed_at = timezone.now() - timedelta(seconds=5)
    row = make_row(state=Outbox.State.SENDING, claimed_at=claimed_at, attempts=1)

    email_deliver(outbox_id=row.pk)

    assert mail_sink.handler.messages == []
    row.refresh_from_db()
    assert (row.state, row.claimed_at, row.attempts) == (Outbox.State.SENDING, claimed_at, 1)


def test_a_stale_claim_is_taken_over(mail_sink, make_row, settings):
    settings.OUTBOX_CLAIM_TIMEOUT_SECONDS = 90
    stale = timezone.now() - timedelta(seconds=91)
    row = make_row(state=Outbox.State.SENDING, claimed_at=stale, attempts=1)

    email_deliver(outbox_id=row.pk)

    assert len(mail_sink.handler.to(row.user.email)) == 1
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT
    assert row.attempts == 2
    assert row.claimed_at > stale


@pytest.mark.parametrize("state", [Outbox.State.SENT, Outbox.State.FAILED])
def test_finished_rows_cannot_be_claimed(make_row, state):
    row = make_row(state=state)
    assert outbox_claim(outbox_id=row.pk) is None
    row.refresh_from_db()
    assert row.state == state


def test_smtp_refusal_leaves_the_row_pending_with_the_error_and_reraises(mail_sink, make_row):
    mail_sink.handler.fail_with = "451 4.3.0 try later"
    row = make_row()

    with pytest.raises(smtplib.SMTPDataError) as excinfo:
        email_deliver(outbox_id=row.pk)

    assert excinfo.value.smtp_code == 451
    row.refresh_from_db()
    assert row.state == Outbox.State.PENDING
    assert row.claimed_at is None
    assert row.sent_at is None
    assert row.attempts == 1
    assert "SMTPDataError" in row.last_error
    assert "try later" in row.last_error
    assert mail_sink.handler.messages == []


def test_unreachable_smtp_server_leaves_the_row_pending(make_row, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    row = make_row()

    with pytest.raises(ConnectionRefusedError):
        email_deliver(outbox_id=row.pk)

    row.refresh_from_db()
    assert row.state == Outbox.State.PENDING
    assert row.last_error.startswith("ConnectionRefusedError")


def test_a_failed_attempt_can_be_retried_and_then_sends(mail_sink, make_row):
    mail_sink.handler.fail_with = "451 4.3.0 try later"
    row = make_row()
    with pytest.raises(smtplib.SMTPDataError):
        email_deliver(outbox_id=row.pk)

    mail_sink.handler.fail_with = None
    email_deliver(outbox_id=row.pk)

    assert len(mail_sink.handler.to(row.user.email)) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == (Outbox.State.SENT, 2, "")


def terminate_this_connection() -> None:
    """pg_terminate_backend on this process's connection, from a second one: a blip."""
    db = connection.settings_dict
    pid = connection.connection.info.backend_pid
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def blip_after_smtp(monkeypatch):
    """The database connection drops right after each SMTP send (sent or refused)."""
    send = EmailBackend.send_messages

    def send_then_blip(self, messages):
        try:
            return send(self, messages)
        finally:
            terminate_this_connection()

    monkeypatch.setattr(EmailBackend, "send_messages", send_then_blip)


@pytest.mark.django_db(transaction=True)
def test_a_sent_email_is_recorded_through_a_dropped_connection(
    mail_sink, make_row, blip_after_smtp
):
    # Not recorded, the row would stay claimed and be sent again after the claim timeout.
    row = make_row()

    email_deliver(outbox_id=row.pk)

    assert len(mail_sink.handler.to(row.user.email)) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (Outbox.State.SENT, 1)


@pytest.mark.django_db(transaction=True)
def test_a_failure_is_recorded_through_a_dropped_connection(mail_sink, make_row, blip_after_smtp):
    mail_sink.handler.fail_with = "451 4.3.0 try later"
    row = make_row()

    with pytest.raises(smtplib.SMTPDataError):
        email_deliver(outbox_id=row.pk)

    row.refresh_from_db()
    assert (row.state, row.claimed_at) == (Outbox.State.PENDING, None)  # the retry can claim it
    assert "451" in row.last_error


def test_the_final_attempt_marks_the_row_failed_with_the_error(mail_sink, make_row):
    mail_sink.handler.fail_with = "452 4.3.1 insufficient storage"  # temporary, but the last try
    row = make_row()

    with pytest.raises(smtplib.SMTPDataError):
        email_deliver(outbox_id=row.pk, final_attempt=True)

    row.refresh_from_db()
    assert row.state == Outbox.State.FAILED
    assert row.last_error == "SMTPDataError: 452 4.3.1 insufficient storage"
    assert row.sent_at is None
    # A failed row is done: a late duplicate message does not send it.
    mail_sink.handler.fail_with = None
    email_deliver(outbox_id=row.pk)
    assert mail_sink.handler.messages == []


def test_requeue_puts_failed_rows_back_to_pending(make_row):
    failed = make_row(state=Outbox.State.FAILED, last_error="boom", enqueued_at=timezone.now())
    other_failed = make_row(state=Outbox.State.FAILED)
    sent = make_row(state=Outbox.State.SENT)

    assert outbox_requeue(ids=[failed.pk, sent.pk]) == 1

    failed.refresh_from_db()
    assert failed.state == Outbox.State.PENDING
    assert failed.enqueued_at is None  # so the relay enqueues it after the grace
    other_failed.refresh_from_db()
    assert other_failed.state == Outbox.State.FAILED
    sent.refresh_from_db()
    assert sent.state == Outbox.State.SENT

    assert outbox_requeue() == 1
    other_failed.refresh_from_db()
    assert other_failed.state == Outbox.State.PENDING


# --- the verification email ---------------------------------------------------


def test_verification_email_content(mail_sink, make_row, settings):
    row = make_row()

    email_deliver(outbox_id=row.pk)

    [record] = mail_sink.handler.to(row.user.email)
    assert "Payshift" in record["subject"]
    assert record["from"] in settings.DEFAULT_FROM_EMAIL
    assert record["code"] is not None
    assert record["code"] in [line.strip() for line in record["body"].splitlines()]
    assert "valid for 10 minutes" in record["body"]


def test_verification_email_has_an_html_alternative(mail_sink, make_row, settings):
    from email import message_from_bytes, policy

    raw: list[bytes] = []
    original = mail_sink.handler.handle_DATA

    async def keep_raw(server, session, envelope):
        raw.append(envelope.content)
        return await original(server, session, envelope)

    mail_sink.handler.handle_DATA = keep_raw
    row = make_row()

    email_deliver(outbox_id=row.pk)

    [content] = raw
    message = message_from_bytes(content, policy=policy.default)
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    code = code_in(message.get_body(preferencelist=("plain",)).get_content())
    assert code in html.get_content()


def verify_body(user, code: str) -> dict:
    """The verify body, with a signup recorded for user (as signup leaves one)."""
    token = f"token-of-{user.pk}"
    pending_signup_add(user_id=user.pk, token=token, password_hash=user.password, full_name="")
    return {"email": user.email, "code": code, "verification_token": token}


def test_the_emailed_code_verifies_through_the_api(mail_sink, make_row, api):
    row = make_row()
    email_deliver(outbox_id=row.pk)
    [record] = mail_sink.handler.to(row.user.email)

    response = api.post_json("/api/v1/signup/verify", verify_body(row.user, record["code"]))

    assert response.status_code == 200, response.content
    row.user.refresh_from_db()
    assert row.user.is_verified


def test_each_attempt_issues_a_fresh_code_and_kills_the_old_one(mail_sink, make_row, api):
    first = make_row()
    email_deliver(outbox_id=first.pk)
    second = make_row(user=first.user)
    email_deliver(outbox_id=second.pk)
    old, new = (m["code"] for m in mail_sink.handler.to(first.user.email))

    if old != new:  # one in a million they are equal
        response = api.post_json("/api/v1/signup/verify", verify_body(first.user, old))
        assert response.status_code == 400
    response = api.post_json("/api/v1/signup/verify", verify_body(first.user, new))
    assert response.status_code == 200


def test_no_plaintext_code_is_stored_in_the_database(mail_sink, make_row):
    row = make_row()
    email_deliver(outbox_id=row.pk)
    [record] = mail_sink.handler.to(row.user.email)
    code = record["code"]

    assert VerificationCode.objects.filter(user=row.user).exists()
    found = []
    for model in apps.get_models():
        text_fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField)
        ]
        for values in model._default_manager.values_list(*text_fields) if text_fields else ():
            found += [(model.__name__, v) for v in values if isinstance(v, str) and code in v]
    assert found == []


def test_a_verified_users_queued_verification_email_is_skipped(mail_sink, make_user, make_row):
    user = make_user(email_verified_at=timezone.now())
    row = make_row(user=user)

    email_deliver(outbox_id=row.pk)

    assert mail_sink.handler.messages == []
    assert not VerificationCode.objects.filter(user=user).exists()
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT


def test_signup_attempt_notice_has_no_code(mail_sink, make_user, make_row):
    user = make_user(email_verified_at=timezone.now())
    row = make_row(kind=SIGNUP_NOTICE_EMAIL, user=user)

    email_deliver(outbox_id=row.pk)

    [record] = mail_sink.handler.to(user.email)
    assert record["code"] is None
    assert not VerificationCode.objects.filter(user=user).exists()
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT
