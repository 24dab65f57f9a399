"""The request id goes from the web request into the outbox rows and the message,
and the worker takes it from the message, or from the row when the relay sent it."""

import dramatiq
import pytest

from core.requestid import current_request_id, request_id_var
from messaging.models import Outbox
from messaging.outbox import outbox_add_on_commit
from messaging.requestid import RequestIdMiddleware
from signup.messages import VERIFICATION_EMAIL

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_request():
    token = request_id_var.set("req-0123456789")
    yield "req-0123456789"
    request_id_var.reset(token)


def message(outbox_id: int, **options) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name="email", actor_name="send_email", args=(outbox_id,), kwargs={}, options=options
    )


def test_rows_and_messages_carry_the_request_id(make_user, as_request):
    [row] = outbox_add_on_commit(user=make_user(), kinds=[VERIFICATION_EMAIL])
    assert Outbox.objects.get(pk=row.pk).request_id == as_request

    sent = message(row.pk)
    RequestIdMiddleware().before_enqueue(dramatiq.get_broker(), sent, None)
    assert sent.options["request_id"] == as_request


def test_worker_takes_the_id_from_the_message():
    middleware = RequestIdMiddleware()
    middleware.before_process_message(dramatiq.get_broker(), message(1, request_id="from-msg-01"))
    assert current_request_id() == "from-msg-01"
    middleware.after_skip_message(dramatiq.get_broker(), message(1))
    assert current_request_id() == ""


def test_worker_takes_the_id_from_the_row_when_the_relay_sent_it(make_user, as_request):
    [row] = outbox_add_on_commit(user=make_user(), kinds=[VERIFICATION_EMAIL])
    request_id_var.set("")  # the relay's thread: no request

    RequestIdMiddleware().before_process_message(dramatiq.get_broker(), message(row.pk))

    assert current_request_id() == as_request
