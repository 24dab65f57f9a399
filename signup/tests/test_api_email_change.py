"""Email change (issue 20, item 2): request, confirm, the notices, and every
way a pending change dies. API level, with the worker's delivery of each
outbox row to a real SMTP server (aiosmtpd)."""

import pytest
from django.test import Client

from messaging.models import Outbox
from messaging.services import email_deliver
from signup.messages import EMAIL_CHANGE_ASKED, EMAIL_CHANGE_CODE, EMAIL_CHANGE_TAKEN, EMAIL_CHANGED
from signup.models import EmailChange, User
from signup.tests.accounts_helpers import (
    EMAIL,
    LOGIN,
    ME,
    PASSWORD,
    bearer,
    together,
    token_for,
    verified_user,
)

pytestmark = pytest.mark.django_db

REQUEST = "/api/v1/me/email"
CONFIRM = "/api/v1/me/email/confirm"
NEW = "ada@new.example"


@pytest.fixture
def smtp(settings, mail_sink):
    settings.EMAIL_BACKEND = "messaging.smtp.EmailBackend"
    return mail_sink


def ask(api, raw: str, new: str = NEW, password: str = PASSWORD):
    return api.post_json(REQUEST, {"new_email": new, "password": password}, **bearer(raw))


def deliver(kind: str) -> None:
    rows = Outbox.objects.filter(kind=kind, state=Outbox.State.PENDING).order_by("pk")
    for pk in rows.values_list("pk", flat=True):
        email_deliver(outbox_id=pk)


def code_at(smtp, address: str) -> str:
    deliver(EMAIL_CHANGE_CODE)
    return smtp.handler.to(address)[-1]["code"]


def test_the_whole_change_with_both_notices(api, smtp):
    user = verified_user()
    raw, other = token_for(user), token_for(user)

    response = ask(api, raw)
    assert response.status_code == 202
    assert response.json() == {"status": "confirmation_sent", "new_email": NEW}
    deliver(EMAIL_CHANGE_ASKED)
    (asked,) = smtp.handler.to(EMAIL)
    assert NEW in asked["body"]

    response = api.post_json(CONFIRM, {"code": code_at(smtp, NEW)}, **bearer(raw))

    assert response.status_code == 200
    assert response.json()["email"] == NEW
    assert User.objects.get().email == NEW
    assert api.get(ME, **bearer(raw)).status_code == 200  # this session stays
    assert api.get(ME, **bearer(other)).status_code == 401  # the others end
    deliver(EMAIL_CHANGED)
    assert "was changed" in smtp.handler.to(EMAIL)[-1]["subject"]
    assert api.post_json(LOGIN, {"email": NEW, "password": PASSWORD}).status_code == 200
    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 400
    assert not EmailChange.objects.exists()


def test_the_request_answers_the_same_for_a_free_a_taken_and_the_own_address(api, smtp, clock):
    user = verified_user()
    verified_user("taken@example.com")
    raw = token_for(user)

    answers = []
    for new in (NEW, "taken@example.com", EMAIL):
        answers.append(ask(api, raw, new))
        clock.advance(61)  # past the cooldown of the purpose's code requests

    news = [NEW, "taken@example.com", EMAIL]
    bodies = {a.content.replace(n.encode(), b"<new>") for a, n in zip(answers, news, strict=True)}
    assert {a.status_code for a in answers} == {202}
    assert len(bodies) == 1
    rows = Outbox.objects.order_by("pk").values_list("kind", "context__email", "context__new_email")
    assert list(rows) == [
        (EMAIL_CHANGE_ASKED, EMAIL, NEW),
        (EMAIL_CHANGE_CODE, EMAIL, NEW),
        (EMAIL_CHANGE_ASKED, EMAIL, "taken@example.com"),
        (EMAIL_CHANGE_TAKEN, EMAIL, "taken@example.com"),
        (EMAIL_CHANGE_ASKED, EMAIL, EMAIL),
        (EMAIL_CHANGE_TAKEN, EMAIL, EMAIL),
    ]
    deliver(EMAIL_CHANGE_TAKEN)
    (notice,) = smtp.handler.to("taken@example.com")
    assert "tried to move" in notice["subject"]
    assert notice["code"] is None
    assert len(smtp.handler.to(EMAIL)) == 0  # the own address gets no such notice


def test_a_wrong_code_is_400_and_five_are_429(api, smtp):
    raw = token_for(verified_user())
    ask(api, raw)
    code = code_at(smtp, NEW)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    answers = [api.post_json(CONFIRM, {"code": wrong}, **bearer(raw)) for _ in range(6)]

    assert [a.status_code for a in answers] == [400] * 5 + [429]
    assert answers[0].json()["code"] == "invalid_code"
    # The 5th wrong code killed the live one.
    assert api.post_json(CONFIRM, {"code": code}, **bearer(raw)).status_code == 429
    assert User.objects.get().email == EMAIL


def test_a_new_address_taken_meanwhile_ends_the_change(api, smtp):
    raw = token_for(verified_user())
    ask(api, raw)
    code = code_at(smtp, NEW)
    verified_user(NEW)  # someone signs the address up meanwhile

    response = api.post_json(CONFIRM, {"code": code}, **bearer(raw))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_code"
    assert User.objects.get(pk=User.objects.order_by("pk").first().pk).email == EMAIL
    assert not EmailChange.objects.exists()


def test_a_password_change_ends_a_pending_change(api, smtp):
    raw = token_for(verified_user())
    ask(api, raw)
    code = code_at(smtp, NEW)
    body = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    assert api.post_json("/api/v1/me/password", body, **bearer(raw)).status_code == 204

    assert api.post_json(CONFIRM, {"code": code}, **bearer(raw)).status_code == 400
    assert User.objects.get().email == EMAIL


def test_a_second_request_replaces_the_first(api, smtp, clock):
    raw = token_for(verified_user())
    ask(api, raw)
    first = code_at(smtp, NEW)
    clock.advance(61)
    ask(api, raw, "ada@other.example")

    assert api.post_json(CONFIRM, {"code": first}, **bearer(raw)).status_code == 400
    code = code_at(smtp, "ada@other.example")
    assert api.post_json(CONFIRM, {"code": code}, **bearer(raw)).status_code == 200
    assert User.objects.get().email == "ada@other.example"


def test_the_request_needs_a_right_reauthentication(api, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    raw = token_for(verified_user())

    missing = api.post_json(REQUEST, {"new_email": NEW}, **bearer(raw))
    wrong = [ask(api, raw, password="not my password at all") for _ in range(3)]

    assert missing.status_code == 422
    assert [w.status_code for w in wrong] == [400, 400, 429]
    assert wrong[0].json()["code"] == "invalid_credentials"
    assert not Outbox.objects.exists()
    assert not EmailChange.objects.exists()


def test_a_login_code_reauthenticates_too(api):
    from signup.codes import verification_code_issue
    from signup.models import VerificationCode

    user = verified_user()
    code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.LOGIN)

    body = {"new_email": NEW, "code": code}
    assert api.post_json(REQUEST, body, **bearer(token_for(user))).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_two_changes_to_one_new_address_at_once_one_wins(smtp):
    """Two accounts confirm a move to the same address at the same moment:
    one 200, one 400, no 500; the unique index decides."""
    api = Client()
    tokens = []
    for n in range(2):
        raw = token_for(verified_user(f"user{n}@example.com"))
        response = api.post(
            REQUEST,
            {"new_email": NEW, "password": PASSWORD},
            content_type="application/json",
            **bearer(raw),
        )
        assert response.status_code == 202
        tokens.append(raw)
    deliver(EMAIL_CHANGE_CODE)
    codes = [m["code"] for m in smtp.handler.to(NEW)]

    answers = together(
        2,
        lambda i: Client(raise_request_exception=False).post(
            CONFIRM, {"code": codes[i]}, content_type="application/json", **bearer(tokens[i])
        ),
    )

    assert sorted(a.status_code for a in answers) == [200, 400]
    assert User.objects.filter(email=NEW).count() == 1
