"""What a signup costs, piece by piece: reported, not gated.

hash + transaction + enqueue, set beside the full request, shows where the
time goes (the rest is Django, ninja and validation).
"""

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection

from benchmarks.data import PASSWORD, fresh_email
from benchmarks.gate import QueryCounter, gate
from messaging import tasks
from signup.flows import signup as signup_flow
from signup.flows.verification import verification_token_new
from signup.models import User

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.benchmark(group="signup pieces"),
]


def test_password_hash(benchmark, rows):
    """Argon2id at the production parameters (signup.hashers)."""
    result = benchmark.pedantic(make_password, args=(PASSWORD,), rounds=100, warmup_rounds=3)
    assert result.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    gate(benchmark, rows, queries="0")


def test_signup_transaction(benchmark, rows, password_hash, monkeypatch, broker_queue_size):
    """user_signup's database work and commit: hash precomputed, enqueue left out."""
    monkeypatch.setattr(signup_flow, "make_password", lambda password: password_hash)
    monkeypatch.setattr("messaging.outbox.outbox_enqueue_committed", lambda rows: [])
    counter = QueryCounter()

    def setup():
        return (), {
            "email": fresh_email(),
            "password": PASSWORD,
            "full_name": "Bench User",
            "verification_token": verification_token_new(),
        }

    with connection.execute_wrapper(counter):
        benchmark.pedantic(
            counter.wrap(signup_flow.user_signup), setup=setup, rounds=300, warmup_rounds=10
        )

    assert User.objects.count() == len(counter.per_call)
    assert broker_queue_size("email") == 0
    gate(benchmark, rows, queries=counter.label)


def test_enqueue(benchmark, rows, broker_queue_size):
    """One actor.send to the configured Redis broker (the on-commit step, per message)."""
    sent: list[str] = []

    def send():
        sent.append(tasks.send_email.send(1).message_id)

    benchmark.pedantic(send, rounds=300, warmup_rounds=10)

    assert broker_queue_size("email") == len(sent)
    gate(benchmark, rows, queries="0")
