"""Tokens (401 + WWW-Authenticate, expiry, revocation, one query, last-used once a
minute), logout, GET/PATCH /me, the wallet, the notification feed and marking read."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Notification
from signup.models import AccessToken, User
from signup.tests.accounts_helpers import (
    LOGOUT,
    ME,
    NOTIFICATIONS,
    READ_ALL,
    WALLET,
    bearer,
    token_for,
    verified_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return verified_user()


@pytest.fixture
def token(user):
    return token_for(user)


def assert_401(response):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert body["detail"]


AUTHED = [
    ("get", ME),
    ("patch", ME),
    ("get", WALLET),
    ("get", NOTIFICATIONS),
    ("post", READ_ALL),
    ("post", f"{NOTIFICATIONS}/1/read"),
    ("post", LOGOUT),
]


def call(api, method, path, **extra):
    if method == "patch":
        return api.patch(path, '{"full_name": "x"}', content_type="application/json", **extra)
    return getattr(api, method)(path, **extra)


# --- 401 in every way ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), AUTHED)
@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic abc", "Bearer not-a-token", "Bearer " + "x" * 5000],
    ids=["missing", "empty", "blank", "basic", "unknown", "huge"],
)
def test_401_without_a_valid_token(api, method, path, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    assert_401(call(api, method, path, **extra))


def test_expired_token_is_401(api, user, token):
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert_401(api.get(ME, **bearer(token)))


def test_revoked_token_is_401(api, user, token):
    AccessToken.objects.update(revoked_at=timezone.now())

    assert_401(api.get(ME, **bearer(token)))


def test_inactive_account_is_401(api, user, token):
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_401(api.get(ME, **bearer(token)))


def test_logout_revokes_this_token_only(api, user, token):
    other = token_for(user)

    response = api.post(LOGOUT, **bearer(token))

    assert response.status_code == 204
    assert response.content == b""
    assert_401(api.get(ME, **bearer(token)))
    assert_401(api.post(LOGOUT, **bearer(token)))
    assert api.get(ME, **bearer(other)).status_code == 200


def test_token_lookup_is_one_indexed_query_and_last_used_is_written_once_a_minute(api, user, token):
    with CaptureQueriesContext(connection) as first:
        assert api.get(ME, **bearer(token)).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert api.get(ME, **bearer(token)).status_code == 200
    AccessToken.objects.update(last_used_at=timezone.now() - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as later:
        assert api.get(ME, **bearer(token)).status_code == 200

    assert [q["sql"].split()[0] for q in first.captured_queries] == ["SELECT", "UPDATE"]
    (lookup,) = second.captured_queries  # GET /me: the token query, nothing else
    assert "signup_accesstoken" in lookup["sql"]
    assert "key_hash" in lookup["sql"]
    assert len(later.captured_queries) == 2
    assert AccessToken.objects.get().last_used_at > timezone.now() - timedelta(seconds=5)


def test_the_token_lookup_uses_the_unique_index(user, token):
    from signup.tokens import token_digest

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT * FROM signup_accesstoken WHERE key_hash = %s", [token_digest(token)]
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "Index" in plan
    assert "key_hash" in plan


# --- /me -------------------------------------------------------------------------------------


def test_get_me(api, user, token):
    User.objects.filter(pk=user.pk).update(email="Ada@example.com")
    user.profile.full_name = "Ada Lovelace"
    user.profile.save()

    response = api.get(ME, **bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "email", "full_name", "verified", "date_joined"}
    assert body["id"] == user.pk
    assert body["email"] == "Ada@example.com"
    assert body["full_name"] == "Ada Lovelace"
    assert body["verified"] is True
    assert body["date_joined"].startswith(str(user.date_joined.year))


def patch(api, token, body):
    data = body if isinstance(body, str) else __import__("json").dumps(body)
    return api.patch(ME, data, content_type="application/json", **bearer(token))


def test_patch_me_updates_the_full_name(api, user, token):
    response = patch(api, token, {"full_name": "Ada King"})

    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada King"
    user.profile.refresh_from_db()
    assert user.profile.full_name == "Ada King"
    assert api.get(ME, **bearer(token)).json()["full_name"] == "Ada King"


def test_patch_me_without_fields_changes_nothing(api, user, token):
    response = patch(api, token, {})

    assert response.status_code == 200
    assert response.json()["email"] == user.email


@pytest.mark.parametrize(
    "body", [{"full_name": "x" * 151}, {"full_name": "a\x00b"}, {"full_name": None}]
)
def test_patch_me_422(api, token, body):
    response = patch(api, token, body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "full_name"


def test_patch_me_not_json_400(api, token):
    assert patch(api, token, "{nope").status_code == 400


# --- wallet ------------------------------------------------------------------------------


def test_wallet(api, user, token):
    response = api.get(WALLET, **bearer(token))

    assert response.status_code == 200
    assert response.json() == {"balance": "0.00", "currency": "USD"}


# --- notifications ------------------------------------------------------------------------


def notify(user, n, **fields):
    base = timezone.now()
    return Notification.objects.bulk_create(
        [
            Notification(
                user=user,
                kind="welcome",
                title=f"title {i}",
                body=f"body {i}",
                dedupe_key=f"k{i}",
                created_at=base - timedelta(seconds=n - i) if "same_time" not in fields else base,
            )
            for i in range(n)
        ]
    )


def feed(api, token, **query):
    return api.get(NOTIFICATIONS, query, **bearer(token))


def test_feed_is_newest_first_and_pages_with_a_cursor(api, user, token):
    rows = notify(user, 7)
    notify(verified_user("grace@example.com"), 3)  # someone else's

    seen, cursor, pages = [], None, 0
    while True:
        response = feed(api, token, limit=3, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200
        body = response.json()
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert [item["id"] for item in seen] == [r.pk for r in reversed(rows)]
    assert set(seen[0]) == {"id", "kind", "title", "body", "created_at", "read"}
    assert seen[0]["read"] is False


def test_feed_pages_through_notifications_made_in_one_batch(api, user, token):
    """A worker writes a batch with one created_at: the id breaks the tie."""
    rows = notify(user, 5, same_time=True)

    first = feed(api, token, limit=2).json()
    second = feed(api, token, limit=2, cursor=first["next_cursor"]).json()
    third = feed(api, token, limit=2, cursor=second["next_cursor"]).json()

    ids = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert ids == sorted((r.pk for r in rows), reverse=True)
    assert third["next_cursor"] is None


def test_feed_unread_filter(api, user, token):
    rows = notify(user, 4)
    Notification.objects.filter(pk__in=[rows[0].pk, rows[2].pk]).update(read_at=timezone.now())

    unread = feed(api, token, unread="true").json()["items"]
    everything = feed(api, token).json()["items"]

    assert [i["id"] for i in unread] == [rows[3].pk, rows[1].pk]
    assert len(everything) == 4
    assert {i["id"]: i["read"] for i in everything}[rows[0].pk] is True


def test_feed_is_one_query_after_the_token_however_many_notifications(api, user, token):
    counts = []
    for total in (0, 30, 300):
        Notification.objects.filter(user=user).delete()
        notify(user, total)
        api.get(ME, **bearer(token))  # last_used_at written; not in what is counted
        with CaptureQueriesContext(connection) as captured:
            response = feed(api, token, limit=20, unread="true")
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))

    assert counts == [2, 2, 2]


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "garbage!"}, {"cursor": "MTIz"}],
)
def test_feed_bad_query_422(api, token, query):
    response = feed(api, token, **query)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_mark_one_read(api, user, token):
    (row,) = notify(user, 1)
    path = f"{NOTIFICATIONS}/{row.pk}/read"

    assert api.post(path, **bearer(token)).status_code == 204
    row.refresh_from_db()
    first_read = row.read_at
    assert first_read is not None
    assert api.post(path, **bearer(token)).status_code == 204  # idempotent
    row.refresh_from_db()
    assert row.read_at == first_read


def test_mark_read_of_another_users_notification_is_404(api, user, token):
    (theirs,) = notify(verified_user("grace@example.com"), 1)

    response = api.post(f"{NOTIFICATIONS}/{theirs.pk}/read", **bearer(token))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.read_at is None


@pytest.mark.parametrize("ident", ["999999", "0", "-1", "abc", str(2**64)])
def test_mark_read_of_a_missing_or_bad_id(api, token, ident):
    response = api.post(f"{NOTIFICATIONS}/{ident}/read", **bearer(token))

    assert response.status_code in (404, 422)
    assert response.status_code == (404 if ident == "999999" else 422)


def test_read_all(api, user, token):
    notify(user, 3)
    (theirs,) = notify(verified_user("grace@example.com"), 1)

    assert api.post(READ_ALL, **bearer(token)).status_code == 204
    assert not Notification.objects.filter(user=user, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


@pytest.mark.parametrize("body", ["[null, null]", '"Ada"', "42", '{"email": "other@example.com"}'])
def test_patch_me_refuses_a_non_object_or_an_unknown_field(api, user, token, body):
    response = patch(api, token, body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    user.refresh_from_db()
    assert user.email == "ada@example.com"


def test_a_bad_id_on_a_bodyless_post_is_422_not_a_not_json_400(api, token):
    response = api.generic("POST", f"{NOTIFICATIONS}/abc/read", b"", **bearer(token))

    assert response.status_code == 422
