"""The Dramatiq broker: Redis (default) or RabbitMQ, chosen by BROKER_URL's scheme.

Everything broker-specific lives here. The rest of the service asks the
broker four things through the same methods on either broker:
- ping(): health;
- data_lost(): the broker came back without its queues (the relay then
  enqueues every pending row again);
- requeue_dead_workers(): give a killed worker's fetched messages back now;
- queue_counts(queue): ready, delayed, in flight, dead-lettered, retrying;
- worker_alive(id) and live_workers(): worker processes seen lately.
Both fail fast when the broker is away: a signup never waits on it.
On Redis, an enqueue also rings its queue's bell, which idle consumers
wait on instead of polling (BELL_SUFFIX).
"""

import logging
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import pika
import redis
from django.conf import settings
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, current_millis
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)
RELAY_MARK = "outbox-relay-mark"  # a key (Redis) or durable queue (RabbitMQ) the relay owns
WORKERS = "payshift-workers"  # Redis: worker process -> last check-in (ms)
# Redis: each enqueue to a main queue also pushes a token on its doorbell
# list, `<namespace>:<queue>.bell`, and an idle consumer waits on that list
# (BLPOP) instead of sleeping. Dramatiq's consumer backs off up to the worker
# timeout (1 s): at a few signups a second the time to inbox had a p95 of
# 512 ms (issue 11); capping the sleep at 100 ms cost an idle worker ~28 ms of
# CPU a second (worker and Redis) in polling. The bell wakes a consumer
# within a round trip and costs nothing while idle. Not on the delay queues
# (retries, nearly always empty): there a second later is harmless.
BELL_SUFFIX = ".bell"
# Tokens a bell keeps (LTRIM): enough to wake every consumer of a queue,
# bounded while no worker runs. A stale token costs one empty fetch.
BELL_TOKENS = 32
# The longest a consumer blocks on its bell: Dramatiq's worker timeout. Its
# fetch script heartbeats, and its consumer thread checks for a stop or a
# pause only between fetches: both at least once a second.
BELL_BLOCK_MAX_MS = 1000
# A consumer whose prefetch is full (everything fetched still in its worker
# threads) cannot fetch, and no bell says when a thread acks: it looks again
# after at most this. Those threads have work queued, so nothing waits on it.
BUSY_POLL_MS = 100
# What a broker call raises when the broker is away, on either broker. pika's
# connection workflow errors are not AMQPErrors: a RabbitMQ that accepts the
# connection and never answers raises AMQPConnectorStackTimeout, which once
# went past the breaker (every signup waited for it) and left its rows
# stamped as enqueued.
BROKER_ERRORS = (
    redis.RedisError,
    pika.exceptions.AMQPError,
    AMQPConnectorException,
    dramatiq.errors.BrokerError,
    OSError,
)


def fast_fail_redis(url: str) -> redis.Redis:
    """A Redis client with short timeouts and no client-side retries."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class GivesBackRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, which gives back on close what it fetched
    and never handed out.

    It fetches a batch (every id into this worker's ack set) and hands the
    messages out one at a time; a worker told to stop breaks off mid-batch,
    and Dramatiq 2.2.1 requeues its work and delay queues but not the rest of
    the batch. Those stayed in the ack set of a worker that had just said
    goodbye, until its heartbeat expired (found by the graceful-stop fault
    scenario: one message in a CI run). Dramatiq's RabbitMQ consumer and
    dramatiq_sqs (PR #52) give theirs back on close.
    """

    def close(self) -> None:
        cached, self.message_cache = self.message_cache, []
        ids = []
        for data in cached:
            try:
                ids.append(dramatiq.Message.decode(data).options["redis_message_id"])
            except Exception:  # not one of ours: left for Dramatiq's maintenance
                logger.warning("consumer_close undecodable_message queue=%s", self.queue_name)
        if not ids:
            return
        try:
            self.broker.do_requeue(self.queue_name, *ids)
        except redis.RedisError as e:  # the ack set outlives us: maintenance requeues them
            raise dramatiq.errors.ConnectionClosed(e) from None


class BellRedisConsumer(GivesBackRedisConsumer):
    """The consumer of a main queue: when a fetch finds nothing, it waits on
    the queue's bell (BELL_SUFFIX) rather than sleeping.

    Dramatiq's __next__ with its sleep replaced. A message enqueued after the
    empty fetch left its token on the bell list, so the BLPOP that follows
    returns at once: no wake-up is lost. After a wait it returns None, as
    Dramatiq's does after a sleep: its consumer thread checks for a stop and
    runs its delayed messages, then calls next() again, which fetches.
    """

    def __next__(self):
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:  # Dramatiq's guard for its issue #266, kept
                        logger.warning("consumer_none_in_cache queue=%s", self.queue_name)
                        continue
                    self.misses = 0
                    message = dramatiq.Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    return dramatiq.MessageProxy(message)
                room = self.prefetch - self.outstanding_message_count
                if room <= 0:
                    self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=BUSY_POLL_MS)
                    time.sleep(backoff_ms / 1000)
                    return None
                self.message_cache = self.broker.do_fetch(self.queue_name, room)
                if not self.message_cache:
                    self.broker.wait_for_bell(self.queue_name, self.timeout)
                    return None
        except redis.ConnectionError as e:
            raise dramatiq.errors.ConnectionClosed(e) from None


class FastFailRedisBroker(RedisBroker):
    """RedisBroker whose client gives up in a quarter second, not in ~10 s,
    whose queue maintenance can also be run on demand, and whose main queues
    ring a bell (BELL_SUFFIX) that their idle consumers wait on."""

    def __init__(self, *, url: str, **options) -> None:
        super().__init__(client=fast_fail_redis(url), **options)
        self._maintain_now = threading.local()
        self._consumed: set[str] = set()
        self._url = url
        self._bell_client: redis.Redis | None = None
        self._bell_client_lock = threading.Lock()

    @property
    def consumer_class(self):
        return GivesBackRedisConsumer

    @staticmethod
    def _rings(queue_name: str) -> bool:
        return not queue_name.endswith((".DQ", ".XQ"))

    def bell_key(self, queue_name: str) -> str:
        return f"{self.namespace}:{queue_name}{BELL_SUFFIX}"

    def do_enqueue(self, queue_name: str, *args):
        """Dramatiq's enqueue script and, on a main queue, a bell token, in one
        round trip. The DQ consumer moves a due retry to its main queue
        through broker.enqueue: that rings too.

        A non-transactional pipeline: the token follows the message, so a
        woken consumer finds it. EVALSHA, not the registered Script with
        client=pipe, which would ask SCRIPT EXISTS first, a second round trip
        on every enqueue. The arguments are Dramatiq 2.2.1's _dispatch.
        """
        if not self._rings(queue_name):
            return self._dispatch("enqueue")(queue_name, *args)
        script, bell = self.scripts["dispatch"], self.bell_key(queue_name)
        argv = [
            "enqueue",
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            self._should_do_maintenance("enqueue"),
            self._max_unpack_size(),
            *args,
        ]
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.evalsha(script.sha, 1, self.namespace, *argv)
            pipe.rpush(bell, 1)
            pipe.ltrim(bell, -BELL_TOKENS, -1)
            try:
                return pipe.execute()[0]
            except redis.exceptions.NoScriptError:
                # A Redis restarted or flushed its scripts: nothing was
                # enqueued (a token was, harmless). Load it and send again.
                if attempt:
                    raise
                script.sha = self.client.script_load(script.script)

    def _blocking_client(self) -> redis.Redis:
        """The client for BLPOP, built once: fast_fail_redis's socket timeout
        (REDIS_SOCKET_TIMEOUT) is no longer than the block, so a quiet second
        would read as a dead Redis. A bit longer here: a Redis that stops
        answering is still noticed within a second of the block's end."""
        with self._bell_client_lock:
            if self._bell_client is None:
                self._bell_client = redis.Redis.from_url(
                    self._url,
                    socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
                    socket_timeout=BELL_BLOCK_MAX_MS / 1000 + settings.REDIS_SOCKET_TIMEOUT,
                    retry=Retry(NoBackoff(), 0),
                    health_check_interval=30,
                )
            return self._bell_client

    def wait_for_bell(self, queue_name: str, timeout_ms: int) -> bool:
        """Block until queue_name's bell rings or timeout_ms (at most
        BELL_BLOCK_MAX_MS) passes; True if it rang.

        A dropped connection raises ConnectionClosed, as Dramatiq's consumer
        does on a fetch: its consumer thread restarts the consumer.
        """
        timeout_ms = max(1, min(timeout_ms, BELL_BLOCK_MAX_MS))  # BLPOP 0 blocks forever
        try:
            rang = self._blocking_client().blpop([self.bell_key(queue_name)], timeout_ms / 1000)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise dramatiq.errors.ConnectionClosed(e) from None
        return rang is not None

    def close(self) -> None:
        with self._bell_client_lock:
            client, self._bell_client = self._bell_client, None
        if client is not None:
            client.close()
        super().close()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000):
        """A consumer that waits on its queue's bell (main queues) or backs
        off as Dramatiq's does (delay queues); on a delay queue this process
        consumed before, first give back the retries it held.

        A worker fetches each delayed message (a retry waiting for its
        backoff) at once and holds it in memory until its time, its id in
        `__acks__.<this worker>.<queue>.DQ`. When its Redis connection drops,
        Dramatiq's consumer thread drops those from memory and consumes the
        queue again; the acks stay, and since the worker is alive nobody
        gives them back: after a Redis restart that kept its data (AOF), the
        retries waited for the relay's stale rule, 5 minutes (found by the
        Redis-restart fault scenario, loadtests/faults). Requeued here, they
        keep their eta; one still in memory is then sent twice, which the
        outbox claim makes harmless.
        """
        if queue_name.endswith(".DQ") and queue_name in self._consumed:
            self.requeue_held(queue_name)
        self._consumed.add(queue_name)
        consumer_class = BellRedisConsumer if self._rings(queue_name) else self.consumer_class
        return consumer_class(self, queue_name, prefetch, timeout)

    def requeue_held(self, queue_name: str) -> int:
        """Put back on queue_name the messages this broker instance fetched from it."""
        held = self.client.smembers(f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}")
        if held:
            self.do_requeue(queue_name, *held)
        return len(held)

    def _should_do_maintenance(self, command: str) -> int:
        if getattr(self._maintain_now, "on", False):
            return 1
        return super()._should_do_maintenance(command)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def data_lost(self) -> bool:
        """True once each time Redis answers without the relay's marker key.

        SET NX: of several relays, one sees the loss. Also true on a brand-new
        Redis: relaying its pending rows once more is harmless.
        """
        return bool(self.client.set(f"{self.namespace}:{RELAY_MARK}", "1", nx=True))

    def requeue_dead_workers(self) -> None:
        """Put the messages a dead worker had fetched back on their queues, now.

        Dramatiq does this in its queue maintenance, which runs on a random
        0.1 % of broker commands per queue: after a worker was SIGKILLed, its
        fetched messages waited minutes, or until the relay's stale rule
        (found by the worker-killed fault scenario, loadtests/faults). The
        relay calls this on every pass: a read-only command per queue, with
        maintenance forced. A worker counts as dead once its heartbeat is
        older than DRAMATIQ_HEARTBEAT_TIMEOUT_MS; live workers are untouched.
        """
        self._maintain_now.on = True
        try:
            for queue in sorted(self.get_declared_queues() | self.get_declared_delay_queues()):
                self.do_qsize(queue)
        finally:
            self._maintain_now.on = False

    def queue_counts(self, queue: str) -> dict[str, int]:
        """Messages waiting (ready), delayed (retries and ETAs), fetched by a worker
        (in flight: main and delay queue acks), dead-lettered."""
        client, ns = self.client, self.namespace

        def acked(name: str) -> int:
            keys = client.scan_iter(f"{ns}:__acks__.*.{name}", count=500)
            return sum(client.scard(key) for key in keys)

        return {
            "ready": client.llen(f"{ns}:{queue}"),
            "delayed": client.llen(f"{ns}:{queue}.DQ"),
            "in flight": acked(queue),
            "retrying": acked(f"{queue}.DQ"),
            "dead": client.zcard(f"{ns}:{queue}.XQ"),
        }

    def worker_alive(self, worker: str) -> None:
        """Called by each worker process's relay on every pass (messaging.relay).

        Dramatiq's own heartbeats cannot tell workers from web processes: an
        enqueue heartbeats too. So workers keep a set of their own.
        """
        key = f"{self.namespace}:{WORKERS}"
        now = dramatiq.common.current_millis()
        pipe = self.client.pipeline()
        pipe.zadd(key, {worker: now})
        pipe.zremrangebyscore(key, "-inf", now - 10 * self.heartbeat_timeout)
        pipe.execute()

    def live_workers(self) -> int | None:
        """Worker processes whose relay checked in lately (3 passes or the
        heartbeat timeout, whichever is longer)."""
        window_ms = max(3 * settings.OUTBOX_RELAY_INTERVAL_SECONDS * 1000, self.heartbeat_timeout)
        cutoff_ms = dramatiq.common.current_millis() - window_ms
        return self.client.zcount(f"{self.namespace}:{WORKERS}", cutoff_ms, "+inf")


def fast_fail_amqp_url(url: str) -> str:
    """Add pika's fail-fast connection settings unless the URL sets them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in {
        "connection_attempts": "1",
        "retry_delay": "0",
        "socket_timeout": str(settings.REDIS_CONNECT_TIMEOUT),
        # The whole connect + AMQP handshake (pika's default: 15 s).
        "stack_timeout": str(2 * settings.REDIS_CONNECT_TIMEOUT),
        "blocked_connection_timeout": str(settings.REDIS_SOCKET_TIMEOUT * 5),
    }.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


class FastFailRabbitmqBroker(RabbitmqBroker):
    """RabbitmqBroker with fail-fast connections and publisher confirms.

    Queues are durable and messages persistent (Dramatiq's defaults), so a
    restarted RabbitMQ keeps them; a broker that lost them anyway (a new
    node, a wiped volume) is told by the relay's durable mark queue.
    RabbitMQ itself requeues a dead worker's unacked messages as soon as
    its connection drops.
    """

    def __init__(self, *, url: str, **options) -> None:
        super().__init__(url=fast_fail_amqp_url(url), **options)

    def _with_connection(self, func):
        """A short-lived connection of its own: these calls come from the relay
        and health threads, not the thread-local connection Dramatiq keeps."""
        connection = pika.BlockingConnection(self.parameters)
        try:
            return func(connection)
        finally:
            if connection.is_open:
                connection.close()

    @staticmethod
    def _declared(connection, queue: str):
        """The queue's declare-ok (passive), or None if it does not exist yet."""
        try:
            return connection.channel().queue_declare(queue, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            return None

    def ping(self) -> bool:
        return bool(self._with_connection(lambda connection: connection.channel().is_open))

    def data_lost(self) -> bool:
        """True once each time the relay's durable mark queue is missing."""

        def check(connection) -> bool:
            if self._declared(connection, RELAY_MARK) is not None:
                return False
            connection.channel().queue_declare(RELAY_MARK, durable=True)
            return True

        return self._with_connection(check)

    def requeue_dead_workers(self) -> None:
        """Nothing to do: RabbitMQ requeues unacked messages of a closed connection."""

    def worker_alive(self, worker: str) -> None:
        """A ping: live_workers counts the queues' consumers, but the relay
        learns from this whether the broker answers (raises when it does not)."""
        self.ping()

    def queue_counts(self, queue: str) -> dict[str, int | None]:
        """Ready, delayed and dead from RabbitMQ; unacked counts need its management API."""

        def counts(connection) -> dict[str, int | None]:
            def depth(name: str) -> int:
                declared = self._declared(connection, name)
                return 0 if declared is None else declared.message_count

            return {
                "ready": depth(queue),
                "delayed": depth(dramatiq.common.dq_name(queue)),
                "in flight": None,
                "retrying": None,
                "dead": depth(dramatiq.common.xq_name(queue)),
            }

        return self._with_connection(counts)

    def live_workers(self) -> int | None:
        """Consumers on the busiest declared queue: one per worker process."""

        def consumers(connection) -> int:
            found = [self._declared(connection, queue) for queue in sorted(self.queues)]
            return max((d.consumer_count for d in found if d is not None), default=0)

        return self._with_connection(consumers)
