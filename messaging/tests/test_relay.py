"""The outbox relay: which rows it enqueues again, outages, several relays at once."""

import logging
import threading
import time
from datetime import timedelta

import dramatiq
import pytest
import redis
from django.db import connection
from django.utils import timezone
from dramatiq.broker import MessageProxy
from dramatiq.message import Message

from conftest import wait_until
from core.breaker import broker_breaker
from core.broker import FastFailRedisBroker
from core.testing import free_port
from messaging import relay, services, tasks
from messaging.middleware import OutboxRetries, RelayMiddleware
from messaging.models import Outbox
from messaging.relay import relay_once
from messaging.tests.conftest import point_broker_at, queued_ids
from signup.messages import ANNOUNCE_NEW_USER

GRACE, STALE, CLAIM = 10, 300, 90


@pytest.fixture(autouse=True)
def _outbox_timings(settings):
    settings.OUTBOX_GRACE_SECONDS = GRACE
    settings.OUTBOX_STALE_SECONDS = STALE
    settings.OUTBOX_CLAIM_TIMEOUT_SECONDS = CLAIM


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


@pytest.mark.django_db
def test_a_row_never_enqueued_is_relayed_after_the_grace_only(make_row):
    due = make_row(created_at=ago(GRACE + 1))
    young = make_row(created_at=ago(GRACE - 2))

    assert relay_once() == 1

    assert queued_ids("email") == [due.pk]
    due.refresh_from_db()
    assert due.enqueued_at is not None
    assert due.state == Outbox.State.PENDING
    young.refresh_from_db()
    assert young.enqueued_at is None
    # Enqueued once: the next pass leaves it alone.
    assert relay_once() == 0
    assert queued_ids("email") == [due.pk]


@pytest.mark.django_db
def test_announcements_go_to_their_own_queue(make_row):
    row = make_row(kind=ANNOUNCE_NEW_USER, created_at=ago(GRACE + 1))
    assert relay_once() == 1
    assert queued_ids("notifications") == [row.pk]
    assert queued_ids("email") == []


@pytest.mark.django_db
def test_a_row_enqueued_long_ago_is_relayed_but_not_one_waiting_in_a_long_queue(make_row):
    lost = make_row(created_at=ago(STALE + 60), enqueued_at=ago(STALE + 1))
    waiting = make_row(created_at=ago(STALE + 60), enqueued_at=ago(STALE - 30))

    assert relay_once() == 1

    assert queued_ids("email") == [lost.pk]
    lost.refresh_from_db()
    assert lost.enqueued_at > ago(5)
    waiting.refresh_from_db()
    assert waiting.enqueued_at < ago(STALE - 31)


@pytest.mark.django_db
def test_a_stale_claim_is_relayed_once_but_not_a_live_one(make_row):
    dead = make_row(
        state=Outbox.State.SENDING,
        created_at=ago(600),
        enqueued_at=ago(500),
        claimed_at=ago(CLAIM + 1),
    )
    make_row(
        state=Outbox.State.SENDING,
        created_at=ago(600),
        enqueued_at=ago(500),
        claimed_at=ago(CLAIM - 5),
    )

    assert relay_once() == 1

    assert queued_ids("email") == [dead.pk]
    dead.refresh_from_db()
    assert dead.enqueued_at > ago(5)
    # While that message waits in the queue, later passes do not pile up copies.
    assert relay_once() == 0
    assert queued_ids("email") == [dead.pk]
    # If that message is lost as well, the row is relayed again once it is stale.
    Outbox.objects.filter(pk=dead.pk).update(enqueued_at=ago(STALE + 1))
    assert relay_once() == 1


@pytest.mark.django_db
def test_finished_rows_are_left_alone(make_row):
    for state in (Outbox.State.SENT, Outbox.State.FAILED):
        make_row(state=state, created_at=ago(STALE * 2))
        make_row(state=state, created_at=ago(STALE * 2), enqueued_at=ago(STALE * 2))
    assert relay_once() == 0
    assert queued_ids("email") == []


@pytest.mark.django_db
def test_rows_are_relayed_in_batches(make_row):
    rows = [make_row(created_at=ago(GRACE + 1)) for _ in range(5)]
    assert relay_once(batch=2) == 2
    assert relay_once(batch=2) == 2
    assert relay_once(batch=2) == 1
    assert relay_once(batch=2) == 0
    assert queued_ids("email") == sorted(r.pk for r in rows)


@pytest.mark.django_db
def test_broker_unreachable_leaves_rows_alone_and_recovers_by_itself(
    make_row, monkeypatch, settings
):
    settings.REDIS_BREAKER_SECONDS = 0.3
    row = make_row(created_at=ago(GRACE + 1))
    with monkeypatch.context() as patch:
        point_broker_at(patch, f"redis://127.0.0.1:{free_port()}/0")

        assert relay_once() == 0
        assert broker_breaker.is_open
        assert relay_once() == 0  # breaker open: not even tried
        row.refresh_from_db()
        assert (row.state, row.enqueued_at) == (Outbox.State.PENDING, None)

    # The broker is back; the breaker closes after its open time, no reset.
    assert relay_once() == 0
    time.sleep(0.35)
    assert relay_once() == 1
    assert queued_ids("email") == [row.pk]
    row.refresh_from_db()
    assert row.enqueued_at is not None


@pytest.mark.django_db
def test_rows_whose_messages_went_with_an_emptied_broker_are_relayed_at_once(make_row, monkeypatch):
    waiting = make_row(created_at=ago(GRACE + 1), enqueued_at=ago(5))  # its message is gone
    retrying = make_row(created_at=ago(60), enqueued_at=ago(30), attempts=2)
    sending = make_row(state=Outbox.State.SENDING, enqueued_at=ago(5), claimed_at=ago(1))
    sent = make_row(state=Outbox.State.SENT, enqueued_at=ago(5))
    # The Redis of this test was just flushed: as after a restart without persistence.
    assert relay.broker_data_lost()
    assert relay.relay_after_broker_loss() == 2
    assert relay_once() == 2
    assert queued_ids("email") == sorted([waiting.pk, retrying.pk])
    for row in (sending, sent):
        row.refresh_from_db()
        assert row.enqueued_at is not None  # a live worker owns it, or it is done

    # The marker is there now: one relay saw the loss, the next pass does not.
    assert not relay.broker_data_lost()
    with monkeypatch.context() as patch:
        point_broker_at(patch, f"redis://127.0.0.1:{free_port()}/0")
        assert not relay.broker_data_lost()  # unreachable: cannot tell yet


def test_the_relay_gives_back_what_a_dead_worker_had_fetched_and_leaves_live_ones(settings):
    broker = dramatiq.get_broker()
    ns, client = broker.namespace, broker.client

    def worker_fetching(outbox_id: int, heartbeat_ms: int) -> FastFailRedisBroker:
        other = FastFailRedisBroker(url=settings.REDIS_URL, namespace=ns)
        other.declare_queue("email")
        tasks.send_email.send(outbox_id)
        [_] = other.do_fetch("email", 1)
        client.zadd(f"{ns}:__heartbeats__", {other.broker_id: heartbeat_ms})
        return other

    now_ms = int(time.time() * 1000)
    dead = worker_fetching(1, now_ms - broker.heartbeat_timeout - 1000)  # SIGKILLed
    live = worker_fetching(2, now_ms)
    assert client.llen(f"{ns}:email") == 0

    relay.relay_dead_worker_messages()

    assert queued_ids("email") == [1, 2]  # message bodies: both still known
    assert client.llen(f"{ns}:email") == 1  # but only the dead worker's is queued again
    assert client.scard(f"{ns}:__acks__.{dead.broker_id}.email") == 0
    assert client.scard(f"{ns}:__acks__.{live.broker_id}.email") == 1


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_never_enqueue_the_same_row_twice(make_row, monkeypatch):
    rows = [make_row(created_at=ago(GRACE + 1)) for _ in range(60)]
    stamp = relay.outbox_stamp_enqueued

    def slow_stamp(batch):
        time.sleep(0.2)  # hold the row locks long enough for the other relay to run
        return stamp(batch)

    monkeypatch.setattr(relay, "outbox_stamp_enqueued", slow_stamp)
    start = threading.Barrier(2)
    done: dict[str, list[int]] = {}
    errors = []

    def run(name: str) -> None:
        counts = []
        try:
            start.wait()
            while count := relay_once(batch=10):
                counts.append(count)
        except Exception as exc:  # reported below, in the test thread
            errors.append(exc)
        finally:
            connection.close()
            done[name] = counts

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sum(map(sum, done.values())) == 60
    # Both relays did work, at the same time.
    assert done["a"], done
    assert done["b"], done
    assert queued_ids("email") == sorted(r.pk for r in rows)  # each exactly once


@pytest.mark.django_db(transaction=True)
def test_the_worker_middleware_runs_the_relay_in_a_thread(make_row, settings):
    settings.OUTBOX_RELAY_INTERVAL_SECONDS = 0.1
    row = make_row(created_at=ago(GRACE + 1))
    middleware = RelayMiddleware()

    middleware.after_worker_boot(broker=None, worker=None)
    try:
        [thread] = [t for t in threading.enumerate() if t.name == "outbox-relay"]
        wait_until(lambda: Outbox.objects.get(pk=row.pk).enqueued_at, timeout=5)
        assert queued_ids("email") == [row.pk]
    finally:
        middleware.before_worker_shutdown(broker=None, worker=None)
    middleware.after_worker_shutdown(broker=None, worker=None)  # waits for the thread
    assert not thread.is_alive()


def test_no_relay_thread_when_the_interval_is_zero(settings):
    settings.OUTBOX_RELAY_INTERVAL_SECONDS = 0
    RelayMiddleware().after_worker_boot(broker=None, worker=None)
    assert [t for t in threading.enumerate() if t.name == "outbox-relay"] == []


@pytest.mark.django_db(transaction=True)
def test_the_relay_talks_to_the_broker_only_after_its_transaction(make_row, monkeypatch):
    row = make_row(created_at=ago(GRACE + 1))
    seen = []
    send = tasks.send_email.send

    def spy(outbox_id):
        [stamped] = Outbox.objects.filter(pk=outbox_id).values_list("enqueued_at", flat=True)
        seen.append((connection.in_atomic_block, stamped is not None))
        return send(outbox_id)

    monkeypatch.setattr(tasks.send_email, "send", spy)
    assert relay_once() == 1
    assert seen == [(False, True)]  # outside the transaction, already stamped (committed)
    assert queued_ids("email") == [row.pk]


@pytest.mark.django_db
def test_a_relayed_dead_claim_is_stamped_before_its_new_claim(make_row):
    """enqueued_at < claimed_at after a takeover: the dead-claim rule then
    waits the claim timeout, not OUTBOX_STALE_SECONDS."""
    row = make_row(
        state=Outbox.State.SENDING, claimed_at=ago(CLAIM + 1), enqueued_at=ago(CLAIM + 2)
    )
    assert relay_once() == 1
    services.outbox_claim(outbox_id=row.pk)  # the new worker takes it over
    row.refresh_from_db()
    assert row.enqueued_at < row.claimed_at
    Outbox.objects.filter(pk=row.pk).update(
        claimed_at=ago(CLAIM + 1), enqueued_at=ago(CLAIM + 1.5)
    )  # ...and dies: due once the claim timeout is past
    assert relay_once() == 1


@pytest.mark.django_db
def test_rows_the_broker_did_not_take_keep_their_previous_stamp(make_row, monkeypatch):
    never = make_row(created_at=ago(GRACE + 1))
    stale = make_row(created_at=ago(STALE + 5), enqueued_at=ago(STALE + 1))
    point_broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    assert relay_once() == 0
    never.refresh_from_db()
    stale.refresh_from_db()
    assert never.enqueued_at is None
    assert stale.enqueued_at < ago(STALE)


@pytest.mark.django_db
def test_a_retry_the_broker_refused_is_handed_to_the_relay(make_row, monkeypatch):
    """Redis went away just as Retries enqueued the retry: the row must not
    wait for the stale rule (found by the Redis-restart fault scenario)."""
    row = make_row(created_at=ago(GRACE + 60), enqueued_at=ago(1), attempts=2)
    broker = dramatiq.get_broker()
    message = MessageProxy(
        Message(queue_name="email", actor_name="send_email", args=(row.pk,), kwargs={}, options={})
    )

    def refused(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(broker, "enqueue", refused)
    with pytest.raises(redis.ConnectionError):
        OutboxRetries().after_process_message(broker, message, exception=RuntimeError("451"))
    monkeypatch.undo()

    row.refresh_from_db()
    assert row.enqueued_at is None
    assert relay_once() == 1
    assert queued_ids("email") == [row.pk]


def test_a_broker_outage_is_logged_once_per_worker_not_per_consumer_and_second(caplog):
    from messaging.outage import BrokerOutageLog

    outage = BrokerOutageLog()
    consumers = [logging.getLogger(f"dramatiq.worker.ConsumerThread({q})") for q in ("a", "a.DQ")]
    for consumer in consumers:
        consumer.addFilter(outage)
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(5):  # a second of outage after another, from each consumer
                for consumer in consumers:
                    consumer.critical("Consumer encountered a connection error: %s", "refused")
                    consumer.info("Restarting consumer in %0.2f seconds.", 1.0)
            outage.broker_up()
            consumers[0].critical(
                "Consumer encountered an unexpected error.",
                exc_info=(KeyError, KeyError("a bug"), None),
            )  # not an outage: kept as is
    finally:
        for consumer in consumers:
            consumer.removeFilter(outage)

    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == (
        "WARNING",
        "broker state=down (Consumer encountered a connection error: refused);"
        " logged once per outage",
    )
    assert lines[1:] == [
        ("WARNING", "broker state=up"),
        ("CRITICAL", "Consumer encountered an unexpected error."),
    ]


@pytest.mark.django_db(transaction=True)
def test_after_a_lost_connection_the_relay_sends_the_pending_rows_again(make_row, settings):
    """The worker's consumers dropped the retries they held (Redis restarted):
    on the pass that finds the broker back, pending rows are relayed."""
    from messaging.outage import outage_log

    settings.OUTBOX_RELAY_INTERVAL_SECONDS = 0.1
    waiting = make_row(created_at=ago(GRACE + 60), enqueued_at=ago(2), attempts=3)
    outage_log.down = True  # a consumer logged the outage
    stop = threading.Event()
    thread = threading.Thread(target=relay.relay_forever, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: queued_ids("email") == [waiting.pk], timeout=10)
    finally:
        stop.set()
        thread.join(10)
    assert outage_log.down is False
