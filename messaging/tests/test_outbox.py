"""Writing outbox rows and enqueueing them on commit, on the real Redis broker."""

import json
import time

import dramatiq
import pytest
from django.db import OperationalError, transaction
from django.db.models import QuerySet

from core.breaker import broker_breaker
from core.testing import free_port
from messaging import tasks
from messaging.kinds import UnknownOutboxKindError
from messaging.models import Outbox
from messaging.outbox import outbox_add_on_commit, outbox_enqueue_committed
from messaging.tests.conftest import point_broker_at, queued_ids
from signup.messages import ANNOUNCE_NEW_USER, VERIFICATION_EMAIL

pytestmark = pytest.mark.django_db


def test_rows_are_enqueued_after_commit_with_their_id_only(
    make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        email, announce = outbox_add_on_commit(
            user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER]
        )
        assert queued_ids("email") == []  # nothing before the commit
    assert len(callbacks) == 1

    assert queued_ids("email") == [email.pk]
    assert queued_ids("notifications") == [announce.pk]
    broker = dramatiq.get_broker()
    [raw] = broker.client.hvals(f"{broker.namespace}:email.msgs")
    message = json.loads(raw)
    assert (message["actor_name"], message["args"], message["kwargs"]) == (
        "send_email",
        [email.pk],
        {},
    )
    for row in (email, announce):
        row.refresh_from_db()
        assert row.state == Outbox.State.PENDING
        assert row.enqueued_at is not None


def test_nothing_is_enqueued_when_the_transaction_rolls_back(
    make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass

    assert callbacks == []
    assert queued_ids("email") == []
    assert not Outbox.objects.exists()


def test_broker_down_leaves_rows_pending_never_enqueued(make_row, monkeypatch, broker_queue_size):
    rows = [make_row(), make_row(kind=ANNOUNCE_NEW_USER)]
    point_broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")

    assert outbox_enqueue_committed(rows) == []

    assert broker_breaker.is_open
    for row in rows:
        row.refresh_from_db()
        assert (row.state, row.enqueued_at) == (Outbox.State.PENDING, None)

    # While the breaker is open, the broker is not even tried: no wait at all.
    started = time.perf_counter()
    assert outbox_enqueue_committed(rows) == []
    assert time.perf_counter() - started < 0.05

    monkeypatch.undo()
    broker_breaker.reset()
    assert outbox_enqueue_committed(rows) == [r.pk for r in rows]
    assert broker_queue_size("email") == 1
    assert broker_queue_size("notifications") == 1


def test_an_unregistered_kind_fails_when_the_row_is_written(make_user):
    user = make_user()
    with pytest.raises(UnknownOutboxKindError, match=r"signup\.verificaton"), transaction.atomic():
        outbox_add_on_commit(user=user, kinds=["signup.verificaton"])
    assert not Outbox.objects.exists()


def test_each_kind_is_enqueued_to_its_registered_actor(
    make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        email, announce = outbox_add_on_commit(
            user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER]
        )
    assert queued_ids("email") == [email.pk]
    assert queued_ids("notifications") == [announce.pk]


def test_enqueued_at_is_written_before_the_message_is_sent(make_row, monkeypatch):
    row = make_row()
    seen = []
    send = tasks.send_email.send

    def spy(outbox_id):
        seen.append(Outbox.objects.get(pk=outbox_id).enqueued_at)
        return send(outbox_id)

    monkeypatch.setattr(tasks.send_email, "send", spy)
    assert outbox_enqueue_committed([row]) == [row.pk]
    assert seen[0] is not None


def test_a_database_error_inside_a_transaction_is_raised_not_swallowed(make_row, monkeypatch):
    row = make_row()

    def broken(self, **values):
        raise OperationalError("connection lost")

    monkeypatch.setattr(QuerySet, "update", broken)
    with pytest.raises(OperationalError), transaction.atomic():
        outbox_enqueue_committed([row])
    assert queued_ids("email") == []


@pytest.mark.django_db(transaction=True)
def test_a_database_error_outside_a_transaction_leaves_the_rows_to_the_relay(make_row, monkeypatch):
    row = make_row()

    def broken(self, **values):
        raise OperationalError("connection lost")

    monkeypatch.setattr(QuerySet, "update", broken)
    assert outbox_enqueue_committed([row]) == []
    assert queued_ids("email") == []  # nothing sent unstamped; the grace rule relays it
