"""One SMTP connection per worker thread (messaging.smtp.send_message), against
a real SMTP server (aiosmtpd): kept between emails, checked when idle, dropped
after any failure so the retry starts a fresh session."""

import smtplib
import socket
import threading

import pytest
from django.core.mail import EmailMessage

from messaging import smtp


@pytest.fixture(autouse=True)
def fresh_thread_connection():
    smtp.drop_connection()
    yield
    smtp.drop_connection()


def email(to: str) -> EmailMessage:
    return EmailMessage("Hello", "Body", "noreply@payshift.example", [to])


def test_emails_from_one_thread_share_one_session(mail_sink):
    for n in range(5):
        smtp.send_message(email(f"user{n}@example.com"))

    assert len(mail_sink.handler.messages) == 5
    assert mail_sink.handler.sessions == 1


def test_each_thread_has_its_own_session(mail_sink):
    threads = [
        threading.Thread(target=smtp.send_message, args=(email(f"t{n}@example.com"),))
        for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(mail_sink.handler.messages) == 3
    assert mail_sink.handler.sessions == 3


def test_a_refused_email_drops_the_session_and_the_next_one_opens_a_new_one(mail_sink):
    smtp.send_message(email("first@example.com"))
    mail_sink.handler.fail_with = "451 4.3.0 try again later"
    with pytest.raises(smtplib.SMTPDataError):
        smtp.send_message(email("second@example.com"))
    mail_sink.handler.fail_with = None

    smtp.send_message(email("second@example.com"))

    assert [m["to"] for m in mail_sink.handler.messages] == [
        ["first@example.com"],
        ["second@example.com"],
    ]
    assert mail_sink.handler.sessions == 2


def test_a_connection_the_server_dropped_while_idle_is_replaced(mail_sink, monkeypatch):
    smtp.send_message(email("before@example.com"))
    # The connection died while it sat idle (as when a server times it out).
    smtp._held.backend.connection.sock.shutdown(socket.SHUT_RDWR)
    monkeypatch.setattr(smtp, "IDLE_CHECK_SECONDS", 0.0)

    smtp.send_message(email("after@example.com"))

    assert len(mail_sink.handler.messages) == 2
    assert mail_sink.handler.sessions == 2


def test_a_connection_is_closed_after_its_message_cap(mail_sink, monkeypatch):
    monkeypatch.setattr(smtp, "MESSAGES_PER_CONNECTION", 2)
    for n in range(5):
        smtp.send_message(email(f"capped{n}@example.com"))

    assert len(mail_sink.handler.messages) == 5
    assert mail_sink.handler.sessions == 3


def test_a_new_server_setting_opens_a_new_connection(mail_sink, settings):
    smtp.send_message(email("old@example.com"))
    from messaging.sink import MailSink

    with MailSink() as other:
        settings.EMAIL_PORT = other.port
        smtp.send_message(email("new@example.com"))
        assert [m["to"] for m in other.handler.messages] == [["new@example.com"]]
    assert len(mail_sink.handler.messages) == 1
