"""Which Dramatiq broker BROKER_URL names (read by core.settings: no Django imports here)."""

from urllib.parse import urlsplit

RABBITMQ_SCHEMES = ("amqp", "amqps")


def is_rabbitmq(url: str) -> bool:
    return urlsplit(url).scheme in RABBITMQ_SCHEMES


def broker_settings(url: str, *, namespace: str, heartbeat_timeout_ms: int) -> tuple[str, dict]:
    """The DRAMATIQ_BROKER "BROKER" class path and "OPTIONS" for url."""
    if is_rabbitmq(url):
        # Publisher confirms: an enqueue that returned is on the broker (durable queue).
        return "core.broker.FastFailRabbitmqBroker", {"url": url, "confirm_delivery": True}
    return "core.broker.FastFailRedisBroker", {
        "url": url,
        "namespace": namespace,
        # A killed worker's messages come back after this (default 60 s).
        "heartbeat_timeout": heartbeat_timeout_ms,
    }
