"""The broker-neutral operations of core.broker on the real Redis broker
(their RabbitMQ twins: test_rabbitmq.py)."""

import dramatiq
import pytest

from core.broker import RELAY_MARK
from messaging import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    return dramatiq.get_broker()


def test_data_lost_is_true_once_per_empty_broker(broker):
    broker.client.delete(f"{broker.namespace}:{RELAY_MARK}")
    assert broker.data_lost() is True
    assert broker.data_lost() is False
    broker.client.flushdb()  # Redis restarted without its data
    assert broker.data_lost() is True


def test_queue_counts_show_messages_held_for_a_retry(broker):
    """A message waiting out its backoff sits in a worker's DQ ack set: 'retrying'
    (queue_status showed 0 everywhere while five rows were retrying)."""
    tasks.send_email.send(1)
    tasks.send_email.send_with_options(args=(2,), delay=60_000)
    ns, worker = broker.namespace, "worker-a"
    broker.client.sadd(f"{ns}:__acks__.{worker}.email.DQ", "retry-1", "retry-2")
    broker.client.sadd(f"{ns}:__acks__.{worker}.email", "fetched-1")

    counts = broker.queue_counts("email")

    assert counts == {"ready": 1, "delayed": 1, "in flight": 1, "retrying": 2, "dead": 0}


def test_only_worker_processes_count_as_live_workers(broker):
    tasks.send_email.send(1)  # a web process enqueues: Dramatiq heartbeats it too
    assert broker.live_workers() == 0
    broker.worker_alive("host:101")
    broker.worker_alive("host:102")
    broker.worker_alive("host:101")
    assert broker.live_workers() == 2


def test_a_stopping_consumer_gives_back_what_it_fetched_and_never_handed_out(broker):
    """Dramatiq's Redis consumer fetches a batch (ids into this worker's ack
    set) and hands messages out one at a time; a worker told to stop breaks
    off mid-batch. The rest stayed in the ack set of a live-looking worker
    until its heartbeat expired (the graceful-stop fault scenario, one
    message in a CI run): closing the consumer puts them back at once."""
    for n in range(5):
        tasks.send_email.send(n)
    ns, acks = broker.namespace, f"{broker.namespace}:__acks__.{broker.broker_id}.email"
    consumer = broker.consume("email", prefetch=5)
    first = next(consumer)
    assert broker.client.scard(acks) == 5

    consumer.close()

    assert broker.client.smembers(acks) == {first.options["redis_message_id"].encode()}
    assert broker.client.llen(f"{ns}:email") == 4
