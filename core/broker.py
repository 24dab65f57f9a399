"""The Dramatiq broker: Redis, failing fast when Redis is away."""

import threading

import redis
from django.conf import settings
from dramatiq.brokers.redis import RedisBroker
from redis.backoff import NoBackoff
from redis.retry import Retry


def fast_fail_redis(url: str) -> redis.Redis:
    """A Redis client with short timeouts and no client-side retries."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class FastFailRedisBroker(RedisBroker):
    """RedisBroker whose client gives up in a quarter second, not in ~10 s,
    and whose queue maintenance can also be run on demand."""

    def __init__(self, *, url: str, **options) -> None:
        super().__init__(client=fast_fail_redis(url), **options)
        self._maintain_now = threading.local()
        self._consumed: set[str] = set()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000):
        """A consumer; on a delay queue this process consumed before, first
        give back the retries it held.

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
        return super().consume(queue_name, prefetch=prefetch, timeout=timeout)

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
