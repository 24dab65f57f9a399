"""Metrics as an operator gets them: a real Prometheus scrapes the web and the
worker of a live stack; the alert rules pass promtool's check and unit tests."""

import json
import subprocess
import urllib.parse
import urllib.request

import pytest
from django.test import Client

from conftest import ROOT, stop_process, wait_until
from core.testing import free_port, require_binary

RULES = ROOT / "ops" / "prometheus"


def test_alert_rules_are_valid_and_fire_when_they_should():
    promtool = require_binary("promtool")
    for argv in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(
            [promtool, *argv], cwd=RULES, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
    names = {"PayshiftOutboxLag", "PayshiftOutboxFailedRows", "PayshiftBrokerDown"}
    assert all(name in (RULES / "alerts.yml").read_text() for name in names)


@pytest.fixture
def prometheus(tmp_path, live_stack):
    binary = require_binary("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "payshift-web",
                        "metrics_path": "/metrics",
                        "static_configs": [{"targets": [f"127.0.0.1:{live_stack.web_port}"]}],
                    },
                    {
                        "job_name": "payshift-worker",
                        "static_configs": [
                            {"targets": [f"127.0.0.1:{live_stack.worker_metrics_port}"]}
                        ],
                    },
                ],
            }
        )
    )
    log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def query(expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)["data"]["result"]
        except OSError:
            return []

    yield query
    stop_process(proc)


def value(result: list[dict]) -> float:
    return sum(float(sample["value"][1]) for sample in result)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_web_and_worker(live_stack, prometheus, mail_sink):
    # The mail server refuses for a while: the first attempts fail and are retried.
    mail_sink.handler.fail_with = "451 4.3.0 try again later"
    status, _ = live_stack.post(
        "/api/v1/signup", {"email": "metrics@example.com", "password": "correct horse battery"}
    )
    assert status == 202

    def seen(expr: str, minimum: float = 1) -> bool:
        return value(prometheus(expr)) >= minimum

    # Both targets up, then the values this signup made, as Prometheus stored them.
    wait_until(lambda: seen('up{job="payshift-web"}') and seen('up{job="payshift-worker"}'), 30)
    wait_until(lambda: seen('dramatiq_message_retries_total{actor_name="send_email"}'), 30)
    assert seen('payshift_worker_jobs_total{actor="send_email",outcome="error"}')
    mail_sink.handler.fail_with = None
    mail_sink.wait_for("metrics@example.com", timeout=30)
    expectations = [
        'payshift_signups_total{outcome="accepted"}',
        'payshift_http_request_duration_seconds_count{endpoint="api/v1/signup",status="202"}',
        'payshift_worker_jobs_total{actor="send_email",outcome="ok"}',
        'payshift_outbox_delivery_seconds_count{kind="signup.verification"}',
        'dramatiq_messages_total{actor_name="send_email"}',
        "payshift_broker_up",
        "payshift_outbox_scrape_ok",
    ]
    for expr in expectations:
        wait_until(lambda expr=expr: seen(expr), timeout=20)
    # Gauges present (their values depend on timing): every state, and the lag.
    states = {s["metric"]["state"] for s in prometheus("payshift_outbox_rows")}
    assert states == {"pending", "sending", "failed"}
    assert prometheus("payshift_outbox_oldest_unfinished_age_seconds")


@pytest.mark.django_db
def test_metrics_endpoint_counts_requests_and_reads_the_outbox(api, settings):
    settings.METRICS_CACHE_SECONDS = 0  # this test's outbox, not a figure kept from another
    api.post_json("/api/v1/signup", {"email": "m@example.com", "password": "correct horse 1234"})
    api.get("/api/v1/nope")

    text = Client().get("/metrics").content.decode()

    assert 'payshift_signups_total{outcome="accepted"}' in text
    assert 'endpoint="<unmatched>",method="GET",status="404"' in text
    assert 'payshift_outbox_rows{state="pending"} 2.0' in text
    assert "payshift_outbox_oldest_unfinished_age_seconds" in text
    assert "payshift_broker_up 1.0" in text
