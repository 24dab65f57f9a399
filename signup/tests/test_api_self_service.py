"""Account self-service (issue 20, first part): password change, sessions,
logout scopes. Each endpoint and status code at the API level."""

import pytest
from django.contrib.auth.hashers import check_password

from messaging.models import Outbox
from signup.messages import PASSWORD_CHANGED_EMAIL
from signup.models import AccessToken, User
from signup.tests.accounts_helpers import (
    EMAIL,
    LOGIN,
    LOGOUT,
    ME,
    NEW_PASSWORD,
    PASSWORD,
    bearer,
    token_for,
    verified_user,
)

pytestmark = pytest.mark.django_db

PASSWORD_URL = "/api/v1/me/password"
SESSIONS = "/api/v1/me/sessions"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def login(api, password: str = PASSWORD, **headers) -> str:
    response = api.post_json(LOGIN, {"email": EMAIL, "password": password}, **headers)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def change(api, raw: str, current: str = PASSWORD, new: str = NEW_PASSWORD):
    body = {"current_password": current, "new_password": new}
    return api.post_json(PASSWORD_URL, body, **bearer(raw))


# --- password change --------------------------------------------------------------


def test_a_password_change_keeps_this_session_and_ends_the_others(api):
    verified_user()
    mine, other = login(api), login(api)

    assert change(api, mine).status_code == 204

    assert api.get(ME, **bearer(mine)).status_code == 200
    assert api.get(ME, **bearer(other)).status_code == 401
    assert check_password(NEW_PASSWORD, User.objects.get().password)
    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 400
    login(api, NEW_PASSWORD)


def test_a_password_change_mails_a_notice_with_its_time(api, mail_sink, settings):
    from messaging.services import email_deliver

    settings.EMAIL_BACKEND = "messaging.smtp.EmailBackend"
    verified_user()
    assert change(api, login(api)).status_code == 204

    row = Outbox.objects.get(kind=PASSWORD_CHANGED_EMAIL)
    assert set(row.context) == {"at"}  # when; no secret in the row
    email_deliver(outbox_id=row.pk)
    (mail,) = mail_sink.handler.to(EMAIL)
    assert "password was changed" in mail["subject"].lower()
    assert row.context["at"] in mail["body"]
    assert "reset" in mail["body"]
    assert NEW_PASSWORD not in mail["body"]


def test_a_wrong_current_password_is_400_and_a_failed_login(api, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    verified_user()
    raw = token_for(User.objects.get())

    answers = [change(api, raw, current="not my password at all") for _ in range(3)]

    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[0].json()["code"] == "invalid_credentials"
    assert answers[2]["Retry-After"]
    # The same count as password login: login is limited now too.
    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 429
    assert check_password(PASSWORD, User.objects.get().password)


@pytest.mark.parametrize(
    ("new", "error_type"),
    [
        ("short", "password_too_short"),
        ("password123", "password_too_common"),
        ("12345678901234", "password_entirely_numeric"),
        ("ada@example.com!", "password_too_similar"),
    ],
)
def test_a_refused_new_password_is_422_with_the_validators_type(api, new, error_type):
    verified_user()
    response = change(api, token_for(User.objects.get()), new=new)

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["detail"][0]["type"] == error_type
    assert body["detail"][0]["loc"] == ["body", "new_password"]
    assert check_password(PASSWORD, User.objects.get().password)


def test_a_password_change_needs_a_token(api):
    response = api.post_json(PASSWORD_URL, {"current_password": "x", "new_password": "y"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


# --- sessions ---------------------------------------------------------------------


def test_sessions_list_each_live_token_newest_first_with_its_client(api, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # one proxy in front: its X-Forwarded-For counts
    verified_user()
    first = login(api, HTTP_USER_AGENT=FIREFOX)
    second = login(api, HTTP_USER_AGENT="curl/8.5.0", HTTP_X_FORWARDED_FOR="198.51.100.4")
    login(api)
    api.post(LOGOUT, **bearer(login(api)))  # ended: not listed

    response = api.get(SESSIONS, **bearer(second))

    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 3
    assert [i["current"] for i in items] == [False, True, False]
    assert items[1]["client"] == "curl"
    assert items[2]["client"] == "Firefox on Linux"
    # The test client is a loopback peer, so a trusted proxy.
    assert items[1]["ip"] == "198.51.100.4"
    assert set(items[0]) == {
        "id", "created_at", "last_used_at", "expires_at", "client", "ip", "current",
    }  # fmt: skip
    assert first not in response.content.decode()  # no token in the list


def test_a_session_ends_by_id_and_another_users_is_404(api):
    verified_user()
    mine, other = login(api), login(api)
    other_id = AccessToken.objects.order_by("-pk").values_list("pk", flat=True)[0]
    stranger = token_for(verified_user("eve@example.com"))

    assert api.delete(f"{SESSIONS}/{other_id}", **bearer(stranger)).status_code == 404
    assert api.get(ME, **bearer(other)).status_code == 200
    assert api.delete(f"{SESSIONS}/{other_id}", **bearer(mine)).status_code == 204
    assert api.get(ME, **bearer(other)).status_code == 401
    assert api.delete(f"{SESSIONS}/{other_id}", **bearer(mine)).status_code == 404  # ended


# --- logout scopes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "alive"),
    [
        (None, [False, True, True]),
        ({"scope": "current"}, [False, True, True]),
        ({"scope": "others"}, [True, False, False]),
        ({"scope": "all"}, [False, False, False]),
    ],
)
def test_logout_scopes(api, body, alive):
    verified_user()
    tokens = [login(api) for _ in range(3)]
    verified_user("eve@example.com")
    eve = login_as(api, "eve@example.com")

    if body is None:
        response = api.post(LOGOUT, **bearer(tokens[0]))
    else:
        response = api.post_json(LOGOUT, body, **bearer(tokens[0]))

    assert response.status_code == 204
    assert [api.get(ME, **bearer(t)).status_code == 200 for t in tokens] == alive
    assert api.get(ME, **bearer(eve)).status_code == 200  # nobody else's


def test_an_unknown_logout_scope_is_422(api):
    verified_user()
    response = api.post_json(LOGOUT, {"scope": "everything"}, **bearer(login(api)))
    assert response.status_code == 422


def login_as(api, email: str) -> str:
    response = api.post_json(LOGIN, {"email": email, "password": PASSWORD})
    return response.json()["access_token"]


def test_a_logout_body_that_is_not_an_object_is_422(api):
    """Found by schemathesis: [null, null] read through attributes passed as
    a scope-current logout."""
    verified_user()
    raw = login(api)
    response = api.post_json(LOGOUT, [None, None], **bearer(raw))
    assert response.status_code == 422
    assert api.get(ME, **bearer(raw)).status_code == 200
