"""Concurrent requests for one address, through the whole stack on real PostgreSQL.

Each thread has its own django.test.Client and therefore its own database
connection; the tests commit for real (transaction=True).
"""

import threading
import time

import pytest
from django.test import Client

import signup.flows.signup
from messaging.models import Outbox
from signup.messages import ANNOUNCE_NEW_USER, VERIFICATION_EMAIL
from signup.models import AddressLimit, Profile, User, Wallet
from signup.tests.accounts_helpers import together
from signup.tests.conftest import PASSWORD, RESEND, SIGNUP, make_user, run_queued_resends

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10


@pytest.fixture
def in_step(monkeypatch):
    """Hold every signup after its password hash until all have hashed, then
    widen the winner's transaction: all inserts meet an uncommitted row."""
    after_hash = threading.Barrier(THREADS)
    real_make_password = signup.flows.signup.make_password
    real_outbox_add = signup.flows.signup.outbox_add_on_commit
    overlap = {"inside": 0, "max": 0}
    lock = threading.Lock()

    def make_password(password):
        hashed = real_make_password(password)
        after_hash.wait(timeout=10)
        return hashed

    def outbox_add_on_commit(**kwargs):
        with lock:
            overlap["inside"] += 1
            overlap["max"] = max(overlap["max"], overlap["inside"])
        time.sleep(0.2)
        with lock:
            overlap["inside"] -= 1
        return real_outbox_add(**kwargs)

    monkeypatch.setattr(signup.flows.signup, "make_password", make_password)
    monkeypatch.setattr(signup.flows.signup, "outbox_add_on_commit", outbox_add_on_commit)
    return overlap


def _concurrent_signups(monkeypatch, settings) -> tuple[list, list]:
    settings.RATE_LIMIT_PER_IP = "100/m"  # the whole stack, per-IP limit included
    existing_calls = []
    real_existing = signup.flows.signup._signup_existing

    def spy_existing(**kwargs):
        existing_calls.append(kwargs["email"])
        return real_existing(**kwargs)

    monkeypatch.setattr(signup.flows.signup, "_signup_existing", spy_existing)
    responses = together(
        THREADS,
        lambda i: Client(raise_request_exception=False).post(
            SIGNUP,
            # Mixed case: the race is on the case-insensitive identity.
            {"email": "Ada@example.com" if i % 2 else "ada@example.com", "password": PASSWORD},
            content_type="application/json",
        ),
    )
    assert [r.status_code for r in responses] == [202] * THREADS, [
        r.content for r in responses if r.status_code != 202
    ]
    assert {r.json()["status"] for r in responses} == {"verification_pending"}
    assert User.objects.count() == 1
    assert Profile.objects.count() == 1
    assert Wallet.objects.count() == 1
    assert AddressLimit.objects.count() == 1
    # One first code and one announcement: the losers hit the cooldown silently.
    assert sorted(Outbox.objects.values_list("kind", flat=True)) == sorted(
        [VERIFICATION_EMAIL, ANNOUNCE_NEW_USER]
    )
    return responses, existing_calls


def test_concurrent_signups_of_one_new_address_make_one_account(monkeypatch, settings):
    """As it comes: ten threads released at once."""
    _, existing_calls = _concurrent_signups(monkeypatch, settings)

    assert len(existing_calls) == THREADS - 1


def test_signups_that_meet_an_uncommitted_account_make_one_account(monkeypatch, settings, in_step):
    """Forced interleaving: every INSERT runs while the winner has not committed."""
    _, existing_calls = _concurrent_signups(monkeypatch, settings)

    # Every loser went through the taken-address path...
    assert len(existing_calls) == THREADS - 1
    # ...and only one signup ever got past its INSERT (the others waited on it).
    assert in_step["max"] == 1


def test_concurrent_resends_for_one_address_let_exactly_one_through(settings):
    settings.RATE_LIMIT_PER_IP = "100/m"
    user = make_user("ada@example.com")

    responses = together(
        THREADS,
        lambda i: Client(raise_request_exception=False).post(
            RESEND, {"email": "ada@example.com"}, content_type="application/json"
        ),
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [429] * (THREADS - 1)
    assert run_queued_resends() == 1
    assert list(Outbox.objects.filter(user=user).values_list("kind", flat=True)) == [
        VERIFICATION_EMAIL
    ]
    assert len(AddressLimit.objects.get().recent) == 1


def test_concurrent_resends_with_an_existing_limit_row_let_exactly_one_through(settings):
    """The row exists (the account signed up hours ago): only its lock serialises them."""
    settings.RATE_LIMIT_PER_IP = "100/m"
    user = make_user("ada@example.com")
    AddressLimit.objects.create(email="ada@example.com", recent=[time.time() - 7200])

    responses = together(
        THREADS,
        lambda i: Client(raise_request_exception=False).post(
            RESEND, {"email": "ada@example.com"}, content_type="application/json"
        ),
    )

    assert sorted(r.status_code for r in responses) == [202] + [429] * (THREADS - 1)
    assert run_queued_resends() == 1
    assert Outbox.objects.filter(user=user).count() == 1
    assert len(AddressLimit.objects.get().recent) == 1


def test_concurrent_resends_for_an_unknown_address_let_exactly_one_through(settings):
    """The limit row is created by the first; the others wait on its lock."""
    settings.RATE_LIMIT_PER_IP = "100/m"

    responses = together(
        THREADS,
        lambda i: Client(raise_request_exception=False).post(
            RESEND, {"email": "nobody@example.com"}, content_type="application/json"
        ),
    )

    assert sorted(r.status_code for r in responses) == [202] + [429] * (THREADS - 1)
    assert AddressLimit.objects.count() == 1
