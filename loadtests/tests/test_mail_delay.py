"""--mail-delay: the SMTP sink the runner starts takes that long per message
(a slow provider), and the run says so."""

import smtplib
import time

import pytest

from loadtests import run
from messaging import sink
from messaging.sink import MailSink

MESSAGE = "Subject: Your code\n\n123456\n"


def test_no_delay_unless_asked():
    args = run.parse_args(["--scenario", "signup", "--rate", "20"])

    assert args.mail_delay == 0.0
    assert "--delay" not in run.new_stack(args).sink_argv()


def test_the_delay_reaches_the_sink_process():
    args = run.parse_args(["--scenario", "signup", "--rate", "20", "--mail-delay", "0.5"])
    stack = run.new_stack(args)

    assert stack.mail_delay == 0.5
    argv = stack.sink_argv()
    assert argv[argv.index("-m") + 1] == "messaging.sink"
    assert argv[argv.index("--delay") + 1] == "0.5"


@pytest.mark.parametrize("value", ["-0.5", "inf", "nan", "soon"])
def test_a_delay_is_0_or_more_finite_seconds(value):
    with pytest.raises(SystemExit):
        run.parse_args(["--scenario", "signup", "--mail-delay", value])


def test_no_delay_against_a_deployment():
    with pytest.raises(SystemExit):
        run.parse_args(["--host", "https://staging.example", "--mail-delay", "0.5"])


def test_the_header_states_the_delay():
    slow = run.parse_args(["--scenario", "signup", "--rate", "20", "--mail-delay", "0.5"])
    quick = run.parse_args(["--scenario", "signup", "--rate", "20", "--worker-threads", "16"])

    assert "SMTP sink taking 0.5 s per message" in run.where(slow)
    assert "16 threads" in run.where(slow)
    assert "SMTP sink without delay" in run.where(quick)
    assert "16 threads" in run.where(quick)


@pytest.mark.parametrize("value", ["-1", "inf"])
def test_the_sinks_delay_option_refuses_what_the_runner_refuses(value):
    with pytest.raises(SystemExit):
        sink.main(["--delay", value])


def test_each_message_waits_the_delay_and_connections_wait_side_by_side():
    with MailSink(delay=0.3) as server:
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.sendmail("from@example.com", ["a@example.com"], MESSAGE)
            one = time.monotonic() - started
            client.sendmail("from@example.com", ["b@example.com"], MESSAGE)
            two = time.monotonic() - started

        assert 0.3 <= one < 0.6
        assert 0.6 <= two < 1.0  # one conversation: one message after the other
        assert [m["to"] for m in server.handler.messages] == [["a@example.com"], ["b@example.com"]]
        assert server.handler.stalled == 0  # slow, not a fault


def test_a_message_whose_sender_gave_up_during_the_delay_is_not_kept():
    with MailSink(delay=0.5) as server:
        with (
            smtplib.SMTP("127.0.0.1", server.port, timeout=0.1) as client,
            pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"),  # at the end of DATA
        ):
            client.sendmail("from@example.com", ["a@example.com"], MESSAGE)
        time.sleep(0.7)

        assert server.handler.messages == []
