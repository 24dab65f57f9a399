"""Signup to verified account, end to end in one process: the API, the worker's
delivery service (called directly for each outbox row) and a real SMTP server."""

import pytest

from messaging.models import Outbox
from messaging.services import email_deliver
from signup.messages import SIGNUP_NOTICE_EMAIL, VERIFICATION_EMAIL
from signup.models import User
from signup.tests.conftest import (
    INVALID_CODE,
    PASSWORD,
    RESEND,
    SIGNUP,
    VERIFY,
    make_user,
    run_queued_resends,
    verify_body,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings, mail_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    return mail_sink


def deliver(kind: str) -> None:
    """What the worker does: resend jobs, then every pending email row of that kind."""
    run_queued_resends()
    for pk in Outbox.objects.filter(kind=kind, state=Outbox.State.PENDING).values_list(
        "pk", flat=True
    ):
        email_deliver(outbox_id=pk)


def test_signup_email_code_verify(api, smtp):
    answer = api.post_json(SIGNUP, {"email": "Ada@Example.com", "password": PASSWORD})
    assert answer.status_code == 202

    deliver(VERIFICATION_EMAIL)

    (message,) = smtp.handler.to("ada@example.com")
    assert message["code"] is not None
    assert "10 minutes" in message["body"]
    token = answer.json()["verification_token"]
    response = api.post_json(VERIFY, verify_body("ada@example.com", message["code"], token))
    assert response.status_code == 200
    assert response.json() == {"status": "verified", "email": "ada@example.com"}
    assert User.objects.get().is_verified


def test_a_repeated_signup_mails_a_fresh_code_that_kills_the_first(api, smtp, clock):
    body = {"email": "ada@example.com", "password": PASSWORD}
    token = api.post_json(SIGNUP, body).json()["verification_token"]
    deliver(VERIFICATION_EMAIL)
    clock.advance(61)
    api.post_json(SIGNUP, body)
    deliver(VERIFICATION_EMAIL)

    first, second = (m["code"] for m in smtp.handler.to("ada@example.com"))

    assert api.post_json(VERIFY, verify_body("ada@example.com", first, token)).json() == (
        INVALID_CODE if first != second else {"status": "verified", "email": "ada@example.com"}
    )
    # Either signup's token completes it: both were this client's.
    assert api.post_json(VERIFY, verify_body("ada@example.com", second, token)).status_code == 200


def test_resend_mails_a_working_code(api, smtp):
    make_user("ada@example.com")

    assert api.post_json(RESEND, {"email": "ada@example.com"}).status_code == 202
    deliver(VERIFICATION_EMAIL)

    (message,) = smtp.handler.to("ada@example.com")
    assert api.post_json(VERIFY, verify_body("ada@example.com", message["code"])).status_code == 200


def test_signup_for_a_verified_account_mails_a_notice_without_a_code(api, smtp):
    make_user("ada@example.com", verified=True)

    api.post_json(SIGNUP, {"email": "ada@example.com", "password": PASSWORD})
    deliver(SIGNUP_NOTICE_EMAIL)

    (message,) = smtp.handler.to("ada@example.com")
    assert message["code"] is None
    assert not User.objects.get().codes.exists()
