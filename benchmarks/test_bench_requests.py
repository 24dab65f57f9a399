"""The gated latencies: signup, verify and resend through the whole Django stack.

django.test.Client -> middleware -> ninja -> service -> PostgreSQL -> on-commit
enqueue into the real Redis broker. transaction=True so that on_commit runs
(inside a test-wrapping transaction it never would) and the enqueue is timed.
"""

import pytest
from django.db import connection

from benchmarks.data import PASSWORD, fresh_email, unverified_user, verify_request
from benchmarks.gate import P95_BUDGET_MS, QueryCounter, gate
from messaging.models import Outbox
from signup.models import User

WARMUP = 10
ROUNDS = 300

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.benchmark(group="requests (gated)"),
]


def run(benchmark, send, setup):
    """Time send(**setup()) for ROUNDS rounds; return (status codes, query counter)."""
    statuses: list[int] = []
    counter = QueryCounter()

    def timed(**kwargs):
        statuses.append(send(**kwargs).status_code)

    with connection.execute_wrapper(counter):
        benchmark.pedantic(
            counter.wrap(timed), setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1
        )
    return statuses, counter


def test_signup(benchmark, api, rows, broker_queue_size):
    def setup():
        body = {"email": fresh_email(), "password": PASSWORD, "full_name": "Bench User"}
        return (), {"data": body}

    statuses, counter = run(benchmark, lambda data: api.post_json("/api/v1/signup", data), setup)

    assert set(statuses) == {202}
    calls = len(statuses)
    assert User.objects.count() == calls
    assert User.objects.first().password.startswith("argon2$argon2id$")
    # The enqueue really happened, after commit: one message per signup, its
    # email and its announcement together (issue 23).
    assert broker_queue_size("email") == calls
    assert broker_queue_size("notifications") == 0
    assert not Outbox.objects.filter(enqueued_at__isnull=True).exists()
    gate(benchmark, rows, queries=counter.label, p95_budget_ms=P95_BUDGET_MS)


def test_verify(benchmark, api, rows, password_hash):
    def setup():
        return (), {"data": verify_request(password_hash=password_hash)}

    statuses, counter = run(
        benchmark, lambda data: api.post_json("/api/v1/signup/verify", data), setup
    )

    assert set(statuses) == {200}
    assert User.objects.filter(email_verified_at__isnull=False).count() == len(statuses)
    gate(benchmark, rows, queries=counter.label, p95_budget_ms=P95_BUDGET_MS)


def test_resend(benchmark, api, rows, password_hash, broker_queue_size):
    """A fresh unverified account each round: no cooldown 429, and a real enqueue
    (signup.tasks.resend_code: the worker writes the outbox row, issue 8)."""

    def setup():
        user = unverified_user(password_hash=password_hash)
        return (), {"data": {"email": user.email}}

    statuses, counter = run(
        benchmark, lambda data: api.post_json("/api/v1/signup/resend", data), setup
    )

    assert set(statuses) == {202}
    assert broker_queue_size("signup") == len(statuses)
    assert not Outbox.objects.exists()  # written by the worker, not the request
    gate(benchmark, rows, queries=counter.label, p95_budget_ms=P95_BUDGET_MS)
