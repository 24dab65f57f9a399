"""The SMTP backend the worker sends through: Django's, plus what a real relay needs.

- Internationalised addresses (a non-ASCII local part, `josé@…`): Django
  writes them as an RFC 2047 encoded word, which is not an address, and a
  real MTA answers 550. Sent here with SMTPUTF8 when the server offers it;
  when it does not, PermanentDeliveryError says so (the row fails at once).
- A CA bundle (EMAIL_SSL_CAFILE) for a relay signed by a private CA, for
  both STARTTLS (EMAIL_USE_TLS) and implicit TLS (EMAIL_USE_SSL).
- Message-ID in the sender's domain (or EMAIL_MESSAGE_ID_DOMAIN), not
  Django's `@localhost` from getfqdn(), which spam filters score.

permanent_error() tells a refusal retrying cannot fix (5xx) from one it can.
send_message() sends through a connection each worker thread keeps.
"""

import contextlib
import email.policy
import io
import smtplib
import ssl
import threading
import time
from email.generator import BytesGenerator
from email.message import Message
from email.utils import make_msgid, parseaddr

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoEmailBackend
from django.utils.encoding import punycode
from django.utils.functional import cached_property

UTF8_POLICY = email.policy.SMTPUTF8.clone(linesep="\r\n")


class PermanentDeliveryError(Exception):
    """The message cannot be delivered as it is: retrying will not help."""


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def smtp_refusal(exc: BaseException) -> tuple[int, str] | None:
    """(code, the server's answer in words) for an SMTP refusal, else None."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        answers = exc.recipients.items()
        refused = "; ".join(f"<{to}>: {_reply(code, msg)}" for to, (code, msg) in answers)
        return min(code for _, (code, _) in answers), f"{type(exc).__name__}: {refused}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, f"{type(exc).__name__}: {_reply(exc.smtp_code, exc.smtp_error)}"
    return None


def permanent_error(exc: BaseException) -> bool:
    """True for a refusal retrying cannot fix: a 5xx answer (for every
    recipient), or PermanentDeliveryError. 4xx answers, timeouts and dropped
    connections are temporary: retried."""
    if isinstance(exc, PermanentDeliveryError):
        return True
    refusal = smtp_refusal(exc)
    return refusal is not None and 500 <= refusal[0] < 600


def describe_error(exc: BaseException) -> str:
    """What a row keeps as last_error: the server's answer, else the exception."""
    refusal = smtp_refusal(exc)
    return refusal[1] if refusal else f"{type(exc).__name__}: {exc}"


def _mailbox(address: str) -> str:
    return parseaddr(address)[1]


def _needs_smtputf8(address: str) -> bool:
    return not _mailbox(address).rpartition("@")[0].isascii()


def _envelope(address: str) -> str:
    """The address for MAIL FROM / RCPT TO under SMTPUTF8: local part as is, IDNA domain."""
    local, _, domain = _mailbox(address).rpartition("@")
    return f"{local}@{punycode(domain)}"


def message_id_domain(from_email: str) -> str:
    configured = getattr(settings, "EMAIL_MESSAGE_ID_DOMAIN", "")
    return configured or punycode(_mailbox(from_email).rpartition("@")[2]) or "localhost"


class EmailBackend(DjangoEmailBackend):
    def __init__(self, *args, ssl_cafile: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ssl_cafile = ssl_cafile or getattr(settings, "EMAIL_SSL_CAFILE", "") or None

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Verifying context (hostname and chain) that trusts EMAIL_SSL_CAFILE if set."""
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:  # a client certificate (EMAIL_SSL_CERTFILE, _KEYFILE)
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def _send(self, email_message) -> bool:
        if not email_message.recipients():
            return False
        headers = {k.lower() for k in email_message.extra_headers}
        if "message-id" not in headers:
            domain = message_id_domain(email_message.from_email)
            email_message.extra_headers["Message-ID"] = make_msgid(domain=domain)
        addresses = [email_message.from_email, *email_message.recipients()]
        if not any(_needs_smtputf8(a) for a in addresses):
            return super()._send(email_message)  # type: ignore[misc]  # not in django-stubs
        return self._send_smtputf8(email_message)

    def _send_smtputf8(self, email_message) -> bool:
        """Send with the SMTPUTF8 extension: raw UTF-8 envelope and address headers."""
        connection = self.connection
        assert connection is not None  # send_messages opened it
        connection.ehlo_or_helo_if_needed()
        if not connection.has_extn("smtputf8"):
            raise PermanentDeliveryError(
                f"the mail server {self.host}:{self.port} does not offer SMTPUTF8, so it cannot"
                f" take the internationalised address(es) {email_message.recipients()}"
            )
        message = email_message.message()
        for name, values in (("To", email_message.to), ("Cc", email_message.cc)):
            if values:
                del message[name]
                Message.__setitem__(message, name, ", ".join(values))  # not RFC 2047-encoded
        out = io.BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=UTF8_POLICY).flatten(message)
        connection.sendmail(
            _envelope(email_message.from_email),
            [_envelope(a) for a in email_message.recipients()],
            out.getvalue(),
            mail_options=["SMTPUTF8"],
        )
        return True


# A held connection is checked with NOOP after this long unused (servers drop
# idle clients: Postfix after 300 s, many relays sooner), and closed with
# QUIT after this many messages (some relays cap messages per connection).
IDLE_CHECK_SECONDS = 5.0
MESSAGES_PER_CONNECTION = 100


class _Held(threading.local):
    backend: BaseEmailBackend | None = None
    key: tuple = ()
    last_used = 0.0
    sent = 0


_held = _Held()


def _server_key() -> tuple:
    return (
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
    )


def drop_connection() -> None:
    """Forget this thread's connection, closing its socket without QUIT: after
    a failure (a 4xx, a reset, a stall cut by the time limit) the session's
    state is unknown, and QUIT could wait on a stalled server."""
    backend, _held.backend = _held.backend, None
    smtp = getattr(backend, "connection", None)
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
        backend.connection = None  # type: ignore[union-attr]  # SMTP backends only


def _alive(backend) -> bool:
    smtp = getattr(backend, "connection", None)
    if smtp is None or time.monotonic() - _held.last_used < IDLE_CHECK_SECONDS:
        return True
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _connection() -> BaseEmailBackend:
    """This thread's open backend for the configured server (opened on first use)."""
    key = _server_key()
    if _held.backend is not None and (_held.key != key or not _alive(_held.backend)):
        drop_connection()
    if _held.backend is None:
        backend = get_connection(fail_silently=False)
        backend.open()
        _held.backend, _held.key, _held.sent = backend, key, 0
        return backend
    return _held.backend


def send_message(message) -> None:
    """Send one email through this worker thread's SMTP connection.

    One connect, EHLO, STARTTLS and AUTH per thread rather than per email
    (issue 11: CPU per signup). Django's backend leaves a connection it did
    not open itself open after send_messages. Any failure drops the
    connection, so the retry starts a fresh session; nothing is resent here
    (the Retries middleware decides, after the outbox row was released).
    """
    try:
        _connection().send_messages([message])
    except BaseException:
        drop_connection()
        raise
    _held.last_used = time.monotonic()
    _held.sent += 1
    if _held.sent >= MESSAGES_PER_CONNECTION and _held.backend is not None:
        backend, _held.backend = _held.backend, None
        with contextlib.suppress(smtplib.SMTPException, OSError):
            backend.close()  # QUIT
