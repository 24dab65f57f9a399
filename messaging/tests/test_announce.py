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
    # BEGIN, claim + load, SAVEPOINT, notifications + finish, RELEASE, COMMIT
    # (issue 23: was 9). SQLite cannot UPDATE inside WITH: claim, load, and
    # the finish on its own.
    assert counts[1] == (6 if connection.vendor == "postgresql" else 8), counts


@pytest.mark.parametrize("admins", [0, 1, 50])
def test_every_active_admin_gets_one_notice_in_the_same_statements(make_user, make_row, admins):
    add_admins(admins)
    add_admins(2, start=1000, is_active=False)  # retired: nothing
    make_user("customer@example.com")  # not staff: nothing
    user = make_user(is_staff=True)  # a new staff account: the welcome only
    row = make_row(kind=ANNOUNCE_NEW_USER, user=user)

    with CaptureQueriesContext(connection) as queries:
        notifications_deliver(outbox_id=row.pk)

    # Inside the test's transaction: the job's BEGIN/COMMIT are a SAVEPOINT/RELEASE.
    words = [q["sql"].split()[0] for q in queries.captured_queries]
    if connection.vendor == "postgresql":  # claim + load; notifications + finish
        assert words == ["SAVEPOINT", "WITH", "SAVEPOINT", "WITH", "RELEASE", "RELEASE"], words
    else:
        assert len(words) == 8, words
    active = User.objects.filter(is_staff=True, is_active=True).exclude(pk=user.pk)
    assert active.count() == admins
    notices = Notification.objects.filter(kind="new_user")
    assert sorted(notices.values_list("user_id", flat=True)) == sorted(
        active.values_list("pk", flat=True)
    )
    assert {(n.title, n.body, n.dedupe_key, n.read_at) for n in notices} <= {
        ("New signup", f"{user.email} signed up.", f"new_user:{user.pk}", None)
    }
    welcome = Notification.objects.get(user=user)
    assert (welcome.kind, welcome.dedupe_key) == ("welcome", f"new_user:{user.pk}")
    assert {n.created_at for n in Notification.objects.all()} == {welcome.created_at}

    # A redelivery after a worker died before its commit was recorded: nothing twice.
    Outbox.objects.filter(pk=row.pk).update(state=Outbox.State.PENDING)
    notifications_deliver(outbox_id=row.pk)
    assert Notification.objects.count() == admins + 1
    assert Outbox.objects.get(pk=row.pk).state == Outbox.State.SENT
