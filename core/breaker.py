"""A tiny circuit breaker for Redis calls on the request path.

Redis is both the broker and the rate-limit cache. When it is down, the first
failing call costs at most the connect timeout; the breaker then skips Redis
for a few seconds so later requests cost nothing. State is per process and
soft: losing it only means one more fast failure.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")
logger = logging.getLogger(__name__)


class BreakerOpenError(Exception):
    """Raised instead of calling a dependency that failed a moment ago."""


class Breaker:
    def __init__(self, name: str, *, open_seconds: float | None = None) -> None:
        self.name = name
        self._open_seconds = open_seconds
        self._open_until = 0.0

    @property
    def open_seconds(self) -> float:
        if self._open_seconds is not None:
            return self._open_seconds
        return settings.REDIS_BREAKER_SECONDS

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def call(self, func: Callable[[], T], *, errors: tuple[type[BaseException], ...]) -> T:
        """Run func; on one of errors, open the breaker and re-raise."""
        if self.is_open:
            raise BreakerOpenError(self.name)
        try:
            return func()
        except errors:
            self._open_until = time.monotonic() + self.open_seconds
            logger.warning(
                "breaker=%s state=open seconds=%.1f", self.name, self.open_seconds, exc_info=True
            )
            raise

    def reset(self) -> None:
        self._open_until = 0.0


broker_breaker = Breaker("broker")
cache_breaker = Breaker("cache")
