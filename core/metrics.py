"""Web metrics in Prometheus format at GET /metrics.

Request latency per endpoint (the URL route, not the raw path: bounded
label values) and status; signups by outcome (by status, which is all the
answer says: the outcome never tells a new address from a taken one); and
the outbox gauges (messaging.metrics.OutboxCollector, read at scrape time).
Under gunicorn the values of all workers are summed (multiprocess mode, see
core/gunicorn_conf.py). Not django-prometheus: its latency histogram has no
status label and it patches the database and cache backends.

Private (the outbox gauges move only while a real account is sent a code,
so an anonymous scraper could tell accounts from unknown addresses): with
METRICS_TOKEN set, a scrape must send "Authorization: Bearer <token>";
without it, it must come straight from METRICS_ALLOWED_NETWORKS (the peer
address, loopback by default; a request carrying a proxy's forwarding
header is never let in by address). Anything else gets a plain 404, as if
there were no /metrics. The scrape-time values (outbox, broker) are kept
METRICS_CACHE_SECONDS per process, so a burst of scrapes costs one read.
"""

import functools
import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SIGNUP_ROUTE = "api/v1/signup"
# From 5 ms to 10 s: the signup budget is 100 ms (p95), Argon2id ~30 ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "payshift_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint (URL route), method and status.",
    ["endpoint", "method", "status"],
    buckets=BUCKETS,
)
SIGNUPS = Counter(
    "payshift_signups_total",
    "Signup requests by outcome (accepted, invalid, rate_limited, unavailable, ...).",
    ["outcome"],
)
# CPU of one Argon2id hash in the thread that ran it (signup.hashers): ~20 ms
# on a quiet machine here, more when other work shares the cores' caches.
PASSWORD_HASH_CPU_SECONDS = Histogram(
    "payshift_password_hash_cpu_seconds",
    "CPU time of one password hash (made or checked) in the thread that ran it.",
    buckets=(0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.2, 0.5),
)
SIGNUP_OUTCOMES = {
    202: "accepted",
    400: "invalid",
    413: "invalid",
    415: "invalid",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class RequestMetricsMiddleware:
    """Times every request that reaches Django (static files do not)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        endpoint = match.route if match is not None else "<unmatched>"
        REQUEST_SECONDS.labels(endpoint, request.method, str(response.status_code)).observe(elapsed)
        if endpoint == SIGNUP_ROUTE and request.method == "POST":
            SIGNUPS.labels(SIGNUP_OUTCOMES.get(response.status_code, "error")).inc()
        return response


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


class ScrapeCache:
    """Values read at scrape time, kept METRICS_CACHE_SECONDS in this process.

    In-process (not Django's cache, which is Redis: the broker gauge must
    not depend on it). Under gunicorn each worker keeps its own copy: N
    scrapes within the window cost at most one read per worker. A failed
    read is kept too: a database in trouble is not asked again at once.
    """

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, read: Callable[[], Any]) -> Any:
        seconds = float(settings.METRICS_CACHE_SECONDS)
        with self._lock:
            kept = self._values.get(key)
        if kept is not None and time.monotonic() - kept[0] < seconds:
            return kept[1]
        value = read()
        if seconds > 0:
            with self._lock:
                self._values[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


scrape_cache = ScrapeCache()


@receiver(setting_changed)
def _clear_scrape_cache(*, setting: str, **kwargs: Any) -> None:
    """A test that changes a METRICS_ setting starts from fresh values."""
    if setting.startswith("METRICS_"):
        scrape_cache.clear()


class BrokerCollector(Collector):
    """payshift_broker_up: whether this web process reaches the broker (cached)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from core import health

        up = GaugeMetricFamily(
            "payshift_broker_up", "1 when the broker (Redis or RabbitMQ) answers a ping."
        )
        up.add_metric([], 1 if scrape_cache.get("broker", health.check_broker) else 0)
        yield up


def _scrape_time_registry() -> CollectorRegistry:
    """Values read when scraped (broker, outbox): the same from any process.

    The collectors are named in settings.METRICS_SCRAPE_COLLECTORS (the
    composition root), so core imports no app's code.
    """
    registry = CollectorRegistry(auto_describe=False)
    for path in settings.METRICS_SCRAPE_COLLECTORS:
        registry.register(import_string(path)())
    return registry


# Set by a reverse proxy: such a request is the proxy's client's, whatever
# the peer address (a proxy on the same machine connects from loopback).
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _peer_allowed(request: HttpRequest) -> bool:
    if any(request.META.get(header) for header in FORWARDING_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").strip())
    except ValueError:  # no address (a Unix socket: a proxy in front)
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # a dual-stack listener sees ::ffff:127.0.0.1
    return any(peer in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def _token_sent(request: HttpRequest, token: str) -> bool:
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


def scrape_allowed(request: HttpRequest) -> bool:
    """METRICS_TOKEN when set (from any address), else a direct allowed peer."""
    token = settings.METRICS_TOKEN
    if token:
        return _token_sent(request, token)
    return _peer_allowed(request)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The scrape target: a plain 404 unless scrape_allowed (see the module)."""
    if not settings.METRICS_ENABLED or not scrape_allowed(request):
        return HttpResponse(status=404)
    body = generate_latest(_registry()) + generate_latest(_scrape_time_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
