"""POST /api/v1/signup: the 202, normalisation, identity, enumeration safety, equal work.

Bad input is in test_api_errors.py, the per-IP limit in test_rate_limit.py.
"""

import json
import re
import smtplib

import pytest
from django.contrib.auth.hashers import check_password
from django.core import mail
from django.core.mail import send_mail
from django.test import Client

from messaging.models import Notification, Outbox
from signup.messages import ANNOUNCE_NEW_USER, SIGNUP_NOTICE_EMAIL, VERIFICATION_EMAIL
from signup.models import AddressLimit, PendingSignup, Profile, User, Wallet
from signup.tests.conftest import PASSWORD, SIGNUP, make_user, outbox_kinds, row_counts
from signup.tokens import token_digest

pytestmark = pytest.mark.django_db

TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, URL-safe base64, unpadded


def without_token(response) -> dict:
    body = response.json()
    assert TOKEN_FORM.fullmatch(body.pop("verification_token"))
    return body


ARGON2ID_PREFIX = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


def signup(api, email, password=PASSWORD, **extra):
    return api.post_json(SIGNUP, {"email": email, "password": password, **extra})


def test_new_address_answers_202_and_creates_everything_in_one_go(api):
    response = signup(api, "ada@example.com", full_name="Ada Lovelace")

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    token = body.pop("verification_token")
    assert body == {"status": "verification_pending", "email": "ada@example.com"}
    assert TOKEN_FORM.fullmatch(token)
    user = User.objects.get()
    # The token is stored only as its hash, with this signup's password.
    (pending,) = PendingSignup.objects.filter(user=user)
    assert pending.token_hash == token_digest(token) != token
    assert pending.password == user.password
    assert pending.full_name == "Ada Lovelace"
    assert user.email == "ada@example.com"
    assert not user.is_verified
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser
    assert Profile.objects.get(user=user).full_name == "Ada Lovelace"
    wallet = Wallet.objects.get(user=user)
    assert (str(wallet.balance), wallet.currency) == ("0.00", "USD")
    assert outbox_kinds(user) == [VERIFICATION_EMAIL, ANNOUNCE_NEW_USER]
    assert set(Outbox.objects.values_list("state", flat=True)) == {Outbox.State.PENDING}
    assert list(AddressLimit.objects.values_list("email", flat=True)) == ["ada@example.com"]
    # The code is made by the worker when it sends, never in the request.
    assert not user.codes.exists()
    # Notifications are the worker's job too.
    assert not Notification.objects.exists()


def test_full_name_is_optional(api):
    response = signup(api, "ada@example.com")

    assert response.status_code == 202
    assert Profile.objects.get(user__email="ada@example.com").full_name == ""


def test_password_is_stored_with_the_production_argon2id_hasher(api):
    signup(api, "ada@example.com")

    user = User.objects.get()
    assert user.password.startswith(ARGON2ID_PREFIX)
    assert PASSWORD not in user.password
    assert check_password(PASSWORD, user.password)
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("ada@EXAMPLE.COM", "ada@example.com"),
        ("Ada@Example.com", "Ada@example.com"),  # the local part keeps its case
        ("ada@example.com", "ada@example.com"),
    ],
)
def test_normalized_email_is_echoed_and_stored(api, sent, stored):
    response = signup(api, sent)

    assert response.status_code == 202
    assert without_token(response) == {"status": "verification_pending", "email": stored}
    assert User.objects.get().email == stored


def test_email_identity_is_case_insensitive_one_account(api):
    first = signup(api, "Ada@Example.com")
    second = signup(api, "ada@example.com")
    third = signup(api, "ADA@EXAMPLE.COM")

    assert [r.status_code for r in (first, second, third)] == [202, 202, 202]
    assert second.json()["email"] == "ada@example.com"
    assert third.json()["email"] == "ADA@example.com"
    assert User.objects.count() == Profile.objects.count() == Wallet.objects.count() == 1
    assert User.objects.get().email == "Ada@example.com"  # the first one stays
    assert AddressLimit.objects.count() == 1


# --- enumeration safety ----------------------------------------------------
# Three addresses of one length, so even Content-Length must match.
NEW, UNVERIFIED, VERIFIED = "new01@example.com", "unv01@example.com", "ver01@example.com"


@pytest.fixture
def taken():
    return {
        UNVERIFIED: make_user(UNVERIFIED, password="the original secret 1"),
        VERIFIED: make_user(VERIFIED, verified=True, password="the original secret 2"),
    }


def _anonymised(response, email):
    token = response.json()["verification_token"]
    assert TOKEN_FORM.fullmatch(token)  # one form for every path
    return (
        response.status_code,
        response.content.replace(json.dumps(email).encode(), b'"<email>"').replace(
            token.encode(), b"<token>"
        ),
        sorted(response.headers.items()),
        sorted(response.cookies.items()),
    )


def test_answer_is_byte_identical_for_new_unverified_and_verified(api, taken):
    responses = {email: signup(api, email, full_name="Mallory") for email in (NEW, *taken)}

    shapes = {email: _anonymised(r, email) for email, r in responses.items()}
    assert shapes[NEW] == shapes[UNVERIFIED] == shapes[VERIFIED]
    assert shapes[NEW][1] == (
        b'{"status": "verification_pending", "email": "<email>", "verification_token": "<token>"}'
    )
    assert shapes[NEW][3] == []  # no cookie either
    for email, response in responses.items():
        assert response.json()["email"] == email


def test_each_path_hashes_the_password_exactly_once(api, taken, hasher_spy):
    for email in (NEW, UNVERIFIED, VERIFIED):
        before = hasher_spy.calls
        response = signup(api, email)
        assert response.status_code == 202
        assert hasher_spy.calls - before == 1, email


def test_the_spy_sees_the_hasher_that_signup_uses(api, hasher_spy):
    """Guards the test above: if signup used another hasher, the spy would see 0."""
    signup(api, "ada@example.com")

    assert hasher_spy.calls == 1
    assert User.objects.get().password.startswith(ARGON2ID_PREFIX)


def test_taken_unverified_gets_a_fresh_verification_email_and_nothing_else(api, taken):
    user = taken[UNVERIFIED]
    before = row_counts()

    signup(api, UNVERIFIED.upper(), password="a different password 9", full_name="Mallory")

    user.refresh_from_db()
    assert outbox_kinds(user) == [VERIFICATION_EMAIL]
    assert user.check_password("the original secret 1")
    assert user.profile.full_name == ""  # not the attacker's
    assert not user.is_verified
    after = row_counts()
    assert after["User"] == before["User"]
    assert after["Profile"] == before["Profile"]
    assert after["Wallet"] == before["Wallet"]
    assert after["Outbox"] == before["Outbox"] + 1


def test_taken_verified_gets_a_notice_and_nothing_changes(api, taken):
    user = taken[VERIFIED]
    password_hash = user.password
    verified_at = user.email_verified_at

    signup(api, VERIFIED, password="a different password 9", full_name="Mallory")

    user.refresh_from_db()
    assert outbox_kinds(user) == [SIGNUP_NOTICE_EMAIL]
    assert user.password == password_hash
    assert user.email_verified_at == verified_at
    assert user.profile.full_name == ""
    assert User.objects.count() == 2


def test_taken_address_is_subject_to_the_address_cooldown_silently(api, taken):
    first = signup(api, UNVERIFIED)
    second = signup(api, UNVERIFIED)
    third = signup(api, VERIFIED)
    fourth = signup(api, VERIFIED)

    assert [r.status_code for r in (first, second, third, fourth)] == [202] * 4
    assert _anonymised(first, UNVERIFIED) == _anonymised(second, UNVERIFIED)
    assert _anonymised(third, VERIFIED) == _anonymised(fourth, VERIFIED)
    assert outbox_kinds(taken[UNVERIFIED]) == [VERIFICATION_EMAIL]
    assert outbox_kinds(taken[VERIFIED]) == [SIGNUP_NOTICE_EMAIL]


def test_new_signup_starts_the_cooldown_so_a_repeat_queues_nothing(api):
    signup(api, "ada@example.com")
    again = signup(api, "ada@example.com")

    assert again.status_code == 202
    assert outbox_kinds() == [VERIFICATION_EMAIL, ANNOUNCE_NEW_USER]


def test_taken_inactive_account_gets_nothing_but_the_same_answer(api):
    user = make_user(UNVERIFIED, is_active=False)

    response = signup(api, UNVERIFIED)

    assert response.status_code == 202
    assert without_token(response) == {"status": "verification_pending", "email": UNVERIFIED}
    assert outbox_kinds(user) == []


@pytest.mark.django_db(transaction=True)
def test_signup_never_talks_to_smtp(monkeypatch, settings):
    """Real commit (so on-commit hooks run) with the SMTP backend armed to explode."""

    class NoSMTP:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the signup request opened an SMTP connection")

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    monkeypatch.setattr(smtplib, "SMTP", NoSMTP)
    monkeypatch.setattr(smtplib, "SMTP_SSL", NoSMTP)
    make_user(VERIFIED, verified=True)
    make_user(UNVERIFIED)
    client = Client(raise_request_exception=True)

    for email in (NEW, UNVERIFIED, VERIFIED):
        response = client.post(
            SIGNUP, {"email": email, "password": PASSWORD}, content_type="application/json"
        )
        assert response.status_code == 202

    assert len(mail.outbox) == 0
    assert Outbox.objects.count() == 4
    assert not Outbox.objects.exclude(state=Outbox.State.PENDING).exists()
    # The trap is armed: sending mail from here would have failed.
    with pytest.raises(AssertionError, match="SMTP"):
        send_mail("s", "b", "from@example.com", ["to@example.com"])
