"""Graceful stop: SIGTERM of a web node and of the worker under Poisson load.

Two web nodes behind nginx (loadtests.faults.balancer), one worker node,
Poisson signups at the CI rate, each with an Idempotency-Key.

- Web: two signups sent straight to node 1 and held 1 s in their gunicorn
  workers (gunicorn_delay_conf.py) are surely in flight when its master gets
  SIGTERM: gunicorn stops listening, lets its workers finish what they hold
  (graceful_timeout, 30 s) and exits. Both are answered 202, after the
  SIGTERM; the client sees no failure at all (a connection the stopping node
  refuses or resets is nginx's to retry on node 2).
- Worker: the mail provider answers slowly (1 s per recipient), so each of
  the 4 threads holds a message mid-send and more are fetched behind them.
  SIGTERM to rundramatiq's supervisor (as an orchestrator stops a container):
  Dramatiq stops fetching, finishes the messages in hand, gives back the
  fetched ones (no ack set left in Redis), the outbox relay stops, and the
  process exits well inside its grace. A new worker then sends the rest:
  every email exactly once.
"""

import os
import time

import pytest

from loadtests.faults.deploy import (
    GUNICORN_GRACE_S,
    acks_held,
    ci_rate,
    finished_after,
    slow_requests,
)
from loadtests.faults.harness import other_answers, p95

pytestmark = pytest.mark.timeout(600)

DELAY_CONF = str(os.path.join(os.path.dirname(__file__), "gunicorn_delay_conf.py"))
HELD_S = 1.0  # how long the two probe requests stay in their workers
WORKER_GRACE_S = 30.0  # the test's limit; Dramatiq's shutdown timeout is 10 minutes


def test_sigterm_finishes_in_flight_requests_and_messages(scenario, balancer):
    s = scenario("12 SIGTERM web and worker", web_nodes=2, web_config=DELAY_CONF)
    lb = balancer([s.port, *s.stack.more_ports])
    rate, hash_ms = ci_rate()
    load = s.load(rate=rate, port=lb.port, arrivals="poisson", idempotency=True, threads=16)
    time.sleep(5)

    probes = slow_requests(s.port, 2, HELD_S, prefix=f"12probe-{time.time_ns() % 10**9}")
    time.sleep(0.3)
    web_term = time.time()
    web_stop_s, web_status = s.stack.stop_process("web", timeout=GUNICORN_GRACE_S + 10)
    held_answers = probes()
    time.sleep(3)

    s.sink.handler.rcpt_delay = 1.0
    time.sleep(4)
    in_hand = [pk for (pk,) in s.db.rows("SELECT id FROM messaging_outbox WHERE state = 'sending'")]
    worker_stop_s, worker_status = s.stack.stop_process("worker", timeout=WORKER_GRACE_S)
    worker_exit = time.time()
    left_fetched = acks_held(s.redis.url, s.stack.namespace)
    [(unsent,)] = s.db.rows(
        "SELECT count(*) FROM messaging_outbox WHERE id = ANY(%s)"
        " AND (sent_at IS NULL OR sent_at > to_timestamp(%s))",
        (in_hand, worker_exit),
    )
    s.sink.handler.rcpt_delay = 0.05
    s.stack.spawn_worker(name="worker-new")
    time.sleep(5)
    answers = load.stop()

    mails = s.settle([*answers, *held_answers], timeout=120)
    o = s.outcome
    o.other = other_answers(answers + held_answers)
    requests = lb.requests()
    in_flight = finished_after(requests, s.port, web_term)
    log = (s.stack.results / "worker.log").read_text()
    o.notes += [
        f"{len(answers)} Poisson signups at {rate:g}/s (one hash {hash_ms:.0f} ms) through"
        f" nginx, {load.late} late,"
        f" p95 {p95(answers):.0f} ms; retried by nginx: {sum(r.retried for r in requests)}"
        f" (node 1's backlog reset at its exit, or refused)",
        f"web: SIGTERM with 2 held requests + {len(in_flight)} others in flight on node 1;"
        f" all answered {sorted({a.status for a in held_answers})}; exited ({web_status})"
        f" in {web_stop_s:.1f} s",
        f"worker: SIGTERM holding {len(in_hand)} rows mid-send; exited ({worker_status}) in"
        f" {worker_stop_s:.1f} s; of those, sent after its exit: {unsent};"
        f" fetched messages left unacked: {left_fetched}",
    ]
    assert [a.status for a in held_answers] == [202, 202]
    assert all(a.sent_at + a.ms / 1000 > web_term for a in held_answers)
    assert HELD_S - 0.5 < web_stop_s < GUNICORN_GRACE_S
    assert web_status == 0
    assert other_answers(answers) == ""
    assert in_hand, "the worker held no message at its SIGTERM"
    assert unsent == 0, "the stopping worker did not finish what it held"
    assert left_fetched == 0, "fetched messages were not given back"
    assert worker_status == 0
    assert "relay outcome=stopped" in log
    assert "Traceback" not in log
    s.check_settled()
    assert o.duplicates == 0, {a: t for a, t in mails.items() if len(t) > 1}
