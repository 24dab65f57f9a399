"""The delivery timings are checked at start-up (issue 10, item 4)."""

import subprocess
import sys

from conftest import ROOT, django_env
from messaging.checks import check_outbox_timings, longest_backoff_ms


def ids() -> list[str]:
    return [problem.id for problem in check_outbox_timings()]


def test_the_production_defaults_pass(settings):
    assert ids() == []
    assert longest_backoff_ms() == settings.OUTBOX_MAX_BACKOFF_MS


def test_a_stale_rule_shorter_than_the_longest_backoff_is_an_error(settings):
    settings.OUTBOX_STALE_SECONDS = 100  # the longest backoff is 120 s
    assert ids() == ["messaging.E001"]


def test_a_claim_timeout_within_the_time_limit_is_an_error(settings):
    settings.OUTBOX_CLAIM_TIMEOUT_SECONDS = 20
    settings.OUTBOX_TIME_LIMIT_MS = 60_000
    assert ids() == ["messaging.E002"]


def test_an_email_timeout_past_the_time_limit_is_a_warning(settings):
    settings.EMAIL_TIMEOUT = 30
    settings.OUTBOX_TIME_LIMIT_MS = 20_000
    settings.OUTBOX_CLAIM_TIMEOUT_SECONDS = 30
    assert ids() == ["messaging.W001"]


def test_the_worker_refuses_to_start_with_broken_timings():
    """`manage.py rundramatiq` runs the checks before it starts any worker."""
    env = django_env(OUTBOX_CLAIM_TIMEOUT_SECONDS="20", OUTBOX_TIME_LIMIT_MS="60000")
    result = subprocess.run(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "messaging.E002" in result.stderr
