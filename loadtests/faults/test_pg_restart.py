"""PostgreSQL restart: the server itself stopped (fast shutdown) and started
again 3 s later, under load: not only dropped backends (scenario 4).

On a PostgreSQL cluster of the scenario's own (harness.PrivatePostgres):
the shared server on 5432 serves other runs on this machine. Requests
caught by it must fail cleanly (503 with Retry-After, never a 500), web and
worker must reconnect by themselves, no account may be half created, and
every accepted signup's email must arrive once: a worker that sent an email
while the server went away records it as sent when it is back
(messaging.services retries that UPDATE for ~16 s).
"""

import time

import pytest

import loadtests.stack
from loadtests.faults.harness import (
    PrivatePostgres,
    backlog_recovery,
    between,
    get_json,
    other_answers,
    p95,
)

pytestmark = pytest.mark.timeout(600)

RATE = 8.0
BEFORE, DOWN, AFTER = 10.0, 3.0, 15.0


@pytest.fixture
def private_postgres(monkeypatch):
    """The scenario's database on a private cluster (set up before the scenario,
    removed after it)."""
    server = PrivatePostgres().start()
    monkeypatch.setattr(loadtests.stack, "PG_ADMIN_URL", server.admin_url)
    yield server
    server.remove()


def test_a_postgresql_restart_fails_cleanly_and_loses_no_email(private_postgres, scenario):
    s = scenario("7 PostgreSQL restart (3 s down)")
    load = s.load(rate=RATE)
    time.sleep(BEFORE)
    stopping = time.time()
    private_postgres.stop("fast")
    time.sleep(DOWN)
    private_postgres.start()
    up_at = time.time()
    time.sleep(AFTER)
    answers = load.stop()
    health = get_json(s.port, "/api/v1/health")

    mails = s.settle(answers, timeout=150)
    o = s.outcome
    o.other = other_answers(answers)
    during = between(answers, stopping, up_at)
    o.p95_fault_ms = p95(during)
    o.recovery_s = backlog_recovery([a for a in answers if a.status == 202], mails, up_at)
    after = [a.sent_at for a in answers if a.sent_at > up_at and a.status == 202]
    refused = [a for a in answers if a.status == 503]
    created = s.db.user_emails()
    refused_but_created = [a.email for a in refused if a.email in created]
    o.notes += [
        f"restart took {up_at - stopping:.1f} s; {len(during)} signups sent meanwhile:"
        f" {other_answers(during) or 'all 202'}; {len(answers)} sent at {RATE:g}/s,"
        f" {load.late} late",
        f"first 202 {min(after) - up_at:.2f} s after the restart; health after: {health[0]};"
        f" answered 503 but committed: {len(refused_but_created)}",
    ]

    statuses = {a.status for a in answers}
    assert statuses <= {202, 503}, f"answers other than 202/503: {other_answers(answers)}"
    for answer in refused:
        body = answer.json()
        assert isinstance(body, dict), answer.body
        assert isinstance(body.get("detail"), str), body
        assert answer.headers.get("Retry-After"), answer.headers
    assert health[0] == 200, health
    s.check_settled()
    assert o.duplicates == 0
    assert all(len(mails.get(e, ())) == 1 for e in refused_but_created)
