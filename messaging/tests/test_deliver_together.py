"""One job per signup (issue 23): the verification email and the announcement
travel in one message; each row is still claimed and finished on its own,
and a failure of one never repeats the other. Real PostgreSQL and SMTP."""

import smtplib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.sqlshape import sql_shape
from messaging import services
from messaging.models import Notification, Outbox
from messaging.services import outbox_deliver
from signup.messages import ANNOUNCE_NEW_USER, VERIFICATION_EMAIL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signup_rows(make_user):
    """The two rows a signup writes, for one new user."""
    user = make_user()
    return [
        Outbox.objects.create(kind=VERIFICATION_EMAIL, user=user),
        Outbox.objects.create(kind=ANNOUNCE_NEW_USER, user=user),
    ]


class Transactions:
    """Counts what PostgreSQL commits: each outermost commit, and each
    statement run outside a transaction (autocommit: one commit each)."""

    def __init__(self, monkeypatch):
        self.count = 0
        commit = connection.commit

        def counted_commit():
            self.count += 1
            commit()

        monkeypatch.setattr(connection, "commit", counted_commit)

    def __call__(self, execute, sql, params, many, context):
        if not connection.in_atomic_block:
            self.count += 1
        return execute(sql, params, many, context)


def ids(rows):
    return [row.pk for row in rows]


def states(rows):
    return [Outbox.objects.get(pk=row.pk).state for row in rows]


def test_one_job_sends_the_email_and_writes_the_announcement_in_two_commits(
    mail_sink, signup_rows, monkeypatch
):
    email = signup_rows[0]
    transactions = Transactions(monkeypatch)

    with connection.execute_wrapper(transactions):
        outbox_deliver(outbox_ids=ids(signup_rows))

    assert len(mail_sink.handler.to(email.user.email)) == 1
    assert Notification.objects.filter(dedupe_key=f"new_user:{email.user_id}").exists()
    assert states(signup_rows) == [Outbox.State.SENT, Outbox.State.SENT]
    # The claim with the code and the notifications, then the email's "sent".
    assert transactions.count == 2


# The job on PostgreSQL (issue 23: 14 statements before): each shape's start,
# and what else it must hold. SQLite cannot UPDATE inside WITH: 14 there.
SIGNUP_JOB = [
    ("BEGIN", ()),
    (  # claim + load the rows with their users
        'WITH "claimed" AS ( UPDATE "messaging_outbox" SET "state" = ?',
        ('RETURNING "messaging_outbox"."id"', 'FROM "claimed" INNER JOIN "signup_user"'),
    ),
    ('SAVEPOINT "s?"', ()),
    (  # the verification code: the older ones die, the new one is written
        'WITH "killed" AS ( UPDATE "signup_verificationcode" SET "used_at" = ?',
        ('INSERT INTO "signup_verificationcode"',),
    ),
    ('RELEASE SAVEPOINT "s?"', ()),
    ('SAVEPOINT "s?"', ()),
    (  # the announcement's row finished, the welcome and every admin's notice
        'WITH "finished" AS ( UPDATE "messaging_outbox" SET "state" = ?',
        (
            'INSERT INTO "messaging_notification"',
            "UNION ALL",
            'FROM "signup_user" WHERE',
            "ON CONFLICT DO NOTHING",
        ),
    ),
    ('RELEASE SAVEPOINT "s?"', ()),
    ("COMMIT", ()),
    ('UPDATE "messaging_outbox" SET "state" = ?', ()),  # the email sent
]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the CTEs are PostgreSQL's")
@pytest.mark.parametrize("admins", [0, 3])
def test_the_signup_job_is_ten_statements(mail_sink, signup_rows, make_user, admins):
    for n in range(admins):
        make_user(f"admin{n}@payshift.test", is_staff=True)

    with CaptureQueriesContext(connection) as captured:
        outbox_deliver(outbox_ids=ids(signup_rows))

    shapes = [sql_shape(q["sql"]) for q in captured.captured_queries]
    assert len(shapes) == len(SIGNUP_JOB) == 10, "\n".join(shapes)
    for shape, (start, parts) in zip(shapes, SIGNUP_JOB, strict=True):
        assert shape.startswith(start), shape
        assert all(part in shape for part in parts), (shape, parts)
    assert states(signup_rows) == [Outbox.State.SENT, Outbox.State.SENT]
    assert Notification.objects.count() == admins + 1


def test_an_smtp_failure_retries_the_email_alone(mail_sink, signup_rows):
    email = signup_rows[0]
    mail_sink.handler.fail_with = "451 4.3.0 try again later"

    with pytest.raises(smtplib.SMTPDataError):
        outbox_deliver(outbox_ids=ids(signup_rows))

    assert states(signup_rows) == [Outbox.State.PENDING, Outbox.State.SENT]
    written = Notification.objects.count()
    assert written > 0

    mail_sink.handler.fail_with = None
    outbox_deliver(outbox_ids=ids(signup_rows))  # the retry carries both ids

    assert states(signup_rows) == [Outbox.State.SENT, Outbox.State.SENT]
    assert Notification.objects.count() == written
    assert [Outbox.objects.get(pk=row.pk).attempts for row in signup_rows] == [2, 1]
    assert len(mail_sink.handler.to(email.user.email)) == 1


def test_a_failing_announcement_does_not_hold_back_the_email(mail_sink, signup_rows, monkeypatch):
    email, announce = signup_rows

    def broken(row):
        raise RuntimeError("announcement handler failed")

    monkeypatch.setattr(services, "_notify", broken)
    with pytest.raises(RuntimeError, match="announcement"):
        outbox_deliver(outbox_ids=ids(signup_rows))

    assert len(mail_sink.handler.to(email.user.email)) == 1
    assert states(signup_rows) == [Outbox.State.SENT, Outbox.State.PENDING]
    assert "announcement handler failed" in Outbox.objects.get(pk=announce.pk).last_error

    monkeypatch.undo()
    outbox_deliver(outbox_ids=ids(signup_rows))
    assert states(signup_rows) == [Outbox.State.SENT, Outbox.State.SENT]
    assert len(mail_sink.handler.to(email.user.email)) == 1


def test_a_failing_announcement_rolls_back_its_own_writes_only(mail_sink, signup_rows, monkeypatch):
    """The handler wrote some notifications, then failed: none of them stays,
    the email's code does (its savepoint and the claim commit)."""
    real = services._notify

    def half(row):
        real(row)
        raise RuntimeError("after the insert")

    monkeypatch.setattr(services, "_notify", half)
    with pytest.raises(RuntimeError):
        outbox_deliver(outbox_ids=ids(signup_rows))

    assert Notification.objects.count() == 0
    assert states(signup_rows) == [Outbox.State.SENT, Outbox.State.PENDING]


def test_the_last_attempt_fails_only_the_failing_row(mail_sink, signup_rows):
    mail_sink.handler.fail_with = "451 4.3.0 try again later"

    with pytest.raises(smtplib.SMTPDataError):
        outbox_deliver(outbox_ids=ids(signup_rows), final_attempt=True)

    assert states(signup_rows) == [Outbox.State.FAILED, Outbox.State.SENT]
