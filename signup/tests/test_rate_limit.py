"""The per-IP limit (RATE_LIMIT_PER_IP, TRUSTED_PROXY_COUNT) on the three POST endpoints.

The settings are read on every request, so the pytest-django settings fixture
changes them; Redis (the cache) is flushed before each test by /conftest.py.
"""

import json

import pytest

from core.breaker import cache_breaker
from core.tests.gunicorn_race import clear_of_window_edge
from signup.models import User
from signup.tests.conftest import PASSWORD, RESEND, SIGNUP, VERIFY, is_plain_detail, make_user

pytestmark = pytest.mark.django_db

BODIES = {
    SIGNUP: {"email": "ada@example.com", "password": PASSWORD},
    VERIFY: {"email": "ada@example.com", "code": "000000", "verification_token": "t"},
    RESEND: {"email": "ada@example.com"},
}
OK = {SIGNUP: 202, VERIFY: 400, RESEND: 202}


@pytest.fixture(autouse=True)
def _one_window():
    """The limit counts in fixed windows (core.throttles), a minute here: a
    test's requests must not straddle a window's end."""
    clear_of_window_edge(60, margin=3)


def post(api, path, body=None, ip=None, forwarded=None):
    extra = {}
    if ip:
        extra["REMOTE_ADDR"] = ip
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return api.post_json(path, BODIES[path] if body is None else body, **extra)


def resend_to(n):
    """Different addresses each time, so the per-address limit never interferes."""
    return {"email": f"user{n}@example.com"}


def assert_ip_limited(response):
    assert response.status_code == 429, response.content
    assert is_plain_detail(response)
    assert response.json()["detail"].startswith("Too many requests from your network.")
    retry_after = response["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60


@pytest.mark.parametrize("path", [SIGNUP, VERIFY, RESEND])
def test_fourth_request_in_a_minute_is_429_with_retry_after(api, settings, path):
    settings.RATE_LIMIT_PER_IP = "3/m"
    bodies = [resend_to(n) if path == RESEND else None for n in range(4)]

    first_three = [post(api, path, bodies[n]) for n in range(3)]
    fourth = post(api, path, bodies[3])

    assert [r.status_code for r in first_three] == [OK[path]] * 3
    assert_ip_limited(fourth)


def test_a_limited_signup_writes_nothing(api, settings):
    settings.RATE_LIMIT_PER_IP = "1/m"
    post(api, SIGNUP)

    response = post(api, SIGNUP, {"email": "bob@example.com", "password": PASSWORD})

    assert response.status_code == 429
    assert list(User.objects.values_list("email", flat=True)) == ["ada@example.com"]


def test_limit_is_counted_per_endpoint(api, settings):
    settings.RATE_LIMIT_PER_IP = "2/m"
    post(api, SIGNUP)
    post(api, SIGNUP, {"email": "bob@example.com", "password": PASSWORD})
    assert post(api, SIGNUP, {"email": "cy@example.com", "password": PASSWORD}).status_code == 429

    assert post(api, VERIFY).status_code == 400
    assert post(api, RESEND, resend_to(1)).status_code == 202


def test_limit_is_per_client_ip(api, settings):
    settings.RATE_LIMIT_PER_IP = "1/m"

    assert post(api, RESEND, resend_to(1), ip="10.0.0.1").status_code == 202
    assert post(api, RESEND, resend_to(2), ip="10.0.0.1").status_code == 429
    assert post(api, RESEND, resend_to(3), ip="10.0.0.2").status_code == 202


def test_limit_counts_bad_requests_too(api, settings):
    """Checked before the body is parsed: junk cannot be sent faster than signups."""
    settings.RATE_LIMIT_PER_IP = "2/m"
    api.post(SIGNUP, b"{bad", content_type="application/json")
    api.post_json(SIGNUP, {"email": "nope"})

    assert_ip_limited(post(api, SIGNUP))


@pytest.mark.parametrize("rate", ["off", "OFF", " off "])
def test_off_disables_the_limit(api, settings, rate):
    settings.RATE_LIMIT_PER_IP = rate

    statuses = {post(api, RESEND, resend_to(n)).status_code for n in range(25)}

    assert statuses == {202}


def test_rate_change_takes_effect_without_a_restart(api, settings):
    settings.RATE_LIMIT_PER_IP = "5/m"
    for n in range(3):
        assert post(api, RESEND, resend_to(n)).status_code == 202

    settings.RATE_LIMIT_PER_IP = "3/m"
    assert_ip_limited(post(api, RESEND, resend_to(3)))

    settings.RATE_LIMIT_PER_IP = "off"
    assert post(api, RESEND, resend_to(4)).status_code == 202


def test_lowered_rate_still_answers_retry_after(api, settings):
    settings.RATE_LIMIT_PER_IP = "5/m"
    for n in range(5):
        post(api, RESEND, resend_to(n))

    settings.RATE_LIMIT_PER_IP = "3/m"
    response = post(api, RESEND, resend_to(5))

    assert response.status_code == 429
    assert "Retry-After" in response


def test_limit_is_the_same_for_new_and_taken_addresses(api, settings):
    """A 429 cannot tell an outsider whether the address has an account."""
    make_user("unv01@example.com")
    make_user("ver01@example.com", verified=True)
    settings.RATE_LIMIT_PER_IP = "3/m"
    emails = ["new01@example.com", "unv01@example.com", "ver01@example.com"]
    for email in emails:
        assert post(api, SIGNUP, {"email": email, "password": PASSWORD}).status_code == 202

    limited = [post(api, SIGNUP, {"email": email, "password": PASSWORD}) for email in emails]

    for response in limited:
        assert_ip_limited(response)
    assert len({(r.content, r["Retry-After"]) for r in limited}) == 1


# --- TRUSTED_PROXY_COUNT -------------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(api, settings):
    """Else a client could pick a fresh X-Forwarded-For for every request."""
    settings.RATE_LIMIT_PER_IP = "1/m"
    settings.TRUSTED_PROXY_COUNT = 0

    assert post(api, RESEND, resend_to(1), forwarded="203.0.113.1").status_code == 202
    assert post(api, RESEND, resend_to(2), forwarded="203.0.113.2").status_code == 429


def test_one_trusted_proxy_uses_the_address_it_appended(api, settings):
    settings.RATE_LIMIT_PER_IP = "1/m"
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.9"

    assert post(api, RESEND, resend_to(1), ip=proxy, forwarded="203.0.113.1").status_code == 202
    # A second client behind the same proxy has its own budget...
    assert post(api, RESEND, resend_to(2), ip=proxy, forwarded="203.0.113.2").status_code == 202
    # ...and the first cannot escape its own by prepending a forged hop.
    forged = post(api, RESEND, resend_to(3), ip=proxy, forwarded="198.51.100.7, 203.0.113.1")
    assert_ip_limited(forged)


def test_two_trusted_proxies_count_from_the_right(api, settings):
    settings.RATE_LIMIT_PER_IP = "1/m"
    settings.TRUSTED_PROXY_COUNT = 2

    ok = post(api, RESEND, resend_to(1), forwarded="198.51.100.1, 203.0.113.1, 10.0.0.1")
    same_client = post(api, RESEND, resend_to(2), forwarded="forged, 203.0.113.1, 10.0.0.2")
    other = post(api, RESEND, resend_to(3), forwarded="198.51.100.1, 203.0.113.2, 10.0.0.1")

    assert ok.status_code == 202
    assert_ip_limited(same_client)
    assert other.status_code == 202


def test_trusted_proxy_without_forwarded_for_falls_back_to_remote_addr(api, settings):
    settings.RATE_LIMIT_PER_IP = "1/m"
    settings.TRUSTED_PROXY_COUNT = 1

    assert post(api, RESEND, resend_to(1), ip="10.0.0.1").status_code == 202
    assert post(api, RESEND, resend_to(2), ip="10.0.0.1").status_code == 429
    assert post(api, RESEND, resend_to(3), ip="10.0.0.2").status_code == 202


# --- Redis down: fail open ------------------------------------------------------


@pytest.mark.usefixtures("cache_down")
@pytest.mark.parametrize("path", [SIGNUP, VERIFY, RESEND])
def test_limit_fails_open_when_the_cache_is_unreachable(api, settings, path):
    settings.RATE_LIMIT_PER_IP = "1/m"
    bodies = [resend_to(n) if path == RESEND else None for n in range(3)]

    responses = [post(api, path, bodies[n]) for n in range(3)]

    assert [r.status_code for r in responses] == [OK[path]] * 3
    # The cache was really tried (and the breaker now skips it), so the
    # 2nd and 3rd answers were not just a working limiter being generous.
    assert cache_breaker.is_open


@pytest.mark.usefixtures("cache_down")
def test_signup_with_the_cache_down_creates_the_account(api, settings):
    settings.RATE_LIMIT_PER_IP = "20/m"

    response = post(api, SIGNUP)

    assert response.status_code == 202
    body = json.loads(response.content)
    assert body.pop("verification_token")
    assert body == {"status": "verification_pending", "email": "ada@example.com"}
    assert User.objects.filter(email="ada@example.com").exists()
