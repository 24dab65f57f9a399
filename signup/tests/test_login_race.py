"""Failed-login limits hold under concurrency: an attempt is counted (reserved)
atomically before the password is hashed, per address in one database
statement, per IP in one Redis counter; a right password gives it back."""

from collections import Counter

import pytest
from django.conf import settings

from core.tests.gunicorn_race import clear_of_window_edge, gunicorn, post_together
from signup import limits
from signup.models import AddressCounter
from signup.tests.accounts_helpers import EMAIL, LOGIN, PASSWORD, together, verified_user
from signup.tests.conftest import make_user

WRONG = "wrong password!"
PARALLEL = 40


# --- through gunicorn: processes and threads at once -----------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
def test_parallel_wrong_logins_check_the_password_at_most_the_limit(tmp_path, known):
    if known:
        verified_user()
    limit = settings.LOGIN_FAILURES_PER_ADDRESS
    # Spellings of one address: the count is per canonical address.
    bodies = [
        {"email": EMAIL.upper() if i % 2 else EMAIL, "password": WRONG} for i in range(PARALLEL)
    ]

    with gunicorn(tmp_path, RATE_LIMIT_PER_IP="off") as url:
        answers = post_together(f"{url}{LOGIN}", bodies)

    statuses = Counter(status for status, _, _ in answers)
    # Every 400 is a password check; the rest were refused before one.
    assert statuses == {400: limit, 429: PARALLEL - limit}
    assert AddressCounter.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_logins_from_one_ip_check_at_most_the_ip_limit(tmp_path):
    limit = settings.LOGIN_FAILURES_PER_IP
    parallel = limit + 20
    bodies = [{"email": f"user{i}@example.com", "password": WRONG} for i in range(parallel)]

    with gunicorn(tmp_path, RATE_LIMIT_PER_IP="off") as url:
        clear_of_window_edge(settings.LOGIN_FAILURE_WINDOW_SECONDS)
        answers = post_together(f"{url}{LOGIN}", bodies)

    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {400: limit, 429: parallel - limit}
    for status, headers, body in answers:
        if status == 429:
            assert body["detail"].startswith("Too many failed logins from your network.")
            assert 1 <= int(headers["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS


# --- the reservations themselves ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_address_reservations_in_threads_allow_exactly_the_limit():
    limit = settings.LOGIN_FAILURES_PER_ADDRESS

    spellings = ["ada@example.com", "ADA@example.com", "Ada@Example.COM"]

    holds = together(20, lambda i: limits.login_address_reserve(email=spellings[i % 3]))

    assert [hold.allowed for hold in holds].count(True) == limit
    assert all(hold.retry_after > 0 for hold in holds if not hold.allowed)
    assert AddressCounter.objects.count() == 1


@pytest.mark.django_db
def test_address_reservation_counts_and_refuses_past_the_limit():
    limit = settings.LOGIN_FAILURES_PER_ADDRESS

    holds = [limits.login_address_reserve(email="Ada@example.com") for _ in range(limit + 1)]

    assert [hold.count for hold in holds] == list(range(1, limit + 2))
    assert [hold.allowed for hold in holds] == [True] * limit + [False]
    assert 0 < holds[-1].retry_after <= settings.LOGIN_FAILURE_WINDOW_SECONDS


@pytest.mark.django_db
def test_address_reservation_starts_a_new_window():
    from datetime import timedelta

    for _ in range(settings.LOGIN_FAILURES_PER_ADDRESS + 3):
        limits.login_address_reserve(email=EMAIL)
    counter = AddressCounter.objects.get()
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    AddressCounter.objects.update(window_started_at=counter.window_started_at - window)

    hold = limits.login_address_reserve(email=EMAIL)

    assert (hold.allowed, hold.count) == (True, 1)
    assert AddressCounter.objects.get().window_started_at > counter.window_started_at


@pytest.mark.django_db
def test_address_release_gives_one_attempt_back():
    limits.login_address_reserve(email=EMAIL)
    limits.login_address_reserve(email=EMAIL)

    limits.login_address_release(email="ADA@example.com")
    limits.login_address_release(email=EMAIL)
    limits.login_address_release(email=EMAIL)  # never below 0

    assert AddressCounter.objects.get().failures == 0
    assert limits.login_address_reserve(email=EMAIL).count == 1


@pytest.mark.django_db(transaction=True)
def test_ip_reservations_in_threads_allow_exactly_the_limit(settings):
    settings.LOGIN_FAILURES_PER_IP = 7
    clear_of_window_edge(settings.LOGIN_FAILURE_WINDOW_SECONDS)

    holds = together(30, lambda i: limits.login_ip_reserve(ip="198.51.100.7"))

    assert [hold.allowed for hold in holds].count(True) == 7
    assert all(hold.retry_after > 0 for hold in holds if not hold.allowed)


# --- what counts as a failure, through the API --------------------------------------


def login(api, email=EMAIL, password=PASSWORD):
    return api.post_json(LOGIN, {"email": email, "password": password})


@pytest.mark.django_db
def test_a_right_password_on_an_unverified_account_is_not_a_failure(api):
    make_user(EMAIL)
    limit = settings.LOGIN_FAILURES_PER_ADDRESS
    for _ in range(limit - 1):
        assert login(api, password=WRONG).status_code == 400

    assert [login(api).status_code for _ in range(3)] == [403] * 3
    assert login(api, password=WRONG).status_code == 400  # the last one of the limit
    assert login(api, password=WRONG).status_code == 429
    assert login(api).status_code == 429


@pytest.mark.django_db
def test_right_logins_do_not_count_against_the_ip(api, settings):
    settings.LOGIN_FAILURES_PER_IP = 2
    verified_user()
    make_user("grace@example.com")

    answers = [login(api).status_code for _ in range(3)]
    answers += [login(api, email="grace@example.com").status_code for _ in range(3)]

    assert answers == [200] * 3 + [403] * 3
    assert not AddressCounter.objects.filter(failures__gt=0).exists()


@pytest.mark.django_db
def test_logins_refused_for_the_address_do_not_count_against_the_ip(api, settings):
    limit = settings.LOGIN_FAILURES_PER_ADDRESS
    settings.LOGIN_FAILURES_PER_IP = limit + 1
    for _ in range(limit):
        assert login(api, password=WRONG).status_code == 400
    for _ in range(3):
        assert login(api, password=WRONG).status_code == 429  # no password check

    assert login(api, email="grace@example.com", password=WRONG).status_code == 400
    limited = login(api, email="grace@example.com", password=WRONG)
    assert limited.json()["detail"].startswith("Too many failed logins from your network.")
