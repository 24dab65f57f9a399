"""Read the SMTP sink's JSONL store (`messaging.sink --store`) incrementally.

The service has no test-only endpoint that reveals codes, so the load test
reads them where a person would: from the delivered email. One reader per
process tails the file from where it stopped (a poll costs only the new
lines), keeping a partial last line for the next read.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

VERIFICATION_SUBJECT = "Your Payshift verification code"
LOGIN_CODE_SUBJECT = "Your Payshift login code"


@dataclass
class Mail:
    to: str
    subject: str
    code: str | None
    received_at: float  # the sink's time.time()

    @property
    def is_verification(self) -> bool:
        return self.subject == VERIFICATION_SUBJECT

    @property
    def is_login_code(self) -> bool:
        return self.subject == LOGIN_CODE_SUBJECT


@dataclass
class MailStore:
    path: Path
    offset: int = 0
    partial: bytes = b""
    by_address: dict[str, list[Mail]] = field(default_factory=lambda: defaultdict(list))
    count: int = 0

    def refresh(self) -> int:
        """Read what was appended since the last call; returns how many mails."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return 0
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()  # b"" when the chunk ended with a newline
        added = 0
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            for to in record["to"]:
                self.by_address[to.lower()].append(
                    Mail(
                        to=to.lower(),
                        subject=record.get("subject", ""),
                        code=record.get("code"),
                        received_at=record.get("received_at", 0.0),
                    )
                )
                added += 1
        self.count += added
        return added

    def verification_mails(self, address: str) -> list[Mail]:
        return [m for m in self.by_address.get(address.lower(), []) if m.is_verification]

    def login_code_mails(self, address: str) -> list[Mail]:
        return [m for m in self.by_address.get(address.lower(), []) if m.is_login_code]
