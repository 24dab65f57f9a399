"""The actors' retry behaviour, on a StubBroker of their own (fast unit tests).

The project's broker is the real Redis one; these tests declare the same
actor functions again on a private StubBroker with the same options and
middleware that matter (Retries, CurrentMessage, DB connections), and run a
stub Worker. Delivery itself is tested against Redis in test_delivery.py.
"""

import smtplib

import dramatiq
import pytest
from django.conf import settings
from dramatiq.brokers.stub import StubBroker

from messaging import tasks
from messaging.models import Notification, Outbox
from signup.messages import ANNOUNCE_NEW_USER

# Worker threads use their own database connections: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

TINY_BACKOFF = {"min_backoff": 10, "max_backoff": 20}


def on(broker: StubBroker, actor: dramatiq.Actor) -> dramatiq.Actor:
    """The same actor (function, name, queue, options) declared on broker."""
    return dramatiq.Actor(
        actor.fn,
        broker=broker,
        actor_name=actor.actor_name,
        queue_name=actor.queue_name,
        priority=actor.priority,
        options=dict(actor.options),
    )


def test_actors_retry_with_the_configured_backoff():
    actors = [
        (tasks.send_email, "email"),
        (tasks.notify, "notifications"),
        (tasks.announce_new_user, "notifications"),  # the legacy name, for queued messages
    ]
    for actor, queue in actors:
        assert actor.queue_name == queue
        assert actor.options["max_retries"] == settings.OUTBOX_MAX_RETRIES
        assert actor.options["min_backoff"] == settings.OUTBOX_MIN_BACKOFF_MS
        assert actor.options["max_backoff"] == settings.OUTBOX_MAX_BACKOFF_MS
        assert actor.options["max_backoff"] < settings.OUTBOX_STALE_SECONDS * 1000
    assert "messaging.middleware.OutboxRetries" in settings.DRAMATIQ_BROKER["MIDDLEWARE"]
    assert "dramatiq.middleware.CurrentMessage" in settings.DRAMATIQ_BROKER["MIDDLEWARE"]


def test_failing_every_time_ends_failed_and_dead_lettered(
    stub_broker, stub_worker, mail_sink, make_row
):
    mail_sink.handler.fail_with = "451 4.3.0 try later"
    send_email = on(stub_broker, tasks.send_email)
    row = make_row()

    send_email.send_with_options(args=(row.pk,), max_retries=2, **TINY_BACKOFF)
    with pytest.raises(smtplib.SMTPDataError):
        stub_broker.join(send_email.queue_name, timeout=10_000)  # re-raises the dead letter's error
    stub_worker.join()

    row.refresh_from_db()
    assert row.state == Outbox.State.FAILED
    assert row.attempts == 3  # the first try and two retries
    assert "451" in row.last_error
    assert [m.args for m in stub_broker.dead_letters] == [(row.pk,)]
    assert mail_sink.handler.messages == []


def test_the_final_attempt_follows_the_actors_own_retry_limit(
    stub_broker, stub_worker, mail_sink, make_row
):
    mail_sink.handler.fail_with = "451 4.3.0 try later"
    send_email = on(stub_broker, tasks.send_email)
    row = make_row()

    send_email.send_with_options(args=(row.pk,), **TINY_BACKOFF)
    with pytest.raises(smtplib.SMTPDataError):
        stub_broker.join(send_email.queue_name, timeout=30_000)
    stub_worker.join()

    row.refresh_from_db()
    assert row.state == Outbox.State.FAILED
    assert row.attempts == settings.OUTBOX_MAX_RETRIES + 1


def test_a_transient_smtp_failure_is_retried_and_sent_once(
    stub_broker, stub_worker, mail_sink, make_row
):
    refusals = []
    accept = mail_sink.handler.handle_DATA

    async def refuse_twice(server, session, envelope):
        if len(refusals) < 2:
            refusals.append(envelope.rcpt_tos)
            return "451 4.3.0 try later"
        return await accept(server, session, envelope)

    mail_sink.handler.handle_DATA = refuse_twice
    send_email = on(stub_broker, tasks.send_email)
    row = make_row()

    send_email.send_with_options(args=(row.pk,), max_retries=5, **TINY_BACKOFF)
    stub_broker.join(send_email.queue_name, timeout=10_000)
    stub_worker.join()

    assert len(refusals) == 2
    assert len(mail_sink.handler.to(row.user.email)) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == (Outbox.State.SENT, 3, "")
    assert stub_broker.dead_letters == []


def test_a_message_delivered_twice_sends_once(stub_broker, stub_worker, mail_sink, make_row):
    send_email = on(stub_broker, tasks.send_email)
    row = make_row()

    send_email.send(row.pk)
    send_email.send(row.pk)
    stub_broker.join(send_email.queue_name, timeout=10_000)
    stub_worker.join()

    assert len(mail_sink.handler.to(row.user.email)) == 1


def test_announce_actor_runs_the_service(stub_broker, stub_worker, make_row):
    announce = on(stub_broker, tasks.notify)
    row = make_row(kind=ANNOUNCE_NEW_USER)

    announce.send(row.pk)
    stub_broker.join(announce.queue_name, timeout=10_000)
    stub_worker.join()

    assert Notification.objects.filter(user=row.user, kind="welcome").count() == 1
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT
