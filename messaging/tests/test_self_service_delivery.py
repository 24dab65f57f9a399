"""Account self-service end to end (issue 20): the API, a real `manage.py
rundramatiq` worker, real Redis and PostgreSQL, a real SMTP server. An email
change from the request to both notices; closing to the goodbye email and
every admin's notice."""

import pytest

from conftest import wait_until
from messaging.models import Notification, Outbox
from messaging.tests.test_delivery import mail_for, wait_for_rows, worker_env
from signup.models import User
from signup.tokens import token_issue

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_issue(user=user)[0]}"}


def all_sent() -> bool:
    return not Outbox.objects.exclude(state=Outbox.State.SENT).exists()


def test_an_email_change_sends_the_code_and_both_notices(
    api, mail_sink, start_worker, tmp_path, make_user
):
    from django.utils import timezone

    user = User.objects.create_user("ada@example.com", PASSWORD, email_verified_at=timezone.now())
    auth = bearer(user)
    start_worker(**worker_env(mail_sink))

    body = {"new_email": "ada@new.example", "password": PASSWORD}
    assert api.post_json("/api/v1/me/email", body, **auth).status_code == 202
    [asked] = mail_for(mail_sink, tmp_path, "ada@example.com")
    [code_mail] = mail_for(mail_sink, tmp_path, "ada@new.example")
    assert "ada@new.example" in asked["body"]
    assert code_mail["code"] is not None

    response = api.post_json("/api/v1/me/email/confirm", {"code": code_mail["code"]}, **auth)

    assert response.status_code == 200, response.content
    assert response.json()["email"] == "ada@new.example"
    done = mail_for(mail_sink, tmp_path, "ada@example.com", count=2)[-1]
    assert "was changed" in done["subject"]
    wait_for_rows(tmp_path, all_sent)


def test_closing_sends_the_goodbye_and_notifies_every_admin(
    api, mail_sink, start_worker, tmp_path, make_user
):
    from django.utils import timezone

    admins = [make_user(f"admin{n}@payshift.test", is_staff=True) for n in range(3)]
    user = User.objects.create_user("ada@example.com", PASSWORD, email_verified_at=timezone.now())
    start_worker(**worker_env(mail_sink))

    response = api.delete(
        "/api/v1/me", f'{{"password": "{PASSWORD}"}}', "application/json", **bearer(user)
    )

    assert response.status_code == 204, response.content
    [goodbye] = mail_for(mail_sink, tmp_path, "ada@example.com")
    assert "closed" in goodbye["subject"].lower()
    wait_for_rows(tmp_path, all_sent)
    wait_until(
        lambda: Notification.objects.filter(user__in=admins, kind="account_closed").count() == 3,
        timeout=10,
    )
    assert User.objects.get(pk=user.pk).email != "ada@example.com"
