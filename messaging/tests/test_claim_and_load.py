"""outbox_claim_rows: the claim and the load of the claimed rows with their
users are one statement on PostgreSQL (issue 23); what it claims is unchanged."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.sqlshape import sql_shape
from messaging.models import Outbox
from messaging.services import outbox_claim_rows
from signup.messages import ANNOUNCE_NEW_USER

pytestmark = pytest.mark.django_db
ON_POSTGRESQL = connection.vendor == "postgresql"


def claim(ids: list[int]) -> tuple[list[Outbox], list[str]]:
    """The claimed rows, and the shapes of the statements the claim ran."""
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        rows = outbox_claim_rows(outbox_ids=ids)
    return rows, [sql_shape(q["sql"]) for q in captured.captured_queries]


def test_claimed_rows_come_with_their_users_and_need_no_more_queries(make_user, make_row):
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com", is_staff=True)
    rows = [
        make_row(user=bob, context={"at": "2024-01-02 03:04"}, request_id="req-1"),
        make_row(kind=ANNOUNCE_NEW_USER, user=ada),
    ]

    claimed, shapes = claim([rows[1].pk, rows[0].pk, 10**9])

    assert len(shapes) == (1 if ON_POSTGRESQL else 2), shapes
    if ON_POSTGRESQL:
        assert shapes[0].startswith('WITH "claimed" AS ( UPDATE "messaging_outbox" SET "state"')
        assert 'FROM "claimed" INNER JOIN "signup_user"' in shapes[0]
    assert [row.pk for row in claimed] == [rows[0].pk, rows[1].pk]  # in pk order
    first, second = claimed
    with CaptureQueriesContext(connection) as more:
        assert (first.user.pk, first.user.email, first.user.is_staff) == (bob.pk, bob.email, True)
        assert (second.user.pk, second.user.email) == (ada.pk, ada.email)
    assert more.captured_queries == []
    assert first.context == {"at": "2024-01-02 03:04"}  # JSON decoded, as the ORM does
    assert first.request_id == "req-1"
    assert (first.kind, second.kind) == (rows[0].kind, ANNOUNCE_NEW_USER)
    assert (first.state, first.attempts) == (Outbox.State.SENDING, 1)
    assert first.claimed_at.tzinfo is not None
    assert first.created_at == Outbox.objects.get(pk=first.pk).created_at
    assert first.user.date_joined == type(bob).objects.get(pk=bob.pk).date_joined
    assert (first._state.adding, first._state.db) == (False, connection.alias)


def test_a_row_claimed_by_a_live_worker_is_skipped(make_row):
    claimed_at = timezone.now() - timedelta(seconds=5)
    live = make_row(state=Outbox.State.SENDING, claimed_at=claimed_at, attempts=1)
    free = make_row()

    claimed, _ = claim([live.pk, free.pk])

    assert [row.pk for row in claimed] == [free.pk]
    live.refresh_from_db()
    assert (live.state, live.claimed_at, live.attempts) == (Outbox.State.SENDING, claimed_at, 1)


def test_a_stale_claim_is_taken_over(make_row, settings):
    stale = timezone.now() - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS + 1)
    row = make_row(state=Outbox.State.SENDING, claimed_at=stale, attempts=1)

    (claimed,), _ = claim([row.pk])

    assert claimed.pk == row.pk
    assert claimed.user.pk == row.user_id
    assert claimed.attempts == 2
    assert claimed.claimed_at > stale
    row.refresh_from_db()
    assert (row.state, row.attempts, row.claimed_at) == (
        Outbox.State.SENDING,
        2,
        claimed.claimed_at,
    )


@pytest.mark.parametrize("state", [Outbox.State.SENT, Outbox.State.FAILED])
def test_finished_rows_are_not_claimed(make_row, state):
    row = make_row(state=state)

    claimed, shapes = claim([row.pk])

    assert claimed == []
    assert len(shapes) == 1  # nothing claimed: nothing to load either
