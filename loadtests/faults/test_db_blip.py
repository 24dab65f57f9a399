"""Database blip: every connection to the service's database dropped, a few times, under load.

pg_terminate_backend on all of payshift_faults's backends (web, worker,
relay), every 20 ms for one second (new connections too, as they connect or
query), three times. A request caught by it must
fail cleanly (503 with {"detail": ...} and Retry-After, never a 500), the
service must recover by itself, no account may be half created, and every
accepted signup's email must arrive once.
"""

import time

import pytest

from loadtests.faults.harness import backlog_recovery, get_json, other_answers, p95

pytestmark = pytest.mark.timeout(900)

RATE = 8.0
BLIPS_AT = (10.0, 18.0, 26.0)  # seconds into the load
BLIP_SECONDS, BLIP_EVERY = 1.0, 0.02
AFTER = 10.0


def test_dropped_database_connections_fail_cleanly_and_leave_no_half_account(scenario):
    s = scenario("4 DB connections dropped 3x")
    load = s.load(rate=RATE)
    started = time.monotonic()
    windows: list[tuple[float, float]] = []
    terminated = 0
    for at in BLIPS_AT:
        time.sleep(max(0.0, started + at - time.monotonic()))
        begin = time.time()
        terminated += s.db.blip(BLIP_SECONDS, BLIP_EVERY)
        windows.append((begin, time.time()))
    last_blip = windows[-1][1]
    time.sleep(AFTER)
    answers = load.stop()
    health = get_json(s.port, "/api/v1/health")

    mails = s.settle(answers, timeout=150)
    o = s.outcome
    o.other = other_answers(answers)
    during = [a for a in answers if any(lo <= a.sent_at < hi for lo, hi in windows)]
    o.p95_fault_ms = p95(during)
    o.recovery_s = backlog_recovery([a for a in answers if a.status == 202], mails, last_blip)
    refused = [a for a in answers if a.status == 503]
    created = s.db.user_emails()
    refused_but_created = [a.email for a in refused if a.email in created]
    after = [a.sent_at for a in answers if a.sent_at > last_blip and a.status == 202]
    o.notes += [
        f"{terminated} backends terminated in 3 blips; {len(during)} signups sent during them:"
        f" {other_answers(during) or 'all 202'};"
        f" {len(answers)} sent at {RATE:g}/s, {load.late} late",
        f"first 202 {min(after) - last_blip:.2f} s after the last blip; health after: {health[0]};"
        f" answered 503 but committed: {len(refused_but_created)} (their email:"
        f" {sum(1 for e in refused_but_created if e in mails)})",
    ]

    statuses = {a.status for a in answers}
    assert statuses <= {202, 503}, f"answers other than 202/503: {other_answers(answers)}"
    for answer in refused:
        body = answer.json()
        assert isinstance(body, dict), answer.body
        assert isinstance(body.get("detail"), str), body
        assert answer.headers.get("Retry-After"), answer.headers
    assert health[0] == 200, health
    assert s.db.incomplete_accounts() == []
    s.check_settled()
    assert o.duplicates == 0
    # An account committed although its answer was a 503 still gets its email, once.
    assert all(len(mails.get(e, ())) == 1 for e in refused_but_created)
