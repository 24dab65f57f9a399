"""The worker side, called as the actors call it: reported, with query counts.

The announcement's query count must not grow with the number of admins (it
writes all their notifications in bulk); that is asserted, not just reported.
"""

import pytest
from django.db import connection

from benchmarks.data import population, unverified_user
from benchmarks.gate import QueryCounter, gate
from messaging.models import Notification, Outbox
from messaging.services import email_deliver, notifications_deliver
from signup.messages import ANNOUNCE_NEW_USER, VERIFICATION_EMAIL

# Statements through Django's cursor (BEGIN/COMMIT not counted), PostgreSQL.
# One transaction (issue 23): claim + load row and user (one WITH ... UPDATE
# RETURNING ... SELECT JOIN), the row's savepoint, the notifications (welcome
# and every admin's, INSERT ... SELECT) with the row's finish in one WITH,
# release. Was 7: the load, the admin ids and the finish were statements.
ANNOUNCE_QUERIES = 4
# One transaction: claim + load, the row's savepoint, the code (kill the old
# ones and INSERT: one WITH), release; then, after the SMTP send, mark sent.
# Was 7: the load and the code's second statement were statements.
EMAIL_QUERIES = 5

pytestmark = pytest.mark.django_db(transaction=True)


def outbox_row_setup(kind: str, password_hash: str):
    """A committed outbox row for a new user, as signup leaves it for the worker."""

    def setup():
        user = unverified_user(password_hash=password_hash)
        return (), {"outbox_id": Outbox.objects.create(kind=kind, user=user).pk}

    return setup


@pytest.mark.benchmark(group="worker: announce new user")
@pytest.mark.parametrize(
    ("admins", "rounds"),
    [
        pytest.param(1, 100, id="1-admin"),
        pytest.param(100, 100, id="100-admins"),
        pytest.param(10_000, 10, id="10000-admins"),
    ],
)
def test_notifications_deliver(benchmark, rows, password_hash, admins, rounds):
    population(users=0, admins=admins, password_hash=password_hash)
    counter = QueryCounter()

    with connection.execute_wrapper(counter):
        benchmark.pedantic(
            counter.wrap(notifications_deliver),
            setup=outbox_row_setup(ANNOUNCE_NEW_USER, password_hash),
            rounds=rounds,
            warmup_rounds=1,
        )

    gate(benchmark, rows, queries=counter.label)  # report the figures even if the count grew
    calls = len(counter.per_call)
    assert Outbox.objects.filter(state=Outbox.State.SENT).count() == calls
    assert Notification.objects.filter(kind="new_user").count() == admins * calls
    assert set(counter.per_call) == {ANNOUNCE_QUERIES}, (
        f"announce ran {counter.label} queries with {admins} admins; "
        f"expected {ANNOUNCE_QUERIES} whatever the number of admins"
    )


@pytest.mark.benchmark(group="worker: email")
def test_email_deliver(benchmark, rows, password_hash, mail_sink, settings):
    """Build the verification email (issuing its code) and send it to a real SMTP sink."""
    # pytest-django's test environment swaps in the locmem backend; send for real.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    counter = QueryCounter()

    with connection.execute_wrapper(counter):
        benchmark.pedantic(
            counter.wrap(email_deliver),
            setup=outbox_row_setup(VERIFICATION_EMAIL, password_hash),
            rounds=100,
            warmup_rounds=5,
        )

    calls = len(counter.per_call)
    assert Outbox.objects.filter(state=Outbox.State.SENT).count() == calls
    assert len(mail_sink.handler.messages) == calls
    assert all(message["code"] for message in mail_sink.handler.messages)
    assert set(counter.per_call) == {EMAIL_QUERIES}, counter.label
    gate(benchmark, rows, queries=counter.label)
