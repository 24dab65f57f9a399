"""A real SMTP server (aiosmtpd) that keeps what it receives: for development and tests.

    python -m messaging.sink --port 1025 [--store mail.jsonl] [--quiet] [--delay SECONDS]

Prints each message (development), appends it as a JSON line to --store
(load tests read codes from there), and in-process keeps them in .messages.
It can play a slow provider: --delay (MailSink(delay=...)) answers the end
of every message's DATA that many seconds late, so the sender's SMTP
conversation waits as it would on a provider taking that long per message
(the load runner's --mail-delay). It can also play a misbehaving server:
refuse mail (fail_with = "451 ...", an outage), refuse a recipient
(rcpt_reply = "550 5.1.1 ..."), stall before answering the end of DATA
(stall_seconds; a message whose client gave up meanwhile is dropped, not
kept, and so is one whose client gave up during a --delay), and offer
SMTPUTF8 or not (MailSink(smtputf8=False)).
"""

import argparse
import asyncio
import json
import re
import signal
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from core.testing import free_port

CODE_RE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)


def plain_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def code_in(text: str) -> str | None:
    """The 6-digit number standing alone on a line, as the email promises."""
    match = CODE_RE.search(text)
    return match.group(1) if match else None


class SinkHandler:
    def __init__(self, *, store: str | None = None, echo: bool = False, delay: float = 0.0) -> None:
        self.messages: list[dict] = []
        self.store = store
        self.echo = echo
        self.delay = delay  # seconds before every answer to DATA: a slow provider, not a fault
        self.fail_with: str | None = None
        self.rcpt_reply: str | None = None
        self.stall_seconds = 0.0
        self.stalled = 0  # DATA answers held back
        self.sessions = 0  # EHLOs: SMTP sessions clients opened
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname  # aiosmtpd leaves this to a handler's EHLO hook
        self.sessions += 1
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        refusal = self.fail_with  # decided when the message arrived, not after the stall
        if self.stall_seconds:
            self.stalled += 1
        wait = self.delay + self.stall_seconds
        if wait:
            await asyncio.sleep(wait)
            if server.transport is None or server.transport.is_closing():
                return "421 4.4.2 client gone: message dropped"
        if refusal:
            return refusal
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = plain_body(message)
        record = {
            "to": [addr.lower() for addr in envelope.rcpt_tos],
            "from": envelope.mail_from,
            "subject": str(message["subject"]),
            "message_id": str(message["message-id"]),
            "body": body,
            "code": code_in(body),
            "received_at": time.time(),
        }
        with self._lock:
            self.messages.append(record)
            if self.store:
                with open(self.store, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
        if self.echo:
            print(f"--- mail to {', '.join(record['to'])}: {record['subject']}\n{body}", flush=True)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if address.lower() in m["to"]]


class MailSink:
    """Start/stop an SMTP sink on a port in this process (a context manager)."""

    def __init__(
        self,
        port: int = 0,
        *,
        store: str | None = None,
        echo: bool = False,
        smtputf8: bool = True,
        delay: float = 0.0,
    ) -> None:
        self.handler = SinkHandler(store=store, echo=echo, delay=delay)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=port or free_port(),
            enable_SMTPUTF8=smtputf8,
        )

    @property
    def port(self) -> int:
        return self.controller.port

    def __enter__(self) -> "MailSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.handler.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} mail(s) to {address}, got {self.handler.to(address)}"
        )


def seconds(value: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    number = float(value)
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {value!r}")
    return number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--store", help="append each message as a JSON line to this file")
    parser.add_argument("--quiet", action="store_true", help="do not print messages")
    parser.add_argument(
        "--delay",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="answer the end of each message's DATA this late (a slow provider; default 0)",
    )
    args = parser.parse_args(argv)
    with MailSink(args.port, store=args.store, echo=not args.quiet, delay=args.delay) as sink:
        slow = f", {args.delay:g} s per message" if args.delay else ""
        print(f"SMTP sink listening on 127.0.0.1:{sink.port}{slow}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()


if __name__ == "__main__":
    main()
