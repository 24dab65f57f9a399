"""The broker gives back the retries a worker held when its connection to
Redis dropped (core.broker.FastFailRedisBroker.consume)."""

import os

import dramatiq
import pytest

from core.broker import FastFailRedisBroker


@pytest.fixture
def broker():
    broker = FastFailRedisBroker(url=os.environ["REDIS_URL"], namespace="test-held-retries")
    broker.client.flushdb()
    yield broker
    broker.client.flushdb()
    broker.close()


def fetch_one(broker, queue: str):
    consumer = broker.consume(queue, prefetch=10, timeout=100)
    for _ in range(20):
        message = next(consumer)
        if message is not None:
            return message
    return None


def test_a_reconsumed_delay_queue_gets_back_what_this_worker_held(broker):
    actor = dramatiq.Actor(lambda x: None, broker=broker, actor_name="held", queue_name="mail",
                           priority=0, options={})  # fmt: skip
    actor.send_with_options(args=(1,), delay=60_000)

    held = fetch_one(broker, "mail.DQ")  # fetched, held in memory until its eta
    assert held is not None
    acks = f"test-held-retries:__acks__.{broker.broker_id}.mail.DQ"
    assert broker.client.scard(acks) == 1

    # The connection dropped: Dramatiq's consumer thread forgot the message
    # and consumes the queue again.
    again = fetch_one(broker, "mail.DQ")
    assert again is not None
    assert again.message_id == held.message_id
    assert again.options["eta"] == held.options["eta"]  # still waits for its backoff


def test_the_first_consumer_and_work_queues_requeue_nothing(broker):
    actor = dramatiq.Actor(lambda x: None, broker=broker, actor_name="held", queue_name="mail",
                           priority=0, options={})  # fmt: skip
    actor.send(1)
    assert fetch_one(broker, "mail") is not None
    assert fetch_one(broker, "mail") is None  # the work queue's in-memory messages stay there
