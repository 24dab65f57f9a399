"""Delivery to a real MTA (Debian's postfix, a private instance: tests/mta.py):
what issue 10 found against Postfix and a sink cannot show.

TLS with a privately signed certificate (STARTTLS and implicit TLS) through
EMAIL_SSL_CAFILE; a real 550 for an unknown user fails the row at once; an
internationalised address arrives through SMTPUTF8.
"""

import pytest

from messaging import services
from messaging.models import Outbox
from messaging.tests.mta import Postfix

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture(scope="module")
def postfix():
    with Postfix() as server:
        yield server


@pytest.fixture
def via(settings, postfix):
    """Point Django's email settings at the private postfix."""
    settings.EMAIL_BACKEND = "messaging.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.DEFAULT_FROM_EMAIL = "Payshift <no-reply@payshift.test>"

    def configure(*, tls: str = "", cafile: str | None = None) -> Postfix:
        settings.EMAIL_PORT = postfix.tls_port if tls == "ssl" else postfix.port
        settings.EMAIL_USE_TLS = tls == "starttls"
        settings.EMAIL_USE_SSL = tls == "ssl"
        settings.EMAIL_SSL_CAFILE = postfix.ca_file if cafile is None else cafile
        return postfix

    return configure


def deliver(row: Outbox) -> Outbox:
    services.email_deliver(outbox_id=row.pk)
    row.refresh_from_db()
    return row


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_tls_to_a_relay_signed_by_a_private_ca(via, make_row, make_user, tls):
    mta = via(tls=tls)
    user = make_user(f"tls-{tls}@payshift.test")
    row = deliver(make_row(user=user))
    assert (row.state, row.last_error) == (Outbox.State.SENT, "")
    [mail] = mta.wait_for(user.email)
    assert any("using TLS" in h for h in mail["received"]), mail["received"]
    assert mail["message_id"].endswith("@payshift.test>")


def test_without_the_ca_bundle_the_certificate_is_refused_and_retried(via, make_row, make_user):
    via(tls="starttls", cafile="")
    row = make_row(user=make_user("no-ca@payshift.test"))
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        deliver(row)
    row.refresh_from_db()
    assert row.state == Outbox.State.PENDING  # retried: the operator can fix the setting
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_an_unknown_user_is_a_real_550_and_fails_the_row_at_once(via, make_row, make_user):
    via(tls="starttls")
    row = deliver(make_row(user=make_user("unknown-ghost@payshift.test")))
    assert (row.state, row.attempts) == (Outbox.State.FAILED, 1)
    assert "550 5.1.1" in row.last_error
    assert "User unknown" in row.last_error


def test_an_internationalised_address_arrives_through_smtputf8(via, make_row, make_user):
    mta = via(tls="starttls")
    user = make_user("josé@payshift.test")
    row = deliver(make_row(user=user))
    assert (row.state, row.last_error) == (Outbox.State.SENT, "")
    [mail] = mta.wait_for("josé@payshift.test")
    assert mail["subject"]
