"""Redis restart with its data: AOF on (fsync always), stopped and started
again while workers hold retries, under load.

The mail provider refuses (451) for 12 s, so many messages wait for a
retry: in the delay queues, or already fetched by the worker, which holds
each until its backoff is over. Then Redis restarts (SIGTERM, AOF written,
started again on its port). Redis comes back with its queues and the
relay's marker, so the relay must not take it for an emptied broker (no
mass re-enqueue), and every email must still arrive exactly once.
"""

import time

import pytest
import redis

from loadtests.faults.harness import AofRedisServer, backlog_recovery, between, other_answers, p95

pytestmark = pytest.mark.timeout(600)

RATE = 8.0
BEFORE, REFUSING, DOWN, AFTER = 8.0, 12.0, 1.0, 15.0
NS = "payshift-faults"


def retrying(url: str) -> int:
    """Messages waiting for a retry: in the delay queues and held by workers."""
    client = redis.Redis.from_url(url)
    try:
        held = sum(client.scard(k) for k in client.scan_iter(f"{NS}:__acks__.*.DQ"))
        return held + sum(client.llen(f"{NS}:{q}.DQ") for q in ("email", "notifications"))
    finally:
        client.close()


def test_a_redis_restart_with_aof_keeps_the_retries_and_sends_each_once(scenario):
    s = scenario("8 Redis restart (AOF), retries held", redis_server_class=AofRedisServer)
    load = s.load(rate=RATE)
    time.sleep(BEFORE)
    s.sink.refuse("451 4.3.0 Mail server temporarily unavailable")
    time.sleep(REFUSING)
    held = retrying(s.redis.url)
    worker_log = s.stack.results / "worker.log"
    log_at_stop = worker_log.stat().st_size
    down_at = time.time()
    s.redis.stop()
    time.sleep(DOWN)
    s.redis.start()
    up_at = time.time()
    held_after = retrying(s.redis.url)
    s.sink.accept()
    time.sleep(AFTER)
    answers = load.stop()

    mails = s.settle(answers, timeout=180)
    o = s.outcome
    o.other = other_answers(answers)
    o.p95_fault_ms = p95(between(answers, down_at, up_at))
    o.recovery_s = backlog_recovery([a for a in answers if a.status == 202], mails, up_at)
    with open(worker_log, "rb") as log:
        log.seek(log_at_stop)  # the first pass on the brand-new Redis also says so: harmless
        relayed_as_lost = log.read().count(b"relay broker=new-or-emptied")
    o.notes += [
        f"retries waiting when Redis stopped: {held}; after its restart: {held_after};"
        f" restart took {up_at - down_at:.1f} s; relay passes that took it for an emptied"
        f" broker: {relayed_as_lost}",
        f"{len(answers)} sent at {RATE:g}/s, {load.late} late; recover s: from the restart",
    ]
    assert held > 0, "no retries were waiting: the scenario did not test what it says"
    assert held_after > 0, "the retries did not survive the restart: is AOF on?"
    assert relayed_as_lost == 0
    assert other_answers(answers) == ""
    s.check_settled()
    assert o.duplicates == 0
