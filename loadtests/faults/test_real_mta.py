"""A real MTA: the service sends to a private Postfix (messaging.tests.mta)
under load, over STARTTLS with a certificate from a private CA (issue 10,
items 5, 6 and 7): what an aiosmtpd sink cannot show.

a) plain addresses, STARTTLS verified with EMAIL_SSL_CAFILE: every email
   arrives once, over TLS;
b) addresses Postfix does not know: a real 550 5.1.1; each row fails at its
   first attempt with Postfix's answer (before: 14 retries over ~15 min);
c) internationalised addresses (`josé-…@example.com`): delivered with
   SMTPUTF8 (before: an RFC 2047 encoded word in RCPT TO, answered 550).
"""

import time

import pytest

from loadtests.faults.harness import (
    PostfixMailbox,
    SignupLoad,
    other_answers,
    p95,
)
from messaging.tests.mta import Postfix

pytestmark = pytest.mark.timeout(600)

RATE, SECONDS = 6.0, 15.0


def run_load(s, prefix: str, rate: float, seconds: float):
    load = SignupLoad(s.port, rate=rate, prefix=f"{prefix}-{time.time_ns() % 10**9}").start()
    time.sleep(seconds)
    return load, load.stop()


def test_a_real_mta_over_tls_a_real_550_and_an_internationalised_address(scenario):
    postfix = Postfix().start()
    try:
        s = scenario(
            "6a Postfix over STARTTLS",
            EMAIL_PORT=postfix.port,
            EMAIL_USE_TLS=1,
            EMAIL_SSL_CAFILE=postfix.ca_file,
            DEFAULT_FROM_EMAIL="Payshift <no-reply@payshift.test>",
        )
        s.sink = PostfixMailbox(postfix, s.sink)

        # a) TLS under load
        load, answers = run_load(s, "tls", RATE, SECONDS)
        mails = s.settle(answers, timeout=60)
        a = s.outcome
        a.other = other_answers(answers)
        a.p95_fault_ms = p95(answers)
        delivered = postfix.deliveries()
        over_tls = sum(1 for m in delivered if any("using TLS" in h for h in m["received"]))
        a.notes.append(
            f"{len(delivered)} messages in Postfix's maildir, {over_tls} received over TLS;"
            f" {len(answers)} sent at {RATE:g}/s, {load.late} late"
        )
        assert a.other == ""
        assert over_tls == len(delivered)
        s.check_settled()
        assert a.duplicates == 0

        # b) a real 550 for every one of these addresses
        b = s.add_outcome("6b Postfix 550 unknown user")
        load, refused = run_load(s, "unknown", 3.0, 5.0)
        owed = {x.email for x in refused if x.status == 202}

        def failed_rows() -> list[tuple]:
            return [r for r in s.db.failed_rows() if r[4] in owed]

        deadline = time.monotonic() + 60
        while len(failed_rows()) < len(owed) and time.monotonic() < deadline:
            time.sleep(0.5)
        failed = failed_rows()
        b.accepted = len(owed)
        b.other = other_answers(refused)
        b.notes.append(
            f"{len(failed)} of {len(owed)} rows failed, attempts"
            f" {sorted({r[2] for r in failed})}, e.g. {failed[0][3][:90]!r}"
            " (none lost: each is FAILED with Postfix's answer, none was mailed)"
        )
        assert {r[4] for r in failed} == owed
        assert all(r[2] == 1 and "550 5.1.1" in r[3] for r in failed)
        assert not set(s.sink.verification_mails()) & owed

        # c) internationalised addresses, delivered with SMTPUTF8
        c = s.add_outcome("6c Postfix SMTPUTF8 address")
        load, utf8 = run_load(s, "josé", 3.0, 5.0)
        mails = s.settle(utf8, timeout=60, outcome=c, warm_up=False)
        c.other = other_answers(utf8)
        c.notes.append(f"e.g. {sorted(mails)[:1]}; {len(utf8)} sent, {load.late} late")
        assert c.other == ""
        assert c.lost == 0
        assert c.duplicates == 0
        states = s.db.outbox_states()
        assert not states.get("pending"), states
        assert not states.get("sending"), states
    finally:
        postfix.stop()
