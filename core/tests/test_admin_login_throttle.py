"""Failed admin logins are limited per IP and per account (issue 8, point 6;
django-axes). Before: 25 wrong passwords, then the right one, all accepted."""

import pytest
from django.test import Client

from signup.models import User

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("root@example.com", PASSWORD)


def login(client: Client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post(
        LOGIN, {"username": email, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    )


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_the_right_password_is_refused_after_five_wrong_ones_from_one_ip(admin_user, settings):
    client = Client()
    answers = [login(client, "root@example.com", f"wrong-{n}").status_code for n in range(5)]

    locked = login(client, "root@example.com", PASSWORD)

    assert answers == [200] * 4 + [429]  # the form again with its error; locked at the 5th
    assert locked.status_code == 429
    assert not logged_in(locked)


def test_the_account_is_locked_whatever_the_ip_and_spelling(admin_user):
    """Per account: five wrong passwords from five addresses, in case variants."""
    spellings = ["root@example.com", "ROOT@example.com", "Root@Example.com"]
    for n in range(5):
        login(Client(), spellings[n % 3], "wrong", ip=f"198.51.100.{n}")

    locked = login(Client(), "root@example.com", PASSWORD, ip="192.0.2.1")

    assert locked.status_code == 429


def test_one_ip_is_locked_whatever_the_account(admin_user):
    """Per IP: spraying one password over many accounts."""
    for n in range(5):
        login(Client(), f"user{n}@example.com", "wrong")

    assert login(Client(), "root@example.com", PASSWORD).status_code == 429
    # Another IP is not affected by that IP's failures.
    assert logged_in(login(Client(), "root@example.com", PASSWORD, ip="192.0.2.1"))


def test_failures_for_one_account_do_not_lock_another(admin_user):
    User.objects.create_superuser("other@example.com", PASSWORD)
    for n in range(5):
        login(Client(), "root@example.com", "wrong", ip=f"198.51.100.{n}")

    assert logged_in(login(Client(), "other@example.com", PASSWORD, ip="192.0.2.1"))


def test_four_failures_then_the_right_password_logs_in(admin_user):
    client = Client()
    for n in range(4):
        login(client, "root@example.com", f"wrong-{n}")

    assert logged_in(login(client, "root@example.com", PASSWORD))


def test_the_api_is_not_affected_by_admin_lockouts(admin_user, client, settings):
    settings.RATE_LIMIT_PER_IP = "off"
    for n in range(6):
        login(Client(), "root@example.com", f"wrong-{n}")

    response = client.post(
        "/api/v1/signup/resend", {"email": "root@example.com"}, content_type="application/json"
    )

    assert response.status_code == 202
