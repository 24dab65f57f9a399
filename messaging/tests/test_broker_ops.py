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
