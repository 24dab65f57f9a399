"""notifications_deliver: one welcome, one notice per active admin, idempotent, constant queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Notification, Outbox
from messaging.services import notifications_deliver
from signup.messages import ANNOUNCE_NEW_USER
from signup.models import User

pytestmark = pytest.mark.django_db


def add_admins(count: int, *, start: int = 0, **extra) -> None:
    User.objects.bulk_create(
        [
            User(email=f"admin{start + i}@payshift.test", password="!", is_staff=True, **extra)
            for i in range(count)
        ]
    )


def test_welcome_for_the_user_and_one_notice_per_active_admin(make_user, make_row):
    admin = make_user("boss@payshift.test", is_staff=True)
    make_user("retired@payshift.test", is_staff=True, is_active=False)
    make_user("customer@example.com")  # not staff: no notice
    row = make_row(kind=ANNOUNCE_NEW_USER)

    notifications_deliver(outbox_id=row.pk)

    welcome = Notification.objects.get(user=row.user)
    assert welcome.kind == "welcome"
    notices = Notification.objects.exclude(user=row.user)
    assert [(n.user_id, n.kind) for n in notices] == [(admin.pk, "new_user")]
    assert row.user.email in notices[0].body
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT
    assert row.sent_at is not None


def test_a_staff_user_signing_up_gets_only_the_welcome(make_user, make_row):
    user = make_user(is_staff=True)
    row = make_row(kind=ANNOUNCE_NEW_USER, user=user)

    notifications_deliver(outbox_id=row.pk)

    assert list(Notification.objects.values_list("user_id", "kind")) == [(user.pk, "welcome")]


def test_announcing_twice_creates_nothing_more(make_user, make_row):
    add_admins(3)
    row = make_row(kind=ANNOUNCE_NEW_USER)
    notifications_deliver(outbox_id=row.pk)
    assert Notification.objects.count() == 4

    # A duplicate message: the row is done, nothing runs.
    notifications_deliver(outbox_id=row.pk)
    assert Notification.objects.count() == 4

    # A redelivery after a worker died between the insert and marking the
    # row sent: the unique constraint keeps it to one notice each.
    Outbox.objects.filter(pk=row.pk).update(state=Outbox.State.PENDING)
    notifications_deliver(outbox_id=row.pk)
    assert Notification.objects.count() == 4
    row.refresh_from_db()
    assert row.state == Outbox.State.SENT
    assert row.attempts == 2


def test_queries_do_not_grow_with_the_number_of_admins(make_row):
    counts = {}
    total = 0
    for admins in (1, 100, 2000):
        add_admins(admins - total, start=total)
        total = admins
        row = make_row(kind=ANNOUNCE_NEW_USER)
        with CaptureQueriesContext(connection) as queries:
            notifications_deliver(outbox_id=row.pk)
        counts[admins] = len(queries.captured_queries)
        assert Notification.objects.filter(user=row.user).count() == 1
        assert Notification.objects.filter(dedupe_key=f"new_user:{row.user.pk}").count() == (
            admins + 1
        )

    assert counts[1] == counts[100] == counts[2000], counts
    # claim, load row + user, admin ids, INSERT, mark sent, and 4 savepoint
    # statements (each row's work is isolated from the others' in its job).
    assert counts[1] <= 9, counts
