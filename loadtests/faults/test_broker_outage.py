"""Broker outage: Redis (broker and cache) stopped for 30 s under steady signup load.

Signups must keep answering 202 within the latency bound (the request never
waits on the broker), and once Redis is back, empty, every email must arrive
with nobody doing anything: the relay re-enqueues what the outage left.

The mail provider is slow before the outage (1 s per recipient, 4 worker
threads: 4 emails/s for 8 signups/s), so the email queue is deep when Redis
goes: those messages were enqueued, and are gone with Redis's memory.
"""

import time

import pytest

from loadtests.faults.harness import backlog_recovery, between, get_json, other_answers, p95

pytestmark = pytest.mark.timeout(600)

RATE = 8.0  # signups/s
BEFORE, OUTAGE, AFTER = 10.0, 30.0, 15.0
P95_LIMIT_MS = 100.0
# On a busy shared machine the signup p95 is already far above 100 ms before
# the outage (1650 ms seen): then the gate is that the outage adds nothing
# (at most 1.5x the p95 before it); on a quiet machine it stays 100 ms.
LOADED_FACTOR = 1.5


def test_signups_answer_through_a_broker_outage_and_every_email_arrives(scenario):
    s = scenario("1 broker outage 30 s")
    s.sink.handler.rcpt_delay = 1.0
    load = s.load(rate=RATE)
    time.sleep(BEFORE)

    s.redis.stop()
    down_at = time.time()
    queued = s.db.rows(
        "SELECT count(*) FROM messaging_outbox WHERE state = 'pending' AND enqueued_at IS NOT NULL"
    )[0][0]
    s.sink.handler.rcpt_delay = 0.0
    time.sleep(OUTAGE / 2)
    health_during = get_json(s.port, "/api/v1/health")
    ready_during = get_json(s.port, "/api/v1/health/ready")
    time.sleep(max(0.0, down_at + OUTAGE - time.time()))
    s.redis.start()
    up_at = time.time()
    time.sleep(AFTER)
    answers = load.stop()

    mails = s.settle(answers, timeout=150)
    o = s.outcome
    o.other = other_answers(answers)
    o.p95_fault_ms = p95(between(answers, down_at, up_at))
    o.recovery_s = backlog_recovery([a for a in answers if a.status == 202], mails, up_at)
    before = p95(between(answers, 0, down_at))
    after = p95(between(answers, up_at, float("inf")))
    o.notes.append(
        f"signup p95 ms before/during/after: {before:.1f}/{o.p95_fault_ms:.1f}/{after:.1f};"
        f" {len(answers)} sent at {RATE:g}/s, {load.late} late;"
        f" health during the outage: {health_during[0]} {health_during[1]},"
        f" ready: {ready_during[0]} {ready_during[1]['status']};"
        f" {queued} outbox rows were enqueued and waiting when Redis stopped"
    )

    assert other_answers(answers) == "", "every signup must be answered 202"
    assert health_during == (503, {"status": "error", "database": "ok", "broker": "error"})
    # A load balancer keeps the node: signups still succeed.
    assert ready_during == (200, {"status": "degraded", "database": "ok", "broker": "error"})
    assert o.p95_fault_ms < max(P95_LIMIT_MS, LOADED_FACTOR * before)
    s.check_settled()
    assert o.duplicates == 0
