"""Writing outbox rows and enqueueing them on commit, on the real Redis broker."""

import json
import time

import dramatiq
import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.breaker import broker_breaker
from core.testing import free_port
from messaging.kinds import UnknownOutboxKindError
from messaging.models import Outbox
from messaging.outbox import outbox_add_on_commit, outbox_enqueue_committed
from messaging.tests.conftest import point_broker_at, queued_ids
from signup.messages import ANNOUNCE_NEW_USER, VERIFICATION_EMAIL

pytestmark = pytest.mark.django_db


def test_rows_written_together_travel_in_one_message_after_commit(
    make_user, django_capture_on_commit_callbacks
):
    """A signup's verification email and announcement: one message, one job
    (issue 23), on the first row's queue; the rows are written stamped."""
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        email, announce = outbox_add_on_commit(
            user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER]
        )
        assert queued_ids("email") == []  # nothing before the commit
    assert len(callbacks) == 1

    assert queued_ids("email") == [[email.pk, announce.pk]]
    assert queued_ids("notifications") == []
    broker = dramatiq.get_broker()
    [raw] = broker.client.hvals(f"{broker.namespace}:email.msgs")
    message = json.loads(raw)
    assert (message["actor_name"], message["args"], message["kwargs"]) == (
        "send_email",
        [[email.pk, announce.pk]],
        {},
    )
    for row in (email, announce):
        row.refresh_from_db()
        assert row.state == Outbox.State.PENDING
        assert row.enqueued_at is not None


def test_a_single_row_travels_as_its_id_alone(make_user, django_capture_on_commit_callbacks):
    """What an older release's worker understands: a message per row, its id."""
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        [announce] = outbox_add_on_commit(user=user, kinds=[ANNOUNCE_NEW_USER])
    assert queued_ids("notifications") == [announce.pk]


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


def test_broker_down_takes_the_stamp_back(make_user, monkeypatch, broker_queue_size):
    """The rows stay pending with no enqueued_at: the relay's never-enqueued rule."""
    user = make_user()
    point_broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    with transaction.atomic():
        rows = outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER])
    assert all(row.enqueued_at is not None for row in rows)

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
        [email] = outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL])
        [announce] = outbox_add_on_commit(user=user, kinds=[ANNOUNCE_NEW_USER])
    assert queued_ids("email") == [email.pk]
    assert queued_ids("notifications") == [announce.pk]


def test_the_enqueue_after_commit_writes_nothing(make_user, django_capture_on_commit_callbacks):
    """The stamp is in the INSERT: no second transaction per request (issue 23)."""
    user = make_user()
    with transaction.atomic():
        rows = outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER])
    with CaptureQueriesContext(connection) as queries:
        assert outbox_enqueue_committed(rows) == [r.pk for r in rows]
    assert queries.captured_queries == []


def broken_update(monkeypatch):
    def broken(self, **values):
        raise OperationalError("connection lost")

    monkeypatch.setattr(QuerySet, "update", broken)


def test_a_database_error_taking_the_stamp_back_inside_a_transaction_is_raised(
    make_row, monkeypatch
):
    row = make_row(enqueued_at=timezone.now())
    point_broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    broken_update(monkeypatch)
    with pytest.raises(OperationalError), transaction.atomic():
        outbox_enqueue_committed([row])


@pytest.mark.django_db(transaction=True)
def test_a_database_error_taking_the_stamp_back_leaves_the_rows_to_the_stale_rule(
    make_row, monkeypatch, caplog
):
    row = make_row(enqueued_at=timezone.now())
    point_broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    broken_update(monkeypatch)
    assert outbox_enqueue_committed([row]) == []
    assert "outcome=unstamped" in caplog.text
