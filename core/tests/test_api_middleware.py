"""The admin's login and messages middleware is left out of /api/ requests, and
the session is never touched there: the JSON API authenticates with bearer
tokens and sets no cookie. The API's answers keep every header they had; the admin keeps its
session, its CSRF check and its messages; Django's system checks pass."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

from signup.models import User

PASSWORD = "correct horse battery staple"
BODY = {"email": "ada@example.com", "password": PASSWORD, "full_name": "Ada"}


@pytest.fixture
def admin_client() -> Client:
    client = Client(enforce_csrf_checks=True)
    User.objects.create_superuser("root@example.com", PASSWORD)
    page = client.get("/admin/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token is not None
    answer = client.post(
        "/admin/login/",
        {"username": "root@example.com", "password": PASSWORD, "next": "/admin/"},
        HTTP_X_CSRFTOKEN=token.group(1).decode(),
    )
    assert answer.status_code == 302, answer.content[:300]
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/api/v1/signup", 202),
        ("get", "/api/v1/health/live", 200),
        ("get", "/api/v1/nope", 404),
    ],
)
def test_an_api_request_builds_no_user_or_message_store(api, method, path, status):
    response = api.post_json(path, BODY) if method == "post" else api.get(path)

    assert response.status_code == status
    request = response.wsgi_request
    assert not request.session.accessed
    assert not hasattr(request, "_messages")
    assert not hasattr(request, "user")


@pytest.mark.django_db
def test_an_api_answer_keeps_its_headers_and_sets_no_cookie(admin_client):
    """Even for a browser that holds the admin's session and CSRF cookies."""
    assert {"sessionid", "csrftoken"} <= set(admin_client.cookies)

    response = admin_client.post(
        "/api/v1/signup", BODY, content_type="application/json", HTTP_X_REQUEST_ID="req-12345678"
    )

    assert response.status_code == 202
    assert response["X-Request-ID"] == "req-12345678"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Length"] == str(len(response.content))
    assert response["Vary"] == "origin"  # CORS's; no Cookie: the answer depends on none
    assert not response.cookies


@pytest.mark.django_db
def test_the_admin_keeps_its_session_csrf_check_and_messages(admin_client):
    assert admin_client.get("/admin/").status_code == 200  # the session's login

    user = User.objects.get()
    change = f"/admin/signup/user/{user.pk}/change/"
    refused = admin_client.post(change, {})  # no CSRF token
    assert refused.status_code == 403

    page = admin_client.get(change)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token is not None
    logout = admin_client.post("/admin/logout/", {"csrfmiddlewaretoken": token.group(1).decode()})
    assert logout.status_code == 200
    assert admin_client.get("/admin/").status_code == 302  # logged out: to the login page


@pytest.mark.django_db
def test_admin_messages_are_shown(admin_client):
    """The admin's "deleted" message goes through the messages middleware."""
    victim = User.objects.create_user("gone@example.com", PASSWORD)
    delete = f"/admin/signup/user/{victim.pk}/delete/"
    page = admin_client.get(delete)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token is not None

    answer = admin_client.post(
        delete, {"post": "yes", "csrfmiddlewaretoken": token.group(1).decode()}, follow=True
    )

    assert answer.status_code == 200
    assert b"was deleted successfully" in answer.content


def test_system_checks_pass():
    call_command("check", fail_level="WARNING")


def test_deploy_checks_still_see_the_csrf_and_clickjacking_middleware(capsys):
    call_command("check", deploy=True)  # warnings are printed, not raised

    printed = capsys.readouterr()
    assert "security.W002" not in printed.out + printed.err
    assert "security.W003" not in printed.out + printed.err
