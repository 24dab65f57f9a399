"""The outbox admin: staff see states and errors and can re-queue failed rows."""

import pytest
from django.test import Client
from django.urls import reverse

from messaging.models import Outbox
from signup.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(User.objects.create_superuser("root@payshift.test", None))
    return client


def test_changelist_shows_state_and_error(admin_client, make_row):
    make_row(state=Outbox.State.FAILED, last_error="SMTPDataError: (554, b'5.7.1 denied')")

    response = admin_client.get(reverse("admin:messaging_outbox_changelist"))

    assert response.status_code == 200
    assert b"5.7.1 denied" in response.content


def test_requeue_action_puts_failed_rows_back_to_pending(admin_client, make_row):
    failed = make_row(state=Outbox.State.FAILED, last_error="boom")
    sent = make_row(state=Outbox.State.SENT)

    response = admin_client.post(
        reverse("admin:messaging_outbox_changelist"),
        {"action": "requeue", "_selected_action": [failed.pk, sent.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert b"1 row(s) back to pending" in response.content
    failed.refresh_from_db()
    assert (failed.state, failed.enqueued_at) == (Outbox.State.PENDING, None)
    sent.refresh_from_db()
    assert sent.state == Outbox.State.SENT


def test_outbox_rows_cannot_be_added_by_hand(admin_client):
    response = admin_client.get(reverse("admin:messaging_outbox_add"))
    assert response.status_code == 403


def test_outbox_row_page_is_read_only_without_save_or_delete(admin_client, make_row):
    row = make_row(state=Outbox.State.FAILED, last_error="boom")

    page = admin_client.get(reverse("admin:messaging_outbox_change", args=[row.pk]))

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"deletelink" not in page.content
    delete = admin_client.post(reverse("admin:messaging_outbox_delete", args=[row.pk]))
    assert delete.status_code == 403
    changelist = admin_client.get(reverse("admin:messaging_outbox_changelist"))
    assert b"delete_selected" not in changelist.content
    assert b'value="requeue"' in changelist.content


def test_outbox_has_a_plural_name(admin_client, make_row):
    make_row()
    make_row()
    changelist = admin_client.get(reverse("admin:messaging_outbox_changelist"))
    assert b"2 outbox rows" in changelist.content
