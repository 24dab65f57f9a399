"""LOG_FORMAT=json: one JSON object per line from gunicorn, web and worker, and
one grep for a signup's request id finds its request, its outbox rows'
enqueue and the worker's delivery of its email."""

import json

import pytest

from conftest import wait_until
from messaging.models import Outbox

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def parse(lines: list[str]) -> list[dict]:
    records = []
    for line in lines:
        record = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(record, dict), line
        records.append(record)
    return records


def test_one_grep_follows_a_signup_to_its_email(live_stack, mail_sink):
    status, headers = live_stack.post(
        "/api/v1/signup",
        {"email": "trace@example.com", "password": "correct horse battery staple"},
    )
    assert status == 202
    request_id = headers["X-Request-ID"]

    mail_sink.wait_for("trace@example.com", timeout=30)
    rows = wait_until(
        lambda: list(Outbox.objects.filter(state=Outbox.State.SENT, request_id=request_id)),
        timeout=30,
    )
    assert rows, "the outbox rows carry the request id"

    def traced():
        web = parse(live_stack.log_lines("web"))
        worker = parse(live_stack.log_lines("worker"))
        mine = [r for r in web + worker if r.get("request_id") == request_id]
        delivered = [r for r in mine if "outcome=sent" in r["message"]]
        return (web, worker, mine) if delivered else None

    web, _worker, mine = wait_until(traced, timeout=20)
    messages = [r["message"] for r in mine]
    assert any(r.get("logger") == "gunicorn.access" and r.get("status") == "202" for r in mine)
    assert any("signup" in m and "outcome=created" in m for m in messages), messages
    assert any("enqueue" in m and "outcome=queued" in m for m in messages), messages
    assert any(m.startswith("deliver") and "outcome=sent" in m for m in messages), messages
    assert {"time", "level", "logger", "message", "request_id"} <= set(mine[0])
    assert any(r["logger"].startswith("gunicorn.error") for r in web), "gunicorn's own lines"

    # The whole trace as an operator would run it: one grep over all the logs.
    grep = [
        line
        for name in ("web", "worker")
        for line in live_stack.log_lines(name)
        if request_id in line
    ]
    assert len(grep) == len(mine)
