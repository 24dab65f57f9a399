"""Account status changes (service and admin actions): in one transaction the
tokens are revoked, the user emailed and notified, every admin notified with
one INSERT; deactivated users can neither log in nor use a token."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging.models import Notification, Outbox
from messaging.services import email_deliver, notifications_deliver
from signup import messages
from signup.flows import status
from signup.models import AccessToken, User
from signup.tests.accounts_helpers import (
    CODE,
    CODE_VERIFY,
    EMAIL,
    INVALID_CODE,
    INVALID_CREDENTIALS,
    LOGIN,
    ME,
    PASSWORD,
    Purpose,
    bearer,
    code_for,
    token_for,
    verified_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings, mail_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    return mail_sink


def deliver_all() -> None:
    """What the worker does for every pending row."""
    for row in Outbox.objects.filter(state=Outbox.State.PENDING).order_by("pk"):
        if row.kind.endswith(".notify"):
            notifications_deliver(outbox_id=row.pk)
        else:
            email_deliver(outbox_id=row.pk)


def test_deactivation_revokes_every_token_at_once_and_queues_the_messages(api):
    user = verified_user()
    tokens = [token_for(user), token_for(user)]
    assert api.get(ME, **bearer(tokens[0])).status_code == 200

    assert status.user_deactivate(user=user) is True

    for raw in tokens:
        assert api.get(ME, **bearer(raw)).status_code == 401
    assert not AccessToken.objects.filter(revoked_at__isnull=True).exists()
    assert sorted(Outbox.objects.values_list("kind", flat=True)) == sorted(
        [messages.DEACTIVATED_EMAIL, messages.DEACTIVATED_NOTICE]
    )
    user.refresh_from_db()
    assert not user.is_active


def test_deactivation_is_one_transaction(api, monkeypatch):
    """A failure after the tokens were revoked leaves everything as it was."""
    user = verified_user()
    raw = token_for(user)

    def boom(**kwargs):
        raise RuntimeError("outbox down")

    monkeypatch.setattr(status, "outbox_add_on_commit", boom)
    with pytest.raises(RuntimeError):
        status.user_deactivate(user=user)

    user.refresh_from_db()
    assert user.is_active
    assert api.get(ME, **bearer(raw)).status_code == 200


def test_a_deactivated_user_cannot_log_in_by_password_or_code(api):
    user = verified_user()
    status.user_deactivate(user=user)
    code = code_for(user, Purpose.LOGIN)

    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).json() == (
        INVALID_CREDENTIALS
    )
    assert api.post_json(CODE_VERIFY, {"email": EMAIL, "code": code}).json() == INVALID_CODE
    before = Outbox.objects.count()
    assert api.post_json(CODE, {"email": EMAIL}).status_code == 202
    assert Outbox.objects.count() == before  # no code is sent


def test_reactivation_lets_the_user_log_in_again(api):
    user = verified_user()
    status.user_deactivate(user=user)

    assert status.user_reactivate(user=user) is True

    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 200
    assert messages.REACTIVATED_NOTICE in Outbox.objects.values_list("kind", flat=True)


def test_a_change_to_the_same_state_does_nothing(api):
    user = verified_user()

    assert status.user_reactivate(user=user) is False
    assert not Outbox.objects.exists()


def test_the_user_is_emailed_and_notified_and_every_admin_notified(smtp):
    admins = [verified_user(f"admin{n}@example.com", is_staff=True) for n in range(3)]
    user = verified_user()

    status.user_deactivate(user=user)
    deliver_all()

    (mail,) = smtp.handler.to(EMAIL)
    assert "deactivated" in mail["subject"].lower()
    mine = Notification.objects.get(user=user)
    assert mine.kind == "account_deactivated"
    for admin in admins:
        notice = Notification.objects.get(user=admin)
        assert EMAIL in notice.body


def test_500_admins_are_notified_with_one_insert():
    User.objects.bulk_create(
        [User(email=f"admin{n}@example.com", is_staff=True) for n in range(500)]
    )
    user = verified_user()
    status.user_deactivate(user=user)
    row = Outbox.objects.get(kind=messages.DEACTIVATED_NOTICE)

    with CaptureQueriesContext(connection) as captured:
        notifications_deliver(outbox_id=row.pk)

    # On PostgreSQL the INSERT rides in a WITH with the row's finish (issue 23).
    inserts = [q for q in captured.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    assert Notification.objects.count() == 501
    assert len(captured.captured_queries) <= 8  # as test_announce: one transaction, a savepoint


def test_the_status_change_costs_the_same_statements_with_0_or_500_tokens_and_admins():
    counts = []
    for n in (0, 500):
        User.objects.filter(is_staff=True).delete()
        User.objects.bulk_create(
            [User(email=f"admin{n}-{i}@example.com", is_staff=True) for i in range(n)]
        )
        user = verified_user(f"user{n}@example.com")
        AccessToken.objects.bulk_create(
            [
                AccessToken(
                    user=user, key_hash=f"{n}-{i}-".ljust(64, "0"), expires_at=user.date_joined
                )
                for i in range(n)
            ]
        )
        with CaptureQueriesContext(connection) as captured:
            status.user_deactivate(user=user)
        counts.append(len(captured.captured_queries))

    assert counts[0] == counts[1]


# --- admin ------------------------------------------------------------------------------


@pytest.fixture
def admin_client_():
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    client = Client()
    client.force_login(root)
    return client


def test_admin_actions_deactivate_and_reactivate(api, admin_client_):
    user = verified_user()
    raw = token_for(user)
    url = reverse("admin:signup_user_changelist")

    response = admin_client_.post(
        url, {"action": "deactivate", "_selected_action": [user.pk]}, follow=True
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert not user.is_active
    assert api.get(ME, **bearer(raw)).status_code == 401
    assert Outbox.objects.filter(kind=messages.DEACTIVATED_NOTICE).count() == 1

    admin_client_.post(url, {"action": "reactivate", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert user.is_active


def test_admin_filters_and_search(admin_client_):
    verified_user("ada@example.com")
    verified_user("grace@example.com", is_active=False)
    from signup.tests.conftest import make_user

    make_user("linus@example.com")
    url = reverse("admin:signup_user_changelist")

    def emails(query):
        response = admin_client_.get(url, query)
        assert response.status_code == 200
        return {u.email for u in response.context["cl"].result_list}

    assert emails({"verified": "no"}) == {"linus@example.com"}
    assert "linus@example.com" not in emails({"verified": "yes"})
    assert emails({"is_active__exact": "0"}) == {"grace@example.com"}
    assert emails({"q": "GRACE"}) == {"grace@example.com"}


def test_admin_lists_tokens_without_their_secrets(admin_client_):
    user = verified_user()
    raw = token_for(user)
    token = AccessToken.objects.get()

    page = admin_client_.get(reverse("admin:signup_user_change", args=[user.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "access tokens" in html.lower()
    assert raw not in html
    assert token.key_hash not in html


def test_admin_cannot_flip_is_active_past_the_service(admin_client_):
    """is_active is read-only in the form: status changes go through the actions."""
    user = verified_user()
    page = admin_client_.get(reverse("admin:signup_user_change", args=[user.pk]))

    assert "is_active" not in page.context["adminform"].form.fields


def test_a_closed_account_cannot_be_reactivated():
    """Closing tombstones the address and erases the account: staff's
    reactivate must not bring a half-account back."""
    from signup.flows.closing import user_close

    user = verified_user()
    assert user_close(user=user, by_staff=True)

    assert status.user_reactivate(user=User.objects.get(pk=user.pk)) is False
    assert not User.objects.get(pk=user.pk).is_active
