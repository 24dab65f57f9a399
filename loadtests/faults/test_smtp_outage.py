"""SMTP outage: the mail provider refuses (451) for 60 s under steady load.

a) Production retry settings (14 retries, backoff 1 s doubling to 120 s):
   every email arrives once the provider is back, each exactly once.
b) Retries that run out (the worker restarted with OUTBOX_MAX_RETRIES=2,
   the provider down: connection refused): the row is marked failed with
   its last error, the admin's outbox changelist shows it, and
   `manage.py outbox_requeue --all-failed` sends it once the provider is back.
"""

import re
import signal
import subprocess
import sys
import time

import pytest

from loadtests.faults.harness import (
    AdminSession,
    backlog_recovery,
    between,
    other_answers,
    p95,
    wait_until,
)
from loadtests.stack import ROOT

pytestmark = pytest.mark.timeout(900)

RATE = 8.0
BEFORE, OUTAGE, AFTER = 10.0, 60.0, 10.0
MAX_BACKOFF_S = 120  # OUTBOX_MAX_BACKOFF_MS's default: the longest wait for a retry
ADMIN = ("ops@payshift.test", "fault-admin-password-9f3k")


def manage(stack, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**stack.env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_an_smtp_outage_delays_mail_and_exhausted_retries_can_be_requeued(scenario):
    s = scenario("3a SMTP 451 for 60 s", SECURE_COOKIES="0")  # admin login over http
    load = s.load(rate=RATE)
    time.sleep(BEFORE)
    s.sink.refuse("451 4.3.0 Mail server temporarily unavailable")
    down_at = time.time()
    time.sleep(OUTAGE)
    s.sink.accept()
    up_at = time.time()
    time.sleep(AFTER)
    answers = load.stop()
    refused = s.db.rows("SELECT count(*) FROM messaging_outbox WHERE last_error LIKE '%%451%%'")

    mails = s.settle(answers, timeout=MAX_BACKOFF_S + 30)
    a = s.outcome
    a.other = other_answers(answers)
    a.p95_fault_ms = p95(between(answers, down_at, up_at))
    a.recovery_s = backlog_recovery([x for x in answers if x.status == 202], mails, up_at)
    [(most_attempts,)] = s.db.rows("SELECT max(attempts) FROM messaging_outbox")
    a.notes.append(
        f"{len(answers)} sent at {RATE:g}/s, {load.late} late; most attempts for one row:"
        f" {most_attempts}; rows still failing with 451 when the load stopped: {refused[0][0]}"
    )
    assert other_answers(answers) == ""
    s.check_settled()
    assert a.duplicates == 0

    # b) Retries run out: a worker with 2 retries, the provider down.
    b = s.add_outcome("3b retries run out, requeued")
    s.stack.kill_worker(signal.SIGTERM)  # graceful: it hands back what it fetched
    s.stack.spawn_worker(
        OUTBOX_MAX_RETRIES="2", OUTBOX_MIN_BACKOFF_MS="200", OUTBOX_MAX_BACKOFF_MS="1000"
    )
    s.sink.down()
    load = s.load(rate=4.0)
    time.sleep(8)
    answers_b = load.stop()
    owed = s.expected(answers_b, warm_up=False)

    def failed_rows() -> list[tuple]:
        return s.db.failed_rows()

    assert wait_until(lambda: len(failed_rows()) == len(owed), timeout=60), (
        f"{len(failed_rows())} failed rows for {len(owed)} signups: {s.db.outbox_states()}"
    )
    failed = failed_rows()
    assert {email for _, _, _, _, email in failed} == owed
    assert all(attempts == 3 for _, _, attempts, _, _ in failed)  # the first try and 2 retries
    assert all(error.startswith("ConnectionRefusedError") for _, _, _, error, _ in failed)

    manage(s.stack, "createsuperuser", "--no-input", **dict(
        zip(("DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD"), ADMIN, strict=True)
    ))  # fmt: skip
    admin = AdminSession(s.stack.url)
    admin.login(*ADMIN)
    _, page = admin.get("/admin/messaging/outbox/?state__exact=failed")
    shown = {int(pk) for pk in re.findall(r"/admin/messaging/outbox/(\d+)/change/", page)}
    assert shown == {pk for pk, *_ in failed}
    assert page.count("ConnectionRefusedError") >= len(failed)

    s.sink.up()
    requeued_at = time.time()
    out = manage(s.stack, "outbox_requeue", "--all-failed").stdout
    mails = s.settle(answers_b, timeout=30, outcome=b, warm_up=False)
    b.other = other_answers(answers_b)
    b.recovery_s = backlog_recovery([x for x in answers_b if x.status == 202], mails, requeued_at)
    b.notes += [
        f"{len(failed)} rows failed after 3 attempts, e.g. {failed[0][3][:70]!r};"
        f" the admin's failed filter listed {len(shown)}",
        f"outbox_requeue: {out.strip().splitlines()[-1]}; recover s: from the requeue command",
    ]
    assert other_answers(answers_b) == ""
    s.check_settled()
    assert b.duplicates == 0
