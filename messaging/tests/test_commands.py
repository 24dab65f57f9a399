"""The on-call commands: queue_status and outbox_requeue."""

from datetime import timedelta
from io import StringIO

import dramatiq
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from messaging import relay, tasks
from messaging.models import Outbox
from messaging.tests.conftest import point_broker_at, queued_ids

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def status(*, code: int) -> str:
    """queue_status's output; it must exit with code."""
    out = StringIO()
    if code == 0:
        call_command("queue_status", stdout=out)
    else:
        with pytest.raises(CommandError) as error:
            call_command("queue_status", stdout=out)
        assert error.value.returncode == code
    return out.getvalue()


def test_queue_status_reports_queues_and_outbox_states(make_row):
    make_row()
    make_row(state=Outbox.State.SENT, sent_at=timezone.now())
    make_row(state=Outbox.State.FAILED, last_error="SMTPDataError: 554 no")
    old = make_row()
    Outbox.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=7))

    output = status(code=1)  # a failed row

    assert "email" in output
    assert "notifications" in output
    assert "pending=2" in output
    assert "sent=1" in output
    assert "failed=1" in output
    assert "oldest unfinished: 7m ago" in output
    assert "never enqueued: 2" in output
    assert "554 no" in output


def test_queue_status_still_reports_the_outbox_while_redis_is_down(monkeypatch, make_row):
    make_row()
    point_broker_at(monkeypatch, "redis://127.0.0.1:1/0")

    output = status(code=2)

    assert "broker: unreachable" in output
    assert "pending=1" in output


def test_queue_status_shows_retrying_messages_and_the_last_error_of_pending_rows(make_row):
    broker = dramatiq.get_broker()
    tasks.send_email.send_with_options(args=(1,), delay=60_000)  # waiting in email.DQ
    # A retry a worker fetched and holds until its backoff is over:
    broker.client.sadd(f"{broker.namespace}:__acks__.worker-1.email.DQ", "message-id")
    make_row(attempts=3, last_error="SMTPServerDisconnected: Connection unexpectedly closed")

    output = status(code=0)

    email_line = next(line for line in output.splitlines() if line.strip().startswith("email"))
    assert email_line.split() == ["email", "0", "2", "0", "0"]
    assert "retrying #" in output
    assert "attempts=3: SMTPServerDisconnected" in output


def test_queue_status_counts_worker_processes_only(make_row):
    broker = dramatiq.get_broker()
    tasks.send_email.send(1)  # a web process enqueueing: a heartbeat on Dramatiq's key
    assert broker.client.zcard(f"{broker.namespace}:__heartbeats__") == 1
    assert "0 live worker process(es)" in status(code=0)

    relay.worker_present()  # what each worker's relay does on every pass
    assert "1 live worker process(es)" in status(code=0)


def test_outbox_requeue_dry_run_changes_nothing(make_row):
    row = make_row(state=Outbox.State.FAILED, last_error="boom")

    output = run("outbox_requeue", "--all-failed", "--dry-run")

    assert f"#{row.pk}" in output
    assert "would be re-queued" in output
    row.refresh_from_db()
    assert row.state == Outbox.State.FAILED


def test_outbox_requeue_puts_failed_rows_back_and_enqueues_them(make_row):
    failed = make_row(state=Outbox.State.FAILED, last_error="boom")
    other = make_row(state=Outbox.State.FAILED, last_error="boom")
    sent = make_row(state=Outbox.State.SENT)

    output = run("outbox_requeue", "--id", str(failed.pk))

    assert "1 row(s) back to pending" in output
    failed.refresh_from_db()
    other.refresh_from_db()
    sent.refresh_from_db()
    assert failed.state == Outbox.State.PENDING
    assert failed.enqueued_at is not None
    assert other.state == Outbox.State.FAILED
    assert sent.state == Outbox.State.SENT
    assert queued_ids("email") == [failed.pk]


def test_outbox_requeue_stuck_takes_only_dead_claims(make_row, settings):
    now = timezone.now()
    dead = make_row(state=Outbox.State.SENDING, claimed_at=now - timedelta(hours=1))
    live = make_row(state=Outbox.State.SENDING, claimed_at=now)

    run("outbox_requeue", "--stuck")

    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.state == Outbox.State.PENDING
    assert live.state == Outbox.State.SENDING


def test_outbox_requeue_requires_a_selection():
    with pytest.raises(CommandError, match="Say which rows"):
        call_command("outbox_requeue")
