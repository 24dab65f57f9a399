"""RabbitMQ as the broker (BROKER_URL=amqp://...): the broker-neutral operations
the relay, health and queue_status use, on the machine's real RabbitMQ.

End to end (web, worker, every email once) on RabbitMQ: `tox -e rabbitmq`.
"""

import os
import socket
import time
import uuid

import dramatiq
import pika
import pytest

from core.broker import BROKER_ERRORS, RELAY_MARK, FastFailRabbitmqBroker
from core.broker_config import broker_settings
from core.testing import free_port

URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.fixture
def broker():
    broker = FastFailRabbitmqBroker(url=URL, confirm_delivery=True)
    yield broker
    broker.close()


@pytest.fixture
def queue(broker):
    name = f"payshift-test-{uuid.uuid4().hex[:8]}"
    broker.declare_queue(name)
    yield name
    channel = pika.BlockingConnection(broker.parameters).channel()
    for q in (name, dramatiq.common.dq_name(name), dramatiq.common.xq_name(name)):
        channel.queue_delete(q)
    channel.connection.close()


def test_the_scheme_picks_the_broker():
    assert broker_settings(URL, namespace="n", heartbeat_timeout_ms=1)[0].endswith(
        "FastFailRabbitmqBroker"
    )
    redis_class, options = broker_settings(
        "redis://x:6379/0", namespace="n", heartbeat_timeout_ms=1
    )
    assert redis_class.endswith("FastFailRedisBroker")
    assert options["namespace"] == "n"


def test_ping_and_queue_counts(broker, queue):
    assert broker.ping()
    message = dramatiq.Message(queue_name=queue, actor_name="a", args=(1,), kwargs={}, options={})
    broker.enqueue(message)
    broker.enqueue(message.copy(), delay=60_000)
    counts = broker.queue_counts(queue)
    assert (counts["ready"], counts["delayed"], counts["dead"]) == (1, 1, 0)
    assert counts["in flight"] is None  # only RabbitMQ's management API knows


def test_a_missing_queue_counts_zero(broker):
    assert broker.queue_counts(f"never-declared-{uuid.uuid4().hex[:8]}")["ready"] == 0


def test_data_lost_once_when_the_mark_queue_is_missing(broker):
    channel = pika.BlockingConnection(broker.parameters).channel()
    channel.queue_delete(RELAY_MARK)
    channel.connection.close()
    assert broker.data_lost() is True  # a new (or wiped) broker: relay everything once
    assert broker.data_lost() is False


def test_a_down_broker_fails_fast_with_a_broker_error():
    down = FastFailRabbitmqBroker(url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    started = time.monotonic()
    with pytest.raises(BROKER_ERRORS):
        down.ping()
    message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    with pytest.raises(BROKER_ERRORS):
        down.enqueue(message)
    assert time.monotonic() - started < 2.0


def test_a_broker_that_accepts_but_never_answers_fails_fast_with_a_broker_error():
    """As RabbitMQ can while it stops: the connection is accepted, the AMQP
    handshake never answered. pika's default handshake timeout is 15 s, and
    its error is not an AMQPError: it must still be a broker error (the
    breaker opens) and come within the fail-fast bound."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        broker = FastFailRabbitmqBroker(url=f"amqp://guest:guest@127.0.0.1:{port}/%2F")
        broker.queues.add("q")  # declared already: the enqueue goes straight to publishing
        message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
        started = time.monotonic()
        with pytest.raises(BROKER_ERRORS):
            broker.enqueue(message)
        with pytest.raises(BROKER_ERRORS):
            broker.ping()

    assert time.monotonic() - started < 2.0
