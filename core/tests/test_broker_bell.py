"""The Redis broker's doorbell (core.broker.BELL_SUFFIX): an enqueue rings its
queue's bell, and an idle consumer waits on the bell instead of polling, on
the real Redis broker."""

import os
import threading
import time

import dramatiq
import pytest

from conftest import wait_until
from core.broker import BELL_BLOCK_MAX_MS, BELL_TOKENS, BUSY_POLL_MS, FastFailRedisBroker
from core.testing import free_port
from messaging import tasks


@pytest.fixture
def broker():
    return dramatiq.get_broker()


def bell(broker, queue: str = "email") -> list[bytes]:
    return broker.client.lrange(broker.bell_key(queue), 0, -1)


def blocked_on_bell(broker) -> bool:
    """A client of this test's Redis database is blocked in BLPOP now (flag b;
    the server is shared, and cmd is the last command, blocked or not)."""
    db = broker.client.connection_pool.connection_kwargs["db"]
    return any(
        c["cmd"] == "blpop" and "b" in c["flags"] and int(c["db"]) == db
        for c in broker.client.client_list()
    )


def test_an_enqueue_rings_its_queues_bell_and_the_bell_stays_bounded(broker):
    tasks.send_email.send(1)
    assert len(bell(broker)) == 1

    for n in range(3 * BELL_TOKENS):
        tasks.send_email.send(n)

    assert len(bell(broker)) == BELL_TOKENS  # no worker ran: tokens trimmed, not piled up
    assert broker.client.llen(f"{broker.namespace}:email") == 3 * BELL_TOKENS + 1


def test_a_delayed_message_rings_nothing(broker):
    """A retry rings when the DQ consumer moves it to its main queue
    (broker.enqueue), not while it waits."""
    tasks.send_email.send_with_options(args=(1,), delay=60_000)
    assert bell(broker) == []
    assert bell(broker, "email.DQ") == []


def test_an_idle_consumer_returns_none_after_its_block_timeout(broker):
    consumer = broker.consume("email", prefetch=4, timeout=200)
    started = time.monotonic()
    assert next(consumer) is None
    assert 0.18 <= time.monotonic() - started < 0.6


def test_a_blocked_consumer_has_an_enqueued_message_within_milliseconds(broker):
    consumer = broker.consume("email", prefetch=4, timeout=1000)  # the worker timeout
    got: list = []

    def consume() -> None:
        for message in consumer:
            if message is not None:
                got.append((time.perf_counter(), message))
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    wait_until(lambda: blocked_on_bell(broker), timeout=2, interval=0.01)

    sent_at = time.perf_counter()
    sent = tasks.send_email.send(7)
    thread.join(2)

    assert got, "the consumer never got the message"
    received_at, message = got[0]
    assert message.message_id == sent.message_id
    assert received_at - sent_at < 0.05


def test_a_bell_rung_before_the_wait_is_not_lost(broker):
    """An enqueue between a consumer's empty fetch and its BLPOP left a token."""
    tasks.send_email.send(1)
    started = time.monotonic()
    assert broker.wait_for_bell("email", 1000) is True
    assert time.monotonic() - started < 0.05


def test_a_wait_blocks_a_worker_timeout_at_most_and_outlasts_the_fast_fail_timeout(broker):
    """The BLPOP has a client of its own: on fast_fail_redis (socket timeout
    REDIS_SOCKET_TIMEOUT, 1 s) a full one-second block would time out."""
    started = time.monotonic()
    assert broker.wait_for_bell("email", 60_000) is False
    assert BELL_BLOCK_MAX_MS / 1000 - 0.05 <= time.monotonic() - started < 1.5


def test_a_consumer_with_its_prefetch_full_leaves_the_bell_to_others(broker):
    """It cannot fetch what the bell announces; another worker's consumer can."""
    tasks.send_email.send(1)
    consumer = broker.consume("email", prefetch=1, timeout=1000)
    assert next(consumer) is not None  # in flight: the prefetch is full
    tasks.send_email.send(2)

    started = time.monotonic()
    assert next(consumer) is None
    assert time.monotonic() - started < 2 * BUSY_POLL_MS / 1000
    assert len(bell(broker)) == 2


def test_a_delay_queue_consumer_backs_off_without_the_bell(broker):
    tasks.send_email.send(1)  # a token on email's bell, none on email.DQ's
    consumer = broker.consume("email.DQ", prefetch=4, timeout=1000)

    started = time.monotonic()
    assert next(consumer) is None
    assert time.monotonic() - started < 0.1  # Dramatiq's first backoff, not a 1 s block
    assert not blocked_on_bell(broker)
    assert len(bell(broker)) == 1


def test_an_enqueue_after_redis_lost_its_scripts_loads_them_and_enqueues_once(broker, monkeypatch):
    """A restarted Redis answers NOSCRIPT: the pipeline's EVALSHA enqueued nothing."""
    monkeypatch.setattr(broker.scripts["dispatch"], "sha", "0" * 40)
    tasks.send_email.send(1)
    assert broker.client.llen(f"{broker.namespace}:email") == 1
    assert bell(broker)


def test_a_wait_on_an_unreachable_redis_closes_the_consumer():
    """ConnectionClosed, as on a fetch: Dramatiq's consumer thread restarts it."""
    broker = FastFailRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(dramatiq.errors.ConnectionClosed):
            broker.wait_for_bell("email", 100)
    finally:
        broker.close()


@pytest.fixture
def own_broker():
    broker = FastFailRedisBroker(url=os.environ["REDIS_URL"], namespace="test-bell-worker")
    yield broker
    broker.close()


def test_an_idle_worker_runs_a_message_within_milliseconds_and_stops_within_a_second(own_broker):
    ran = threading.Event()
    actor = dramatiq.Actor(lambda: ran.set(), broker=own_broker, actor_name="ring",
                           queue_name="bells", priority=0, options={})  # fmt: skip
    worker = dramatiq.Worker(own_broker, worker_threads=1, worker_timeout=1000)
    worker.start()
    try:
        time.sleep(0.3)  # its consumers are idle, blocked on the bell
        sent_at = time.perf_counter()
        actor.send()
        assert ran.wait(2)
        assert time.perf_counter() - sent_at < 0.05
    finally:
        started = time.monotonic()
        worker.stop()
        assert time.monotonic() - started < 2.5
