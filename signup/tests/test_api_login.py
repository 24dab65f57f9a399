"""POST /auth/login: 200 token, one 400 for every wrong credential (equal work),
403 unverified, 429 past the per-address and per-IP failed-login limits."""

import pytest
from django.conf import settings

from core.breaker import cache_breaker
from core.tests.gunicorn_race import clear_of_window_edge
from signup.models import AccessToken, AddressCounter
from signup.tests.accounts_helpers import (
    CODE_VERIFY,
    EMAIL,
    INVALID_CREDENTIALS,
    LOGIN,
    ME,
    NEW_PASSWORD,
    PASSWORD,
    RESET_CONFIRM,
    Purpose,
    bearer,
    code_for,
    verified_user,
)
from signup.tests.conftest import make_user
from signup.tokens import token_digest

pytestmark = pytest.mark.django_db


def login(api, email=EMAIL, password=PASSWORD, **extra):
    return api.post_json(LOGIN, {"email": email, "password": password}, **extra)


def test_right_password_gets_a_bearer_token_that_works(api):
    user = verified_user()

    response = login(api)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.ACCESS_TOKEN_TTL_SECONDS
    assert len(body["access_token"]) >= 43  # 32 random bytes, base64url
    assert api.get(ME, **bearer(body["access_token"])).json()["id"] == user.pk


def test_only_the_tokens_sha256_is_stored(api):
    verified_user()

    raw = login(api).json()["access_token"]

    (token,) = AccessToken.objects.all()
    assert token.key_hash == token_digest(raw)
    assert raw not in str(list(AccessToken.objects.values()))


def test_address_is_matched_by_its_canonical_form(api):
    verified_user("Ada@Example.com")

    assert login(api, email="ADA@EXAMPLE.COM").status_code == 200


@pytest.mark.parametrize(
    "case", ["unknown address", "wrong password", "deactivated", "deactivated, wrong password"]
)
def test_one_400_for_every_wrong_credential(api, case):
    if case != "unknown address":
        verified_user(is_active="deactivated" not in case)
    password = "wrong password 123" if "wrong" in case else PASSWORD
    email = "nobody@example.com" if case == "unknown address" else EMAIL

    response = login(api, email=email, password=password)

    assert response.status_code == 400
    assert response.json() == INVALID_CREDENTIALS
    assert not AccessToken.objects.exists()


def test_unknown_address_hashes_like_a_known_one(api, hasher_spy):
    """Equal work: the unknown address costs one Argon2id hash (ModelBackend)."""
    verified_user()
    hasher_spy.calls = 0

    login(api, email="nobody@example.com")

    assert hasher_spy.calls == 1


def test_right_password_on_an_unverified_account_is_403(api):
    make_user(EMAIL)

    response = login(api)

    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"
    assert "verify" in response.json()["detail"].lower()
    assert not AccessToken.objects.exists()


def test_wrong_password_on_an_unverified_account_is_the_same_400(api):
    make_user(EMAIL)

    assert login(api, password="not the password").json() == INVALID_CREDENTIALS


@pytest.mark.parametrize(
    "body", [{}, {"email": EMAIL}, {"email": "not-an-address", "password": "x"}]
)
def test_a_bad_body_is_422(api, body):
    response = api.post_json(LOGIN, body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_not_json_is_400(api):
    assert api.post_json(LOGIN, "{nope").status_code == 400


# --- failed-login limits ----------------------------------------------------------


def fail(api, times, email=EMAIL, **extra):
    return [login(api, email=email, password="wrong password!", **extra) for _ in range(times)]


@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
def test_per_address_limit_is_429_for_known_and_unknown_addresses_alike(api, known):
    if known:
        verified_user()
    limit = settings.LOGIN_FAILURES_PER_ADDRESS

    answers = fail(api, limit + 1)

    assert [r.status_code for r in answers] == [400] * limit + [429]
    assert answers[-1].json()["code"] == "rate_limited"
    assert 0 < int(answers[-1]["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    if known:  # the right password too, while limited
        assert login(api).status_code == 429


def test_per_address_limit_counts_every_spelling_of_the_address(api):
    limit = settings.LOGIN_FAILURES_PER_ADDRESS
    spellings = ["ada@example.com", "ADA@example.com", "Ada@EXAMPLE.com", "aDa@example.com"]
    for n in range(limit):
        fail(api, 1, email=spellings[n % len(spellings)])

    assert login(api, email="ADA@EXAMPLE.COM").status_code == 429
    assert AddressCounter.objects.count() == 1


def test_per_address_limit_leaves_other_addresses_alone(api):
    verified_user("grace@example.com")
    fail(api, settings.LOGIN_FAILURES_PER_ADDRESS)

    assert login(api, email="grace@example.com").status_code == 200


def test_the_window_passes_and_password_login_works_again(api):
    verified_user()
    fail(api, settings.LOGIN_FAILURES_PER_ADDRESS)
    from datetime import timedelta

    AddressCounter.objects.update(
        window_started_at=AddressCounter.objects.get().window_started_at
        - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    )

    assert login(api).status_code == 200


def test_a_right_login_clears_the_count(api):
    verified_user()
    fail(api, settings.LOGIN_FAILURES_PER_ADDRESS - 1)

    assert login(api).status_code == 200
    assert AddressCounter.objects.get().failures == 0  # this login's reservation too
    assert [r.status_code for r in fail(api, settings.LOGIN_FAILURES_PER_ADDRESS + 1)] == [
        400
    ] * settings.LOGIN_FAILURES_PER_ADDRESS + [429]


def test_owner_is_not_locked_out_a_login_code_still_works(api):
    user = verified_user()
    fail(api, settings.LOGIN_FAILURES_PER_ADDRESS)
    assert login(api).status_code == 429

    code = code_for(user, Purpose.LOGIN)
    response = api.post_json(CODE_VERIFY, {"email": EMAIL, "code": code})

    assert response.status_code == 200
    assert login(api).status_code == 200  # and the code login lifted the password limit


def test_owner_is_not_locked_out_a_reset_still_works(api):
    user = verified_user()
    fail(api, settings.LOGIN_FAILURES_PER_ADDRESS)

    code = code_for(user, Purpose.RESET)
    response = api.post_json(
        RESET_CONFIRM, {"email": EMAIL, "code": code, "password": NEW_PASSWORD}
    )

    assert response.status_code == 200
    assert login(api, password=NEW_PASSWORD).status_code == 200


def test_per_ip_limit_across_many_addresses(api, settings):
    settings.LOGIN_FAILURES_PER_IP = 3
    verified_user("grace@example.com")
    clear_of_window_edge(settings.LOGIN_FAILURE_WINDOW_SECONDS)  # a fixed window
    for n in range(3):
        fail(api, 1, email=f"user{n}@example.com", REMOTE_ADDR="198.51.100.7")

    limited = login(api, email="grace@example.com", REMOTE_ADDR="198.51.100.7")
    other_ip = login(api, email="grace@example.com", REMOTE_ADDR="198.51.100.8")

    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) > 0
    assert other_ip.status_code == 200


@pytest.mark.usefixtures("cache_down")
def test_per_ip_limit_fails_open_without_redis(api):
    """Redis down: the per-IP failure count is skipped, never a 500."""
    verified_user()

    assert login(api, password="wrong password!").status_code == 400
    assert login(api).status_code == 200
    assert cache_breaker.is_open  # the cache was really tried


def test_the_request_rate_limit_per_ip_applies_too(api, settings):
    settings.RATE_LIMIT_PER_IP = "2/m"
    verified_user()
    clear_of_window_edge(60)  # a fixed window
    answers = [login(api).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
