"""GET /api/v1/me/export (issue 20, item 5): everything the service holds about
the user as one JSON document, streamed, with no secret, in a constant number
of queries per page of notifications, and limited per user."""

import json
import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.breaker import cache_breaker
from core.tests.gunicorn_race import clear_of_window_edge
from messaging.models import Notification
from signup.models import AccessToken, User, Wallet
from signup.tests.accounts_helpers import (
    EMAIL,
    LOGIN,
    ME,
    NOTIFICATIONS,
    PASSWORD,
    WALLET,
    bearer,
    token_for,
    verified_user,
)

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/me/export"
SESSIONS = "/api/v1/me/sessions"
PAGE = 500  # notifications per query (signup.flows.export.PAGE)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def login(api, email: str = EMAIL, **headers) -> str:
    response = api.post_json(LOGIN, {"email": email, "password": PASSWORD}, **headers)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def notify(user, count: int, *, prefix: str = "n") -> None:
    """count notifications, one a second back in time, every third one read."""
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(
                user=user,
                kind="welcome",
                title=f"{prefix} {n}",
                body=f"body of {prefix} {n}",
                dedupe_key=f"{prefix}:{n}",
                created_at=now - timedelta(seconds=count - n),
                read_at=now if n % 3 == 0 else None,
            )
            for n in range(count)
        ],
        batch_size=5000,
    )


def touched(raw: str) -> str:
    """The token's last_used_at is fresh: a request runs only its lookup."""
    from signup.tokens import token_digest

    AccessToken.objects.filter(key_hash=token_digest(raw)).update(last_used_at=timezone.now())
    return raw


def export(api, raw: str):
    """The answer, and its whole body read from the stream."""
    response = api.get(EXPORT, **bearer(raw))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


# --- the document -----------------------------------------------------------------


def test_the_export_is_one_json_document_of_profile_wallet_notifications_sessions(api):
    user = verified_user(full_name="Ada Lovelace")
    Wallet.objects.filter(user=user).update(balance=Decimal("12.50"))
    notify(user, 3)
    first = login(api, HTTP_USER_AGENT=FIREFOX)
    mine = login(api, HTTP_USER_AGENT="curl/8.5.0")

    response = api.get(EXPORT, **bearer(mine))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="payshift-export.json"'
    # Through the whole middleware stack, as any other answer.
    assert response["X-Request-ID"] == "test-client-request"
    assert response["Content-Security-Policy"]
    document = json.loads(b"".join(response.streaming_content))

    assert list(document) == ["profile", "wallet", "notifications", "sessions"]
    # Each part as the API's own reads show it (the same fields and formats).
    assert document["profile"] == api.get(ME, **bearer(mine)).json()
    assert document["profile"]["full_name"] == "Ada Lovelace"
    assert document["wallet"] == api.get(WALLET, **bearer(mine)).json()
    assert document["wallet"] == {"balance": "12.50", "currency": "USD"}
    feed = api.get(NOTIFICATIONS, {"limit": 100}, **bearer(mine)).json()["items"]
    assert document["notifications"] == feed
    assert [n["read"] for n in document["notifications"]] == [False, False, True]
    sessions = api.get(SESSIONS, **bearer(mine)).json()["items"]
    assert document["sessions"] == [
        {k: v for k, v in s.items() if k != "current"} for s in sessions
    ]
    assert [s["client"] for s in document["sessions"]] == ["curl", "Firefox on Linux"]
    assert first != mine


def test_the_export_holds_no_secret(api):
    user = verified_user()
    notify(user, 2)
    other = login(api)
    raw = login(api)

    response, body = export(api, raw)

    assert response.status_code == 200
    text = body.decode()
    assert raw not in text
    assert other not in text
    for key_hash in AccessToken.objects.values_list("key_hash", flat=True):
        assert key_hash not in text
    password_hash = User.objects.get().password
    assert password_hash.startswith("argon2")
    assert password_hash not in text
    for word in ("key_hash", "password", "token", "argon2"):
        assert word not in text
    for session in json.loads(body)["sessions"]:
        assert set(session) == {"id", "created_at", "last_used_at", "expires_at", "client", "ip"}


def test_another_users_data_is_not_in_the_export(api):
    ada = verified_user()
    notify(ada, 2, prefix="ada")
    raw = login(api)
    eve = verified_user("eve@example.com", full_name="Eve")
    notify(eve, 3, prefix="eve")
    eves = [login(api, "eve@example.com") for _ in range(2)]

    _, body = export(api, raw)

    document = json.loads(body)
    assert document["profile"]["id"] == ada.pk
    assert {n["id"] for n in document["notifications"]} == set(
        ada.notifications.values_list("pk", flat=True)
    )
    assert {s["id"] for s in document["sessions"]} == set(
        AccessToken.objects.filter(user=ada).values_list("pk", flat=True)
    )
    text = body.decode()
    assert "eve" not in text.lower()
    assert not any(token in text for token in eves)


# --- many notifications: all there, bounded pieces, constant queries per page -----


@pytest.mark.parametrize("count", [0, 1, PAGE, PAGE + 1, 10_000])
def test_every_notification_is_exported_in_a_query_per_page(api, count):
    user = verified_user()
    notify(user, count)
    for _ in range(2):
        token_for(user)  # other sessions
    raw = touched(token_for(user))

    with CaptureQueriesContext(connection) as captured:
        response = api.get(EXPORT, **bearer(raw))
        chunks = list(response.streaming_content)

    assert response.status_code == 200
    document = json.loads(b"".join(chunks))
    assert len(document["notifications"]) == count
    assert {n["id"] for n in document["notifications"]} == set(
        user.notifications.values_list("pk", flat=True)
    )
    assert len(document["sessions"]) == 3
    # 1 token lookup + the wallet + the sessions + one keyset page per PAGE
    # notifications (an empty list still asks once), whatever count is.
    pages = max(1, math.ceil(count / PAGE))
    statements = [q["sql"] for q in captured.captured_queries]
    assert len(statements) == 3 + pages, "\n".join(statements)
    assert sum("messaging_notification" in sql for sql in statements) == pages
    assert not any("OFFSET" in sql for sql in statements)
    # Streamed a page at a time: no piece holds the whole document.
    if count == 10_000:
        assert len(chunks) >= pages
        assert max(map(len, chunks)) < len(b"".join(chunks)) / 10


def test_the_first_piece_is_profile_and_wallet_and_a_client_may_stop_there(api, caplog):
    """What the benchmark times: the answer up to its first piece. A client
    that goes away then (the server closes the answer) costs no page."""
    user = verified_user()
    notify(user, 2 * PAGE + 1)
    raw = touched(token_for(user))

    with CaptureQueriesContext(connection) as captured:
        response = api.get(EXPORT, **bearer(raw))
        first = next(iter(response.streaming_content))
        response.close()

    assert first.startswith(b'{"profile": {')
    assert first.endswith(b'"notifications": [')
    assert len(captured.captured_queries) == 2  # token, wallet
    assert "aborted" not in caplog.text


# --- the limit per user ---------------------------------------------------------------


def test_past_exports_per_hour_the_export_is_429_with_retry_after(api, settings):
    settings.EXPORTS_PER_HOUR = 2
    verified_user()
    raw = touched(token_for(User.objects.get()))
    eve = token_for(verified_user("eve@example.com"))
    clear_of_window_edge(3600)  # a fixed window of an hour

    answers = [export(api, raw)[0] for _ in range(2)]
    with CaptureQueriesContext(connection) as captured:
        refused = api.get(EXPORT, **bearer(raw))

    assert [a.status_code for a in answers] == [200, 200]
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("application/json")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert "Content-Disposition" not in refused
    # Counted before the work: only the token was looked up.
    assert len(captured.captured_queries) == 1
    # Per user: another one still gets theirs.
    assert export(api, eve)[0].status_code == 200


@pytest.mark.usefixtures("cache_down")
def test_the_export_limit_fails_open_without_redis(api, settings):
    settings.EXPORTS_PER_HOUR = 1
    raw = token_for(verified_user())

    assert [export(api, raw)[0].status_code for _ in range(3)] == [200, 200, 200]
    assert cache_breaker.is_open  # the cache was really tried


def test_the_export_needs_a_token(api):
    response = api.get(EXPORT)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "not_authenticated"


# --- the contract -----------------------------------------------------------------


def test_openapi_documents_the_export_document_and_its_answers(api):
    document = api.get("/api/v1/openapi.json").json()
    operation = document["paths"][EXPORT]["get"]
    schemas = document["components"]["schemas"]

    assert set(operation["responses"]) == {"200", "401", "429", "503"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ExportOut"}
    export_out = schemas["ExportOut"]
    assert set(export_out["required"]) == {"profile", "wallet", "notifications", "sessions"}
    session = schemas[export_out["properties"]["sessions"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(session["properties"]) == {
        "id", "created_at", "last_used_at", "expires_at", "client", "ip",
    }  # fmt: skip
    assert operation["responses"]["429"]["headers"]["Retry-After"]["required"]
    assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]
    assert operation["security"]
