"""Idempotency-Key on POST /api/v1/signup (docs/api.md): retries are safe."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from messaging.models import Outbox
from signup import idempotency
from signup.messages import VERIFICATION_EMAIL
from signup.models import IdempotencyKey, PendingSignup, User
from signup.tests.accounts_helpers import together
from signup.tests.conftest import PASSWORD, SIGNUP, VERIFY, issue_code, row_counts, verify_body
from signup.tokens import token_digest

BODY = {"email": "Ada@Example.com", "password": PASSWORD, "full_name": "Ada Lovelace"}


@pytest.fixture(autouse=True)
def _no_address_limits(settings):
    """Without the cooldown, a retry without the key WOULD queue a second
    email (test_without_the_key_...): so these tests see the key at work."""
    settings.SIGNUP_CODE_COOLDOWN_SECONDS = 0
    settings.SIGNUP_CODES_PER_HOUR = 1000


def post(client, body=BODY, key="retry-1"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(SIGNUP, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_same_key_same_body_answers_the_same_and_does_nothing_more(api):
    first = post(api)
    counts = row_counts()
    second = post(api)

    assert first.status_code == second.status_code == 202
    assert first.content == second.content  # the same verification_token too
    body = first.json()
    token = body.pop("verification_token")
    assert body == {"status": "verification_pending", "email": "Ada@example.com"}
    assert row_counts() == counts  # no second code request, no second email row
    assert IdempotencyKey.objects.count() == 1
    # The token is kept nowhere in clear: the replay derives it again.
    record = IdempotencyKey.objects.values().get()
    assert token not in json.dumps(record, default=str)
    assert PendingSignup.objects.get().token_hash == token_digest(token)


@pytest.mark.django_db
def test_the_replayed_token_verifies_and_another_keys_token_differs(api):
    first = post(api).json()["verification_token"]
    replayed = post(api).json()["verification_token"]
    other = post(api, key="retry-2").json()["verification_token"]

    assert first == replayed != other
    user = User.objects.get()
    code = issue_code(user)
    response = api.post_json(VERIFY, verify_body("ada@example.com", code, replayed))
    assert response.status_code == 200


@pytest.mark.django_db
def test_without_the_key_a_retry_of_a_taken_address_queues_again(api):
    """The control: what the key prevents does happen without it."""
    post(api, key=None)
    post(api, key=None)

    assert Outbox.objects.filter(kind=VERIFICATION_EMAIL).count() == 2


@pytest.mark.django_db
def test_same_key_with_another_body_is_422(api):
    post(api)
    response = post(api, {**BODY, "full_name": "Someone Else"})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    (error,) = response.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert "different request body" in error["msg"]
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tkey", "caf\u00e9"])
def test_a_malformed_key_is_422_and_writes_nothing(api, key):
    counts = row_counts()
    response = post(api, key=key)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert row_counts() == counts


@pytest.mark.django_db
def test_a_key_older_than_24_hours_no_longer_replays(api):
    post(api)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))

    response = post(api, {**BODY, "full_name": "Someone Else"})

    assert response.status_code == 202
    assert IdempotencyKey.objects.get().created_at > timezone.now() - timedelta(minutes=1)


@pytest.mark.django_db
def test_the_key_is_in_the_database_so_a_retry_is_safe_while_redis_is_down(api, settings):
    settings.RATE_LIMIT_PER_IP = "20/m"  # the cache is in use, and unreachable
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    first = post(api)
    second = post(api)

    assert first.content == second.content
    assert Outbox.objects.filter(kind=VERIFICATION_EMAIL).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_make_one_account_and_one_email():
    responses = together(8, lambda i: post(Client()))

    assert [r.status_code for r in responses] == [202] * 8
    assert len({r.content for r in responses}) == 1
    assert User.objects.count() == 1
    assert Outbox.objects.filter(kind=VERIFICATION_EMAIL).count() == 1
    assert IdempotencyKey.objects.count() == 1


# --- issue 8, point 7: scope, password oracle, no fast hash at rest -----------


@pytest.mark.django_db
def test_same_key_with_another_password_is_422_and_the_first_password_stays(api):
    """A fingerprint that left the password out replayed 202 here: the client
    believed it set the second password while the account kept the first."""
    post(api)
    response = post(api, {**BODY, "password": "another horse battery staple"})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    user = User.objects.get()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_concurrent_retry_path_checks_the_body_too(api, monkeypatch):
    """A retry that finds no record, then loses the race on the unique index,
    answers from the winner's record only if its body (password included)
    is the same: it used to replay the first answer for any body."""
    post(api)
    real_lookup = idempotency.idempotency_lookup
    calls = []

    def lookup_before_the_winner_committed(**kwargs):
        calls.append(kwargs)
        return None if len(calls) % 2 == 1 else real_lookup(**kwargs)

    monkeypatch.setattr(idempotency, "idempotency_lookup", lookup_before_the_winner_committed)

    other = post(api, {**BODY, "password": "another horse battery staple"})
    same = post(api)

    assert len(calls) == 4  # each request: the first lookup, then the one after the race
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert same.status_code == 202
    assert User.objects.get().check_password(PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_different_passwords_replay_only_the_same_body():
    bodies = [BODY, {**BODY, "password": "another horse battery staple"}]
    responses = together(8, lambda i: post(Client(), bodies[i % 2]))

    by_body = {0: set(), 1: set()}
    for i, response in enumerate(responses):
        by_body[i % 2].add(response.status_code)
    assert sorted([by_body[0], by_body[1]], key=sorted) == [{202}, {422}]
    winner = 0 if by_body[0] == {202} else 1
    assert User.objects.get().check_password(bodies[winner]["password"])


@pytest.mark.django_db
def test_a_key_is_scoped_to_its_address(api):
    """Another client using the same key (for another address) neither
    replays the first answer nor is told that the key exists."""
    post(api)
    other = post(api, {**BODY, "email": "bob@example.com"})

    assert other.status_code == 202
    assert other.json()["email"] == "bob@example.com"
    assert User.objects.count() == 2
    assert IdempotencyKey.objects.count() == 2


@pytest.mark.django_db
def test_the_answer_to_a_retry_costs_a_slow_hash_whatever_the_body(api, monkeypatch):
    """No cheap "different body" answer that would test a password guess."""
    post(api)
    checks = []
    real_check = idempotency.check_password
    monkeypatch.setattr(
        idempotency, "check_password", lambda *a, **k: checks.append(1) or real_check(*a, **k)
    )

    post(api)  # the same body
    post(api, {**BODY, "password": "another horse battery staple"})
    post(api, {**BODY, "full_name": "Someone Else"})

    assert len(checks) == 3


@pytest.mark.django_db
def test_no_fast_hash_of_the_password_is_stored(api):
    post(api)
    record = IdempotencyKey.objects.get()

    assert record.password_hash.startswith("argon2$argon2id$")
    assert record.password_hash == User.objects.get().password  # the signup's own hash
    # The fingerprint does not depend on the password at all.
    fingerprint = idempotency.request_fingerprint
    payload = {"email": "Ada@example.com", "full_name": "Ada Lovelace"}
    assert record.fingerprint == fingerprint({**payload, "password": PASSWORD})
    assert record.fingerprint == fingerprint({**payload, "password": "x"})
    assert PASSWORD not in json.dumps(record.response)
