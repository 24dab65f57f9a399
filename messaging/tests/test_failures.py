"""How a delivery ends when the mail server or the job misbehaves (issue 10).

Every way a job ends leaves a named state with its error: a time limit
(a BaseException), a permanent refusal (5xx: failed at once, not retried),
an internationalised address to a server without SMTPUTF8. On a StubBroker
of their own (test_tasks.on) against the aiosmtpd sink; postfix, for what a
sink cannot show, in test_postfix.py.
"""

import time

import pytest
from dramatiq.middleware import TimeLimitExceeded

from messaging import kinds, services, tasks
from messaging.models import Outbox
from messaging.sink import MailSink
from messaging.tests.test_tasks import TINY_BACKOFF, on
from signup.messages import VERIFICATION_EMAIL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_kind(monkeypatch):
    """An email kind whose handler runs far past any time limit (pure Python:
    Dramatiq's time limit interrupts it, as it would a stalled send)."""

    def handler(user, context):
        for _ in range(200):
            time.sleep(0.05)

    name = "test.slow"
    monkeypatch.setitem(kinds._kinds, name, kinds.Kind(name, "email", handler))
    return name


def test_a_job_killed_by_its_time_limit_is_retried_then_failed_with_its_error(
    stub_broker, stub_worker, make_row, slow_kind
):
    send_email = on(stub_broker, tasks.send_email)
    row = make_row(kind=slow_kind)

    send_email.send_with_options(args=(row.pk,), time_limit=300, max_retries=1, **TINY_BACKOFF)
    with pytest.raises(TimeLimitExceeded):
        stub_broker.join(send_email.queue_name, timeout=20_000)
    stub_worker.join()

    row.refresh_from_db()
    assert row.state == Outbox.State.FAILED
    assert row.attempts == 2
    assert row.last_error.startswith("TimeLimitExceeded")


def test_an_interrupted_attempt_that_is_not_the_last_leaves_the_row_pending(make_row, monkeypatch):
    row = make_row()

    def interrupted(message):
        raise TimeLimitExceeded

    monkeypatch.setattr(services, "send_message", interrupted)
    with pytest.raises(TimeLimitExceeded):
        services.email_deliver(outbox_id=row.pk, final_attempt=False)

    row.refresh_from_db()
    assert (row.state, row.claimed_at) == (Outbox.State.PENDING, None)
    assert row.last_error.startswith("TimeLimitExceeded")


@pytest.mark.parametrize(
    ("where", "reply"),
    [("rcpt", "550 5.1.1 <nobody@example.com>: User unknown"), ("data", "554 5.7.1 Rejected")],
)
def test_a_permanent_refusal_fails_the_row_at_once_with_the_servers_answer(
    stub_broker, stub_worker, mail_sink, make_row, where, reply
):
    if where == "rcpt":
        mail_sink.handler.rcpt_reply = reply
    else:
        mail_sink.handler.fail_with = reply
    send_email = on(stub_broker, tasks.send_email)
    row = make_row()

    send_email.send_with_options(args=(row.pk,), max_retries=5, **TINY_BACKOFF)
    stub_broker.join(send_email.queue_name, timeout=10_000)
    stub_worker.join()

    row.refresh_from_db()
    assert (row.state, row.attempts) == (Outbox.State.FAILED, 1)
    assert reply.split(" ", 1)[1] in row.last_error
    assert reply[:3] in row.last_error
    assert stub_broker.dead_letters == []


def test_a_temporary_recipient_refusal_is_retried(stub_broker, stub_worker, mail_sink, make_row):
    mail_sink.handler.rcpt_reply = "450 4.2.0 Mailbox busy"
    send_email = on(stub_broker, tasks.send_email)
    row = make_row()

    send_email.send_with_options(args=(row.pk,), max_retries=2, **TINY_BACKOFF)
    with pytest.raises(Exception, match="450"):
        stub_broker.join(send_email.queue_name, timeout=10_000)
    stub_worker.join()

    row.refresh_from_db()
    assert (row.state, row.attempts) == (Outbox.State.FAILED, 3)
    assert "450 4.2.0" in row.last_error


def test_an_internationalised_address_is_sent_with_smtputf8(
    stub_broker, stub_worker, mail_sink, make_row, make_user
):
    user = make_user("josé@bücher.example")
    send_email = on(stub_broker, tasks.send_email)
    row = make_row(user=user)

    send_email.send(row.pk)
    stub_broker.join(send_email.queue_name, timeout=10_000)
    stub_worker.join()

    row.refresh_from_db()
    assert (row.state, row.last_error) == (Outbox.State.SENT, "")
    [mail] = mail_sink.handler.messages
    assert mail["to"] == ["josé@xn--bcher-kva.example"]  # the local part as is: an address


def test_an_internationalised_address_fails_clearly_without_smtputf8(
    stub_broker, stub_worker, settings, make_row, make_user
):
    with MailSink(smtputf8=False) as sink:
        settings.EMAIL_BACKEND = "messaging.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        send_email = on(stub_broker, tasks.send_email)
        row = make_row(user=make_user("josé@example.com"))

        send_email.send_with_options(args=(row.pk,), max_retries=5, **TINY_BACKOFF)
        stub_broker.join(send_email.queue_name, timeout=10_000)
        stub_worker.join()

        assert sink.handler.messages == []
    row.refresh_from_db()
    assert (row.state, row.attempts) == (Outbox.State.FAILED, 1)
    assert "does not offer SMTPUTF8" in row.last_error


def test_the_message_id_is_in_the_senders_domain_or_the_configured_one(
    mail_sink, make_row, settings
):
    settings.DEFAULT_FROM_EMAIL = "Payshift <no-reply@payshift.example>"
    services.email_deliver(outbox_id=make_row(kind=VERIFICATION_EMAIL).pk)
    settings.EMAIL_MESSAGE_ID_DOMAIN = "mail.payshift.example"
    services.email_deliver(outbox_id=make_row(kind=VERIFICATION_EMAIL).pk)

    first, second = (m["message_id"] for m in mail_sink.handler.messages)
    assert first.endswith("@payshift.example>"), first
    assert second.endswith("@mail.payshift.example>"), second
