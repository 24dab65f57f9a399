"""A returning user end to end: codes by email through the real worker
(`manage.py rundramatiq`), real Redis, PostgreSQL and SMTP; then the feed."""

import pytest

from messaging.models import Notification, Outbox
from messaging.tests.conftest import worker_log
from messaging.tests.test_delivery import all_sent, wait_for_rows, worker_env
from signup.flows import status
from signup.models import User
from signup.tests.accounts_helpers import (
    CODE,
    CODE_VERIFY,
    EMAIL,
    LOGIN,
    LOGOUT,
    ME,
    NEW_PASSWORD,
    NOTIFICATIONS,
    PASSWORD,
    RESET,
    RESET_CONFIRM,
    WALLET,
    bearer,
    verified_user,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_ip_limit(settings):
    settings.RATE_LIMIT_PER_IP = "off"


def mail(mail_sink, tmp_path, count):
    try:
        return mail_sink.wait_for(EMAIL, count, timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{worker_log(tmp_path)}") from None


def test_login_code_reset_and_a_status_change_through_the_worker(
    api, mail_sink, start_worker, tmp_path, clock
):
    admin = verified_user("admin@example.com", is_staff=True)
    user = verified_user()
    start_worker(**worker_env(mail_sink))

    # Log in by emailed code.
    assert api.post_json(CODE, {"email": "Ada@Example.com"}).status_code == 202
    (login_mail,) = mail(mail_sink, tmp_path, 1)
    assert "login code" in login_mail["subject"].lower()
    response = api.post_json(CODE_VERIFY, {"email": EMAIL, "code": login_mail["code"]})
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    assert api.get(ME, **bearer(token)).json()["email"] == EMAIL
    assert api.get(WALLET, **bearer(token)).json() == {"balance": "0.00", "currency": "USD"}

    # Reset the password by emailed code: the login token dies.
    clock.advance(61)
    assert api.post_json(RESET, {"email": EMAIL}).status_code == 202
    reset_mail = mail(mail_sink, tmp_path, 2)[-1]
    assert "reset" in reset_mail["subject"].lower()
    response = api.post_json(
        RESET_CONFIRM, {"email": EMAIL, "code": reset_mail["code"], "password": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.content
    assert api.get(ME, **bearer(token)).status_code == 401
    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 400
    token = api.post_json(LOGIN, {"email": EMAIL, "password": NEW_PASSWORD}).json()["access_token"]

    # Staff deactivate: the token dies at once; the user is emailed; the
    # user and the admin are notified by the worker.
    status.user_deactivate(user=User.objects.get(pk=user.pk))
    assert api.get(ME, **bearer(token)).status_code == 401
    deactivated_mail = mail(mail_sink, tmp_path, 3)[-1]
    assert "deactivated" in deactivated_mail["subject"].lower()
    wait_for_rows(tmp_path, all_sent)
    assert Notification.objects.filter(user=admin, kind="account_deactivated").count() == 1

    # Reactivated: the user logs in and reads the feed.
    status.user_reactivate(user=User.objects.get(pk=user.pk))
    wait_for_rows(tmp_path, all_sent)
    token = api.post_json(LOGIN, {"email": EMAIL, "password": NEW_PASSWORD}).json()["access_token"]
    items = api.get(NOTIFICATIONS, **bearer(token)).json()["items"]
    assert [i["kind"] for i in items] == ["account_reactivated", "account_deactivated"]
    assert api.post(f"{NOTIFICATIONS}/{items[0]['id']}/read", **bearer(token)).status_code == 204
    assert api.get(NOTIFICATIONS, {"unread": "true"}, **bearer(token)).json()["items"] == [
        items[1] | {"read": False}
    ]
    assert api.post(LOGOUT, **bearer(token)).status_code == 204
    assert api.get(ME, **bearer(token)).status_code == 401
    assert Outbox.objects.filter(state=Outbox.State.SENT).count() == Outbox.objects.count()
