"""Which address the per-IP limit counts (issue 10, item 11): forwarded
headers only from trusted proxies (TRUSTED_PROXY_IPS), never from a client
that reaches gunicorn directly."""

from django.test import RequestFactory

from core.middleware import ForwardedProtoFromProxiesMiddleware
from core.throttles import client_ip


def request(peer: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().post("/api/v1/signup", **extra)


def test_a_client_reaching_gunicorn_directly_cannot_forge_its_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_IPS = ["10.0.0.5"]
    forged = {client_ip(request("203.0.113.50", f"198.51.100.{n}")) for n in range(25)}
    assert forged == {"203.0.113.50"}


def test_the_trusted_proxys_hop_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/24"]
    assert client_ip(request("10.0.0.5", "forged, 203.0.113.7")) == "203.0.113.7"


def test_without_a_count_trusted_hops_are_skipped_from_the_right(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/24", "2001:db8::/32"]
    chain = "198.51.100.1, 203.0.113.7, 2001:db8::9, 10.0.0.4"
    assert client_ip(request("10.0.0.5", chain)) == "203.0.113.7"


def test_unset_trusts_only_loopback_and_private_peers(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_IPS = []
    assert client_ip(request("127.0.0.1", "203.0.113.7")) == "203.0.113.7"
    assert client_ip(request("192.168.1.2", "203.0.113.7")) == "203.0.113.7"
    assert client_ip(request("203.0.113.50", "198.51.100.1")) == "203.0.113.50"


def test_no_forwarded_header_is_read_without_proxies_configured(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.TRUSTED_PROXY_IPS = []
    assert client_ip(request("127.0.0.1", "203.0.113.7")) == "127.0.0.1"


def secure_as_seen(settings, peer: str) -> bool:
    """request.is_secure() behind ForwardedProtoFromProxiesMiddleware, for a
    plain-HTTP request that claims X-Forwarded-Proto: https."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    seen = []
    middleware = ForwardedProtoFromProxiesMiddleware(lambda r: seen.append(r.is_secure()))
    middleware(RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https"))
    return seen[0]


def test_https_is_believed_from_a_trusted_proxy_only(settings):
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/24"]
    assert secure_as_seen(settings, "10.0.0.5") is True
    assert secure_as_seen(settings, "203.0.113.50") is False


def test_the_header_check_is_first_in_the_middleware(settings):
    assert settings.MIDDLEWARE[0] == "core.middleware.ForwardedProtoFromProxiesMiddleware"
