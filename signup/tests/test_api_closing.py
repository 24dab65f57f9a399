"""Closing the account (issue 20, item 4): DELETE /api/v1/me with
re-authentication, refused while the wallet holds money; the admin's "Close
account" action. Each answer at the API level."""

import json
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.errors import ApiError
from messaging.models import Notification, Outbox
from messaging.services import email_deliver, notifications_deliver
from signup import messages
from signup.flows import closing
from signup.models import AccessToken, PendingSignup, Profile, User, VerificationCode, Wallet
from signup.tests.accounts_helpers import (
    EMAIL,
    INVALID_CREDENTIALS,
    LOGIN,
    ME,
    PASSWORD,
    Purpose,
    bearer,
    code_for,
    token_for,
    verified_user,
    wrong,
)
from signup.tests.conftest import SIGNUP

pytestmark = pytest.mark.django_db


def close(api, raw: str | None, body) -> object:
    headers = bearer(raw) if raw else {}
    data = body if isinstance(body, str) else json.dumps(body)
    return api.delete(ME, data, content_type="application/json", **headers)


def tombstone(user: User) -> str:
    return f"deleted-{user.pk}@closed.invalid"


def snapshot(user: User) -> dict:
    """What closing changes; equal before and after a refusal."""
    user = User.objects.get(pk=user.pk)
    return {
        "email": user.email,
        "active": user.is_active,
        "usable": user.has_usable_password(),
        "name": Profile.objects.get(user=user).full_name,
        "live_tokens": AccessToken.objects.filter(user=user, revoked_at__isnull=True).count(),
        "codes": VerificationCode.objects.filter(user=user, used_at__isnull=True).count(),
        "pending": PendingSignup.objects.filter(user=user).count(),
        "outbox": Outbox.objects.count(),
    }


@pytest.fixture
def ada():
    user = verified_user()
    Profile.objects.filter(user=user).update(full_name="Ada Lovelace")
    return user


# --- the closing ------------------------------------------------------------------


def test_closing_ends_every_session_erases_the_name_and_frees_the_address(api, ada):
    raw, other = token_for(ada), token_for(ada)
    PendingSignup.objects.create(user=ada, token_hash="p" * 64, password="x", full_name="Ada")
    code_for(ada, Purpose.RESET)  # a live code

    response = close(api, raw, {"password": PASSWORD})

    assert response.status_code == 204, response.content
    assert response.content == b""
    for token in (raw, other):
        assert api.get(ME, **bearer(token)).status_code == 401
    login = api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD})
    assert (login.status_code, login.json()) == (400, INVALID_CREDENTIALS)

    user = User.objects.get(pk=ada.pk)  # kept: the id the business must keep
    assert user.email == tombstone(ada)
    assert not user.is_active
    assert not user.has_usable_password()
    assert Profile.objects.get(user=ada).full_name == ""
    assert Wallet.objects.get(user=ada).balance == Decimal("0.00")  # the wallet row stays
    assert not AccessToken.objects.filter(user=ada, revoked_at__isnull=True).exists()
    assert not PendingSignup.objects.filter(user=ada).exists()
    assert not VerificationCode.objects.filter(user=ada, used_at__isnull=True).exists()

    rows = Outbox.objects.filter(user=ada).order_by("kind")
    assert [r.kind for r in rows] == [messages.CLOSED_EMAIL, messages.CLOSED_NOTICE]
    for row in rows:
        assert row.context["email"] == EMAIL  # the row's user carries the tombstone now
        assert set(row.context) == {"email", "at", "by"}  # no secret
        assert row.context["by"] == "owner"

    # The address is free: a signup makes a new account.
    again = api.post_json(SIGNUP, {"email": EMAIL, "password": "another long passphrase"})
    assert again.status_code == 202, again.content
    fresh = User.objects.get(email=EMAIL)
    assert fresh.pk != ada.pk
    assert fresh.is_active
    assert not fresh.is_verified


def test_the_goodbye_email_goes_to_the_old_address_and_every_admin_is_told(api, ada, mail_sink):
    admins = [verified_user(f"admin{n}@example.com", is_staff=True) for n in range(3)]
    assert close(api, token_for(ada), {"password": PASSWORD}).status_code == 204

    email_deliver(outbox_id=Outbox.objects.get(kind=messages.CLOSED_EMAIL).pk)
    (mail,) = mail_sink.handler.to(EMAIL)
    assert not mail_sink.handler.to(tombstone(ada))
    assert "closed" in mail["subject"].lower()
    at = Outbox.objects.get(kind=messages.CLOSED_EMAIL).context["at"]
    assert at in mail["body"]
    assert "sign up again" in mail["body"]
    assert "support" in mail["body"]

    notify = Outbox.objects.get(kind=messages.CLOSED_NOTICE)
    notifications_deliver(outbox_id=notify.pk)
    notices = Notification.objects.filter(kind="account_closed")
    assert sorted(n.user_id for n in notices) == sorted(a.pk for a in admins)
    assert not Notification.objects.filter(user=ada).exists()
    assert f"#{ada.pk}" in notices[0].body
    assert Outbox.objects.get(pk=notify.pk).state == Outbox.State.SENT


def test_a_login_code_re_authenticates_too(api, ada):
    raw = token_for(ada)
    code = code_for(ada, Purpose.LOGIN)

    assert close(api, raw, {"code": wrong(code)}).status_code == 400
    assert close(api, raw, {"code": code}).status_code == 204
    assert User.objects.get(pk=ada.pk).email == tombstone(ada)


# --- refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("balance", [Decimal("0.01"), Decimal("-5.00")])
def test_a_wallet_that_is_not_empty_refuses_with_409_and_changes_nothing(api, ada, balance):
    Wallet.objects.filter(user=ada).update(balance=balance)
    raw = token_for(ada)
    code_for(ada, Purpose.RESET)
    before = snapshot(ada)

    response = close(api, raw, {"password": PASSWORD})

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "wallet_not_empty"
    assert "withdraw" in body["detail"].lower() or "transfer" in body["detail"].lower()
    assert snapshot(ada) == before
    assert api.get(ME, **bearer(raw)).status_code == 200
    assert Wallet.objects.get(user=ada).balance == balance


def test_a_wrong_password_is_400_counts_as_a_failed_login_and_changes_nothing(api, ada, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    raw = token_for(ada)
    before = snapshot(ada)

    answers = [close(api, raw, {"password": "not my password at all"}) for _ in range(3)]

    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[0].json()["code"] == "invalid_credentials"
    assert answers[2]["Retry-After"]
    assert snapshot(ada) == before
    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 429


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({}, "reauthentication_missing"),
        ({"password": None}, "reauthentication_missing"),  # null is left out
        ({"password": ""}, "string_too_short"),
        ({"password": "x" * 4097}, "string_too_long"),
        ({"code": "1" * 33}, "string_too_long"),
    ],
)
def test_a_body_without_a_password_or_code_is_422(api, ada, body, error_type):
    raw = token_for(ada)
    before = snapshot(ada)

    response = close(api, raw, body)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"][0]["type"] == error_type
    assert snapshot(ada) == before


def test_closing_needs_a_token(api, ada):
    response = close(api, None, {"password": PASSWORD})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert User.objects.get(pk=ada.pk).email == EMAIL


def test_no_one_can_sign_up_with_a_tombstone_address(api):
    response = api.post_json(
        SIGNUP, {"email": "deleted-1@closed.invalid", "password": "another long passphrase"}
    )
    assert response.status_code == 422


# --- the flow ---------------------------------------------------------------------


def test_closing_a_closed_account_again_does_nothing(ada):
    assert closing.user_close(user=ada) is True
    outbox = Outbox.objects.count()

    assert closing.user_close(user=User.objects.get(pk=ada.pk)) is False
    assert Outbox.objects.count() == outbox


def test_the_wallet_is_read_locked(ada):
    with CaptureQueriesContext(connection) as captured:
        closing.user_close(user=ada)
    (read,) = [q["sql"] for q in captured if '"signup_wallet"' in q["sql"]]
    assert read.startswith("SELECT")
    assert "FOR UPDATE" in read


@pytest.mark.django_db(transaction=True)
def test_a_deposit_in_flight_is_waited_for_and_refuses_the_closing():
    """A deposit holding the wallet row commits first; the closing then sees it."""
    user = verified_user()
    locked, done = threading.Event(), threading.Event()

    def deposit():
        try:
            with transaction.atomic():
                Wallet.objects.select_for_update().get(user=user)
                Wallet.objects.filter(user=user).update(balance=Decimal("10.00"))
                locked.set()
                done.wait(0.5)  # the closing starts meanwhile and must wait
        finally:
            connection.close()

    depositor = threading.Thread(target=deposit)
    depositor.start()
    assert locked.wait(5)
    with pytest.raises(ApiError) as refused:
        closing.user_close(user=user)
    depositor.join()

    assert (refused.value.status, refused.value.code) == (409, "wallet_not_empty")
    assert User.objects.get(pk=user.pk).email == EMAIL


# --- admin ------------------------------------------------------------------------


@pytest.fixture
def admin_client_():
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    client = Client()
    client.force_login(root)
    return client


def test_the_admin_closes_accounts_without_re_authentication(api, ada, admin_client_):
    raw = token_for(ada)
    rich = verified_user("rich@example.com")
    Wallet.objects.filter(user=rich).update(balance=Decimal("3.00"))
    url = reverse("admin:signup_user_changelist")

    response = admin_client_.post(
        url, {"action": "close_account", "_selected_action": [ada.pk, rich.pk]}, follow=True
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "1 account(s) closed" in page
    assert "rich@example.com" in page  # named: its wallet is not empty
    assert User.objects.get(pk=ada.pk).email == tombstone(ada)
    assert api.get(ME, **bearer(raw)).status_code == 401
    assert User.objects.get(pk=rich.pk).email == "rich@example.com"
    (row,) = Outbox.objects.filter(kind=messages.CLOSED_EMAIL, user=ada)
    assert (row.context["email"], row.context["by"]) == (EMAIL, "staff")
    assert not Outbox.objects.filter(user=rich).exists()
