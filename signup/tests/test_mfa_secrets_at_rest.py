"""The TOTP secret, the recovery codes, the mfa_tokens and the access tokens
exist only in the answers that hand them out (issue 21): not in any table,
log line, broker message or email, in any form (the secret's base32 in any
case, its raw bytes' hex and base64; a recovery code with or without dashes).

Every two-factor path is driven once through the API (signup.tests.mfa_secrets:
enrol, confirm, log in with a code after a refused replay, with a recovery
code after a refused wrong one, new recovery codes), with every logger at
DEBUG and SQL logged, on committed transactions, so the on-commit enqueues
really reach the Redis broker. Then the whole database, the captured logs,
the whole Redis database and the delivered emails are grepped.
"""

import pytest
from django.core import mail

from messaging import smtp
from messaging.models import Outbox
from signup.authenticator import secret_decrypt
from signup.messages import MFA_ENABLED_EMAIL, MFA_RECOVERY_NEW_EMAIL, MFA_RECOVERY_USED_EMAIL
from signup.models import TotpDevice
from signup.tests.mfa_secrets import (
    Seen,
    database_dump,
    drive_two_factor,
    leaks,
    logs_at_debug,
    queued_messages,
    redis_dump,
)

pytestmark = pytest.mark.django_db(transaction=True)

MFA_KINDS = [MFA_ENABLED_EMAIL, MFA_RECOVERY_USED_EMAIL, MFA_RECOVERY_NEW_EMAIL]


def deliver_queued_emails(settings) -> dict[str, str]:
    """Run the queued email jobs in this process (Django's locmem backend):
    each email as the user gets it, subject, text and HTML."""
    from messaging.tasks import send_email

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    smtp.drop_connection()
    try:
        for message in queued_messages(send_email.queue_name):
            send_email.fn(*message["args"], **message["kwargs"])
    finally:
        smtp.drop_connection()
    return {
        f"email {n} ({m.subject})": "\n".join(
            [m.subject, m.body, *(content for content, _ in getattr(m, "alternatives", []))]
        )
        for n, m in enumerate(mail.outbox)
    }


def test_the_grep_finds_each_form_of_each_secret():
    """The check below must not pass for a grep that cannot find anything:
    each form a leak could take is found where it is planted."""
    seen = Seen(
        secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        recovery_codes=["abcd-efgh-jkmn"],
        mfa_tokens=["mfa-token-x"],
        access_tokens=["access-token-y"],
    )
    needles = seen.needles()
    for label, (needle, any_case) in needles.items():
        planted = needle.swapcase() if any_case else needle
        assert leaks({label: (needle, any_case)}, {"plant": f"before {planted} after"}) == [
            f"{label} in plant"
        ]
    assert leaks(needles, {"clean": "nothing of it here"}) == []


def test_no_secret_or_code_in_any_table_broker_message_or_email(api, settings):
    """At rest: every table (the outbox rows' context included), every Redis
    key (the Dramatiq messages, the cache), and the emails the jobs send."""
    seen = drive_two_factor(api)
    needles = seen.needles()

    tables = database_dump()
    device = TotpDevice.objects.get()
    assert secret_decrypt(device.secret) == seen.secret  # this secret, encrypted, is dumped
    assert device.secret in tables["table signup_totpdevice"]
    assert {"table signup_mfachallenge", "table signup_recoverycode"} <= tables.keys()
    kinds = sorted(Outbox.objects.filter(kind__in=MFA_KINDS).values_list("kind", flat=True))
    assert kinds == sorted([*MFA_KINDS, MFA_RECOVERY_USED_EMAIL]), kinds
    found = leaks(needles, tables)
    assert not found, found

    broker = redis_dump()
    assert len(queued_messages("email")) == 4, broker.keys()  # enabled, used x2, new codes
    found = leaks(needles, broker)
    assert not found, found

    emails = deliver_queued_emails(settings)
    assert len(emails) == 4, emails.keys()
    found = leaks(needles, emails)
    assert not found, found


def test_no_secret_or_code_in_any_log_line_at_debug(api, caplog):
    """Every logger at DEBUG (SQL, Dramatiq's enqueues, Django's internals
    included): a DEBUG switch while investigating must not leak them either.
    Each record is grepped as the project's text and JSON formatters write it,
    with its raw args, extras and traceback, and the configured console
    handler's own output."""
    with logs_at_debug(caplog) as logs:
        seen = drive_two_factor(api)

    stores = logs.stores()
    assert "mfa-enrol user=" in stores["log records"]  # the flows' own lines were caught
    assert "signup_totpdevice" in stores["log records"]  # and the SQL, at DEBUG
    assert "Enqueueing message" in stores["log records"]  # and Dramatiq's, at DEBUG
    assert "mfa-enrol user=" in stores["log handler console"]  # the project's handler too
    found = leaks(seen.needles(), stores)
    assert not found, found
