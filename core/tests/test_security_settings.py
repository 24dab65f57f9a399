"""Production-safe defaults (issue 8, point 8): with DEBUG off, ALLOWED_HOSTS is
required (no "*" default) and HSTS is on unless switched off. Settings are
read at import, so each case imports them in a fresh process."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT


def settings_in_a_process(**env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in {"ALLOWED_HOSTS", "DEBUG"}}
    environ.update(env, DJANGO_SETTINGS_MODULE="core.settings")
    code = (
        "from django.conf import settings; "
        "print(settings.ALLOWED_HOSTS, settings.SECURE_HSTS_SECONDS, "
        "getattr(settings, 'SECURE_HSTS_INCLUDE_SUBDOMAINS', None))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def test_debug_off_without_allowed_hosts_refuses_to_start():
    result = settings_in_a_process(DEBUG="0")

    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_debug_off_with_allowed_hosts_has_hsts_for_a_year():
    result = settings_in_a_process(DEBUG="0", ALLOWED_HOSTS="api.payshift.example")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['api.payshift.example']", "31536000", "False"]


def test_hsts_can_be_switched_off():
    result = settings_in_a_process(
        DEBUG="0", ALLOWED_HOSTS="api.payshift.example", SECURE_HSTS_SECONDS="0"
    )

    assert result.stdout.split()[1] == "0"


def test_development_still_takes_any_host():
    result = settings_in_a_process(DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "['*']"


@pytest.mark.django_db
def test_an_https_answer_carries_hsts(client):
    response = client.get("/api/v1/health", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.django_db
def test_a_request_for_another_host_is_refused(client):
    assert client.get("/api/v1/health", HTTP_HOST="evil.example").status_code == 400
