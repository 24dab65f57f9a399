"""GET /metrics is private (issue 9, point 2): the outbox gauges told whether an
account exists (a row appears only while the worker sends a real account a
code), so an anonymous client of the public port gets a plain 404. A scrape
is let in with the scrape token (METRICS_TOKEN, when set) or, without one,
straight from METRICS_ALLOWED_NETWORKS (loopback by default; the peer
address, never X-Forwarded-For). Scrapes are cheap: the outbox queries and
the broker ping run once per METRICS_CACHE_SECONDS."""

import os
import subprocess
import sys

import pytest
from django.test import Client

from conftest import ROOT

PUBLIC_PEER = "203.0.113.9"
TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_scrape_cache(settings):
    # Changing a METRICS_ setting empties the per-process scrape cache.
    settings.METRICS_CACHE_SECONDS = 5.0
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1"]


def scrape(**extra):
    return Client().get("/metrics", **extra)


def is_metrics(response) -> bool:
    return response.status_code == 200 and b"payshift_" in response.content


@pytest.mark.django_db
def test_an_anonymous_scrape_from_the_internet_gets_nothing():
    response = scrape(REMOTE_ADDR=PUBLIC_PEER)

    assert response.status_code == 404
    assert b"payshift_" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"],
)
def test_a_request_through_a_proxy_on_loopback_is_not_let_in_by_its_peer_address(header):
    # A reverse proxy on the same machine connects from 127.0.0.1 for everyone.
    response = scrape(REMOTE_ADDR="127.0.0.1", **{header: PUBLIC_PEER})

    assert response.status_code == 404
    assert b"payshift_" not in response.content


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_let_an_internet_client_in():
    response = scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_a_scrape_from_loopback_gets_the_metrics(peer):
    assert is_metrics(scrape(REMOTE_ADDR=peer))


@pytest.mark.django_db
def test_the_allowed_networks_are_a_setting(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]

    assert is_metrics(scrape(REMOTE_ADDR=PUBLIC_PEER))
    assert scrape(REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_with_a_token_the_scrape_must_carry_it_wherever_it_comes_from(settings):
    settings.METRICS_TOKEN = TOKEN

    assert is_metrics(scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert is_metrics(scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_AUTHORIZATION=f"bearer  {TOKEN}"))
    refused = [
        scrape(REMOTE_ADDR=PUBLIC_PEER),
        scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x"),
        scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_AUTHORIZATION=f"Basic {TOKEN}"),
        scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_AUTHORIZATION="Bearer "),
        scrape(REMOTE_ADDR=PUBLIC_PEER, HTTP_AUTHORIZATION="Bearer ünïcode"),
        scrape(REMOTE_ADDR="127.0.0.1"),  # the token, once set, is required from loopback too
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    assert not any(b"payshift_" in r.content for r in refused)


@pytest.mark.django_db
def test_metrics_can_still_be_switched_off(settings):
    settings.METRICS_ENABLED = False

    assert scrape(REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_a_second_scrape_within_the_cache_window_runs_no_query_and_no_ping(
    monkeypatch, django_assert_num_queries
):
    import core.health

    pings = []
    real_check = core.health.check_broker
    monkeypatch.setattr(core.health, "check_broker", lambda: pings.append(1) or real_check())

    first = scrape()
    assert is_metrics(first)
    assert b'payshift_outbox_rows{state="pending"}' in first.content
    with django_assert_num_queries(0):
        second = scrape()

    assert is_metrics(second)
    assert b'payshift_outbox_rows{state="pending"}' in second.content
    assert b"payshift_broker_up 1.0" in second.content
    assert len(pings) == 1


@pytest.mark.django_db
def test_without_the_cache_every_scrape_reads_the_outbox(settings, django_assert_num_queries):
    settings.METRICS_CACHE_SECONDS = 0
    scrape()
    with django_assert_num_queries(3):
        assert is_metrics(scrape())


def test_the_worker_metrics_listen_on_loopback_by_default():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"WORKER_METRICS_HOST", "dramatiq_prom_host", "dramatiq_prom_port"}
    }
    env.update(WORKER_METRICS_PORT="9999", DJANGO_SETTINGS_MODULE="core.settings")
    code = (
        "import os, django; django.setup(); from django.conf import settings; "
        "print(os.environ['dramatiq_prom_host'], getattr(settings, 'WORKER_METRICS_HOST', None))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["127.0.0.1", "127.0.0.1"]
