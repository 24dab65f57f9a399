"""Resend through a real worker: the request enqueues signup.tasks.resend_code
for any address; `manage.py rundramatiq` finds the actor, looks the account
up and emails a code only where an unverified account exists."""

import pytest

from messaging.tests.conftest import worker_log
from signup.tests.conftest import RESEND, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_resend_is_mailed_by_the_worker_only_to_an_unverified_account(
    api, start_worker, mail_sink, tmp_path, settings
):
    settings.RATE_LIMIT_PER_IP = "off"
    make_user("unv@example.com")
    make_user("ver@example.com", verified=True)
    start_worker(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=mail_sink.port,
    )

    for email in ("ver@example.com", "nobody@example.com", "unv@example.com"):
        assert api.post_json(RESEND, {"email": email}).status_code == 202

    try:
        (message,) = mail_sink.wait_for("unv@example.com", 1, timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker_log(tmp_path)}") from None
    assert message["code"] is not None
    assert mail_sink.handler.to("ver@example.com") == []
    assert mail_sink.handler.to("nobody@example.com") == []
