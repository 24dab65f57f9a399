"""SMTP stall: the mail server holds its answer to DATA past the actor's time
limit, for 20 s under load (issue 10, item 1).

The worker runs with a 2 s time limit and a 10 s SMTP timeout (above the
limit on purpose: the time limit, not the socket, must end the attempt)
and a 30 s claim timeout. The sink holds each DATA answer 4 s, then says
451 (it keeps no stalled message). Dramatiq's TimeLimitExceeded is a
BaseException: before the fix, an interrupted attempt left its row SENDING
with no error until the claim timeout, and the retry found nothing to claim.
Now each one must leave its row PENDING with its error at once, and every
email arrive once when the stall ends.
"""

import time

import pytest

from loadtests.faults.harness import backlog_recovery, between, other_answers, p95

pytestmark = pytest.mark.timeout(600)

RATE = 4.0
BEFORE, STALL, AFTER = 5.0, 20.0, 10.0
LIMIT_MS, CLAIM_S, STALL_S = 2000, 30, 4.0


def test_a_stalled_mail_server_leaves_every_attempt_in_a_named_state(scenario):
    s = scenario(
        "9 SMTP stalls past the time limit",
        OUTBOX_TIME_LIMIT_MS=LIMIT_MS,
        EMAIL_TIMEOUT=10,
        OUTBOX_CLAIM_TIMEOUT_SECONDS=CLAIM_S,
    )
    load = s.load(rate=RATE)
    time.sleep(BEFORE)
    s.sink.refuse("451 4.4.2 Content filter timed out")
    s.sink.handler.stall_seconds = STALL_S
    stalled_at = time.time()
    interrupted: set[int] = set()
    longest_claim = 0.0
    while time.time() < stalled_at + STALL:
        for pk, state, error, age in s.db.rows(
            "SELECT id, state, last_error, extract(epoch FROM now() - claimed_at)"
            " FROM messaging_outbox WHERE state = 'sending'"
            " OR last_error LIKE 'TimeLimitExceeded%%'"
        ):
            if error.startswith("TimeLimitExceeded"):
                interrupted.add(pk)
            if state == "sending" and age is not None:
                longest_claim = max(longest_claim, float(age))
        time.sleep(0.5)
    s.sink.handler.stall_seconds = 0.0
    s.sink.accept()
    ended_at = time.time()
    time.sleep(AFTER)
    answers = load.stop()

    mails = s.settle(answers, timeout=240)
    o = s.outcome
    o.other = other_answers(answers)
    o.p95_fault_ms = p95(between(answers, stalled_at, ended_at))
    o.recovery_s = backlog_recovery([a for a in answers if a.status == 202], mails, ended_at)
    [(most_attempts,)] = s.db.rows("SELECT max(attempts) FROM messaging_outbox")
    o.notes += [
        f"time limit {LIMIT_MS} ms, stall {STALL_S:g} s per DATA for {STALL:g} s:"
        f" {s.sink.handler.stalled} answers held; {len(interrupted)} rows seen PENDING with"
        f" TimeLimitExceeded; longest claim seen {longest_claim:.1f} s (claim timeout {CLAIM_S} s)",
        f"{len(answers)} sent at {RATE:g}/s, {load.late} late; most attempts for one row:"
        f" {most_attempts}",
    ]
    assert other_answers(answers) == ""
    assert interrupted, "no attempt was ended by the time limit: the scenario did not stall"
    # An interrupted attempt gives its row back at once, not at the claim timeout.
    assert longest_claim < STALL_S + 6, longest_claim
    s.check_settled()
    assert o.duplicates == 0
