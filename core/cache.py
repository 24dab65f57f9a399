"""Django's Redis cache backend, building its Redis client once per pool.

django.core.cache.backends.redis builds a new redis.Redis for every call
(its get_client): ~60 us of CPU here, mostly the client's table of response
callbacks, more than the round trip it is for. One client per connection
pool does the same work: a redis.Redis is thread-safe (connections come from
the pool per command) and the backend itself is per thread anyway.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[Any, Any] = {}  # connection pool -> its client

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # django-stubs leaves out the backend's private helpers used here.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
