"""Idempotency-Key on POST /api/v1/signup (docs/api.md): retries are safe."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from messaging.models import Outbox
from signup.models import IdempotencyKey, User
from signup.services import VERIFICATION_EMAIL
from signup.tests.conftest import PASSWORD, SIGNUP, row_counts
from signup.tests.test_race import run_together

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
    assert first.content == second.content
    assert first.json() == {"status": "verification_pending", "email": "Ada@example.com"}
    assert row_counts() == counts  # no second code request, no second email row
    assert IdempotencyKey.objects.count() == 1


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
    responses = run_together(8, lambda i: post(Client()))

    assert [r.status_code for r in responses] == [202] * 8
    assert len({r.content for r in responses}) == 1
    assert User.objects.count() == 1
    assert Outbox.objects.filter(kind=VERIFICATION_EMAIL).count() == 1
    assert IdempotencyKey.objects.count() == 1
