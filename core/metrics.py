"""Web metrics in Prometheus format at GET /metrics.

Request latency per endpoint (the URL route, not the raw path: bounded
label values) and status; signups by outcome (by status, which is all the
answer says: the outcome never tells a new address from a taken one); and
the outbox gauges (messaging.metrics.OutboxCollector, read at scrape time).
Under gunicorn the values of all workers are summed (multiprocess mode, see
core/gunicorn_conf.py). Not django-prometheus: its latency histogram has no
status label and it patches the database and cache backends.
"""

import os
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
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


class BrokerCollector(Collector):
    """payshift_broker_up: whether this web process reaches the broker now."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from core.health import check_broker

        up = GaugeMetricFamily(
            "payshift_broker_up", "1 when the broker (Redis or RabbitMQ) answers a ping."
        )
        up.add_metric([], 1 if check_broker() else 0)
        yield up


def _scrape_time_registry() -> CollectorRegistry:
    """Values read when scraped (broker, outbox): the same from any process."""
    from messaging.metrics import OutboxCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector())
    registry.register(OutboxCollector())
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The scrape target. Keep it off the public internet (a proxy rule)."""
    if not settings.METRICS_ENABLED:
        return HttpResponse(status=404)
    body = generate_latest(_registry()) + generate_latest(_scrape_time_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
